"""One writer per output tree (bettersynth.lock): a second job stops naming the holder; a dead
holder's lock is taken over with a message; the main job's shell holds it through its children.

    python -m pytest tests/core/test_lock.py -q      (seconds)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bettersynth.lock import LOCK_NAME, OutputLockError, output_lock


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    tree = tmp_path / "output"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from bettersynth.lock import output_lock\n"
        f"with output_lock({str(tree)!r}, 'first job'):\n"
        "    print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockError) as refused:
            with output_lock(tree, "second job"):
                pass
        assert f"{tree.resolve()} is in use by PID {holder.pid} (first job, started " in str(refused.value)
        assert "BSYNTH_OUTPUT" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is taken over, with a message
    assert json.loads((tree / LOCK_NAME).read_text())["pid"] == holder.pid
    taker = subprocess.run([sys.executable, "-c", (
        "from bettersynth.lock import output_lock\n"
        f"with output_lock({str(tree)!r}, 'third job'): pass")], capture_output=True, text=True)
    assert taker.returncode == 0
    assert f"taking over the lock of {tree.resolve()} from PID {holder.pid} (first job" in taker.stdout
    assert "which is no longer running" in taker.stdout
    assert (tree / LOCK_NAME).read_text() == ""  # released cleanly: nothing for the next one to take over


def test_a_shell_holds_the_lock_through_a_descriptor_and_its_children_write(tmp_path):
    tree = tmp_path / "output"
    tree.mkdir()
    script = (f'exec 9<>"{tree}/{LOCK_NAME}"\n'
              f'bsynth lock take --fd 9 --pid $$ --holder "main job" --tree "{tree}"\n'
              f'export BSYNTH_LOCK_HELD="{tree}"\n'
              f'{sys.executable} -c "from bettersynth.lock import output_lock\n'
              f'with output_lock(\'{tree}\', \'child\'): print(\'child wrote\', flush=True)"\n'
              'echo ready; sleep 60\n')
    shell = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert shell.stdout.readline().strip() == "child wrote"
        assert shell.stdout.readline().strip() == "ready"
        second = subprocess.run(["bsynth", "lock", "take", "--fd", "0", "--pid", "1", "--holder", "x",
                                 "--tree", str(tree)], stdin=open(tree / LOCK_NAME), capture_output=True, text=True)
        assert second.returncode == 1
        assert f"is in use by PID {shell.pid} (main job, started" in second.stdout
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
    time.sleep(0.2)
    with output_lock(tree, "after the main job"):
        pass


def test_writer_commands_stop_while_another_job_holds_the_tree(tmp_path):
    tree = tmp_path / "output"
    source = tmp_path / "pool.jsonl"
    source.write_text('{"id": "a", "text": "x", "images": []}\n')
    env = dict(os.environ, BSYNTH_OUTPUT=str(tree))
    env.pop("BSYNTH_LOCK_HELD", None)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from bettersynth.lock import output_lock\n"
        f"with output_lock({str(tree)!r}, 'bash train_mgm_2b_stage_1.sh'):\n"
        "    print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        inside = subprocess.run(["bsynth", "sample", str(source), str(tree / "capped.jsonl"), "5"],
                                capture_output=True, text=True, env=env, cwd=tmp_path)
        assert inside.returncode == 1
        assert f"is in use by PID {holder.pid} (bash train_mgm_2b_stage_1.sh" in inside.stderr
        assert not (tree / "capped.jsonl").exists()
        outside = subprocess.run(["bsynth", "sample", str(source), str(tmp_path / "capped.jsonl"), "5"],
                                 capture_output=True, text=True, env=env, cwd=tmp_path)
        assert outside.returncode == 0, outside.stderr  # writing elsewhere needs no lock
    finally:
        holder.kill()
        holder.wait()
