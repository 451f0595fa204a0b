"""A stage's global batch over GPUs: the check (``bsynth check-batch``) and the plan for "auto" values
(``bsynth plan-batch``), in one module.

The global batch of a stage is fixed (bettersynth.train.stages: 256 pretrain, 128 finetune); how it
splits into micro-batch x accumulation x GPUs is free and leaves the update unchanged (the
trainer's loss normalisation makes the split irrelevant to the math).

**Check.** The official check_global_batch_size.py prints True/False and its caller exits 0 either
way; on a CPU machine it counts 0 GPUs. Here the check passes only when PER_GPU x ACCUM x GPUs ==
TARGET, and a failure names the combinations that would pass.

**Plan.** Larger micro-batches are faster up to 16 per GPU; 32 measured slower for pretraining (54.3
against 61.7 samples/s on an H200, bench/RESULTS.md). So the plan takes the largest micro-batch of
16, 8, 4, 2, 1 that divides the per-GPU share of the global batch and whose predicted peak memory
(the stage's memory model, bettersynth.train.stages) stays under ``HEADROOM`` of the card's.

The GPU count, first that applies:
  1. ``--num-gpus N``;
  2. ``WORLD_SIZE`` (set by torchrun / deepspeed launchers: processes over all nodes);
  3. CUDA devices visible to this process: ``CUDA_VISIBLE_DEVICES`` that hides every device
     (empty, or starting with an invalid entry such as -1) means none, without importing torch;
     otherwise ``torch.cuda.device_count()``, which applies CUDA_VISIBLE_DEVICES itself;
  4. 1 when no GPU is visible (a CPU run is one process).

    bsynth check-batch 8 4 256                                   # 8 GPUs visible -> exit 0
    bsynth check-batch 8 4 256 --num-gpus 4                      # exit 1, suggests 8 x 8, 16 x 4, ...
    bsynth plan-batch pretrain auto auto 256                     # prints e.g. "16 16"
    bsynth plan-batch finetune auto auto 128 --num-gpus 4 --gpu-memory-gib 40
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bettersynth.train.stages import MemoryModel

HEADROOM = 0.9  # of the card's memory, for the allocator's fragmentation and the data loader's pinned copies
MICRO_BATCHES = (16, 8, 4, 2, 1)

# One CUDA_VISIBLE_DEVICES entry: an index, or a GPU-/MIG- UUID (prefixes as CUDA accepts them).
_DEVICE_ENTRY = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")


@dataclass(frozen=True)
class GpuCount:
    count: int
    source: str  # how it was found, for the message


def visible_devices_from_env(value: str) -> int | None:
    """Devices a CUDA_VISIBLE_DEVICES value lets through when that is known without the driver:
    0 when it hides everything; None when the entries name devices the driver must resolve."""
    entries = [e.strip() for e in value.split(",")]
    valid = 0
    for entry in entries:
        # CUDA stops at the first entry that is not a device (e.g. -1): the rest is hidden.
        if not _DEVICE_ENTRY.match(entry):
            break
        valid += 1
    return 0 if valid == 0 else None


def count_gpus(num_gpus: int | None = None, environ: Mapping[str, str] | None = None) -> GpuCount:
    """The number of GPUs (processes) the global batch is spread over; see the module docstring."""
    env = os.environ if environ is None else environ
    if num_gpus is not None:
        if num_gpus < 1:
            raise ValueError(f"--num-gpus must be >= 1, got {num_gpus}")
        return GpuCount(num_gpus, "--num-gpus")
    if env.get("WORLD_SIZE"):
        world = env["WORLD_SIZE"]
        if not world.isdigit() or int(world) < 1:
            raise ValueError(f"WORLD_SIZE must be a positive integer, got {world!r}")
        return GpuCount(int(world), "WORLD_SIZE")
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible_devices_from_env(visible) == 0:
        return GpuCount(1, f"no GPU visible (CUDA_VISIBLE_DEVICES={visible!r}): one CPU process")
    import torch  # only here: the count needs the driver

    devices = torch.cuda.device_count()
    if devices == 0:
        return GpuCount(1, "no CUDA device: one CPU process")
    shown = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    return GpuCount(devices, f"torch.cuda.device_count(){shown}")


@dataclass(frozen=True)
class BatchCheck:
    per_gpu: int
    accumulation: int
    target: int
    gpus: GpuCount

    def __post_init__(self) -> None:
        for name in ("per_gpu", "accumulation", "target"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def global_batch(self) -> int:
        return self.per_gpu * self.accumulation * self.gpus.count

    @property
    def ok(self) -> bool:
        return self.global_batch == self.target

    def valid_pairs(self) -> list[tuple[int, int]]:
        """Every (per-GPU batch, accumulation) that reaches the target on these GPUs."""
        if self.target % self.gpus.count:
            return []
        per_step = self.target // self.gpus.count
        return [(b, per_step // b) for b in range(1, per_step + 1) if per_step % b == 0]

    def message(self) -> str:
        g = self.gpus
        head = (f"global batch {self.per_gpu} per GPU x {self.accumulation} accumulation x "
                f"{g.count} GPU(s) [{g.source}] = {self.global_batch}")
        if self.ok:
            return f"OK: {head} == target {self.target}"
        lines = [f"MISMATCH: {head} != target {self.target}"]
        pairs = self.valid_pairs()
        if not pairs:
            divisors = [n for n in range(1, self.target + 1) if self.target % n == 0]
            lines.append(f"  no combination exists on {g.count} GPU(s): {self.target} is not a "
                         f"multiple of {g.count}; GPU counts that divide it: {divisors}")
            return "\n".join(lines)
        per_step = self.target // g.count
        if per_step % self.per_gpu == 0:
            lines.append(f"  keep {self.per_gpu} per GPU: use accumulation {per_step // self.per_gpu}")
        if per_step % self.accumulation == 0:
            lines.append(f"  keep accumulation {self.accumulation}: use {per_step // self.accumulation} per GPU")
        combos = ", ".join(f"{b} x {a}" for b, a in pairs)
        lines.append(f"  all (per GPU x accumulation) on {g.count} GPU(s): {combos}")
        return "\n".join(lines)


@dataclass(frozen=True)
class BatchPlan:
    micro_batch: int
    accumulation: int
    predicted_gib: float | None  # None when the micro-batch was given


def plan_batch(micro_batch: int | None, accumulation: int | None, global_batch: int, num_gpus: int,
               gpu_memory_gib: float | None, model: MemoryModel) -> BatchPlan:
    """Fills the values given as None (two given values are returned as they are: ``bsynth
    check-batch`` judges them). ``gpu_memory_gib`` None (no GPU) takes the largest micro-batch.

    Raises ValueError when the global batch cannot be split as asked or nothing fits the card."""
    if micro_batch is not None and accumulation is not None:
        return BatchPlan(micro_batch, accumulation, None)
    if global_batch % num_gpus:
        raise ValueError(f"the global batch {global_batch} does not divide over {num_gpus} GPUs")
    per_gpu = global_batch // num_gpus
    if micro_batch is None and accumulation is not None:
        if per_gpu % accumulation:
            raise ValueError(f"accumulation {accumulation} does not divide the {per_gpu} samples per GPU "
                             f"of the global batch {global_batch} on {num_gpus} GPUs")
        micro_batch = per_gpu // accumulation
    if micro_batch is not None:
        if per_gpu % micro_batch:
            raise ValueError(f"micro-batch {micro_batch} does not divide the {per_gpu} samples per GPU "
                             f"of the global batch {global_batch} on {num_gpus} GPUs")
        return BatchPlan(micro_batch, per_gpu // micro_batch, None)
    candidates = [size for size in MICRO_BATCHES if per_gpu % size == 0]
    for size in candidates:
        peak = model.peak_gib(size, num_gpus)
        if gpu_memory_gib is None or peak <= HEADROOM * gpu_memory_gib:
            return BatchPlan(size, per_gpu // size, peak)
    smallest = model.peak_gib(candidates[-1], num_gpus)
    raise ValueError(f"no micro-batch fits {gpu_memory_gib:.0f} GiB: even {candidates[-1]} per GPU is predicted "
                     f"to need {smallest:.0f} GiB; use more GPUs, gradient checkpointing or "
                     "toolkit/configs/deepspeed/zero2_offload.json, or set the values by hand")
