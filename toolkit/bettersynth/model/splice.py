"""Splicing image embeddings into token embeddings at the image placeholder, then padding.

Each sample's real tokens (attention mask) hold exactly one ``IMAGE_TOKEN_INDEX`` when it has an
image and none otherwise. The placeholder is replaced by the sample's image embeddings (their
labels become ``IGNORE_INDEX``); the spliced sequence is truncated to ``max_length`` (image tokens
included) and padded on the requested side. Padding: zero embeddings, label ``IGNORE_INDEX``,
attention mask False, position id 0; real tokens get position ids 0..len-1.

A text-only sample appends an empty slice of its image embeddings, so the towers, mining and
projector stay in the autograd graph (with zero gradients) and distributed training never hangs.

    batch = splice_image_embeddings(input_ids, attention_mask, has_image, image_embeds,
                                    embed_tokens, max_length=2048, padding_side="right", labels=labels)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bettersynth.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX

PADDING_SIDES = ("left", "right")


@dataclass
class SplicedBatch:
    inputs_embeds: torch.Tensor      # [B, T, H]
    attention_mask: torch.Tensor     # [B, T] bool
    position_ids: torch.Tensor       # [B, T] long
    labels: torch.Tensor | None      # [B, T] long, or None when no labels were given


def pad_sequences(sequences: Sequence[Sequence[int]], pad_value: int, padding_side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of token ids → (ids [B, T] long, attention mask [B, T] bool), padded on one side."""
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got {padding_side!r}")
    width = max((len(seq) for seq in sequences), default=0)
    ids = torch.full((len(sequences), width), pad_value, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if padding_side == "left" else slice(0, len(seq))
        ids[row, span] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[row, span] = True
    return ids, mask


def _check_placeholders(row: int, positions: torch.Tensor, has_image: bool) -> None:
    expected = 1 if has_image else 0
    if positions.numel() != expected:
        raise ValueError(f"batch row {row}: has_image={has_image} needs exactly {expected} image "
                         f"placeholder(s) ({IMAGE_TOKEN_INDEX}) in its tokens, found {positions.numel()} "
                         "(several images per sample are not supported)")


def splice_image_embeddings(input_ids: torch.Tensor, attention_mask: torch.Tensor, has_image: torch.Tensor,
                            image_embeds: torch.Tensor, embed_tokens: Callable[[torch.Tensor], torch.Tensor],
                            max_length: int, padding_side: str,
                            labels: torch.Tensor | None = None) -> SplicedBatch:
    """Splices ``image_embeds`` [B, N, H] into the embedded ``input_ids`` [B, L]; see the module doc."""
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got {padding_side!r}")
    batch = input_ids.shape[0]
    if image_embeds.shape[0] != batch or has_image.shape[0] != batch:
        raise ValueError(f"batch of {batch} token rows got {image_embeds.shape[0]} image rows and "
                         f"{has_image.shape[0]} has_image flags")
    real = attention_mask.bool()
    token_embeds = embed_tokens(input_ids.masked_fill(input_ids == IMAGE_TOKEN_INDEX, 0))
    image_embeds = image_embeds.to(token_embeds.dtype)
    num_image = image_embeds.shape[1]
    rows_embeds, rows_labels = [], []
    for row in range(batch):
        ids = input_ids[row][real[row]]
        embeds = token_embeds[row][real[row]]
        row_labels = labels[row][real[row]] if labels is not None else None
        positions = (ids == IMAGE_TOKEN_INDEX).nonzero().flatten()
        _check_placeholders(row, positions, bool(has_image[row]))
        if positions.numel():
            cut = int(positions[0])
            embeds = torch.cat([embeds[:cut], image_embeds[row], embeds[cut + 1:]])
            if row_labels is not None:
                image_labels = row_labels.new_full((num_image,), IGNORE_INDEX)
                row_labels = torch.cat([row_labels[:cut], image_labels, row_labels[cut + 1:]])
        else:
            embeds = torch.cat([embeds, image_embeds[row, :0]])
        rows_embeds.append(embeds[:max_length])
        if row_labels is not None:
            rows_labels.append(row_labels[:max_length])
    return _pad(rows_embeds, rows_labels if labels is not None else None, padding_side)


def _pad(rows_embeds: list[torch.Tensor], rows_labels: list[torch.Tensor] | None, padding_side: str) -> SplicedBatch:
    width = max(len(row) for row in rows_embeds)
    first = rows_embeds[0]
    embeds = first.new_zeros((len(rows_embeds), width, first.shape[-1]))
    mask = torch.zeros((len(rows_embeds), width), dtype=torch.bool, device=first.device)
    position_ids = torch.zeros((len(rows_embeds), width), dtype=torch.long, device=first.device)
    labels = torch.full((len(rows_embeds), width), IGNORE_INDEX, dtype=torch.long, device=first.device)
    for row, row_embeds in enumerate(rows_embeds):
        length = len(row_embeds)
        span = slice(width - length, width) if padding_side == "left" else slice(0, length)
        embeds[row, span] = row_embeds
        mask[row, span] = True
        position_ids[row, span] = torch.arange(length, device=first.device)
        if rows_labels is not None:
            labels[row, span] = rows_labels[row]
    return SplicedBatch(embeds, mask, position_ids, labels if rows_labels is not None else None)
