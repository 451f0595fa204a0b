"""Splicing, labels, truncation, padding and position ids on a hand-made batch.

Token embeddings are one-hot-like (embedding of id t = t in every channel) and image embeddings
are 100 + patch index, so every position of the result can be written out by hand.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_splice.py -q``
"""

from __future__ import annotations

import pytest
import torch

from bettersynth.constants import IGNORE_INDEX as X
from bettersynth.constants import IMAGE_TOKEN_INDEX as IMG
from bettersynth.model.splice import pad_sequences, splice_image_embeddings

HIDDEN = 2


def embed(ids: torch.Tensor) -> torch.Tensor:
    return ids.float().unsqueeze(-1).expand(*ids.shape, HIDDEN).clone()


def image_embeds(batch: int, tokens: int = 3) -> torch.Tensor:
    return (100.0 + torch.arange(tokens).float()).view(1, tokens, 1).expand(batch, tokens, HIDDEN).clone()


# row 0: image sample, right-padded by one; row 1: text-only sample, right-padded by three.
INPUT_IDS = torch.tensor([[2, 7, IMG, 8, 9, 0], [2, 5, 6, 0, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
LABELS = torch.tensor([[X, X, X, 8, 9, X], [X, 5, 6, X, X, X]])
HAS_IMAGE = torch.tensor([True, False])


def values(batch) -> list[list[float]]:
    return batch.inputs_embeds[..., 0].tolist()


def test_right_padded_splice():
    out = splice_image_embeddings(INPUT_IDS, MASK, HAS_IMAGE, image_embeds(2), embed, 64, "right", labels=LABELS)
    assert values(out) == [[2, 7, 100, 101, 102, 8, 9], [2, 5, 6, 0, 0, 0, 0]]
    assert out.labels.tolist() == [[X, X, X, X, X, 8, 9], [X, 5, 6, X, X, X, X]]
    assert out.attention_mask.tolist() == [[True] * 7, [True] * 3 + [False] * 4]
    assert out.position_ids.tolist() == [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 0, 0, 0, 0]]


def test_truncation_counts_image_tokens():
    out = splice_image_embeddings(INPUT_IDS, MASK, HAS_IMAGE, image_embeds(2), embed, 4, "right", labels=LABELS)
    assert values(out) == [[2, 7, 100, 101], [2, 5, 6, 0]]
    assert out.labels.tolist() == [[X, X, X, X], [X, 5, 6, X]]
    assert out.attention_mask.tolist() == [[True] * 4, [True, True, True, False]]


def test_left_padding_for_generation_ignores_the_input_padding_side():
    left_ids = torch.tensor([[0, 2, 7, IMG, 8, 9], [0, 0, 0, 2, 5, 6]])
    left_mask = torch.tensor([[0, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    out = splice_image_embeddings(left_ids, left_mask, HAS_IMAGE, image_embeds(2), embed, 64, "left")
    assert out.labels is None
    assert values(out) == [[2, 7, 100, 101, 102, 8, 9], [0, 0, 0, 0, 2, 5, 6]]
    assert out.attention_mask.tolist() == [[True] * 7, [False] * 4 + [True] * 3]
    assert out.position_ids.tolist() == [[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 1, 2]]


def test_text_only_batch_keeps_image_embeddings_in_the_graph():
    images = image_embeds(1).requires_grad_(True)
    out = splice_image_embeddings(torch.tensor([[2, 5, 6]]), torch.ones(1, 3, dtype=torch.bool),
                                  torch.tensor([False]), images, embed, 64, "right", labels=torch.tensor([[X, 5, 6]]))
    out.inputs_embeds.sum().backward()
    assert images.grad is not None and torch.count_nonzero(images.grad) == 0


def test_image_gradients_flow_to_the_spliced_positions():
    images = image_embeds(2).requires_grad_(True)
    out = splice_image_embeddings(INPUT_IDS, MASK, HAS_IMAGE, images, embed, 64, "right", labels=LABELS)
    (out.inputs_embeds * torch.arange(7.0).view(1, 7, 1)).sum().backward()
    assert images.grad[0, :, 0].tolist() == [2.0, 3.0, 4.0]
    assert images.grad[1].abs().sum() == 0


@pytest.mark.parametrize("ids, has_image, message", [
    ([[2, 7, 8]], True, "needs exactly 1 image placeholder"),
    ([[2, IMG, 8]], False, "needs exactly 0 image placeholder"),
    ([[2, IMG, IMG]], True, "found 2"),
])
def test_placeholder_count_must_match_has_image(ids, has_image, message):
    ids = torch.tensor(ids)
    with pytest.raises(ValueError, match=message):
        splice_image_embeddings(ids, torch.ones_like(ids, dtype=torch.bool), torch.tensor([has_image]),
                                image_embeds(1), embed, 64, "right")


def test_batch_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="got 1 image rows"):
        splice_image_embeddings(INPUT_IDS, MASK, HAS_IMAGE, image_embeds(1), embed, 64, "right")


def test_pad_sequences_both_sides():
    ids, mask = pad_sequences([[5, 6, 7], [8]], pad_value=0, padding_side="left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[True] * 3, [False, False, True]]
    ids, mask = pad_sequences([[5, 6, 7], [8]], pad_value=0, padding_side="right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[True] * 3, [True, False, False]]


def per_row_reference(ids, mask, has_image, images, labels, max_length, side):
    """One row at a time: real tokens in order, the placeholder replaced, truncated, then padded."""
    rows = []
    for row in range(len(ids)):
        tokens = [(float(t), int(lab)) for t, lab, m in zip(ids[row], labels[row], mask[row]) if m]
        spliced = []
        for token, label in tokens:
            if token == IMG:
                spliced += [(float(v), X) for v in images[row, :, 0]]
            else:
                spliced.append((token, label))
        rows.append(spliced[:max_length])
    width = max(len(r) for r in rows)
    values, out_labels, out_mask, positions = [], [], [], []
    for r in rows:
        pad = width - len(r)
        left = pad if side == "left" else 0
        values.append([0.0] * left + [v for v, _ in r] + [0.0] * (pad - left))
        out_labels.append([X] * left + [lab for _, lab in r] + [X] * (pad - left))
        out_mask.append([False] * left + [True] * len(r) + [False] * (pad - left))
        positions.append([0] * left + list(range(len(r))) + [0] * (pad - left))
    return values, out_labels, out_mask, positions


@pytest.mark.parametrize("seed", range(6))
def test_random_batches_equal_a_per_row_reference(seed):
    """Random lengths, placeholder places, padding sides (of the input and the output) and truncation."""
    generator = torch.Generator().manual_seed(seed)
    batch, width = 5, 12
    ids = torch.randint(1, 50, (batch, width), generator=generator)
    mask = torch.zeros(batch, width, dtype=torch.bool)
    has_image = torch.rand(batch, generator=generator) < 0.6
    for row in range(batch):
        length = int(torch.randint(2, width + 1, (1,), generator=generator))
        start = 0 if seed % 2 else width - length  # right- or left-padded input
        mask[row, start:start + length] = True
        if has_image[row]:
            ids[row, start + int(torch.randint(0, length, (1,), generator=generator))] = IMG
    labels = torch.where(torch.rand(batch, width, generator=generator) < 0.5, ids, X)
    images = (200.0 + torch.randn(batch, 4, 1, generator=generator)).expand(batch, 4, HIDDEN).clone()
    for side in ("left", "right"):
        for max_length in (6, 64):
            out = splice_image_embeddings(ids, mask, has_image, images, embed, max_length, side, labels=labels)
            expected = per_row_reference(ids.tolist(), mask.tolist(), has_image, images, labels.tolist(),
                                         max_length, side)
            assert values(out) == expected[0]
            assert out.labels.tolist() == expected[1]
            assert out.attention_mask.tolist() == expected[2]
            assert out.position_ids.tolist() == expected[3]
