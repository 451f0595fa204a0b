"""The dataset-level operators of solution/ops, run through Data-Juicer's own ``op.run`` on a dataset.

``stats_quantile_tagger`` writes rank / n (ascending, ties in dataset order) into the meta;
``repeat_to_cap_selector`` appends copies best-first until the target or the repeat limit;
``recaption_swap_selector`` keeps one of each source and its recaption (the recaption when it scores
above the bar). Expected values are worked out by hand below.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_dataset_ops.py -q      (~10 s)
"""

from __future__ import annotations

import pytest

STATS, META = "__dj__stats__", "__dj__meta__"
SCORES = [0.30, 0.10, [0.2, 0.5], 0.10, [], 0.50]   # lists count as their mean; [] ranks lowest


def dataset(scores=SCORES):
    from data_juicer.core.data import NestedDataset

    rows = [{"id": f"s{i}", "text": f"caption {i}", STATS: {"image_text_similarity": score if isinstance(score, list)
                                                         else [score]}} for i, score in enumerate(scores)]
    return NestedDataset.from_list(rows)


def test_quantile_tagger_writes_rank_over_n(custom_ops):
    op = custom_ops.stats_quantile_tagger.StatsQuantileTagger(field_key=f"{STATS}.image_text_similarity")
    result = op.run(dataset())
    # ascending: s4 ([]) < s1 (0.1) = s3 (0.1, later) < s0 (0.3) < s2 (mean 0.35) < s5 (0.5)
    expected = {"s4": 0, "s1": 1, "s3": 2, "s0": 3, "s2": 4, "s5": 5}
    assert [row[META]["image_text_similarity_quantile"] for row in result] == \
        pytest.approx([expected[f"s{i}"] / 6 for i in range(6)], abs=1e-9)
    assert [row["id"] for row in result] == [f"s{i}" for i in range(6)]


def test_quantile_tagger_names_a_missing_field(custom_ops):
    op = custom_ops.stats_quantile_tagger.StatsQuantileTagger(field_key=f"{STATS}.clip_score", meta_key="q")
    with pytest.raises(KeyError, match="clip_score"):
        op.run(dataset())


@pytest.mark.parametrize("target, repeats, expected", [
    # ranking best first: s5 (0.5), s2 (0.35), s0 (0.3), s1 (0.1), s3 (0.1, later), s4 ([])
    (9, 4, [0, 1, 2, 3, 4, 5, 5, 2, 0]),
    (20, 2, [0, 1, 2, 3, 4, 5, 5, 2, 0, 1, 3, 4]),
    (20, 3, [0, 1, 2, 3, 4, 5] + [5, 2, 0, 1, 3, 4] * 2),
    (6, 4, [0, 1, 2, 3, 4, 5]),
    (3, 4, [0, 1, 2, 3, 4, 5]),        # already above the target: unchanged
    (9, 1, [0, 1, 2, 3, 4, 5]),        # no repetition allowed
])
def test_repeat_to_cap_appends_best_first(custom_ops, target, repeats, expected):
    op = custom_ops.repeat_to_cap_selector.RepeatToCapSelector(
        field_key=f"{STATS}.image_text_similarity", target_num=target, max_repeats=repeats)
    assert [row["id"] for row in op.run(dataset())] == [f"s{i}" for i in expected]


def test_bad_settings_are_refused(custom_ops):
    with pytest.raises(ValueError, match="field_key"):
        custom_ops.stats_quantile_tagger.StatsQuantileTagger(field_key="a..b")
    with pytest.raises(ValueError, match=">= 1"):
        custom_ops.repeat_to_cap_selector.RepeatToCapSelector(target_num=0)


def test_recaption_swap_keeps_a_recaption_only_above_the_bar(custom_ops):
    from data_juicer.core.data import NestedDataset

    def row(sample_id, image, score, recaptioned=False):
        return {"id": sample_id, "text": f"{sample_id} {recaptioned}", "images": [image],
                STATS: {"image_text_similarity": [score]}, META: {"recaptioned": True} if recaptioned else {}}

    rows = [row("a", "a.jpg", 0.20), row("a", "a.jpg", 0.30, True),      # recaption above 0.28: swapped in
            row("b", "b.jpg", 0.25), row("b", "b.jpg", 0.28, True),      # at the bar (not above): original stays
            row("c", "c.jpg", 0.40),                                     # not recaptioned: stays
            row("d", "d.jpg", 0.10), row("d", "x.jpg", 0.35, True),      # other images: not d's recaption
            row("e", "e.jpg", 0.27, True)]                               # a recaption whose source is gone
    op = custom_ops.recaption_swap_selector.RecaptionSwapSelector(field_key=f"{STATS}.image_text_similarity",
                                                                 min_score=0.28)
    kept = [(r["id"], r["images"][0], bool(r[META].get("recaptioned"))) for r in op.run(NestedDataset.from_list(rows))]
    assert kept == [("a", "a.jpg", True), ("b", "b.jpg", False), ("c", "c.jpg", False), ("d", "d.jpg", False),
                    ("d", "x.jpg", True)]
