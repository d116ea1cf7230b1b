"""The engine plugin interface: compile a whole trained model and run it encrypted.

An :class:`Engine` turns a torch model into a :class:`CompiledModel` that classifies one
image end to end under HE (encrypt, evaluate, decrypt). :func:`run_engine` measures
several compiled models on the same images in one interleaved loop (image 1 on every
model, then image 2, ...), so that a machine shared with other work slows them alike
and their latency ratio is fair; CPU seconds of the process are reported beside wall
seconds for the same reason.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm import tqdm

from ..errors import ArtemisError
from ..he.latency import Calibration
from ..registry import declare_kind


class CompiledModel(ABC):
    """One model compiled by an engine, keys made, ready to classify encrypted images."""

    #: seconds spent compiling, making keys and warming up (one inference on zeros)
    setup_seconds: float = 0.0

    @abstractmethod
    def infer(self, image: torch.Tensor) -> torch.Tensor:
        """The logits of one C×H×W image, encrypted, evaluated and decrypted."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """What the engine measured about the compiled program (JSON-ready): at least
        ``rotation_keys``, ``rotation_key_bytes`` and ``levels``; ``threads`` when it
        uses fewer than the process may."""


class Engine(ABC):
    """An encrypted-inference engine (plugin kind ``engine``).

    ``config`` holds the engine's own settings (its CKKS parameters...); every engine
    validates it in its constructor, before any model is compiled.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: the cost model whose counts this engine executes: models are pruned under it
    cost_model: ClassVar[str] = "gazelle"
    #: the strategy ``artemis infer --engine`` prunes with by default
    strategy: ClassVar[str] = "diagonal"
    #: the columns of ``artemis infer``'s table this engine's stats fill
    #: (:data:`artemis_core.cli.engine_infer.STAT_COLUMNS` names them all)
    columns: ClassVar[tuple[str, ...]] = ("keys", "key_MB", "levels")

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    @abstractmethod
    def check(self, model: nn.Module, input_shape: Sequence[int]) -> None:
        """Raise a one-line :class:`~artemis_core.errors.ArtemisError` if ``model`` cannot
        run on this engine (an unsupported layer, a chain too short...): cheap, no keys."""

    def held_bytes(self, model: nn.Module, input_shape: Sequence[int]) -> int:
        """Memory the compiled ``model`` will hold (keys, encoded weights), estimated
        without making keys; 0 when the engine cannot tell."""
        return 0

    def calibrate(self, log_n: int, depth: int | None, repeats: int | None,
                  progress: Callable[[str], None] | None = None) -> Calibration:
        """Time this engine's operations at every level of a chain of ``depth`` rescales
        at N = 2^log_n, ``repeats`` times each (``None``: the engine's defaults), for the
        latency model (``progress(what)`` after each measurement); engines
        without a calibration are priced with our program's."""
        raise ArtemisError(f"engine {self.name!r} cannot calibrate; its predictions use "
                           "the artemis engine's prices")

    @abstractmethod
    def compile(self, model: nn.Module, input_shape: Sequence[int],
                calibration: torch.Tensor) -> CompiledModel:
        """Compile ``model`` for C×H×W inputs; ``calibration`` (a batch of inputs) is
        what engines that fit activation ranges run in plaintext first."""


@dataclass(frozen=True)
class EngineRun:
    """Accuracy, agreement and latency of one model on one engine, plus its stats."""

    label: str
    engine: str
    images: int
    plain_accuracy: float
    encrypted_accuracy: float
    agreement: float
    max_logit_error: float
    seconds_per_image: float
    cpu_seconds_per_image: float
    threads: int
    setup_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def available_threads() -> int:
    """CPU threads this process may use (Go's GOMAXPROCS when set, else the affinity)."""
    if os.environ.get("GOMAXPROCS", "").isdigit():
        return int(os.environ["GOMAXPROCS"])
    return len(os.sched_getaffinity(0))


def run_engine(engine: Engine, models: Sequence[tuple[str, nn.Module]], images: torch.Tensor,
               labels: torch.Tensor, calibration: torch.Tensor,
               progress: bool = True) -> list[EngineRun]:
    """Compile every (label, model) on ``engine`` (all checked first), then classify each
    image on every model in turn; returns one :class:`EngineRun` per model."""
    shape = tuple(images.shape[1:])
    for _, model in models:
        engine.check(model.eval(), shape)
    check_memory([engine.held_bytes(model, shape) for _, model in models])
    compiled, plain = [], []
    for _, model in models:
        compiled.append(engine.compile(model.eval(), shape, calibration))
        with torch.no_grad():
            plain.append(model(images).double())
    logits: list[list[torch.Tensor]] = [[] for _ in models]
    wall, cpu = [0.0] * len(models), [0.0] * len(models)
    for image in tqdm(images, desc=f"encrypted inference ({engine.name})", unit="image",
                      disable=not progress, leave=False, dynamic_ncols=True):
        for k, program in enumerate(compiled):
            start, start_cpu = time.perf_counter(), time.process_time()
            logits[k].append(program.infer(image).double().flatten())
            wall[k] += time.perf_counter() - start
            cpu[k] += time.process_time() - start_cpu
    n, threads = len(labels), available_threads()
    runs = []
    for k, (label, _) in enumerate(models):
        encrypted, stats = torch.stack(logits[k]), compiled[k].stats()
        runs.append(EngineRun(
            label=label, engine=engine.name, images=n,
            plain_accuracy=_share(plain[k].argmax(1) == labels),
            encrypted_accuracy=_share(encrypted.argmax(1) == labels),
            agreement=_share(encrypted.argmax(1) == plain[k].argmax(1)),
            max_logit_error=float((encrypted - plain[k]).abs().max()),
            seconds_per_image=wall[k] / n, cpu_seconds_per_image=cpu[k] / n,
            threads=stats.get("threads", threads), setup_seconds=compiled[k].setup_seconds,
            stats=stats,
        ))
    return runs


def check_memory(needed: Sequence[int]) -> None:
    """Refuse, before any key is made, models whose compiled forms together would hold
    more than the memory this machine has available (they are measured side by side)."""
    total = sum(needed)
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if total > available:
        raise ArtemisError(
            f"encrypted inference of {len(needed)} models side by side would hold about "
            f"{total / 1e9:.1f} GB (encoded weights and rotation keys), more than the "
            f"{available / 1e9:.1f} GB available; measure fewer models at once or a "
            "smaller N")


def _share(hits: torch.Tensor) -> float:
    return float(hits.double().mean())


declare_kind("engine", Engine)
