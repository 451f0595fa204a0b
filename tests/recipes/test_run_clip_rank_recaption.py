"""solution/recipes/clip_rank_recaption.yaml on the demo pool: the best public method end to end.

Checks the method, not just the format: recaptions exist only for the lower half of the first CLIP
ranking, they carry their own (re-computed) score, the export is the best third of the merged
pool in descending score order, and exported scores equal a plain Hugging Face CLIP computation.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_clip_rank_recaption.py -q      (~1.5 min)
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from recipe_helpers import check_complete_run

STATS, META = "__dj__stats__", "__dj__meta__"


@pytest.fixture(scope="module")
def run(recipe_runs, recipe_demo):
    result = recipe_runs.get("clip_rank_recaption")
    return result, check_complete_run(result, recipe_demo)


def test_export_is_the_best_third_of_originals_plus_recaptions(run):
    result, rows = run
    ops = json.loads((result.work_dir / "run.json").read_text())["ops"]
    assert [op["op"] for op in ops] == ["fast_image_text_similarity_filter", "stats_quantile_tagger",
                                        "fast_image_captioning_mapper", "fast_image_text_similarity_filter",
                                        "topk_specified_field_selector"]
    merged = ops[2]["left"]
    assert 300 < merged <= 450  # 150 lower-half images recaptioned (fewer if a caption came out empty)
    assert len(rows) == int(0.3334 * merged)
    scores = [row[STATS]["image_text_similarity"][0] for row in rows]
    assert scores == sorted(scores, reverse=True)


def test_only_the_lower_half_is_recaptioned_and_rescored(run):
    _, rows = run
    recaptioned = [row for row in rows if row[META].get("recaptioned")]
    originals = {row["id"]: row for row in rows if not row[META].get("recaptioned")}
    assert recaptioned, "no recaption made it into the best third"
    assert all(row[META]["image_text_similarity_quantile"] < 0.5 for row in recaptioned)
    for row in recaptioned:
        if row["id"] in originals:
            assert row[STATS]["image_text_similarity"] != originals[row["id"]][STATS]["image_text_similarity"]


def test_exported_scores_equal_plain_hf_clip(run, recipe_demo):
    from data_juicer.utils.mm_utils import remove_special_tokens
    from transformers import CLIPModel, CLIPProcessor

    _, rows = run
    folder = recipe_demo.recipe_models_dir / "openai" / "clip-vit-base-patch32"
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    picked = rows[:2] + [row for row in rows if row[META].get("recaptioned")][:2]
    for row in picked:
        image = Image.open(recipe_demo.seed_dir / row["images"][0]).convert("RGB")
        inputs = processor(text=remove_special_tokens(row["text"]), images=[image], return_tensors="pt",
                           padding=True, truncation=True, max_length=77)
        with torch.no_grad():
            expected = float(model(**inputs).logits_per_text[0, 0] / 100.0)
        assert row[STATS]["image_text_similarity"][0] == pytest.approx(expected, abs=1e-5)
