"""The plugin registry: built-ins and third-party plugins share one code path."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import pytest

from artemis_core import PluginError, Strategy, hookimpl
from artemis_core.registry import (
    PluginWarning,
    Registry,
    build_plugin_manager,
    build_registry,
    get_registry,
)


class _Dummy(Strategy):
    name = "dummy"

    def groups(self, spec, params, cost_model):
        return []


class _DummyPlugin:
    @hookimpl
    def register_strategies(self, register):
        register(_Dummy)


class _RaisingPlugin:
    @hookimpl
    def register_strategies(self, register):
        raise RuntimeError("boom")


@pytest.fixture
def plugin_manager():
    pm, sources = build_plugin_manager()
    return pm, sources


def test_temporary_plugin_registers_through_the_hook(plugin_manager):
    pm, sources = plugin_manager
    pm.register(_DummyPlugin(), name="dummy-plugin")
    registry = build_registry(pm, sources)
    assert registry.get("strategy", "dummy") is _Dummy
    entry = next(e for e in registry.entries("strategy") if e.name == "dummy")
    assert entry.source == "dummy-plugin"


def test_unknown_name_lists_known_names():
    registry = Registry()
    registry.add("strategy", _Dummy, "built-in", "1")
    with pytest.raises(PluginError, match=r"unknown strategy 'nope'; known: dummy"):
        registry.get("strategy", "nope")


def test_duplicate_name_names_both_sources():
    registry = Registry()
    registry.add("strategy", _Dummy, "built-in", "1")
    with pytest.raises(PluginError, match="by built-in and by other-dist"):
        registry.add("strategy", _Dummy, "other-dist", "2")


def test_wrong_type_is_refused():
    with pytest.raises(TypeError, match="Strategy"):
        Registry().add("strategy", object, "x", "1")


def test_plugin_raising_in_a_hook_warns_and_the_rest_still_work(plugin_manager):
    pm, sources = plugin_manager
    pm.register(_RaisingPlugin(), name="raising-plugin")
    pm.register(_DummyPlugin(), name="dummy-plugin")
    with pytest.warns(PluginWarning, match=r"raising-plugin.*register_strategies.*boom"):
        registry = build_registry(pm, sources)
    assert registry.get("strategy", "dummy") is _Dummy


@pytest.fixture
def broken_distribution(tmp_path, monkeypatch):
    """A real installed distribution (a .dist-info on sys.path) whose entry point is broken."""
    dist_info = tmp_path / "artemis_broken-1.4.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: artemis-broken\nVersion: 1.4\n"
    )
    (dist_info / "entry_points.txt").write_text("[artemis]\nbroken = artemis_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_plugin_failing_to_import_warns_with_its_distribution(broken_distribution):
    with pytest.warns(PluginWarning, match=r"'broken' from artemis-broken 1.4 failed to load"):
        pm, sources = build_plugin_manager()
    build_registry(pm, sources)  # the rest still builds


def test_load_plugins_env_skips_unlisted_entry_points(broken_distribution, monkeypatch):
    monkeypatch.setenv("ARTEMIS_LOAD_PLUGINS", "some-other-plugin")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        pm, _ = build_plugin_manager()
    assert not [name for name in pm.list_name_plugin() if "broken" in name[0]]


def test_registry_is_built_once():
    assert get_registry() is get_registry()


def test_example_third_party_plugin_is_listed_with_its_distribution(installed_example_plugin):
    out = subprocess.run(
        [sys.executable, "-m", "artemis_core.cli", "plugins", "--kind", "strategy",
         "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["random"]["source"] == installed_example_plugin
    assert rows["random"]["version"] == "0.2.0"


def test_example_plugin_strategy_uses_the_public_api(installed_example_plugin):
    code = textwrap.dedent("""
        from artemis_core.registry import get
        cls = get("strategy", "random")
        print(cls.__module__)
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "artemis_random_strategy"
