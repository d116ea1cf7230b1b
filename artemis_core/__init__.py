"""Artemis: HE-aware neural-network pruning with rotation-shaped pruning strategies.

Plugin authors import the hook marker and the base classes from here::

    from artemis_core import hookimpl, Strategy
"""

from importlib.metadata import PackageNotFoundError, version

from .backend import HEBackend
from .catalog import Dataset, ModelInfo
from .cost_model import CostModel, GroupSavings, LayerPlan
from .errors import ArtemisError, BackendError, BudgetError, ParamsError, PluginError, SpecError
from .hookspecs import hookimpl, hookspec
from .params import HEParams
from .specs import ConvSpec, OpCount
from .strategy import CostModelGroupStrategy, GroupSet, Strategy, make_group_set

try:
    __version__ = version("artemis-he")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "ArtemisError", "BackendError", "BudgetError", "ConvSpec", "CostModel",
    "CostModelGroupStrategy", "Dataset",
    "GroupSavings", "GroupSet", "HEBackend", "HEParams", "LayerPlan", "ModelInfo", "OpCount",
    "ParamsError", "PluginError", "SpecError", "Strategy", "__version__", "hookimpl", "hookspec",
    "make_group_set",
]
