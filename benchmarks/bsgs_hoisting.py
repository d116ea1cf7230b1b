"""What a hoisted baby step costs in Lattigo, next to a giant step, measured with Orion.

Builds square linear layers (N = 2^13, S = 4096) with 32 … 256 contiguous generalized
diagonals, compiles each with Orion (``orion-fhe``, Lattigo inside) at BSGS ratios that
Orion turns into log-ratios 0, 2 and 4 (same diagonals and PMults, baby/giant splits
from about 1:1 to 16:1), times Lattigo's transform on one ciphertext (best of
``--repeats``), counts its baby steps, giant steps and PMults with the ``bsgs`` cost model
(at the same ratio), and fits time = a·baby + b·giant + c·PMult + d by least squares.
a/b is the price of a hoisted baby step in giant steps (non-hoisted key switches);
docs/cost-model.md quotes the result.

    python benchmarks/bsgs_hoisting.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from artemis_plugins.cost.bsgs import BsgsCostModel

from artemis_core import ConvSpec, HEParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from orion_reference import config  # noqa: E402  (the tests' Orion configuration)

LOG_N = 13
SLOTS = 1 << (LOG_N - 1)


def main() -> None:
    import orion
    import orion.nn as on
    from torch.utils.data import DataLoader, TensorDataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = config(LOG_N)
    settings["ckks_params"].update(LogQ=[50, 40, 40], LogP=[50, 50], LogScale=40)
    spec = ConvSpec("fc", SLOTS, SLOTS, 1, 1, 0, kind="linear")
    params = HEParams(LOG_N, allow_insecure=True)
    rows = []
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        orion.init_scheme(settings)
        for count in (32, 64, 128, 256):
            weight = torch.zeros(SLOTS, SLOTS)
            rows_index = torch.arange(SLOTS)
            for d in range(count):
                weight[rows_index, (rows_index + d) % SLOTS] = torch.randn(SLOTS)
            for ratio in (1.0, 8.0, 60.0):  # Orion: int(ln(ratio)) = 0, 2, 4
                net = on.Linear(SLOTS, SLOTS, bias=False, bsgs_ratio=ratio)
                with torch.no_grad():
                    net.weight.copy_(weight)
                data = DataLoader(TensorDataset(torch.randn(1, SLOTS), torch.zeros(1)),
                                  batch_size=1)
                orion.fit(net, data)
                orion.compile(net)
                net.he()
                ct = orion.encrypt(orion.encode(torch.randn(1, SLOTS)))
                seconds = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    net(ct)
                    seconds.append(time.perf_counter() - start)
                model = BsgsCostModel(bsgs_ratio=ratio, embedding="square")
                ops = model.plan(spec, params, weight != 0).op_count()
                rows.append((ops.input_rotations, ops.output_rotations, ops.pmult, min(seconds)))
    for baby, giant, pmult, seconds in rows:
        print(f"baby {baby:3d}  giant {giant:3d}  PMult {pmult:3d}  {seconds * 1e3:7.1f} ms")
    design = np.array([[b, g, p, 1.0] for b, g, p, _ in rows])
    fit = np.linalg.lstsq(design, np.array([s for *_, s in rows]), rcond=None)[0]
    print(f"fit: baby {fit[0] * 1e3:.2f} ms, giant {fit[1] * 1e3:.2f} ms, PMult "
          f"{fit[2] * 1e3:.2f} ms, fixed {fit[3] * 1e3:.1f} ms; a hoisted baby step costs "
          f"{fit[0] / fit[1]:.2f} giant steps")


if __name__ == "__main__":
    main()
