"""Samplers: seeded orders, the modality/length grouping invariants, rank/micro-batch layout, resume.

Run with ``python -m pytest tests/train/test_sampler.py -q`` (pure Python + torch, < 1 s).
"""

from __future__ import annotations

import random

import pytest

from bettersynth.train.sampler import (BatchLayout, StepBatchSampler, balanced_chunks, grouped_order,
                                       random_order)


def test_balanced_chunks_by_hand():
    lengths = {0: 9, 1: 1, 2: 8, 3: 2, 4: 5, 5: 5}
    # longest first, each to the open chunk (capacity 3) with the smallest total:
    # 0(9)->A, 2(8)->B, 4(5)->B (8<9), 5(5)->A (9<13), 3(2)->B (13<14, now full), 1(1)->A
    assert balanced_chunks([0, 1, 2, 3, 4, 5], lengths, 2) == [[0, 5, 1], [2, 4, 3]]


def test_random_order_is_a_seeded_permutation():
    order = random_order(50, seed=1024, epoch=0)
    assert sorted(order) == list(range(50))
    assert order == random_order(50, seed=1024, epoch=0)
    assert order != random_order(50, seed=1024, epoch=1)
    assert order != random_order(50, seed=7, epoch=0)


def make_lengths(count: int, seed: int = 3):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 60) for _ in range(count)]
    has_image = [rng.random() < 0.7 for _ in range(count)]
    return lengths, has_image


@pytest.mark.parametrize("layout", [BatchLayout(1, 2, 4), BatchLayout(2, 2, 2), BatchLayout(1, 1, 8)])
def test_grouped_order_invariants(layout):
    lengths, has_image = make_lengths(203)
    order = grouped_order(lengths, has_image, layout, seed=1024, epoch=0)
    assert sorted(order) == list(range(203))
    assert order == grouped_order(lengths, has_image, layout, seed=1024, epoch=0)
    assert order != grouped_order(lengths, has_image, layout, seed=1024, epoch=1)
    size = layout.global_batch
    images, texts = sum(has_image), 203 - sum(has_image)
    pure = images // size + texts // size
    mega_batches = [order[start:start + size] for start in range(0, len(order), size)]
    for mega_batch in mega_batches[:pure]:
        assert len({has_image[index] for index in mega_batch}) == 1  # one modality
        chunks = [mega_batch[start:start + layout.per_device] for start in range(0, size, layout.per_device)]
        totals = [sum(lengths[index] for index in chunk) for chunk in chunks]
        assert max(totals) - min(totals) <= max(lengths[index] for index in mega_batch)
    # the leftovers of both modalities (the only mixed samples) come last
    leftover = {index for mega_batch in mega_batches[pure:] for index in mega_batch}
    assert len(leftover) == images % size + texts % size


def test_micro_batches_cover_each_global_batch_once_across_ranks():
    layout = BatchLayout(world_size=2, accumulation=3, per_device=2)
    order = random_order(40, seed=5, epoch=0)
    per_rank = [list(StepBatchSampler(order, layout, rank, 0, 3)) for rank in range(2)]
    for step in range(3):
        seen = []
        for rank in range(2):
            for micro in range(3):
                batch = per_rank[rank][step * 3 + micro]
                assert len(batch) == 2
                seen += batch
        assert sorted(seen) == sorted(order[step * 12:(step + 1) * 12])


def test_resume_skips_exactly_the_consumed_global_batches():
    layout = BatchLayout(world_size=1, accumulation=2, per_device=3)
    lengths, has_image = make_lengths(61)
    order = grouped_order(lengths, has_image, layout, seed=1024, epoch=0)
    steps = len(order) // layout.global_batch
    full = list(StepBatchSampler(order, layout, 0, 0, steps))
    resumed = list(StepBatchSampler(grouped_order(lengths, has_image, layout, seed=1024, epoch=0), layout, 0, 4, steps))
    assert resumed == full[4 * layout.accumulation:]
    assert len(full) == steps * layout.accumulation


def test_too_small_data_set_is_an_error():
    with pytest.raises(ValueError, match="fewer than one global batch"):
        BatchLayout(2, 2, 4).steps_per_epoch(15)
    assert BatchLayout(2, 2, 4).steps_per_epoch(33) == 2
