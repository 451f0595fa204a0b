"""Helpers of the training tests (tests/train, tests/scale; not fixtures): demo-run flags, subsets,
in-process runs.

Imported by the test modules as ``from train_helpers import ...`` (tests/ is on sys.path: pytest puts
the folder of the top conftest.py there); the fixtures are in tests/conftest.py.
"""

from __future__ import annotations

import json

DEMO_ITEMS = ("llm", "vision_tower", "vision_tower_aux", "seed_pool", "finetune_set")
# The demo towers take 256-px input; 64 px keeps the ConvNeXt cheap on CPU (8x8 CLIP patches over a
# 16x16 high-resolution map: 2x2 cells per patch) without changing any code path.
TEST_IMAGE_SIZE_AUX = 64



def write_subset(records: list[dict], path) -> str:
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return str(path)


def stage_argv(layout, data_path: str, output_dir, stage: str, *extra: str, adapter: str | None = None,
               per_device: int = 2, accumulation: int = 2) -> list[str]:
    """The official flags of one stage on the demo models (tiny, CPU), plus ``extra``."""
    image_folder = layout.seed_dir if stage == "pretrain" else layout.finetune_dir
    argv = ["--model_name_or_path", str(layout.llm_dir), "--version", "gemma", "--data_path", data_path,
            "--image_folder", str(image_folder), "--vision_tower", str(layout.vision_tower_dir),
            "--vision_tower_aux", str(layout.vision_tower_aux_dir), "--mm_projector_type", "mlp2x_gelu",
            "--mm_vision_select_layer", "-2", "--mm_use_im_start_end", "False", "--mm_use_im_patch_token", "False",
            "--image_size_aux", str(TEST_IMAGE_SIZE_AUX), "--bf16", "True", "--tf32", "True",
            "--output_dir", str(output_dir), "--num_train_epochs", "1",
            "--per_device_train_batch_size", str(per_device), "--per_device_eval_batch_size", "4",
            "--gradient_accumulation_steps", str(accumulation), "--evaluation_strategy", "no",
            "--save_strategy", "steps", "--save_steps", "100", "--weight_decay", "0.", "--warmup_ratio", "0.03",
            "--lr_scheduler_type", "cosine", "--logging_steps", "1", "--model_max_length", "2048",
            "--dataloader_num_workers", "0", "--lazy_preprocess", "True", "--report_to", "none"]
    if stage == "pretrain":
        argv += ["--tune_mm_mlp_adapter", "True", "--learning_rate", "1e-3"]
    else:
        argv += ["--image_aspect_ratio", "pad", "--group_by_modality_length", "True", "--learning_rate", "2e-5"]
        if adapter:
            argv += ["--pretrain_mm_mlp_adapter", adapter]
    return argv + list(extra)


def run_in_process(argv: list[str]):
    """Runs one stage in this process; returns its StageOutcome."""
    from bettersynth.train.args import parse_args
    from bettersynth.train.distributed import init_distributed
    from bettersynth.train.progress import setup_logging
    from bettersynth.train.run import run_stage

    args = parse_args(argv)
    dist = init_distributed()
    setup_logging(dist.is_main, None)
    return run_stage(args, dist)
