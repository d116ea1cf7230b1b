"""Slot layout of the ``gazelle`` channel-packed convolution (design §5).

Where each channel and pixel of a layer sits in the CKKS slots, which kernel taps can
touch a valid pixel, and which product/rotation every weight feeds. The cost model
(:mod:`.gazelle`) counts and executes from these arrays only, so the count and the
executed work cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import torch

from artemis_core.errors import SpecError
from artemis_core.he.backend import canonical_step
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec


def next_pow2(n: int) -> int:
    """Smallest power of two >= n."""
    return 1 << max(n - 1, 0).bit_length()


def check_spec(spec: ConvSpec) -> None:
    """Refuse layers outside the packing: groups, even kernels, non-"same" padding."""
    if spec.groups != 1:
        raise SpecError(f"layer {spec.name!r}: groups={spec.groups}; only groups=1 is supported")
    if spec.kernel % 2 == 0:
        raise SpecError(
            f"layer {spec.name!r}: kernel={spec.kernel}; only odd kernels are supported"
        )
    if spec.padding != spec.kernel // 2:
        raise SpecError(
            f"layer {spec.name!r}: padding={spec.padding}; only 'same' padding "
            f"(kernel//2 = {spec.kernel // 2}) is supported"
        )
    if spec.kind == "linear" and (spec.kernel, spec.height, spec.width) != (1, 1, 1):
        raise SpecError(f"linear layer {spec.name!r} must have kernel=1 and height=width=1")


@dataclass(frozen=True)
class GazelleLayout:
    """Geometry of one layer: S slots, hw slots per channel region, periods q and p.

    The input arrives with period q = next_pow2(C_in) (at most ``regions``): input
    channel c sits in region c mod q of ciphertext c // q, the block replicated over the
    ciphertext. The output leaves with period p = next_pow2(C_out) (at most
    ``regions``), laid out the same way, so the next layer reads it at its own period and
    every region of every ciphertext holds a meaningful value (no layout change, no
    assumption that unused regions are zero). Pixel (y, x) of the valid h×w image sits
    at slot (y·gap)·W + x·gap of its region (W = width·gap).

    The product (O, j, tap, d), d < D = min(p, q), multiplies input ciphertext j rotated
    by the tap with the plaintext holding W[O·p + (s+d) mod p, j·q + s mod q, tap] in
    region s; the sum over (j, tap) is rotated by −d·hw. When q > p (a wide layer) each
    output block is then folded by log2(q/p) rotate-and-adds (the rectangular diagonal
    method, tall and wide alike).
    """

    spec: ConvSpec
    slots: int

    @cached_property
    def grid_width(self) -> int:
        """W: slots per grid row."""
        return self.spec.width * self.spec.gap

    @cached_property
    def hw(self) -> int:
        """Slots per channel region: next_pow2(H·W)."""
        return next_pow2(self.spec.height * self.spec.gap * self.grid_width)

    @property
    def regions(self) -> int:
        """r: channel regions per ciphertext."""
        return self.slots // self.hw

    @cached_property
    def in_period(self) -> int:
        """q: input channels per ciphertext (a power of two, at most ``regions``)."""
        return min(self.regions, next_pow2(self.spec.c_in))

    @cached_property
    def period(self) -> int:
        """p: output channels per ciphertext (a power of two, at most ``regions``)."""
        return min(self.regions, next_pow2(self.spec.c_out))

    @property
    def diagonals(self) -> int:
        """D = min(p, q): channel diagonals per weight block."""
        return min(self.period, self.in_period)

    @property
    def pattern(self) -> int:
        """max(p, q): regions after which a product's plaintext repeats."""
        return max(self.period, self.in_period)

    @property
    def n_in(self) -> int:
        """Input ciphertexts (blocks of q channels)."""
        return -(-self.spec.c_in // self.in_period)

    @property
    def n_out(self) -> int:
        """Output blocks (= output ciphertexts) of p channels."""
        return -(-self.spec.c_out // self.period)

    @property
    def taps(self) -> int:
        """k² kernel taps, numbered ky·k + kx as in torch's weight layout."""
        return self.spec.kernel ** 2

    @property
    def centre(self) -> int:
        """The centre tap (shift 0, needs no rotation)."""
        return self.taps // 2

    @cached_property
    def offsets(self) -> np.ndarray:
        """(dy, dx) of every tap, shape [taps, 2]."""
        half = self.spec.kernel // 2
        ky, kx = np.divmod(np.arange(self.taps), self.spec.kernel)
        return np.stack([ky - half, kx - half], axis=1)

    @cached_property
    def shifts(self) -> tuple[int, ...]:
        """Rotation step of each tap: gap·(dy·W + dx), canonical form."""
        dy, dx = self.offsets.T
        steps = self.spec.gap * (dy * self.grid_width + dx)
        return tuple(canonical_step(int(s), self.slots) for s in steps)

    @cached_property
    def output_pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """Input-grid rows and columns the (strided) output is read at."""
        s = self.spec.stride
        return np.arange(0, self.spec.height, s), np.arange(0, self.spec.width, s)

    @cached_property
    def tap_live(self) -> np.ndarray:
        """Bool [taps]: the tap reads a valid pixel for at least one output pixel."""
        rows, cols = self.output_pixels
        dy, dx = self.offsets.T
        row_ok = ((rows[None, :] + dy[:, None] >= 0)
                  & (rows[None, :] + dy[:, None] < self.spec.height)).any(1)
        col_ok = ((cols[None, :] + dx[:, None] >= 0)
                  & (cols[None, :] + dx[:, None] < self.spec.width)).any(1)
        return row_ok & col_ok

    def pixel_slots(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Slot offsets inside a region of pixels (rows × cols), shape [len(rows), len(cols)]."""
        gap = self.spec.gap
        return (rows[:, None] * gap) * self.grid_width + cols[None, :] * gap

    @cached_property
    def output_slots(self) -> np.ndarray:
        """Slot offsets inside a region of the output pixels, shape [h', w']."""
        return self.pixel_slots(*self.output_pixels)

    @cached_property
    def tap_masks(self) -> np.ndarray:
        """Float [taps, hw]: 1 at output pixels whose tap input is a valid pixel."""
        rows, cols = self.output_pixels
        masks = np.zeros((self.taps, self.hw))
        slots = self.output_slots
        for t, (dy, dx) in enumerate(self.offsets):  # k² taps, not weights
            ok = (((rows + dy >= 0) & (rows + dy < self.spec.height))[:, None]
                  & ((cols + dx >= 0) & (cols + dx < self.spec.width))[None, :])
            masks[t, slots[ok]] = 1.0
        return masks

    @cached_property
    def fold_steps(self) -> tuple[int, ...]:
        """Rotate-and-add steps k·hw (k = p, 2p, …, q/2) that sum the q/p partial
        outputs of a wide layer (q > p) into every region; none when q ≤ p."""
        steps, width = [], self.period
        while width < self.in_period:
            steps.append(canonical_step(width * self.hw, self.slots))
            width *= 2
        return tuple(steps)

    def output_step(self, d: int) -> int:
        """Rotation that moves diagonal d's partial sum into place: −d·hw."""
        return canonical_step(-d * self.hw, self.slots)

    @property
    def n_products(self) -> int:
        """Number of possible (O, j, tap, d) products."""
        return self.n_out * self.n_in * self.taps * self.diagonals

    @cached_property
    def product_id(self) -> torch.Tensor:
        """Long [weights]: the (O, j, tap, d) product each weight feeds, flattened as
        ((O·n_in + j)·taps + tap)·D + d with d = (o − c) mod D; ``n_products`` for taps
        that touch no pixel."""
        p, q, big_d, n_in, taps = (self.period, self.in_period, self.diagonals, self.n_in,
                                   self.taps)
        o = np.arange(self.spec.c_out).reshape(-1, 1, 1)
        c = np.arange(self.spec.c_in).reshape(1, -1, 1)
        t = np.arange(taps).reshape(1, 1, -1)
        ids = (((o // p) * n_in + c // q) * taps + t) * big_d + (o - c) % big_d
        ids = np.where(self.tap_live[None, None, :], ids, self.n_products).reshape(-1)
        return torch.from_numpy(ids.astype(np.int64))

    def live_products(self, mask: np.ndarray) -> np.ndarray:
        """Bool [n_out, n_in, taps, D] from a bool mask [c_out, c_in, taps]: product
        (O, j, tap, d) is live iff its tap touches a pixel and some weight with
        (o − c) mod D = d is kept. Output (tall) or input (wide) channels congruent mod D
        share a diagonal, so the block mask is first OR-ed down to D×D; its diagonals
        are then read through a strided view of it stacked twice along the output
        channel (no index arrays, no thread pool: this runs inside the pruning loop)."""
        p, q, big_d, taps = self.period, self.in_period, self.diagonals, self.taps
        n_out, n_in = self.n_out, self.n_in
        c_out, c_in = mask.shape[:2]
        if (c_out, c_in) != (n_out * p, n_in * q):
            padded = np.zeros((n_out * p, n_in * q, taps), dtype=bool)
            padded[:c_out, :c_in] = mask
            mask = padded
        blocks = np.ascontiguousarray(mask).view(np.uint8).reshape(
            n_out, p // big_d, big_d, n_in, q // big_d, big_d, taps)
        if p != q:
            blocks = blocks.max(axis=(1, 4), keepdims=True)
        blocks = blocks.reshape(n_out, big_d, n_in, big_d, taps)
        doubled = np.concatenate([blocks, blocks], axis=1)  # row a + D is row a again
        s_o, s_a, s_j, s_i, s_t = doubled.strides
        diagonals = np.lib.stride_tricks.as_strided(  # [O, j, tap, d, i] = row i + d, col i
            doubled, (n_out, n_in, taps, big_d, big_d), (s_o, s_j, s_t, s_a, s_a + s_i),
            writeable=False)
        return diagonals.max(axis=-1).astype(bool) & self.tap_live[None, None, :, None]

    @cached_property
    def weights_per_product(self) -> torch.Tensor:
        """Long [n_products]: how many weights feed each product (0: none exists)."""
        return torch.bincount(self.product_id, minlength=self.n_products + 1)[:-1]

    @cached_property
    def products(self) -> torch.Tensor:
        """Ids of the products a dense layer performs."""
        return torch.nonzero(self.weights_per_product)[:, 0]

    def resources(self, product: torch.Tensor) -> dict[str, torch.Tensor]:
        """For product ids (see :attr:`product_id`): the product, input rotation
        (j·taps + tap), output rotation (O·D + d) and output block O each one needs, -1
        where none (dead tap, centre tap, diagonal 0)."""
        big_d, taps = self.diagonals, self.taps
        alive = product < self.n_products
        tap, d, block = (product // big_d) % taps, product % big_d, product // (big_d * taps)
        shifted = alive & (tap != self.centre)
        out_block = block // self.n_in
        return {
            "product": torch.where(alive, product, -1),
            "input": torch.where(shifted, (block % self.n_in) * taps + tap, -1),
            "output": torch.where(alive & (d != 0), out_block * big_d + d, -1),
            "block": torch.where(alive, out_block, -1),
        }


@lru_cache(maxsize=1024)
def gazelle_layout(spec: ConvSpec, params: HEParams) -> GazelleLayout:
    """The validated layout of ``spec`` under ``params`` (cached: specs are values)."""
    check_spec(spec)
    layout = GazelleLayout(spec, params.slots)
    if layout.hw > params.slots:
        raise SpecError(
            f"layer {spec.name!r} does not fit: its {spec.height * spec.gap}x{layout.grid_width} "
            f"slot grid needs {layout.hw} slots per channel but N=2^{params.log_n} has "
            f"{params.slots}; use a larger log_n"
        )
    return layout
