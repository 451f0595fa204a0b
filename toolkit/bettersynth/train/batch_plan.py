"""Micro-batch and accumulation from the card's memory: ``bsynth plan-batch`` resolves "auto".

The global batch of a stage is fixed (256 pretrain, 128 finetune); how it splits into micro-batch x
accumulation x GPUs is free and leaves the update unchanged (the trainer's loss normalisation makes
the split irrelevant to the math). Larger micro-batches are faster up to 16 per GPU; 32 measured
slower for pretraining (54.3 against 61.7 samples/s on an H200, bench/RESULTS.md). So the plan takes
the largest micro-batch of 16, 8, 4, 2, 1 that divides the per-GPU share of the global batch and
whose predicted peak memory stays under ``HEADROOM`` of the card's.

Predicted peak (GiB, per process) = fixed + sharded / GPUs + per sample x micro-batch, fitted to the
peaks measured by bench/train_throughput.py on one H200 (nvidia-smi, the CUDA context included):

- pretrain (projector and mining train; the towers and the LLM are frozen bf16 weights):
  compiled, no checkpointing: 16 -> 34.9 GiB, 32 -> 64.6 GiB, so 5.2 fixed + 1.86 a sample;
  eager: 16 -> 42.4 GiB, 2.33 a sample. Checkpointing only lowers the per-sample figure, so the
  no-checkpointing one is kept as an upper bound.
- finetune (LLM, projector and mining train): the bf16 weights (~5.6 GiB) are fixed; ZeRO-2 shards
  the bf16 gradients and the float32 master weights and Adam moments of 2.5B parameters (~33 GiB)
  over the GPUs; with checkpointing 16 -> 64.6 GiB on one GPU, so 1.6 a sample (compiled; 64.5 eager
  on an H100); without, 8 -> 69.1 GiB (eager, on an H100), 3.8 a sample. With the optimizer on the CPU (zero2_offload.json), 4 ->
  31.3 GiB measured (the offload buffers hold the gradients), so 24.9 fixed.

These are estimates from one card; a run that still runs out of memory should set the values by
hand (the Editable Part of train_mgm_2b_stage_1.sh).

    bsynth plan-batch pretrain auto auto 256                     # prints e.g. "16 16"
    bsynth plan-batch finetune auto auto 128 --num-gpus 4 --gpu-memory-gib 40
"""

from __future__ import annotations

from dataclasses import dataclass

HEADROOM = 0.9  # of the card's memory, for the allocator's fragmentation and the data loader's pinned copies
MICRO_BATCHES = (16, 8, 4, 2, 1)


@dataclass(frozen=True)
class MemoryModel:
    fixed_gib: float
    sharded_gib: float  # divided over the GPUs (ZeRO-2 gradients and optimizer state)
    per_sample_gib: float

    def peak_gib(self, micro_batch: int, num_gpus: int) -> float:
        return self.fixed_gib + self.sharded_gib / num_gpus + self.per_sample_gib * micro_batch


def memory_model(stage: str, torch_compile: bool, gradient_checkpointing: bool,
                 optimizer_offload: bool) -> MemoryModel:
    """The fitted model of the module docstring for one stage and setting."""
    if stage == "pretrain":
        return MemoryModel(5.2, 0.0, 1.86 if torch_compile else 2.33)
    if stage != "finetune":
        raise ValueError(f"stage must be pretrain or finetune, got {stage!r}")
    per_sample = 1.6 if gradient_checkpointing else 3.8
    if optimizer_offload:
        return MemoryModel(24.9, 0.0, per_sample)
    return MemoryModel(5.6, 33.0, per_sample)


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
