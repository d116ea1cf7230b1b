"""``orion``: the model converted to Orion's modules and run on Lattigo (Orion, ASPLOS'25).

Orion packs every convolution and linear layer into BSGS linear transforms over its
multiplexed layout, keeps only the non-zero generalized diagonals (so pruned weights
remove plaintext products and, when a whole baby- or giant-step class empties,
rotations and keys), places bootstraps itself, and runs multi-threaded.

Configuration (a YAML file or dict, Orion's own layout)::

    ckks_params: {LogN: 13, LogQ: [45, 25, 25, 25, 25, 25], LogP: [45], LogScale: 25}
    boot_params: {LogP: [...]}      # only for networks that need bootstrapping
    orion: {margin: 2, embedding_method: hybrid}
    allow_insecure: false           # Artemis: refuse chains over the 128-bit table
    fuse_classifier: true           # Artemis: pool + linear as one layer (default)

Without ``ckks_params`` the chain is fitted to the network: N = 2^log_n (``log_n``
key, default 14), one level per layer, the largest scale up to 2^40 whose chain is
128-bit secure in the same table as :class:`~artemis_core.he.params.HEParams`.
Orion is one process-wide scheme: every model compiled by one engine shares its keys,
so dense and pruned models of one run are compiled by the same engine.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from artemis_core import hookimpl
from artemis_core.deploy.engine import CompiledModel, Engine
from artemis_core.deploy.orion_net import OrionNet, convert, depth, import_orion
from artemis_core.errors import ParamsError, SpecError
from artemis_core.he.latency import Calibration
from artemis_core.he.params import MAX_LOG_Q_128

DEFAULT_LOG_N = 14
MAX_SCALE_BITS = 40
#: bits of the first prime above the scale: room for the logits at the last level
HEADROOM_BITS = 15
#: one 60-bit key-switching prime: its noise, ~ q_i/P, then stays far below the scale
#: (with P as small as the first prime, rotations alone cost ~1e-3 at a 2^25 scale)
SPECIAL_PRIME_BITS = 60
ORION_DEFAULTS = {"margin": 2, "embedding_method": "hybrid", "backend": "lattigo",
                  "fuse_modules": True, "debug": False, "io_mode": "none"}
#: levels ``artemis calibrate --engine orion`` times by default
CALIBRATION_DEPTH = 5
#: keys of a config the engine reads; anything else is a typo
CONFIG_KEYS = {"ckks_params", "boot_params", "orion", "log_n", "allow_insecure",
               "fuse_classifier"}



def fitted_ckks_params(log_n: int, levels: int) -> dict[str, Any]:
    """[q0, s × levels] with one 60-bit special prime P, the largest scale s ≤ 40 whose
    total fits the 128-bit table at N = 2^log_n."""
    if log_n not in MAX_LOG_Q_128:
        raise ParamsError(f"log_n={log_n} unsupported; allowed: "
                          f"{min(MAX_LOG_Q_128)}..{max(MAX_LOG_Q_128)}")
    budget = MAX_LOG_Q_128[log_n]
    scale = min(MAX_SCALE_BITS,
                (budget - SPECIAL_PRIME_BITS - HEADROOM_BITS) // (levels + 1))
    if scale < 20:
        raise ParamsError(
            f"the network needs {levels} levels: a 128-bit secure chain at N=2^{log_n} "
            f"(log2 Q+P <= {budget}) cannot give that many with a scale of at least 2^20; "
            "use a larger log_n, or pass an Orion config with boot_params (bootstrapping)")
    first = min(60, scale + HEADROOM_BITS)
    return {"LogN": log_n, "LogQ": [first] + [scale] * levels, "LogP": [SPECIAL_PRIME_BITS],
            "LogScale": scale, "H": 192, "RingType": "standard"}


def check_security(ckks: Mapping[str, Any], boot: Mapping[str, Any],
                   allow_insecure: bool) -> None:
    """Refuse a chain over the 128-bit table (log2 of Q·P, bootstrapping's P included)."""
    log_n = ckks.get("LogN")
    if log_n not in MAX_LOG_Q_128:
        raise ParamsError(f"ckks_params LogN={log_n!r} unsupported; allowed: "
                          f"{min(MAX_LOG_Q_128)}..{max(MAX_LOG_Q_128)}")
    log_q = sum(ckks.get("LogQ") or [])
    log_p = max(sum(ckks.get("LogP") or []), sum(boot.get("LogP") or []))
    if log_q + log_p > MAX_LOG_Q_128[log_n] and not allow_insecure:
        raise ParamsError(
            f"ckks_params log2(Q·P)={log_q + log_p} exceeds {MAX_LOG_Q_128[log_n]} for "
            f"N=2^{log_n}: not 128-bit secure (shorten LogQ/LogP, raise LogN, or set "
            "allow_insecure: true)")


@contextlib.contextmanager
def _quiet():
    """Orion prints its progress on stdout (where Artemis prints results) and draws
    progress bars on stderr: keep both for Artemis's own output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


class OrionEngine(Engine):
    """Convert to ``orion.nn``, fit, compile and run on Orion's Lattigo backend."""

    name = "orion"
    cost_model = "bsgs"
    #: under bsgs, channel-diagonal groups alone take he-cnn to 1.48x at most (taps and
    #: the classifier); hybrid groups reach the 1.75x default
    strategy = "hybrid"
    columns = ("diagonals", "keys", "key_MB", "bootstraps", "levels")
    description = ("Orion (ASPLOS'25) on Lattigo: BSGS diagonal packing, zero diagonals "
                   "skipped, automatic bootstrap placement, multi-threaded")

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        unknown = sorted(set(self.config) - CONFIG_KEYS)
        if unknown:
            raise ParamsError(f"orion engine config: unknown keys {unknown}; allowed: "
                              f"{sorted(CONFIG_KEYS)}")
        self.log_n = int(self.config.get("log_n", DEFAULT_LOG_N))
        self.allow_insecure = bool(self.config.get("allow_insecure", False))
        self.boot = dict(self.config.get("boot_params") or {})
        self.ckks = dict(self.config["ckks_params"]) if self.config.get("ckks_params") \
            else None
        if self.ckks is not None:
            check_security(self.ckks, self.boot, self.allow_insecure)
        # fused: one level fewer, more diagonals (he-cnn at 2^14: 401 against 193, but
        # 1.03 against 1.11 CPU s per image)
        self.fuse_classifier = bool(self.config.get("fuse_classifier", True))
        self.scheme = None
        self._key_bytes: int | None = None

    def check(self, model: nn.Module, input_shape: Sequence[int]) -> None:
        """Convert (naming an unsupported layer) and check the chain is deep enough."""
        self._levels_for(convert(model, input_shape, self.fuse_classifier))

    def _levels_for(self, converted: OrionNet) -> int:
        needed = depth(converted)
        if self.ckks is None:
            fitted_ckks_params(self.log_n, needed)  # raises when it cannot fit
        elif needed > len(self.ckks["LogQ"]) - 1 and not self.boot:
            raise ParamsError(f"the network needs {needed} levels but ckks_params LogQ gives "
                              f"{len(self.ckks['LogQ']) - 1} and boot_params is empty (no "
                              "bootstrapping); lengthen LogQ or add boot_params")
        return needed

    def compile(self, model: nn.Module, input_shape: Sequence[int],
                calibration: torch.Tensor) -> OrionCompiled:
        """Convert, (first model: set up the scheme and keys), fit ranges on
        ``calibration``, compile, and warm up on a zero image."""
        start = time.perf_counter()
        converted = convert(model, input_shape, self.fuse_classifier)
        levels = self._levels_for(converted)
        orion = import_orion()
        if self.scheme is None:
            if self.ckks is None:
                self.ckks = fitted_ckks_params(self.log_n, levels)
            self.scheme = _scheme(orion, self._orion_config())
        loader = DataLoader(TensorDataset(calibration, torch.zeros(len(calibration))),
                            batch_size=1)
        with _quiet():
            orion.fit(converted.net, loader)
            input_level = orion.compile(converted.net)
        compiled = OrionCompiled(self, converted, input_level)
        compiled.infer(torch.zeros(*input_shape))  # makes the output-rotation keys
        compiled.setup_seconds = time.perf_counter() - start
        return compiled

    def calibrate(self, log_n: int, depth: int | None, repeats: int | None,
                  progress: Callable[[str], None] | None = None) -> Calibration:
        """Orion's primitives and fitted transform prices on the config's ckks_params,
        else the chain fitted at N = 2^log_n for ``depth`` levels (``None``:
        :data:`CALIBRATION_DEPTH`, he-cnn's and he-lenet's); ``repeats`` defaults to 5
        (a dense transform takes up to a second)."""
        from .orion_calibrate import measure_orion_calibration

        ckks = self.ckks or fitted_ckks_params(log_n, depth or CALIBRATION_DEPTH)
        return measure_orion_calibration(ckks, repeats or 5, progress)

    def _orion_config(self) -> dict[str, Any]:
        config = {"ckks_params": self.ckks,
                  "orion": {**ORION_DEFAULTS, **(self.config.get("orion") or {})}}
        if self.boot:
            config["boot_params"] = self.boot
        return config

    def key_bytes(self, galois_element: int) -> int:
        """Bytes of one serialised rotation key (all are the same size)."""
        if self._key_bytes is None:
            backend = self.scheme.backend
            data, pointer = backend.GenerateAndSerializeRotationKey(galois_element)
            self._key_bytes = len(data)
            backend.FreeCArray(pointer)
        return self._key_bytes


#: (config, scheme) of the process's Orion scheme: Lattigo keeps its rotation keys in
#: process-wide state, so a second scheme in one process fails on its first rotation.
_SCHEME: list[tuple[dict[str, Any], Any]] = []


def _scheme(orion, config: dict[str, Any]):
    """Orion's scheme for ``config``: made once per process, shared by equal configs."""
    if _SCHEME:
        made, scheme = _SCHEME[0]
        if made != config:
            raise ParamsError(
                f"Orion runs one scheme per process and this one has ckks_params "
                f"{made['ckks_params']}; compile every model with the same settings "
                f"(asked for {config['ckks_params']})")
        return scheme
    with _quiet():
        scheme = orion.init_scheme(config)
    _SCHEME.append((config, scheme))
    return scheme


class OrionCompiled(CompiledModel):
    """A compiled Orion network; counts what Orion built for it."""

    def __init__(self, engine: OrionEngine, converted: OrionNet, input_level: int) -> None:
        self.engine, self.converted, self.input_level = engine, converted, input_level
        self.output_level: int | None = None
        self._layers = self._count_layers()

    def _count_layers(self) -> dict[str, dict[str, Any]]:
        """Diagonals and Galois elements per linear layer (then frees Orion's Python copy
        of the diagonals: Lattigo holds the encoded ones)."""
        on = import_orion().nn
        backend, layers = self.engine.scheme.backend, {}
        for name, module in self.converted.net.body.named_modules():
            if not isinstance(module, on.LinearTransform):
                continue
            diagonals = sum(1 for block in module.diagonals.values()
                            for values in block.values() if any(values))
            galois = set()
            for transform in module.transform_ids.values():
                galois |= set(backend.GetLinearTransformRotationKeys(transform))
            slots = self.engine.scheme.params.get_slots()
            n = self.engine.scheme.params.get_ring_degree()
            galois |= {pow(5, slots >> i, 2 * n) for i in range(1, module.output_rotations + 1)}
            layers[name] = {"diagonals": diagonals, "blocks": len(module.transform_ids),
                            "output_rotations": module.output_rotations,
                            "level": module.level, "galois": galois}
            module.diagonals = {}
        return layers

    def infer(self, image: torch.Tensor) -> torch.Tensor:
        """Encode at the input level, encrypt, run the network under HE, decrypt."""
        orion = import_orion()
        net = self.converted.net
        try:
            with _quiet():
                ciphertext = orion.encrypt(orion.encode(image.unsqueeze(0).float(),
                                                        self.input_level))
                net.he()
                out = net(ciphertext)
                self.output_level = out.level()
                logits = out.decrypt().decode()
        except (RuntimeError, ValueError) as exc:
            raise SpecError(f"orion failed on this network: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
        return logits.flatten()

    def stats(self) -> dict[str, Any]:
        """Diagonals per layer, rotation keys and their bytes, bootstraps, levels."""
        galois = set().union(*(layer["galois"] for layer in self._layers.values()))
        key_bytes = self.engine.key_bytes(next(iter(galois))) if galois else 0
        params = self.engine.scheme.params
        bootstraps = sum(1 for m in self.converted.net.modules() if hasattr(m, "bootstrapper"))
        return {
            "layers": {name: {k: v for k, v in layer.items() if k != "galois"}
                       | {"rotation_keys": len(layer["galois"])}
                       for name, layer in self._layers.items()},
            "diagonals": sum(layer["diagonals"] for layer in self._layers.values()),
            "rotation_keys": len(galois), "rotation_key_bytes": key_bytes * len(galois),
            "bootstraps": bootstraps, "levels": params.get_max_level(),
            "input_level": self.input_level,
            "levels_used": None if self.output_level is None
            else self.input_level - self.output_level,
            "log_n": params.get_logn(), "log_q": list(params.get_logq()),
            "log_p": list(params.get_logp()), "log_scale": params.get_logscale(),
        }


@hookimpl
def register_engines(register) -> None:
    """Register ``orion``."""
    register(OrionEngine)
