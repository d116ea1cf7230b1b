"""The wheel installs the repo folders under collision-free import names."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_maps_plugins_and_strategies_to_prefixed_packages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("artemis_he-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("artemis_he-")}
    assert top_level == {"artemis_core", "artemis_plugins", "artemis_strategies"}
    assert "artemis_plugins/cost/gazelle.py" in names
    assert "artemis_strategies/diagonal.py" in names
    assert "artemis_core/data/calibration_default.json" in names
