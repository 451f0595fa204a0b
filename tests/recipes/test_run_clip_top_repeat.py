"""solution/recipes/clip_top_repeat.yaml on the demo pool: ranks 69.5%-99.5% of a CLIP ranking, then
copies of the best of them (at most two of each).

The expected selection is computed independently with plain Hugging Face CLIP on all 300 seed pairs.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_clip_top_repeat.py -q      (~1 min)
"""

from __future__ import annotations

from collections import Counter

import torch
from PIL import Image
from recipe_helpers import check_complete_run, read_rows

STATS = "__dj__stats__"


def plain_scores(layout) -> dict[str, float]:
    from data_juicer.utils.mm_utils import remove_special_tokens
    from transformers import CLIPModel, CLIPProcessor

    folder = layout.recipe_models_dir / "openai" / "clip-vit-base-patch32"
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    scores, rows = {}, read_rows(layout.seed_jsonl)
    for start in range(0, len(rows), 50):
        batch = rows[start:start + 50]
        images = [Image.open(layout.seed_dir / row["images"][0]).convert("RGB") for row in batch]
        inputs = processor(text=[remove_special_tokens(row["text"]) for row in batch], images=images,
                           return_tensors="pt", padding=True, truncation=True, max_length=77)
        with torch.no_grad():
            logits = model(**inputs).logits_per_text.diagonal() / 100.0
        scores.update({row["id"]: float(score) for row, score in zip(batch, logits)})
    return scores


def test_repeats_the_best_of_the_clip_band(recipe_runs, recipe_demo):
    rows = check_complete_run(recipe_runs.get("clip_top_repeat"), recipe_demo)
    scores = plain_scores(recipe_demo)
    ascending = sorted(scores, key=scores.get)
    band = ascending[int(0.695 * 300):int(0.995 * 300)]          # 90 samples, the top 2 excluded
    assert len(rows) == 2 * len(band)
    first, copies = rows[:len(band)], rows[len(band):]
    assert {row["id"] for row in first} == set(band)
    assert [row["id"] for row in copies] == [row["id"] for row in first]   # best first, both in score order
    exported = [row[STATS]["image_text_similarity"][0] for row in first]
    assert exported == sorted(exported, reverse=True)
    assert max(Counter(row["id"] for row in rows).values()) == 2
