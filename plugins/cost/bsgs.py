"""The ``bsgs`` cost model: generalized diagonals evaluated baby-step giant-step, as
Orion runs its convolutions on Lattigo's linear transforms.

Design §5b (docs/cost-model.md). The layer is a Toeplitz matrix over Orion's packing
(:mod:`.bsgs_layout`), cut into S×S blocks; a plan is one bool array
``live[block, d]``: the non-zero generalized diagonals under the mask. Each block is one
Lattigo linear transform: with baby-step size N1 its diagonals split into baby steps
{d mod N1} (rotations of the input, hoisted in Lattigo) and giant steps {⌊d/N1⌋·N1}
(rotations of partial sums), so it costs (|baby| − [0 ∈ baby]) + (|giant| − [0 ∈ giant])
rotations and |D| PMults. N1 is re-chosen for the surviving diagonals of every block:
by Lattigo's ``FindBestBSGSRatio`` at the ratio Orion passes (``bsgs``), or as the N1
with the fewest rotations (``bsgs-best``). Counting and :meth:`BsgsPlan.execute` read
the same arrays.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch

from artemis_core import hookimpl
from artemis_core.errors import SpecError
from artemis_core.he.backend import HEBackend, canonical_step
from artemis_core.he.cost_model import CostModel, GroupSavings, LayerPlan, split_at_rescale
from artemis_core.he.latency import Calibration, estimate_seconds
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec, OpCount

from .bsgs_layout import BsgsLayout, bsgs_layout

N1_RULES = ("lattigo", "best")


def orion_log_ratio(bsgs_ratio: float) -> int:
    """The LogBabyStepGiantStepRatio Orion hands Lattigo: ``int(math.Log(ratio))`` —
    a natural logarithm, so Orion's default ratio 2 becomes 0 (N2 ≈ N1)."""
    if not bsgs_ratio >= 1:
        raise SpecError(f"bsgs_ratio={bsgs_ratio!r} must be at least 1 (below, Lattigo "
                        "drops baby-step giant-step altogether)")
    return int(math.log(bsgs_ratio))


def class_counts(live: np.ndarray, slots: int) -> dict[str, np.ndarray]:
    """For every block (rows of ``live`` [B, period]) and every N1 = 2^k, k < log2 S:
    how many baby classes {d mod N1} and giant classes {⌊d/N1⌋} its diagonals occupy,
    and whether class 0 is among them; each [B, log2 S]. Vectorised over blocks and N1
    on the sparse list of live diagonals."""
    blocks = live.shape[0]
    block, d = np.nonzero(live)  # sorted by block, then d
    shifts = np.arange(slots.bit_length() - 1)[:, None]
    base = block[None, :] * slots
    out = {}
    for name, keys in (("giant", base + (d[None, :] >> shifts)),  # already sorted
                       ("baby", np.sort(base + (d[None, :] & ((1 << shifts) - 1)), axis=1))):
        owner, cls = np.divmod(keys, slots)
        new = np.ones(keys.shape, dtype=bool)
        new[:, 1:] = keys[:, 1:] != keys[:, :-1]
        slot = (shifts * blocks + owner).reshape(-1)
        size = len(shifts) * blocks
        out[name] = np.bincount(slot, new.reshape(-1), size).reshape(-1, blocks).T
        out[name + "0"] = np.bincount(slot, (cls == 0).reshape(-1), size).reshape(-1, blocks).T > 0
    return {name: value.astype(np.int64) for name, value in out.items()}


def choose_log_n1(counts: dict[str, np.ndarray], rule: str, log_ratio: int) -> np.ndarray:
    """log2 N1 per block. ``lattigo``: the first N1 = 1, 2, 4, … with
    (|giant| − 1)... as in ``lintrans.FindBestBSGSRatio``: stop where
    (|baby| − 1)/(|giant| − 1) equals 2^log_ratio (take N1) or exceeds it (take N1/2),
    Go's float semantics included (x/0 = +Inf, 0/0 = NaN); else N1 = 1.
    ``best``: the N1 with the fewest rotations (the smallest on ties)."""
    if rule == "best":
        return rotations_at(counts, None).argmin(axis=1)
    baby, giant = counts["baby"] - 1, counts["giant"] - 1
    ratio = 1 << log_ratio
    equal = (giant > 0) & (baby == giant * ratio)
    above = ((giant > 0) & (baby > giant * ratio)) | ((giant == 0) & (baby > 0))
    hit = equal | above
    first = hit.argmax(axis=1)
    rows = np.arange(len(first))
    chosen = np.where(equal[rows, first], first, first - 1)
    return np.where(hit.any(axis=1), np.maximum(chosen, 0), 0)


