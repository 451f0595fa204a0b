"""The optimizer and learning-rate schedule the trainer owns (also under DeepSpeed).

AdamW (betas 0.9/0.999, eps 1e-8 by default) over the trainable parameters; weight decay, when
non-zero, applies to matrices only (biases and norm weights are 1-D and never decayed). With the
optimizer state offloaded to the CPU (zero2_offload.json) DeepSpeed's CPU Adam runs the same AdamW
update. The schedule is transformers' (``--lr_scheduler_type``, cosine by default) with
``ceil(warmup_ratio * steps)`` linear warmup steps, as the Hugging Face trainer computes them.
Used by backend.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import get_scheduler


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters in (decayed matrices, undecayed vectors) groups, empty groups dropped."""
    decayed, plain = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decayed if param.ndim >= 2 and weight_decay > 0 else plain).append(param)
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    groups = [group for group in groups if group["params"]]
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


def build_optimizer(model: nn.Module, args, device: torch.device, cpu_offload: bool) -> torch.optim.Optimizer:
    groups = parameter_groups(model, args.weight_decay)
    betas = (args.adam_beta1, args.adam_beta2)
    if cpu_offload:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(groups, lr=args.learning_rate, betas=betas, eps=args.adam_epsilon, adamw_mode=True)
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=betas, eps=args.adam_epsilon,
                             fused=device.type == "cuda")


def build_scheduler(optimizer: torch.optim.Optimizer, args, total_steps: int):
    return get_scheduler(args.lr_scheduler_type, optimizer,
                         num_warmup_steps=warmup_steps(total_steps, args.warmup_ratio),
                         num_training_steps=total_steps)
