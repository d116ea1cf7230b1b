"""Shared fixtures."""

from __future__ import annotations

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
def installed_example_plugin():
    """The example third-party plugin, pip-installed into this environment for the
    session and uninstalled afterwards, exactly as a user would install it."""
    _pip("install", "--no-deps", "--no-build-isolation", str(EXAMPLE_PLUGIN))
    registry.get_registry.cache_clear()
    try:
        yield "artemis-random-strategy"
    finally:
        _pip("uninstall", "-y", "artemis-random-strategy")
        registry.get_registry.cache_clear()
