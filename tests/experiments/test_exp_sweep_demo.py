"""A real sweep on the demo: 2 recipes x 2 seeds at a proxy budget of 16 pretraining samples through
the real main job (train_mgm_2b_stage_1.sh), two runs at a time (``gpus_per_run: 1`` over the GPU
names 0 and 1: on this CPU machine each run trains on the CPU). The sweep is stopped with SIGTERM once
a run's finetuning has saved a checkpoint and started again: the stopped runs resume (finished steps
skipped, finetuning from its checkpoint), every run finishes, each recipe ran once, and the runs
table and the report hold all four runs with their losses and scores. The demo assets are the
session's (``recipe_demo``, tests/conftest.py), only read.

Slow (5 min 31 s on 2 cores, 15 s of it the session's demo build: four demo jobs, each with one
thread); CI runs it.

    python -m pytest tests/experiments/test_exp_sweep_demo.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiment_helpers import TINY_RECIPE

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNS = ["d-cpu_prefilter-s1-p16", "d-cpu_prefilter-s2-p16", "d-words_only-s1-p16", "d-words_only-s2-p16"]

pytestmark = pytest.mark.slow


def checkpointed_running_runs(folder: Path) -> list[str]:
    """The runs the sweep has running whose finetuning has saved a checkpoint."""
    state = folder / "sweep.json"
    runs = json.loads(state.read_text())["runs"] if state.is_file() else {}
    return [name for name, run in runs.items() if run["status"] == "running"
            and list((folder / "runs" / name / "training_dirs" / f"MGM-2B-Finetune-{name}").glob("checkpoint-*"))]


def stop_once_finetuning_saved_a_checkpoint(command: list[str], env: dict[str, str], folder: Path) -> list[str]:
    """Starts the sweep and stops it with SIGTERM once a running run's finetuning has a checkpoint; returns
    those runs."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline, checkpointed = time.monotonic() + 1800, []
    while time.monotonic() < deadline and process.poll() is None and not checkpointed:
        time.sleep(1)
        checkpointed = checkpointed_running_runs(folder)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM and checkpointed, output[-3000:]
    return checkpointed


def test_a_sweep_of_two_recipes_and_two_seeds_runs_the_main_job_and_resumes(tmp_path, recipe_demo):
    (tmp_path / "words_only.yaml").write_text(TINY_RECIPE)
    (tmp_path / "sweep.yaml").write_text(f"name: d\nrecipes: [solution/recipes/cpu_prefilter.yaml, "
                                         f"{tmp_path / 'words_only.yaml'}]\nseeds: [1, 2]\n"
                                         "proxy_pretrain_samples: [16]\ngpus_per_run: 1\n")
    output = tmp_path / "output"
    env = dict(os.environ, BSYNTH_OUTPUT=str(output), BSYNTH_DEMO_ROOT=str(recipe_demo.root), BSYNTH_LAYOUT="demo",
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")  # two jobs at once on 2 cores
    command = [sys.executable, "-m", "bettersynth", "sweep", str(tmp_path / "sweep.yaml"), "--gpus", "0,1"]
    folder = output / "experiments" / "sweeps" / "d"

    checkpointed = stop_once_finetuning_saved_a_checkpoint(command, env, folder)
    state = json.loads((folder / "sweep.json").read_text())["runs"]
    assert all(state[name]["status"] == "interrupted" for name in checkpointed)

    resumed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "4 of 4 runs finished; report " in resumed.stdout
    assert (folder / "report.html").is_file()
    for stem in ("cpu_prefilter", "words_only"):
        log = (folder / f"recipe-{stem}.log").read_text()
        assert log.count("[recipe] running: ") == 1 and log.count("[recipe] skipped: ") == 1, log[-3000:]
    logs = {name: (folder / f"{name}.log").read_text() for name in RUNS}
    for name, log in logs.items():  # inside a run, its recipe is the shared export, made from the same inputs
        assert "[recipe] skipped: " in log and "Training and inference done." in log, log[-3000:]
    for name in checkpointed:  # started again: the data steps are skipped, finetuning resumes
        assert "[skip] validate: " in logs[name] and "[skip] convert: " in logs[name], logs[name][-3000:]
        assert "resuming automatically from" in logs[name], logs[name][-3000:]

    listed = subprocess.run([sys.executable, "-m", "bettersynth", "runs", "--json"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert sorted(rows) == RUNS
    for name, row in rows.items():
        assert row["recipe"] == name.split("-")[1] + ".yaml" and row["proxy"] == 16
        assert row["seed"] == int(name.split("-s")[1].split("-")[0])
        assert row["pretrain_loss"] is not None and row["finetune_loss"] is not None
        assert row["textvqa"] is not None and row["mmbench_strict"] is not None
    # two seeds of one recipe: another proxy subset and another training
    assert rows[RUNS[0]]["pretrain_loss"] != rows[RUNS[1]]["pretrain_loss"]
