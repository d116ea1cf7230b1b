"""``artemis``: our own Pyfhel (SEAL) program, client and server apart.

A thin wrapper over :mod:`artemis_core.deploy`: the model is compiled by
:func:`~artemis_core.deploy.he_program.compile_model` with the shortest secure chain at
N = 2^log_n under a cost model's plans, a client makes exactly the keys the server needs,
and each inference is encrypt → server → decrypt. Config keys: ``log_n`` (14),
``scale_bits`` (40), ``cost_model`` (``gazelle``), ``allow_insecure`` (false: chains
beyond the 128-bit table are refused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from artemis_core import hookimpl
from artemis_core.deploy.engine import CompiledModel, Engine
from artemis_core.errors import ParamsError
from artemis_core.he.latency import Calibration
from artemis_core.registry import get

CONFIG_KEYS = {"log_n", "scale_bits", "cost_model", "allow_insecure"}
#: Deepest chain ``artemis calibrate`` times by default (the fit prices deeper levels).
CALIBRATION_DEPTH = 4


class ArtemisEngine(Engine):
    """Our leveled CKKS program on Pyfhel."""

    name = "artemis"
    description = ("Artemis's own Pyfhel/SEAL program (one thread, no bootstrapping), "
                   "convolutions executed by the cost model's plans")
    columns = ("server_s", "est_server_s", "rotations", "keys",
               "key_MB", "sent_MB", "levels", "security")

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        unknown = sorted(set(self.config) - CONFIG_KEYS)
        if unknown:
            raise ParamsError(f"artemis engine config: unknown keys {unknown}; allowed: "
                              f"{sorted(CONFIG_KEYS)}")
        self.log_n = int(self.config.get("log_n", 14))
        self.scale_bits = int(self.config.get("scale_bits", 40))
        self.allow_insecure = bool(self.config.get("allow_insecure", False))
        self.cost_model = str(self.config.get("cost_model", "gazelle"))
        self.planner = get("cost_model", self.cost_model)()

    def _params(self, model: nn.Module, input_shape: Sequence[int]):
        from artemis_core.deploy.he_program import fit_params

        return fit_params(model, input_shape, self.planner, self.log_n, self.scale_bits,
                          self.allow_insecure)

    def _program(self, model: nn.Module, input_shape: Sequence[int]):
        from artemis_core.deploy.he_program import compile_model

        return compile_model(model, input_shape, self._params(model, input_shape),
                             self.planner)

    def check(self, model: nn.Module, input_shape: Sequence[int]) -> None:
        """The model has a leveled form, the fitted chain is secure (unless
        ``allow_insecure``) and SEAL accepts it."""
        from artemis_plugins.backends.pyfhel import PyfhelBackend

        PyfhelBackend(self._params(model, input_shape))

    def held_bytes(self, model: nn.Module, input_shape: Sequence[int]) -> int:
        """Encoded weights and rotation keys of the compiled program."""
        from artemis_core.deploy.session import held_bytes

        return held_bytes(self._program(model, input_shape))

    def calibrate(self, log_n: int, depth: int | None, repeats: int | None,
                  progress: Callable[[str], None] | None = None) -> Calibration:
        """Pyfhel's primitives on [60, 40 x depth, 60] (``None``: the deepest 128-bit
        chain with at most :data:`CALIBRATION_DEPTH` rescales); ``repeats`` defaults to
        20."""
        from artemis_core.he.calibrate import measure_calibration
        from artemis_core.he.params import HEParams

        params = (HEParams.deepest(log_n, CALIBRATION_DEPTH) if depth is None
                  else HEParams.with_depth(log_n, depth))
        return measure_calibration(params, repeats or 20, progress)

    def compile(self, model: nn.Module, input_shape: Sequence[int],
                calibration: torch.Tensor) -> CompiledModel:
        """Compile with the fitted chain; make the client, keys and a warmed-up server."""
        from artemis_core.deploy.session import Session

        return Session(self._program(model, input_shape))


@hookimpl
def register_engines(register) -> None:
    """Register ``artemis``."""
    register(ArtemisEngine)
