"""The report's PNG figures (matplotlib's object API with the Agg canvas: no pyplot, no global state).

Each function draws one figure and writes it atomically to ``path`` (bettersynth.files.atomic_path).
Used by bettersynth.experiments.report.

    loss_curves({"run-a": log_history, ...}, "pretrain", Path("report_files/loss_pretrain.png"))
    score_bars(["run-a", "run-b"], {"TextVQA": [Interval, Interval]}, Path("report_files/scores.png"))
    spread_bars(["group 1"], {"TextVQA": [Spread]}, Path("report_files/groups.png"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bettersynth.experiments.stats import Interval, Spread
from bettersynth.files import atomic_path


def save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def loss_curves(logs: dict[str, list[dict[str, Any]]], stage: str, path: Path) -> None:
    """The logged loss against the step, one line per run."""
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for name, log in logs.items():
        axes.plot([entry["step"] for entry in log], [entry["loss"] for entry in log], label=name, linewidth=1.2)
    axes.set_title(f"{stage} loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (logged window mean)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    save(figure, path)


def score_bars(labels: list[str], intervals: dict[str, list[Interval]], path: Path) -> None:
    """One panel per metric: a bar per run with its 95% bootstrap interval."""
    figure = Figure(figsize=(max(4.0, 1.2 + 0.6 * len(labels)) * len(intervals), 4))
    for axes, (metric, values) in zip(figure.subplots(1, len(intervals), squeeze=False)[0], intervals.items()):
        estimates = [value.estimate for value in values]
        errors = [[value.estimate - value.low for value in values], [value.high - value.estimate for value in values]]
        axes.bar(range(len(labels)), estimates, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
        axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
        axes.set_title(metric)
        axes.grid(axis="y", alpha=0.3)
    save(figure, path)


def spread_bars(labels: list[str], spreads: dict[str, list[Spread]], path: Path) -> None:
    """One panel per metric: a bar per group at its mean over seeds, the error bar one std."""
    figure = Figure(figsize=(max(4.0, 1.2 + 0.8 * len(labels)) * len(spreads), 4))
    for axes, (metric, values) in zip(figure.subplots(1, len(spreads), squeeze=False)[0], spreads.items()):
        axes.bar(range(len(labels)), [value.mean for value in values],
                 yerr=[value.std or 0.0 for value in values], capsize=4, color="tab:green", alpha=0.8)
        axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
        axes.set_title(f"{metric} (mean ± std over seeds)")
        axes.grid(axis="y", alpha=0.3)
    save(figure, path)
