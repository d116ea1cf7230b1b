"""Orion's measured speed-up of pruned he-cnn next to what the bsgs cost model predicts.

Builds he-cnn for digits (untrained: speed does not depend on the weights' values),
prunes copies of it under ``bsgs`` to several rotation targets (selection only, no
training), and runs all of them on the ``orion`` engine on the same digits test images
in one interleaved loop. Prints, per model, Orion's diagonals and rotation keys, wall
and CPU seconds per image, the speed-up over dense, bsgs's predicted seconds, rotation
and latency reductions and the ratio of measured to predicted: once at the orion
calibration (``artemis calibrate --engine orion``, else the shipped one) and once at our
Pyfhel prices.

    python benchmarks/orion_engine_speed.py [--images 5] [--targets 1.25x,1.5x,1.75x] \
        [--strategy hybrid] [--log-n 13]
"""

from __future__ import annotations

import argparse
import copy

from artemis_core.cli.engine_infer import predict, row
from artemis_core.deploy.engine import run_engine
from artemis_core.io import render
from artemis_core.learning.zoo import build_model
from artemis_core.pruning.pipeline import PruneConfig, prune_model
from artemis_core.registry import get

COLUMNS = ("model", "diagonals", "keys", "s_per_image", "cpu_s_per_image", "speedup",
           "cpu_speedup", "pred_s_per_image", "pred_rot_reduction", "pred_latency_reduction",
           "speedup_vs_pred", "agreement")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--targets", default="1.25x,1.5x,1.75x")
    parser.add_argument("--strategy", default="hybrid")
    parser.add_argument("--log-n", type=int, default=13)
    args = parser.parse_args()
    data = get("dataset", "digits")()
    images, labels = (t[: args.images] for t in data.load("test").tensors)
    dense = build_model("he-cnn", data.num_classes, data.input_shape, seed=0).eval()
    models = [("dense", dense)]
    config = PruneConfig(reg_epochs=0, cost_model="bsgs", log_n=args.log_n)
    for target in args.targets.split(","):
        pruned = copy.deepcopy(dense)
        prune_model(pruned, data.input_shape, None, args.strategy, target, seed=0,
                    config=config, progress=False)
        models.append((f"{args.strategy} {target}", pruned.eval()))
    engine = get("engine", "orion")({"log_n": args.log_n})
    runs = run_engine(engine, models, images, labels, data.load("train").tensors[0][:256])
    for calibration in dict.fromkeys((engine.name, "artemis")):
        predicted = predict("bsgs", [m for _, m in models], data.input_shape, args.log_n,
                            calibration)
        print(f"\npredicted at the {predicted[0]['calibration']} calibration")
        print(render([row(r, runs[0], p, predicted[0], COLUMNS)
                      for r, p in zip(runs, predicted, strict=True)], "github", COLUMNS))


if __name__ == "__main__":
    main()
