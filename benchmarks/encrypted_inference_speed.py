"""End-to-end encrypted inference speed of he-cnn vs its rotation count.

Builds he-cnn for digits (untrained: speed does not depend on the weights' values),
prunes copies of it with the ``diagonal`` strategy to several rotation targets
(selection only, no training), and classifies the same digits test images encrypted,
client and server apart, with all models in one interleaved loop. Prints, per model,
the executed rotations, wall and CPU seconds per image and the speed-up over dense
next to the rotation reduction, all measured in this run.

    python benchmarks/encrypted_inference_speed.py [--images 10] [--targets 1.25x,1.5x,2x,3x]
"""

from __future__ import annotations

import argparse
import copy

from artemis_core.deploy.engine import run_engine
from artemis_core.io import render
from artemis_core.learning.zoo import build_model
from artemis_core.pruning.pipeline import PruneConfig, prune_model
from artemis_core.registry import get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--targets", default="1.25x,1.5x,2x,3x")
    args = parser.parse_args()
    data = get("dataset", "digits")()
    images, labels = (t[: args.images] for t in data.load("test").tensors)
    dense = build_model("he-cnn", data.num_classes, data.input_shape, seed=0).eval()
    models = [("dense", dense)]
    for target in args.targets.split(","):
        pruned = copy.deepcopy(dense)
        prune_model(pruned, data.input_shape, None, "diagonal", target, seed=0,
                    config=PruneConfig(reg_epochs=0), progress=False)
        models.append((f"diagonal {target}", pruned.eval()))
    runs = run_engine(get("engine", "artemis")({"cost_model": "gazelle"}), models, images,
                      labels, images)
    base = runs[0]
    print(render([{
        "model": r.label, "rotations": r.stats["rotations"],
        "rotation_reduction": round(base.stats["rotations"] / r.stats["rotations"], 2),
        "wall_s": round(r.seconds_per_image, 3), "cpu_s": round(r.cpu_seconds_per_image, 3),
        "speedup_wall": round(base.seconds_per_image / r.seconds_per_image, 2),
        "speedup_cpu": round(base.cpu_seconds_per_image / r.cpu_seconds_per_image, 2),
        "agreement": r.agreement,
    } for r in runs], "github"))


if __name__ == "__main__":
    main()
