"""Disk space of a training stage (bettersynth.train.disk, checkpoint.save_checkpoint): a save that
runs out of space says "no space left on <path>", exits 1 and keeps the last good checkpoint,
from which a re-run resumes; the pre-check refuses a stage whose estimated writes exceed the free
space (the free-space query is passed in, not patched).

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_disk.py -q``.
"""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bettersynth.train.args import parse_args
from bettersynth.train.backend import PlainBackend
from bettersynth.train.checkpoint import (CHECKPOINT_MARKER, TrainerState, complete_checkpoints, latest_checkpoint,
                                          resume, save_checkpoint)
from bettersynth.train.disk import (MARGIN_BYTES, DiskSpaceError, check_stage_space, out_of_space, saves_left,
                                    stage_writes)
from bettersynth.train.distributed import DistInfo
from bettersynth.train.run import run

from train_helpers import stage_argv, write_subset

ONE_PROCESS = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
ENOSPC = OSError(errno.ENOSPC, "No space left on device")
IOSTREAM = RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0: "
                        "basic_ios::clear: iostream error")


class FillingBackend:
    """Saves one tensor file; from save number ``full_from`` on, the disk is full (``error`` is raised
    after part of the file was written)."""

    def __init__(self, full_from: int, error: BaseException):
        self.full_from, self.error, self.saves, self.value = full_from, error, 0, torch.zeros(3)

    def save(self, folder: Path) -> None:
        self.saves += 1
        self.value = self.value + 1
        if self.saves >= self.full_from:
            (folder / "weights.pt").write_bytes(b"half a tensor")
            raise self.error
        torch.save(self.value, folder / "weights.pt")

    def load(self, folder: Path) -> None:
        self.value = torch.load(folder / "weights.pt", weights_only=True)


def new_state(step: int) -> TrainerState:
    return TrainerState(stage="pretrain", max_steps=10, steps_per_epoch=10, global_batch=8,
                        loss_normalization="global_tokens", global_step=step)


def raised_from_enospc() -> RuntimeError:
    """A RuntimeError raised from the OSError it hit (``raise RuntimeError(...) from error``)."""
    error = RuntimeError("writing failed")
    error.__cause__ = ENOSPC
    return error


@pytest.mark.parametrize("error", [ENOSPC, IOSTREAM, raised_from_enospc()], ids=["ENOSPC", "iostream", "wrapped"])
def test_a_full_disk_during_a_save_keeps_the_last_good_checkpoint(tmp_path, error):
    backend = FillingBackend(full_from=2, error=error)
    first = save_checkpoint(tmp_path, new_state(5), backend, ONE_PROCESS, save_total_limit=1)
    with pytest.raises(DiskSpaceError) as raised:
        save_checkpoint(tmp_path, new_state(10), backend, ONE_PROCESS, save_total_limit=1)
    message = str(raised.value)
    assert message.startswith(f"no space left on {tmp_path / 'checkpoint-10'} (")
    assert f"the last good checkpoint, {first}, is kept and a re-run resumes from it" in message
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint-5"]  # no partial folder left
    assert complete_checkpoints(tmp_path) == [(5, first)] and latest_checkpoint(tmp_path) == first
    resumed = FillingBackend(full_from=99, error=error)
    state = resume(first, resumed, ONE_PROCESS, new_state(0))
    assert state.global_step == 5 and torch.equal(resumed.value, torch.ones(3))


def test_the_first_save_on_a_full_disk_says_no_checkpoint_is_left(tmp_path):
    with pytest.raises(DiskSpaceError, match="no earlier checkpoint exists, so a re-run starts the stage over"):
        save_checkpoint(tmp_path, new_state(5), FillingBackend(1, ENOSPC), ONE_PROCESS, save_total_limit=None)
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    assert out_of_space(ENOSPC) and out_of_space(IOSTREAM) and out_of_space(OSError(errno.EDQUOT, "quota"))
    assert not out_of_space(OSError(errno.EACCES, "Permission denied")) and not out_of_space(ValueError("x"))
    with pytest.raises(PermissionError):
        save_checkpoint(tmp_path, new_state(5), FillingBackend(1, PermissionError(errno.EACCES, "denied")),
                        ONE_PROCESS, save_total_limit=None)


