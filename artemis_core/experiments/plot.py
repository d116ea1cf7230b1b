"""The comparison plot: accuracy vs rotation reduction, one series per strategy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ArtemisError
from .report import FRONT_KEYS, PARETO, RUNS, LatencyFn, build_table
from .results import RunRecord

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_plot_path(path: str | Path) -> Path:
    """``path``, refused unless its suffix is a file type the plot can be written as."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise ArtemisError(f"--plot {str(path)!r}: allowed file types: {', '.join(PLOT_SUFFIXES)}")
    return path


def plot_comparison(records: Sequence[RunRecord], path: str | Path,
                    latency: LatencyFn | None = None) -> Path:
    """Draw accuracy (mean ± std over seeds) against rotation reduction for every
    strategy, ring the Pareto-optimal points and join them into the front, draw the dense
    baseline, and name the strategies that reached none of their targets; one panel per
    model, dataset and cost model. Writes PNG, SVG or PDF by suffix."""
    # matplotlib takes ~0.4 s to import: only a command that draws pays for it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = check_plot_path(path)
    ok = [r for r in records if r.ok]
    if not ok:
        raise ArtemisError("no successful runs to plot")
    table = build_table(records, latency=latency).rows
    rows = [row for row in table if row[RUNS]]
    panels = list(dict.fromkeys(tuple(row[k] for k in FRONT_KEYS) for row in rows))
    # A Figure with its own Agg canvas: no global pyplot state, works without a display.
    figure = Figure(figsize=(6.4 * len(panels), 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        model, dataset, cost_model = panel
        mine = [r for r in rows if tuple(r[k] for k in FRONT_KEYS) == panel]
        for strategy in dict.fromkeys(r["strategy"] for r in mine):
            series = sorted((r for r in mine if r["strategy"] == strategy),
                            key=lambda r: r["rotation_reduction"])
            ax.errorbar([r["rotation_reduction"] for r in series],
                        [100 * r["accuracy"] for r in series],
                        yerr=[100 * r["accuracy_std"] for r in series],
                        marker="o", capsize=3, label=strategy)
        front = sorted((r for r in mine if r[PARETO]), key=lambda r: r["rotation_reduction"])
        ax.step([r["rotation_reduction"] for r in front], [100 * r["accuracy"] for r in front],
                where="pre", color="black", linewidth=1, alpha=0.6, label="Pareto front")
        ax.scatter([r["rotation_reduction"] for r in front], [100 * r["accuracy"] for r in front],
                   s=160, facecolors="none", edgecolors="black", zorder=3)
        dense = [r.metrics["dense_accuracy"] for r in ok
                 if (r.key.model, r.key.dataset) == (model, dataset)]  # one dense per seed
        ax.axhline(100 * float(np.mean(dense)), color="grey", linestyle="--", label="dense")
        unreached = sorted({r["strategy"] for r in table
                            if tuple(r[k] for k in FRONT_KEYS) == panel}
                           - {r["strategy"] for r in mine})
        if unreached:
            ax.text(0.01, 0.01, f"reached no target: {', '.join(unreached)}", fontsize="small",
                    transform=ax.transAxes, verticalalignment="bottom")
        ax.set_xlabel("rotation reduction (×)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{model} on {dataset} ({cost_model})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
