"""``artemis``: our own Pyfhel (SEAL) program, client and server apart.

A thin wrapper over :mod:`artemis_core.deploy`: the model is compiled by
:func:`~artemis_core.deploy.he_program.compile_model` with the shortest secure chain at
N = 2^log_n under a cost model's plans, a client makes exactly the keys the server needs,
and each inference is encrypt → server → decrypt. Config keys: ``log_n`` (14),
``scale_bits`` (40), ``cost_model`` (``gazelle``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from artemis_core import hookimpl
from artemis_core.deploy.engine import CompiledModel, Engine
from artemis_core.errors import ParamsError
from artemis_core.registry import get

CONFIG_KEYS = {"log_n", "scale_bits", "cost_model"}


class ArtemisEngine(Engine):
    """Our leveled CKKS program on Pyfhel."""

    name = "artemis"
    description = ("Artemis's own Pyfhel/SEAL program (one thread, no bootstrapping), "
                   "convolutions executed by the cost model's plans")

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        unknown = sorted(set(self.config) - CONFIG_KEYS)
        if unknown:
            raise ParamsError(f"artemis engine config: unknown keys {unknown}; allowed: "
                              f"{sorted(CONFIG_KEYS)}")
        self.log_n = int(self.config.get("log_n", 14))
        self.scale_bits = int(self.config.get("scale_bits", 40))
        self.cost_model = str(self.config.get("cost_model", "gazelle"))
        self.planner = get("cost_model", self.cost_model)()

    def check(self, model: nn.Module, input_shape: Sequence[int]) -> None:
        """The model has a leveled form and SEAL accepts the fitted parameters."""
        from artemis_plugins.backends.pyfhel import PyfhelBackend

        from artemis_core.deploy.he_program import fit_params

        PyfhelBackend(fit_params(model, input_shape, self.planner, self.log_n,
                                 self.scale_bits))

    def compile(self, model: nn.Module, input_shape: Sequence[int],
                calibration: torch.Tensor) -> ArtemisCompiled:
        """Compile with the fitted chain; make the client, keys and a warmed-up server."""
        from artemis_core.deploy.encrypted_eval import _Session
        from artemis_core.deploy.he_program import compile_model, fit_params

        params = fit_params(model, input_shape, self.planner, self.log_n, self.scale_bits)
        return ArtemisCompiled(_Session(self.name, compile_model(model, input_shape, params,
                                                                 self.planner)))


class ArtemisCompiled(CompiledModel):
    """A client and a key-less server for one compiled program."""

    def __init__(self, session) -> None:
        self.session = session
        self.setup_seconds = session.setup

    def infer(self, image: torch.Tensor) -> torch.Tensor:
        """Client encrypts, server evaluates, client decrypts."""
        self.session.query(image)
        return self.session.logits[-1]

    def stats(self) -> dict[str, Any]:
        """Executed operations, keys and bytes, levels (the last query's)."""
        session = self.session
        params = session.program.service.params
        ops = session.ops
        return {
            "rotations": ops.rotations, "pmult": ops.pmult, "cmult": ops.cmult,
            "rotation_keys": session.rotation_keys,
            "rotation_key_bytes": session.rotation_key_bytes,
            "evaluation_key_bytes": session.evaluation_key_bytes, "levels": params.levels,
            "levels_used": session.program.depth, "bootstraps": 0, "log_n": params.log_n,
            "coeff_modulus_bits": list(params.coeff_modulus_bits),
        }


@hookimpl
def register_engines(register) -> None:
    """Register ``artemis``."""
    register(ArtemisEngine)
