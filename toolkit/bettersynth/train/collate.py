"""Turns a list of data-set items into one model batch plus the counts the trainer needs.

The batch has the keys ``MGMForCausalLM.forward`` takes: ``input_ids`` right-padded with the
tokenizer's pad id, ``labels`` padded with IGNORE_INDEX, ``attention_mask`` (bool, True on real
tokens), ``images_aux`` [B, 3, A, A] (zeros for text-only samples) and ``has_image`` (bool).
Skipped samples are dropped here and reported in ``BatchInfo`` with the other counts (supervised
tokens for loss normalisation, mismatches, truncations). Used by the training loop's DataLoader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bettersynth.constants import IGNORE_INDEX
from bettersynth.train.dataset import Example, SkippedSample


@dataclass
class BatchInfo:
    """What one micro-batch holds, for the loss and the logs."""

    num_samples: int = 0
    num_tokens: int = 0
    num_input_tokens: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Collator:
    pad_token_id: int
    image_size_aux: int

    def __call__(self, items: list[Example | SkippedSample]) -> tuple[dict[str, torch.Tensor] | None, BatchInfo]:
        examples = [item for item in items if isinstance(item, Example)]
        info = BatchInfo(
            num_samples=len(examples),
            num_tokens=sum(example.num_tokens for example in examples),
            num_input_tokens=sum(example.num_input_tokens for example in examples),
            skipped=[(item.sample_id, item.reason) for item in items if isinstance(item, SkippedSample)],
            mismatched=[example.sample_id for example in examples if example.mismatch],
            truncated=[example.sample_id for example in examples if example.truncated])
        if not examples:
            return None, info
        length = max(len(example.input_ids) for example in examples)
        size = len(examples)
        input_ids = torch.full((size, length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((size, length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((size, length), dtype=torch.bool)
        images_aux = torch.zeros((size, 3, self.image_size_aux, self.image_size_aux), dtype=torch.float32)
        has_image = torch.zeros(size, dtype=torch.bool)
        for row, example in enumerate(examples):
            count = len(example.input_ids)
            input_ids[row, :count] = example.input_ids
            labels[row, :count] = example.labels
            attention_mask[row, :count] = True
            if example.image is not None:
                images_aux[row] = example.image
                has_image[row] = True
        batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask,
                 "images_aux": images_aux, "has_image": has_image}
        return batch, info
