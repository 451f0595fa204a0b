"""Shared fixtures of the recipe tests: one demo build, the custom operators, cached recipe runs.

- ``recipe_demo``: the embedded demo assets (tiny CLIP / BLIP ITM / BLIP-2, 300-sample seed pool),
  built once per session into a temporary root with ``bettersynth.demo.build.build_demo``.
- ``custom_ops``: this submission's operators (solution/ops) registered in Data-Juicer, in-process.
- ``recipe_runs``: runs ``bsynth recipe run`` (the real CLI, in a child process) at most once per
  (recipe, executor, environment) per session, so several test files share a run.
"""

from __future__ import annotations

import sys

import pytest
from recipe_helpers import OPS_DIR, RecipeRuns

from bettersynth.paths import AssetLayout


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
