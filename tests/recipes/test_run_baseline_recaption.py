"""solution/recipes/baseline_recaption.yaml on the demo pool: every seed sample recaptioned in place.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_baseline_recaption.py -q      (~1 min)
"""

from __future__ import annotations

from recipe_helpers import check_complete_run, read_rows

META = "__dj__meta__"


def test_baseline_replaces_every_caption_and_keeps_ids(recipe_runs, recipe_demo):
    rows = check_complete_run(recipe_runs.get("baseline_recaption"), recipe_demo)
    seed = read_rows(recipe_demo.seed_jsonl)
    assert [row["id"] for row in rows] == [row["id"] for row in seed]
    assert [row["images"] for row in rows] == [row["images"] for row in seed]
    recaptioned = [row for row in rows if (row.get(META) or {}).get("recaptioned")]
    # an empty sampled caption keeps its original sample (with a warning); the tiny model rarely does that
    assert len(recaptioned) >= 0.9 * len(rows)
    texts = {row["id"]: row["text"] for row in seed}
    assert all(row["text"] != texts[row["id"]] for row in recaptioned)
