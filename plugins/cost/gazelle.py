"""The ``gazelle`` cost model: channel-packed convolution with diagonal accumulation.

Design §5 (docs/cost-model.md). A plan is one bool array, ``live[O, j, tap, d]``: which
plaintext products are performed. Every count (input rotations (j, tap), output
rotations (O, d), the folds of a wide layer's output blocks, additions, rescales,
rotation keys) is read off that array, and
:meth:`GazellePlan.execute` walks exactly the same array on a backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from artemis_core import hookimpl
from artemis_core.errors import SpecError
from artemis_core.he.backend import HEBackend
from artemis_core.he.cost_model import CostModel, GroupSavings, LayerPlan
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec, OpCount

from .gazelle_layout import GazelleLayout, gazelle_layout


def _as_mask(spec: ConvSpec, mask: torch.Tensor | None) -> torch.Tensor:
    """Bool [c_out, c_in, taps] from a weight-shaped mask (``None``: dense)."""
    shape = (spec.c_out, spec.c_in, spec.kernel ** 2)
    if mask is None:
        return torch.ones(shape, dtype=torch.bool)
    if tuple(mask.shape) != spec.weight_shape:
        raise SpecError(
            f"layer {spec.name!r}: mask shape {tuple(mask.shape)} does not match the weight "
            f"shape {spec.weight_shape}"
        )
    mask = mask.detach()
    return (mask if mask.dtype == torch.bool else mask != 0).reshape(shape)


class GazellePlan(LayerPlan):
    """The products, rotations and sums one layer performs under one mask."""

    def __init__(self, layout: GazelleLayout, params: HEParams, mask: torch.Tensor) -> None:
        self.layout = layout
        self.spec = layout.spec
        self.params = params
        self.mask = mask  # bool [c_out, c_in, taps]
        #: live[O, j, tap, d]: the product of input ciphertext j, rotated by the tap, with
        #: the d-th diagonal of weight block (O, j) is performed.
        self.live = layout.live_products(mask.numpy())
        #: input_live[j, tap]: input rotations performed (the centre tap is free).
        self.input_live = self.live.any(axis=(0, 3))
        self.input_live[:, layout.centre] = False
        #: sums_live[O, d]: partial sums P[O, d] that receive at least one product.
        self.sums_live = self.live.any(axis=(1, 2))
        #: blocks_live[O]: output ciphertexts that are computed (the rest are zero).
        self.blocks_live = self.sums_live.any(axis=1)

    def counts_around_rescale(self) -> tuple[OpCount, OpCount]:
        """The products, sums and diagonal rotations before each output block's rescale;
        the folds and the bias after it. Read off the plan's arrays."""
        lay, sums = self.layout, self.sums_live
        n_blocks = int(self.blocks_live.sum())
        steps = {lay.shifts[t] for t in np.flatnonzero(self.input_live.any(axis=0))}
        steps |= {lay.output_step(d) for d in np.flatnonzero(sums[:, 1:].any(axis=0)) + 1}
        folds = n_blocks * len(lay.fold_steps)
        products_per_sum = self.live.sum(axis=(1, 2))
        adds = (int(np.maximum(products_per_sum - 1, 0).sum())
                + int(np.maximum(sums.sum(axis=1) - 1, 0).sum()))
        before = OpCount(
            input_rotations=int(self.input_live.sum()),
            output_rotations=int(sums[:, 1:].sum()),
            pmult=int(self.live.sum()),
            adds=adds,
            rescales=n_blocks,
            rotation_steps=frozenset(int(step) for step in steps),
        )
        after = OpCount(
            other_rotations=folds,
            adds=folds + (n_blocks if self.spec.bias else 0),
            rotation_steps=frozenset(lay.fold_steps) if n_blocks else frozenset(),
        )
        return before, after

    def pack(self, x: torch.Tensor) -> list[np.ndarray]:
        """Slot vectors of input ``x`` (C_in×h×w, or C_in for a linear layer), laid out
        with the input period q and replicated over the ciphertext."""
        lay, spec = self.layout, self.spec
        x = x.detach().to(torch.float64).reshape(spec.c_in, spec.height, spec.width).numpy()
        q = lay.in_period
        blocks = np.zeros((lay.n_in * q, lay.hw))
        slots = lay.pixel_slots(np.arange(spec.height), np.arange(spec.width)).reshape(-1)
        blocks[: spec.c_in, slots] = x.reshape(spec.c_in, -1)
        copies = lay.regions // q
        return [np.tile(b.reshape(-1), copies) for b in blocks.reshape(-1, q * lay.hw)]

    def unpack(self, slots: list[np.ndarray | None]) -> torch.Tensor:
        """Output C_out×h'×w' (C_out for a linear layer) read from the first copy of each
        output ciphertext at the stride positions; ``None`` is a block that is all zero."""
        lay, spec = self.layout, self.spec
        if len(slots) != lay.n_out:
            raise SpecError(f"layer {spec.name!r}: got {len(slots)} output vectors, "
                            f"expected {lay.n_out}")
        p, hw = lay.period, lay.hw
        zero = np.zeros(p * hw)
        regions = np.concatenate([
            (zero if s is None else np.asarray(s)[: p * hw]).reshape(p, hw) for s in slots
        ])
        out = torch.from_numpy(regions[: spec.c_out][:, lay.output_slots.reshape(-1)].copy())
        if spec.kind == "linear":
            return out.reshape(spec.c_out)
        return out.reshape(spec.c_out, *lay.output_slots.shape)

    def _weights(self, weight: torch.Tensor) -> np.ndarray:
        """Masked weights zero-padded to [n_out·p, n_in·q, taps]."""
        lay, spec = self.layout, self.spec
        if tuple(weight.shape) != spec.weight_shape:
            raise SpecError(f"layer {spec.name!r}: weight shape {tuple(weight.shape)}, "
                            f"expected {spec.weight_shape}")
        w = weight.detach().to(torch.float64).reshape(self.mask.shape) * self.mask
        padded = np.zeros((lay.n_out * lay.period, lay.n_in * lay.in_period, lay.taps))
        padded[: spec.c_out, : spec.c_in] = w.numpy()
        return padded

    def _plaintext(self, w: np.ndarray, o: int, j: int, tap: int, d: int) -> np.ndarray:
        """Mask of product (O, j, tap, d): W[O·p + (s+d) mod p, j·q + s mod q, tap] over
        region s, at the output pixels where the tap reads a valid pixel, in every copy."""
        lay = self.layout
        p, q = lay.period, lay.in_period
        s = np.arange(lay.pattern)
        values = w[o * p + (s + d) % p, j * q + s % q, tap]
        block = values[:, None] * lay.tap_masks[tap][None, :]
        return np.tile(block.reshape(-1), lay.regions // lay.pattern)

    def _bias_plaintext(self, bias: torch.Tensor, o: int) -> np.ndarray:
        """Bias of output block O at its valid output pixels, in every copy."""
        lay, p = self.layout, self.layout.period
        values = np.zeros(p)
        chunk = bias.detach().to(torch.float64).numpy()[o * p: (o + 1) * p]
        values[: len(chunk)] = chunk
        pixels = np.zeros(lay.hw)
        pixels[lay.output_slots.reshape(-1)] = 1.0
        return np.tile((values[:, None] * pixels[None, :]).reshape(-1), lay.regions // p)

    def execute(self, backend: HEBackend, inputs: list[Any], weight: torch.Tensor,
                bias: torch.Tensor | None = None) -> list[Any]:
        """Run the plan: rotate inputs per tap, multiply-accumulate each diagonal, rotate
        diagonals into place, rescale once per output block, fold a wide layer's partial
        outputs (then add the bias). Fully pruned output blocks come back as ``None``."""
        lay, spec = self.layout, self.spec
        if len(inputs) != lay.n_in:
            raise SpecError(f"layer {spec.name!r}: got {len(inputs)} input ciphertexts, "
                            f"expected {lay.n_in}")
        if (bias is not None) != spec.bias:
            raise SpecError(f"layer {spec.name!r}: spec says bias={spec.bias} but "
                            f"{'a' if bias is not None else 'no'} bias was given")
        w = self._weights(weight)
        plaintexts = self._weight_plaintexts(weight, lambda: {
            (o, j, tap, d): self._plaintext(w, o, j, tap, d)
            for o, j, tap, d in np.argwhere(self.live).tolist()})
        rotated: dict[tuple[int, int], Any] = {(j, lay.centre): x for j, x in enumerate(inputs)}
        with backend.rotation_purpose("input"):
            for j, tap in np.argwhere(self.input_live).tolist():
                rotated[j, tap] = backend.rotate(inputs[j], lay.shifts[tap])
        outputs: list[Any] = []
        for o in range(lay.n_out):
            total = None
            for d in np.flatnonzero(self.sums_live[o]).tolist():
                partial = None
                for j, tap in np.argwhere(self.live[o, :, :, d]).tolist():
                    product = backend.multiply_plain(rotated[j, tap], plaintexts[o, j, tap, d])
                    partial = product if partial is None else backend.add(partial, product)
                if d:
                    with backend.rotation_purpose("output"):
                        partial = backend.rotate(partial, lay.output_step(d))
                total = partial if total is None else backend.add(total, partial)
            if total is not None:
                total = backend.rescale(total)
                with backend.rotation_purpose("other"):
                    for step in lay.fold_steps:
                        total = backend.add(total, backend.rotate(total, step))
                if bias is not None:
                    total = backend.add_plain(total, self._bias_plaintext(bias, o))
            outputs.append(total)
        return outputs


class GazelleCostModel(CostModel):
    """Channel-packed (Gazelle-style) convolution: rotate inputs per tap, accumulate per
    channel diagonal, rotate each diagonal sum once."""

    name = "gazelle"
    description = "channel-packed convolution, per-tap input and per-diagonal output rotations"
    group_kinds = ("positional", "diagonal", "block")

    def plan(self, spec: ConvSpec, params: HEParams,
             mask: torch.Tensor | None = None) -> GazellePlan:
        """The plan for ``spec`` under ``mask`` (weight-shaped, 0 = pruned)."""
        return GazellePlan(gazelle_layout(spec, params), params, _as_mask(spec, mask))

    def group_index(self, spec: ConvSpec, params: HEParams, kind: str) -> torch.Tensor:
        """Groups of ``kind`` as flat weight indices [G, M], -1 padded at the end of each
        row; groups that hold no weight (channels past C_in/C_out) are left out."""
        lay = gazelle_layout(spec, params)
        p, q, taps, c_in, c_out = lay.period, lay.in_period, lay.taps, spec.c_in, spec.c_out
        ar = torch.arange
        if kind == "positional":  # (j, tap) x (o, i)
            j, t = ar(lay.n_in).view(-1, 1, 1, 1), ar(taps).view(1, -1, 1, 1)
            o, c = ar(c_out).view(1, 1, -1, 1), j * q + ar(q).view(1, 1, 1, -1)
        elif kind == "diagonal":  # (O, d) x (j, s, tap)
            big_o, d = ar(lay.n_out).view(-1, 1, 1, 1, 1), ar(lay.diagonals).view(1, -1, 1, 1, 1)
            s = ar(lay.pattern).view(1, 1, 1, -1, 1)
            o, c = big_o * p + (s + d) % p, ar(lay.n_in).view(1, 1, -1, 1, 1) * q + s % q
            t = ar(taps).view(1, 1, 1, 1, -1)
        elif kind == "block":  # (O, j) x (a, i, tap)
            o = ar(lay.n_out).view(-1, 1, 1, 1, 1) * p + ar(p).view(1, 1, -1, 1, 1)
            c = ar(lay.n_in).view(1, -1, 1, 1, 1) * q + ar(q).view(1, 1, 1, -1, 1)
            t = ar(taps).view(1, 1, 1, 1, -1)
        else:
            raise SpecError(f"group kind {kind!r}; allowed: {', '.join(self.group_kinds)}")
        flat = ((o * c_in + c) * taps + t).masked_fill((o >= c_out) | (c >= c_in), -1)
        rows = flat.reshape(flat.shape[0] * flat.shape[1], -1)  # the first two dims name a group
        rows = rows[(rows >= 0).any(dim=1)]
        if not bool((rows < 0).any()):  # full blocks: nothing to move
            return rows
        # stable sort on "is padding" moves -1 to the end of each row, order kept
        order = torch.sort((rows < 0).to(torch.int8), dim=1, stable=True).indices
        return rows.gather(1, order)

    def group_savings(self, spec: ConvSpec, params: HEParams,
                      index: torch.Tensor) -> GroupSavings:
        """Exact ops saved by zeroing each group alone in a dense layer.

        A product disappears iff all its weights are in the group, and a rotation iff all
        the products that use it do; so find the (group, product) pairs a group empties,
        then count per group the products and the rotations they complete.
        """
        lay = gazelle_layout(spec, params)
        n_groups = index.shape[0]
        group = torch.arange(n_groups).view(-1, 1).expand_as(index)
        valid = index >= 0
        group, weight = group[valid], index[valid]
        numel = spec.c_out * spec.c_in * lay.taps
        if weight.numel() and (int(weight.max()) >= numel):
            raise SpecError(f"layer {spec.name!r}: group index {int(weight.max())} out of "
                            f"range for {numel} weights")
        group, product = _emptied_products(lay, group, weight, n_groups)
        pmult = torch.bincount(group, minlength=n_groups)
        mine, every = lay.resources(product), lay.resources(lay.products)
        rotations = (_completed(group, mine["input"], every["input"], n_groups)
                     + _completed(group, mine["output"], every["output"], n_groups))
        if lay.fold_steps:  # a block's fold goes with the block's last product
            rotations = rotations + len(lay.fold_steps) * _completed(
                group, mine["block"], every["block"], n_groups)
        return GroupSavings(rotations=rotations.numpy().astype(np.int64),
                            pmult=pmult.numpy().astype(np.int64))


def _emptied_products(lay: GazelleLayout, group: torch.Tensor, weight: torch.Tensor,
                      n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(group, product) pairs where the group holds every weight of the product."""
    numel = lay.product_id.numel()
    low = torch.full((numel,), n_groups).scatter_reduce(0, weight, group, "amin")
    high = torch.full((numel,), -1).scatter_reduce(0, weight, group, "amax")
    held = high >= 0
    if bool((low[held] == high[held]).all()):
        # disjoint groups (the usual case): a product is emptied iff all its weights
        # have the same owner (weights in no group have owner -1)
        size = lay.n_products + 1
        first = torch.full((size,), n_groups).scatter_reduce(0, lay.product_id, high, "amin")
        last = torch.full((size,), -1).scatter_reduce(0, lay.product_id, high, "amax")
        product = torch.nonzero((first == last) & (first >= 0))[:, 0]
        product = product[product < lay.n_products]  # drop taps that touch no pixel
        return first[product], product
    pairs = torch.unique(group * numel + weight)  # a weight listed twice counts once
    keys, counts = torch.unique((pairs // numel) * (lay.n_products + 1)
                                + lay.product_id[pairs % numel], return_counts=True)
    group, product = keys // (lay.n_products + 1), keys % (lay.n_products + 1)
    full = (product < lay.n_products) & (counts == lay.weights_per_product[
        product.clamp(max=lay.n_products - 1)])
    return group[full], product[full]


def _completed(group: torch.Tensor, ids: torch.Tensor, all_ids: torch.Tensor,
               n_groups: int) -> torch.Tensor:
    """Per group, how many rotations (``ids`` of its emptied products, -1: none) lose
    every product that uses them (``all_ids``: the rotation of every product)."""
    keep = ids >= 0
    group, ids = group[keep], ids[keep]
    if ids.numel() == 0:
        return torch.zeros(n_groups, dtype=torch.long)
    totals = torch.bincount(all_ids[all_ids >= 0], minlength=int(ids.max()) + 1)
    width = totals.numel()
    keys, counts = torch.unique(group * width + ids, return_counts=True)
    return torch.bincount(keys[counts == totals[keys % width]] // width, minlength=n_groups)


@hookimpl
def register_cost_models(register) -> None:
    """Register the built-in ``gazelle`` cost model."""
    register(GazelleCostModel)
