"""The demo eval sets: TextVQA-val-format questions + annotations, and an MMBench-dev-format TSV.

TextVQA (folder `eval_stage_1/textvqa/`): ~28 sign images in `train_images/<image_id>.jpg` and 40
questions (1-2 per image) in `llava_textvqa_val_v051_ocr.jsonl` as
`{"question_id": <image_id>, "image": "<image_id>.jpg", "text": "<Question>\\nReference OCR token:
a, b\\nAnswer the question using a single word or phrase."}` (a few without OCR tokens, as in the
real file), and `TextVQA_0.5.1_val.json` `{"data": [{"image_id", "question" (lower case), "answers"
(10 human answers, some disagreeing), ...}]}` for local scoring.

MMBench (folder `eval_stage_1/mmbench/`): 30 base questions with 2-4 options, hints (some
empty, read as NaN), categories, base64 JPEG images, and their circular copies at
`index + k * 1_000_000` with the options rotated by k, all in the dev TSV's 14 columns.
Called by `bettersynth.demo.build`; not run on its own.
"""

from __future__ import annotations

import base64
import csv
import io
import random
from pathlib import Path

from bettersynth.demo import images
from bettersynth.demo.files import write_bytes, write_json, write_jsonl
from bettersynth.demo.scenes import COLOURS, NUMBER_WORDS, SHAPES, SIGN_WORDS, Scene, plural, random_scene

SHORT_ANSWER = "Answer the question using a single word or phrase."
TEXTVQA_IMAGES = 28
TEXTVQA_QUESTIONS = 40
MMBENCH_BASE_QUESTIONS = 30
MMBENCH_COLUMNS = ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category",
                   "source", "split", "comment", "image")
CIRCULAR_OFFSET = 1_000_000
LETTERS = "ABCD"
OCR_NOISE = ("the", "of", "MADE", "IN", "co.", "www", "2", "and")


# --- TextVQA ------------------------------------------------------------------------------------

def _textvqa_questions(scene: Scene) -> list[tuple[str, str, list[str]]]:
    """(question, main answer, plausible human variants) about a sign scene."""
    word = scene.word.lower()
    found = [("what does the sign say?", word, [word, f"{word} sign", scene.word])]
    found.append(("what is written in the middle of the image?", word, [word, word, f"the word {word}"]))
    found.append(("what colour is the text on the sign?", scene.word_colour, [scene.word_colour, "dark"]))
    return found


def _ten_answers(rng: random.Random, main: str, variants: list[str]) -> list[str]:
    """Ten annotator answers: mostly the main one, some variants, now and then a wrong one."""
    answers = [main] * rng.randint(5, 8)
    while len(answers) < 10:
        answers.append(rng.choice(variants + ["unanswerable"]))
    rng.shuffle(answers)
    return answers


def build_textvqa(folder: Path, questions_name: str, images_name: str, annotations_name: str, seed: int,
                  image_count: int = TEXTVQA_IMAGES, question_count: int = TEXTVQA_QUESTIONS) -> None:
    """``question_count`` questions about ``image_count`` sign images (one or two each; the counts
    are the demo's unless a benchmark asks for the real set's 5,000 over 3,166)."""
    if not image_count <= question_count <= 2 * image_count:
        raise ValueError(f"{question_count} questions cannot cover {image_count} images at one or two each")
    rng = random.Random(seed)
    questions, annotations = [], []
    image_ids = [f"{rng.getrandbits(64):016x}" for _ in range(image_count)]
    per_image = [1] * image_count
    for i in rng.sample(range(image_count), question_count - image_count):
        per_image[i] = 2
    question_number = 34602  # the real val set's first question id
    for image_id, count in zip(image_ids, per_image):
        scene = random_scene(rng, rng.randint(300, 800), rng.randint(300, 800), with_word=True)
        write_bytes(folder / images_name / f"{image_id}.jpg", images.jpeg_bytes(images.draw(scene)))
        for question, main, variants in rng.sample(_textvqa_questions(scene), count):
            ocr = [scene.word] + rng.sample(OCR_NOISE, rng.randint(0, 3))
            rng.shuffle(ocr)
            lines = [question.capitalize()]
            if rng.random() < 0.9:
                lines.append("Reference OCR token: " + ", ".join(ocr))
            lines.append(SHORT_ANSWER)
            questions.append({"question_id": image_id, "image": f"{image_id}.jpg", "text": "\n".join(lines)})
            annotations.append({
                "question": question, "image_id": image_id, "image_width": scene.width,
                "image_height": scene.height, "answers": _ten_answers(rng, main, variants),
                "question_tokens": question.rstrip("?").split(), "question_id": question_number,
                "set_name": "val"})
            question_number += 1
    write_jsonl(folder / questions_name, questions)
    write_json(folder / annotations_name, {"dataset_type": "val", "dataset_name": "textvqa",
                                           "dataset_version": "0.5.1", "data": annotations})


