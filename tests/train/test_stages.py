"""The stage spec (bettersynth.train.stages) holds the official values, and ``--stage`` applies them:
a flag given beside it must agree; without it, every difference is said when training starts.

    python -m pytest tests/train/test_stages.py -q      (seconds)
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bettersynth.train.args import parse_args
from bettersynth.train.stages import STAGES, differences_from_spec

PATHS = ["--model_name_or_path", "m", "--data_path", "d.json", "--vision_tower", "v", "--vision_tower_aux", "a",
         "--output_dir", "o"]


def test_the_official_values():  # baseline.md: the two fixed stages of the challenge
    pretrain, finetune = STAGES["pretrain"], STAGES["finetune"]
    assert (pretrain.global_batch, pretrain.learning_rate, pretrain.trainable) == (256, 1e-3, ("mining", "projector"))
    assert (finetune.global_batch, finetune.learning_rate) == (128, 2e-5)
    assert finetune.trainable == ("mining", "projector", "llm")
    for spec in (pretrain, finetune):
        assert (spec.num_train_epochs, spec.lr_scheduler_type, spec.warmup_ratio, spec.weight_decay) == \
            (1, "cosine", 0.03, 0.0)
    assert (pretrain.image_aspect_ratio, pretrain.group_by_modality_length) == ("square", False)
    assert (finetune.image_aspect_ratio, finetune.group_by_modality_length) == ("pad", True)
    assert (pretrain.log_name, finetune.log_name) == ("pretrain.log", "finetuning.log")


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_stage_flag_takes_the_spec(stage):
    args = parse_args(PATHS + ["--stage", stage])
    assert args.stage == stage
    assert differences_from_spec(args.to_dict(), STAGES[stage]) == []
    assert args.learning_rate == STAGES[stage].learning_rate


def test_a_flag_against_the_spec_stops_the_command():
    done = subprocess.run([sys.executable, "-m", "bettersynth", "train", *PATHS, "--stage", "finetune",
                           "--learning_rate", "1e-4", "--image_aspect_ratio", "square"], capture_output=True, text=True)
    assert done.returncode == 2
    assert ("bsynth train: error: --stage finetune: --learning_rate 0.0001 (the finetune stage uses 2e-05); "
            "--image_aspect_ratio square (the finetune stage uses pad)") in done.stderr


def test_official_flags_without_stage_are_compared_with_the_spec():
    args = parse_args(PATHS + ["--tune_mm_mlp_adapter", "True", "--learning_rate", "2e-3"])
    assert args.stage == "pretrain"
    assert differences_from_spec(args.to_dict(), STAGES["pretrain"]) == [
        "--learning_rate 0.002 (the pretrain stage uses 0.001)"]


def test_each_flag_is_declared_once_with_its_help_and_choices():
    done = subprocess.run([sys.executable, "-m", "bettersynth.train", *PATHS, "--gemma_activation", "fast"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--gemma_activation 'fast': allowed values are exact, tanh" in done.stderr
    helped = subprocess.run([sys.executable, "-m", "bettersynth.train", "--help"], capture_output=True, text=True)
    assert "Gemma MLP GELU: exact (official, transformers 4.38) or tanh (choices: exact, tanh) (default: exact)" in \
        " ".join(helped.stdout.split())
