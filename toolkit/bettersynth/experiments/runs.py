"""``bsynth runs``: one table of every run record under ``output/experiments/``.

    bsynth runs [--json | --csv] [--reference EXP]

One row per ``experiments/<EXP_NAME>/run.json`` (bettersynth.experiments.record), by name: name,
recipe (file name), samples (lines of the capped training file, else of the export), seed, proxy
pretrain samples (empty for an official run), the last logged loss of each stage, TextVQA accuracy,
MMBench circular accuracy strict and letter-extracted, and with ``--reference`` the two ratios to
that run and the challenge score (their mean, ``bettersynth.eval.score.challenge_score``), then the
wall time (the seconds during which one of the run's artefacts was being made, as the record says).
A value not there yet is empty. The text table shows accuracies in percent; ``--json`` and ``--csv``
give the raw numbers (fractions, seconds); a loss that is NaN or infinite (a diverged training) is
``nan``, ``inf`` or ``-inf`` in every format (a string in ``--json``, which has no such numbers).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from bettersynth.eval.files import EvalDataError
from bettersynth.eval.score import benchmark_values, challenge_score
from bettersynth.experiments.record import RecordError


@dataclass(frozen=True)
class RunRow:
    name: str
    recipe: str | None
    samples: int | None
    seed: int | None
    proxy: int | None
    pretrain_loss: float | None
    finetune_loss: float | None
    textvqa: float | None
    mmbench_strict: float | None
    mmbench_extracted: float | None
    textvqa_ratio: float | None
    mmbench_ratio: float | None
    score: float | None
    wall_time_s: float | None


def final_loss(record: dict[str, Any], stage: str) -> float | None:
    log = ((record.get("stages") or {}).get(stage) or {}).get("log") or []
    return float(log[-1]["loss"]) if log else None


CHALLENGE_TOTALS = (("textvqa", "accuracy"), ("mmbench", "strict_circular_accuracy"))  # the ratios' scores


def has_scores(record: dict[str, Any]) -> bool:
    """Whether the record holds both scores the ratios are taken of (a section may lack its total: a record
    edited by hand), so a run without them has empty ratios instead of failing the table."""
    scores = record.get("scores") or {}
    return all((scores.get(section) or {}).get(total) is not None for section, total in CHALLENGE_TOTALS)


def row_of(record: dict[str, Any], reference: dict[str, Any] | None) -> RunRow:
    scores = record.get("scores") or {}
    text, bench = scores.get("textvqa") or {}, scores.get("mmbench") or {}
    data = record.get("capped") or record.get("export") or {}
    recipe = (record.get("recipe") or {}).get("path")
    challenge = challenge_score(scores, reference["scores"]) if reference is not None and has_scores(record) else {}
    return RunRow(name=record["exp_name"], recipe=Path(recipe).name if recipe else None,
                  samples=data.get("samples"), seed=record.get("seed"), proxy=record.get("proxy_pretrain_samples"),
                  pretrain_loss=final_loss(record, "pretrain"), finetune_loss=final_loss(record, "finetune"),
                  textvqa=text.get("accuracy"), mmbench_strict=bench.get("strict_circular_accuracy"),
                  mmbench_extracted=bench.get("extracted_circular_accuracy"),
                  textvqa_ratio=challenge.get("textvqa_ratio"), mmbench_ratio=challenge.get("mmbench_ratio"),
                  score=challenge.get("score"), wall_time_s=record.get("wall_time_s"))


def check_reference(reference: dict[str, Any]) -> None:
    """RecordError unless the reference has both benchmarks' scores and they are positive (ratios divide
    by them; checked even when no run is scored yet, as the report's challenge-score weights need them)."""
    name = reference["exp_name"]
    if not has_scores(reference):
        raise RecordError(f"reference run {name!r} has no TextVQA and MMBench scores yet")
    try:
        text, bench = benchmark_values(reference["scores"], f"reference run {name!r}")
    except EvalDataError as error:
        raise RecordError(str(error)) from error
    if text <= 0 or bench <= 0:
        raise RecordError(f"reference run {name!r}: reference scores must be positive to form ratios "
                          f"(TextVQA {text}, MMBench {bench})")


def table_rows(records: list[dict[str, Any]], reference: dict[str, Any] | None) -> list[RunRow]:
    """The rows of ``records``; a reference must pass ``check_reference``."""
    if reference is not None:
        check_reference(reference)
    try:
        return [row_of(record, reference) for record in records]
    except EvalDataError as error:
        raise RecordError(f"reference run {reference['exp_name']!r}: {error}") from error


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def shown(name: str, value: Any) -> str:
    """A cell of the text table: accuracies in percent, ratios and losses to 4 places."""
    if value is None:
        return ""
    if name in ("textvqa", "mmbench_strict", "mmbench_extracted"):
        return f"{100 * value:.2f}"
    if name in ("textvqa_ratio", "mmbench_ratio", "score", "pretrain_loss", "finetune_loss"):
        return f"{value:.4f}"
    if name == "wall_time_s":
        return duration(value)
    return str(value)


HEADERS = {"name": "name", "recipe": "recipe", "samples": "samples", "seed": "seed", "proxy": "proxy",
           "pretrain_loss": "pt loss", "finetune_loss": "ft loss", "textvqa": "TextVQA",
           "mmbench_strict": "MMB strict", "mmbench_extracted": "MMB letter", "textvqa_ratio": "TextVQA ratio",
           "mmbench_ratio": "MMB ratio", "score": "score", "wall_time_s": "wall time"}


def format_text(rows: list[RunRow]) -> str:
    names = [field.name for field in fields(RunRow)]
    cells = [[HEADERS[name] for name in names]] + [[shown(name, getattr(row, name)) for name in names] for row in rows]
    widths = [max(len(line[column]) for line in cells) for column in range(len(names))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


def format_csv(rows: list[RunRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[field.name for field in fields(RunRow)], lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    return buffer.getvalue()


def json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: a diverged loss is the text "nan", "inf" or "-inf" (as in --csv)."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def format_json(rows: list[RunRow]) -> str:
    return json.dumps([{name: json_value(value) for name, value in asdict(row).items()} for row in rows], indent=2,
                      allow_nan=False)
