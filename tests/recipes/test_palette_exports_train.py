"""Each new recipe's demo export goes the main job's way: validate -> cap -> dj2llava -> a short pretrain.

The exports are the session's palette runs (recipe_runs.palette, shared with
test_run_palette_recipes.py and test_run_regenerate_low_clip.py). The chain is the main job's
library calls with its settings (the official 200k cap, which keeps the whole demo export in order;
dj2llava with restored questions and the seed image root); the pretrain is real (the demo's tiny
towers and LLM on CPU, the projector trained) but short: 4 of the converted samples, 2 optimizer
steps. regenerate_low_clip's 4 hold 2 samples with drawn images, so training reads both image roots.
The main job itself runs each recipe by hand (README, "Recipes"); six demo jobs would not fit CI.
About 1.5 min after the palette runs it shares; about 7 min alone (it makes the six runs):

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_palette_exports_train.py -q
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from bettersynth.constants import DJ_IMAGE_TOKEN, MAX_PRETRAIN_SAMPLES
from bettersynth.data.dj_llava import DjToLlavaOptions, dj_to_llava
from bettersynth.data.sample_cap import sample_cap
from bettersynth.data.validate import ValidateOptions, validate

NEW_RECIPES = ("clip_aesthetics", "grounding_recall", "dedup_watermark", "recaption_clean_repeat", "itm_half_repeat",
               "regenerate_low_clip")


def pretrain_argv(layout, data_path, output_dir) -> list[str]:
    """The main job's pretrain flags on the demo models, at a global batch of 2 (2 per device, no accumulation)."""
    return ["--model_name_or_path", str(layout.llm_dir), "--version", "gemma", "--data_path", str(data_path),
            "--image_folder", str(layout.seed_dir), "--vision_tower", str(layout.vision_tower_dir),
            "--vision_tower_aux", str(layout.vision_tower_aux_dir), "--mm_projector_type", "mlp2x_gelu",
            "--mm_vision_select_layer", "-2", "--image_size_aux", "64", "--bf16", "False", "--tf32", "False",
            "--output_dir", str(output_dir), "--num_train_epochs", "1", "--per_device_train_batch_size", "2",
            "--gradient_accumulation_steps", "1", "--save_steps", "100", "--weight_decay", "0.",
            "--warmup_ratio", "0.03", "--lr_scheduler_type", "cosine", "--logging_steps", "1",
            "--model_max_length", "2048", "--dataloader_num_workers", "0", "--report_to", "none",
            "--tune_mm_mlp_adapter", "True", "--learning_rate", "1e-3"]


def training_subset(rows: list[dict], records: list[dict]) -> list[dict]:
    """4 converted samples: 2 with drawn images and 2 seed ones where the export has drawn images, else the first 4."""
    drawn = [record for row, record in zip(rows, records) if row.get("synthetic_images")]
    if not drawn:
        return records[:4]
    return drawn[:2] + [record for row, record in zip(rows, records) if not row.get("synthetic_images")][:2]


@pytest.mark.parametrize("name", NEW_RECIPES)
def test_export_is_validated_capped_converted_and_pretrained_on(name, recipe_runs, recipe_demo, tmp_path):
    from bettersynth.train.args import parse_args
    from bettersynth.train.distributed import init_distributed
    from bettersynth.train.progress import setup_logging
    from bettersynth.train.run import run_stage

    result = recipe_runs.palette(name)
    assert result.returncode == 0, result.output[-3000:]
    report = validate(result.export, ValidateOptions(image_root=recipe_demo.seed_dir, original=recipe_demo.stage1_json,
                                                     workers=1))
    assert report.ok, [problem.to_json() for problem in report.errors][:5]
    # the cap and its LLaVA json beside the export, as the main job writes them
    capped = result.export.with_name(result.export.name + "-200k.jsonl")
    cap = sample_cap(result.export, capped, MAX_PRETRAIN_SAMPLES)
    assert cap.num_output == cap.num_input == report.num_lines and not cap.sampled
    llava = capped.with_name(capped.name + ".json")
    converted = dj_to_llava(capped, llava, DjToLlavaOptions(
        image_special_token=DJ_IMAGE_TOKEN, restore_questions=True, original_llava_ds_path=recipe_demo.stage1_json,
        image_root=recipe_demo.seed_dir))
    assert converted.num_samples == report.num_lines and converted.num_synthetic == report.synthetic_samples
    rows = [json.loads(line) for line in capped.read_text().splitlines()]
    subset = training_subset(rows, json.loads(llava.read_text()))
    assert len(subset) == 4
    data = tmp_path / "pretrain.json"
    data.write_text(json.dumps(subset))

    args = parse_args(pretrain_argv(recipe_demo, data, tmp_path / "pretrain"))
    dist = init_distributed()
    setup_logging(dist.is_main, None)
    outcome = run_stage(args, dist)
    assert outcome.status == "finished" and outcome.state.global_step == 2
    assert outcome.state.totals["samples"] == 4
    assert all(math.isfinite(entry["loss"]) for entry in outcome.state.log_history)
    projector = torch.load(tmp_path / "pretrain" / "mm_projector.bin", weights_only=True)
    assert torch.equal(projector["model.mm_projector.0.weight"],
                       dict(outcome.model.named_parameters())["projector.0.weight"].detach())
