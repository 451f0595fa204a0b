"""The demo finetuning set: ~120 samples in the official instruction format (mgm_instruction_stage_1*.json).

A JSON array of LLaVA records: single-turn questions (counting, colours, sign text, some with the
short-answer instruction), detailed descriptions, multi-turn conversations about one image, and
~10% text-only conversations, which have no "image" key. Image paths are relative to the
finetuning folder and mimic the real set's sources (`coco/train2017/...`, `textvqa/train_images/...`).
Answers are true of the drawn image. Called by `bettersynth.demo.build`; not run on its own.
"""

from __future__ import annotations

import random
from pathlib import Path

from bettersynth.constants import IMAGE_TOKEN
from bettersynth.demo import images
from bettersynth.demo.files import write_bytes, write_json
from bettersynth.demo.scenes import NUMBER_WORDS, Scene, detailed_description, plural, random_scene

SAMPLE_COUNTS = {"single_turn": 60, "detailed": 25, "multi_turn": 23, "text_only": 12}
SHORT_ANSWER = "Answer the question using a single word or phrase."
TEXT_ONLY = (
    ("How many sides does a triangle have?", "A triangle has three sides."),
    ("What do you get if you mix blue and yellow paint?", "Mixing blue and yellow paint gives green."),
    ("Name a shape with no corners.", "A circle has no corners."),
    ("Is a square a kind of rectangle?", "Yes. A square is a rectangle whose four sides are equal."),
    ("What is two plus three?", "Two plus three is five."),
    ("Write the word STOP in lower case.", "stop"),
    ("How many points does the star in a simple drawing usually have?", "Usually five points."),
    ("What colour is the sky on a clear day?", "It is blue."),
)


def _questions(scene: Scene, rng: random.Random) -> list[tuple[str, str, str]]:
    """(question, short answer, sentence answer) triples that are true of the scene."""
    out = []
    for item in scene.items:
        out.append((f"How many {plural(item.shape, 2)} are there?", str(item.count),
                    f"There {'is' if item.count == 1 else 'are'} {NUMBER_WORDS[item.count]} "
                    f"{plural(item.shape, item.count)}."))
        out.append((f"What colour is the {item.shape}?", item.colour,
                    f"The {item.shape} is {item.colour}."))
    out.append(("What is the background colour?", scene.background, f"The background is {scene.background}."))
    if scene.word is not None:
        out.append(("What does the sign say?", scene.word, f"The sign says \"{scene.word}\"."))
    rng.shuffle(out)
    return out


def _first_turn(question: str, rng: random.Random) -> str:
    return f"{IMAGE_TOKEN}\n{question}" if rng.random() < 0.8 else f"{question}\n{IMAGE_TOKEN}"


def _image_sample(kind: str, index: int, rng: random.Random) -> tuple[dict, bytes]:
    with_word = rng.random() < 0.4
    width, height = rng.randint(200, 640), rng.randint(200, 640)
    scene = random_scene(rng, width, height, with_word)
    if with_word:
        image = f"textvqa/train_images/{rng.getrandbits(64):016x}.jpg"
    else:
        image = f"coco/train2017/{index:012d}.jpg"
    questions = _questions(scene, rng)
    if kind == "detailed":
        prompt = rng.choice(("Describe the image in detail.", "What do you see in this picture? Be thorough."))
        turns = [(_first_turn(prompt, rng), detailed_description(scene))]
    elif kind == "single_turn":
        question, short, sentence = questions[0]
        if rng.random() < 0.5:
            turns = [(_first_turn(f"{question}\n{SHORT_ANSWER}", rng), short)]
        else:
            turns = [(_first_turn(question, rng), sentence)]
    else:
        rounds = questions[: rng.randint(2, 3)]
        turns = [(_first_turn(rounds[0][0], rng), rounds[0][2])] + [(q, s) for q, _, s in rounds[1:]]
    conversations = [message for human, gpt in turns
                     for message in ({"from": "human", "value": human}, {"from": "gpt", "value": gpt})]
    record = {"id": Path(image).stem, "image": image, "conversations": conversations}
    return record, images.jpeg_bytes(images.draw(scene))


def _text_only_sample(rng: random.Random) -> dict:
    rounds = rng.sample(TEXT_ONLY, rng.randint(1, 2))
    conversations = [message for human, gpt in rounds
                     for message in ({"from": "human", "value": human}, {"from": "gpt", "value": gpt})]
    return {"id": f"sharegpt_{rng.getrandbits(32):08x}_0", "conversations": conversations}


def build_finetune_set(folder: Path, json_name: str, seed: int) -> None:
    """Write the images and the instruction json into `folder` (the finetuning image root)."""
    rng = random.Random(seed)
    kinds = [kind for kind, count in SAMPLE_COUNTS.items() for _ in range(count)]
    rng.shuffle(kinds)
    records = []
    for index, kind in enumerate(kinds, start=1):
        if kind == "text_only":
            records.append(_text_only_sample(rng))
            continue
        record, picture = _image_sample(kind, index, rng)
        write_bytes(folder / record["image"], picture)
        records.append(record)
    write_json(folder / json_name, records)
