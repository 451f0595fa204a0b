"""Reads a DeepSpeed JSON (toolkit/configs/deepspeed/zero2*.json) and fills its "auto" values.

The JSONs hold only the ZeRO settings; the trainer owns the optimizer and schedule, and MGM-2B
trains without gradient clipping, so a JSON with an ``optimizer``, ``scheduler`` or non-zero
``gradient_clipping`` is rejected. DeepSpeed clips at 1.0 when ``gradient_clipping`` is absent
(its default in 0.19), so an absent value is written as 0.0. "auto" becomes: batch sizes from the
arguments and world size, ``bf16.enabled`` from --bf16, ``fp16.enabled`` false (explicit values
must agree with the arguments); ``zero_optimization.reduce_bucket_size`` = hidden size squared (the
value Hugging Face's integration uses; an explicit number is kept).

DeepSpeed 0.19.8 bug worked around here: with the optimizer offloaded to the CPU and
gradient_accumulation_steps > 1, ZeRO-2 mis-accumulates the gradients of every reduce bucket
flushed before the end of the backward pass (only the last bucket comes out right; found by
tests/train/test_deepspeed_backend.py, on CPU and on an H100). The reduce bucket is then enlarged
to hold all trainable parameters, so the single reduction happens at the end of backward.
Used by the training backend; test: tests/train/test_ds_config.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REJECTED_KEYS = ("optimizer", "scheduler")


BUCKET = ("zero_optimization", "reduce_bucket_size")


def _auto_values(args, world_size: int, hidden_size: int) -> dict[tuple[str, ...], Any]:
    micro = args.per_device_train_batch_size
    accumulation = args.gradient_accumulation_steps
    return {
        ("train_micro_batch_size_per_gpu",): micro,
        ("gradient_accumulation_steps",): accumulation,
        ("train_batch_size",): micro * accumulation * world_size,
        ("bf16", "enabled"): bool(args.bf16),
        ("fp16", "enabled"): False,
        BUCKET: hidden_size * hidden_size,
    }


def _fill(node: Any, path: tuple[str, ...], values: dict[tuple[str, ...], Any], source: Path) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, path + (key,), values, source) for key, value in node.items()}
    if path in values:
        wanted = values[path]
        if node == "auto":
            return wanted
        if node != wanted and path != BUCKET:
            raise ValueError(f"{source}: {'.'.join(path)} is {node!r} but the arguments give {wanted!r}; "
                             "set it to \"auto\" or make them agree")
        return node
    if node == "auto":
        raise ValueError(f"{source}: no rule fills \"auto\" at {'.'.join(path)}")
    return node


def read_config(path: str | Path) -> dict[str, Any]:
    """The JSON object of a DeepSpeed config; ValueError naming the file when it cannot be read, is not
    UTF-8 JSON, or is not an object with objects where ZeRO settings go."""
    source = Path(path)
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the DeepSpeed config {source}: {error}") from error
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: a DeepSpeed config is a JSON object, got {type(raw).__name__}")
    zero = raw.get("zero_optimization", {})
    if not isinstance(zero, dict):
        raise ValueError(f"{source}: zero_optimization must be an object, got {zero!r}")
    if not isinstance(zero.get("offload_optimizer") or {}, dict):
        raise ValueError(f"{source}: zero_optimization.offload_optimizer must be an object, "
                         f"got {zero['offload_optimizer']!r}")
    return raw


def deepspeed_config(path: str | Path, args, world_size: int, hidden_size: int,
                     trainable_parameters: int) -> dict[str, Any]:
    """The JSON at ``path`` as a dict with every "auto" filled and the trainer's invariants checked."""
    source = Path(path)
    raw = read_config(source)
    for key in REJECTED_KEYS:
        if key in raw:
            raise ValueError(f"{source}: remove '{key}'; the trainer builds the optimizer and schedule itself")
    if raw.get("gradient_clipping", 0) not in (0, 0.0):
        raise ValueError(f"{source}: gradient_clipping must be absent or 0 (MGM-2B trains without clipping)")
    stage = raw.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2):
        raise ValueError(f"{source}: ZeRO stage {stage} is not supported (use 2; stage 3 shards the frozen towers)")
    config = _fill(raw, (), _auto_values(args, world_size, hidden_size), source)
    config["gradient_clipping"] = 0.0
    zero = config.get("zero_optimization", {})
    if offloads_optimizer(config) and args.gradient_accumulation_steps > 1:
        zero["reduce_bucket_size"] = max(int(zero.get("reduce_bucket_size", 0)), trainable_parameters)
    return config


def offloads_optimizer(config: dict[str, Any]) -> bool:
    """True when the optimizer state lives on the CPU (then DeepSpeedCPUAdam is required)."""
    offload = config.get("zero_optimization", {}).get("offload_optimizer") or {}
    return offload.get("device", "none") == "cpu"
