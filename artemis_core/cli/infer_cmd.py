"""``artemis infer``: end-to-end encrypted inference of a dense and a pruned model on an
engine (``artemis``, our Pyfhel program, by default)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import ArtemisError
from ..pruning.pipeline import PruneConfig
from ..registry import get
from .engine_infer import read_config, run_on_engine
from .options import cost_model_option, format_option


@click.command(epilog="""\b
Examples:
  artemis infer --model he-cnn --dataset digits --n 20
  artemis infer --engine orion --model he-cnn --dataset digits --n 20
  artemis infer --model he-cnn --n 200 --workdir runs/infer --format json
  artemis infer --checkpoint runs/infer/he-cnn-digits-s0-dense.pt --n 50
  artemis infer --cost-model bsgs --strategy hybrid --target 1.5x --n 20
""")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="A trained dense checkpoint (its model and dataset are used); without "
                   "it, --model is trained on --dataset first.")
@click.option("--model", "model_name", default="he-cnn", show_default=True,
              help="HE-friendly model to train (artemis plugins --kind model).")
@click.option("--dataset", default="digits", show_default=True, help="Dataset to train on.")
@click.option("--n", "count", type=click.IntRange(min=1), default=40, show_default=True,
              help="Test images classified encrypted, per model.")
@click.option("--target", default="1.75x", show_default=True,
              help="Rotation target of the diagonal-pruned model (as for artemis prune).")
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True,
              help="Dense training epochs (without --checkpoint).")
@click.option("--reg-epochs", type=click.IntRange(min=0), default=15, show_default=True,
              help="Group-Lasso regularized epochs before pruning.")
@click.option("--finetune-epochs", type=click.IntRange(min=0), default=30, show_default=True,
              help="Fine-tuning epochs of the pruned model.")
@click.option("--lam", type=click.FloatRange(min=0), default=PruneConfig.lam, show_default=True,
              help="Group-Lasso strength λ, the whole regularized phase's penalty "
                   "(docs/strategies.md).")
@click.option("--log-n", type=int, default=14, show_default=True,
              help="Ring degree N = 2^K; the chain [60, scale x depth, 60] fits the model.")
@click.option("--scale-bits", type=int, default=40, show_default=True,
              help="CKKS scale 2^B (and size of the rescaling primes).")
@click.option("--allow-insecure", is_flag=True,
              help="Run a chain beyond the 128-bit table, or N > 2^15 where SEAL cannot "
                   "check security; every result is then marked (security, allow_insecure).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--strategy", help="Strategy of the pruned model (artemis plugins --kind "
                                 "strategy) [default: diagonal; with --engine, the engine's: "
                                 "hybrid for orion].")
@cost_model_option(default=None, default_help=" [default: gazelle; with --engine, the "
                                                "engine's own: bsgs for orion]")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the trained checkpoints here and reuse them on later runs "
                   "[default: a temporary directory].")
@click.option("--engine", "engine_name", default="artemis", show_default=True,
              help="Encrypted-inference engine (artemis plugins --kind engine): artemis "
                   "(our Pyfhel program) or orion (Orion on Lattigo, pruned under bsgs).")
@click.option("--engine-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML or JSON settings of the engine, over the options: Orion's "
                   "ckks_params (docs/deploying-on-orion.md); artemis's log_n, scale_bits, "
                   "cost_model, allow_insecure [default: a 128-bit secure chain fitted to "
                   "the model at --log-n].")
@format_option()
def infer(checkpoint: Path | None, model_name: str, dataset: str, count: int, target: str,
          epochs: int, reg_epochs: int, finetune_epochs: int, lam: float, log_n: int,
          scale_bits: int, allow_insecure: bool, seed: int, strategy: str | None,
          cost_model: str | None, workdir: Path | None, engine_name: str,
          engine_config: Path | None,
          fmt: str) -> None:
    """Classify test images encrypted, client and server apart, with the dense model and
    its pruned version (--strategy, counted and run under --cost-model): the client
    encrypts each image, a server holding only evaluation keys runs the whole network on
    the ciphertext, the client decrypts the logits. Both models run on --engine in one
    interleaved loop. Reports accuracy, agreement with plaintext predictions, latency
    (wall and CPU), the engine's own counts (artemis: server seconds and their estimate,
    rotations, keys, bytes sent; orion: diagonals, keys, bootstraps, levels) and the
    rotation and latency reductions the cost model (orion: bsgs) predicted."""
    settings: dict[str, Any] = {"log_n": log_n}
    if allow_insecure:
        settings["allow_insecure"] = True
    if engine_name == "artemis":  # our program executes the cost model it prunes under
        settings |= {"scale_bits": scale_bits, "cost_model": cost_model or "gazelle"}
    engine = get("engine", engine_name)({**settings, **read_config(engine_config)})
    config = PruneConfig(lam=lam, reg_epochs=reg_epochs, finetune_epochs=finetune_epochs)
    strategy = strategy or engine.strategy
    get("strategy", strategy)
    with _directory(workdir) as directory:
        run_on_engine(engine, directory, checkpoint, model_name, dataset, count, strategy,
                      target, cost_model, epochs, config, log_n, seed, fmt)


@contextmanager
def _directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtemisError(f"cannot create --workdir {path}: {exc.strerror}") from exc
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="artemis-infer-") as temporary:
        yield Path(temporary)
