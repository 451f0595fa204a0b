"""``bsynth sweep``: each recipe runs once (for real, on the demo pool), then every recipe x seed run goes
through the job with its settings in an output tree of its own, reading the recipe's export through
a link; with ``gpus_per_run`` runs go at once on disjoint GPU sets with their own ports; a sweep
stopped by SIGTERM stops its runs and a second call resumes them; a failed run is reported while
the others go on (the exit status counts them); the report is written.

The job here is a stand-in script (the real main job runs in test_exp_sweep_demo.py): it logs its
settings and its start and end times, waits while a HOLD file exists, fails while a
``<EXP_NAME>.fail`` file exists, and records the run with ``bsynth runs record``, adding the finished
stages and scores a main job would leave unless a ``<EXP_NAME>.unscored`` file exists (exit status 0
without them is a failed run). The GPU ids are
given with --gpus: on this CPU machine they are only names, which is all the scheduler needs. The demo
assets are the session's (``recipe_demo``, tests/conftest.py), only read.

    python -m pytest tests/experiments/test_exp_sweep.py -q      (~65 s, 12 s of it the session's demo build)
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

from bettersynth.experiments.scheduler import Slot, SlotError, StateError, SweepState, plan_slots
from bettersynth.experiments.record import RecordError, sweep_dir
from bettersynth.experiments.report import GENERATOR_TAG
from bettersynth.experiments.sweep import run_sweep, write_sweep_report
from bettersynth.experiments.sweep_file import SweepError, load_sweep
from bettersynth.paths import AssetLayout
from experiment_helpers import TINY_RECIPE

REPO_ROOT = Path(__file__).resolve().parents[2]

STAND_IN_JOB = """#!/usr/bin/env bash
set -euo pipefail
start=$(date +%s.%N)
while [ -e "$HOLD" ]; do sleep 0.2; done
sleep 1
if [ -e "$FAIL_DIR/$EXP_NAME.fail" ]; then exit 3; fi
bsynth runs record "$EXP_NAME" --editable "SEED=$SEED" --editable "RECIPE=$RECIPE" \\
    --editable "PROXY_PRETRAIN_SAMPLES=$PROXY_PRETRAIN_SAMPLES" --editable "PRETRAIN_DATASET=$PRETRAIN_DATASET"
if [ ! -e "$FAIL_DIR/$EXP_NAME.unscored" ]; then  # what the main job's stages and evals would have left
    python3 -c 'import json, sys; path = sys.argv[1]; record = json.load(open(path))
record["stages"] = {stage: {"status": "finished", "log": []} for stage in ("pretrain", "finetune")}
record["scores"] = {"textvqa": {"accuracy": 0.5},
                    "mmbench": {"strict_circular_accuracy": 0.25, "extracted_circular_accuracy": 0.5}}
