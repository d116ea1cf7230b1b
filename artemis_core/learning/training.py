"""The training loop shared by dense training, regularized training and fine-tuning.

SGD with momentum, weight decay and a per-step cosine schedule, on a
:class:`~torch.utils.data.TensorDataset` batched by index (vectorised: no per-sample
collation). Runs are seeded and deterministic; with ``checkpoint_path`` the full state
is saved after every epoch and a rerun continues from the last finished one with the
same result as an uninterrupted run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset
from tqdm import tqdm

from ..errors import ArtemisError, first_line
from .catalog import subset
from .checkpoint import atomic_save, safe_load

STATE_FORMAT = "artemis-train-state"
#: Inputs up to this many values per sample (digits, synthetic) train on one thread:
#: their convs are too small to parallelise, and on a shared 2-core machine OpenMP
#: threads that wait for a busy core made digits training 10× slower (measured).
SMALL_INPUT = 1024


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (defaults train ``digits-resnet`` on digits)."""

    epochs: int = 15
    lr: float = 0.1
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    #: Random crops and horizontal flips of every batch (:func:`crop_flip`): for natural
    #: images such as CIFAR, not for digits (a flipped digit is another symbol).
    augment: bool = False
    #: Train on this many of the training samples (:func:`~.catalog.subset`: a fixed
    #: seeded draw, the same for every ``seed``); ``None`` for all of them.
    train_subset: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "train_subset"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ArtemisError(f"{name}={getattr(self, name)!r} must be at least 1")
        for name in ("lr", "momentum", "weight_decay"):
            if getattr(self, name) < 0:
                raise ArtemisError(f"{name}={getattr(self, name)!r} must be non-negative")


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did: mean loss and accuracy over its batches, its last lr, time."""

    epoch: int  # 1-based
    loss: float
    train_accuracy: float
    lr: float
    seconds: float


AfterBackward = Callable[[nn.Module], None]
#: ``after_step(model, step, total, lr)``: the run's ``step``-th of ``total`` optimiser
#: steps (1-based, counting resumed epochs) is done, with learning rate ``lr``.
AfterStep = Callable[[nn.Module, int, int, float], None]
EpochEnd = Callable[[nn.Module, EpochRecord], None]


@contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic kernels inside the block (cheap on CPU); the previous setting after."""
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


@contextmanager
def threads_for(sample: torch.Tensor) -> Iterator[None]:
    """One intra-op thread for small inputs (see :data:`SMALL_INPUT`), torch's default
    otherwise; the previous setting after."""
    previous = torch.get_num_threads()
    if sample.numel() <= SMALL_INPUT:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(model: nn.Module, train_set: TensorDataset, config: TrainConfig, *,
          after_backward: AfterBackward | None = None, after_step: AfterStep | None = None,
          epoch_end: EpochEnd | None = None, progress: bool = True,
          checkpoint_path: str | Path | None = None) -> list[EpochRecord]:
    """Train ``model`` in place on ``train_set``; returns one record per epoch.

    ``after_backward(model)`` runs after ``loss.backward()`` and before the optimiser step
    (e.g. to add a regulariser's gradient to ``.grad``); ``after_step`` (see
    :data:`AfterStep`) after the optimiser step (e.g. a proximal step);
    ``epoch_end(model, record)`` after every epoch (and after its state is saved). With
    ``checkpoint_path``, a file left by an interrupted run with the same config is resumed
    from its last finished epoch.
    """
    images, labels = subset(train_set, config.train_subset).tensors
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    batches = -(-len(labels) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs * batches)
    order_rng = torch.Generator().manual_seed(config.seed)
    history: list[EpochRecord] = []
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        history = _resume(checkpoint_path, config, model, optimizer, scheduler, order_rng)
    else:
        torch.manual_seed(config.seed)
    bar = tqdm(total=config.epochs * batches, initial=len(history) * batches, unit="batch",
               disable=not progress, leave=False, dynamic_ncols=True)
    with deterministic(), threads_for(images[0]), bar:
        for epoch in range(len(history) + 1, config.epochs + 1):
            bar.set_description(f"epoch {epoch}/{config.epochs}")
            record = _epoch(model, images, labels, config, optimizer, scheduler, order_rng,
                            (after_backward, after_step), bar, epoch)
            history.append(record)
            bar.set_postfix(loss=f"{record.loss:.3f}", acc=f"{record.train_accuracy:.3f}")
            if checkpoint_path is not None:
                _save_state(checkpoint_path, config, model, optimizer, scheduler, order_rng,
                            history)
            if epoch_end is not None:
                epoch_end(model, record)
    return history


def _epoch(model, images, labels, config, optimizer, scheduler, order_rng, hooks,
           bar, epoch) -> EpochRecord:
    after_backward, after_step = hooks
    total_steps = config.epochs * -(-len(labels) // config.batch_size)
    start = time.perf_counter()
    model.train()
    total_loss = torch.zeros(())
    correct = torch.zeros((), dtype=torch.long)
    for batch in torch.randperm(len(labels), generator=order_rng).split(config.batch_size):
        x, y = images[batch], labels[batch]
        if config.augment:
            x = crop_flip(x, order_rng)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        if after_backward is not None:
            after_backward(model)
        optimizer.step()
        if after_step is not None:
            after_step(model, scheduler.last_epoch + 1, total_steps,
                       optimizer.param_groups[0]["lr"])
        scheduler.step()
        total_loss += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        bar.update()
    return EpochRecord(epoch, total_loss.item() / len(labels), correct.item() / len(labels),
                       optimizer.param_groups[0]["lr"], time.perf_counter() - start)


def crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each N×C×H×W image cropped at a random offset from a zero border of H/8 pixels
    (4 on 32×32, as in He et al. 2016) and flipped left-right with probability ½."""
    n, _, height, width = images.shape
    pad = max(1, height // 8)
    padded = F.pad(images, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # N×H'×W'×C
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    rows = offsets[:, :1] + torch.arange(height)
    cols = offsets[:, 1:] + torch.arange(width)
    flip = torch.rand(n, generator=generator) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    crops = padded[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous()


def _save_state(path, config, model, optimizer, scheduler, order_rng, history) -> None:
    atomic_save({
        "format": STATE_FORMAT, "version": 1, "config": asdict(config),
        "epoch": len(history), "history": [asdict(r) for r in history],
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "order": order_rng.get_state()},
    }, path)


def _resume(path, config, model, optimizer, scheduler, order_rng) -> list[EpochRecord]:
    state = safe_load(path, STATE_FORMAT)
    if state.get("config") != asdict(config):
        raise ArtemisError(f"{str(path)!r} holds a run with config {state.get('config')}, not "
                           f"{asdict(config)}; delete it or choose another checkpoint path")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        order_rng.set_state(state["rng"]["order"])
        torch.set_rng_state(state["rng"]["torch"])
        return [EpochRecord(**r) for r in state["history"]]
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise ArtemisError(f"{str(path)!r} cannot resume this model: {first_line(exc)}") \
            from None


@torch.no_grad()
def evaluate(model: nn.Module, dataset: TensorDataset, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` (in eval mode; its mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    images, labels = dataset.tensors
    with threads_for(images[0]):
        correct = sum(int((model(x).argmax(1) == y).sum())
                      for x, y in zip(images.split(batch_size), labels.split(batch_size),
                                      strict=True))
    model.train(was_training)
    return correct / len(labels)
