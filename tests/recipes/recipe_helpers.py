"""Helpers of the recipe tests (``from recipe_helpers import ...``): paths, the CLI runner, run cache.

Not run on its own; the fixtures that use them live in tests/recipes/conftest.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bettersynth.paths import AssetLayout

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES_DIR = REPO_ROOT / "solution" / "recipes"
OPS_DIR = REPO_ROOT / "solution" / "ops"

# The demo's CLIP and BLIP ITM have random weights: their scores sit far below the real models'
# bars (CLIP 0.2032, ITM 0.4493), so dj_refine runs on the demo with bars it can pass.
DEMO_SCORE_BARS = {"BSYNTH_CLIP_MIN": "0.015", "BSYNTH_ITM_MIN": "0.0"}


@dataclass(frozen=True)
class RecipeResult:
    returncode: int
    output: str
    export: Path
    seconds: float
    distributions_changed: bool

    @property
    def work_dir(self) -> Path:
        return self.export.with_name(self.export.stem + "_work")

    @property
    def report_dir(self) -> Path:
        return self.export.with_name(self.export.stem + "_report")


def distributions() -> set[tuple[str, str]]:
    return {(d.metadata["Name"], d.version) for d in importlib.metadata.distributions()}


def run_cli(recipe: Path, layout: AssetLayout, export: Path, *extra: str, env: dict | None = None,
            timeout: int = 900) -> RecipeResult:
    """``bsynth recipe run`` on the demo seed pool with the demo's recipe models."""
    command = [sys.executable, "-m", "bettersynth", "recipe", "run", str(recipe),
               "--dataset", str(layout.seed_jsonl), "--export", str(export),
               "--models-root", str(layout.recipe_models_dir), *extra]
    before = distributions()
    start = time.perf_counter()
    done = subprocess.run(command, env=dict(os.environ, HF_HUB_OFFLINE="1", **(env or {})),
                          capture_output=True, text=True, timeout=timeout)
    return RecipeResult(done.returncode, done.stdout + done.stderr, export, time.perf_counter() - start,
                        distributions() != before)


class RecipeRuns:
    """Runs each (recipe, executor, env) once; results are shared by every test that asks."""

    def __init__(self, layout: AssetLayout, root: Path):
        self.layout, self.root = layout, root
        self.results: dict[tuple, RecipeResult] = {}

    def get(self, name: str, executor: str = "default", env: dict | None = None) -> RecipeResult:
        key = (name, executor, tuple(sorted((env or {}).items())))
        if key not in self.results:
            export = self.root / f"{name}-{executor}-{len(self.results)}" / "processed_data.jsonl"
            self.results[key] = run_cli(RECIPES_DIR / f"{name}.yaml", self.layout, export,
                                        "--np", "1", "--executor", executor, env=env)
        return self.results[key]
