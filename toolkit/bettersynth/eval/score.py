"""Scores of a whole eval run, and the challenge score against a reference run.

The challenge scores each benchmark as a ratio to a reference run (the official baseline) and
takes the mean of the two ratios. The MMBench number used is the strict circular accuracy (the
official exact-match scorer); TextVQA uses the VQA soft accuracy.

    bsynth score run output/eval_results/MGM-2B-Finetune-mine --reference output/eval_results/MGM-2B-Finetune-base

Both answer files must answer every question exactly once (``textvqa.score_answers``,
``mmbench.read_predictions``); a missing, duplicate or unknown question id is an error.
A reference folder is scored from its answer files when they are there; otherwise its
``scores.json`` is read (so a reference can also be a hand-written ``scores.json`` holding the
published baseline numbers: ``{"textvqa": {"accuracy": ...}, "mmbench": {"strict_circular_accuracy": ...}}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bettersynth.eval import mmbench, textvqa
from bettersynth.eval.assets import EvalLayout
from bettersynth.eval.files import EvalDataError
from bettersynth.eval.results import ResultFiles


def score_run(run_dir: Path, data: EvalLayout, split: str) -> dict[str, Any]:
    """TextVQA and MMBench scores of one run folder (``output/eval_results/<CKPT>``)."""
    files = ResultFiles(Path(run_dir).resolve())
    if not files.root.is_dir():
        raise EvalDataError(f"{files.root}: eval results folder not found")
    text = textvqa.score_answers(files.textvqa_answers, data.layout.textvqa_annotations)
    bench = mmbench.score_answers(files.mmbench_answers(split), data.mmbench_tsv(split))
    return {"checkpoint": files.checkpoint_name, "data": {"kind": data.kind, "root": str(data.layout.root)},
            "textvqa": text.to_dict(), "mmbench": {"split": split, **bench.to_dict()}}


def benchmark_values(scores: dict[str, Any], source: str) -> tuple[float, float]:
    """(TextVQA accuracy, MMBench strict circular accuracy) of a scores dictionary."""
    try:
        values = scores["textvqa"]["accuracy"], scores["mmbench"]["strict_circular_accuracy"]
    except (KeyError, TypeError) as error:
        raise EvalDataError(f"{source}: no textvqa.accuracy / mmbench.strict_circular_accuracy ({error})") from error
    for name, value in zip(("textvqa.accuracy", "mmbench.strict_circular_accuracy"), values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise EvalDataError(f"{source}: {name} must be a number from 0 to 1, got {value!r}")
    return float(values[0]), float(values[1])


def reference_scores(reference_dir: Path, data: EvalLayout, split: str) -> dict[str, Any]:
    """Scores of the reference: from its answers when present, else from its scores.json."""
    files = ResultFiles(Path(reference_dir).resolve())
    if files.textvqa_answers.is_file() and files.mmbench_answers(split).is_file():
        return score_run(files.root, data, split)
    if files.scores.is_file():
        try:
            return json.loads(files.scores.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise EvalDataError(f"{files.scores}: not valid JSON ({error.msg})") from error
        except UnicodeDecodeError as error:
            raise EvalDataError(f"{files.scores}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at "
                                f"position {error.start})") from error
    raise EvalDataError(f"{files.root}: reference has neither answer files "
                        f"({files.textvqa_answers.name}, {files.mmbench_answers(split).name}) nor scores.json")


def challenge_score(run: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Both ratios to the reference and their mean (the challenge score)."""
    text, bench = benchmark_values(run, "run")
    ref_text, ref_bench = benchmark_values(reference, "reference")
    if ref_text <= 0 or ref_bench <= 0:
        raise EvalDataError("reference scores must be positive to form ratios "
                            f"(TextVQA {ref_text}, MMBench {ref_bench})")
    ratios = {"textvqa_ratio": text / ref_text, "mmbench_ratio": bench / ref_bench}
    return {**ratios, "score": (ratios["textvqa_ratio"] + ratios["mmbench_ratio"]) / 2}


def format_report(scores: dict[str, Any]) -> str:
    """The human-readable summary ``bsynth score run`` prints."""
    text, bench = scores["textvqa"], scores["mmbench"]
    lines = [f"checkpoint: {scores['checkpoint']}  ({scores['data']['kind']} data at {scores['data']['root']})",
             f"TextVQA  accuracy {100 * text['accuracy']:.2f}  ({text['num_questions']} questions)",
             f"MMBench  {bench['split']}: circular accuracy strict {100 * bench['strict_circular_accuracy']:.2f}, "
             f"letter-extracted {100 * bench['extracted_circular_accuracy']:.2f}  "
             f"({bench['num_questions']} questions, {bench['num_rows']} rows)"]
    for name, values in bench["per_category"].items():
        lines.append(f"  {name:<40} strict {100 * values['strict']:6.2f}  extracted {100 * values['extracted']:6.2f}"
                     f"  (n={values['num_questions']})")
    if "challenge" in scores:
        challenge = scores["challenge"]
        lines += [f"reference: {scores['reference']['path']}",
                  f"TextVQA ratio {challenge['textvqa_ratio']:.4f}   MMBench ratio {challenge['mmbench_ratio']:.4f}",
                  f"challenge score (mean of the ratios) {challenge['score']:.4f}"]
    return "\n".join(lines)