# --- MMBench ------------------------------------------------------------------------------------

CATEGORIES = {  # category -> l2-category, as in MMBench
    "attribute_recognition": "finegrained_perception (instance-level)",
    "ocr": "finegrained_perception (instance-level)",
    "object_localization": "finegrained_perception (instance-level)",
    "image_scene": "coarse_perception",
    "spatial_relationship": "finegrained_perception (cross-instance)",
}
HINTS = ("The picture is a simple drawing of coloured shapes.", "Look at the shapes carefully.",
         "Some shapes may overlap.")


def _mmbench_question(scene: Scene, rng: random.Random) -> tuple[str, str, list[str], str]:
    """(category, question, options, correct option text) about the scene; 2-4 options."""
    item = scene.items[0]
    kind = rng.choice(("colour", "count", "yes_no", "background", "word") if scene.word else
                      ("colour", "count", "yes_no", "background"))
    n = rng.randint(3, 4)
    if kind == "colour":
        wrong = rng.sample([c for c in COLOURS if c not in (item.colour, scene.background)], n - 1)
        return "attribute_recognition", f"What colour is the {item.shape}?", [item.colour] + wrong, item.colour
    if kind == "count":
        wrong = rng.sample([w for w in NUMBER_WORDS[1:6] if w != NUMBER_WORDS[item.count]], n - 1)
        right = NUMBER_WORDS[item.count]
        return ("object_localization", f"How many {plural(item.shape, 2)} are in the image?", [right] + wrong, right)
    if kind == "yes_no":
        present = rng.random() < 0.5
        shape = item.shape if present else rng.choice([s for s in SHAPES if all(i.shape != s for i in scene.items)])
        return "spatial_relationship", f"Is there a {shape} in the image?", ["Yes", "No"], "Yes" if present else "No"
    if kind == "background":
        wrong = rng.sample([c for c in COLOURS if c != scene.background], n - 1)
        return "image_scene", "Which colour is the background?", [scene.background] + wrong, scene.background
    wrong = rng.sample([w for w in SIGN_WORDS if w != scene.word], n - 1)
    return "ocr", "Which word is written on the sign?", [scene.word] + wrong, scene.word


def _row(index: int, question: str, hint: str, options: list[str], answer: str, category: str,
         picture: str) -> list[str]:
    padded = options + [""] * (4 - len(options))
    return [str(index), question, hint, *padded, answer, category, CATEGORIES[category], "MMBench", "dev", "",
            picture]


def build_mmbench(folder: Path, tsv_name: str, seed: int, base_questions: int = MMBENCH_BASE_QUESTIONS) -> None:
    """``base_questions`` questions (the demo's 30 unless a benchmark asks for more), each followed by
    its circular copies (one per further option, index + k x 1,000,000), as MMBench's dev tsv."""
    rng = random.Random(seed)
    base, copies = [], []
    indices = sorted(rng.sample(range(0, max(4400, 2 * base_questions)), base_questions))
    for index in indices:
        scene = random_scene(rng, rng.randint(200, 400), rng.randint(200, 400), with_word=rng.random() < 0.3)
        picture = base64.b64encode(images.jpeg_bytes(images.draw(scene))).decode("ascii")
        category, question, options, right = _mmbench_question(scene, rng)
        rng.shuffle(options)
        hint = rng.choice(HINTS) if rng.random() < 0.5 else ""
        base.append(_row(index, question, hint, options, LETTERS[options.index(right)], category, picture))
        for k in range(1, len(options)):
            rotated = options[k:] + options[:k]
            copies.append((k, _row(index + k * CIRCULAR_OFFSET, question, hint, rotated,
                                   LETTERS[rotated.index(right)], category, picture)))
    rows = base + [row for _, row in sorted(copies, key=lambda c: (c[0], int(c[1][0])))]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(MMBENCH_COLUMNS)
    writer.writerows(rows)
    path = folder / tsv_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
