"""Builders of the experiments tests: small eval data, and the output tree of a main-job run, by hand.

Nothing here trains or runs a model: the files are what the main job's steps leave (recipe export
with its record and summary, capped file, training stage folders, eval answers), written directly.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from bettersynth.eval import textvqa
from bettersynth.eval.mmbench import answer_record, read_items
from bettersynth.eval.results import ResultFiles
from bettersynth.eval.textvqa import read_questions
from bettersynth.experiments.record import write_record as write_run_record
from bettersynth.paths import MMBENCH_SPLIT, AssetLayout
from bettersynth.provenance import Provenance, file_sha256, write_record
from PIL import Image

# (image id, question, ten answers); img1 holds two questions, and one pair is asked twice.
TEXTVQA = [
    ("img0", "what brand is this camera?", ["dakota"] * 6 + ["dakota digital"] * 4),
    ("img1", "what number is on the shirt?", ["10"] * 3 + ["ten"] * 2 + ["1o"] * 5),
    ("img1", "what color is the sign?", ["red"] * 2 + ["orange"] * 8),
    ("img2", "who wrote this?", ["the author"] * 10),
    ("img3", "what does it say?", ["dont stop"] * 4 + ["stop"] * 6),
    ("img3", "what does it say?", ["dont stop"] * 4 + ["stop"] * 6),
]
# MMBench rows: (index, options, answer, category); index >= 1e6 are circular copies.
MMBENCH = [
    (0, ["red", "blue", "green"], "A", "color"),
    (1, ["cat", "dog", "cow", "hen"], "B", "animal"),
    (2, ["yes", "no"], "A", "color"),
    (3, ["one", "two"], "B", "count"),
    (1000000, ["green", "red", "blue"], "B", "color"),
    (2000000, ["blue", "green", "red"], "C", "color"),
    (1000001, ["hen", "cat", "dog", "cow"], "C", "animal"),
    (1000003, ["two", "one"], "A", "count"),
]
# A model-free one-operator recipe (a second recipe for the sweep tests, beside cpu_prefilter.yaml).
TINY_RECIPE = """# words_only.yaml -- keeps captions of 6 to 40 words (the sweep tests' second recipe)
np: 1
process:
  - words_num_filter:
      min_num: 6
      max_num: 40
"""
RIGHT_TEXTVQA = ["dakota", "10", "orange", "author", "stop", "stop"]
RIGHT_MMBENCH = {index: answer for index, _, answer, _ in MMBENCH}


def png_b64(shade: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (shade, 90, 160)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def write_eval_data(root: Path) -> AssetLayout:
    """TextVQA questions and annotations and an MMBench dev TSV under ``root`` (official layout)."""
    import pandas as pd

    layout = AssetLayout(root)
    layout.textvqa_questions.parent.mkdir(parents=True, exist_ok=True)
    lines, annotations = [], []
    for image_id, question, answers in TEXTVQA:
        text = f"{question.capitalize()}\nReference OCR token: A, B\nAnswer the question using a single word or phrase."
        lines.append(json.dumps({"question_id": image_id, "image": f"{image_id}.jpg", "text": text}))
        annotations.append({"image_id": image_id, "question": question, "answers": answers})
    layout.textvqa_questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    layout.textvqa_annotations.write_text(json.dumps({"data": annotations}), encoding="utf-8")
    records = []
    for index, options, answer, category in MMBENCH:
        padded = options + [None] * (4 - len(options))
        records.append({"index": index, "question": f"Question {index % 1_000_000}?", "hint": None,
                        "A": padded[0], "B": padded[1], "C": padded[2], "D": padded[3], "answer": answer,
                        "category": category, "l2-category": "l2", "source": "test", "split": "dev",
                        "comment": None, "image": png_b64(index % 200)})
    layout.mmbench_tsv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records).to_csv(layout.mmbench_tsv, sep="\t", index=False)
    return layout


def write_answers(eval_dir: Path, data: AssetLayout, textvqa_predictions: list[str],
                  mmbench_predictions: dict[int, str]) -> ResultFiles:
    """bm1.jsonl and the MMBench answers jsonl of ``eval_dir`` (named after its checkpoint)."""
    files = ResultFiles(eval_dir)
    files.textvqa_dir.mkdir(parents=True, exist_ok=True)
    files.textvqa_answers.write_text("".join(
        json.dumps(textvqa.answer_record(question, prediction, files.checkpoint_name)) + "\n"
        for question, prediction in zip(read_questions(data.textvqa_questions), textvqa_predictions)))
    answers = files.mmbench_answers(MMBENCH_SPLIT)
    answers.parent.mkdir(parents=True, exist_ok=True)
    answers.write_text("".join(json.dumps(answer_record(item, mmbench_predictions[item.index],
                                                        files.checkpoint_name)) + "\n"
                               for item in read_items(data.mmbench_tsv)))
    return files


def loss_log(steps: int, start: float, slope: float) -> list[dict]:
    return [{"step": step, "epoch": step / steps, "loss": start - slope * step, "learning_rate": 1e-3 * step / steps,
             "samples_per_second": 50.0 + step, "tokens_per_second": 9000.0, "data_wait_share": 0.01}
            for step in range(1, steps + 1)]


def write_stage(folder: Path, stage: str, log: list[dict], seed: int, finished: bool,
                inputs: dict[str, Path] | None = None, made_during: list[list[float]] | None = None) -> None:
    """A stage folder: its made-from record (``inputs``' fingerprints by label, none by default; when
    it was trained, ``made_during``) and trainer state, finished or at a checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    write_record(folder, Provenance.of(stage, inputs or {}, {"seed": seed, "learning_rate": 1e-3}),
                 **({"made_during": made_during} if made_during else {}))
    state = {"stage": stage, "max_steps": 10, "steps_per_epoch": 10, "global_batch": 8,
             "loss_normalization": "global_tokens", "global_step": len(log), "log_history": log}
    if finished:
        (folder / "trainer_state.json").write_text(json.dumps(state))
        (folder / "training_complete.json").write_text(json.dumps({"stage": stage}))
    else:
        checkpoint = folder / f"checkpoint-{len(log)}"
        checkpoint.mkdir()
        (checkpoint / "trainer_state.json").write_text(json.dumps(state))
        (checkpoint / "checkpoint_complete.json").write_text("{}")


