"""The data report of a recipe run: per-op samples in/out and histograms of what the recipe computed.

Written by ``bsynth recipe run`` next to the export (``NAME_report/``), or again later with

    bsynth recipe report output/processed_data/processed_data.jsonl

- ``report.html``: the per-operator table (samples in, out, kept, seconds; from Data-Juicer's own
  progress lines, kept in the run's run.json) and PNG histograms embedded in the page: caption
  length in words, image width and height (read from the files' headers, at most 5,000 images drawn
  with a fixed seed), and every numeric score in the samples' ``__dj__stats__`` (CLIP similarity,
  ...). Samples written by ``fast_image_captioning_mapper`` are counted.
- ``report.json``: the same numbers (count, mean, quantiles per metric) for scripts and tests.
"""

from __future__ import annotations

import base64
import html
import io
import json
import random
from pathlib import Path

import numpy as np

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN
from bettersynth.data.image_roots import image_path

STATS_KEY = "__dj__stats__"
META_KEY = "__dj__meta__"
MAX_IMAGES = 5000


def op_table(summary: dict) -> list[dict]:
    """One row per operator: samples in and out, share kept, seconds."""
    rows = []
    count = summary.get("loaded_samples") or summary["input_samples"]
    for op in summary.get("ops", []):
        rows.append({"op": op["op"], "in": count, "out": op["left"], "seconds": op["seconds"]})
        count = op["left"]
    if not rows:
        rows.append({"op": f"all operators ({summary['executor']} executor: no per-operator counts)",
                     "in": count, "out": summary["output_samples"], "seconds": None})
    for row in rows:
        row["kept"] = row["out"] / row["in"] if row["in"] else None
    return rows


