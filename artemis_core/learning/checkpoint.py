"""Checkpoints: one ``torch.save``'d dict of plain tensors and JSON-able values.

Layout (``version`` 1)::

    {"format": "artemis-checkpoint", "version": 1, "model": str, "dataset": str,
     "num_classes": int, "input_shape": [C, H, W],
     "state_dict": {name: tensor},   # plain weights (pruning masks already applied)
     "masks": {layer: bool tensor},  # pruned layers' masks, keyed by module name
     "strategy": str | None, "target": float | None, "metrics": {str: number},
     "training": {...} | None}       # optional state to resume training

Files are written atomically and read with ``torch.load(weights_only=True)``, so opening
a checkpoint never runs code from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ArtemisError, first_line
from ..io import atomic_write
from .zoo import build_model

FORMAT = "artemis-checkpoint"
VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A trained (possibly pruned) model and what it was trained for."""

    model: str
    dataset: str
    num_classes: int
    input_shape: tuple[int, int, int]
    state_dict: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    strategy: str | None = None
    target: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] | None = None

    @classmethod
    def from_model(cls, module: nn.Module, *, model: str, dataset: str, num_classes: int,
                   input_shape: tuple[int, int, int], **extra: Any) -> Checkpoint:
        """Capture ``module``'s plain weights and pruning masks (see :func:`plain_state`)."""
        state_dict, masks = plain_state(module)
        return cls(model, dataset, num_classes, tuple(input_shape), state_dict, masks, **extra)


def plain_state(module: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``module``'s state dict with every ``torch.nn.utils.prune`` reparametrisation
    (``weight_orig`` × ``weight_mask``) stored as the effective tensor under its plain
    name, and the masks (bool) keyed by module name; a dense model gives no masks."""
    state = {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}
    masks: dict[str, torch.Tensor] = {}
    for key in [k for k in state if k.endswith("_mask")]:
        original = key[: -len("_mask")] + "_orig"
        if original not in state:
            continue
        plain = key[: -len("_mask")]
        mask = state.pop(key)
        state[plain] = state.pop(original) * mask
        # Masks are per layer: only ``weight`` is pruned by the Artemis strategies.
        layer = plain.rpartition(".")[0] if plain.endswith(".weight") else plain
        masks[layer] = mask.bool()
    return state, masks


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place, so a
    crash never leaves a half-written file under ``path``."""
    with atomic_write(path, binary=True) as stream:
        torch.save(obj, stream)


def safe_load(path: str | Path, expected_format: str) -> dict[str, Any]:
    """The dict in ``path`` (``weights_only=True``), checked to carry ``expected_format``;
    a missing, corrupt or foreign file raises :class:`ArtemisError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ArtemisError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise ArtemisError(f"{str(path)!r} is not a readable {expected_format} file: "
                           f"{first_line(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise ArtemisError(f"{str(path)!r} is not an {expected_format} file")
    return payload


def save(checkpoint: Checkpoint, path: str | Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically."""
    payload = {"format": FORMAT, "version": VERSION, **asdict(checkpoint)}
    payload["input_shape"] = list(checkpoint.input_shape)
    atomic_save(payload, path)


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save` (a newer version is refused)."""
    payload = safe_load(path, FORMAT)
    if payload.get("version") != VERSION:
        raise ArtemisError(f"{str(path)!r} has checkpoint version {payload.get('version')!r}; "
                           f"this Artemis reads version {VERSION}")
    try:
        return Checkpoint(
            model=payload["model"], dataset=payload["dataset"],
            num_classes=int(payload["num_classes"]),
            input_shape=tuple(int(n) for n in payload["input_shape"]),
            state_dict=payload["state_dict"], masks=payload.get("masks") or {},
            strategy=payload.get("strategy"), target=payload.get("target"),
            metrics=payload.get("metrics") or {}, training=payload.get("training"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtemisError(f"{str(path)!r} is an incomplete checkpoint: {exc!r}") from None


def load_model(path: str | Path) -> tuple[nn.Module, Checkpoint]:
    """Rebuild the checkpoint's model from the registry and load its plain weights.

    Pruning masks are returned in ``Checkpoint.masks`` (pruned weights are already zero);
    re-apply them with ``torch.nn.utils.prune`` to keep them fixed while training.
    """
    checkpoint = load(path)
    model = build_model(checkpoint.model, checkpoint.num_classes, checkpoint.input_shape)
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as exc:
        raise ArtemisError(f"{str(path)!r} does not fit model {checkpoint.model!r}: "
                           f"{first_line(exc)}") from None
    model.eval()
    return model, checkpoint
