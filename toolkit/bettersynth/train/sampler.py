"""Which samples form each micro-batch: a seeded random order (pretrain) or the modality- and
length-grouped order (finetune), laid out as global batches and resumable mid-epoch.

An epoch's order depends only on (seed, epoch, sizes); it is cut into global batches of
``world * accum * per_device`` samples, one per optimizer step (a tail shorter than a global batch
is dropped, as the official trainer does). Within a global batch, micro-batch ``j`` (``per_device``
consecutive samples) goes to rank ``j % world`` as its micro-step ``j // world``. Resuming at step
``s`` therefore just starts at global batch ``s``: nothing is loaded to skip.

Grouped order (``--group_by_modality_length``): image and text-only samples are shuffled
separately and cut into mega-batches of one global batch each; each mega-batch is sorted by length
(whitespace words of all turns, longest first) and split greedily into balanced per-device chunks;
the full mega-batches of both modalities are shuffled together; the two leftovers (the only mixed
samples) go last. Used by the training loop; nothing to run on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler


@dataclass(frozen=True)
class BatchLayout:
    """How a global batch is split: processes, micro-batches per optimizer step, samples each."""

    world_size: int
    accumulation: int
    per_device: int

    def __post_init__(self) -> None:
        if min(self.world_size, self.accumulation, self.per_device) < 1:
            raise ValueError(f"bad batch layout {self}")

    @property
    def global_batch(self) -> int:
        return self.world_size * self.accumulation * self.per_device

    @property
    def chunks(self) -> int:
        """Micro-batches in one global batch, over all processes."""
        return self.world_size * self.accumulation

    def steps_per_epoch(self, num_samples: int) -> int:
        if num_samples < self.global_batch:
            raise ValueError(f"the data set has {num_samples} usable samples, fewer than one global batch "
                             f"({self.world_size} processes x {self.accumulation} accumulation x "
                             f"{self.per_device} per device = {self.global_batch})")
        return num_samples // self.global_batch


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed + epoch)


def random_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    """A permutation of range(num_samples) fixed by (seed, epoch)."""
    return torch.randperm(num_samples, generator=_generator(seed, epoch)).tolist()


def balanced_chunks(indices: Sequence[int], lengths: Sequence[int], num_chunks: int) -> list[list[int]]:
    """Split ``indices`` into ``num_chunks`` chunks of equal count, each index (longest first) going
    to the unfilled chunk with the least total length so far."""
    if len(indices) % num_chunks:
        raise ValueError(f"{len(indices)} indices do not split into {num_chunks} equal chunks")
    capacity = len(indices) // num_chunks
    ordered = sorted(indices, key=lambda index: -lengths[index])
    chunks: list[list[int]] = [[] for _ in range(num_chunks)]
    totals = [0] * num_chunks
    for index in ordered:
        open_chunks = [c for c in range(num_chunks) if len(chunks[c]) < capacity]
        target = min(open_chunks, key=lambda c: totals[c])
        chunks[target].append(index)
        totals[target] += lengths[index]
    return chunks


def _arrange(mega_batch: list[int], lengths: Sequence[int], layout: BatchLayout) -> list[int]:
    """A full mega-batch as balanced per-device chunks; a partial one (the epoch's tail, dropped by
    the loop) sorted by length only."""
    if len(mega_batch) < layout.global_batch:
        return sorted(mega_batch, key=lambda index: -lengths[index])
    return [index for chunk in balanced_chunks(mega_batch, lengths, layout.chunks) for index in chunk]


def grouped_order(lengths: Sequence[int], has_image: Sequence[bool], layout: BatchLayout,
                  seed: int, epoch: int) -> list[int]:
    """The modality- and length-grouped order of one epoch (see the module docstring)."""
    if len(lengths) != len(has_image):
        raise ValueError("lengths and has_image differ in size")
    generator = _generator(seed, epoch)
    size = layout.global_batch
    groups = []
    for modality in (True, False):
        members = [index for index, flag in enumerate(has_image) if flag == modality]
        shuffled = [members[k] for k in torch.randperm(len(members), generator=generator).tolist()]
        groups.append([shuffled[start:start + size] for start in range(0, len(shuffled), size)])
    full: list[list[int]] = []
    leftover: list[int] = []
    for mega_batches in groups:
        for mega_batch in mega_batches:
            if len(mega_batch) == size:
                full.append(mega_batch)
            else:
                leftover.extend(mega_batch)
    shuffled_full = [full[k] for k in torch.randperm(len(full), generator=generator).tolist()]
    tail = [leftover[start:start + size] for start in range(0, len(leftover), size)]
    order: list[int] = []
    for mega_batch in shuffled_full + tail:
        order.extend(_arrange(mega_batch, lengths, layout))
    return order


class StepBatchSampler(Sampler[list[int]]):
    """This rank's micro-batches (lists of positions into the data set) for global batches
    ``start_step .. stop_step - 1`` of one epoch's ``order``."""

    def __init__(self, order: Sequence[int], layout: BatchLayout, rank: int, start_step: int, stop_step: int):
        if not 0 <= rank < layout.world_size:
            raise ValueError(f"rank {rank} outside world size {layout.world_size}")
        available = len(order) // layout.global_batch
        if not 0 <= start_step <= stop_step <= available:
            raise ValueError(f"steps {start_step}..{stop_step} outside the epoch's {available} global batches")
        self.order = list(order)
        self.layout = layout
        self.rank = rank
        self.start_step = start_step
        self.stop_step = stop_step

    def micro_batch(self, step: int, micro_step: int) -> list[int]:
        layout = self.layout
        chunk = micro_step * layout.world_size + self.rank
        start = step * layout.global_batch + chunk * layout.per_device
        return self.order[start:start + layout.per_device]

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.stop_step):
            for micro_step in range(self.layout.accumulation):
                yield self.micro_batch(step, micro_step)

    def __len__(self) -> int:
        return (self.stop_step - self.start_step) * self.layout.accumulation
