"""Settings of one recipe run (``bsynth recipe run``): a validated dataclass and its defaults.

Where things go, for an export ``DIR/NAME.jsonl``:
  DIR/NAME.jsonl          the curated pool (written last, by rename: it exists only when complete)
  DIR/NAME_work/          Data-Juicer's work folder: resolved recipe, staged input, logs, stats, run.json
  DIR/NAME_report/        report.html (per-op table, score histograms) and report.json
  DIR/synthetic_images/NAME/  images the recipe drew (Data-Juicer's DJ_PRODUCED_DATA_DIR), when it drew any;
                          the export's synthetic samples point into it (bettersynth.data.image_roots)

Defaults: the dataset is the real seed pool when present, else the demo's; the recipe models are
the real layout's ``recipe_models_dir`` (``toolkit/training/model_zoo/recipe_models/<org>/<name>``),
or the demo layout's when the real folder is absent and the dataset is demo data; image paths are
relative to the dataset file's folder (the seed pool's image root); the export is
``output/processed_data/processed_data.jsonl`` (the official kit's offline-round location).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bettersynth import paths
from bettersynth.data.image_roots import synthetic_images_dir

EXECUTORS = ("default", "ray")


def default_models_root(dataset: Path) -> Path:
    """The real recipe models; the demo's tiny ones only for demo data while the real ones are
    absent, so random models never score a real pool unnoticed (a missing real model fails its op)."""
    real, demo = paths.real_layout().recipe_models_dir, paths.demo_layout()
    if real.is_dir() or not dataset.resolve().is_relative_to(demo.root):
        return real
    return demo.recipe_models_dir


def default_dataset() -> Path:
    real = paths.real_layout().seed_jsonl
    return real if real.is_file() else paths.demo_layout().seed_jsonl


def default_export() -> Path:
    return paths.output_dir() / "processed_data" / "processed_data.jsonl"


def work_dir_for(export: Path) -> Path:
    """``<export stem>_work/`` beside the export: Data-Juicer's work files, run.json, run.log."""
    return export.with_name(export.stem + "_work")


def report_dir_for(export: Path) -> Path:
    """``<export stem>_report/`` beside the export: the per-op table and histograms."""
    return export.with_name(export.stem + "_report")


@dataclass(frozen=True)
class RecipeRun:
    """One run of a Data-Juicer recipe on a Data-Juicer jsonl pool."""

    recipe: Path
    dataset: Path
    export: Path
    image_root: Path
    models_root: Path
    np: Optional[int] = None      # processes per op; None: the recipe's own ``np``
    executor: str = "default"     # "default" or "ray" (Data-Juicer's executor_type)
    ray_address: Optional[str] = None   # a running Ray cluster's head (HOST:PORT); None: $RAY_ADDRESS or local

    def __post_init__(self) -> None:
        if not self.recipe.is_file() or self.recipe.suffix not in (".yaml", ".yml"):
            raise ValueError(f"recipe {self.recipe} is not a .yaml file")
        if self.dataset.is_dir():
            raise ValueError(f"dataset {self.dataset} is a folder; give the path of its jsonl file")
        if not self.dataset.is_file():
            raise ValueError(f"dataset {self.dataset} does not exist (build the demo with `bsynth demo build`, "
                             f"or download the seed pool)")
        if self.export.suffix != ".jsonl":
            raise ValueError(f"export {self.export} must end in .jsonl")
        if self.export.is_dir():
            raise ValueError(f"export {self.export} is a folder; give the path of a .jsonl file")
        if self.export.exists() and not self.export.is_file():
            raise ValueError(f"export {self.export} is not a regular file (a named pipe or a device): the finished "
                             "export is renamed onto its path, which would replace it; give the path of a .jsonl file")
        if self.export.resolve() == self.dataset.resolve():
            raise ValueError(f"export {self.export} would overwrite the input dataset")
        if not self.image_root.is_dir():
            raise ValueError(f"image root {self.image_root} is not a folder")
        if self.np is not None and self.np < 1:
            raise ValueError(f"np must be >= 1, got {self.np}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError(f"a Ray address ({self.ray_address}) needs the ray executor (--executor ray)")
        # Data-Juicer is handed the recipe's operator folders and the work and export paths (beside
        # the export): refused here, before any work, when it could not take them
        paths.check_usable_path(self.recipe, "recipe")
        paths.check_usable_path(self.export, "export")

    @classmethod
    def create(cls, recipe: Path, dataset: Optional[Path] = None, export: Optional[Path] = None,
               image_root: Optional[Path] = None, models_root: Optional[Path] = None, np: Optional[int] = None,
               executor: str = "default", ray_address: Optional[str] = None) -> "RecipeRun":
        """A run with the documented defaults filled in; every path made absolute."""
        dataset = (dataset or default_dataset()).resolve()
        return cls(recipe=recipe.resolve(), dataset=dataset, export=(export or default_export()).resolve(),
                   image_root=(image_root or dataset.parent).resolve(),
                   models_root=(models_root or default_models_root(dataset)).resolve(),
                   np=np, executor=executor, ray_address=ray_address)

    @property
    def work_dir(self) -> Path:
        return work_dir_for(self.export)

    @property
    def report_dir(self) -> Path:
        return report_dir_for(self.export)

    @property
    def synthetic_images_dir(self) -> Path:
        """Where operators write the images they draw (DJ_PRODUCED_DATA_DIR), committed with the export."""
        return synthetic_images_dir(self.export)

    @property
    def staged_dataset(self) -> Path:
        """The input with absolute image paths, as Data-Juicer reads it."""
        return self.work_dir / "input.jsonl"

    @property
    def resolved_recipe(self) -> Path:
        return self.work_dir / "recipe.resolved.yaml"

    @property
    def dj_export(self) -> Path:
        """Where Data-Juicer writes (a file; a folder of shards with the Ray executor)."""
        return self.work_dir / "dj_export.jsonl"

    @property
    def summary(self) -> Path:
        """run.json: what ran, per-op sample counts, timings, the failing op."""
        return self.work_dir / "run.json"

    @property
    def log(self) -> Path:
        return self.work_dir / "run.log"
