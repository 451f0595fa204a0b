"""Kill and resume: a stage stopped after step k (in a separate process, through the CLI) and run
again resumes from its checkpoint and ends with exactly the weights, losses and learning rates of
an uninterrupted run, with the aux tower's drop path on (so the RNG state must be restored too).

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_resume.py -q``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from bettersynth.provenance import read_record
from bettersynth.train.checkpoint import CHECKPOINT_MARKER, FINAL_MARKER

from train_helpers import run_in_process, stage_argv, write_subset


def test_pretrain_stopped_after_two_steps_resumes_to_the_same_weights(demo_layout_for_tests, pretrain_records,
                                                                      tmp_path, capsys):
    data = write_subset(pretrain_records[:16], tmp_path / "pretrain.json")
    common = ["--save_steps", "1", "--save_total_limit", "1"]
    straight = run_in_process(stage_argv(demo_layout_for_tests, data, tmp_path / "straight", "pretrain", *common))
    assert straight.state.global_step == 4

    out = tmp_path / "interrupted"
    argv = stage_argv(demo_layout_for_tests, data, out, "pretrain", *common)
    stopped = subprocess.run([sys.executable, "-m", "bettersynth.train", *argv, "--stop_after_steps", "2"],
                             capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert stopped.returncode == 0, stopped.stdout[-3000:] + stopped.stderr[-3000:]
    assert "stopped after step 2" in stopped.stdout
    assert sorted(path.name for path in out.glob("checkpoint-*")) == ["checkpoint-2"]  # limit 1
    assert (out / "checkpoint-2" / CHECKPOINT_MARKER).is_file()
    assert not (out / FINAL_MARKER).exists() and not (out / "mm_projector.bin").exists()
    assert "step 2/4" in (out / "train.log").read_text()

    (out / "checkpoint-3").mkdir()  # a save cut off by the kill: no marker, so never resumed from
    (out / "checkpoint-3" / "trainable.pt").write_bytes(b"partial")
    capsys.readouterr()
    resumed = run_in_process(argv)
    assert f"resuming automatically from {out / 'checkpoint-2'} (step 2 of 4)" in capsys.readouterr().out
    assert resumed.status == "finished" and resumed.state.global_step == 4
    first = torch.load(tmp_path / "straight" / "mm_projector.bin", weights_only=True)
    second = torch.load(out / "mm_projector.bin", weights_only=True)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert [(e["step"], e["loss"], e["learning_rate"]) for e in straight.state.log_history] == \
           [(e["step"], e["loss"], e["learning_rate"]) for e in resumed.state.log_history]
    # the stage's record says when it was trained: the stopped run (from its process's start to its
    # checkpoint), then the resumed one (to the final outputs)
    stopped_run, resumed_run = read_record(out)["made_during"]
    assert stopped_run[0] < stopped_run[1] <= resumed_run[0] < resumed_run[1]
    assert len(read_record(tmp_path / "straight")["made_during"]) == 1


def test_finetune_resume_restores_llm_optimizer_and_grouped_order(demo_layout_for_tests, finetune_records, tmp_path):
    data = write_subset(finetune_records[:12], tmp_path / "finetune.json")
    straight = run_in_process(stage_argv(demo_layout_for_tests, data, tmp_path / "straight", "finetune"))
    assert straight.state.global_step == 3
    argv = stage_argv(demo_layout_for_tests, data, tmp_path / "resumed", "finetune")
    assert run_in_process(argv + ["--stop_after_steps", "1"]).status == "stopped"
    resumed = run_in_process(argv)
    expected = dict(straight.model.named_parameters())
    for name, param in resumed.model.named_parameters():
        assert torch.equal(param, expected[name]), name


@pytest.mark.parametrize("name, damage", [
    ("trainer_state.json", b'{"stage": "pre'),   # cut
    ("trainable.pt", b"PK\x03\x04 cut"),         # a torch file cut short
    ("rng_state_0.pt", b"garbage"),
])
def test_a_damaged_checkpoint_is_named_not_a_traceback(demo_layout_for_tests, pretrain_records, tmp_path, name,
                                                       damage):
    from bettersynth.train.args import parse_args
    from bettersynth.train.run import run

    data = write_subset(pretrain_records[:8], tmp_path / "pretrain.json")
    out = tmp_path / "out"
    argv = stage_argv(demo_layout_for_tests, data, out, "pretrain", "--save_steps", "1")
    assert run_in_process([*argv, "--stop_after_steps", "1"]).status == "stopped"
    (out / "checkpoint-1" / name).write_bytes(damage)
    assert run(parse_args(argv)) == 1
    log = (out / "train.log").read_text()
    assert f"{out / 'checkpoint-1'} cannot be resumed (" in log and "--overwrite_output_dir True" in log
    assert "Traceback" not in log and not (out / FINAL_MARKER).exists()


class PeerLost:
    """A backend whose load fails as a lost peer does (the network, not the checkpoint's files)."""

    def load(self, folder):
        raise torch.distributed.DistBackendError(f"NCCL error while loading {folder}: remote process exited")


def test_a_failure_of_a_peer_while_resuming_is_not_called_a_damaged_checkpoint(demo_layout_for_tests,
                                                                                  pretrain_records, tmp_path):
    from bettersynth.train.checkpoint import STATE_FILE, TrainerState, resume
    from bettersynth.train.distributed import DistInfo

    data = write_subset(pretrain_records[:8], tmp_path / "pretrain.json")
    out = tmp_path / "out"
    argv = stage_argv(demo_layout_for_tests, data, out, "pretrain", "--save_steps", "1")
    assert run_in_process([*argv, "--stop_after_steps", "1"]).status == "stopped"
    folder = out / "checkpoint-1"
    with pytest.raises(torch.distributed.DistBackendError):  # not "delete that folder": its files are fine
        resume(folder, PeerLost(), DistInfo(0, 0, 1, torch.device("cpu")), TrainerState.load(folder / STATE_FILE))
