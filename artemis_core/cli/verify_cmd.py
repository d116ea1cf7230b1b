"""``artemis verify``: run conv layers on real CKKS and check them against torch."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch
from tqdm import tqdm

from ..errors import ArtemisError
from ..he.extract import extract_specs
from ..he.params import HEParams
from ..he.verify import check_layer, layer_inputs
from ..io import render, split_list
from ..registry import get
from .options import choose_model, format_option

COLUMNS = ("layer", "max_abs_error", "rotations", "pmult", "counts_match", "dense_s",
           "pruned_s", "speedup", "keys", "key_MB")


@click.command(epilog="""\b
Examples:
  artemis verify --model digits-resnet --layers conv1,layer1.0.conv1 --log-n 13
  artemis verify --checkpoint runs/digits/diagonal-2x.pt --format json
""")
@click.option("--model", "model_name", help="Registered model name (artemis plugins "
              "--kind model); taken from the checkpoint when one is given.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Trained, possibly pruned, checkpoint (mask = weight != 0).")
@click.option("--layers", help="Comma-separated layer names [default: every conv layer].")
@click.option("--log-n", type=int, default=14, show_default=True,
              help="Ring degree N = 2^K (the chain is [60, 40, 60]: one rescale per layer).")
@click.option("--cost-model", default="gazelle", show_default=True,
              help="Cost model whose plans are executed.")
@format_option()
def verify(model_name: str | None, checkpoint: Path | None, layers: str | None, log_n: int,
           cost_model: str, fmt: str) -> None:
    """Run each chosen layer encrypted on a real input (a test image of the model's
    dataset, else a random one) and report the decryption error against torch, executed
    vs predicted ops, dense vs pruned encrypted latency (CPU seconds of the server's
    work, one thread) and the rotation keys."""
    chosen = choose_model(model_name, checkpoint)
    model, model_name, input_shape = chosen.model, chosen.name, chosen.input_shape
    dataset = chosen.dataset
    params = HEParams.with_depth(log_n, 1)
    planner = get("cost_model", cost_model)()
    specs = {s.name: s for s in extract_specs(model, input_shape)}
    names = _chosen(specs, layers)
    x, source = _input(dataset, input_shape)
    captured = layer_inputs(model.double(), names, x)
    checks = []
    for name in tqdm(names, desc="encrypted layers", file=sys.stderr, leave=False):
        module, layer_x = captured[name]
        checks.append(check_layer(specs[name], params, planner, layer_x, module.weight,
                                  module.bias))
    rows = [_row(c) for c in checks]
    payload = {"model": model_name, "input": source, "log_n": log_n,
               "coeff_modulus_bits": list(params.coeff_modulus_bits),
               "layers": [c.as_dict() for c in checks]}
    click.echo(render(rows, fmt, headers=COLUMNS, json_payload=payload))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise ArtemisError(f"verification failed for layers {failed} (ops differ from the "
                           "plan or the decryption error exceeds the tolerance)")
    click.echo(f"input: {source}; N=2^{log_n}, primes {list(params.coeff_modulus_bits)}",
               err=True)


def _chosen(specs: dict, layers: str | None) -> list[str]:
    if layers is None:
        return [name for name, spec in specs.items() if spec.kind == "conv"]
    names = split_list(layers)
    unknown = [n for n in names if n not in specs]
    if unknown or not names:
        raise ArtemisError(f"unknown layers {unknown}; known: {', '.join(specs)}")
    return names


def _input(dataset: str | None, shape: tuple[int, int, int]) -> tuple[torch.Tensor, str]:
    """The first test image of ``dataset``, or a seeded random input when the dataset
    is unknown or not available here."""
    if dataset is not None:
        try:
            image = get("dataset", dataset)().load("test")[0][0]
        except ArtemisError as exc:
            click.echo(f"dataset {dataset!r} unavailable ({exc}); using a random input",
                       err=True)
        else:
            return image.to(torch.float64), f"{dataset} test image 0"
    gen = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=gen, dtype=torch.float64), "random (seed 0)"


def _row(check) -> dict:
    return {
        "layer": check.name, "max_abs_error": f"{check.max_abs_error:.2e}",
        "rotations": f"{check.executed.rotations}/{check.predicted.rotations}",
        "pmult": f"{check.executed.pmult}/{check.predicted.pmult}",
        "counts_match": check.counts_match, "dense_s": round(check.dense_seconds, 4),
        "pruned_s": round(check.pruned_seconds, 4), "speedup": round(check.speedup, 2),
        "keys": check.predicted.keys, "key_MB": round(check.key_bytes / 1e6, 2),
    }
