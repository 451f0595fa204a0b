"""``bsynth report``: one HTML page comparing runs, with its PNG figures in a folder beside it.

    bsynth report RUN... [--group-by settings|recipe] [--reference EXP] [--draws 2000] [--bootstrap-seed 0] \
        --out report.html

RUN: an experiment name (``output/experiments/<RUN>/run.json``) or the path of a run.json. The page
(``report.html``) holds no scripts or external styles; its figures are PNG files in
``report_files/`` beside it (named after the page), referenced by relative path: copy both to
share. Sections: the runs (the ``bsynth runs`` table), loss curves overlaid per stage, scores
with 95% bootstrap intervals over questions, groups of runs that differ only by seed (mean ± std),
a paired comparison of the first two groups, and the methods. Runs without both benchmarks'
per-question results yet appear in the table and the loss curves only. Statistics:
bettersynth.experiments.stats; grouping: bettersynth.experiments.groups.

Refused before anything is written (exit status 1, an earlier page left as it was): a run given twice,
more than ``MAX_DRAWS`` (100,000) bootstrap draws,
an --out that is a folder or a file this command did not write (a page it wrote carries its
generator tag and is replaced), a figures folder that is a file, runs whose questions differ, a
reference without scores. A write that fails midway leaves no page at --out.
"""

from __future__ import annotations

import html
from dataclasses import fields
from pathlib import Path
from typing import Any

from bettersynth.eval.score import benchmark_values
from bettersynth.experiments import groups as grouping
from bettersynth.experiments import plots, stats
from bettersynth.experiments.defaults import BOOTSTRAP_SEED, DRAWS, MAX_DRAWS
from bettersynth.experiments.runs import HEADERS, RunRow, shown, table_rows
from bettersynth.files import atomic_output

STAGES = ("pretrain", "finetune")
FIGURES = ("loss_pretrain.png", "loss_finetune.png", "scores.png", "groups.png")
GENERATOR_TAG = '<meta name="generator" content="bsynth report">'  # marks a page --out may replace


def metrics(reference: dict[str, Any] | None) -> dict[str, stats.Weights]:
    """The metrics reported: each benchmark's accuracy, and the challenge score against a reference."""
    chosen: dict[str, stats.Weights] = {"TextVQA": {"textvqa": 1.0}, "MMBench strict": {"mmbench_strict": 1.0},
                                        "MMBench letter-extracted": {"mmbench_extracted": 1.0}}
    if reference is not None:
        text, bench = benchmark_values(reference["scores"], f"reference {reference['exp_name']}")
        chosen["challenge score"] = {"textvqa": 0.5 / text, "mmbench_strict": 0.5 / bench}
    return chosen


def table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(folder: Path, name: str, alt: str) -> str:
    return f'<p><img src="{html.escape(folder.name)}/{name}" alt="{html.escape(alt)}"></p>'


def runs_section(records: list[dict[str, Any]], reference: dict[str, Any] | None) -> str:
    names = [field.name for field in fields(RunRow)]
    rows = table_rows(records, reference)
    return table([HEADERS[name] for name in names],
                 [[shown(name, getattr(row, name)) for name in names] for row in rows])


def loss_section(records: list[dict[str, Any]], folder: Path) -> str:
    parts = []
    for stage in STAGES:
        logs = {record["exp_name"]: ((record.get("stages") or {}).get(stage) or {}).get("log") or []
                for record in records}
        logs = {name: log for name, log in logs.items() if log}
        if logs:
            plots.loss_curves(logs, stage, folder / f"loss_{stage}.png")
            parts.append(figure(folder, f"loss_{stage}.png", f"{stage} loss curves"))
        else:
            parts.append(f"<p>No {stage} steps logged yet.</p>")
    return "".join(parts)


def score_section(scored: list[dict[str, Any]], run_values: list[dict], chosen: dict[str, stats.Weights],
                  folder: Path, draws: int, seed: int) -> str:
    labels = [record["exp_name"] for record in scored]
    intervals: dict[str, list[stats.Interval]] = {metric: [] for metric in chosen}
    for values in run_values:
        for metric, weights in chosen.items():
            intervals[metric].append(stats.run_interval(values, weights, draws, seed))
    plots.score_bars(labels, intervals, folder / "scores.png")
    rows = [[label] + [f"{i.estimate:.4f} [{i.low:.4f}, {i.high:.4f}]" for i in (intervals[m][n] for m in chosen)]
            for n, label in enumerate(labels)]
    return table(["run"] + [f"{metric} [95% interval]" for metric in chosen], rows) + \
        figure(folder, "scores.png", "scores with 95% bootstrap intervals")


