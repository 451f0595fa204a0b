"""Fixtures of the eval tests: a small eval-data layout (TextVQA questions, images, annotations and
an MMBench TSV with circular copies) written into a temporary asset root, and an output folder.

The layout mirrors the official one (bettersynth.paths.AssetLayout), so the commands read it through
``--data-root`` / ``BSYNTH_EVAL_DATA_ROOT`` exactly as they read the real one.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from eval_helpers import DEMO_CHECKPOINT, write_textvqa
from PIL import Image

from bettersynth.paths import AssetLayout

# (question_id, question, ten answers) of the TextVQA fixture; two questions share an image.
TEXTVQA = [
    ("img0", "what brand is this camera?", ["dakota"] * 6 + ["dakota digital"] * 4),
    ("img1", "what number is on the shirt?", ["10"] * 3 + ["ten"] * 2 + ["1o"] * 5),
    ("img1", "what color is the sign?", ["red"] * 2 + ["Red."] * 1 + ["orange"] * 7),
    ("img2", "who wrote this?", ["the author"] * 10),
    ("img3", "what does it say?", ["dont stop"] * 4 + ["stop"] * 6),
]

# MMBench rows: (index, question, hint, options, answer, category). Index >= 1e6: circular copies.
MMBENCH = [
    (0, "What colour is the ball?", None, ["red", "blue", "green"], "A", "color"),
    (1, "Which animal is shown?", "Look at the picture.", ["cat", "dog", "cow", "hen"], "B", "animal"),
    (2, "Is it day?", None, ["yes", "no"], "A", "color"),
    (1000000, "What colour is the ball?", None, ["green", "red", "blue"], "B", "color"),
    (2000000, "What colour is the ball?", None, ["blue", "green", "red"], "C", "color"),
    (1000001, "Which animal is shown?", "Look at the picture.", ["hen", "cat", "dog", "cow"], "C", "animal"),
]


def _png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def write_mmbench(layout: AssetLayout, rows=MMBENCH) -> None:
    import pandas as pd

    records = []
    for index, question, hint, options, answer, category in rows:
        padded = options + [None] * (4 - len(options))
        image = base64.b64encode(_png_bytes((index % 7 * 30, 100, 50))).decode()
        records.append({"index": index, "question": question, "hint": hint, "A": padded[0], "B": padded[1],
                        "C": padded[2], "D": padded[3], "answer": answer, "category": category,
                        "l2-category": "l2", "source": "fixture", "split": "dev", "comment": None, "image": image})
    layout.mmbench_tsv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records).to_csv(layout.mmbench_tsv, sep="\t", index=False)


@pytest.fixture
def eval_data(tmp_path) -> AssetLayout:
    """A temporary asset root holding the fixture's TextVQA and MMBench files."""
    layout = AssetLayout(tmp_path / "assets")
    write_textvqa(layout, TEXTVQA)
    write_mmbench(layout)
    return layout


@pytest.fixture
def output_root(tmp_path, monkeypatch) -> Path:
    """BSYNTH_OUTPUT pointed at a temporary folder (paths.output_dir() reads it on each call)."""
    out = tmp_path / "output"
    out.mkdir()
    monkeypatch.setenv("BSYNTH_OUTPUT", str(out))
    return out


DEMO_ITEMS = ("llm", "vision_tower", "vision_tower_aux", "textvqa", "mmbench")
DEMO_AUX_SIZE = 256


@pytest.fixture(scope="session")
def demo_eval_assets(tmp_path_factory) -> AssetLayout:
    """The demo's models and eval sets (seed 0) in a fresh temporary root (about 2 s), or, when
    BSYNTH_DEMO_ROOT is set, in that demo root (complete items are reused: a machine without the
    packages the demo build needs, such as the GPU image without open_clip, gets a prebuilt root)."""
    from bettersynth.demo.build import build_item, demo_items
    from bettersynth.paths import demo_layout

    if os.environ.get("BSYNTH_DEMO_ROOT"):
        layout = demo_layout()
    else:
        layout = AssetLayout(tmp_path_factory.mktemp("demo_root"))
    for item in demo_items(layout):
        if item.name in DEMO_ITEMS:
            build_item(item, seed=0, force=False)
    return layout


@pytest.fixture(scope="session")
def demo_checkpoint(demo_eval_assets, tmp_path_factory) -> Path:
    """A finetune checkpoint folder built from the demo models, at
    ``<output>/training_dirs/MGM-2B-Finetune-demo``.

    The demo LLM at its initial weight scale answers every prompt with the same repeated token,
    which would make "batched equals one-by-one" hold trivially; its matrices are redrawn with a
    larger spread (seeded) and the projector scaled up, so answers depend on prompt and image.
    """
    import torch

    from bettersynth.model.config import MGMOptions
    from bettersynth.model.io import build_mgm, save_checkpoint

    layout = demo_eval_assets
    model, tokenizer, preprocessor = build_mgm(layout.llm_dir, layout.vision_tower_dir, layout.vision_tower_aux_dir,
                                               MGMOptions(image_size_aux=DEMO_AUX_SIZE))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.llm.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.3, generator=generator)
        for parameter in model.projector.parameters():
            parameter.mul_(10.0)
    folder = tmp_path_factory.mktemp("demo_output") / "training_dirs" / DEMO_CHECKPOINT
    save_checkpoint(model, tokenizer, folder, preprocessor=preprocessor)
    return folder
