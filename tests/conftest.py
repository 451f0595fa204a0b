"""Shared test settings: everything runs offline on CPU; GPU tests are opt-in (-m gpu).

The demo models and data of the training tests (tests/train, tests/scale) are built once per session
(``demo_layout_for_tests``); their helpers are in tests/train_helpers.py.

The recipe tests' demo (``recipe_demo``: tiny CLIP / BLIP ITM / BLIP-2 and a 300-sample seed pool, built
once per session), this submission's operators registered in Data-Juicer (``custom_ops``) and the
``bsynth recipe run`` cache (``recipe_runs``: each (recipe, executor, environment) runs once per
session, in a child process) are shared by tests/recipes and tests/scale; their helpers are in
tests/recipe_helpers.py.

Paths to the shared real sample (../shared/data/seed_sample_1k) are exposed as a fixture that skips
cleanly where it is absent (a user's clone does not have it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from recipe_helpers import OPS_DIR, RecipeRuns
from train_helpers import DEMO_ITEMS

from bettersynth.paths import AssetLayout

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "seed_sample_1k"


def pytest_collection_modifyitems(config, items):
    """Skip GPU tests unless asked for with -m gpu (and a GPU is there)."""
    if "gpu" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="GPU test: run with -m gpu on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_sample_dir() -> Path:
    """The 1,000 real seed samples; skips the test where the folder is absent."""
    if not (SHARED_SAMPLE / "seed_sample_1k.jsonl").exists():
        pytest.skip(f"real sample not present at {SHARED_SAMPLE}")
    return SHARED_SAMPLE


# --- demo assets and short training runs ------------------------------------------------------

@pytest.fixture(scope="session")
def demo_layout_for_tests(tmp_path_factory):
    """The repository's demo_assets/ when complete, else the needed demo items built into a temp root."""
    from bettersynth.demo.build import build_item, demo_items, is_complete
    from bettersynth.paths import AssetLayout, demo_layout

    layout = demo_layout()
    items = [item for item in demo_items(layout) if item.name in DEMO_ITEMS]
    if all(is_complete(item.folder, 0) for item in items):
        return layout
    layout = AssetLayout(tmp_path_factory.mktemp("train_demo"))
    for item in demo_items(layout):
        if item.name in DEMO_ITEMS:
            build_item(item, 0, force=False)
    return layout


@pytest.fixture(scope="session")
def pretrain_records(demo_layout_for_tests) -> list[dict]:
    import json

    return json.loads(demo_layout_for_tests.stage1_json.read_text())


@pytest.fixture(scope="session")
def finetune_records(demo_layout_for_tests) -> list[dict]:
    import json

    return json.loads(demo_layout_for_tests.finetune_json.read_text())


# --- the recipe tests' demo and cached recipe runs --------------------------------------------

@pytest.fixture(scope="session")
def recipe_demo(tmp_path_factory) -> AssetLayout:
    from bettersynth.demo.build import build_demo

    layout = AssetLayout(tmp_path_factory.mktemp("recipe_demo"))
    build_demo(layout, seed=0)
    return layout


@pytest.fixture(scope="session")
def custom_ops():
    """The ``ops`` package of solution/ops, loaded the way recipes load it."""
    if "ops" not in sys.modules:
        from data_juicer.config.config import load_custom_operators

        load_custom_operators([str(OPS_DIR)])
    return sys.modules["ops"]


@pytest.fixture(scope="session")
def recipe_runs(recipe_demo, tmp_path_factory) -> RecipeRuns:
    return RecipeRuns(recipe_demo, tmp_path_factory.mktemp("recipe_runs"))
