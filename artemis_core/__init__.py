"""Artemis: HE-aware neural-network pruning with rotation-shaped pruning strategies.

Plugin authors import the hook marker and the base classes from here::

    from artemis_core import hookimpl, Strategy
"""

from .errors import ArtemisError, BackendError, BudgetError, ParamsError, PluginError, SpecError
from .he.backend import HEBackend
from .he.cost_model import CostModel, GroupSavings, LayerPlan
from .he.params import HEParams
from .he.specs import ConvSpec, OpCount
from .hookspecs import hookimpl, hookspec
from .learning.catalog import Dataset, ModelInfo
from .pruning.strategy import CostModelGroupStrategy, GroupSet, Strategy, make_group_set
from .version import __version__

__all__ = [
    "ArtemisError", "BackendError", "BudgetError", "ConvSpec", "CostModel",
    "CostModelGroupStrategy", "Dataset",
    "GroupSavings", "GroupSet", "HEBackend", "HEParams", "LayerPlan", "ModelInfo", "OpCount",
    "ParamsError", "PluginError", "SpecError", "Strategy", "__version__", "hookimpl", "hookspec",
    "make_group_set",
]
