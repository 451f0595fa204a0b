"""A recipe run from a checkout whose path has spaces and non-ASCII letters, with every default taken
from that checkout (root found from the working directory, demo seed pool under its demo_assets/,
export under its output/) and the recipe given relative to another working directory; and the
clear refusal of an export path Data-Juicer cannot take.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_paths_with_spaces.py -q
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from recipe_helpers import REPO_ROOT, RecipeResult, check_complete_run

from bettersynth.paths import AssetLayout
from bettersynth.recipes.installs import installed_distributions

OVERRIDES = ("BSYNTH_ROOT", "BSYNTH_ASSETS_ROOT", "BSYNTH_DEMO_ROOT", "BSYNTH_OUTPUT", "BSYNTH_LOCK_HELD")
SKIPPED = shutil.ignore_patterns("__pycache__", "*.egg-info")


@pytest.fixture(scope="module")
def spaced_checkout(recipe_demo, tmp_path_factory) -> Path:
    """This checkout's package, recipes, ops and markers, plus the demo seed pool, under 'Données ü/my checkout'."""
    root = tmp_path_factory.mktemp("paths") / "Données ü" / "my checkout"
    root.mkdir(parents=True)
    for name in ("pyproject.toml", "train_mgm_2b_stage_1.sh"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "solution", root / "solution", ignore=SKIPPED)
    shutil.copytree(REPO_ROOT / "toolkit" / "bettersynth", root / "toolkit" / "bettersynth", ignore=SKIPPED)
    demo = AssetLayout(root / "demo_assets")
    shutil.copytree(recipe_demo.seed_dir, demo.seed_dir)
    return root


def recipe_run(root: Path, cwd: Path, *args: str) -> RecipeResult:
    """``bsynth recipe run ARGS`` with the copy's package, in ``cwd``, with no BSYNTH_* overrides."""
    env = {key: value for key, value in os.environ.items() if key not in OVERRIDES}
    env.update(PYTHONPATH=str(root / "toolkit"), HF_HUB_OFFLINE="1")
    before, start = installed_distributions(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bettersynth", "recipe", "run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    return RecipeResult(done.returncode, done.stdout + done.stderr,
                        root / "output" / "processed_data" / "processed_data.jsonl", time.perf_counter() - start,
                        installed_distributions() != before)


def test_recipe_runs_from_a_checkout_under_spaces_and_non_ascii(spaced_checkout):
    result = recipe_run(spaced_checkout, spaced_checkout / "solution", "recipes/cpu_prefilter.yaml", "--np", "1")
    rows = check_complete_run(result, AssetLayout(spaced_checkout / "demo_assets"))
    assert 0 < len(rows) < 300
    assert f"{spaced_checkout / 'solution' / 'recipes' / 'cpu_prefilter.yaml'} on " \
           f"{spaced_checkout / 'demo_assets' / 'input'}" in result.output
    assert (spaced_checkout / ".cache").is_dir()


def test_an_export_path_data_juicer_cannot_take_is_refused_before_any_work(spaced_checkout):
    export = spaced_checkout / "out {run}" / "p.jsonl"
    result = recipe_run(spaced_checkout, spaced_checkout, "solution/recipes/cpu_prefilter.yaml", "--export",
                        str(export))
    assert result.returncode == 2
    assert result.output == (f"[recipe] export {str(export)!r} cannot be used: it contains {{ or }}, which "
                             "Data-Juicer reads as placeholders in its work and export paths; rename or move it\n")
    assert not export.parent.exists()