def rotations_at(counts: dict[str, np.ndarray], log_n1: np.ndarray | None,
                 ) -> np.ndarray:
    """(baby, giant) rotations [B, 2] at the chosen log2 N1 per block, or the total
    rotations [B, K] for every N1 when ``log_n1`` is None."""
    baby = counts["baby"] - counts["baby0"]
    giant = counts["giant"] - counts["giant0"]
    if log_n1 is None:
        return baby + giant
    rows = np.arange(len(log_n1))
    return np.stack([baby[rows, log_n1], giant[rows, log_n1]], axis=1)


def _as_mask(spec: ConvSpec, mask: torch.Tensor | None) -> np.ndarray:
    """Bool [c_out, c_in, taps] from a weight-shaped mask (``None``: dense)."""
    shape = (spec.c_out, spec.c_in, spec.kernel ** 2)
    if mask is None:
        return np.ones(shape, dtype=bool)
    if tuple(mask.shape) != spec.weight_shape:
        raise SpecError(
            f"layer {spec.name!r}: mask shape {tuple(mask.shape)} does not match the weight "
            f"shape {spec.weight_shape}"
        )
    mask = mask.detach()
    return (mask if mask.dtype == torch.bool else mask != 0).reshape(shape).numpy()


class BsgsPlan(LayerPlan):
    """The diagonals, baby steps and giant steps one layer evaluates under one mask."""

    def __init__(self, layout: BsgsLayout, params: HEParams, mask: np.ndarray,
                 rule: str, log_ratio: int) -> None:
        self.layout = layout
        self.spec = layout.spec
        self.params = params
        self.mask = mask  # bool [c_out, c_in, taps]
        live = layout.incidence.live(mask.reshape(-1))
        #: live[block, d]: generalized diagonal d of the block is evaluated.
        self.live = live.reshape(layout.n_blocks, layout.period)
        self.counts = class_counts(self.live, layout.slots)
        #: log2 N1 of every block, and its (baby, giant) rotations [blocks, 2].
        self.log_n1 = choose_log_n1(self.counts, rule, log_ratio)
        self.block_rotations = rotations_at(self.counts, self.log_n1)
        self.rows_live = self.live.any(axis=1).reshape(layout.n_rows, layout.n_cols).any(axis=1)

    def diagonals(self, block: int) -> np.ndarray:
        """Indices of the block's live diagonals, ascending."""
        return np.flatnonzero(self.live[block])

    def steps(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """The block's baby steps {d mod N1} and giant steps {⌊d/N1⌋·N1}, ascending."""
        n1 = 1 << int(self.log_n1[block])
        d = self.diagonals(block)
        return np.unique(d % n1), np.unique(d // n1 * n1)

    @cached_property
    def transform_steps(self) -> frozenset[int]:
        """Rotation steps of the blocks' BSGS (what Orion asks Lattigo keys for, less
        the identity)."""
        slots = self.layout.slots
        parts = [np.concatenate(self.steps(int(b))) for b in np.flatnonzero(self.live.any(axis=1))]
        steps = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        steps = steps[steps != 0]
        canonical = np.where(steps > slots // 2, steps - slots, steps)  # canonical_step
        return frozenset(canonical.tolist())

    def details(self) -> dict[str, Any]:
        """Rotations by BSGS role (baby steps hoistable, giant steps not, the hybrid
        embedding's sum), each live block's N1, and the rotations the best N1 per block
        would need (the second figure beside Lattigo's rule)."""
        live = self.live.any(axis=1)
        best = rotations_at(self.counts, choose_log_n1(self.counts, "best", 0))[live].sum()
        other = len(self.layout.output_steps) if self.rows_live.any() else 0
        return {
            "embedding": "hybrid" if self.layout.hybrid else "square",
            "blocks": self.layout.n_blocks,
            "baby_rotations": int(self.block_rotations[:, 0].sum()),
            "giant_rotations": int(self.block_rotations[:, 1].sum()),
            "hybrid_rotations": other,
            "rotations_best_n1": int(best) + other,
            "n1": [1 << int(k) for k in self.log_n1[live]],
        }

    @cached_property
    def diagonals_per_block(self) -> np.ndarray:
        """Live diagonals of each block (its transform's products)."""
        return self.live.sum(axis=1)

    @cached_property
    def row_sum_adds(self) -> int:
        """Additions that sum each output row's live blocks."""
        lay = self.layout
        per_row = (self.diagonals_per_block > 0).reshape(lay.n_rows, lay.n_cols).sum(axis=1)
        return int(np.maximum(per_row - 1, 0).sum())

    def counts_around_rescale(self) -> tuple[OpCount, OpCount]:
        """The blocks' transforms before each output row's rescale; the hybrid
        embedding's rotate-and-sum and the bias after it. Read off the plan's arrays."""
        lay = self.layout
        per_block = self.diagonals_per_block
        rows = int(self.rows_live.sum())
        other = len(lay.output_steps) if rows else 0
        before = OpCount(
            input_rotations=int(self.block_rotations[:, 0].sum()),
            output_rotations=int(self.block_rotations[:, 1].sum()),
            pmult=int(per_block.sum()),
            adds=int(np.maximum(per_block - 1, 0).sum()) + self.row_sum_adds,
            rescales=rows,
            rotation_steps=self.transform_steps,
        )
        after = OpCount(
            other_rotations=rows * other,
            adds=rows * other + (rows if self.spec.bias else 0),
            rotation_steps=frozenset(canonical_step(s, lay.slots) for s in lay.output_steps)
            if other else frozenset(),
        )
        return before, after

    def estimated_seconds(self, level: int, calibration: Calibration) -> float:
        """With transform prices (an engine that runs each live block as one hoisted
        Lattigo transform, as Orion does): every block priced as a transform of its
        diagonals and baby / giant rotations, plus the row sums, rescales, hybrid
        rotate-and-sum and bias at their levels; else every operation at its price."""
        if calibration.transform is None:
            return super().estimated_seconds(level, calibration)
        before, after = self.counts_around_rescale()
        outside = OpCount(adds=self.row_sum_adds, rescales=before.rescales)
        per_block = self.diagonals_per_block
        return (sum(calibration.price_transform(level, int(per_block[b]),
                                                *map(int, self.block_rotations[b]))
                    for b in np.flatnonzero(per_block))
                + estimate_seconds(split_at_rescale(level, outside, after), calibration))

    def pack(self, x: torch.Tensor) -> list[np.ndarray]:
        """Slot vectors of input ``x`` (C_in×h×w, or C_in for a linear layer) in Orion's
        multiplexed layout, cut into ciphertexts of S slots."""
        lay, spec = self.layout, self.spec
        x = x.detach().to(torch.float64).reshape(spec.c_in, -1).numpy()
        flat = np.zeros(lay.n_cols * lay.slots)
        flat[lay.input_slots()] = x
        return list(flat.reshape(lay.n_cols, lay.slots))

    def unpack(self, slots: list[np.ndarray | None]) -> torch.Tensor:
        """Output C_out×h'×w' (C_out for a linear layer) read from the packed output
        slots; ``None`` is an output ciphertext that is all zero."""
        lay, spec = self.layout, self.spec
        if len(slots) != lay.n_rows:
            raise SpecError(f"layer {spec.name!r}: got {len(slots)} output vectors, "
                            f"expected {lay.n_rows}")
        flat = np.concatenate([np.zeros(lay.slots) if s is None else np.asarray(s)[: lay.slots]
                               for s in slots])
        out = torch.from_numpy(flat[lay.output_slots()].copy())
        if spec.kind == "linear":
            return out.reshape(spec.c_out)
        return out.reshape(spec.c_out, *lay.out_size)

    def _plaintexts(self, weight: torch.Tensor) -> dict[tuple[int, int], np.ndarray]:
        """The slot vector of every live diagonal, keyed (block, d), pre-rotated by the
        −giant step of its BSGS class."""
        lay, spec = self.layout, self.spec
        if tuple(weight.shape) != spec.weight_shape:
            raise SpecError(f"layer {spec.name!r}: weight shape {tuple(weight.shape)}, "
                            f"expected {spec.weight_shape}")
        w = weight.detach().to(torch.float64).reshape(-1).numpy()
        index, block, diagonal, slot = lay.entries(self.mask)
        live_ids = np.flatnonzero(self.live.reshape(-1))
        values = np.zeros((len(live_ids), lay.slots))
        row = np.searchsorted(live_ids, block * lay.period + diagonal)
        values[row, slot] = w[index]
        blocks, diagonals = live_ids // lay.period, live_ids % lay.period
        giants = diagonals >> self.log_n1[blocks] << self.log_n1[blocks]
        return {(int(b), int(d)): np.roll(values[k], int(j))
                for k, (b, d, j) in enumerate(zip(blocks, diagonals, giants, strict=True))}

    def _bias_plaintext(self, bias: torch.Tensor, row: int) -> np.ndarray:
        """Bias of every output value at its packed slot in output ciphertext ``row``."""
        lay = self.layout
        flat = np.zeros(lay.n_rows * lay.slots)
        values = bias.detach().to(torch.float64).numpy()
        slots = lay.output_slots()
        flat[slots] = np.broadcast_to(values[:, None], slots.shape)
        return flat[row * lay.slots: (row + 1) * lay.slots]

    def execute(self, backend: HEBackend, inputs: list[Any], weight: torch.Tensor,
                bias: torch.Tensor | None = None) -> list[Any]:
        """Run the plan: per block, rotate the input by its baby steps, multiply and
        accumulate each giant step's diagonals (pre-rotated by −giant), rotate the sum by
        the giant step; add the blocks of a row, rescale, rotate-and-sum the hybrid
        embedding, add the bias. Rows with no live diagonal come back as ``None``."""
        lay, spec, s = self.layout, self.spec, self.layout.slots
        if len(inputs) != lay.n_cols:
            raise SpecError(f"layer {spec.name!r}: got {len(inputs)} input ciphertexts, "
                            f"expected {lay.n_cols}")
        if (bias is not None) != spec.bias:
            raise SpecError(f"layer {spec.name!r}: spec says bias={spec.bias} but "
                            f"{'a' if bias is not None else 'no'} bias was given")
        plaintexts = self._weight_plaintexts(weight, lambda: self._plaintexts(weight))
        outputs: list[Any] = []
        for row in range(lay.n_rows):
            total = None
            for col in range(lay.n_cols):
                block = row * lay.n_cols + col
                partial = self._block(backend, block, inputs[col], plaintexts)
                if partial is not None:
                    total = partial if total is None else backend.add(total, partial)
            if total is not None:
                total = backend.rescale(total)
                with backend.rotation_purpose("other"):
                    for step in lay.output_steps:
                        total = backend.add(total, backend.rotate(total, canonical_step(step, s)))
                if bias is not None:
                    total = backend.add_plain(total, self._bias_plaintext(bias, row))
            outputs.append(total)
        return outputs

    def _block(self, backend: HEBackend, block: int, x: Any,
               plaintexts: dict[tuple[int, int], np.ndarray]) -> Any:
        """One block's BSGS linear transform on input ciphertext ``x`` (None if empty)."""
        diagonals = self.diagonals(block)
        if not len(diagonals):
            return None
        s = self.layout.slots
        n1 = 1 << int(self.log_n1[block])
        babies, giants = self.steps(block)
        rotated = {0: x}
        with backend.rotation_purpose("input"):
            for i in babies[babies > 0].tolist():
                rotated[i] = backend.rotate(x, canonical_step(i, s))
        total = None
        for j in giants.tolist():
            partial = None
            for d in diagonals[diagonals // n1 * n1 == j].tolist():
                product = backend.multiply_plain(rotated[d - j], plaintexts[block, d])
                partial = product if partial is None else backend.add(partial, product)
            if j:
                with backend.rotation_purpose("output"):
                    partial = backend.rotate(partial, canonical_step(j, s))
            total = partial if total is None else backend.add(total, partial)
        return total


class BsgsCostModel(CostModel):
    """Orion's convolution: Toeplitz blocks of generalized diagonals, each evaluated
    baby-step giant-step with N1 as Lattigo chooses it for Orion's ratio."""

    name = "bsgs"
    description = ("Orion/Lattigo: Toeplitz diagonals per S×S block, baby-step giant-step "
                   "(N1 by Lattigo's rule at Orion's ratio)")
    group_kinds = ("positional", "diagonal", "baby-step", "giant-step", "block")
    fuses_classifier = True  # Orion's default: pool + linear as one transform
    n1_rule: ClassVar[str] = "lattigo"

    def __init__(self, bsgs_ratio: float = 2.0, embedding: str = "hybrid") -> None:
        self.bsgs_ratio = bsgs_ratio
        self.log_ratio = orion_log_ratio(bsgs_ratio)
        self.embedding = embedding

    def layout(self, spec: ConvSpec, params: HEParams) -> BsgsLayout:
        """The packing of ``spec`` under this model's embedding."""
        return bsgs_layout(spec, params, self.embedding)

    def plan(self, spec: ConvSpec, params: HEParams,
             mask: torch.Tensor | None = None) -> BsgsPlan:
        """The plan for ``spec`` under ``mask`` (weight-shaped, 0 = pruned)."""
        return BsgsPlan(self.layout(spec, params), params, _as_mask(spec, mask),
                        self.n1_rule, self.log_ratio)

    def group_index(self, spec: ConvSpec, params: HEParams, kind: str) -> torch.Tensor:
        """Groups of ``kind`` as flat weight indices [G, M], -1 padded: within the block
        where the channels start, ``positional`` = one tap over all channel pairs,
        ``diagonal`` = one channel diagonal (channel pairs on the same generalized
        diagonals) over all taps, ``baby-step`` / ``giant-step`` = one class
        {d ≡ r mod N1} / {⌊d/N1⌋ = j} of the dense plan's N1, ``block`` = the whole block."""
        lay = self.layout(spec, params)
        home = lay.home_blocks()[:, :, None]  # [o, i, 1]
        shape = (spec.c_out, spec.c_in, lay.taps)
        if kind == "positional":
            key = home * lay.taps + np.arange(lay.taps)[None, None, :]
        elif kind == "diagonal":
            channel = (lay.col_base[None, :] - lay.row_base[:, None]) % lay.period
            key = home * lay.period + channel[:, :, None]
        elif kind in ("baby-step", "giant-step"):
            n1 = 1 << self.plan(spec, params).log_n1[home]
            d = lay.diagonal_offset % lay.period
            key = home * lay.slots + (d % n1 if kind == "baby-step" else d // n1)
        elif kind == "block":
            key = home
        else:
            raise SpecError(f"group kind {kind!r}; allowed: {', '.join(self.group_kinds)}")
        return _rows(np.broadcast_to(key, shape).reshape(-1))

    def group_savings(self, spec: ConvSpec, params: HEParams,
                      index: torch.Tensor) -> GroupSavings:
        """Exact ops saved by zeroing each group alone in a dense layer: the diagonals
        it empties, and per block the rotations lost after N1 is re-chosen for the
        diagonals that are left (not additive over groups)."""
        lay = self.layout(spec, params)
        dense = self.plan(spec, params)
        n_groups = index.shape[0]
        numel = spec.c_out * spec.c_in * lay.taps
        group, product = _emptied_products(lay, index, numel)
        pmult = np.bincount(group, minlength=n_groups)
        block, d = product // lay.period, product % lay.period
        pair_key, pair = np.unique(group * lay.n_blocks + block, return_inverse=True)
        pair_group, pair_block = pair_key // lay.n_blocks, pair_key % lay.n_blocks
        after = _counts_after(dense, pair, pair_block, d, len(pair_key))
        log_n1 = choose_log_n1(after, self.n1_rule, self.log_ratio)
        saved = (dense.block_rotations[pair_block].sum(axis=1)
                 - rotations_at(after, log_n1).sum(axis=1))
        rotations = np.bincount(pair_group, weights=saved, minlength=n_groups).astype(np.int64)
        everything = int(dense.live.sum())
        if lay.output_steps and everything:  # the hybrid sum goes only with every diagonal
            rotations = rotations + len(lay.output_steps) * (pmult == everything)
        return GroupSavings(rotations=rotations, pmult=pmult.astype(np.int64))


class BsgsBestCostModel(BsgsCostModel):
    """As ``bsgs``, with every block's N1 the one that needs the fewest rotations for
    its surviving diagonals (what a planner free of Lattigo's ratio rule would pick)."""

    name = "bsgs-best"
    description = "as bsgs, with the N1 that minimises each block's rotations"
    n1_rule = "best"


def _rows(key: np.ndarray) -> torch.Tensor:
    """Group index [G, M] from a group key per flat weight (groups in key order, weights
    ascending, rows padded with -1)."""
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = inverse[order]
    index = np.full((len(counts), int(counts.max())), -1, dtype=np.int64)
    index[owner, np.arange(len(order)) - starts[owner]] = order
    return torch.from_numpy(index)


def _emptied_products(lay: BsgsLayout, index: torch.Tensor,
                      numel: int) -> tuple[np.ndarray, np.ndarray]:
    """(group, product) pairs where the group holds every weight that feeds the product."""
    rows = index.numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
    group = np.broadcast_to(np.arange(rows.shape[0])[:, None], rows.shape)[rows >= 0]
    weight = rows[rows >= 0]
    if weight.size and int(weight.max()) >= numel:
        raise SpecError(f"layer {lay.spec.name!r}: group index {int(weight.max())} out of "
                        f"range for {numel} weights")
    inc = lay.incidence
    pairs = np.unique(group.astype(np.int64) * numel + weight)  # a weight listed twice once
    group, weight = pairs // numel, pairs % numel
    start = np.searchsorted(inc.weight, weight, "left")
    count = np.searchsorted(inc.weight, weight, "right") - start
    entry = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
    keys, held = np.unique(np.repeat(group, count) * lay.n_products + inc.product[entry],
                           return_counts=True)
    group, product = keys // lay.n_products, keys % lay.n_products
    full = held == inc.per_product[product]
    return group[full], product[full]


def _counts_after(dense: BsgsPlan, pair: np.ndarray, pair_block: np.ndarray,
                  d: np.ndarray, n_pairs: int) -> dict[str, np.ndarray]:
    """Class counts (see :func:`class_counts`) of each (group, block) pair's block once
    the group's emptied diagonals ``d`` (one per entry of ``pair``) are gone."""
    lay = dense.layout
    blocks, live_d = np.nonzero(dense.live)
    out = {name: dense.counts[name][pair_block].copy() for name in dense.counts}
    for k in range(lay.slots.bit_length() - 1):
        n1 = 1 << k
        for name, classes, width in (("baby", d % n1, n1), ("giant", d // n1, lay.slots >> k)):
            held = np.bincount(blocks * width + (live_d % n1 if name == "baby" else live_d // n1),
                               minlength=lay.n_blocks * width)
            keys, removed = np.unique(pair * width + classes, return_counts=True)
            who, cls = keys // width, keys % width
            emptied = removed == held[pair_block[who] * width + cls]
            out[name][:, k] -= np.bincount(who[emptied], minlength=n_pairs)
            zero = np.zeros(n_pairs, dtype=bool)
            zero[who[emptied & (cls == 0)]] = True
            out[name + "0"][:, k] &= ~zero
    return out


@hookimpl
def register_cost_models(register) -> None:
    """Register the ``bsgs`` and ``bsgs-best`` cost models."""
    register(BsgsCostModel)
    register(BsgsBestCostModel)
