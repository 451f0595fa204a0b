"""toolkit/eval/side_by_side.sh, which the main job uses to answer TextVQA and MMBench at once on GPUs
with room for two evals: both commands run and are waited for, a failure of either is named and
fails the call, and a TERM to the caller stops both commands and every process they started.
The layout's decision (``EVAL_SIDE_BY_SIDE``) is checked against GPU sizes here too.

    python -m pytest tests/eval/test_side_by_side.py -q      (seconds)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from bettersynth.job_settings import evals_fit_side_by_side

SIDE_BY_SIDE = Path(__file__).resolve().parents[2] / "toolkit" / "eval" / "side_by_side.sh"


def script(body: str) -> list[str]:
    return ["bash", "-c", f"set -euo pipefail; source {SIDE_BY_SIDE}; {body}"]


def test_both_commands_run_at_once_and_both_are_waited_for(tmp_path):
    # each writes its mark, then waits (up to 10 s) for the other's: only both at once finish early
    def waiting_for(mark: str, other: str) -> str:
        return (f"bash -c 'touch {tmp_path}/{mark}; for i in $(seq 100); do [ -f {tmp_path}/{other} ] && exit 0; "
                "sleep 0.1; done; exit 7'")
    body = f"first=({waiting_for('a', 'b')}); second=({waiting_for('b', 'a')}); side_by_side first second; echo after"
    start = time.monotonic()
    done = subprocess.run(script(body), capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "after\n", "")
    assert time.monotonic() - start < 8


def test_a_failure_of_either_is_named_and_fails_the_call_after_both_ended(tmp_path):
    body = (f"first=(bash -c 'sleep 0.5; touch {tmp_path}/first_ended'); second=(bash -c 'exit 3'); "
            "side_by_side first second")
    done = subprocess.run(script(body), capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == "error: second failed with exit status 3\n"
    assert (tmp_path / "first_ended").exists()  # the other command was not cut short
    both = subprocess.run(script("a=(false); b=(bash -c 'exit 2'); side_by_side a b"), capture_output=True, text=True)
    assert both.returncode == 1
    assert both.stderr == "error: a failed with exit status 1\nerror: b failed with exit status 2\n"


def test_term_stops_both_commands_and_what_they_started(tmp_path):
    # each command starts a grandchild (as an eval script starts its shards) that records its pid
    body = (f"first=(bash -c 'sleep 60 & echo $! > {tmp_path}/first.pid; wait'); "
            f"second=(bash -c 'sleep 60 & echo $! > {tmp_path}/second.pid; wait'); side_by_side first second")
    caller = subprocess.Popen(script(body), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_files = [tmp_path / "first.pid", tmp_path / "second.pid"]
    deadline = time.monotonic() + 10
    while not all(path.exists() and path.read_text().strip() for path in pid_files) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchildren = [int(path.read_text()) for path in pid_files]
    caller.send_signal(signal.SIGTERM)
    _, stderr = caller.communicate(timeout=10)
    assert caller.returncode == 1
    assert "error: first failed with exit status 143" in stderr
    assert "error: second failed with exit status 143" in stderr
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in grandchildren) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in grandchildren)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has ended


def test_side_by_side_only_on_gpus_with_room_for_two_evals(monkeypatch, tmp_path):
    # two evals at 15 GiB each (14.0 held, measured at batch 32) within 90% of the card: an H200, an
    # 80 GB H100 (30 <= 71.3; the two held 28.1 GiB there side by side) and a 40 GB A100 (30 <= 35.5)...
    assert evals_fit_side_by_side(1, 139.8) and evals_fit_side_by_side(8, 79.2) and evals_fit_side_by_side(1, 39.4)
    # ...not a 32 GB card (30 > 28.8) nor anything smaller
    assert not evals_fit_side_by_side(1, 31.7) and not evals_fit_side_by_side(2, 23.6)
    assert not evals_fit_side_by_side(0, None)      # on CPU the two would share the cores
    monkeypatch.setenv("PATH", str(tmp_path))       # a system without setsid: one after another
    assert not evals_fit_side_by_side(1, 139.8)
