"""Recipes on a local Ray instance of the run's own (``--executor ray``) write the default executor's
export byte for byte (same samples in the same order, same stats):
solution/recipes/cpu_prefilter.yaml (no models; also checked against bounds computed here) and
solution/recipes/dj_refine.yaml (CLIP, BLIP ITM and BLIP-2 operators, custom ones included, in Ray
workers). A recipe split between Ray and the default executor, on a two-node cluster:
tests/scale/test_ray_cluster.py.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_ray.py -q      (~4 min)
"""

from __future__ import annotations

import os

from PIL import Image
from recipe_helpers import DEMO_SCORE_BARS, check_complete_run, read_rows

STATS = "__dj__stats__"


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


def test_ray_executor_writes_the_default_executors_export(recipe_runs, recipe_demo):
    default = recipe_runs.get("cpu_prefilter")
    on_ray = recipe_runs.get("cpu_prefilter", executor="ray")
    check_complete_run(on_ray, recipe_demo)
    assert on_ray.export.read_bytes() == default.export.read_bytes()


def test_ray_runs_the_model_recipe_with_custom_operators(recipe_runs, recipe_demo):
    default = recipe_runs.get("dj_refine", env=DEMO_SCORE_BARS)
    on_ray = recipe_runs.get("dj_refine", executor="ray", env=DEMO_SCORE_BARS)
    rows = check_complete_run(on_ray, recipe_demo)
    assert any((row.get("__dj__meta__") or {}).get("recaptioned") for row in rows)   # BLIP-2 ran on Ray
    assert on_ray.export.read_bytes() == default.export.read_bytes()