def test_a_stage_that_runs_out_of_space_exits_1_and_resumes_from_the_last_checkpoint(
        demo_layout_for_tests, pretrain_records, tmp_path, monkeypatch):
    data = write_subset(pretrain_records[:16], tmp_path / "pretrain.json")
    out = tmp_path / "stage"
    argv = stage_argv(demo_layout_for_tests, data, out, "pretrain", "--save_steps", "1", "--save_total_limit", "1")
    real_save, saves = PlainBackend.save, []

    def save_until_full(backend, folder):
        saves.append(folder)
        if len(saves) == 2:
            raise IOSTREAM
        real_save(backend, folder)

    monkeypatch.setattr(PlainBackend, "save", save_until_full)  # the test's disk fills at the second save
    assert run(parse_args(argv)) == 1
    log = (out / "train.log").read_text()
    assert f"no space left on {out / 'checkpoint-2'}" in log and "basic_ios::clear: iostream error" in log
    assert [path.name for path in out.glob("*checkpoint-*")] == ["checkpoint-1"]
    assert (out / "checkpoint-1" / CHECKPOINT_MARKER).is_file()

    monkeypatch.setattr(PlainBackend, "save", real_save)
    assert run(parse_args(argv)) == 0
    log = (out / "train.log").read_text()
    assert f"resuming automatically from {out / 'checkpoint-1'} (step 1 of 4)" in log
    assert (out / "mm_projector.bin").is_file()


def tiny_args(**changes) -> SimpleNamespace:
    values = dict(stage="pretrain", save_strategy="steps", save_steps=1, save_total_limit=1, stop_after_steps=None)
    return SimpleNamespace(**{**values, **changes})


def tiny_model() -> nn.Module:
    """110 trainable fp32 parameters (440 bytes), 60 frozen ones (240 bytes), one 16-byte buffer."""
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(5, 10))
    model[1].requires_grad_(False)
    model.register_buffer("scale", torch.zeros(4))
    return model


def test_the_estimate_counts_checkpoints_optimizer_and_final_outputs():
    writes = stage_writes(tiny_model(), tiny_args(), global_step=0, max_steps=4, existing=0)
    # steps 1-3 save (not the last); limit 1: a new folder is complete before the old one goes
    assert (writes.checkpoint_bytes, writes.checkpoints, writes.final_bytes) == (440 + 12 * 110, 2, 440)
    assert writes.total_bytes == 2 * 1760 + 440 + int(0.05 * (2 * 1760 + 440)) + MARGIN_BYTES
    finetune = stage_writes(tiny_model(), tiny_args(stage="finetune"), global_step=2, max_steps=4, existing=1)
    assert (finetune.checkpoints, finetune.final_bytes) == (1, 440 + 240 + 16)
    unlimited = stage_writes(tiny_model(), tiny_args(save_total_limit=None, save_steps=2), 0, 10, 0)
    assert unlimited.checkpoints == 4  # steps 2, 4, 6, 8
    stopping = stage_writes(tiny_model(), tiny_args(stop_after_steps=2, save_strategy="no"), 0, 4, 0)
    assert (stopping.checkpoints, stopping.final_bytes) == (1, 0)
    assert saves_left(tiny_args(save_steps=5, stop_after_steps=3), 0, 100) == 1
    assert saves_left(tiny_args(save_steps=5, stop_after_steps=1), 7, 100) == 1  # stops after step 8


def test_the_pre_check_refuses_a_stage_that_does_not_fit(tmp_path):
    state = SimpleNamespace(global_step=0, max_steps=4)
    needed = stage_writes(tiny_model(), tiny_args(), 0, 4, 0).total_bytes
    asked = []

    def half_of_it(path: Path) -> int:
        asked.append(path)
        return needed // 2

    with pytest.raises(DiskSpaceError) as raised:
        check_stage_space(tmp_path, tiny_model(), tiny_args(), state, free_bytes=half_of_it)
    assert asked == [tmp_path]
    assert str(raised.value) == (
        f"not enough disk space for the pretrain stage in {tmp_path}: it will write about 256.0 MiB (2 new "
        "checkpoint(s) of 1.7 KiB, final outputs of 440 B, margin 256.0 MiB) and 128.0 MiB is free. Free some "
        "space, lower --save_total_limit, or give the stage another --output_dir.")
    fits = check_stage_space(tmp_path, tiny_model(), tiny_args(), state, free_bytes=lambda path: needed)
    assert fits.total_bytes == needed
