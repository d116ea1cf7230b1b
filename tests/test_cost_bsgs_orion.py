"""Orion itself agrees with the bsgs cost model: for the same layers and weights, our
diagonals per block are the ones Orion packs (PMult = Orion's "# diagonals"), our
rotation steps per block are the Galois elements Orion asks Lattigo keys for, and our
output rotations are the hybrid embedding's — dense and pruned."""

from __future__ import annotations

import importlib.util
import zlib

import numpy as np
import pytest
import torch
from artemis_plugins.cost.bsgs import BsgsCostModel
from orion_reference import LOG_N, galois_element, orion_pack

from artemis_core import ConvSpec, HEParams

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("orion") is None,
    reason="orion-fhe is not installed (scripts/install_orion.sh installs it: "
           "pip install --no-deps orion-fhe==1.0.2 h5py PyYAML 'scipy<=1.14.1')",
)

PARAMS = HEParams(LOG_N, allow_insecure=True)


def conv(c_in, c_out, k=3, stride=1):
    return dict(in_channels=c_in, out_channels=c_out, kernel_size=k, stride=stride,
                padding=k // 2)


# (input shape, Orion layers, our specs): strides and gaps, 1x1 and 5x5 kernels, one
# and several blocks, channels that straddle ciphertexts (12x12 = 144 slots), a linear
CHAINS = {
    "strided": ((4, 16, 16), [conv(4, 8, stride=2), conv(8, 8), conv(8, 16, 1, 2), conv(16, 4)],
                [ConvSpec("a", 4, 8, stride=2, height=16, width=16),
                 ConvSpec("b", 8, 8, height=8, width=8, gap=2),
                 ConvSpec("c", 8, 16, 1, 2, 0, height=8, width=8, gap=2),
                 ConvSpec("d", 16, 4, height=4, width=4, gap=4)]),
    "blocks": ((8, 16, 16), [conv(8, 16), conv(16, 16, stride=2), conv(16, 8)],
               [ConvSpec("a", 8, 16, height=16, width=16),
                ConvSpec("b", 16, 16, stride=2, height=16, width=16),
                ConvSpec("c", 16, 8, height=8, width=8, gap=2)]),
    "straddling": ((16, 12, 12), [conv(16, 20), conv(20, 6, 5, 2), conv(6, 3)],
                   [ConvSpec("a", 16, 20, height=12, width=12),
                    ConvSpec("b", 20, 6, 5, 2, 2, height=12, width=12),
                    ConvSpec("c", 6, 3, height=6, width=6, gap=2)]),
    "linear": ((37,), [dict(in_features=37, out_features=10)],
               [ConvSpec("fc", 37, 10, 1, 1, 0, kind="linear")]),
}


def masks(kind: str, specs: list[ConvSpec], gen: torch.Generator) -> list[torch.Tensor]:
    """Dense, our own groups of a kind dropped at random, or random single weights."""
    out = []
    for spec in specs:
        numel = torch.Size(spec.weight_shape).numel()
        mask = torch.ones(numel)
        if kind == "random":
            mask = (torch.rand(numel, generator=gen) < 0.3).float()
        elif kind != "dense":
            index = BsgsCostModel().group_index(spec, PARAMS, kind)
            drop = index[torch.rand(index.shape[0], generator=gen) < 0.5]
            mask[drop[drop >= 0]] = 0
        out.append(mask.view(spec.weight_shape))
    return out


@pytest.mark.parametrize("chain, mask_kind", [
    ("strided", "dense"), ("strided", "diagonal"), ("straddling", "positional"),
    ("linear", "random"),
])
def test_diagonals_keys_and_output_rotations_equal_orions(chain, mask_kind):
    check_chain(chain, mask_kind)


@pytest.mark.slow
@pytest.mark.parametrize("mask_kind", ["dense", "positional", "diagonal", "baby-step", "random"])
@pytest.mark.parametrize("chain", list(CHAINS))
def test_every_chain_and_mask_agrees_with_orion(chain, mask_kind):
    check_chain(chain, mask_kind)


def check_chain(chain: str, mask_kind: str) -> None:
    shape, layers, specs = CHAINS[chain]
    gen = torch.Generator().manual_seed(zlib.crc32(f"{chain}/{mask_kind}".encode()))
    weights = [torch.randn(s.weight_shape, generator=gen) * m
               for s, m in zip(specs, masks(mask_kind, specs, gen), strict=True)]
    check(shape, layers, specs, weights)


@pytest.mark.slow
def test_orions_ratio_is_passed_through():
    shape, layers, specs = CHAINS["blocks"]
    gen = torch.Generator().manual_seed(3)
    weights = [torch.randn(s.weight_shape, generator=gen) for s in specs]
    check(shape, layers, specs, weights, bsgs_ratio=8.0)


def check(shape, layers, specs, weights, bsgs_ratio: float = 2.0) -> None:
    reference = orion_pack(layers, weights, shape, bsgs_ratio=bsgs_ratio)
    for position, (spec, weight, theirs) in enumerate(zip(specs, weights, reference,
                                                          strict=True)):
        last = position == len(specs) - 1  # Orion packs its last transform square
        model = BsgsCostModel(bsgs_ratio=bsgs_ratio, embedding="square" if last else "hybrid")
        plan = model.plan(spec, PARAMS, weight != 0)
        lay = plan.layout
        assert set(theirs["diagonals"]) == {divmod(b, lay.n_cols) for b in range(lay.n_blocks)}
        for (row, col), diagonals in theirs["diagonals"].items():
            block = row * lay.n_cols + col
            ours = plan.diagonals(block).tolist()
            assert ours == diagonals or (not ours and diagonals == [0]), (spec.name, block)
            steps = np.concatenate(plan.steps(block)) if ours else np.array([], dtype=int)
            assert {galois_element(int(s)) for s in steps if s} == \
                set(theirs["galois"][row, col]) - {1}, (spec.name, block)  # 1: identity
        assert len(lay.output_steps) == theirs["output_rotations"]
        assert plan.op_count().pmult == theirs["printed_diagonals"]
