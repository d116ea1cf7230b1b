"""Time to count a whole model under a random mask with the ``gazelle`` and ``bsgs``
cost models.

Counts ResNet-18 and ResNet-20 (CIFAR input, N=2^16) under a random 50% mask with each
vectorised cost model; for gazelle also with a naive reference that loops over the plan
in Python (every (O, j, tap, d) product), checks that both agree, and prints the times
and their ratio measured in this run (bsgs is checked against its naive Orion/Lattigo
reference in tests/test_cost_bsgs.py, on layers small enough to build densely). The
count runs inside the pruning loop: gazelle's ResNet-18 must take well under 100 ms;
bsgs must count ResNet-20 in under 100 ms and ResNet-18 in under 1 s.

    python benchmarks/cost_model_speed.py [--threads 2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from artemis_plugins.cost.bsgs import BsgsCostModel
from artemis_plugins.cost.gazelle import GazelleCostModel
from artemis_plugins.cost.gazelle_layout import gazelle_layout

from artemis_core import HEParams, OpCount
from artemis_core.he.extract import extract_specs
from artemis_core.learning.zoo import build_model


def naive_count(spec, params, mask: torch.Tensor) -> tuple[int, int]:
    """(rotations, pmult) by looping over every possible product of the plan."""
    lay = gazelle_layout(spec, params)
    m = mask.reshape(spec.c_out, spec.c_in, lay.taps).numpy()
    p, q, s = lay.period, lay.in_period, np.arange(lay.pattern)
    inputs, outputs, blocks, pmult = set(), set(), set(), 0
    for o in range(lay.n_out):
        for j in range(lay.n_in):
            for t in range(lay.taps):
                if not lay.tap_live[t]:
                    continue
                for d in range(lay.diagonals):
                    rows, cols = o * p + (s + d) % p, j * q + s % q
                    ok = (rows < spec.c_out) & (cols < spec.c_in)
                    if m[rows[ok], cols[ok], t].any():
                        pmult += 1
                        blocks.add(o)
                        if t != lay.centre:
                            inputs.add((j, t))
                        if d:
                            outputs.add((o, d))
    return len(inputs) + len(outputs) + len(blocks) * len(lay.fold_steps), pmult


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (cores)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = HEParams(16)
    for cost_model in (GazelleCostModel(), BsgsCostModel()):
        print(f"{cost_model.name} count, N=2^16, random 50% masks, {args.threads} torch threads")
        for name in ("resnet18", "resnet20"):
            time_model(cost_model, params, name, args.repeats)


def time_model(cost_model, params: HEParams, name: str, repeats: int) -> None:
    """Print the warm and first-call count times of one model (and, for gazelle, the
    naive loop's time after checking that it agrees)."""
    model = build_model(name, 10, (3, 32, 32), seed=0)
    specs = extract_specs(model, (3, 32, 32))
    gen = torch.Generator().manual_seed(0)
    masks = [torch.rand(s.weight_shape, generator=gen) < 0.5 for s in specs]

    def count(specs=specs, masks=masks) -> OpCount:
        pairs = zip(specs, masks, strict=True)
        return sum((cost_model.count(s, params, m) for s, m in pairs), OpCount())

    start = time.perf_counter()
    total = count()  # the first call also builds the per-layer layouts (cached)
    cold = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        count()
        times.append(time.perf_counter() - start)
    fast = statistics.median(times)
    weights = sum(torch.Size(s.weight_shape).numel() for s in specs)
    line = (f"{name:9s} {len(specs)} layers, {weights / 1e6:.2f}M weights: "
            f"{fast * 1e3:7.1f} ms per count (median of {repeats}; first call "
            f"{cold * 1e3:.0f} ms)")
    if cost_model.name == "gazelle":
        start = time.perf_counter()
        naive = [naive_count(s, params, m) for s, m in zip(specs, masks, strict=True)]
        slow = time.perf_counter() - start
        assert sum(r for r, _ in naive) == total.rotations
        assert sum(p for _, p in naive) == total.pmult
        line += f", naive loop {slow * 1e3:8.0f} ms, speed-up {slow / fast:.0f}x"
    print(f"{line}; rotations {total.rotations}, PMult {total.pmult}")


if __name__ == "__main__":
    main()
