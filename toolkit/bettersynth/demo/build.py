"""Build the embedded demo assets: tiny random models and small synthetic data sets, offline.

    bsynth demo build [--root DIR] [--force] [--seed N]     (also: bash download.sh --demo)

Python: ``build_demo(layout=demo_layout(), seed=0, force=False) -> list[ItemResult]``.

Every asset lands in the real asset layout (`bettersynth.paths.AssetLayout`) under the demo root,
so the toolkit's loading code runs unchanged on it. The build is split into items (one folder
each: a model, the seed pool, the finetuning set, each eval set). Each item is written into a
hidden temporary sibling folder, gets its completion marker written last, and is then renamed into
place; an item whose marker is present and matches (seed and format version) is skipped, anything
else (missing, interrupted, other seed) is rebuilt. Same seed, same bytes: images are drawn and
JPEG-encoded deterministically, JSON is written with sorted keys, nothing records a time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bettersynth.paths import AssetLayout, demo_layout

# Bump when the content of any item changes, so old demo folders are rebuilt.
DEMO_FORMAT_VERSION = 2
MARKER_NAME = ".bsynth-demo-complete"


@dataclass(frozen=True)
class DemoItem:
    """One independently built and marked folder of the demo assets."""

    name: str
    folder: Path
    make: Callable[[Path, int], None]  # (temporary folder, item seed) -> writes the item's files

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"bad demo item name {self.name!r}")


@dataclass(frozen=True)
class ItemResult:
    name: str
    folder: Path
    status: str  # "built" or "skipped"
    seconds: float


def item_seed(seed: int, name: str) -> int:
    """A per-item seed, so items can be built alone and in any order with the same result."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:4], "big")


def marker_content(seed: int) -> str:
    return json.dumps({"format_version": DEMO_FORMAT_VERSION, "seed": seed}, sort_keys=True) + "\n"


def is_complete(folder: Path, seed: int) -> bool:
    marker = folder / MARKER_NAME
    return marker.is_file() and marker.read_text() == marker_content(seed)


def demo_items(layout: AssetLayout) -> list[DemoItem]:
    """All items of the demo, models first (the other engineers' tests need them most)."""
    from bettersynth.demo import eval_sets, image_scorers, models, recipe_models_extra
    from bettersynth.demo.finetune_set import build_finetune_set
    from bettersynth.demo.scenes import corpus as texts
    from bettersynth.demo.seed_pool import build_seed_pool

    def name_in(path: Path, folder: Path) -> str:
        return str(path.relative_to(folder))

    seed_dir, finetune_dir = layout.seed_dir, layout.finetune_dir
    textvqa_dir, mmbench_dir = layout.textvqa_questions.parent, layout.mmbench_tsv.parent
    recipe = layout.recipe_models_dir
    return [
        DemoItem("llm", layout.llm_dir, lambda d, s: models.build_llm(d, texts(s), s)),
        DemoItem("vision_tower", layout.vision_tower_dir, lambda d, s: models.build_vision_tower(d, texts(s), s)),
        DemoItem("vision_tower_aux", layout.vision_tower_aux_dir, lambda d, s: models.build_vision_tower_aux(d, s)),
        DemoItem("recipe_clip", recipe / "openai" / "clip-vit-base-patch32",
                 lambda d, s: models.build_recipe_clip(d, texts(s), s)),
        DemoItem("recipe_blip_itm", recipe / "Salesforce" / "blip-itm-base-coco",
                 lambda d, s: models.build_recipe_blip_itm(d, texts(s), s)),
        DemoItem("recipe_blip2", recipe / "Salesforce" / "blip2-opt-2.7b",
                 lambda d, s: models.build_recipe_blip2(d, texts(s), s)),
        DemoItem("recipe_aesthetics", recipe / "shunk031" / "aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE",
                 lambda d, s: image_scorers.build_recipe_aesthetics(d, texts(s), s)),
        DemoItem("recipe_watermark", recipe / "amrul-hzz" / "watermark_detector",
                 lambda d, s: image_scorers.build_recipe_watermark(d, s)),
        DemoItem("recipe_owlvit", recipe / "google" / "owlvit-base-patch32",
                 lambda d, s: recipe_models_extra.build_recipe_owlvit(d, texts(s), s)),
        DemoItem("recipe_nltk_data", recipe / "nltk_data",
                 lambda d, s: recipe_models_extra.build_recipe_nltk_data(d, texts(s))),
        DemoItem("recipe_stable_diffusion", recipe / "CompVis" / "stable-diffusion-v1-4",
                 lambda d, s: recipe_models_extra.build_recipe_stable_diffusion(d, texts(s), s)),
        DemoItem("seed_pool", seed_dir, lambda d, s: build_seed_pool(
            d, name_in(layout.seed_jsonl, seed_dir), name_in(layout.stage1_json, seed_dir), s)),
        DemoItem("finetune_set", finetune_dir, lambda d, s: build_finetune_set(
            d, name_in(layout.finetune_json, finetune_dir), s)),
        DemoItem("textvqa", textvqa_dir, lambda d, s: eval_sets.build_textvqa(
            d, name_in(layout.textvqa_questions, textvqa_dir), name_in(layout.textvqa_images, textvqa_dir),
            name_in(layout.textvqa_annotations, textvqa_dir), s)),
        DemoItem("mmbench", mmbench_dir, lambda d, s: eval_sets.build_mmbench(
            d, name_in(layout.mmbench_tsv, mmbench_dir), s)),
    ]


def build_item(item: DemoItem, seed: int, force: bool) -> ItemResult:
    """Build one item into a temporary sibling folder, mark it complete, then move it into place."""
    start = time.perf_counter()
    if not force and is_complete(item.folder, seed):
        return ItemResult(item.name, item.folder, "skipped", 0.0)
    partial = item.folder.with_name(f".{item.folder.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    item.make(partial, item_seed(seed, item.name))
    (partial / MARKER_NAME).write_text(marker_content(seed))
    if item.folder.exists():
        shutil.rmtree(item.folder)
    partial.rename(item.folder)
    return ItemResult(item.name, item.folder, "built", time.perf_counter() - start)


def build_demo(layout: AssetLayout | None = None, seed: int = 0, force: bool = False) -> list[ItemResult]:
    """Build every missing or incomplete demo item into `layout` (default: the demo layout)."""
    layout = layout or demo_layout()
    return [build_item(item, seed, force) for item in demo_items(layout)]
