"""Where the toolkit's inputs, models and outputs live: every location is named here, once.

The real assets keep the official kit's layout (``input/pretrain_stage_1_10k/``,
``toolkit/training/model_zoo/...``, ``toolkit/training/data/...``) so an existing download works.
The embedded demo (tiny random models, synthetic data) uses the very same layout under its own
root, ``demo_assets/``, so the same loading code runs on both.

The root is the checkout that runs, decided once, in ``repo_root()``: ``BSYNTH_ROOT`` when set,
else the nearest folder at or above the current directory that holds this project's markers
(``train_mgm_2b_stage_1.sh`` and a ``pyproject.toml`` naming the ``bettersynth`` project). It is never
the installed package's location, so two clones sharing one Python environment each use their own
``output/`` and ``demo_assets/``. Outside a checkout, a command that needs the root stops with
``RootNotFoundError`` (what to do is in its message); commands given explicit paths need none.

Environment overrides:
  BSYNTH_ROOT          the repository root (default: the checkout around the current directory)
  BSYNTH_ASSETS_ROOT   root of the real asset layout (default: the root)
  BSYNTH_DEMO_ROOT     root of the demo asset layout (default: <root>/demo_assets)
  BSYNTH_OUTPUT        the output folder (default: <root>/output)

``check_usable_path(path, what)`` refuses a path the pipeline cannot carry (a control character,
bytes that are not UTF-8, ``{`` or ``}``), naming it and why; spaces and non-ASCII letters are fine.

Use from Python::

    from bettersynth.paths import real_layout, demo_layout, output_dir, repo_root
    layout = real_layout(); layout.llm_dir  # .../toolkit/training/model_zoo/LLM/gemma/gemma-2b-it
"""

from __future__ import annotations

import os
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "BSYNTH_ROOT"
MAIN_JOB = "train_mgm_2b_stage_1.sh"
PROJECT_NAME = "bettersynth"


class RootNotFoundError(RuntimeError):
    """Neither BSYNTH_ROOT nor the current directory names a checkout of this project."""


class UnusablePathError(ValueError):
    """A path the pipeline cannot carry; the message names it and says why."""


def is_checkout(folder: Path) -> bool:
    """True when ``folder`` holds the main job and a pyproject.toml of the bettersynth project."""
    pyproject = folder / "pyproject.toml"
    if not (folder / MAIN_JOB).is_file() or not pyproject.is_file():
        return False
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(project, dict) and project.get("name") == PROJECT_NAME


def find_checkout(start: Path) -> Path | None:
    """The nearest checkout at or above ``start``, or None."""
    for folder in (start, *start.parents):
        if is_checkout(folder):
            return folder
    return None


def repo_root() -> Path:
    """The checkout this command works in: BSYNTH_ROOT, else the one around the current directory."""
    given = os.environ.get(ROOT_ENV)
    if given:
        root = Path(given).resolve()
        if not root.is_dir():
            raise RootNotFoundError(f"{ROOT_ENV}={given} is not a folder; point it at a bettersynth checkout")
        return root
    try:
        here = Path.cwd().resolve()
    except OSError as error:
        raise RootNotFoundError(f"the current directory cannot be read ({error}); cd into a bettersynth "
                                f"checkout or set {ROOT_ENV}") from error
    found = find_checkout(here)
    if found is None:
        raise RootNotFoundError(
            f"{here} is not inside a bettersynth checkout (a folder holding {MAIN_JOB} and the project's "
            f"pyproject.toml), and {ROOT_ENV} is not set: cd into the checkout to use, or set "
            f"{ROOT_ENV}=/path/to/checkout")
    return found


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be one folder name (None when it can)."""
    if name in ("", ".", "..") or "/" in name:
        return "it must be one folder name: not empty, not . or .., no /"
    return path_problem(name)


def path_problem(path: str | os.PathLike) -> str | None:
    """Why the pipeline cannot carry ``path`` (None when it can).

    Spaces and non-ASCII letters are fine. Refused: a control character (a newline or tab: the
    shell scripts read paths one a line from ``bsynth layout`` and ``bsynth eval locate``), bytes that
    are not UTF-8 (the JSON and YAML records cannot hold them) and ``{`` or ``}`` (Data-Juicer fills
    ``{placeholders}`` in its work and export paths with str.format, so a recipe run would fail).
    """
    text = os.fspath(path)
    if any(unicodedata.category(char) == "Cc" for char in text):
        return "it contains a control character (a newline or tab, say)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it contains bytes that are not UTF-8"
    if "{" in text or "}" in text:
        return "it contains { or }, which Data-Juicer reads as placeholders in its work and export paths"
    return None


def check_usable_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path; raises UnusablePathError naming ``what`` and the path when it cannot be used."""
    problem = path_problem(path)
    if problem:
        raise UnusablePathError(f"{what} {os.fspath(path)!r} cannot be used: {problem}; rename or move it")
    return Path(path)


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

    def training_assets(self) -> list[Path]:
        """The files the training and eval steps read (one a model or data set)."""
        return [self.llm_dir / "config.json", self.vision_tower_dir / "config.json",
                self.vision_tower_aux_dir / "open_clip_config.json", self.stage1_json,
                self.finetune_json, self.textvqa_questions, self.mmbench_tsv]

    def training_assets_present(self) -> bool:
        """True when the models and data the training and eval steps read are all on disk."""
        return all(p.exists() for p in self.training_assets())


def real_layout(seed_variant: str = "10k") -> AssetLayout:
    given = os.environ.get("BSYNTH_ASSETS_ROOT")
    return AssetLayout(Path(given).resolve() if given else repo_root(), seed_variant)


def demo_layout() -> AssetLayout:
    given = os.environ.get("BSYNTH_DEMO_ROOT")
    return AssetLayout(Path(given).resolve() if given else repo_root() / "demo_assets", "10k")


def output_dir() -> Path:
    given = os.environ.get("BSYNTH_OUTPUT")
    return Path(given).resolve() if given else repo_root() / "output"


def kernel_cache_dir(output: Path, node_rank: int) -> Path:
    """Where a job in the output tree ``output`` keeps torch.compile's kernels on node ``node_rank``
    (inductor's TORCHINDUCTOR_CACHE_DIR): in the tree, not in /tmp (gone with a container), so a later
    run there starts warm; one folder per node, as the tree may be shared storage."""
    return Path(output) / ".cache" / f"torchinductor-node{node_rank}"


def training_dir(run_name: str) -> Path:
    """``output/training_dirs/<run_name>`` (e.g. MGM-2B-Pretrain-default)."""
    return output_dir() / "training_dirs" / run_name


def eval_results_dir(checkpoint_name: str) -> Path:
    """``output/eval_results/<checkpoint_name>``."""
    return output_dir() / "eval_results" / checkpoint_name


def cache_dir() -> Path:
    """Caches the toolkit and Data-Juicer write (never under the user's home, never committed)."""
    return repo_root() / ".cache"
