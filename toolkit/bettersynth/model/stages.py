"""What trains in each stage: one explicit function, which logs the names and counts it set.

    names = set_trainable(model, "pretrain")   # projector + mining (13,259,008 parameters at real size)
    names = set_trainable(model, "finetune")   # + the whole LLM, embeddings included

The CLIP and ConvNeXt towers are frozen in every stage.
"""

from __future__ import annotations

import logging

from torch import nn

from bettersynth.model.mgm import MGMForCausalLM

STAGES = ("pretrain", "finetune")

logger = logging.getLogger(__name__)


def trainable_parts(model: MGMForCausalLM, stage: str) -> dict[str, nn.Module]:
    """The submodules trained in ``stage``, by attribute name."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {STAGES}")
    parts = {"mining": model.mining, "projector": model.projector}
    if stage == "finetune":
        parts["llm"] = model.llm
    return parts


def set_trainable(model: MGMForCausalLM, stage: str) -> list[str]:
    """Freezes everything, unfreezes the stage's parts; returns the trainable parameter names."""
    parts = trainable_parts(model, stage)
    model.requires_grad_(False)
    for part in parts.values():
        part.requires_grad_(True)
    names = [name for name, param in model.named_parameters() if param.requires_grad]
    count = sum(param.numel() for param in model.parameters() if param.requires_grad)
    total = sum(param.numel() for param in model.parameters())
    logger.info("stage %s: training %s: %d tensors, %s of %s parameters", stage, "+".join(parts),
                len(names), f"{count:,}", f"{total:,}")
    for name in names:
        logger.debug("trainable: %s", name)
    return names
