"""How well the latency model predicts real CKKS layer latency (Pyfhel/SEAL, one thread).

Times are CPU seconds of the executing thread (as ``artemis calibrate`` measures them):
the same as wall time on an idle machine, and unaffected by other processes.

(a) For ResNet-20-sized conv layers: measured encrypted layer time over the model's
    estimate (op counts x per-op latencies calibrated in this same run). Goal <= 1.25.
(b) For diagonal-pruned layers (whole channel diagonals zeroed, in a seeded random
    order, until the plan's rotations drop by the target factor): measured dense/pruned
    speed-up over the speed-up the latency model predicts. Goal: within 20 %.

Run:  .venv/bin/python benchmarks/he_layer_latency.py [--log-n 15] [--depth 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from tabulate import tabulate

from artemis_core.he.calibrate import measure_calibration
from artemis_core.he.latency import OP_FIELDS, estimate_seconds
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec, OpCount
from artemis_core.he.verify import BACKEND, timed_execute
from artemis_core.registry import get

#: ResNet-20's three stage shapes on a 32x32 slot grid (gap doubles per stride-2 stage).
RESNET20_LAYERS = (
    ConvSpec("stage1 3x3 16->16 32x32", 16, 16, 3, 1, 1, 32, 32, 1),
    ConvSpec("stage2 3x3 32->32 16x16 gap2", 32, 32, 3, 1, 1, 16, 16, 2),
    ConvSpec("stage3 3x3 64->64 8x8 gap4", 64, 64, 3, 1, 1, 8, 8, 4),
)
#: (layer, rotation reduction): diagonal pruning cannot remove input rotations, so a 4x
#: cut needs a large channel period: 64 channels packed compactly (p_c = 64).
PRUNED_CASES = (
    (ConvSpec("3x3 64->64 8x8 gap1", 64, 64, 3, 1, 1, 8, 8, 1), 4.0),
    (RESNET20_LAYERS[0], 2.0),
)


def measure(spec: ConvSpec, params: HEParams, weight: torch.Tensor, repeats: int,
            ) -> tuple[float, OpCount]:
    """Median encrypted execution time of ``spec`` with ``weight`` (mask = weight != 0)
    and the plan's op count (checked against what the backend executed)."""
    plan = get("cost_model", "gazelle")().plan(spec, params, weight != 0)
    backend = get("he_backend", BACKEND)(params)
    x = torch.randn(spec.c_in, spec.height, spec.width, dtype=torch.float64)
    _, seconds = timed_execute(plan, backend, x, weight, repeats=repeats)
    if backend.ops != plan.op_count():
        raise SystemExit(f"{spec.name}: executed {backend.ops} != predicted {plan.op_count()}")
    return seconds, plan.op_count()


def diagonal_pruned(spec: ConvSpec, params: HEParams, weight: torch.Tensor, factor: float,
                    seed: int = 0) -> torch.Tensor | None:
    """``weight`` with whole channel diagonals zeroed (random order) until the plan's
    rotations are at most 1/``factor`` of the dense plan's (None: out of reach)."""
    model = get("cost_model", "gazelle")()
    target = model.count(spec, params).rotations / factor
    groups = model.group_index(spec, params, "diagonal")
    # Only diagonals that save a rotation (d != 0): the others would empty the layer.
    savers = torch.nonzero(torch.as_tensor(
        model.group_savings(spec, params, groups).rotations) > 0).view(-1)
    order = savers[torch.randperm(len(savers), generator=torch.Generator().manual_seed(seed))]
    mask = torch.ones(spec.weight_shape, dtype=torch.bool)
    for g in order.tolist():
        members = groups[g][groups[g] >= 0]
        mask.view(-1)[members] = False
        if model.count(spec, params, mask).rotations <= target:
            return weight * mask
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-n", type=int, default=15)
    parser.add_argument("--depth", type=int, default=2, help="rescales in [60, 40 x D, 60]")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per layer (median)")
    args = parser.parse_args()
    params = HEParams.with_depth(args.log_n, args.depth)
    torch.manual_seed(0)
    started = time.perf_counter()
    print(f"N=2^{args.log_n}, primes {list(params.coeff_modulus_bits)}, one thread; "
          f"calibrating...", file=sys.stderr)
    cal = measure_calibration(params, repeats=20)
    print(tabulate([[op, f"{getattr(cal, op) * 1e3:.4f}"] for op in OP_FIELDS]
                   + [["rotation key (MB)", f"{cal.rotation_key_bytes / 1e6:.2f}"]],
                   headers=["op", "ms"]))

    rows = []
    for spec in RESNET20_LAYERS:
        print(f"(a) {spec.name}...", file=sys.stderr)
        weight = torch.randn(spec.weight_shape, dtype=torch.float64)
        seconds, ops = measure(spec, params, weight, args.repeats)
        estimate = estimate_seconds(ops, cal)
        rows.append([spec.name, ops.rotations, ops.pmult, ops.adds, f"{seconds:.3f}",
                     f"{estimate:.3f}", f"{seconds / estimate:.3f}"])
    print("\n(a) measured / estimated layer time (goal <= 1.25)")
    print(tabulate(rows, headers=["layer", "rot", "pmult", "adds", "measured s",
                                  "estimated s", "ratio"]))

    rows = []
    for spec, factor in PRUNED_CASES:
        print(f"(b) {spec.name} at {factor}x fewer rotations...", file=sys.stderr)
        weight = torch.randn(spec.weight_shape, dtype=torch.float64)
        pruned = diagonal_pruned(spec, params, weight, factor)
        if pruned is None:
            rows.append([spec.name, f"{factor}x out of reach of diagonal pruning here"])
            continue
        dense_s, dense_ops = measure(spec, params, weight, args.repeats)
        pruned_s, pruned_ops = measure(spec, params, pruned, args.repeats)
        measured = dense_s / pruned_s
        predicted = estimate_seconds(dense_ops, cal) / estimate_seconds(pruned_ops, cal)
        rows.append([spec.name, f"{dense_ops.rotations}->{pruned_ops.rotations}",
                     f"{dense_ops.pmult}->{pruned_ops.pmult}", f"{dense_s:.3f}",
                     f"{pruned_s:.3f}", f"{measured:.2f}", f"{predicted:.2f}",
                     f"{measured / predicted:.3f}"])
    print("\n(b) diagonal-pruned speed-up: measured vs latency model (goal within 20 %)")
    print(tabulate(rows, headers=["layer", "rotations", "pmult", "dense s", "pruned s",
                                  "measured x", "predicted x", "measured/predicted"]))
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
