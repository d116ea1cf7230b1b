"""How well the latency model predicts the deployed server's layer latency (Pyfhel/SEAL,
one thread), at several ring sizes and levels.

Each layer runs as ``artemis infer``'s server runs it: a :class:`PyfhelEvaluator` built
from a client's evaluation keys, weights encoded once (a warm-up pass), inputs arriving
at a given level. Times are CPU seconds of the executing thread (as ``artemis
calibrate`` measures them): wall time on an idle machine, unaffected by other processes.
Per ring size the script calibrates in the same run, on the deepest 128-bit chain with
at most 4 rescales, then:

(a) runs every ResNet-20 stage shape under each cost model at the chain's top level and
    at level 1: measured layer time over the estimate (the plan's ops by level x the
    per-level prices). Goal: 0.9-1.1.
(b) prunes whole channel diagonals (gazelle; seeded random order) until the plan's
    rotations drop by the target factor: measured dense/pruned speed-up over the one the
    latency model predicts. Goal: within 10 %.

Run:  .venv/bin/python benchmarks/he_layer_latency.py [--log-n 13 14 15] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from tabulate import tabulate

from artemis_core.deploy.evaluator import EvaluationKeys, PyfhelEvaluator, from_bytes, to_bytes
from artemis_core.he.calibrate import BACKEND, measure_calibration
from artemis_core.he.cost_model import LayerPlan
from artemis_core.he.latency import Calibration, estimate_seconds
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec
from artemis_core.registry import get

#: ResNet-20's three stage shapes on a 32x32 slot grid (gap doubles per stride-2 stage).
RESNET20_LAYERS = (
    ConvSpec("stage1 3x3 16->16 32x32", 16, 16, 3, 1, 1, 32, 32, 1),
    ConvSpec("stage2 3x3 32->32 16x16 gap2", 32, 32, 3, 1, 1, 16, 16, 2),
    ConvSpec("stage3 3x3 64->64 8x8 gap4", 64, 64, 3, 1, 1, 8, 8, 4),
)
#: (layer, rotation reduction): diagonal pruning cannot remove input rotations, so a 4x
#: cut needs a large channel period: 64 channels packed compactly.
PRUNED_CASES = ((ConvSpec("3x3 64->64 8x8 gap1", 64, 64, 3, 1, 1, 8, 8, 1), 4.0),)
COST_MODELS = ("gazelle", "bsgs")
MAX_DEPTH = 4
RATIO_GOAL = (0.9, 1.1)


def server_seconds(plan: LayerPlan, weight: torch.Tensor, level: int, repeats: int) -> float:
    """Median CPU seconds of ``plan`` on a key-less server whose inputs arrive at
    ``level``, weights encoded by a warm-up pass; exits if the server's ops by level are
    not the plan's."""
    client = get("he_backend", BACKEND)(plan.params)
    client.keygen(plan.op_count().rotation_steps)
    x = torch.randn(plan.spec.c_in, plan.spec.height, plan.spec.width, dtype=torch.float64)
    server = PyfhelEvaluator(plan.params, EvaluationKeys.export(client))
    inputs = [from_bytes(server, to_bytes(client.encrypt(v, level)), level) for v in plan.pack(x)]
    plan.execute(server, inputs, weight)  # encodes every weight plaintext once
    times = []
    for _ in range(repeats):
        server.reset_counts()
        start = time.thread_time()
        plan.execute(server, inputs, weight)
        times.append(time.thread_time() - start)
    if server.ops_by_level != plan.op_count_at(level):
        raise SystemExit(f"{plan.spec.name}: executed {server.ops_by_level} != counted "
                         f"{plan.op_count_at(level)}")
    return statistics.median(times)


def diagonal_pruned(spec: ConvSpec, params: HEParams, weight: torch.Tensor, factor: float,
                    seed: int = 0) -> torch.Tensor | None:
    """``weight`` with whole gazelle channel diagonals zeroed (random order) until the
    plan's rotations are at most 1/``factor`` of the dense plan's (None: out of reach)."""
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


