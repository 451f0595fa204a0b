"""toolkit/eval/textvqa.sh and mmbench.sh on CPU: the demo checkpoint end to end (two shards, merge,
upload file, ``bsynth score run``), and a failing shard that must stop the merge.

    python -m pytest tests/eval/test_scripts.py -q
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bettersynth.eval.files import shard_range
from bettersynth.eval.mmbench import UPLOAD_COLUMNS
from bettersynth.eval.textvqa import read_questions
from bettersynth.paths import MMBENCH_SPLIT

from eval_helpers import DEMO_CHECKPOINT

REPO = Path(__file__).resolve().parents[2]
TEXTVQA_SH = REPO / "toolkit" / "eval" / "textvqa.sh"
MMBENCH_SH = REPO / "toolkit" / "eval" / "mmbench.sh"
FAST = ["--max-new-tokens", "3", "--batch-size", "8"]


def _env(output: Path, data_root: Path) -> dict[str, str]:
    return {**os.environ, "BSYNTH_OUTPUT": str(output), "BSYNTH_EVAL_DATA_ROOT": str(data_root),
            "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _run(command, env):
    return subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True, cwd="/")


def test_demo_end_to_end(demo_checkpoint, demo_eval_assets):
    output = demo_checkpoint.parents[1]
    env = _env(output, demo_eval_assets.root)
    results = output / "eval_results" / DEMO_CHECKPOINT
    done = _run(["bash", TEXTVQA_SH, DEMO_CHECKPOINT, "0,1", *FAST], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "eval data: the layout given by" in done.stderr
    assert "CUDA_VISIBLE_DEVICES=0" in done.stdout and "CUDA_VISIBLE_DEVICES=1" in done.stdout
    question_count = len(read_questions(demo_eval_assets.textvqa_questions))
    for shard in range(2):  # each shard says what it answered, how, in how long
        answered = len(shard_range(question_count, 2, shard))
        assert re.search(rf"textvqa shard {shard}/2: {answered} answers \([0-9]+ images encoded\) in [0-9.]+ s "
                         r"\(batch 8, 8 images a pass\)\n",
                         done.stderr), done.stderr[-3000:]
    answers = [json.loads(line) for line in (results / "textvqa" / "bm1.jsonl").read_text().splitlines()]
    questions = read_questions(demo_eval_assets.textvqa_questions)
    assert [a["question_id"] for a in answers] == [q.question_id for q in questions]
    assert [a["prompt"] for a in answers] == [q.text for q in questions]
    assert {a["model_id"] for a in answers} == {DEMO_CHECKPOINT}
    assert (results / "textvqa" / "2_0.jsonl").is_file() and (results / "textvqa" / "2_1.jsonl").is_file()

    done = _run(["bash", MMBENCH_SH, DEMO_CHECKPOINT, MMBENCH_SPLIT, "0,1", *FAST], env)
    assert done.returncode == 0, done.stderr[-3000:]
    merged = results / "mmbench" / "answers" / MMBENCH_SPLIT / f"{DEMO_CHECKPOINT}.jsonl"
    rows = [json.loads(line) for line in merged.read_text().splitlines()]
    tsv = pd.read_csv(demo_eval_assets.mmbench_tsv, sep="\t")
    assert [r["question_id"] for r in rows] == tsv["index"].tolist()
    upload = pd.read_excel(results / "mmbench" / "answers_upload" / MMBENCH_SPLIT / f"{DEMO_CHECKPOINT}.xlsx")
    assert tuple(upload.columns) == UPLOAD_COLUMNS and len(upload) == len(tsv)

    done = _run([sys.executable, "-m", "bettersynth", "score", "run", results],
                {**env, "PYTHONPATH": str(REPO / "toolkit")})
    assert done.returncode == 0, done.stderr
    scores = json.loads((results / "scores.json").read_text())
    assert scores["textvqa"]["num_questions"] == len(questions)
    assert scores["mmbench"]["num_rows"] == len(tsv)
    assert "TextVQA  accuracy" in done.stdout


def test_failing_shard_stops_the_merge(demo_checkpoint, eval_data, tmp_path):
    output = tmp_path / "output"
    shutil.copytree(demo_checkpoint, output / "training_dirs" / DEMO_CHECKPOINT)
    env = _env(output, eval_data.root)
    # five questions, two shards: [0, 1, 2] and [3, 4]; question 3 alone uses img2.jpg
    (eval_data.textvqa_images / "img2.jpg").unlink()
    textvqa_dir = output / "eval_results" / DEMO_CHECKPOINT / "textvqa"
    textvqa_dir.mkdir(parents=True)
    (textvqa_dir / "bm1.jsonl").write_text('{"stale": "answers of an earlier run"}\n')
    done = _run(["bash", TEXTVQA_SH, DEMO_CHECKPOINT, "0,1", *FAST], env)
    assert done.returncode != 0
    assert "textvqa shard 1/2 (GPU 1) failed" in done.stderr
    assert "img2.jpg" in done.stderr and "not merging" in done.stderr
    assert not (textvqa_dir / "bm1.jsonl").exists()
    assert (textvqa_dir / "2_0.jsonl").is_file() and not (textvqa_dir / "2_1.jsonl").exists()


def test_failing_mmbench_shard(demo_checkpoint, eval_data, tmp_path):
    output = tmp_path / "output"
    shutil.copytree(demo_checkpoint, output / "training_dirs" / DEMO_CHECKPOINT)
    tsv = pd.read_csv(eval_data.mmbench_tsv, sep="\t")
    tsv.loc[tsv.index[-1], "image"] = "bm90IGFuIGltYWdl"  # base64 of "not an image", in the last shard
    tsv.to_csv(eval_data.mmbench_tsv, sep="\t", index=False)
    done = _run(["bash", MMBENCH_SH, DEMO_CHECKPOINT, MMBENCH_SPLIT, "0,1", *FAST], _env(output, eval_data.root))
    assert done.returncode != 0
    assert "mmbench shard 1/2 (GPU 1) failed" in done.stderr and "index 1000001" in done.stderr
    mmbench = output / "eval_results" / DEMO_CHECKPOINT / "mmbench"
    assert not (mmbench / "answers").exists() and not (mmbench / "answers_upload").exists()


def test_bad_arguments(tmp_path):
    done = _run(["bash", TEXTVQA_SH, "only-one-argument"], {**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 2 and "usage:" in done.stderr
