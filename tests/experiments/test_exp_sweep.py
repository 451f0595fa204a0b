"""``bsynth sweep``: every recipe x seed run goes through the job with its settings, the runs of a
recipe share its export, a failed run is reported while the others go on (the exit status counts
them), a second call skips what finished and retries what failed, and the report is written.

The job here is a stand-in script (the real one is the main job, run end to end by
tests/house/test_main_job.py): it logs its settings, records the run with ``bsynth runs record``
and fails while a ``<EXP_NAME>.fail`` file exists.

    python -m pytest tests/experiments/test_exp_sweep.py -q      (~30 s)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

STAND_IN_JOB = """#!/usr/bin/env bash
set -euo pipefail
echo "$EXP_NAME $RECIPE $SEED ${PROXY_PRETRAIN_SAMPLES:-none} $PRETRAIN_DATASET" >> "$SWEEP_CALLS"
if [ -e "$FAIL_DIR/$EXP_NAME.fail" ]; then exit 3; fi
bsynth runs record "$EXP_NAME" --editable "SEED=$SEED" --editable "RECIPE=$RECIPE" \\
    --editable "PROXY_PRETRAIN_SAMPLES=$PROXY_PRETRAIN_SAMPLES"
"""


def sweep(tmp_path: Path, output: Path):
    return subprocess.run([sys.executable, "-m", "bettersynth", "sweep", str(tmp_path / "sweep.yaml"),
                           "--job", str(tmp_path / "job.sh")], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=dict(os.environ, BSYNTH_OUTPUT=str(output), SWEEP_CALLS=str(tmp_path / "calls.txt"),
                                   FAIL_DIR=str(tmp_path)))


def test_a_sweep_runs_each_combination_reports_failures_and_resumes(tmp_path, output):
    (tmp_path / "job.sh").write_text(STAND_IN_JOB)
    (tmp_path / "sweep.yaml").write_text("name: t\nrecipes: [solution/recipes/clip_top_repeat.yaml, "
                                         "solution/recipes/cpu_prefilter.yaml]\nseeds: [1, 2]\n"
                                         "proxy_pretrain_samples: [64]\n")
    (tmp_path / "t-cpu_prefilter-s2-p64.fail").write_text("")
    first = sweep(tmp_path, output)
    assert first.returncode == 1, first.stdout + first.stderr
    export = {stem: output / "processed_data" / f"t-{stem}.jsonl" for stem in ("clip_top_repeat", "cpu_prefilter")}
    assert (tmp_path / "calls.txt").read_text().splitlines() == [
        f"t-clip_top_repeat-s1-p64 solution/recipes/clip_top_repeat.yaml 1 64 {export['clip_top_repeat']}",
        f"t-clip_top_repeat-s2-p64 solution/recipes/clip_top_repeat.yaml 2 64 {export['clip_top_repeat']}",
        f"t-cpu_prefilter-s1-p64 solution/recipes/cpu_prefilter.yaml 1 64 {export['cpu_prefilter']}",
        f"t-cpu_prefilter-s2-p64 solution/recipes/cpu_prefilter.yaml 2 64 {export['cpu_prefilter']}"]
    folder = output / "experiments" / "sweeps" / "t"
    assert "[sweep] t-cpu_prefilter-s2-p64: FAILED with exit status 3" in first.stdout
    assert "3 of 4 runs finished; failed: t-cpu_prefilter-s2-p64; report " in first.stdout
    assert (folder / "report.html").is_file()
    state = json.loads((folder / "sweep.json").read_text())
    assert {name: run["status"] for name, run in state["runs"].items()} == {
        "t-clip_top_repeat-s1-p64": "finished", "t-clip_top_repeat-s2-p64": "finished",
        "t-cpu_prefilter-s1-p64": "finished", "t-cpu_prefilter-s2-p64": "failed"}
    record = json.loads((output / "experiments" / "t-clip_top_repeat-s2-p64" / "run.json").read_text())
    assert record["seed"] == 2 and record["proxy_pretrain_samples"] == 64

    (tmp_path / "t-cpu_prefilter-s2-p64.fail").unlink()
    second = sweep(tmp_path, output)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("finished earlier, skipped") == 3
    assert (tmp_path / "calls.txt").read_text().splitlines()[4:] == [
        f"t-cpu_prefilter-s2-p64 solution/recipes/cpu_prefilter.yaml 2 64 {export['cpu_prefilter']}"]
    assert "4 of 4 runs finished; report " in second.stdout


def test_a_bad_sweep_file_is_refused_naming_the_field(tmp_path, output):
    (tmp_path / "job.sh").write_text(STAND_IN_JOB)
    (tmp_path / "sweep.yaml").write_text("name: t\nrecipes: [solution/recipes/nope.yaml]\nseeds: [1]\n")
    done = sweep(tmp_path, output)
    assert done.returncode == 2
    expected = f"{tmp_path / 'sweep.yaml'}: recipe solution/recipes/nope.yaml is not a file under {REPO_ROOT}"
    assert expected in done.stderr