def layer_rows(params: HEParams, cal: Calibration, repeats: int) -> list[list]:
    """(a): every stage shape, cost model and level: measured over estimated seconds."""
    rows = []
    for spec in RESNET20_LAYERS:
        weight = torch.randn(spec.weight_shape, dtype=torch.float64)
        for name in COST_MODELS:
            plan = get("cost_model", name)().plan(spec, params)
            for level in sorted({params.levels, 1}, reverse=True):
                print(f"(a) 2^{params.log_n} {spec.name} {name} level {level}...",
                      file=sys.stderr)
                seconds = server_seconds(plan, weight, level, repeats)
                estimate = estimate_seconds(plan.op_count_at(level), cal)
                ops = plan.op_count()
                rows.append([f"2^{params.log_n}", spec.name, name, level, ops.rotations,
                             ops.pmult, f"{seconds:.3f}", f"{estimate:.3f}",
                             f"{seconds / estimate:.3f}"])
    return rows


def pruned_rows(params: HEParams, cal: Calibration, repeats: int) -> list[list]:
    """(b): measured dense/pruned speed-up over the predicted one, at the top level."""
    rows, model, level = [], get("cost_model", "gazelle")(), params.levels
    for spec, factor in PRUNED_CASES:
        print(f"(b) 2^{params.log_n} {spec.name} at {factor}x fewer rotations...",
              file=sys.stderr)
        weight = torch.randn(spec.weight_shape, dtype=torch.float64)
        pruned = diagonal_pruned(spec, params, weight, factor)
        if pruned is None:
            rows.append([f"2^{params.log_n}", spec.name, f"{factor}x out of reach here"])
            continue
        dense, sparse = model.plan(spec, params), model.plan(spec, params, pruned != 0)
        measured = (server_seconds(dense, weight, level, repeats)
                    / server_seconds(sparse, pruned, level, repeats))
        predicted = (estimate_seconds(dense.op_count_at(level), cal)
                     / estimate_seconds(sparse.op_count_at(level), cal))
        rows.append([f"2^{params.log_n}", spec.name,
                     f"{dense.op_count().rotations}->{sparse.op_count().rotations}",
                     f"{dense.op_count().pmult}->{sparse.op_count().pmult}",
                     f"{measured:.2f}", f"{predicted:.2f}", f"{measured / predicted:.3f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-n", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per layer (median)")
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    layers, pruned, prices = [], [], []
    for log_n in args.log_n:
        params = HEParams.deepest(log_n, MAX_DEPTH)
        print(f"N=2^{log_n}, primes {list(params.coeff_modulus_bits)}, one thread; "
              "calibrating...", file=sys.stderr)
        cal = measure_calibration(params, repeats=20)
        prices += [[f"2^{log_n}", level] + [f"{cal.price(op, level) * 1e3:.4f}" for op in
                                            ("rotation", "pmult", "add", "rescale")]
                   for level in range(params.levels, 0, -1)]
        layers += layer_rows(params, cal, args.repeats)
        pruned += pruned_rows(params, cal, args.repeats)
    print("calibrated prices (ms, fitted per level)")
    print(tabulate(prices, headers=["N", "level", "rotation", "pmult", "add", "rescale"]))
    low, high = RATIO_GOAL
    print(f"\n(a) measured / estimated layer time (goal {low}-{high})")
    print(tabulate(layers, headers=["N", "layer", "cost model", "level", "rot", "pmult",
                                    "measured s", "estimated s", "ratio"]))
    print("\n(b) diagonal-pruned speed-up: measured vs latency model (goal within 10 %)")
    print(tabulate(pruned, headers=["N", "layer", "rotations", "pmult", "measured x",
                                    "predicted x", "measured/predicted"]))
    ratios = [float(row[-1]) for row in layers]
    print(f"\n(a) ratios {min(ratios):.3f}-{max(ratios):.3f}: "
          f"{'within' if low <= min(ratios) and max(ratios) <= high else 'OUTSIDE'} the goal; "
          f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
