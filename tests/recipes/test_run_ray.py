"""Recipes on a local Ray instance started by Data-Juicer (``--executor ray``) keep exactly the
samples the default executor keeps: solution/recipes/cpu_prefilter.yaml (no models; also checked
against bounds computed here) and solution/recipes/dj_refine.yaml (CLIP, BLIP ITM and BLIP-2
operators, custom ones included, in Ray workers).

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_ray.py -q      (~2.5 min)
"""

from __future__ import annotations

import os

import pytest
from PIL import Image
from recipe_helpers import DEMO_SCORE_BARS, check_complete_run, read_rows

STATS = "__dj__stats__"


def key(row: dict) -> tuple:
    return row["id"], row["text"], tuple(row["images"])


def test_default_executor_applies_every_bound(recipe_runs, recipe_demo):
    rows = check_complete_run(recipe_runs.get("cpu_prefilter"), recipe_demo)
    passing_images = set()
    for row in read_rows(recipe_demo.seed_jsonl):
        path = recipe_demo.seed_dir / row["images"][0]
        with Image.open(path) as image:
            width, height = image.size
        if 0.333 <= width / height <= 3.0 and width <= 727 and height <= 606 and os.path.getsize(path) <= 124 * 1024:
            passing_images.add(row["id"])
    assert 0 < len(rows) <= len(passing_images)
    assert {row["id"] for row in rows} <= passing_images
    assert all(4 <= row[STATS]["num_words"] <= 24 and row[STATS]["word_rep_ratio"] <= 0.3 for row in rows)


def test_ray_executor_keeps_the_same_samples(recipe_runs, recipe_demo):
    default = read_rows(recipe_runs.get("cpu_prefilter").export)
    ray_rows = check_complete_run(recipe_runs.get("cpu_prefilter", executor="ray"), recipe_demo)
    assert sorted(map(key, ray_rows)) == sorted(map(key, default))
    by_id = {row["id"]: row[STATS] for row in default}
    for row in ray_rows:
        for name, value in row[STATS].items():
            assert value == pytest.approx(by_id[row["id"]][name], rel=1e-9), (row["id"], name)


def test_ray_runs_the_model_recipe_with_custom_operators(recipe_runs, recipe_demo):
    default = read_rows(recipe_runs.get("dj_refine", env=DEMO_SCORE_BARS).export)
    ray_rows = check_complete_run(recipe_runs.get("dj_refine", executor="ray", env=DEMO_SCORE_BARS), recipe_demo)
    assert sorted(map(key, ray_rows)) == sorted(map(key, default))
    scores = {key(row): row[STATS]["image_text_similarity"] for row in default}
    for row in ray_rows:
        assert row[STATS]["image_text_similarity"] == pytest.approx(scores[key(row)], abs=1e-6)
