"""Training speed of small-input models with one torch thread vs torch's default.

Trains ``digits-resnet`` on digits for a few epochs with ``torch.set_num_threads(1)`` and
with torch's default thread count (all cores), optionally while ``--busy`` other
processes spin on the CPU (as when tests or other jobs share a 2-core machine), and
prints both times and their ratio measured in this run. This is why
:func:`artemis_core.learning.training.threads_for` trains inputs of up to ``SMALL_INPUT`` values
on one thread.

    python benchmarks/train_threads.py [--epochs 3] [--busy 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import torch

from artemis_core.learning import training
from artemis_core.learning.zoo import build_model
from artemis_core.registry import get


def _spin() -> None:
    while True:
        pass


def _seconds(threads: int, epochs: int, train_set) -> float:
    model = build_model("digits-resnet", 10, (1, 8, 8), seed=0)
    config = training.TrainConfig(epochs=epochs)
    small = training.SMALL_INPUT
    # Make threads_for keep the thread count set here, for this measurement only.
    training.SMALL_INPUT = 0
    torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        training.train(model, train_set, config, progress=False)
        return time.perf_counter() - start
    finally:
        training.SMALL_INPUT = small


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes meanwhile")
    args = parser.parse_args()
    train_set = get("dataset", "digits")().load("train")
    default = torch.get_num_threads()
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        one = _seconds(1, args.epochs, train_set)
        many = _seconds(default, args.epochs, train_set)
    finally:
        for process in spinners:
            process.terminate()
    print(f"digits-resnet, {args.epochs} epochs, {args.busy} busy processes")
    print(f"  1 thread:  {one:.2f} s")
    print(f"  {default} threads: {many:.2f} s")
    print(f"  ratio ({default} threads / 1 thread): {many / one:.2f}")


if __name__ == "__main__":
    main()
