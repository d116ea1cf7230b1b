"""Artemis: HE-aware neural-network pruning with rotation-shaped pruning strategies.

Plugin authors import the hook marker and the base classes from here::

    from artemis_core import hookimpl, Strategy
"""

from .deploy.engine import CompiledModel, Engine
from .errors import ArtemisError, BackendError, BudgetError, ParamsError, PluginError, SpecError
from .he.backend import HEBackend
from .he.cost_model import CostModel, GroupSavings, LayerPlan
from .he.params import HEParams
from .he.specs import ConvSpec, OpCount
from .hookspecs import hookimpl, hookspec
from .learning.catalog import Dataset, ModelInfo
from .pruning.strategy import CostModelGroupStrategy, GroupSet, Strategy, make_group_set
from .version import __version__

#: Deployment names, imported on first use (they load Pyfhel, which plain pruning never needs).
_LAZY = {
    "Client": "artemis_core.deploy.inference",
    "Server": "artemis_core.deploy.inference",
    "HEProgram": "artemis_core.deploy.he_program",
    "compile_model": "artemis_core.deploy.he_program",
}


def __getattr__(name: str):
    """PEP 562: the deployment names, imported when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'artemis_core' has no attribute {name!r}")


__all__ = [
    "ArtemisError", "BackendError", "BudgetError", "Client", "CompiledModel", "ConvSpec",
    "CostModel", "CostModelGroupStrategy", "Dataset", "Engine", "GroupSavings", "GroupSet",
    "HEBackend", "HEParams", "HEProgram", "LayerPlan", "ModelInfo", "OpCount", "ParamsError",
    "PluginError", "Server", "SpecError", "Strategy", "__version__", "compile_model",
    "hookimpl", "hookspec", "make_group_set",
]
