"""Time of a group-Lasso regularized training step as a ratio to a plain step.

Measured in one run on ResNet-20 (3×32×32, batch 128, N = 2^16 groups), alternating the
variants so machine noise hits all of them alike. Times are process CPU seconds (all torch
threads), which other load on a shared machine disturbs far less than wall time; wall
ratios are printed beside them. Two ways to apply the penalty:
``grad`` adds its gradient into ``.grad`` after backward (what training uses), and
``autograd`` adds the penalty to the loss. Target: grad ≤ 1.15× plain.

    .venv/bin/python benchmarks/regularizer_overhead.py [--strategy hybrid] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from artemis_core.learning.zoo import build_model
from artemis_core.pruning.groups import collect_groups
from artemis_core.pruning.pipeline import HESetting
from artemis_core.pruning.regularizer import GroupLasso
from artemis_core.registry import get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="hybrid")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()

    torch.manual_seed(0)
    shape = (3, 32, 32)
    model = build_model("resnet20", 10, shape, seed=0)
    setting = HESetting.for_model(model, shape)
    layers = collect_groups(model, setting.specs, setting.params, setting.cost_model,
                            get("strategy", args.strategy)())
    lasso = GroupLasso(layers, lam=1e-3)
    groups = sum(len(lg.groups) for lg in layers)
    x, y = torch.randn(args.batch, *shape), torch.randint(0, 10, (args.batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step(variant: str) -> tuple[float, float]:
        start, start_cpu = time.perf_counter(), time.process_time()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if variant == "autograd":
            loss = loss + lasso.penalty()
        loss.backward()
        if variant == "grad":
            lasso.regularize(model)
        optimizer.step()
        return time.process_time() - start_cpu, time.perf_counter() - start

    variants = ("plain", "grad", "autograd")
    for variant in variants:  # warm-up
        step(variant)
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    wall: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            cpu_s, wall_s = step(variant)
            cpu[variant].append(cpu_s)
            wall[variant].append(wall_s)
    plain_cpu, plain_wall = statistics.median(cpu["plain"]), statistics.median(wall["plain"])
    print(f"resnet20, {args.strategy} groups: {groups}, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    for variant in variants:
        c, w = statistics.median(cpu[variant]), statistics.median(wall[variant])
        print(f"  {variant:9s} cpu {c * 1e3:8.1f} ms/step  ratio {c / plain_cpu:.3f}   "
              f"wall {w * 1e3:8.1f} ms/step  ratio {w / plain_wall:.3f}")


if __name__ == "__main__":
    main()