def spread_text(spread: stats.Spread) -> str:
    return f"{spread.mean:.4f} ± {spread.std:.4f}" if spread.std is not None else f"{spread.mean:.4f} (one run)"


def group_section(run_groups: list[grouping.RunGroup], group_values: list[dict], chosen: dict[str, stats.Weights],
                  folder: Path) -> str:
    spreads = {metric: [stats.seed_spread(values, weights) for values in group_values]
               for metric, weights in chosen.items()}
    labels = [group.label for group in run_groups]
    plots.spread_bars(labels, spreads, folder / "groups.png")
    rows = [[group.label, ", ".join(group.names), str(len(group.records))]
            + [spread_text(spreads[m][n]) for m in chosen]
            for n, group in enumerate(run_groups)]
    return table(["group", "runs", "seeds"] + [f"{metric} mean ± std" for metric in chosen], rows) + \
        figure(folder, "groups.png", "group means with one standard deviation")


def comparison_section(run_groups: list[grouping.RunGroup], group_values: list[dict], chosen: dict[str, stats.Weights],
                       draws: int, seed: int) -> str:
    if len(run_groups) < 2:
        return "<p>Only one group of scored runs: nothing to compare.</p>"
    a, b = run_groups[:2]
    rows = []
    for metric, weights in chosen.items():
        result = stats.paired_comparison(group_values[0], group_values[1], weights, draws, seed)
        rows.append([metric, f"{result.difference:+.4f}", f"[{result.low:+.4f}, {result.high:+.4f}]",
                     f"{result.p_a_better:.3f}"])
    intro = (f"<p>A = <b>{html.escape(a.label)}</b> ({len(a.records)} run(s)), B = <b>{html.escape(b.label)}</b> "
             f"({len(b.records)} run(s)).</p>")
    return intro + table(["metric", "A − B", "95% interval", "P(A > B)"], rows)


def methods_section(by: str, reference: dict[str, Any] | None, draws: int, seed: int) -> str:
    against = (f"the challenge score is (TextVQA / T + MMBench strict / M) / 2 with T and M the accuracies of the "
               f"reference run <code>{html.escape(reference['exp_name'])}</code>, held fixed (not resampled)"
               if reference is not None else "no reference run was given, so no ratios or challenge score")
    grouped = ("Runs whose Editable Part values are equal except the seed, the experiment name and the values "
               "that do not change what is trained (GPUs, workers, logging and checkpoint cadence, compiling, "
               "gradient checkpointing, the deepspeed config, the split of the global batch), with the recipe and "
               "the training data compared by content (recipe operators' fingerprint, export SHA-256)"
               if by == "settings" else "Runs with the same recipe operators (or the same export without a recipe)")
    items = [
        ("<b>Per-question values.</b> TextVQA: the VQA soft score of each question (for each of the 10 "
         "ground-truth answers left out in turn, min(1, matches among the other 9 / 3), averaged), after the "
         "EvalAI normalisation. MMBench: 1 when every circular copy of a base question is answered right, else 0; "
         "strict compares the answer text with the letter exactly (the official scorer), letter-extracted "
         "compares the leading option letter. A benchmark's accuracy is the mean of its per-question values "
         "(the same code as <code>bsynth score run</code>)."),
        f"<b>Metrics.</b> TextVQA accuracy, MMBench strict and letter-extracted circular accuracy; {against}.",
        (f"<b>Bootstrap.</b> {draws} draws, numpy <code>default_rng({seed})</code>. Each draw resamples each "
         "benchmark's questions with replacement (as many as it has) and, within each group, its runs (seeds) "
         "with replacement (as many as the group has); a draw's score is the weighted sum over benchmarks of the "
         "mean, over the resampled runs, of the mean over the resampled questions. The question indices are drawn "
         "first (one array per benchmark), then each group's run indices, and the same question indices serve "
         "every group (paired over questions)."),
        ("<b>Score intervals.</b> For each run alone: the 2.5th and 97.5th percentiles (linear interpolation) of "
         "its resampled scores (questions resampled, one run)."),
        (f"<b>Groups.</b> {grouped}. Shown: the mean and the sample standard deviation (ddof 1) of the runs' "
         "scores, without resampling."),
        ("<b>Paired comparison.</b> The first two groups, A and B: the observed difference score(A) − score(B) "
         "(group scores: means over runs and questions); its 95% interval the percentiles of the per-draw "
         "differences; P(A &gt; B) the share of draws where A's resampled score is strictly above B's. The "
         "interval covers question sampling and seed-to-seed variation among the seeds run, not other seeds' "
         "runs; with one run in a group its seed variation is not seen."),
        ("<b>Losses.</b> The trainer's logged loss (mean over the optimizer steps of each logging window, as "
         "<code>trainer_state.json</code> records it) against the optimizer step; the table's loss is the last one."),
    ]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}"
         "th{background:#f3f3f3}img{max-width:100%}")