def numeric(value) -> float | None:
    """A stats value as one number (lists averaged, as Data-Juicer's selectors do), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return float(np.mean(value))
    return None


class ReportError(ValueError):
    """A run record, an export line or an image a report cannot be made from; the message names it."""


def export_rows(export: Path):
    """The export's samples, read line by line; ReportError names the first line that is not a JSON
    object with a text (or bytes that are not UTF-8)."""
    with export.open("rb") as handle:  # bytes, decoded line by line: the error names its line
        for number, raw in enumerate(handle, start=1):
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                raise ReportError(f"{export}: line {number}: not UTF-8 text ({error.reason})") from error
            except ValueError as error:
                raise ReportError(f"{export}: line {number}: not JSON ({error})") from error
            if not isinstance(row, dict) or not isinstance(row.get("text", ""), str):
                raise ReportError(f"{export}: line {number}: not a sample (a JSON object with a text)")
            yield row


def sample_metrics(export: Path, image_root: Path) -> tuple[dict[str, list[float]], int]:
    """(metric name -> values, number of recaptioned samples) over the export; a line that is not a
    sample or an image that cannot be read is a ReportError naming it."""
    from PIL import Image, UnidentifiedImageError

    metrics: dict[str, list[float]] = {"caption length (words)": []}
    images, recaptioned = [], 0
    for row in export_rows(export):
        caption = row.get("text", "").replace(DJ_IMAGE_TOKEN, " ").replace(DJ_EOC_TOKEN, " ")
        metrics["caption length (words)"].append(len(caption.split()))
        images += [image_path(row, path, export, image_root) for path in row.get("images") or []]
        recaptioned += bool((row.get(META_KEY) or {}).get("recaptioned"))
        for key, value in (row.get(STATS_KEY) or {}).items():
            number = numeric(value)
            if number is not None:
                metrics.setdefault(f"stats: {key}", []).append(number)
    unique = sorted(set(images))
    drawn = random.Random(0).sample(unique, min(MAX_IMAGES, len(unique)))
    sizes = []
    for path in drawn:
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except (OSError, UnidentifiedImageError) as error:
            raise ReportError(f"{export}: image {path} cannot be read ({error})") from error
    metrics["image width (px)"] = [float(width) for width, _ in sizes]
    metrics["image height (px)"] = [float(height) for _, height in sizes]
    return metrics, recaptioned


def describe(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    array = np.asarray(values, dtype=np.float64)
    q = np.quantile(array, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {"count": int(array.size), "mean": float(array.mean()), "min": float(q[0]), "q25": float(q[1]),
            "median": float(q[2]), "q75": float(q[3]), "max": float(q[4])}


def histogram_png(values: list[float], title: str) -> str:
    """A histogram as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5.0, 3.2), dpi=100)
    axes.hist(values, bins=min(50, max(5, len(set(values)))), color="#4C72B0")
    axes.set_title(title)
    axes.set_ylabel("samples")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_html(summary: dict, table: list[dict], metrics: dict[str, list[float]], recaptioned: int) -> str:
    def number(value, form: str) -> str:
        return "–" if value is None else format(value, form)

    rows = "".join(f"<tr><td>{html.escape(row['op'])}</td><td>{row['in']}</td><td>{row['out']}</td>"
                   f"<td>{number(row['kept'], '.1%')}</td><td>{number(row['seconds'], '.2f')}</td></tr>"
                   for row in table)
    figures = "".join(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
                      f'{histogram_png(values, name)}"><figcaption>{html.escape(name)}: '
                      f'{len(values)} values</figcaption></figure>' for name, values in metrics.items() if values)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Recipe report: {html.escape(Path(summary['recipe']).name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}table{{border-collapse:collapse}}figure{{display:inline-block;margin:1em}}</style>
</head><body>
<h1>Recipe report</h1>
<p>Recipe <code>{html.escape(summary['recipe'])}</code> on <code>{html.escape(summary['dataset'])}</code>
({html.escape(summary['executor'])} executor): {summary['input_samples']} samples in,
{summary['output_samples']} out ({recaptioned} recaptioned). Export <code>{html.escape(summary['export'])}</code>.</p>
<h2>Samples per operator</h2>
<table><tr><th>operator</th><th>in</th><th>out</th><th>kept</th><th>seconds</th></tr>{rows}</table>
<h2>Distributions in the export</h2>
{figures}
</body></html>
"""


def build_report(export: Path, summary: dict, report_dir: Path) -> dict:
    """Write report.html and report.json for the export of a run described by ``summary``."""
    table = op_table(summary)
    metrics, recaptioned = sample_metrics(export, Path(summary["image_root"]))
    report = {"recipe": summary["recipe"], "input_samples": summary["input_samples"],
              "output_samples": summary["output_samples"], "recaptioned_samples": recaptioned,
              "ops": table, "metrics": {name: describe(values) for name, values in metrics.items()}}
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.html").write_text(render_html(summary, table, metrics, recaptioned), encoding="utf-8")
    (report_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def read_finished_summary(path: Path) -> dict:
    """The run.json at ``path`` when it records a run that succeeded; ReportError says why not."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ReportError(f"{path}: not a readable run record ({error})") from error
    status = summary.get("status") if isinstance(summary, dict) else None
    if status != "complete":
        raise ReportError(f"{path} does not record a finished run (status {status!r}): a report is made of "
                          "the export of a `bsynth recipe run` that succeeded")
    return summary


def report_for_export(export: Path) -> dict:
    """Rebuild the report of a finished ``bsynth recipe run`` export from its work folder (FileNotFoundError
    without one, ReportError when its run.json is unreadable or records a run that did not finish)."""
    summary_path = export.with_name(export.stem + "_work") / "run.json"
    if not export.is_file() or not summary_path.is_file():
        raise FileNotFoundError(f"{export} is not the export of a finished `bsynth recipe run` "
                                f"(needs the file and {summary_path})")
    summary = read_finished_summary(summary_path)
    return build_report(export, summary, export.with_name(export.stem + "_report"))
