"""Splicing image embeddings into token embeddings at the image placeholder, then padding.

Each sample's real tokens (attention mask) hold exactly one ``IMAGE_TOKEN_INDEX`` when it has an
image and none otherwise. The placeholder is replaced by the sample's image embeddings (their
labels become ``IGNORE_INDEX``); the spliced sequence is truncated to ``max_length`` (image tokens
included) and padded on the requested side. Padding: zero embeddings, label ``IGNORE_INDEX``,
attention mask False, position id 0; real tokens get position ids 0..len-1.

A text-only sample's row still passes through the image embeddings (none of them selected), so the
towers, mining and projector stay in the autograd graph (with zero gradients) and distributed
training never hangs.

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


def pad_sequences(sequences: Sequence[Sequence[int]], pad_value: int,
                  padding_side: str) -> tuple[torch.Tensor, torch.Tensor]:
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


def _check_placeholders(counts: list[int], has_image: list[bool]) -> None:
    for row, (count, image) in enumerate(zip(counts, has_image)):
        expected = 1 if image else 0
        if count != expected:
            raise ValueError(f"batch row {row}: has_image={image} needs exactly {expected} image "
                             f"placeholder(s) ({IMAGE_TOKEN_INDEX}) in its tokens, found {count} "
                             "(several images per sample are not supported)")


def splice_image_embeddings(input_ids: torch.Tensor, attention_mask: torch.Tensor, has_image: torch.Tensor,
                            image_embeds: torch.Tensor, embed_tokens: Callable[[torch.Tensor], torch.Tensor],
                            max_length: int, padding_side: str,
                            labels: torch.Tensor | None = None) -> SplicedBatch:
    """Splices ``image_embeds`` [B, N, H] into the embedded ``input_ids`` [B, L]; see the module doc.

    All rows at once, by gathering: output position j of a row holds its real token of rank j
    before the placeholder, image embedding j - p from the placeholder's rank p on, and real token
    j - N + 1 after that. One small read-back (lengths, placeholder counts and ranks) is the only
    host synchronisation.
    """
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got {padding_side!r}")
    batch, width_in = input_ids.shape
    if image_embeds.shape[0] != batch or has_image.shape[0] != batch:
        raise ValueError(f"batch of {batch} token rows got {image_embeds.shape[0]} image rows and "
                         f"{has_image.shape[0]} has_image flags")
    real = attention_mask.bool()
    placeholder = (input_ids == IMAGE_TOKEN_INDEX) & real
    rank = real.long().cumsum(1) - 1                                   # rank of each real token in its row
    first_placeholder = torch.where(placeholder, rank, width_in).min(dim=1).values
    lengths, counts, first = torch.stack([real.sum(1), placeholder.sum(1), first_placeholder]).tolist()
    _check_placeholders(counts, has_image.tolist())
    num_image = image_embeds.shape[1]
    out_lengths = [min(length - 1 + num_image if count else length, max_length)
                   for length, count in zip(lengths, counts)]
    width = max(out_lengths, default=0)
    device = input_ids.device

    out_length = torch.tensor(out_lengths, device=device).unsqueeze(1)
    column = torch.arange(width, device=device).unsqueeze(0)
    offset = width - out_length if padding_side == "left" else torch.zeros_like(out_length)
    position = column - offset                                         # index in the spliced row; < 0 or >= length: pad
    valid = (position >= 0) & (position < out_length)
    start = torch.tensor([p if c else width_in + max_length for p, c in zip(first, counts)],
                         device=device).unsqueeze(1)
    is_image = valid & (position >= start) & (position < start + num_image)
    token_rank = torch.where(position >= start + num_image, position - num_image + 1, position)
    # Columns of each row's real tokens in order (real ones first, stable), indexed by rank.
    real_columns = torch.argsort((~real).to(torch.int8), dim=1, stable=True)
    token_column = real_columns.gather(1, token_rank.clamp(0, width_in - 1))
    image_index = (position - start).clamp(0, num_image - 1)

    token_embeds = embed_tokens(input_ids.masked_fill(input_ids == IMAGE_TOKEN_INDEX, 0))
    image_embeds = image_embeds.to(token_embeds.dtype)
    hidden = token_embeds.shape[-1]
    from_tokens = token_embeds.gather(1, token_column.unsqueeze(-1).expand(-1, -1, hidden))
    from_image = image_embeds.gather(1, image_index.unsqueeze(-1).expand(-1, -1, hidden))
    # Rows without an image still take part (multiplied out), keeping the image path in the graph.
    embeds = torch.where(is_image.unsqueeze(-1), from_image, from_tokens) * valid.unsqueeze(-1).to(token_embeds.dtype)
    position_ids = torch.where(valid, position, 0)
    spliced_labels = None
    if labels is not None:
        spliced_labels = torch.where(valid & ~is_image, labels.gather(1, token_column), IGNORE_INDEX)
    return SplicedBatch(embeds, valid, position_ids, spliced_labels)
