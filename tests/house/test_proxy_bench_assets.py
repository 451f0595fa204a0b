"""bench/proxy_experiment.py builds a complete real asset layout the main job takes as real: its seed
pool passes ``bsynth validate`` against its stage_1.json, samples have the bench's token lengths,
the eval sets have the asked-for counts, and the job's environment names them (the full tiny run of
the job itself, ~4 minutes on CPU, is left to ``python bench/proxy_experiment.py --tiny``).

    python -m pytest tests/house/test_proxy_bench_assets.py -q      (~20 s)
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import proxy_experiment  # noqa: E402  (bench/ is not a package)


def test_the_tiny_layout_is_complete_valid_and_what_the_job_is_given(tmp_path):
    from bettersynth.paths import AssetLayout
    from bettersynth.template import encode_conversation
    from transformers import AutoTokenizer

    counts = proxy_experiment.COUNTS["tiny"]
    assert proxy_experiment.build_assets(tmp_path, counts, tiny=True) == {
        "models": "built", "seed pool": "built", "finetune set": "built", "textvqa": "built", "mmbench": "built"}
    assert set(proxy_experiment.build_assets(tmp_path, counts, tiny=True).values()) == {"kept"}
    # a part built with other counts, or cut off before its marker, is built again; the rest is kept
    (tmp_path / "assets" / "toolkit" / "training" / "model_zoo" / proxy_experiment.DONE).unlink()
    assert proxy_experiment.build_assets(tmp_path, dict(counts, mmbench_base=6), tiny=True) == {
        "models": "built", "seed pool": "kept", "finetune set": "kept", "textvqa": "kept", "mmbench": "built"}
    proxy_experiment.build_assets(tmp_path, counts, tiny=True)
    layout = AssetLayout(tmp_path / "assets")
    assert all(path.exists() for path in layout.training_assets())

    seed_lines = [json.loads(line) for line in layout.seed_jsonl.read_text().splitlines()]
    stage1 = json.loads(layout.stage1_json.read_text())
    assert len(seed_lines) == len(stage1) == counts["pool"]
    assert [line["id"] for line in seed_lines] == [record["id"] for record in stage1]
    assert seed_lines[0]["text"] == f"<__dj__image>\n{stage1[0]['conversations'][1]['value']} <|__dj__eoc|>"
    done = subprocess.run([sys.executable, "-m", "bettersynth", "validate", str(layout.seed_jsonl),
                           "--image-root", str(layout.seed_dir), "--original", str(layout.stage1_json),
                           "--workers", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

    tokenizer = AutoTokenizer.from_pretrained(layout.llm_dir)
    finetune = json.loads(layout.finetune_json.read_text())
    assert len(finetune) == counts["finetune_samples"]
    for records, target in ((stage1, 614), (finetune, 700)):
        lengths = [len(encode_conversation(r["conversations"], tokenizer, has_image=True).input_ids) - 1 + 576
                   for r in records[:32]]
        assert abs(sum(lengths) / len(lengths) - target) < 0.05 * target

    questions = layout.textvqa_questions.read_text().splitlines()
    assert len(questions) == counts["textvqa_questions"]
    assert len({json.loads(q)["image"] for q in questions}) == counts["textvqa_images"]
    with open(layout.mmbench_tsv, encoding="utf-8") as tsv:
        rows = list(csv.DictReader(tsv, delimiter="\t"))
    assert sum(1 for row in rows if int(row["index"]) < 1_000_000) == counts["mmbench_base"]

    environment = proxy_experiment.job_environment(tmp_path, 256, 8)
    assert {key: environment[key] for key in ("BSYNTH_LAYOUT", "BSYNTH_ASSETS_ROOT", "RECIPE", "PRETRAIN_DATASET",
                                              "PROXY_PRETRAIN_SAMPLES", "BSYNTH_EVAL_MAX_NEW_TOKENS")} == {
        "BSYNTH_LAYOUT": "real", "BSYNTH_ASSETS_ROOT": str(layout.root), "RECIPE": "",
        "PRETRAIN_DATASET": str(layout.seed_jsonl), "PROXY_PRETRAIN_SAMPLES": "256", "BSYNTH_EVAL_MAX_NEW_TOKENS": "8"}
    shown = subprocess.run([sys.executable, "-m", "bettersynth", "layout", "--which", "auto", "--format", "json"],
                           env={**os.environ, "BSYNTH_ASSETS_ROOT": str(layout.root), "BSYNTH_ROOT": str(REPO)},
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["LAYOUT_MODE"] == "real"
