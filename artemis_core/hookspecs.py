"""The hooks an Artemis plugin implements.

Every hook receives a ``register`` callback and calls it once per item it adds, as in
simonw/llm. The core checks each item's type, name and duplicates in one place
(:mod:`artemis_core.registry`). Built-in plugins use exactly these hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("artemis")
hookimpl = pluggy.HookimplMarker("artemis")

Register = Callable[[Any], None]


@hookspec
def register_strategies(register: Register) -> None:
    """Add pruning strategies.

    Call ``register(cls)`` once per :class:`artemis_core.Strategy` subclass. The class's
    ``name`` attribute is its registry name (``artemis prune --strategy NAME``).
    """


@hookspec
def register_cost_models(register: Register) -> None:
    """Add HE cost models (convolution algorithms).

    Call ``register(cls)`` once per :class:`artemis_core.CostModel` subclass; its ``name``
    attribute is the registry name (``--cost-model NAME``).
    """


@hookspec
def register_he_backends(register: Register) -> None:
    """Add HE backends (primitive CKKS operations).

    Call ``register(cls)`` once per :class:`artemis_core.HEBackend` subclass; its ``name``
    attribute is the registry name (``--backend NAME``).
    """


@hookspec
def register_models(register: Register) -> None:
    """Add model architectures.

    Call ``register(info)`` once per :class:`artemis_core.ModelInfo`: a name, a builder
    ``build(num_classes, input_shape) -> torch.nn.Module`` and a default input shape.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Add datasets.

    Call ``register(cls)`` once per :class:`artemis_core.Dataset` subclass; its ``name``
    attribute is the registry name (``--dataset NAME``).
    """


@hookspec
def register_engines(register: Register) -> None:
    """Add encrypted-inference engines (a whole trained model compiled and run under HE).

    Call ``register(cls)`` once per :class:`artemis_core.deploy.engine.Engine` subclass;
    its ``name`` attribute is the registry name (``artemis infer --engine NAME``).
    """
