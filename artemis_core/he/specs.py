"""Value types the HE planner works with: layer specs and operation counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..errors import SpecError


@dataclass(frozen=True)
class ConvSpec:
    """One layer as the HE planner sees it.

    ``height``/``width`` are the layer's input size in valid pixels; ``gap`` is their
    spacing on the slot grid (1 when compact, doubled after each stride-2 layer). A
    linear layer is a ``kind="linear"`` spec with ``kernel=1`` and ``height=width=1``.
    ``bias`` says whether the layer adds a bias. ``layout_channels`` is max(C_in, C_out)
    of the layer whose encrypted output this layer reads, which fixes the input's slot
    layout (0: the input is packed afresh for this layer).
    """

    name: str
    c_in: int
    c_out: int
    kernel: int = 3
    stride: int = 1
    padding: int = 1
    height: int = 1
    width: int = 1
    gap: int = 1
    groups: int = 1
    kind: str = "conv"
    bias: bool = False
    layout_channels: int = 0

    def __post_init__(self) -> None:
        for f in ("c_in", "c_out", "kernel", "stride", "height", "width", "gap", "groups"):
            value = getattr(self, f)
            if not isinstance(value, int) or value < 1:
                raise SpecError(f"layer {self.name!r}: {f}={value!r} must be a positive integer")
        if not isinstance(self.layout_channels, int) or not (
                self.layout_channels == 0 or self.layout_channels >= self.c_in):
            raise SpecError(
                f"layer {self.name!r}: layout_channels={self.layout_channels!r} must be 0 "
                f"(fresh input) or at least c_in={self.c_in} (its producer's max(C_in, C_out))"
            )
        if self.kind not in ("conv", "linear"):
            raise SpecError(f"layer {self.name!r}: kind={self.kind!r}; allowed: conv, linear")

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the layer's weight tensor in torch's layout."""
        if self.kind == "linear":
            return (self.c_out, self.c_in)
        return (self.c_out, self.c_in, self.kernel, self.kernel)


@dataclass(frozen=True)
class OpCount:
    """HE operations of a layer or model; adds up with ``+``.

    ``rotations`` counts key switches (what costs time), split by purpose:
    ``input_rotations`` (positional, one per used kernel tap of an input ciphertext),
    ``output_rotations`` (diagonal, one per used channel diagonal of an output block) and
    ``other_rotations`` (layout changes, pooling, ...). ``rotation_steps`` is the set of
    distinct steps, i.e. the rotation keys a client must generate.
    """

    input_rotations: int = 0
    output_rotations: int = 0
    other_rotations: int = 0
    pmult: int = 0
    cmult: int = 0
    adds: int = 0
    rescales: int = 0
    rotation_steps: frozenset[int] = field(default_factory=frozenset)

    @property
    def rotations(self) -> int:
        """All key-switching rotations."""
        return self.input_rotations + self.output_rotations + self.other_rotations

    @property
    def keys(self) -> int:
        """Number of distinct rotation keys needed."""
        return len(self.rotation_steps)

    def __add__(self, other: OpCount) -> OpCount:
        if not isinstance(other, OpCount):
            return NotImplemented
        merged = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "rotation_steps"
        }
        return OpCount(**merged, rotation_steps=self.rotation_steps | other.rotation_steps)

    def as_dict(self) -> dict[str, int | list[int]]:
        """Plain JSON-ready dict, derived totals included."""
        out: dict[str, int | list[int]] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "rotation_steps"
        }
        out["rotations"] = self.rotations
        out["keys"] = self.keys
        out["rotation_steps"] = sorted(self.rotation_steps)
        return out


#: Operations by the level (rescales left) of the ciphertexts they run on.
LevelCounts = Mapping[int, OpCount]


def add_levels(*parts: LevelCounts) -> dict[int, OpCount]:
    """Level-wise sum of per-level counts, levels in ascending order."""
    total: dict[int, OpCount] = {}
    for part in parts:
        for level, ops in part.items():
            total[level] = total.get(level, OpCount()) + ops
    return dict(sorted(total.items()))
