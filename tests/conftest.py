"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from artemis_core import registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = REPO / "examples" / "artemis-random-strategy"


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def installed_example_plugin(tmp_path_factory):
    """The example third-party plugin, pip-installed (as a user would) into a directory of
    its own that this process and its children see on their path: the environment the
    tests run in is left as it was."""
    site = tmp_path_factory.mktemp("plugin-site")
    _pip("install", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(EXAMPLE_PLUGIN))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (
            str(site), os.environ.get("PYTHONPATH")))))
        registry.get_registry.cache_clear()
        yield "artemis-random-strategy"
    registry.get_registry.cache_clear()