def write_data(output: Path, name: str, recipe_text: str, samples: int) -> tuple[Path, Path]:
    """A recipe ``<output>/../recipes/<name>.yaml`` and its export ``<output>/processed_data/<name>.jsonl``
    (with the recipe run's record and summary), and the capped file beside it."""
    recipe = output.parent / "recipes" / f"{name}.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(recipe_text)
    export = output / "processed_data" / f"{name}.jsonl"
    export.parent.mkdir(parents=True, exist_ok=True)
    export.write_text("".join(json.dumps({"id": n, "text": f"caption {n}"}) + "\n" for n in range(samples)) + "\n")
    write_record(export, Provenance("recipe", {"seed pool": "sha256:5eed", "recipe operators": f"sha256:op-{name}"},
                                    {"executor": "default"}))
    work = export.with_name(f"{name}_work")
    work.mkdir()
    (work / "run.json").write_text(json.dumps({"recipe": str(recipe), "recipe_sha256": file_sha256(recipe)}))
    capped = Path(str(export) + "-200k.jsonl")
    capped.write_text(export.read_text())
    write_record(capped, Provenance("cap", {"curated data": "sha256:x"}, {"max samples": "200000"}))
    return recipe, export


def editable_values(exp: str, recipe: Path, export: Path, seed: int, proxy: str = "") -> dict[str, str]:
    return {"EXP_NAME": exp, "RECIPE": str(recipe), "PRETRAIN_DATASET": str(export),
            "PRETRAIN_DATASET_IMAGE_PATH": "input/pretrain_stage_1_10k", "SEED": str(seed),
            "PROXY_PRETRAIN_SAMPLES": proxy, "INFER_CUDA_IDX": str(seed % 2), "TORCH_COMPILE": "True"}


def make_run(output: Path, data: AssetLayout, exp: str, recipe: Path, export: Path, seed: int,
             textvqa_predictions: list[str], mmbench_predictions: dict[int, str], proxy: str = "") -> dict:
    """A whole finished run of the main job (stages, answers) and its run record."""
    started = 1.8e9  # trained for 100 + seed s, then finetuned for 50 s
    stages = {"pretrain": output / "training_dirs" / f"MGM-2B-Pretrain-{exp}",
              "finetune": output / "training_dirs" / f"MGM-2B-Finetune-{exp}"}
    write_stage(stages["pretrain"], "pretrain", loss_log(6, 3.0 + seed / 10, 0.2), seed, finished=True,
                made_during=[[started, started + 100 + seed]])
    write_stage(stages["finetune"], "finetune", loss_log(4, 2.0, 0.1 + seed / 100), seed, finished=True,
                made_during=[[started + 100 + seed, started + 150 + seed]])
    write_answers(output / "eval_results" / f"MGM-2B-Finetune-{exp}", data, textvqa_predictions, mmbench_predictions)
    return write_run_record(output, exp, editable_values(exp, recipe, export, seed, proxy), made=stages,
                            data_root=data.root)
