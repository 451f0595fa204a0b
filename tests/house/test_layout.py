"""One layout decision per job (``bsynth layout``, bettersynth.job_settings): all real, all demo, or a
stop naming what is missing, never a mix; the settings that depend on it come from Python.

    python -m pytest tests/house/test_layout.py -q      (seconds)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from bettersynth.job_settings import EDITABLE_DEFAULT_EXP_NAME
from bettersynth.paths import AssetLayout

MAIN_JOB = Path(__file__).resolve().parents[2] / "train_mgm_2b_stage_1.sh"

EDITABLE = {"PRETRAIN_BATCH_SIZE_PER_GPU": "auto", "PRETRAIN_GRADIENT_ACCUMULATION_STEPS": "auto",
            "PRETRAIN_GRADIENT_CHECKPOINTING": "False", "FINETUNE_BATCH_SIZE_PER_GPU": "auto",
            "FINETUNE_GRADIENT_ACCUMULATION_STEPS": "auto", "FINETUNE_GRADIENT_CHECKPOINTING": "True",
            "TORCH_COMPILE": "True", "DEEPSPEED_CONFIG": "toolkit/configs/deepspeed/zero2.json"}


def layout(tmp_path, *extra: str, **env: str):
    environ = dict(os.environ, BSYNTH_ASSETS_ROOT=str(tmp_path / "real"), BSYNTH_DEMO_ROOT=str(tmp_path / "demo"),
                   CUDA_VISIBLE_DEVICES="", **env)
    return subprocess.run([sys.executable, "-m", "bettersynth", "layout", "--format", "shell", *extra],
                          capture_output=True, text=True, env=environ)


def variables(done) -> dict[str, str]:
    return dict(line.split("=", 1) for line in shlex.split(done.stdout, posix=True) if "=" in line)


def touch(paths):
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")


def test_no_real_asset_is_the_demo_all_is_real_a_mix_stops(tmp_path):
    real = AssetLayout(tmp_path / "real")
    assert variables(layout(tmp_path))["LAYOUT_MODE"] == "demo"
    # what `download.sh --models --eval` fetches: the models and the eval data, not the training data
    touch([real.llm_dir / "config.json", real.vision_tower_dir / "config.json",
           real.vision_tower_aux_dir / "open_clip_config.json", real.textvqa_questions, real.mmbench_tsv])
    mixed = layout(tmp_path)
    assert mixed.returncode == 2 and mixed.stdout == ""
    assert f"the real assets under {real.root} are incomplete: 5 of 7 present, missing: {real.stage1_json}, " \
           f"{real.finetune_json}." in mixed.stderr
    assert variables(layout(tmp_path, "--which", "demo"))["LAYOUT_MODE"] == "demo"
    touch([real.stage1_json, real.finetune_json])
    assert variables(layout(tmp_path))["LAYOUT_MODE"] == "real"


def test_the_jobs_settings_follow_the_layout(tmp_path):
    editable = [argument for key, value in EDITABLE.items() for argument in ("--editable", f"{key}={value}")]
    demo = variables(layout(tmp_path, *editable))
    assert {key: demo[key] for key in ("PRETRAIN_GLOBAL_BATCH", "PRETRAIN_BATCH_SIZE_PER_GPU",
                                       "PRETRAIN_GRADIENT_ACCUMULATION_STEPS", "FINETUNE_GLOBAL_BATCH",
                                       "FINETUNE_BATCH_SIZE_PER_GPU", "FINETUNE_GRADIENT_ACCUMULATION_STEPS",
                                       "AUX_SIZE", "EXP_NAME", "TORCH_COMPILE", "EVAL_MAX_NEW_TOKENS",
                                       "CKPT_SAVE_STEPS")} == {
        "PRETRAIN_GLOBAL_BATCH": "8", "PRETRAIN_BATCH_SIZE_PER_GPU": "4", "PRETRAIN_GRADIENT_ACCUMULATION_STEPS": "2",
        "FINETUNE_GLOBAL_BATCH": "4", "FINETUNE_BATCH_SIZE_PER_GPU": "2", "FINETUNE_GRADIENT_ACCUMULATION_STEPS": "2",
        "AUX_SIZE": "256", "EXP_NAME": "demo", "TORCH_COMPILE": "False", "EVAL_MAX_NEW_TOKENS": "16",
        "CKPT_SAVE_STEPS": "10"}
    # the demo's name: "demo" for the Editable Part's default, an EXP_NAME given is kept, DEMO_EXP_NAME wins
    assert variables(layout(tmp_path, *editable, "--editable", f"EXP_NAME={EDITABLE_DEFAULT_EXP_NAME}"))[
        "EXP_NAME"] == "demo"
    assert variables(layout(tmp_path, *editable, "--editable", "EXP_NAME=try2"))["EXP_NAME"] == "try2"
    assert variables(layout(tmp_path, *editable, "--editable", "EXP_NAME=try2", DEMO_EXP_NAME="mine"))[
        "EXP_NAME"] == "mine"
    assert "EXP_NAME" not in variables(layout(tmp_path, "--which", "real", *editable, "--editable", "EXP_NAME=try2"))
    # the Editable Part's values for checkpointing as the trainer gets them; no GPU: evals one after another
    assert (demo["PRETRAIN_GRADIENT_CHECKPOINTING"], demo["FINETUNE_GRADIENT_CHECKPOINTING"],
            demo["EVAL_SIDE_BY_SIDE"]) == ("False", "True", "False")
    auto = variables(layout(tmp_path, *editable, "--editable", "FINETUNE_GRADIENT_CHECKPOINTING=auto"))
    assert auto["FINETUNE_GRADIENT_CHECKPOINTING"] == "True"   # the official value where nothing is measured
    assert demo["PRETRAIN_DATASET_IMAGE_PATH"] == str(AssetLayout(tmp_path / "demo").seed_dir)
    # torch.compile's kernels: in the output tree, one folder per node
    assert demo["KERNEL_CACHE_DIR"] == demo["OUTPUT_DIR"] + "/.cache/torchinductor-node0"
    real = variables(layout(tmp_path, "--which", "real", *editable))
    # no GPU: the largest micro-batch that divides the global batch; the real values stay as given
    assert {key: real[key] for key in ("PRETRAIN_GLOBAL_BATCH", "PRETRAIN_BATCH_SIZE_PER_GPU",
                                       "PRETRAIN_GRADIENT_ACCUMULATION_STEPS", "FINETUNE_GLOBAL_BATCH",
                                       "FINETUNE_BATCH_SIZE_PER_GPU", "FINETUNE_GRADIENT_ACCUMULATION_STEPS",
                                       "AUX_SIZE", "EVAL_MAX_NEW_TOKENS")} == {
        "PRETRAIN_GLOBAL_BATCH": "256", "PRETRAIN_BATCH_SIZE_PER_GPU": "16",
        "PRETRAIN_GRADIENT_ACCUMULATION_STEPS": "16", "FINETUNE_GLOBAL_BATCH": "128",
        "FINETUNE_BATCH_SIZE_PER_GPU": "16", "FINETUNE_GRADIENT_ACCUMULATION_STEPS": "8", "AUX_SIZE": "768",
        "EVAL_MAX_NEW_TOKENS": ""}
    assert "EXP_NAME" not in real and "TORCH_COMPILE" not in real
    two_gpus = variables(layout(tmp_path, *editable, WORLD_SIZE="2"))
    assert (two_gpus["PRETRAIN_GLOBAL_BATCH"], two_gpus["TRAINING_PROCESSES"]) == ("16", "2")


def test_a_benchmark_caps_the_real_layouts_answers_and_a_bad_cap_stops(tmp_path):
    editable = [argument for key, value in EDITABLE.items() for argument in ("--editable", f"{key}={value}")]
    capped = variables(layout(tmp_path, "--which", "real", *editable, BSYNTH_EVAL_MAX_NEW_TOKENS="8"))
    assert capped["EVAL_MAX_NEW_TOKENS"] == "8"
    demo = variables(layout(tmp_path, *editable, BSYNTH_EVAL_MAX_NEW_TOKENS="8"))
    assert demo["EVAL_MAX_NEW_TOKENS"] == "16"  # the demo keeps its own cap
    bad = layout(tmp_path, "--which", "real", *editable, BSYNTH_EVAL_MAX_NEW_TOKENS="eight")
    assert bad.returncode == 1 and bad.stdout == ""
    assert "BSYNTH_EVAL_MAX_NEW_TOKENS must be a positive integer, got 'eight'" in bad.stderr


def test_a_batch_that_cannot_split_stops_the_layout(tmp_path):
    editable = dict(EDITABLE, FINETUNE_BATCH_SIZE_PER_GPU="3")
    done = layout(tmp_path, "--which", "real",
                  *[argument for key, value in editable.items() for argument in ("--editable", f"{key}={value}")])
    assert done.returncode == 1 and done.stdout == ""
    assert "bsynth plan-batch finetune: micro-batch 3 does not divide the 128 samples per GPU" in done.stderr


def test_bad_editable_values_stop_the_layout_all_named_at_once(tmp_path):
    editable = dict(EDITABLE, LOGGING_STEP="0", CKPT_SAVE_STEPS="-1", TOTAL_SAVE_CKPT_LIMIT="abc",
                    PRETRAIN_DATALOADER_NUM_WORKERS="-1", FINETUNE_DATALOADER_NUM_WORKERS="0",
                    PRETRAIN_GRADIENT_CHECKPOINTING="maybe", INFER_CUDA_IDX="0,,1")
    done = layout(tmp_path, *[argument for key, value in editable.items()
                              for argument in ("--editable", f"{key}={value}")])
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (
        "bsynth layout: LOGGING_STEP must be an integer of at least 1, got '0'; "
        "CKPT_SAVE_STEPS must be an integer of at least 1, got '-1'; "
        "TOTAL_SAVE_CKPT_LIMIT must be an integer of at least 1, got 'abc'; "
        "PRETRAIN_DATALOADER_NUM_WORKERS must be an integer of at least 0, got '-1'; "
        "PRETRAIN_GRADIENT_CHECKPOINTING must be True, False or auto, got 'maybe'; "
        "INFER_CUDA_IDX must be GPU indices separated by commas (0 or 0,1,2,3), got '0,,1'")
    fine = dict(EDITABLE, LOGGING_STEP="1", INFER_CUDA_IDX="0,1", PRETRAIN_GRADIENT_CHECKPOINTING="true")
    assert layout(tmp_path, *[argument for key, value in fine.items()
                              for argument in ("--editable", f"{key}={value}")]).returncode == 0


def test_missing_editable_values_are_named(tmp_path):
    done = layout(tmp_path, "--editable", "TORCH_COMPILE=True", "--editable", "PRETRAIN_BATCH_SIZE_PER_GPU=auto")
    assert done.returncode == 1 and done.stdout == ""  # was a KeyError traceback
    assert done.stderr == (
        "bsynth layout: --editable lacks PRETRAIN_GRADIENT_ACCUMULATION_STEPS, PRETRAIN_GRADIENT_CHECKPOINTING, "
        "FINETUNE_BATCH_SIZE_PER_GPU, FINETUNE_GRADIENT_ACCUMULATION_STEPS, FINETUNE_GRADIENT_CHECKPOINTING: the "
        "job's settings are planned from all of them (the main job passes every Editable Part value)\n")


def test_the_demo_knows_the_editable_parts_default_name():
    assert f"EXP_NAME=${{EXP_NAME:-{EDITABLE_DEFAULT_EXP_NAME}}}\n" in MAIN_JOB.read_text()
