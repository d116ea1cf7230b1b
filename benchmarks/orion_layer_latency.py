"""Where Orion's time goes, layer by layer, next to the bsgs program's prediction.

Builds he-cnn for digits (untrained), prunes a copy under ``bsgs`` (selection only),
compiles both on the ``orion`` engine and times every top-level Orion module of each
with forward hooks over a few digits test images. Prints, per model and layer, Orion's
median wall seconds and the predicted seconds of the matching step of our program at
its level, at the orion calibration (``artemis calibrate --engine orion``, else the
shipped one).

    python benchmarks/orion_layer_latency.py [--images 3] [--target 1.75x] [--log-n 14]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections import defaultdict

from artemis_core.cli.engine_infer import predict
from artemis_core.io import render
from artemis_core.learning.zoo import build_model
from artemis_core.pruning.pipeline import PruneConfig, prune_model
from artemis_core.registry import get


def layer_seconds(compiled, images) -> dict[str, tuple[str, float]]:
    """Median wall seconds of each top-level module of a compiled Orion network."""
    body = dict(compiled.converted.net.body.named_children())
    times: dict[str, list[float]] = defaultdict(list)
    started: dict[str, float] = {}
    hooks = []
    for name, module in body.items():
        hooks.append(module.register_forward_pre_hook(
            lambda m, i, n=name: started.__setitem__(n, time.perf_counter())))
        hooks.append(module.register_forward_hook(
            lambda m, i, o, n=name: times[n].append(time.perf_counter() - started[n])))
    for image in images:
        compiled.infer(image)
    for hook in hooks:
        hook.remove()
    return {n: (type(body[n]).__name__, statistics.median(t)) for n, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--target", default="1.75x")
    parser.add_argument("--log-n", type=int, default=14)
    args = parser.parse_args()
    data = get("dataset", "digits")()
    images = data.load("test").tensors[0][: args.images]
    dense = build_model("he-cnn", data.num_classes, data.input_shape, seed=0).eval()
    pruned = copy.deepcopy(dense)
    prune_model(pruned, data.input_shape, None, "hybrid", args.target, seed=0,
                config=PruneConfig(reg_epochs=0, cost_model="bsgs", log_n=args.log_n),
                progress=False)
    models = [("dense", dense), (f"hybrid {args.target}", pruned.eval())]
    engine = get("engine", "orion")({"log_n": args.log_n})
    compiled = [engine.compile(m, data.input_shape, data.load("train").tensors[0][:256])
                for _, m in models]
    predicted = predict("bsgs", [m for _, m in models], data.input_shape, args.log_n,
                        engine.name)
    rows = []
    for (label, _), run, guess in zip(models, compiled, predicted, strict=True):
        steps = guess["seconds_per_step"]
        for name, (kind, seconds) in layer_seconds(run, images).items():
            if name in steps or seconds > 1e-3:
                rows.append({"model": label, "layer": f"{name} ({kind})",
                             "measured_s": round(seconds, 4),
                             "predicted_s": round(steps.get(name, 0.0), 4)})
    print(f"predicted at the {predicted[0]['calibration']} calibration")
    print(render(rows, "github", ("model", "layer", "measured_s", "predicted_s")))


if __name__ == "__main__":
    main()
