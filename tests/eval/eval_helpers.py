"""Builders shared by the eval tests: TextVQA question/annotation files, and the answer files of a
finished eval run in the official layout."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from bettersynth.eval.mmbench import answer_record, read_items
from bettersynth.eval.results import ResultFiles
from bettersynth.eval.textvqa import read_questions
from bettersynth.eval import textvqa
from bettersynth.paths import MMBENCH_SPLIT, AssetLayout

# The finetune run name the eval tests give the demo checkpoint.
DEMO_CHECKPOINT = "MGM-2B-Finetune-demo"


def write_textvqa(layout: AssetLayout, questions: list[tuple[str, str, list[str]]]) -> None:
    """The question file, one image per image id and the annotations of (image id, question, ten answers)."""
    layout.textvqa_images.mkdir(parents=True, exist_ok=True)
    lines, annotations = [], []
    for number, (image_id, question, answers) in enumerate(questions):
        image = layout.textvqa_images / f"{image_id}.jpg"
        if not image.exists():
            Image.new("RGB", (48 + 8 * number, 32), (30 * number, 90, 160)).save(image)
        text = f"{question.capitalize()}\nReference OCR token: A, B\nAnswer the question using a single word or phrase."
        lines.append(json.dumps({"question_id": image_id, "image": f"{image_id}.jpg", "text": text}))
        annotations.append({"image_id": image_id, "question": question, "answers": answers})
    layout.textvqa_questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    layout.textvqa_annotations.write_text(json.dumps({"data": annotations}), encoding="utf-8")


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
    answers.write_text("".join(json.dumps(answer_record(item, mmbench_predictions[item.index],
                                                        files.checkpoint_name)) + "\n"
                               for item in read_items(data.mmbench_tsv)))
    return files
