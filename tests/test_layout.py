"""The package's import graph, read from the source: imports point one way, no cycles.

Layers, lowest first: the plugin core (errors, hookspecs, registry, io, version), then
he/learning, pruning/deploy, experiments, cli. A module may import its own layer or a
lower one; the top package's ``__init__`` (the public facade) may import anything and is
imported by nobody inside the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import artemis_core

PACKAGE = Path(artemis_core.__file__).parent
LAYERS = {"": 0, "he": 1, "learning": 1, "pruning": 2, "deploy": 2, "experiments": 3, "cli": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The absolute module an ``ImportFrom`` node reads, then each name it takes."""
    if node.level:
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """module -> the artemis_core modules it imports (at any depth: lazy imports count)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                target, *members = resolve(module, path.name == "__init__.py", node)
                submodules = [name for name in members if name in paths]
                # ``from pkg import mod`` imports mod; ``from pkg import name`` imports pkg
                names = submodules if submodules else [target]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            targets |= {name for name in names if name in paths and name != module}
        graph[module] = targets
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")
    sub = parts[1] if len(parts) > 2 else ""
    return LAYERS[sub]


GRAPH = import_graph()


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages <= set(LAYERS), subpackages - set(LAYERS)


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m != "artemis_core"))
def test_no_import_points_up(module):
    upward = sorted(
        t for t in GRAPH[module] if t == "artemis_core" or layer_of(t) > layer_of(module)
    )
    assert not upward, f"{module} imports {upward} from a layer above it"


def test_no_cycle():
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, stack + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_the_graph_sees_imports():
    """Guard against a parser that finds nothing (the checks above would then pass)."""
    assert "artemis_core.registry" in GRAPH["artemis_core.pruning.strategy"]
    assert "artemis_core.he.params" in GRAPH["artemis_core.pruning.strategy"]
    assert "artemis_core.experiments.compare" in GRAPH["artemis_core.cli.compare_cmd"]


def test_top_level_stays_small():
    modules = [p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= 8, sorted(p.name for p in modules)