class ReportError(ValueError):
    """A report that cannot be made as asked (the message names the run or the path)."""


def check_request(records: list[dict[str, Any]], out: Path, folder: Path, draws: int, seed: int) -> None:
    """ReportError for what no report can be made of: no runs, a run given twice, a bad bootstrap or --out."""
    if not records:
        raise ReportError("no runs given")
    names = [record["exp_name"] for record in records]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ReportError(f"run(s) given more than once: {', '.join(map(repr, twice))}; a report shows each run "
                          "once (runs of two sweeps with one name cannot be told apart: report them separately)")
    if not 1 <= draws <= MAX_DRAWS or seed < 0:
        raise ReportError(f"the bootstrap needs 1 to {MAX_DRAWS} draws and a seed >= 0, got {draws} draws, "
                          f"seed {seed}")
    if out.exists() and not out.is_file():
        raise ReportError(f"--out {out} is a folder (or another non-file); give the path of the HTML page to write")
    if out.is_file() and not written_by_report(out):
        raise ReportError(f"--out {out} exists and is not a page `bsynth report` wrote; it is left as it is: "
                          "give a new path (or remove that file)")
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--out {out}: its figures go to the folder {folder}, but a file of that name is there")


def written_by_report(path: Path) -> bool:
    """Whether ``path`` starts as the pages this module writes (their generator tag), so it may be replaced."""
    with open(path, "rb") as handle:
        return GENERATOR_TAG.encode() in handle.read(4096)


def build_report(records: list[dict[str, Any]], out: Path, by: str = "settings",
                 reference: dict[str, Any] | None = None,
                 draws: int = DRAWS, seed: int = BOOTSTRAP_SEED) -> Path:
    """Writes the page and its figures; returns the page's path. Every check of the request and the runs
    (ReportError, RecordError, GroupError, EvalDataError) comes before anything is written, so a refused
    report leaves an earlier page as it was; once writing starts the earlier page goes first, so a write
    that fails (OSError) leaves no page that could be taken for this report."""
    out = Path(out)
    folder = out.with_name(out.stem + "_files")
    check_request(records, out, folder, draws, seed)
    runs_table = runs_section(records, reference)  # checks the reference first: the clearest message
    chosen = metrics(reference)
    scored = [record for record in records if grouping.is_scored(record)]
    unscored = [record["exp_name"] for record in records if not grouping.is_scored(record)]
    if scored:
        order = grouping.question_order(scored[0])
        run_groups = grouping.group_runs(scored, by)
        group_values = [grouping.matrices(group.records, order) for group in run_groups]
        run_values = [{name: matrix[0] for name, matrix in grouping.matrices([record], order).items()}
                      for record in scored]
    out.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:  # a figure this report does not draw must not survive from an earlier one
        (folder / name).unlink(missing_ok=True)
    sections = [("Runs", runs_table), ("Loss curves", loss_section(records, folder))]
    if scored:
        sections += [("Scores", score_section(scored, run_values, chosen, folder, draws, seed)),
                     ("Seed groups", group_section(run_groups, group_values, chosen, folder)),
                     ("Paired comparison", comparison_section(run_groups, group_values, chosen, draws, seed))]
    else:
        sections += [(title, "<p>No run has per-question scores yet.</p>")
                     for title in ("Scores", "Seed groups", "Paired comparison")]
    if unscored:
        sections[0] = ("Runs", sections[0][1] + f"<p>Without scores yet (table and losses only): "
                                                f"{html.escape(', '.join(unscored))}.</p>")
    sections.append(("Methods", methods_section(by, reference, draws, seed)))
    body = "".join(f"<h2>{title}</h2>{content}" for title, content in sections)
    with atomic_output(out) as handle:
        handle.write(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\">{GENERATOR_TAG}"
                     f"<title>Experiments report</title><style>{STYLE}</style></head><body><h1>Experiments report</h1>"
                     f"<p>Runs: {html.escape(', '.join(record['exp_name'] for record in records))}; "
                     f"grouped by {html.escape(by)}.</p>{body}</body></html>\n")
    return out
