"""Builders shared by the eval tests: answer files of a finished eval run in the official layout."""

from __future__ import annotations

import json
from pathlib import Path

from bettersynth.eval.mmbench import answer_record, read_items
from bettersynth.eval.results import ResultFiles
from bettersynth.eval.textvqa import read_questions
from bettersynth.eval import textvqa
from bettersynth.paths import MMBENCH_SPLIT, AssetLayout

# The finetune run name the eval tests give the demo checkpoint.
DEMO_CHECKPOINT = "MGM-2B-Finetune-demo"


def write_run(results_root: Path, data: AssetLayout, textvqa_predictions: list[str],
              mmbench_predictions: dict[int, str]) -> ResultFiles:
    """bm1.jsonl and the MMBench answers of a run named after ``results_root``."""
    files = ResultFiles(results_root)
    questions = read_questions(data.textvqa_questions)
    files.textvqa_dir.mkdir(parents=True, exist_ok=True)
    files.textvqa_answers.write_text("".join(
        json.dumps(textvqa.answer_record(q, p, files.checkpoint_name)) + "\n"
        for q, p in zip(questions, textvqa_predictions)))
    answers = files.mmbench_answers(MMBENCH_SPLIT)
    answers.parent.mkdir(parents=True, exist_ok=True)
    answers.write_text("".join(json.dumps(answer_record(item, mmbench_predictions[item.index], files.checkpoint_name)) + "\n"
                               for item in read_items(data.mmbench_tsv)))
    return files
