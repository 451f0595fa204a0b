"""Two CPU processes (torchrun, gloo, DDP) give the same finetune weights as one process with the
same global batch (2 processes x 2 per device x 2 accumulation == 1 x 2 x 4), with global-token
loss normalisation. Drop path is off: each process has its own RNG stream.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_distributed.py -q`` (about a minute).
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from train_helpers import stage_argv, write_subset


def launch(command: list[str]) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_two_processes_equal_one_process(demo_layout_for_tests, finetune_records, tmp_path):
    data = write_subset(finetune_records[:16], tmp_path / "finetune.json")
    extra = ["--aux_drop_path_in_training", "False", "--learning_rate", "1e-3"]
    one = stage_argv(demo_layout_for_tests, data, tmp_path / "one", "finetune", *extra, per_device=2, accumulation=4)
    two = stage_argv(demo_layout_for_tests, data, tmp_path / "two", "finetune", *extra, per_device=2, accumulation=2)
    launch([sys.executable, "-m", "bettersynth.train", *one])
    launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
            "-m", "bettersynth.train", *two])
    log = (tmp_path / "two" / "train.log").read_text()
    assert "global batch 8 (2 processes x 2 accumulation x 2 per device)" in log and "DDP" in log
    first = load_file(tmp_path / "one" / "model.safetensors")
    second = load_file(tmp_path / "two" / "model.safetensors")
    assert first.keys() == second.keys()
    start = load_file(demo_layout_for_tests.llm_dir / "model.safetensors")
    moved = 0
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=1e-5, atol=1e-6, msg=key)
        short = key.removeprefix("llm.")
        if short in start and not torch.equal(start[short], first[key]):
            moved += 1
    assert moved > 0  # the LLM did train
