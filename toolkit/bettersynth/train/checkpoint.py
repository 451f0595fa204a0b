"""Resumable state on disk: checkpoint folders, their completion markers, RNG, the trainer state.

Layout of OUTPUT_DIR::

    checkpoint-<step>/               trainable weights + optimizer + schedule (backend.save),
                                     rng_state_<rank>.pt, trainer_state.json, and last of all
                                     checkpoint_complete.json (a folder without it is ignored)
    .checkpoint-<step>.partial/      a save in progress: renamed to checkpoint-<step> only when every
                                     process wrote its part; older checkpoints are pruned after that
    training_complete.json           written after the stage's final outputs: the stage is done

A save that runs out of disk space (bettersynth.train.disk.out_of_space) removes its partial folder
and raises DiskSpaceError ("no space left on ...") on every process: the earlier checkpoints are
as they were, so a re-run resumes from the last good one. A checkpoint marked complete whose files
cannot be read back (missing, cut, not JSON) stops the resume with a CheckpointError naming it.

The data position needs no file of its own: the sampler's order depends only on the seed and the
epoch, and ``TrainerState.global_step`` says how many global batches were consumed. Used by the
loop (save) and run.py (find and resume, finished-stage check, overwrite).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bettersynth.files import write_json_atomic
from bettersynth.train.folders import CHECKPOINT_MARKER, CHECKPOINT_PATTERN, FINAL_MARKER, STATE_FILE
from bettersynth.train.disk import DiskSpaceError, out_of_space, space_message
from bettersynth.train.distributed import DistInfo, all_reduce_sum, barrier

log = logging.getLogger(__name__)

# What reading back a damaged checkpoint file raises: a missing file (OSError), text that is not UTF-8
# or JSON (ValueError), fields this version does not know (TypeError), a cut or foreign torch file
# (RuntimeError, UnpicklingError, EOFError).
DAMAGED_FILE_ERRORS = (OSError, ValueError, TypeError, KeyError, RuntimeError, pickle.UnpicklingError, EOFError)


class CheckpointError(ValueError):
    """A checkpoint marked complete whose files cannot be read back; the message names its folder."""


TOTAL_KEYS = ("samples", "supervised_tokens", "input_tokens", "skipped_samples", "mismatched_samples",
              "truncated_samples")


@dataclass
class TrainerState:
    """Progress of a stage, saved in every checkpoint and next to the final outputs."""

    stage: str
    max_steps: int
    steps_per_epoch: int
    global_batch: int
    loss_normalization: str
    global_step: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=lambda: {key: 0 for key in TOTAL_KEYS})
    skipped_ids: list[str] = field(default_factory=list)
    # [start, end] in Unix seconds of each run that trained this state (a resumed stage has several);
    # this run's end is the time of the latest save
    made_during: list[list[float]] = field(default_factory=list)

    @property
    def epoch(self) -> float:
        return self.global_step / self.steps_per_epoch

    def begin_run(self, started: float) -> None:
        """Counts this run, started at ``started``, in ``made_during``."""
        self.made_during.append([started, started])

    def save(self, path: Path) -> None:
        """Writes the state as of now (this run's interval ends now)."""
        if self.made_during:
            self.made_during[-1][1] = time.time()
        write_json_atomic(path, {**asdict(self), "epoch": self.epoch}, sort_keys=True)

    @classmethod
    def load(cls, path: Path) -> TrainerState:
        payload = json.loads(path.read_text(encoding="utf-8"))
        payload.pop("epoch", None)
        return cls(**payload)

    def check_compatible(self, other: TrainerState, source: Path) -> None:
        """A resumed run must have the schedule and global batch the checkpoint was made with."""
        for name in ("stage", "max_steps", "steps_per_epoch", "global_batch", "loss_normalization"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(f"{source} was made with {name}={getattr(self, name)!r} but this run has "
                                 f"{getattr(other, name)!r}; resume with the same settings or pass "
                                 "--overwrite_output_dir True to start over")


def checkpoint_folder(output_dir: Path, step: int) -> Path:
    return output_dir / f"checkpoint-{step}"


def complete_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint with its completion marker, oldest first."""
    found = []
    if output_dir.is_dir():
        for folder in output_dir.iterdir():
            match = CHECKPOINT_PATTERN.match(folder.name)
            if match and folder.is_dir() and (folder / CHECKPOINT_MARKER).is_file():
                found.append((int(match.group(1)), folder))
    return sorted(found)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = complete_checkpoints(output_dir)
    return found[-1][1] if found else None


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def partial_folder(folder: Path) -> Path:
    """Where the save of ``folder`` is written until it is complete (hidden, never resumed from)."""
    return folder.with_name(f".{folder.name}.partial")


def write_parts(partial: Path, state: TrainerState, backend, dist: DistInfo) -> BaseException | None:
    """This process's files of a checkpoint (the main process also writes the trainer state and the
    marker: the folder gets its final name only after every process is done). Returns the error of
    a write that ran out of disk space, None when all went well; other errors are raised."""
    try:
        backend.save(partial)
        torch.save(rng_state(), partial / f"rng_state_{dist.rank}.pt")
        if dist.is_main:
            state.save(partial / STATE_FILE)
            write_json_atomic(partial / CHECKPOINT_MARKER, {"step": state.global_step, "time": time.time()},
                              sort_keys=True)
    except (OSError, RuntimeError) as error:
        if not out_of_space(error):
            raise
        return error
    return None


def prune(output_dir: Path, save_total_limit: int | None) -> None:
    """Removes the checkpoints beyond --save_total_limit (oldest first) and what interrupted saves left."""
    if save_total_limit is not None:
        for _, old in complete_checkpoints(output_dir)[:-save_total_limit]:
            shutil.rmtree(old)
            log.info("removed old checkpoint %s (--save_total_limit %d)", old, save_total_limit)
    for stale in output_dir.glob("checkpoint-*"):
        if CHECKPOINT_PATTERN.match(stale.name) and not (stale / CHECKPOINT_MARKER).is_file():
            shutil.rmtree(stale)
            log.info("removed incomplete checkpoint %s (left by an interrupted save)", stale)
    for stale in output_dir.glob(".checkpoint-*.partial"):
        shutil.rmtree(stale)
        log.info("removed %s (left by an interrupted save)", stale)


def save_checkpoint(output_dir: Path, state: TrainerState, backend, dist: DistInfo,
                    save_total_limit: int | None) -> Path:
    """Writes checkpoint-<step> from every process by way of its partial folder, then prunes old ones."""
    folder = checkpoint_folder(output_dir, state.global_step)
    partial = partial_folder(folder)
    if dist.is_main:
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
    barrier()
    failure = write_parts(partial, state, backend, dist)
    (failed,) = all_reduce_sum([float(failure is not None)], dist.device)
    if failed:
        if dist.is_main:
            shutil.rmtree(partial, ignore_errors=True)
        barrier()
        raise DiskSpaceError(space_message(folder, failure, latest_checkpoint(output_dir)))
    if dist.is_main:
        if folder.exists():  # an incomplete folder of this step, left by an interrupted save
            shutil.rmtree(folder)
        os.replace(partial, folder)
        log.info("saved checkpoint %s", folder)
        prune(output_dir, save_total_limit)
    barrier()
    return folder


def damaged(folder: Path, error: BaseException) -> CheckpointError:
    """The error of a checkpoint folder whose files cannot be read back, with the ways on."""
    return CheckpointError(f"{folder} cannot be resumed ({type(error).__name__}: {error}); delete that folder to "
                           "resume from the checkpoint before it, or pass --overwrite_output_dir True to start over")


def resume(folder: Path, backend, dist: DistInfo, expected: TrainerState) -> TrainerState:
    """Loads weights, optimizer, schedule and RNG from ``folder``; returns its trainer state.
    CheckpointError naming the folder when one of its files is missing or damaged."""
    try:
        state = TrainerState.load(folder / STATE_FILE)
    except DAMAGED_FILE_ERRORS as error:
        raise damaged(folder, error) from error
    state.check_compatible(expected, folder)
    rng_file = folder / f"rng_state_{dist.rank}.pt"
    try:
        backend.load(folder)
        if rng_file.is_file():
            restore_rng(torch.load(rng_file, weights_only=False))
    except torch.distributed.DistError:  # a peer or the network failed, not the files: never "delete it"
        raise
    except DAMAGED_FILE_ERRORS as error:
        raise damaged(folder, error) from error
    if not rng_file.is_file():
        log.warning("%s has no RNG state for rank %d (the number of processes changed); random streams "
                    "(the aux tower's drop path) will differ from an uninterrupted run", folder, dist.rank)
    return state


def discard_previous_run(output_dir: Path) -> None:
    """--overwrite_output_dir: removes the checkpoints and the completion marker (nothing else)."""
    (output_dir / FINAL_MARKER).unlink(missing_ok=True)
    for folder in output_dir.glob("checkpoint-*"):
        if CHECKPOINT_PATTERN.match(folder.name) and folder.is_dir():
            shutil.rmtree(folder)
            log.info("removed %s (--overwrite_output_dir)", folder)
