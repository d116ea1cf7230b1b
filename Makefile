# Two entry points for a fresh machine (only python3 and make needed):
#   make demo   -- set up .venv and run a short digits comparison
#   make test   -- set up .venv and run the test suite
#   make data   -- install Fashion-MNIST (Debian's package) where possible
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test data lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/install_pyfhel.sh scripts/install_orion.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	bash scripts/install_pyfhel.sh $(PY)
	$(PY) -m pip install -q -e '.[dev,orion]'
	bash scripts/install_orion.sh $(PY)
	touch $(STAMP)

# Every registered strategy at three targets on digits (about 3 min on 2 idle cores; a rerun
# reuses the stored runs and only prints the table and plot again). The README's copy of its
# output is rewritten by benchmarks/readme_demo.py.
DEMO_OUT ?= runs/demo
demo: venv
	$(VENV)/bin/artemis compare --dataset digits --targets 1.5x,2x,4x --out $(DEMO_OUT) \
		--plot $(DEMO_OUT)/pareto.png

# pytest exits 5 when it collected no tests: that is a failure too.
test: venv
	$(VENV)/bin/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Fashion-MNIST (--dataset fashion-mnist): installs Debian's dataset-fashion-mnist when run
# as root on Debian/Ubuntu, otherwise prints what to do (and fails).
data:
	bash scripts/install_data.sh

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
