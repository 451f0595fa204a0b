"""Helpers of the recipe tests (``from recipe_helpers import ...``): paths, the CLI runner, run cache.

Not run on its own; the fixtures that use them (``recipe_demo``, ``recipe_runs``, ``custom_ops``) live in
tests/conftest.py, shared by tests/recipes and tests/scale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bettersynth.paths import AssetLayout
from bettersynth.recipes.config import report_dir_for, work_dir_for
from bettersynth.recipes.installs import installed_distributions

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES_DIR = REPO_ROOT / "solution" / "recipes"
OPS_DIR = REPO_ROOT / "solution" / "ops"

# The demo's CLIP and BLIP ITM have random weights: their scores sit far below the real models'
# bars (CLIP 0.2032, ITM 0.4493), so dj_refine runs on the demo with bars it can pass.
DEMO_SCORE_BARS = {"BSYNTH_CLIP_MIN": "0.015", "BSYNTH_ITM_MIN": "0.0"}
# The recipe palette's runs on the demo pool, with their bars moved to where the demo's random models
# score (shared by the palette tests, so each recipe runs once a session). regenerate_low_clip: the
# tiny pipeline draws in 2 steps; its new pairs score about -0.064 to -0.028 (the originals about
# -0.043 to 0.057), so -0.05 keeps some new pairs and drops others. itm_half_repeat: the demo BLIP-2's
# captions score about 0.018 to 0.029, so a 0.02 bar swaps some in and leaves others out.
PALETTE_DEMO_ENV = {
    "clip_aesthetics": {"BSYNTH_CLIP_MIN": "0.015", "BSYNTH_AESTHETICS_MIN": "0.4"},
    "grounding_recall": {"BSYNTH_GROUNDING_MIN": "0.01"},
    "dedup_watermark": {},
    "itm_half_repeat": {"BSYNTH_RECAPTION_BAND_MIN": "-0.02", "BSYNTH_RECAPTION_BAR": "0.02"},
    "recaption_clean_repeat": {"BSYNTH_CLIP_MIN": "0.0", "BSYNTH_MIN_SIDE": "200", "BSYNTH_MAX_SIDE": "900",
                               "BSYNTH_WATERMARK_MAX": "1.0"},
    "regenerate_low_clip": {"BSYNTH_CLIP_MIN": "-0.05", "BSYNTH_REGEN_STEPS": "2"},
}


@dataclass(frozen=True)
class RecipeResult:
    returncode: int
    output: str
    export: Path
    seconds: float
    distributions_changed: bool

    @property
    def work_dir(self) -> Path:
        return work_dir_for(self.export)

    @property
    def report_dir(self) -> Path:
        return report_dir_for(self.export)


def run_cli(recipe: Path, layout: AssetLayout, export: Path, *extra: str, env: dict | None = None,
            dataset: Path | None = None, timeout: int = 900) -> RecipeResult:
    """``bsynth recipe run`` with the demo's recipe models, on the demo seed pool unless ``dataset``."""
    command = [sys.executable, "-m", "bettersynth", "recipe", "run", str(recipe),
               "--dataset", str(dataset or layout.seed_jsonl), "--export", str(export),
               "--models-root", str(layout.recipe_models_dir), *extra]
    before = installed_distributions()
    start = time.perf_counter()
    done = subprocess.run(command, env=dict(os.environ, HF_HUB_OFFLINE="1", **(env or {})),
                          capture_output=True, text=True, timeout=timeout)
    return RecipeResult(done.returncode, done.stdout + done.stderr, export, time.perf_counter() - start,
                        installed_distributions() != before)


class RecipeRuns:
    """Runs each (recipe, executor, env) once; results are shared by every test that asks."""

    def __init__(self, layout: AssetLayout, root: Path):
        self.layout, self.root = layout, root
        self.results: dict[tuple, RecipeResult] = {}

    def palette(self, name: str) -> RecipeResult:
        """The run of a palette recipe with its demo bars (PALETTE_DEMO_ENV)."""
        return self.get(name, env=PALETTE_DEMO_ENV[name])

    def get(self, name: str, executor: str = "default", env: dict | None = None) -> RecipeResult:
        key = (name, executor, tuple(sorted((env or {}).items())))
        if key not in self.results:
            export = self.root / f"{name}-{executor}-{len(self.results)}" / "processed_data.jsonl"
            self.results[key] = run_cli(RECIPES_DIR / f"{name}.yaml", self.layout, export,
                                        "--np", "1", "--executor", executor, env=env)
        return self.results[key]


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_complete_run(result: RecipeResult, layout: AssetLayout) -> list[dict]:
    """The checks every successful run must pass; returns the exported rows.

    Exit 0; the export exists (no leftover .partial) and passes ``bettersynth.data.validate`` against
    the seed pool's image root and stage_1.json (so dj2llava --restore_questions can convert it);
    image paths are relative; run.json's per-op counts chain from the loaded count to the export's;
    the HTML report embeds a histogram per metric; nothing was installed.
    """
    from bettersynth.data.validate import ValidateOptions, validate

    assert result.returncode == 0, result.output[-5000:]
    assert result.export.is_file() and not result.export.with_name(result.export.name + ".partial").exists()
    report = validate(result.export, ValidateOptions(image_root=layout.seed_dir, original=layout.stage1_json,
                                                     workers=1))
    assert report.ok, [problem.to_json() for problem in report.errors][:5]
    rows = read_rows(result.export)
    assert all(not os.path.isabs(path) for row in rows for path in row["images"])
    summary = json.loads((result.work_dir / "run.json").read_text())
    assert summary["status"] == "complete" and summary["output_samples"] == len(rows)
    assert summary["input_samples"] == len(layout.seed_jsonl.read_text().splitlines())
    if summary["executor"] == "default":
        counts = [summary["loaded_samples"]] + [op["left"] for op in summary["ops"]]
        assert counts[0] == summary["input_samples"] and counts[-1] == len(rows)
        assert len(summary["ops"]) == len(yaml.safe_load(Path(summary["recipe"]).read_text())["process"])
    page = (result.report_dir / "report.html").read_text()
    numbers = json.loads((result.report_dir / "report.json").read_text())
    assert page.count("data:image/png;base64,") == sum(1 for m in numbers["metrics"].values() if m["count"])
    assert numbers["metrics"]["caption length (words)"]["count"] == len(rows)
    assert "Data-Juicer tried to install" not in result.output and not result.distributions_changed
    return rows
