"""The three model-based Data-Juicer ops of the recipes really run on the tiny recipe models, offline.

image_text_similarity_filter (CLIP), image_text_matching_filter (BLIP ITM) and
image_captioning_mapper (BLIP-2 OPT) load their default model names from
DATA_JUICER_EXTERNAL_MODELS_HOME=<layout.recipe_models_dir> and process 3 demo seed samples
through `dj-process` (np 1, skip_op_error false, so a model that fails to load fails the run).

    HF_HUB_OFFLINE=1 python -m pytest tests/demo/test_recipe_ops.py -q      (~30 s)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN

RECIPE = """\
project_name: demo-recipe-ops
dataset_path: {dataset}
export_path: {export}
np: 1
skip_op_error: false
keep_stats_in_res_ds: true
process:
  - image_text_similarity_filter:   # keeps every sample: random CLIP cosines can be negative
      min_score: -1.0
      max_score: 1.0
  - image_text_matching_filter:     # keeps every sample
      min_score: 0.0
      max_score: 1.0
  - image_captioning_mapper:
      keep_original_sample: false
"""


def test_dj_ops_run_on_the_recipe_models(demo, tmp_path):
    samples = [json.loads(line) for line in demo.seed_jsonl.read_text().splitlines()[:3]]
    dataset = tmp_path / "three.jsonl"
    with dataset.open("w") as out:
        for sample in samples:
            sample["images"] = [str(demo.seed_dir / sample["images"][0])]
            out.write(json.dumps(sample) + "\n")
    export = tmp_path / "out" / "result.jsonl"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(dataset=dataset, export=export))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               DATA_JUICER_EXTERNAL_MODELS_HOME=str(demo.recipe_models_dir))
    dj_process = shutil.which("dj-process") or str(Path(sys.executable).with_name("dj-process"))
    run = subprocess.run([dj_process, "--config", str(recipe)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "not found, installing" not in log and "directly from remote" not in log

    results = [json.loads(line) for line in export.read_text().splitlines()]
    assert [r["id"] for r in results] == [s["id"] for s in samples]
    for result, sample in zip(results, samples):
        stats = result["__dj__stats__"]
        (similarity,) = stats["image_text_similarity"]
        (matching,) = stats["image_text_matching_score"]
        assert -1.0 <= similarity <= 1.0 and 0.0 <= matching <= 1.0
        # the captioning mapper replaced the caption (keep_original_sample false) with generated text;
        # the built-in samples without a seed, so on the random tiny BLIP-2 it may draw the end token
        # first and generate an empty caption
        assert result["text"].startswith(DJ_IMAGE_TOKEN) and result["text"].endswith(DJ_EOC_TOKEN)
        assert result["text"] != sample["text"]
        caption = result["text"][len(DJ_IMAGE_TOKEN):-len(DJ_EOC_TOKEN)]
        assert "madeupword" not in caption  # the padding entries of the tiny OPT vocab are never generated
