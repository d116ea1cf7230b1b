"""Slot layout of the ``bsgs`` cost model: Orion's packing of a layer as a Toeplitz matrix.

Orion (``orion.core.packing``) flattens a C×H×W feature map channel by channel into the
slots, *multiplexing* after strided layers: with gap g, channel c sits in packed channel
c // g² at sub-pixel (a, b) = divmod(c mod g², g), pixel (y, x) at grid position
(y·g + a, x·g + b) of an H×W grid that keeps the input image's size. A convolution is
then the matrix M[row, col] (rows: packed output slots, columns: packed input slots),
cut into S×S blocks; each block is evaluated from its non-zero generalized diagonals.
With the "hybrid" embedding a single block row is only next_pow2(rows) tall: its
diagonals have that period and the output is summed by log2(S / period) rotations.

Every weight W[o, i, tap] sits on one generalized diagonal: its entries are
(row, row + Δ) with Δ = cbase(i) + tshift(tap) − rbase(o) for every output pixel whose
tap reads a valid input pixel, so its diagonal index is Δ mod period in whatever block
its entries fall. The blocks an entry falls in can vary with the pixel when a channel
straddles a ciphertext boundary (H·W not dividing S); :attr:`BsgsLayout.incidence`
finds them exactly from the first and last row of each weight in each block row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from artemis_core.errors import SpecError
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec

from .gazelle_layout import check_spec, next_pow2

EMBEDDINGS = ("hybrid", "square")


@dataclass(frozen=True)
class Incidence:
    """Which generalized diagonal (product) each weight feeds: pairs sorted by weight.

    ``weight[k]`` (flat index into the weight) feeds product ``product[k]`` =
    block · period + d; a weight whose tap reads no valid pixel feeds none, one whose
    channel straddles a ciphertext boundary may feed several blocks.
    """

    weight: np.ndarray
    product: np.ndarray

    numel: int
    n_products: int

    @cached_property
    def per_product(self) -> np.ndarray:
        """How many weights feed each product id (length: ``n_products``)."""
        return np.bincount(self.product, minlength=self.n_products)

    @cached_property
    def direct(self) -> np.ndarray | None:
        """The product of every weight (``n_products`` for none) when no weight feeds
        two, else None: then a mask reads its live products without a gather."""
        if len(np.unique(self.weight)) != len(self.weight):
            return None
        out = np.full(self.numel, self.n_products, dtype=np.int64)
        out[self.weight] = self.product
        return out

    def live(self, kept: np.ndarray) -> np.ndarray:
        """Bool [n_products]: products fed by at least one kept weight (flat bool mask)."""
        live = np.zeros(self.n_products + 1, dtype=bool)
        if self.direct is not None:
            live[self.direct[kept]] = True
        else:
            live[self.product[kept[self.weight]]] = True
        return live[:-1]


@dataclass(frozen=True)
class BsgsLayout:
    """Geometry of one layer under Orion's packing at S slots."""

    spec: ConvSpec
    slots: int
    embedding: str

    @property
    def grid_height(self) -> int:
        """Rows of the packed grid (the image's size: height · gap)."""
        return self.spec.height * self.spec.gap

    @property
    def grid_width(self) -> int:
        """Columns of the packed grid."""
        return self.spec.width * self.spec.gap

    @property
    def hw(self) -> int:
        """Slots per packed channel (no padding to a power of two, as in Orion)."""
        return self.grid_height * self.grid_width

    @property
    def in_gap(self) -> int:
        """Multiplexing gap of the input."""
        return self.spec.gap

    @property
    def out_gap(self) -> int:
        """Multiplexing gap of the output (input gap × stride)."""
        return self.spec.gap * self.spec.stride

    @property
    def in_length(self) -> int:
        """Packed input slots: ⌈C_in / g²⌉ packed channels of H·W."""
        return -(-self.spec.c_in // self.in_gap ** 2) * self.hw

    @property
    def out_length(self) -> int:
        """Packed output slots (the Toeplitz matrix's rows)."""
        return -(-self.spec.c_out // self.out_gap ** 2) * self.hw

    @property
    def n_cols(self) -> int:
        """Block columns = input ciphertexts."""
        return -(-self.in_length // self.slots)

    @property
    def n_rows(self) -> int:
        """Block rows = output ciphertexts."""
        return -(-self.out_length // self.slots)

    @property
    def n_blocks(self) -> int:
        """S×S blocks, numbered row · n_cols + col."""
        return self.n_rows * self.n_cols

    @property
    def hybrid(self) -> bool:
        """Orion's hybrid embedding applies: one block row, shorter than S."""
        return self.embedding == "hybrid" and self.n_rows == 1 \
            and next_pow2(self.out_length) < self.slots

    @property
    def period(self) -> int:
        """Diagonal length: next_pow2(rows) under the hybrid embedding, else S."""
        return next_pow2(self.out_length) if self.hybrid else self.slots

    @property
    def output_steps(self) -> tuple[int, ...]:
        """The hybrid embedding's rotate-and-sum steps S/2, S/4, …, period."""
        if not self.hybrid:
            return ()
        count = (self.slots // self.period).bit_length() - 1
        return tuple(self.slots >> k for k in range(1, count + 1))

    @property
    def taps(self) -> int:
        """k² kernel taps, numbered ky·k + kx as in torch's weight layout."""
        return self.spec.kernel ** 2

    @property
    def out_size(self) -> tuple[int, int]:
        """Valid output pixels (h', w') of the "same"-padded, strided layer."""
        s = self.spec.stride
        return -(-self.spec.height // s), -(-self.spec.width // s)

    @staticmethod
    def _bases(channels: int, gap: int, hw: int, width: int) -> np.ndarray:
        c = np.arange(channels)
        a, b = np.divmod(c % gap ** 2, gap)
        return (c // gap ** 2) * hw + a * width + b

    @cached_property
    def row_base(self) -> np.ndarray:
        """Packed slot of output channel o's pixel (0, 0), shape [C_out]."""
        return self._bases(self.spec.c_out, self.out_gap, self.hw, self.grid_width)

    @cached_property
    def col_base(self) -> np.ndarray:
        """Packed slot of input channel i's pixel (0, 0), shape [C_in]."""
        return self._bases(self.spec.c_in, self.in_gap, self.hw, self.grid_width)

    @cached_property
    def tap_shift(self) -> np.ndarray:
        """Column offset of each tap: (ky − P)·g·W + (kx − P)·g, shape [taps]."""
        k, p, g = self.spec.kernel, self.spec.padding, self.in_gap
        ky, kx = np.divmod(np.arange(self.taps), k)
        return (ky - p) * g * self.grid_width + (kx - p) * g

    @cached_property
    def pixel_offset(self) -> np.ndarray:
        """Row offset of each output pixel (oy·g'·W + ox·g'), row-major, shape [h'·w']."""
        ho, wo = self.out_size
        g = self.out_gap
        return (np.arange(ho)[:, None] * g * self.grid_width + np.arange(wo)[None, :] * g
                ).reshape(-1)

    @cached_property
    def pixel_valid(self) -> np.ndarray:
        """Bool [taps, h'·w']: the tap reads a valid input pixel at that output pixel."""
        k, p, s = self.spec.kernel, self.spec.padding, self.spec.stride
        ky, kx = np.divmod(np.arange(self.taps), k)
        ho, wo = self.out_size
        y = np.arange(ho)[None, :] * s + ky[:, None] - p
        x = np.arange(wo)[None, :] * s + kx[:, None] - p
        ok_y = (y >= 0) & (y < self.spec.height)
        ok_x = (x >= 0) & (x < self.spec.width)
        return (ok_y[:, :, None] & ok_x[:, None, :]).reshape(self.taps, -1)

    @cached_property
    def diagonal_offset(self) -> np.ndarray:
        """Δ[o, i, tap] = col − row of every entry of the weight (int64)."""
        return (self.col_base[None, :, None] + self.tap_shift[None, None, :]
                - self.row_base[:, None, None])

    @cached_property
    def incidence(self) -> Incidence:
        """The (weight, product) pairs of the layer, exactly (see the module docstring)."""
        s, n_rows = self.slots, self.n_rows
        rows = self.row_base[:, None, None] + self.pixel_offset[None, None, :]  # [o, 1, q]
        valid = self.pixel_valid[None, :, :]  # [1, t, q]
        block_row = rows // s
        delta = self.diagonal_offset
        shift, offset = np.divmod(delta, s)
        threshold = s - offset  # an entry carries into the next block column at u >= this
        diagonal = delta % self.period
        weights, products = [], []
        for r in range(n_rows):
            here = valid & (block_row == r)  # [o, t, q]
            local = rows - r * s
            first = np.where(here, local, s).min(axis=2)  # [o, t]
            last = np.where(here, local, -1).max(axis=2)
            for carry, present in ((0, first[:, None, :] < threshold),
                                   (1, last[:, None, :] >= threshold)):
                flat = np.flatnonzero(present)
                col = r + shift.reshape(-1)[flat] + carry
                block = r * self.n_cols + col
                weights.append(flat)
                products.append(block * self.period + diagonal.reshape(-1)[flat])
        weight = np.concatenate(weights)
        product = np.concatenate(products)
        order = np.argsort(weight, kind="stable")
        numel = self.spec.c_out * self.spec.c_in * self.taps
        return Incidence(weight[order], product[order], numel, self.n_products)

    @property
    def n_products(self) -> int:
        """Possible (block, diagonal) pairs."""
        return self.n_blocks * self.period

    @cached_property
    def dense_live(self) -> np.ndarray:
        """Bool [n_blocks, period]: the diagonals of the dense layer."""
        live = self.incidence.live(np.ones(self.incidence.numel, dtype=bool))
        return live.reshape(self.n_blocks, self.period)

    def home_blocks(self) -> np.ndarray:
        """Block of each weight [o, i] by where its channels start (for grouping)."""
        s = self.slots
        out_block = (self.row_base // s) if not self.hybrid else np.zeros_like(self.row_base)
        in_block = self.col_base // s
        return out_block[:, None] * self.n_cols + in_block[None, :]

    def entries(self, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every Toeplitz entry of the kept weights: (weight index, block, diagonal, slot),
        the slot being where the diagonal holds the entry (for building plaintexts)."""
        taps, s = self.taps, self.slots
        o, i, t = np.nonzero(mask.reshape(self.spec.c_out, self.spec.c_in, taps))
        q_valid = self.pixel_valid[t]  # [n, q]
        n, q = np.nonzero(q_valid)
        o, i, t = o[n], i[n], t[n]
        row = self.row_base[o] + self.pixel_offset[q]
        col = self.col_base[i] + self.tap_shift[t] + self.pixel_offset[q]
        local_row, local_col = row % s, col % s
        block = (row // s) * self.n_cols + col // s
        diagonal = (local_col - local_row) % self.period
        slot = local_row if not self.hybrid else (local_col - diagonal) % s
        return (o * self.spec.c_in + i) * taps + t, block, diagonal, slot

    def output_slots(self) -> np.ndarray:
        """Packed output slot of every output value [C_out, h'·w'] (across ciphertexts)."""
        return self.row_base[:, None] + self.pixel_offset[None, :]

    def input_slots(self) -> np.ndarray:
        """Packed input slot of every input value [C_in, h·w]."""
        g = self.in_gap
        pix = (np.arange(self.spec.height)[:, None] * g * self.grid_width
               + np.arange(self.spec.width)[None, :] * g).reshape(-1)
        return self.col_base[:, None] + pix[None, :]


@lru_cache(maxsize=1024)
def bsgs_layout(spec: ConvSpec, params: HEParams, embedding: str = "hybrid") -> BsgsLayout:
    """The validated layout of ``spec`` under ``params`` (cached: specs are values).
    Linear layers are packed "square": the classifier is the network's last linear
    transform, which Orion never embeds hybrid."""
    check_spec(spec)
    if embedding not in EMBEDDINGS:
        raise SpecError(f"embedding {embedding!r}; allowed: {', '.join(EMBEDDINGS)}")
    if spec.kind == "linear":
        embedding = "square"
    return BsgsLayout(spec, params.slots, embedding)
