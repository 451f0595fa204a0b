"""What a training stage is: the one place that says it, for pretrain and finetune.

Each ``StageSpec`` holds the stage's global batch, learning rate and schedule, what trains, how it
treats images, what it writes, and the memory model its batch planning uses. The trainer
(``bsynth train --stage``, and the official flags checked against the spec), the batch check and
plan (``bsynth check-batch`` / ``plan-batch``, bettersynth.train.batch), the main job (through
``bsynth layout``) and ``bsynth pack`` read it; ``set_trainable`` below is the freezing.

    from bettersynth.train.stages import STAGES, set_trainable
    STAGES["pretrain"].learning_rate                  # 1e-3
    STAGES["pretrain"].trainable                      # ("mining", "projector")
    names = set_trainable(model, "pretrain")          # 13,259,008 parameters at real size

The official settings (baseline.md): pretrain trains the projector and the patch-info-mining
module on the curated pool (global batch 256, lr 1e-3); finetune also trains the whole LLM,
embeddings included, on the fixed instruction set (global batch 128, lr 2e-5). Both: one epoch,
cosine schedule, 3% warmup, no weight decay. The CLIP and ConvNeXt towers never train.

Memory models (GiB per process = fixed + sharded / GPUs + per sample x micro-batch), fitted to the
peaks bench/train_throughput.py measured on one H200 (nvidia-smi, the CUDA context included):
- pretrain (the towers and the LLM are frozen bf16 weights): compiled, no checkpointing: 16 ->
  34.9 GiB, 32 -> 64.6 GiB, so 5.2 fixed + 1.86 a sample; eager: 16 -> 42.4 GiB, 2.33 a sample.
  Checkpointing only lowers the per-sample figure, so the no-checkpointing one is kept as an
  upper bound.
- finetune: the bf16 weights (~5.6 GiB) are fixed; ZeRO-2 shards the bf16 gradients and the
  float32 master weights and Adam moments of 2.5B parameters (~33 GiB) over the GPUs; with
  checkpointing 16 -> 64.6 GiB on one GPU, so 1.6 a sample (compiled; 64.5 eager on an H100);
  without, 8 -> 69.1 GiB (eager, on an H100), 3.8 a sample. With the optimizer on the CPU
  (zero2_offload.json), 4 -> 31.3 GiB measured (the offload buffers hold the gradients), so 24.9
  fixed.
These are estimates from one card, with samples of ~700 tokens (micro-batches of longer samples
need more, in proportion); a run that still runs out of memory should set its batch values or
checkpointing by hand (the Editable Part of train_mgm_2b_stage_1.sh). Checkpointing "auto" (the
finetune default, bettersynth.job_settings) turns it off only where the largest micro-batch fits
without it by the no-checkpointing figure above (an eager upper bound: compiling keeps fewer
activations): on a 141 GB H200, 99 of its 125 usable GiB, as much headroom in tokens as 16 with
checkpointing leaves on an 80 GB card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is not imported by the batch check, which reads the specs
    from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryModel:
    fixed_gib: float
    sharded_gib: float  # divided over the GPUs (ZeRO-2 gradients and optimizer state)
    per_sample_gib: float

    def peak_gib(self, micro_batch: int, num_gpus: int) -> float:
        return self.fixed_gib + self.sharded_gib / num_gpus + self.per_sample_gib * micro_batch


@dataclass(frozen=True)
class StageSpec:
    """One training stage: hyper-parameters, what trains, image handling, outputs, memory."""

    name: str
    global_batch: int
    learning_rate: float
    trainable: tuple[str, ...]          # attribute names of the MGM model's trained parts
    image_aspect_ratio: str             # "square" (shortest-edge resize + centre crop) or "pad"
    group_by_modality_length: bool      # the modality-and-length grouped sampler
    log_name: str                       # the log the main job writes (the organisers read it)
    outputs: tuple[str, ...]            # files of the finished stage (beside the weights)
    num_train_epochs: int = 1
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0

    @property
    def tune_mm_mlp_adapter(self) -> bool:
        return "llm" not in self.trainable

    def official_flags(self) -> dict[str, Any]:
        """The trainer flags (TrainArgs names) this stage fixes, with their values."""
        return {"tune_mm_mlp_adapter": self.tune_mm_mlp_adapter, "learning_rate": self.learning_rate,
                "num_train_epochs": self.num_train_epochs, "lr_scheduler_type": self.lr_scheduler_type,
                "warmup_ratio": self.warmup_ratio, "weight_decay": self.weight_decay,
                "image_aspect_ratio": self.image_aspect_ratio,
                "group_by_modality_length": self.group_by_modality_length}

    def memory_model(self, torch_compile: bool, gradient_checkpointing: bool, optimizer_offload: bool
                     ) -> MemoryModel:
        """The fitted peak-memory model of the module docstring for this stage and setting."""
        if self.tune_mm_mlp_adapter:
            return MemoryModel(5.2, 0.0, 1.86 if torch_compile else 2.33)
        per_sample = 1.6 if gradient_checkpointing else 3.8
        if optimizer_offload:
            return MemoryModel(24.9, 0.0, per_sample)
        return MemoryModel(5.6, 33.0, per_sample)


STAGES: dict[str, StageSpec] = {
    "pretrain": StageSpec(
        name="pretrain", global_batch=256, learning_rate=1e-3, trainable=("mining", "projector"),
        image_aspect_ratio="square", group_by_modality_length=False, log_name="pretrain.log",
        outputs=("mm_projector.bin", "config.json", "train_args.json", "trainer_state.json")),
    "finetune": StageSpec(
        name="finetune", global_batch=128, learning_rate=2e-5, trainable=("mining", "projector", "llm"),
        image_aspect_ratio="pad", group_by_modality_length=True, log_name="finetuning.log",
        outputs=("config.json", "generation_config.json", "tokenizer_config.json", "preprocessor_config.json",
                 "train_args.json", "trainer_state.json")),
}


def stage_spec(name: str) -> StageSpec:
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; known: {sorted(STAGES)}")
    return STAGES[name]


def trainable_parts(model, stage: str) -> dict[str, nn.Module]:
    """The submodules of an MGM model trained in ``stage``, by attribute name."""
    return {name: getattr(model, name) for name in stage_spec(stage).trainable}


def set_trainable(model: nn.Module, stage: str) -> list[str]:
    """Freezes everything, unfreezes the stage's parts; logs and returns the trainable parameter names."""
    parts = trainable_parts(model, stage)
    model.requires_grad_(False)
    for part in parts.values():
        part.requires_grad_(True)
    names = [name for name, param in model.named_parameters() if param.requires_grad]
    count = sum(param.numel() for param in model.parameters() if param.requires_grad)
    total = sum(param.numel() for param in model.parameters())
    log.info("stage %s: training %s: %d tensors, %s of %s parameters", stage, "+".join(parts),
             len(names), f"{count:,}", f"{total:,}")
    for name in names:
        log.debug("trainable: %s", name)
    return names


def differences_from_spec(flags: dict[str, Any], spec: StageSpec) -> list[str]:
    """``--flag value`` phrases where ``flags`` (TrainArgs values) differ from the stage's official ones."""
    return [f"--{name} {flags[name]} (the {spec.name} stage uses {value})"
            for name, value in spec.official_flags().items() if flags[name] != value]
