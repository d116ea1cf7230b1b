"""Orion itself as the reference for the ``bsgs`` cost model: pack a layer with Orion
and read the diagonals it keeps and the Galois elements it asks Lattigo keys for.

Used by tests/test_cost_bsgs_orion.py (skipped where ``orion-fhe`` does not import).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor

import torch

LOG_N = 12


def config(log_n: int = LOG_N, embedding: str = "hybrid") -> dict:
    """A small standard-ring CKKS configuration (S = N/2 slots, as ours)."""
    return {
        "ckks_params": {"LogN": log_n, "LogQ": [40, 30, 30, 30, 30], "LogP": [40, 40],
                        "LogScale": 30, "H": 192, "RingType": "standard"},
        "orion": {"margin": 2, "embedding_method": embedding, "backend": "lattigo",
                  "fuse_modules": False, "debug": False, "diags_path": "", "keys_path": "",
                  "io_mode": "none"},
    }


def orion_pack(layers: list[dict], weights: list[torch.Tensor], input_shape: tuple,
               log_n: int = LOG_N, bsgs_ratio: float = 2.0) -> list[dict]:
    """:func:`pack_here` in a fresh process: Orion keeps its scheme and its transforms in
    process-wide state (Lattigo objects behind integer handles), and a second compile in
    the same process can read the first one's transforms. A fork server (torch preloaded)
    keeps the start cheap without forking a process that has Go's runtime loaded."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "orion_reference"])
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(pack_here, layers, weights, input_shape, log_n, bsgs_ratio).result()


def pack_here(layers: list[dict], weights: list[torch.Tensor], input_shape: tuple,
              log_n: int = LOG_N, bsgs_ratio: float = 2.0) -> list[dict]:
    """Compile a chain of Orion layers (``layers``: Conv2d keyword arguments, or Linear
    ones: ``in_features``/``out_features``) with the given weights and return, per layer,
    its diagonals per block, the "# diagonals" it prints, its output rotations and the
    Galois elements of its transforms. The last layer is Orion's last linear transform
    (square embedding)."""
    import orion
    import orion.nn as on
    from torch.utils.data import DataLoader, TensorDataset

    class Chain(on.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = torch.nn.ModuleList(
                (on.Linear if "in_features" in kw else on.Conv2d)(
                    **kw, bias=False, bsgs_ratio=bsgs_ratio) for kw in layers)

        def forward(self, x):
            for conv in self.convs:
                x = conv(x)
            return x

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        orion.init_scheme(config(log_n))
        net = Chain()
        with torch.no_grad():
            for conv, w in zip(net.convs, weights, strict=True):
                conv.weight.copy_(w)
        data = DataLoader(TensorDataset(torch.randn(1, *input_shape), torch.zeros(1)),
                          batch_size=1)
        orion.fit(net, data)
        orion.compile(net)
        out = []
        for conv in net.convs:
            lt = conv.scheme.lt_evaluator
            out.append({
                "diagonals": {block: sorted(d) for block, d in conv.diagonals.items()},
                "output_rotations": conv.output_rotations,
                "galois": {block: sorted(lt.get_required_rotation_keys(tid))
                           for block, tid in conv.transform_ids.items()},
            })
        orion.delete_scheme()
    for layer, count in zip(out, re.findall(r"# diagonals = (\d+)", printed.getvalue()),
                            strict=True):
        layer["printed_diagonals"] = int(count)  # what Orion reports per layer
    return out


def galois_element(step: int, log_n: int = LOG_N) -> int:
    """Lattigo's Galois element 5^step mod 2N of a rotation step."""
    two_n = 2 << log_n
    return pow(5, step % two_n, two_n)
