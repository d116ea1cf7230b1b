"""Plugin manager and name registries shared by built-in and third-party plugins."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .io import split_list
from .version import __version__

#: Packages whose every module is a built-in plugin, registered through the same hooks
#: as third-party ones (a new built-in is a new module; nothing else to edit).
BUILTIN_PACKAGES = ("artemis_strategies", "artemis_plugins")
ENTRY_POINT_GROUP = "artemis"
#: Comma-separated entry-point names to load (unset: all; empty: none), as llm's
#: LLM_LOAD_PLUGINS. Built-ins always load.
LOAD_PLUGINS_ENV = "ARTEMIS_LOAD_PLUGINS"

#: plugin kind -> the hook that registers it, in listing order.
KINDS: dict[str, str] = {
    "strategy": "register_strategies",
    "cost_model": "register_cost_models",
    "he_backend": "register_he_backends",
    "model": "register_models",
    "dataset": "register_datasets",
    "engine": "register_engines",
}


@dataclass(frozen=True)
class KindType:
    """What a kind's plugins register: subclasses of ``base``, or instances of it."""

    base: type
    instances: bool = False

    def accepts(self, obj: Any) -> bool:
        """Whether ``obj`` may be registered as this kind."""
        if self.instances:
            return isinstance(obj, self.base)
        return isinstance(obj, type) and issubclass(obj, self.base)


#: kind -> its base type, declared by the module that defines the interface (so this
#: module, at the bottom of the package, imports none of them).
_KIND_TYPES: dict[str, KindType] = {}


def declare_kind(kind: str, base: type, instances: bool = False) -> None:
    """Say which type plugins of ``kind`` register; called once by the interface module."""
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; known: {', '.join(KINDS)}")
    _KIND_TYPES[kind] = KindType(base, instances)


class PluginWarning(UserWarning):
    """A plugin failed to load or raised in a hook; the others keep working."""


@dataclass(frozen=True)
class Entry:
    """One registered name: what it is and where it came from."""

    name: str
    kind: str
    obj: Any
    source: str  # "built-in" or the distribution name
    version: str


class Registry:
    """Names of every plugin kind, looked up with a helpful error."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}

    def add(self, kind: str, obj: Any, source: str, version: str) -> None:
        """Add ``obj`` (checked against the kind's base type) under its ``name``."""
        expected = _KIND_TYPES[kind]
        if not expected.accepts(obj):
            raise TypeError(
                f"{kind} plugins must register {expected.base.__name__}, got {obj!r}"
            )
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{obj!r} has no 'name' string")
        existing = self._entries[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"{kind} name {name!r} is registered twice: by {existing.source} and by "
                f"{source}; uninstall one or choose plugins with {LOAD_PLUGINS_ENV}"
            )
        self._entries[kind][name] = Entry(name, kind, obj, source, version)

    def get(self, kind: str, name: str) -> Any:
        """The object registered as ``name``; unknown names list the known ones."""
        try:
            return self._entries[kind][name].obj
        except KeyError:
            known = ", ".join(sorted(self._entries[kind])) or "none"
            label = kind.replace("_", " ")
            raise PluginError(f"unknown {label} {name!r}; known: {known}") from None

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> list[Entry]:
        """All entries (of one kind), sorted by kind then name."""
        kinds = [kind] if kind else list(KINDS)
        return [e for k in kinds for _, e in sorted(self._entries[k].items())]


def _builtin_modules() -> list[str]:
    modules = []
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        modules += [
            info.name
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}.")
            if not info.ispkg
        ]
    return sorted(modules)


def _warn_broken(plugin: str, source: str, version: str, what: str, exc: Exception) -> None:
    warnings.warn(
        f"plugin {plugin!r} from {source} {version} {what}: {type(exc).__name__}: {exc}",
        PluginWarning,
        stacklevel=3,
    )


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return entry_point.name, "?"
    return dist.metadata["Name"], dist.version


def _selected_entry_points() -> list[importlib.metadata.EntryPoint]:
    points = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    if wanted is None:
        return points
    names = set(split_list(wanted))
    return [ep for ep in points if ep.name in names]


def build_plugin_manager() -> tuple[pluggy.PluginManager, dict[str, tuple[str, str]]]:
    """A PluginManager with the built-ins and every loadable ``artemis`` entry point.

    Returns the manager and, per plugin name, its (source, version). A plugin that fails
    to import gives one :class:`PluginWarning` naming its distribution and the error.
    """
    pm = pluggy.PluginManager("artemis")
    pm.add_hookspecs(hookspecs)
    sources: dict[str, tuple[str, str]] = {}
    for module_name in _builtin_modules():
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:
            _warn_broken(module_name, "built-in", __version__, "failed to load", exc)
            continue
        sources[module_name] = ("built-in", __version__)
    for ep in _selected_entry_points():
        dist, version = _distribution_of(ep)
        try:
            plugin = ep.load()
            pm.register(plugin, name=f"{dist}:{ep.name}")
        except Exception as exc:  # a broken plugin must not break the others
            _warn_broken(ep.name, dist, version, "failed to load", exc)
            continue
        sources[f"{dist}:{ep.name}"] = (dist, version)
    return pm, sources


def build_registry(pm: pluggy.PluginManager, sources: dict[str, tuple[str, str]]) -> Registry:
    """Call every plugin's hooks, one plugin at a time, so one that raises is reported
    (with its distribution) and skipped while the rest still register."""
    registry = Registry()
    for kind, hook_name in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            source, version = sources.get(impl.plugin_name, (impl.plugin_name, "?"))
            staged: list[Any] = []
            try:
                impl.function(register=staged.append)
            except Exception as exc:
                _warn_broken(impl.plugin_name, source, version, f"raised in {hook_name}", exc)
                continue
            for obj in staged:
                try:
                    registry.add(kind, obj, source, version)
                except TypeError as exc:
                    _warn_broken(impl.plugin_name, source, version, "registered a bad item", exc)
    return registry


@cache
def get_registry() -> Registry:
    """The process-wide registry (built on first use)."""
    return build_registry(*build_plugin_manager())


def get(kind: str, name: str) -> Any:
    """Shortcut for ``get_registry().get(kind, name)``."""
    return get_registry().get(kind, name)
