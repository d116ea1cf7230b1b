"""``artemis infer``: end-to-end encrypted inference, dense vs diagonal-pruned."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from artemis_plugins.backends.pyfhel import PyfhelBackend
from torch import nn

from ..deploy.encrypted_eval import MB, EncryptedRun, run_encrypted
from ..deploy.he_program import fit_params
from ..errors import ArtemisError
from ..he.cost_model import CostModel
from ..io import render
from ..learning.zoo import build_model
from ..pruning.budget import parse_target
from ..pruning.pipeline import PruneConfig, prune_run, train_dense
from ..registry import get
from .engine_infer import measured_columns, read_config, run_on_engine
from .options import choose_model, cost_model_option, format_option

COLUMNS = ("model", "images", "plain_acc", "encrypted_acc", "agreement", "max_logit_err",
           "s_per_image", "cpu_s_per_image", "server_s", "est_server_s", "speedup",
           "cpu_speedup", "rotations",
           "rotation_reduction", "keys", "key_MB", "sent_MB", "security")


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
              help="YAML or JSON settings of a non-artemis engine, e.g. Orion's ckks_params "
                   "(docs/deploying-on-orion.md) [default: a 128-bit secure chain fitted to "
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
    the ciphertext, the client decrypts the logits. Reports accuracy, agreement with
    plaintext predictions, latency, rotations, keys and bytes sent. With --engine orion
    the same dense and pruned models run on Orion instead, beside the reductions the
    cost model (there: bsgs) predicted."""
    if engine_name != "artemis":
        settings = {"log_n": log_n, **({"allow_insecure": True} if allow_insecure else {})}
        engine = get("engine", engine_name)({**settings, **read_config(engine_config)})
        config = PruneConfig(lam=lam, reg_epochs=reg_epochs, finetune_epochs=finetune_epochs)
        strategy = strategy or engine.strategy
        get("strategy", strategy)
        with _directory(workdir) as directory:
            run_on_engine(engine, directory, checkpoint, model_name, dataset, count, strategy,
                          target, cost_model, epochs, config, log_n, seed, fmt)
        return
    strategy = strategy or "diagonal"
    cost_model_name = cost_model or "gazelle"
    cost_model = get("cost_model", cost_model_name)()
    get("strategy", strategy)
    parse_target(target)  # refuse a bad target before spending any time on training
    with _directory(workdir) as directory:
        dense_path = checkpoint
        if dense_path is None:
            data = get("dataset", dataset)()
            fresh = build_model(model_name, data.num_classes, data.input_shape)
            _check_runnable(fresh, data.input_shape, cost_model, log_n, scale_bits,
                            allow_insecure)
            dense_path = directory / f"{model_name}-{dataset}-s{seed}-dense.pt"
            train_dense(model_name, dataset, seed, epochs, dense_path)
        chosen = choose_model(None, dense_path)
        dense, info = chosen.model, chosen.checkpoint
        _check_runnable(dense, info.input_shape, cost_model, log_n, scale_bits, allow_insecure)
        suffix = "" if cost_model_name == "gazelle" else f"-{cost_model_name}"
        pruned_path = directory / (f"{dense_path.stem}-{strategy}-{target}-lam{lam:g}"
                                   f"-r{reg_epochs}-f{finetune_epochs}{suffix}.pt")
        if not pruned_path.exists():
            config = PruneConfig(lam=lam, reg_epochs=reg_epochs, finetune_epochs=finetune_epochs,
                                 cost_model=cost_model_name)
            prune_run(strategy, target, dense_path, seed, out=pruned_path, config=config)
        pruned = choose_model(None, pruned_path).model
    images, labels = get("dataset", info.dataset)().load("test").tensors
    images, labels = images[:count], labels[:count]
    runs = run_encrypted([("dense", dense), (f"{strategy} {target}", pruned)], images, labels,
                         cost_model, log_n, scale_bits, allow_insecure=allow_insecure)
    rows = [_row(run, runs[0]) for run in runs]
    payload = {
        "model": info.model, "dataset": info.dataset, "images": len(images),
        "strategy": strategy, "cost_model": cost_model_name, "target": target,
        "speedup": rows[1]["speedup"],
        "cpu_speedup": rows[1]["cpu_speedup"],
        "rotation_reduction": rows[1]["rotation_reduction"],
        "security": runs[0].security, "allow_insecure": allow_insecure,
        "dense": runs[0].as_dict(), "pruned": runs[1].as_dict(),
    }
    click.echo(render(rows, fmt, COLUMNS, json_payload=payload))


def _check_runnable(model: nn.Module, input_shape: tuple[int, int, int], cost_model: CostModel,
                    log_n: int, scale_bits: int, allow_insecure: bool) -> None:
    """Refuse, before any training or pruning, a model without a leveled-HE form and
    parameters that are insecure or that SEAL refuses (it has no 128-bit table past
    N = 2^15)."""
    PyfhelBackend(fit_params(model, input_shape, cost_model, log_n, scale_bits, allow_insecure))


def _row(run: EncryptedRun, dense: EncryptedRun) -> dict:
    """Table row; ratios are against the dense run (measured in the same loop)."""
    return {
        **measured_columns(run, dense),
        "server_s": round(run.server_seconds_per_image, 3),
        "est_server_s": None if run.estimated_server_seconds is None
        else round(run.estimated_server_seconds, 3),
        "rotations": run.rotations,
        "rotation_reduction": round(dense.rotations / max(run.rotations, 1), 3),
        "keys": run.rotation_keys,
        "key_MB": round(run.rotation_key_bytes / MB, 1),
        "sent_MB": round((run.evaluation_key_bytes + run.query_bytes) / MB, 1),
        "security": run.security + (" (--allow-insecure)" if run.allow_insecure else ""),
    }


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
