#!/usr/bin/env bash
# Install Orion (orion-fhe, with its Lattigo library) into the given Python environment.
# Its wheel declares torchvision, whose PyPI build does not import beside the CPU torch we
# pin, and only orion.core.utils imports it: so Orion goes in with --no-deps, and its other
# dependencies (the project's `orion` extra) are installed explicitly.
set -euo pipefail
PY=${1:?usage: install_orion.sh PYTHON}
VERSION=1.0.2
if "$PY" -c "import orion" 2>/dev/null; then exit 0; fi
"$PY" -m pip install -q "h5py>=3.5" "PyYAML>=6.0" "scipy<=1.14.1" "certifi>=2024.2.2"
"$PY" -m pip install -q --no-deps "orion-fhe==$VERSION"
"$PY" -c "import orion" || { echo "orion-fhe $VERSION installed but does not import" >&2; exit 1; }
