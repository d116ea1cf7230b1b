"""A naive, loop-by-loop reference for the ``bsgs`` cost model, written from Orion's
``packing.py`` and Lattigo's ``lintrans`` (FindBestBSGSRatio, BSGSIndex) without any of
the cost model's code: the dense Toeplitz matrix, its diagonals per block, N1 and the
rotations. Only for small layers (it builds the matrix densely)."""

from __future__ import annotations

import numpy as np

from artemis_core import ConvSpec


def next_pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def toeplitz(spec: ConvSpec, weight: np.ndarray) -> np.ndarray:
    """M[row, col] of the layer in Orion's multiplexed layout (weight [o, i, k, k])."""
    g, s, k, p = spec.gap, spec.stride, spec.kernel, spec.padding
    og = g * s
    big_h, big_w = spec.height * g, spec.width * g
    ho, wo = -(-spec.height // s), -(-spec.width // s)
    rows = -(-spec.c_out // og ** 2) * big_h * big_w
    cols = -(-spec.c_in // g ** 2) * big_h * big_w
    m = np.zeros((rows, cols))
    w = weight.reshape(spec.c_out, spec.c_in, k, k)

    def slot(channel, y, x, gap):
        a, b = divmod(channel % gap ** 2, gap)
        return (channel // gap ** 2) * big_h * big_w + (y * gap + a) * big_w + x * gap + b

    for o in range(spec.c_out):
        for i in range(spec.c_in):
            for ky in range(k):
                for kx in range(k):
                    for oy in range(ho):
                        for ox in range(wo):
                            y, x = oy * s + ky - p, ox * s + kx - p
                            if 0 <= y < spec.height and 0 <= x < spec.width:
                                m[slot(o, oy, ox, og), slot(i, y, x, g)] += w[o, i, ky, kx]
    return m


def diagonals(m: np.ndarray, slots: int, hybrid: bool) -> tuple[dict, int]:
    """Orion's ``diagonalize``: {(block row, block col): [non-zero diagonal indices]} and
    the number of output rotations."""
    n_rows, n_cols = -(-m.shape[0] // slots), -(-m.shape[1] // slots)
    if n_rows == 1 and hybrid:
        height = next_pow2(m.shape[0])
        out_rot = int(np.log2(slots // height))
    else:
        height, out_rot = slots, 0
    big = np.zeros((n_rows * height, n_cols * slots))
    big[: m.shape[0], : m.shape[1]] = m
    result = {}
    for r in range(n_rows):
        for c in range(n_cols):
            block = big[r * slots: r * slots + height, c * slots: (c + 1) * slots]
            found = []
            for d in range(height):
                values = [block[t % height, (t + d) % slots] for t in range(slots)]
                if any(values):
                    found.append(d)
            result[r, c] = found
    return result, out_rot


def bsgs_index(diags: list[int], slots: int, n1: int) -> tuple[list[int], list[int]]:
    """Lattigo's BSGSIndex: (giant steps rotN1, baby steps rotN2)."""
    giant, baby = set(), set()
    for rot in diags:
        rot &= slots - 1
        giant.add(((rot // n1) * n1) & (slots - 1))
        baby.add(rot & (n1 - 1))
    return sorted(giant), sorted(baby)


def find_best_bsgs_ratio(diags: list[int], slots: int, log_max_ratio: int) -> int:
    """Lattigo's FindBestBSGSRatio, Go float semantics spelled out."""
    max_ratio = float(1 << log_max_ratio)
    n1 = 1
    while n1 < slots:
        giant, baby = bsgs_index(diags, slots, n1)
        nb_giant, nb_baby = len(giant) - 1, len(baby) - 1
        if nb_giant == 0:
            ratio = float("inf") if nb_baby > 0 else float("nan")
        else:
            ratio = nb_baby / nb_giant
        if ratio == max_ratio:
            return n1
        if ratio > max_ratio:
            return n1 // 2
        n1 <<= 1
    return 1


def rotations(diags: list[int], slots: int, n1: int) -> tuple[int, int, set[int]]:
    """(baby rotations, giant rotations, non-zero steps) of one block at N1."""
    giant, baby = bsgs_index(diags, slots, n1)
    return (len([b for b in baby if b]), len([g for g in giant if g]),
            {s for s in giant + baby if s})


def best_n1(diags: list[int], slots: int) -> int:
    """The N1 with the fewest rotations (smallest on ties)."""
    costs = []
    n1 = 1
    while n1 < slots:
        baby, giant, _ = rotations(diags, slots, n1)
        costs.append((baby + giant, n1))
        n1 <<= 1
    return min(costs)[1]


def count(spec: ConvSpec, mask: np.ndarray, slots: int, hybrid: bool, rule: str = "lattigo",
          log_ratio: int = 0) -> dict:
    """Baby/giant/output rotations, PMult and the non-zero rotation steps of the layer."""
    m = toeplitz(spec, mask.astype(float))  # entries are counts of kept weights (>= 0)
    blocks, out_rot = diagonals(m, slots, hybrid and spec.kind != "linear")
    baby = giant = pmult = 0
    steps: set[int] = set()
    for diags in blocks.values():
        if not diags:
            continue
        n1 = find_best_bsgs_ratio(diags, slots, log_ratio) if rule == "lattigo" \
            else best_n1(diags, slots)
        b, g, st = rotations(diags, slots, n1)
        baby, giant, pmult = baby + b, giant + g, pmult + len(diags)
        steps |= st
    other = out_rot if pmult else 0
    steps |= {slots >> k for k in range(1, other + 1)}
    return {"baby": baby, "giant": giant, "other": other, "pmult": pmult,
            "steps": {((s + slots // 2 - 1) % slots) - slots // 2 + 1 for s in steps}}