json.dump(record, open(path, "w"))' "$BSYNTH_OUTPUT/experiments/$EXP_NAME/run.json"
fi
echo "$EXP_NAME|$RECIPE|$SEED|$PROXY_PRETRAIN_SAMPLES|$PRETRAIN_DATASET|$BSYNTH_OUTPUT|$CUDA_VISIBLE_DEVICES|\\
$INFER_CUDA_IDX|$MASTER_PORT|$start|$(date +%s.%N)|$TORCHINDUCTOR_CACHE_DIR" >> "$SWEEP_CALLS"
"""
RUNS = ["t-cpu_prefilter-s1-p64", "t-cpu_prefilter-s2-p64", "t-words_only-s1-p64", "t-words_only-s2-p64"]


def environment(tmp_path: Path, output: Path, demo: AssetLayout, **extra: str) -> dict[str, str]:
    return dict(os.environ, BSYNTH_OUTPUT=str(output), BSYNTH_DEMO_ROOT=str(demo.root), BSYNTH_LAYOUT="demo",
                SWEEP_CALLS=str(tmp_path / "calls.txt"), FAIL_DIR=str(tmp_path), HOLD=str(tmp_path / "hold"),
                HF_HUB_OFFLINE="1", **extra)


def sweep_command(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "bettersynth", "sweep", str(tmp_path / "sweep.yaml"), "--job",
            str(tmp_path / "job.sh"), "--gpus", "0,1,2,3,4"]


def sweep(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_command(tmp_path), capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                          timeout=600)


def calls(tmp_path: Path) -> list[dict[str, str]]:
    keys = ["exp", "recipe", "seed", "proxy", "dataset", "output", "cuda", "infer", "port", "start", "end", "kernels"]
    return [dict(zip(keys, line.split("|"))) for line in (tmp_path / "calls.txt").read_text().splitlines()]


def statuses(folder: Path) -> dict[str, str]:
    return {name: run["status"] for name, run in json.loads((folder / "sweep.json").read_text())["runs"].items()}


def stop_while_two_run(tmp_path: Path, env: dict[str, str], folder: Path) -> tuple[int, str]:
    """Starts the sweep with HOLD in place; once two runs are running, sends it SIGTERM."""
    (tmp_path / "hold").write_text("")
    process = subprocess.Popen(sweep_command(tmp_path), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        state = folder / "sweep.json"
        if state.is_file() and list(statuses(folder).values()).count("running") == 2:
            break
        time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    (tmp_path / "hold").unlink()
    return process.returncode, output


def test_a_sweep_runs_in_parallel_on_disjoint_gpus_resumes_and_counts_failures(tmp_path, output, recipe_demo):
    (tmp_path / "job.sh").write_text(STAND_IN_JOB)
    (tmp_path / "words_only.yaml").write_text(TINY_RECIPE)
    (tmp_path / "sweep.yaml").write_text(f"name: t\nrecipes: [solution/recipes/cpu_prefilter.yaml, "
                                         f"{tmp_path / 'words_only.yaml'}]\nseeds: [1, 2]\n"
                                         "proxy_pretrain_samples: [64]\ngpus_per_run: 2\n")
    env = environment(tmp_path, output, recipe_demo)
    folder = output / "experiments" / "sweeps" / "t"

    # stopped while two runs are running: both are stopped, recorded as interrupted, nothing else ran
    status, said = stop_while_two_run(tmp_path, env, folder)
    assert status == 128 + signal.SIGTERM, said
    assert "INTERRUPTED by SIGTERM" in said
    assert statuses(folder) == {RUNS[0]: "interrupted", RUNS[1]: "interrupted"}
    assert not (tmp_path / "calls.txt").exists()
    exports = {stem: output / "processed_data" / f"t-{stem}.jsonl" for stem in ("cpu_prefilter", "words_only")}
    assert all(export.is_file() for export in exports.values())

    # resumed: the stopped runs start again, then the others, two at a time; one fails, the others go on
    (tmp_path / f"{RUNS[3]}.fail").write_text("")
    first = sweep(tmp_path, env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"[sweep] {RUNS[3]}: FAILED with exit status 3" in first.stdout
    assert "3 of 4 runs finished; failed: t-words_only-s2-p64; report " in first.stdout
    assert (folder / "report.html").is_file()
    for stem in exports:  # each recipe ran once: the second call found its export made from the same inputs
        log = (folder / f"recipe-{stem}.log").read_text()
        assert log.count("[recipe] running: ") == 1 and log.count("[recipe] skipped: ") == 1, log
    made = calls(tmp_path)
    assert sorted(call["exp"] for call in made) == RUNS[:3]
    for call in made:
        tree = folder / "runs" / call["exp"]
        stem = Path(call["recipe"]).stem
        assert call["output"] == str(tree)
        assert call["dataset"] == str(tree / "processed_data" / f"{stem}.jsonl")
        assert os.path.samefile(call["dataset"], exports[stem])  # the shared export, linked
        assert call["cuda"] in ("0,1", "2,3") and call["infer"] == call["cuda"]  # GPU 4 is left over
        assert call["port"] == {"0,1": "29500", "2,3": "29501"}[call["cuda"]]
        assert call["seed"] == call["exp"].split("-s")[1].split("-")[0] and call["proxy"] == "64"
        assert call["kernels"] == str(output / ".cache" / "torchinductor-node0")  # one compile cache for all runs
    overlapping = [(a, b) for i, a in enumerate(made) for b in made[i + 1:]
                   if float(a["start"]) < float(b["end"]) and float(b["start"]) < float(a["end"])]
    assert overlapping, "no two runs ran at the same time"
    assert all(a["cuda"] != b["cuda"] and a["port"] != b["port"] for a, b in overlapping)

    listed = subprocess.run([sys.executable, "-m", "bettersynth", "runs", "--json"], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert sorted(rows) == RUNS[:3]
    assert rows[RUNS[2]]["seed"] == 1 and rows[RUNS[2]]["proxy"] == 64

    # a job that exits 0 without scores failed; a finished run whose record is gone runs again
    (tmp_path / f"{RUNS[3]}.fail").unlink()
    (tmp_path / f"{RUNS[3]}.unscored").write_text("")
    record = folder / "runs" / RUNS[0] / "experiments" / RUNS[0] / "run.json"
    record.unlink()
    second = sweep(tmp_path, env)
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"[sweep] {RUNS[0]}: recorded finished, but its run record {record} does not exist: run again" \
        in second.stdout
    assert (f"[sweep] {RUNS[3]}: FAILED with exit status 0 after" in second.stdout
            and "shows the pretrain and finetune stage not finished" in second.stdout), second.stdout
    assert f"[sweep] {RUNS[1]}: finished earlier, skipped" in second.stdout
    assert statuses(folder) == {**dict.fromkeys(RUNS[:3], "finished"), RUNS[3]: "failed"}
    assert sorted(call["exp"] for call in calls(tmp_path)[3:]) == [RUNS[0], RUNS[3]]


def test_gpu_slots_are_disjoint_sets_with_their_own_ports():
    assert plan_slots(None, None, {}) == [Slot(0, None, None)]
    assert plan_slots(2, "0,1,2,3,4", {"MASTER_PORT": "30000"}) == [Slot(0, ("0", "1"), 30000),
                                                                   Slot(1, ("2", "3"), 30001)]
    assert plan_slots(1, None, {"CUDA_VISIBLE_DEVICES": "4,6"}) == [Slot(0, ("4",), 29500), Slot(1, ("6",), 29501)]
    assert Slot(1, ("2", "3"), 29501).environment() == {"CUDA_VISIBLE_DEVICES": "2,3", "INFER_CUDA_IDX": "2,3",
                                                        "MASTER_PORT": "29501"}
    with pytest.raises(SlotError, match=r"gpus_per_run is 3 but 2 GPU\(s\) are visible \(--gpus '0,1'\)"):
        plan_slots(3, "0,1", {})
    with pytest.raises(SlotError, match="names a GPU twice"):
        plan_slots(1, "0,0", {})
    with pytest.raises(SlotError, match="MASTER_PORT='65535' gives the runs at once the ports 65535 to 65536; they "
                                        "must lie from 1 to 65535"):
        plan_slots(1, "0,1", {"MASTER_PORT": "65535"})
    with pytest.raises(SlotError, match="MASTER_PORT='0' gives the runs at once the ports 0 to 0"):
        plan_slots(1, "0", {"MASTER_PORT": "0"})


def test_a_bad_sweep_file_is_refused_naming_the_field(tmp_path, output):
    path = tmp_path / "sweep.yaml"
    path.write_text("name: t\nrecipes: [solution/recipes/nope.yaml]\nseeds: [1]\n")
    done = subprocess.run([sys.executable, "-m", "bettersynth", "sweep", str(path)], capture_output=True, text=True,
                          cwd=REPO_ROOT)
    assert done.returncode == 2
    assert f"{path}: recipe solution/recipes/nope.yaml is not a file under {REPO_ROOT}" in done.stderr
    base = "name: t\nrecipes: [solution/recipes/cpu_prefilter.yaml]\nseeds: [1]\n"
    for extra, message in (("gpus_per_run: 0\n", "`gpus_per_run` must be a positive integer, got 0"),
                           ("env: {SEED: 3}\n", "`env` sets SEED, which the sweep sets for each run"),
                           ("gpus_per_run: 1\nenv: {INFER_CUDA_IDX: '0'}\n",
                            "`env` sets INFER_CUDA_IDX, which gpus_per_run sets for each run's GPUs")):
        path.write_text(base + extra)
        with pytest.raises(SweepError, match=message):
            load_sweep(path, REPO_ROOT)


def test_a_report_that_cannot_be_made_removes_the_earlier_one(tmp_path, output):
    """An earlier report.html shows an older set of runs; when the end-of-sweep report fails, it goes."""
    path = tmp_path / "sweep.yaml"
    path.write_text("name: t\nrecipes: [solution/recipes/cpu_prefilter.yaml]\nseeds: [1]\n")
    sweep = load_sweep(path, REPO_ROOT)
    state = SweepState(sweep_dir(output, "t") / "sweep.json", "t")
    state.set_run(sweep.runs()[0].name, status="finished")   # but its run record is gone
    page = sweep_dir(output, "t") / "report.html"
    page.write_text(f"<!DOCTYPE html><html><head>{GENERATOR_TAG}</head><body>an older report</body></html>\n")
    with pytest.raises(RecordError):
        write_sweep_report(sweep, state, output)
    assert not page.exists()
    page.write_text("<p>a page of the user's own</p>\n")   # not a report's page: left as it is
    with pytest.raises(RecordError):
        write_sweep_report(sweep, state, output)
    assert page.read_text() == "<p>a page of the user's own</p>\n"


def test_runs_left_running_by_a_killed_sweep_stop_the_next_sweep_from_starting_beside_them(tmp_path, output):
    path = tmp_path / "sweep.yaml"
    path.write_text("name: t\nrecipes: [solution/recipes/cpu_prefilter.yaml]\nseeds: [1, 2]\n")
    folder = output / "experiments" / "sweeps" / "t"
    left = subprocess.Popen(["sleep", "60"], process_group=0)  # a run's job, its sweep killed with -9
    ended = subprocess.Popen(["true"], process_group=0)
    ended.wait()
    try:
        state = SweepState(folder / "sweep.json", "t")
        state.set_run("t-cpu_prefilter-s1", status="running", process_group=left.pid)
        state.set_run("t-cpu_prefilter-s2", status="running", process_group=ended.pid)
        state.set_run("t-cpu_prefilter-s3", status="running", process_group=10**20)  # a state edited by hand
        assert SweepState(folder / "sweep.json", "t").left_running() == {"t-cpu_prefilter-s1": left.pid}
        with pytest.raises(StateError, match=rf"runs of an earlier sweep 't' are still running: "
                                             rf"t-cpu_prefilter-s1 \(process group {left.pid}\)"):
            run_sweep(load_sweep(path, REPO_ROOT), REPO_ROOT, output, REPO_ROOT / "train_mgm_2b_stage_1.sh", None)
    finally:
        left.kill()
        left.wait()
    assert SweepState(folder / "sweep.json", "t").left_running() == {}
