"""Where the toolkit's inputs, models and outputs live: every location is named here, once.

The real assets keep the official kit's layout (``input/pretrain_stage_1_10k/``,
``toolkit/training/model_zoo/...``, ``toolkit/training/data/...``) so an existing download works.
The embedded demo (tiny random models, synthetic data) uses the very same layout under its own
root, ``demo_assets/``, so the same loading code runs on both.

Environment overrides:
  BSYNTH_ROOT          the repository root (default: two folders above this file's package)
  BSYNTH_ASSETS_ROOT   root of the real asset layout (default: BSYNTH_ROOT)
  BSYNTH_DEMO_ROOT     root of the demo asset layout (default: BSYNTH_ROOT/demo_assets)
  BSYNTH_OUTPUT        the output folder (default: BSYNTH_ROOT/output)

Use from Python::

    from bettersynth.paths import real_layout, demo_layout, output_dir
    layout = real_layout(); layout.llm_dir  # .../toolkit/training/model_zoo/LLM/gemma/gemma-2b-it
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = Path(os.environ.get("BSYNTH_ROOT", PACKAGE_DIR.parents[1])).resolve()

# Seed pool variants of the official kit: folder, jsonl and finetuning set names.
SEED_VARIANTS = {
    "10k": ("pretrain_stage_1_10k", "mgm_pretrain_stage_1_10k.jsonl",
            "finetuning_stage_1_12k", "mgm_instruction_stage_1_12k.json"),
    "full": ("pretrain_stage_1", "mgm_pretrain_stage_1.jsonl",
             "finetuning_stage_1", "mgm_instruction_stage_1.json"),
}

LLM_SUBDIR = Path("LLM/gemma/gemma-2b-it")
VISION_TOWER_SUBDIR = Path("OpenAI/clip-vit-large-patch14-336")
VISION_TOWER_AUX_SUBDIR = Path("OpenAI/openclip-convnext-large-d-320-laion2B-s29B-b131K-ft-soup")
MMBENCH_SPLIT = "mmbench_dev_20230712"


@dataclass(frozen=True)
class AssetLayout:
    """The official kit's asset layout rooted at ``root`` (the repository, or the demo root)."""

    root: Path
    seed_variant: str = "10k"

    def __post_init__(self) -> None:
        if self.seed_variant not in SEED_VARIANTS:
            raise ValueError(f"unknown seed variant {self.seed_variant!r}; known: {sorted(SEED_VARIANTS)}")

    # --- seed pool (input/) -------------------------------------------------------------
    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def seed_dir(self) -> Path:
        """Image root of the seed pool; the jsonl's image paths are relative to it."""
        return self.input_dir / SEED_VARIANTS[self.seed_variant][0]

    @property
    def seed_jsonl(self) -> Path:
        return self.seed_dir / SEED_VARIANTS[self.seed_variant][1]

    @property
    def stage1_json(self) -> Path:
        """The original LLaVA records (questions) of every seed id: dj2llava --original_llava_ds_path."""
        return self.seed_dir / "stage_1.json"

    # --- models (toolkit/training/model_zoo/) -------------------------------------------
    @property
    def model_zoo(self) -> Path:
        return self.root / "toolkit" / "training" / "model_zoo"

    @property
    def llm_dir(self) -> Path:
        return self.model_zoo / LLM_SUBDIR

    @property
    def vision_tower_dir(self) -> Path:
        return self.model_zoo / VISION_TOWER_SUBDIR

    @property
    def vision_tower_aux_dir(self) -> Path:
        return self.model_zoo / VISION_TOWER_AUX_SUBDIR

    @property
    def recipe_models_dir(self) -> Path:
        """Models of the Data-Juicer ops, as ``<org>/<name>`` folders (DATA_JUICER_EXTERNAL_MODELS_HOME)."""
        return self.model_zoo / "recipe_models"

    # --- finetuning and eval data (toolkit/training/data/) ------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "toolkit" / "training" / "data"

    @property
    def finetune_dir(self) -> Path:
        """Image root of the finetuning set."""
        return self.data_dir / SEED_VARIANTS[self.seed_variant][2]

    @property
    def finetune_json(self) -> Path:
        return self.finetune_dir / SEED_VARIANTS[self.seed_variant][3]

    @property
    def eval_dir(self) -> Path:
        return self.data_dir / "eval_stage_1"

    @property
    def textvqa_questions(self) -> Path:
        return self.eval_dir / "textvqa" / "llava_textvqa_val_v051_ocr.jsonl"

    @property
    def textvqa_images(self) -> Path:
        return self.eval_dir / "textvqa" / "train_images"

    @property
    def textvqa_annotations(self) -> Path:
        """TextVQA 0.5.1 val annotations (10 answers a question), used for local scoring."""
        return self.eval_dir / "textvqa" / "TextVQA_0.5.1_val.json"

    @property
    def mmbench_tsv(self) -> Path:
        return self.eval_dir / "mmbench" / f"{MMBENCH_SPLIT}.tsv"

    def training_assets_present(self) -> bool:
        """True when the models and data the training and eval steps read are all on disk."""
        needed = [self.llm_dir / "config.json", self.vision_tower_dir / "config.json",
                  self.vision_tower_aux_dir / "open_clip_config.json", self.stage1_json,
                  self.finetune_json, self.textvqa_questions, self.mmbench_tsv]
        return all(p.exists() for p in needed)


def real_layout(seed_variant: str = "10k") -> AssetLayout:
    return AssetLayout(Path(os.environ.get("BSYNTH_ASSETS_ROOT", REPO_ROOT)).resolve(), seed_variant)


def demo_layout() -> AssetLayout:
    return AssetLayout(Path(os.environ.get("BSYNTH_DEMO_ROOT", REPO_ROOT / "demo_assets")).resolve(), "10k")


def output_dir() -> Path:
    return Path(os.environ.get("BSYNTH_OUTPUT", REPO_ROOT / "output")).resolve()


def training_dir(run_name: str) -> Path:
    """``output/training_dirs/<run_name>`` (e.g. MGM-2B-Pretrain-default)."""
    return output_dir() / "training_dirs" / run_name


def eval_results_dir(checkpoint_name: str) -> Path:
    """``output/eval_results/<checkpoint_name>``."""
    return output_dir() / "eval_results" / checkpoint_name


def cache_dir() -> Path:
    """Caches the toolkit and Data-Juicer write (never under the user's home, never committed)."""
    return REPO_ROOT / ".cache"
