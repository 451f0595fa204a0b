"""DeepSpeed JSONs: the shipped zero2*.json parse, their "auto" values are filled from the
arguments, DeepSpeed's own config parser accepts the result, and forbidden keys are rejected.

Run with ``python -m pytest tests/train/test_ds_config.py -q``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bettersynth.train.args import parse_args
from bettersynth.train.ds_config import deepspeed_config, offloads_optimizer

CONFIG_DIR = Path(__file__).resolve().parents[2] / "toolkit" / "configs" / "deepspeed"


def args_with(*extra: str):
    return parse_args(["--model_name_or_path", "m", "--data_path", "d", "--vision_tower", "v",
                       "--vision_tower_aux", "a", "--output_dir", "o", "--per_device_train_batch_size", "4",
                       "--gradient_accumulation_steps", "8", "--bf16", "True", *extra])


@pytest.mark.parametrize("name, offload", [("zero2.json", False), ("zero2_offload.json", True)])
def test_shipped_configs_fill_and_parse(name, offload):
    config = deepspeed_config(CONFIG_DIR / name, args_with(), world_size=8, hidden_size=2048,
                              trainable_parameters=13_259_008)
    assert config["train_micro_batch_size_per_gpu"] == 4
    assert config["gradient_accumulation_steps"] == 8
    assert config["train_batch_size"] == 4 * 8 * 8
    assert config["bf16"] == {"enabled": True} and config["fp16"] == {"enabled": False}
    zero = config["zero_optimization"]
    assert zero["stage"] == 2 and zero["overlap_comm"] and zero["contiguous_gradients"]
    # offload with accumulation: one bucket for all trainable parameters (DeepSpeed 0.19.8 bug)
    assert zero["reduce_bucket_size"] == (13_259_008 if offload else 2048 * 2048)
    assert "optimizer" not in config and "scheduler" not in config
    assert config["gradient_clipping"] == 0.0  # DeepSpeed would clip at 1.0 if it were absent
    assert offloads_optimizer(config) is offload
    assert "auto" not in json.dumps(config)


def test_deepspeed_accepts_the_filled_config():
    from deepspeed.runtime.config import DeepSpeedConfig

    config = deepspeed_config(CONFIG_DIR / "zero2_offload.json", args_with(), world_size=1, hidden_size=64,
                              trainable_parameters=1000)
    parsed = DeepSpeedConfig(config)
    assert parsed.zero_optimization_stage == 2
    assert parsed.bfloat16_config.enabled and not parsed.float16_config.enabled
    assert parsed.train_batch_size == 32 and parsed.gradient_accumulation_steps == 8
    assert parsed.gradient_clipping == 0.0


@pytest.mark.parametrize("content, message", [
    ({"optimizer": {"type": "AdamW"}}, "remove 'optimizer'"),
    ({"scheduler": {"type": "WarmupLR"}}, "remove 'scheduler'"),
    ({"gradient_clipping": 1.0}, "gradient_clipping"),
    ({"zero_optimization": {"stage": 3}}, "stage 3"),
    ({"train_micro_batch_size_per_gpu": 2}, "arguments give 4"),
    ({"steps_per_print": "auto"}, "no rule fills"),
])
def test_bad_configs_are_rejected(tmp_path, content, message):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message):
        deepspeed_config(path, args_with(), world_size=1, hidden_size=64, trainable_parameters=1000)


@pytest.mark.parametrize("content, message", [
    (b"[1]", "a DeepSpeed config is a JSON object, got list"),
    (b'{"zero_optimization": 2}', "zero_optimization must be an object, got 2"),
    (b'{"zero_optimization": {"offload_optimizer": "cpu"}}', "offload_optimizer must be an object, got 'cpu'"),
    (b'{"bf16": "\xe9"}', "cannot read the DeepSpeed config .*ds.json: 'utf-8' codec can't decode"),
])
def test_configs_of_the_wrong_shape_are_named(tmp_path, capsys, content, message):
    from bettersynth.cli import main

    path = tmp_path / "ds.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        deepspeed_config(path, args_with(), world_size=1, hidden_size=64, trainable_parameters=1000)
    assert main(["plan-batch", "pretrain", "auto", "auto", "256", "--deepspeed", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and re.search(message, err) and "Traceback" not in err


def test_explicit_matching_values_are_kept(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"train_micro_batch_size_per_gpu": 4, "train_batch_size": 64,
                                "zero_optimization": {"stage": 2, "reduce_bucket_size": 1000}}))
    config = deepspeed_config(path, args_with(), world_size=2, hidden_size=64, trainable_parameters=10)
    assert config == {"train_micro_batch_size_per_gpu": 4, "train_batch_size": 64, "gradient_clipping": 0.0,
                      "zero_optimization": {"stage": 2, "reduce_bucket_size": 1000}}


def test_offload_without_accumulation_keeps_the_bucket():
    config = deepspeed_config(CONFIG_DIR / "zero2_offload.json", args_with("--gradient_accumulation_steps", "1"),
                              world_size=1, hidden_size=64, trainable_parameters=10**6)
    assert config["zero_optimization"]["reduce_bucket_size"] == 64 * 64
