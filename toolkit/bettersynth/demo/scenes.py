"""The demo's little world: random scenes (shapes, colours, counts, a rendered word) and their words.

Every synthetic image of the demo data sets is drawn from a `Scene`, and every caption, question
and answer about it is written from the same scene, so text and pixels agree (except where a data
set injects noise on purpose). The same vocabulary feeds the tokenizers of the tiny models
(`corpus`). Pure Python and seeded: used by the demo builders, not run on its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 210, 40),
    "orange": (245, 140, 30), "purple": (140, 60, 180), "pink": (240, 130, 190),
    "brown": (130, 80, 40), "black": (20, 20, 20), "white": (245, 245, 245), "gray": (128, 128, 128),
    "cyan": (40, 200, 210),
}
SHAPES = ("circle", "square", "triangle", "star", "rectangle", "ellipse", "diamond")
SIGN_WORDS = ("STOP", "OPEN", "SALE", "CAFE", "HOTEL", "EXIT", "BOOKS", "MILK", "PARK", "TAXI",
              "BANK", "PIZZA", "MUSEUM", "BAKERY", "POLICE", "GARAGE", "2024", "42", "7UP", "ZOO")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
BRIEF_QUESTIONS = (
    "Describe the image briefly.",
    "What is in the photo?",
    "Give a short description of the picture.",
    "Summarize the visual content of the image.",
    "Write a terse but informative summary of the picture.",
    "Share a concise interpretation of the image provided.",
)


@dataclass(frozen=True)
class Item:
    """`count` copies of one coloured shape."""

    shape: str
    colour: str
    count: int

    def __post_init__(self) -> None:
        if self.shape not in SHAPES or self.colour not in COLOURS or not 1 <= self.count <= 9:
            raise ValueError(f"bad scene item {self}")


@dataclass(frozen=True)
class Scene:
    """What one synthetic image shows; `seed` fixes the exact placement of everything drawn."""

    width: int
    height: int
    background: str
    items: tuple[Item, ...]
    word: str | None = None
    word_colour: str = "black"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or self.background not in COLOURS:
            raise ValueError(f"bad scene {self}")
        if any(item.colour == self.background for item in self.items):
            raise ValueError(f"an item has the background colour in {self}")


def plural(shape: str, count: int) -> str:
    return shape if count == 1 else f"{shape}s"


def count_phrase(item: Item) -> str:
    number = "a" if item.count == 1 else NUMBER_WORDS[item.count]
    return f"{number} {item.colour} {plural(item.shape, item.count)}"


def random_scene(rng: random.Random, width: int, height: int, with_word: bool) -> Scene:
    """A scene of 1-3 distinct coloured shapes (1-5 of each), maybe with a word on a sign."""
    background = rng.choice(("white", "gray", "black", "yellow", "cyan", "pink"))
    palette = [c for c in COLOURS if c != background]
    shapes = rng.sample(SHAPES, rng.randint(1, 3))
    items = tuple(Item(s, rng.choice(palette), rng.randint(1, 5)) for s in shapes)
    word = rng.choice(SIGN_WORDS) if with_word else None
    word_colour = "white" if background == "black" else "black"
    return Scene(width, height, background, items, word, word_colour, seed=rng.randrange(2**31))


def caption(scene: Scene, rng: random.Random) -> str:
    """A one-sentence caption in one of a few styles (web alt-text, plain, counting)."""
    things = [count_phrase(item) for item in scene.items]
    listed = things[0] if len(things) == 1 else ", ".join(things[:-1]) + " and " + things[-1]
    style = rng.randrange(4)
    if style == 0:
        text = f"{listed} on a {scene.background} background"
    elif style == 1:
        text = f"a picture of {listed}"
    elif style == 2:
        text = f"there are {listed} in this image"
    else:
        text = f"simple drawing with {listed}, {scene.background} backdrop"
    if scene.word is not None:
        text += rng.choice((f" and a sign that says {scene.word}", f", the word {scene.word} is written",
                            f" with the text \"{scene.word}\""))
    return text


def detailed_description(scene: Scene) -> str:
    """A longer, exact description (the finetuning set's detailed answers)."""
    parts = [f"The image is {scene.width} by {scene.height} pixels with a {scene.background} background."]
    for item in scene.items:
        parts.append(f"It shows {count_phrase(item)}.")
    total = sum(item.count for item in scene.items)
    parts.append(f"In total there {'is' if total == 1 else 'are'} {total} shape{'s' if total != 1 else ''}.")
    if scene.word is not None:
        parts.append(f"A sign in the middle reads \"{scene.word}\" in {scene.word_colour} letters.")
    return " ".join(parts)


def corpus(seed: int, n_scenes: int = 400) -> list[str]:
    """Text in the demo's language for training the tiny tokenizers: captions, questions, answers."""
    rng = random.Random(seed)
    lines = list(BRIEF_QUESTIONS)
    lines += [f"How many {plural(s, 2)} are there? What colour is the {s}?" for s in SHAPES]
    lines += [f"The answer is {w} ({i})." for i, w in enumerate(NUMBER_WORDS)]
    lines += [f"What does the sign say? It says {w}." for w in SIGN_WORDS]
    lines += ["Answer with the option's letter from the given choices directly. A. B. C. D.",
              "Answer the question using a single word or phrase. Reference OCR token:",
              "user model Yes, no. Which shape is it? What is the background colour?"]
    for _ in range(n_scenes):
        scene = random_scene(rng, 100, 100, with_word=rng.random() < 0.5)
        lines.append(caption(scene, rng))
        lines.append(detailed_description(scene))
    return lines
