"""Rebuild docs/results.md: every number and plot in it, from one resumable run.

For each study (a dataset and the model trained on it) and each cost model (gazelle,
bsgs) it runs ``artemis compare`` with every registered strategy under the fair protocol
(equal budgets, λ chosen on validation, baselines at max reachable and matched
sparsity), then answers the paper's two claims from the stored runs:

* claim 1, "Pareto-optimal models are fully diagonal": the strategies on each front,
  whether their 95 % intervals separate from the best rival at the same target, and
  which rotations (gazelle: tap / diagonal; bsgs: baby / giant) the front models removed;
* claim 2, "1.2-6x lower HE cost": per strategy, the largest rotation and estimated
  latency reductions within 1 pt of dense accuracy, and, for the HE-friendly models,
  the measured encrypted speed-up of that model on our Pyfhel program (executing the
  plan of the cost model it was pruned under) and on the Orion engine, every model of
  a study in one interleaved loop on the same test images.

Runs and measurements are stored under ``--out`` as they finish; a rerun skips them and
only rewrites the document (``--doc``).

    python benchmarks/results.py                  # about 80 min on 2 cores
    python benchmarks/results.py --only digits-he-cnn --doc /tmp/results.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from artemis_core.cli.engine_infer import CALIBRATION_IMAGES, measured_columns, predict
from artemis_core.cli.engine_infer import row as engine_row
from artemis_core.experiments.report import build_table, render_table, run_values
from artemis_core.experiments.results import ResultStore, RunRecord
from artemis_core.experiments.selection import choose_lams
from artemis_core.he.latency import estimate_seconds, load_calibration
from artemis_core.io import write_json_atomic
from artemis_core.learning import checkpoint as ckpt
from artemis_core.pruning.pipeline import HESetting
from artemis_core.registry import get, get_registry

ROOT = Path(__file__).resolve().parents[1]
COST_MODELS = ("gazelle", "bsgs")
#: what each cost model's input / output / other rotations are
KINDS = {"gazelle": ("tap", "diagonal", "fold"), "bsgs": ("baby", "giant", "hybrid sum")}
LAMS = "2,10"
#: "within 1 pt of dense accuracy" (claim 2), on the mean over seeds
WITHIN = 0.01
TABLE_COLUMNS = ("strategy", "target", "at", "runs", "lam", "accuracy", "accuracy_ci95",
                 "delta_accuracy", "rotations", "rotation_reduction", "pmult", "latency_s",
                 "pareto", "overlaps")


@dataclass(frozen=True)
class Study:
    """One dataset and model, compared under every cost model."""

    dataset: str
    model: str
    seeds: int
    #: rotation targets per cost model (bsgs's dense plan leaves less to remove)
    targets: dict[str, str]
    #: extra ``artemis compare`` options (epochs, training subset)
    options: tuple[str, ...] = ()
    #: encrypted test images per model (0: not HE-friendly, not measured encrypted)
    images: int = 0
    orion_log_n: int = 14
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.model}"


STUDIES = (
    Study("digits", "he-cnn", 5, {"gazelle": "1.5x,2x,3x", "bsgs": "1.25x,1.5x,2x"},
          images=16, orion_log_n=13),
    Study("fashion-mnist", "he-lenet", 3, {"gazelle": "1.5x,2x", "bsgs": "1.25x,1.5x"},
          ("--train-subset", "10000", "--epochs", "10", "--prune-epochs", "3"), images=5),
    Study("digits", "digits-resnet", 5, {"gazelle": "1.5x,2x,4x", "bsgs": "1.25x,1.5x,2x"},
          ("--prune-epochs", "5",)),
)


def compare_command(study: Study, cost_model: str, out: Path) -> list[str]:
    """The ``artemis compare`` call of one study under one cost model."""
    seeds = ",".join(str(s) for s in range(study.seeds))
    return ["artemis", "compare", "--dataset", study.dataset, "--model", study.model,
            "--cost-model", cost_model, "--targets", study.targets[cost_model],
            "--seeds", seeds, "--lams", LAMS, *study.options, "--jobs", "2",
            "--out", str(out.relative_to(ROOT) if out.is_relative_to(ROOT) else out),
            "--format", "json"]


def run_compare(study: Study, cost_model: str, out: Path) -> float:
    """Run (or resume) the comparison; returns its wall seconds."""
    command = compare_command(study, cost_model, out)
    started = time.monotonic()
    log = out / f"compare-{cost_model}.log"
    out.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stream:
        done = subprocess.run([str(Path(sys.executable).with_name("artemis")), *command[1:]],
                              stdout=subprocess.DEVNULL, stderr=stream, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    return time.monotonic() - started


def records_of(out: Path, cost_model: str) -> list[RunRecord]:
    """The stored runs of one cost model."""
    return [r for r in ResultStore(out).load().records
            if r.config.get("cost_model", "gazelle") == cost_model]


def dense_counts(out: Path, cost_model: str, log_n: int) -> dict[str, Any]:
    """Dense accuracy per seed, and the dense plan's rotations by kind, PMult and
    estimated seconds (the first seed's checkpoint: the count does not depend on it)."""
    paths = sorted((out / "dense").glob("*.pt"))
    model, info = ckpt.load_model(paths[0])
    setting = HESetting.for_model(model, info.input_shape, cost_model, log_n)
    ops = setting.count_weights(model)
    return {"ops": ops, "seconds": estimate_seconds(ops, load_calibration())}


def table(records: list[RunRecord]):
    latency = load_calibration()
    return build_table(records, group_by=("strategy", "target", "at"), columns=TABLE_COLUMNS,
                       latency=lambda ops: estimate_seconds(ops, latency))


def mean_ops(records: list[RunRecord], row: dict[str, Any]) -> np.ndarray:
    """Mean (input, output, other) rotations of a row's λ-chosen runs."""
    ops = [r.op_count() for r in _members(records, row)]
    return np.mean([[o.input_rotations, o.output_rotations, o.other_rotations]
                    for o in ops], axis=0)


def _members(records: list[RunRecord], row: dict[str, Any]) -> list[RunRecord]:
    """The λ-chosen runs of a (strategy, target, at) row, by seed."""
    def same(record: RunRecord) -> bool:
        values = run_values(record)
        return all(values[k] == row[k] for k in ("strategy", "target", "at"))

    return sorted((r for r in choose_lams(records) if r.ok and same(r)),
                  key=lambda r: r.key.seed)


def claim2_rows(rows: Sequence[dict[str, Any]], dense_seconds: float) -> dict[str, dict]:
    """Per strategy: its rows within 1 pt of dense, the one of largest rotation reduction
    and the largest estimated latency reduction among them."""
    best: dict[str, dict] = {}
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        within = [r for r in rows if r["strategy"] == strategy and r["runs"]
                  and r["delta_accuracy"] >= -WITHIN]
        if not within:
            best[strategy] = {}
            continue
        top = max(within, key=lambda r: r["rotation_reduction"])
        best[strategy] = {"row": top, "latency_reduction": max(
            dense_seconds / r["latency_s"] for r in within)}
    return best


def measure(study: Study, out: Path, cost_model: str, chosen: dict[str, dict],
            records: list[RunRecord]) -> dict[str, Any]:
    """Encrypted runs of the dense model and each strategy's claim-2 model (first seed),
    on the Pyfhel program and on Orion; stored in ``out`` and reused."""
    path = out / f"encrypted-{cost_model}.json"
    if path.exists():
        return json.loads(path.read_text())
    models, labels = [], []
    dense_path = sorted((out / "dense").glob("*seed0__*.pt"))[0]
    models.append(("dense", ckpt.load_model(dense_path)[0]))
    for strategy, pick in chosen.items():
        if pick:
            run = _members(records, pick["row"])[0]
            model = ckpt.load_model(out / "models" / (Path(run.key.file_name).stem + ".pt"))
            models.append((f"{strategy} {pick['row']['target']}", model[0]))
            labels.append(run.key.file_name)
    data = get("dataset", study.dataset)()
    images, truth = (t[: study.images] for t in data.load("test").tensors)
    result: dict[str, Any] = {"images": study.images, "runs": labels}
    from artemis_core.deploy.encrypted_eval import run_encrypted

    started = time.monotonic()
    try:
        runs = run_encrypted(models, images, truth, get("cost_model", cost_model)())
        result["pyfhel"] = [{**measured_columns(r, runs[0]), "rotations": r.rotations,
                             "keys": r.rotation_keys} for r in runs]
    except Exception as exc:  # a model the program refuses is reported, not fatal
        result["pyfhel_error"] = f"{type(exc).__name__}: {exc}"
    result["pyfhel_seconds"] = time.monotonic() - started
    started = time.monotonic()
    if "orion" in get_registry().names("engine"):
        from artemis_core.deploy.engine import run_engine

        engine = get("engine", "orion")({"log_n": study.orion_log_n})
        try:
            calibration = data.load("train").tensors[0][:CALIBRATION_IMAGES]
            runs = run_engine(engine, models, images, truth, calibration)
            predicted = predict("bsgs", [m for _, m in models], data.input_shape,
                                study.orion_log_n)
            result["orion"] = [engine_row(r, runs[0], p, predicted[0])
                               for r, p in zip(runs, predicted, strict=True)]
        except Exception as exc:
            result["orion_error"] = f"{type(exc).__name__}: {exc}"
    result["orion_seconds"] = time.monotonic() - started
    write_json_atomic(path, result)
    return result


def fmt_ci(ci: list[float] | None) -> str:
    return "-" if ci is None else f"[{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]"


def claim1_text(cost_model: str, rows: Sequence[dict[str, Any]], records: list[RunRecord],
                dense_ops: np.ndarray) -> list[str]:
    """Markdown rows: each front row, its interval, its rival and the rotations removed."""
    kinds = KINDS[cost_model]
    lines = ["| on the front | accuracy % (95 % CI) | best rival at that target | separated? "
             f"| {kinds[0]} removed | {kinds[1]} removed | {kinds[2]} removed |",
             "|---|---|---|---|---|---|---|"]
    for row in (r for r in rows if r["pareto"]):
        removed = dense_ops - mean_ops(records, row)
        rivals = [r for r in rows if r["target"] == row["target"] and r["runs"]
                  and r["strategy"] != row["strategy"]]
        rival = max(rivals, key=lambda r: r["accuracy"], default=None)
        separated = "-" if rival is None or row["accuracy_ci95"] is None else (
            "no" if row["overlaps"] else "yes")
        rival_text = "-" if rival is None else (
            f"{rival['strategy']} {100 * rival['accuracy']:.2f} {fmt_ci(rival['accuracy_ci95'])}")
        lines.append(
            f"| {row['strategy']} {row['target']} ({row['at']}) | "
            f"{100 * row['accuracy']:.2f} {fmt_ci(row['accuracy_ci95'])} | {rival_text} | "
            f"{separated} | {removed[0]:.1f} of {dense_ops[0]:.0f} | "
            f"{removed[1]:.1f} of {dense_ops[1]:.0f} | {removed[2]:.1f} of {dense_ops[2]:.0f} |")
    return lines


def claim2_text(chosen: dict[str, dict], encrypted: dict[str, Any] | None) -> list[str]:
    """Markdown rows: per strategy, the reductions within 1 pt and the measured speed-ups."""
    lines = ["| strategy | largest rot. reduction within 1 pt (target, Δ acc.) "
             "| largest est. latency reduction within 1 pt | Pyfhel speed-up (agreement) "
             "| Orion speed-up (agreement; predicted) |", "|---|---|---|---|---|"]

    def engine_cell(name: str, label: str) -> str:
        if encrypted is None:
            return "not HE-friendly"
        if f"{name}_error" in encrypted:
            return f"failed: {encrypted[f'{name}_error'][:80]}"
        row = next((r for r in encrypted.get(name, []) if r["model"] == label), None)
        if row is None:
            return "-"
        extra = f"; {row['pred_latency_reduction']:.2f}×" if name == "orion" else ""
        return f"{row['speedup']:.2f}× ({100 * row['agreement']:.0f} %{extra})"

    for strategy, pick in chosen.items():
        if not pick:
            lines.append(f"| {strategy} | none within 1 pt | - | - | - |")
            continue
        row = pick["row"]
        label = f"{strategy} {row['target']}"
        lines.append(
            f"| {strategy} | {row['rotation_reduction']:.2f}× ({row['target']}, {row['at']}; "
            f"{100 * row['delta_accuracy']:+.2f} pt) | {pick['latency_reduction']:.2f}× | "
            f"{engine_cell('pyfhel', label)} | {engine_cell('orion', label)} |")
    return lines


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                            "--", "artemis_core", "plugins", "strategies", "benchmarks"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def study_section(study: Study, out: Path, timings: dict[str, float],
                  doc_dir: Path) -> list[str]:
    """The document's section of one study: per cost model, dense plan, table, plot and
    both claims."""
    from artemis_core.experiments.plot import plot_comparison

    lines = [f"## {study.model} on {study.dataset}", ""]
    settings = " ".join(study.options) or "the pipeline's default epochs"
    lines += [f"{study.seeds} seeds (0–{study.seeds - 1}); {settings}; λ ∈ {{{LAMS}}} chosen "
              "per strategy × target × seed on the validation split (10 %); every phase "
              "after the dense model gets the same epochs for every strategy.", ""]
    for cost_model in COST_MODELS:
        records = records_of(out, cost_model)
        ok = [r for r in records if r.ok]
        log_n = ok[0].metrics["log_n"]
        dense = dense_counts(out, cost_model, log_n)
        dense_acc = np.array(sorted({(r.key.seed, r.metrics["dense_accuracy"])
                                     for r in ok}))[:, 1]
        ops = dense["ops"]
        dense_ops = np.array([ops.input_rotations, ops.output_rotations, ops.other_rotations])
        kinds = KINDS[cost_model]
        built = table(records)
        plot = doc_dir / f"results-{study.name}-{cost_model}.png"
        plot_comparison(records, plot, lambda o: estimate_seconds(o, load_calibration()))
        chosen = claim2_rows(built.rows, dense["seconds"])
        encrypted = measure(study, out, cost_model, chosen, records) if study.images else None
        lines += [
            f"### {cost_model}", "",
            f"Command: `{' '.join(compare_command(study, cost_model, out))}` "
            f"({timings.get(f'{study.name}-{cost_model}', 0) / 60:.1f} min in the run "
            "that stored it). Dense: "
            f"{100 * dense_acc.mean():.2f} ± {100 * dense_acc.std(ddof=1):.2f} % over "
            f"{len(dense_acc)} seeds, {ops.rotations} rotations ({ops.input_rotations} "
            f"{kinds[0]}, {ops.output_rotations} {kinds[1]}, {ops.other_rotations} "
            f"{kinds[2]}), {ops.pmult} PMult, est. {dense['seconds']:.3f} s at N = 2^{log_n}.",
            "", render_table(built, "github"), "",
            f"![{study.model} on {study.dataset}, {cost_model}]({plot.name})", "",
            f"**Claim 1** ({cost_model}): the Pareto front (mean accuracy vs rotation "
            "reduction) and what its models removed (mean over seeds):", "",
            *claim1_text(cost_model, built.rows, records, dense_ops), "",
            f"**Claim 2** ({cost_model}):"
            + (f" encrypted on the first {study.images} test images, dense and every "
               "strategy's model (its first seed) in one interleaved loop; Pyfhel executes "
               f"the {cost_model} plan at N = 2^{log_n}, Orion its own BSGS at "
               f"N = 2^{study.orion_log_n} (predicted: bsgs's estimated latency reduction)."
               if encrypted else " (ReLU network: no encrypted run without bootstrapping)."),
            "", *claim2_text(chosen, encrypted), "",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "results")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--only", help="comma-separated study names (DATASET-MODEL)")
    args = parser.parse_args()
    studies = [s for s in STUDIES if not args.only or s.name in args.only.split(",")]
    if not studies:
        sys.exit(f"--only {args.only}: allowed: {', '.join(s.name for s in STUDIES)}")
    timings_path = args.out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    started = time.monotonic()
    for study in studies:
        for cost_model in COST_MODELS:
            key = f"{study.name}-{cost_model}"
            print(f"compare {key} ...", flush=True)
            seconds = run_compare(study, cost_model, args.out / study.name)
            if key not in timings or seconds > timings[key]:  # a resume reuses the runs
                timings[key] = seconds
                timings[f"{key}@commit"] = commit()
            write_json_atomic(timings_path, timings)
    sections = []
    for study in studies:
        print(f"analyse and measure {study.name} ...", flush=True)
        sections += study_section(study, args.out / study.name, timings, args.doc.parent)
    timings["this_run"] = time.monotonic() - started
    write_json_atomic(timings_path, timings)
    compare_seconds = sum(v for k, v in timings.items()
                          if isinstance(v, float) and k != "this_run")
    head = [
        "# Results: every strategy under both cost models, with measured speed-ups", "",
        f"Produced by `python benchmarks/results.py` at commit `{commit()}` on "
        f"{date.today()} on {os.cpu_count()} cores; the stored runs took "
        f"{compare_seconds / 60:.0f} min of "
        f"comparisons, and this run {timings['this_run'] / 60:.0f} min (measurements "
        "included). Rows are mean ± std over seeds; `accuracy 95% CI` is Student-t over "
        "the seeds; `pareto` marks the front of each cost model; `overlaps` names the "
        "best rival at the same target whose interval overlaps. Estimated latency uses the "
        "shipped calibration.", "",
    ]
    args.doc.write_text("\n".join(head + sections) + "\n")
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
