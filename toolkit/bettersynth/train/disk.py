"""Disk space of a training stage: checked before the stage starts, and a plain stop when a write fails.

    from bettersynth.train.disk import DiskSpaceError, check_stage_space
    check_stage_space(output_dir, model, args, state)   # run.py, before fit(); raises DiskSpaceError

What a stage will still write (``stage_writes``), measured on the built model after freezing:
- one checkpoint: the trainable weights at their dtype (bf16 under DeepSpeed on GPUs, fp32 otherwise)
  plus OPTIMIZER_BYTES = 12 bytes per trainable parameter: AdamW's two fp32 moments (8) and the
  fp32 master copy DeepSpeed keeps beside bf16 weights (4). The plain backend saves only the
  moments, so there the estimate is an upper bound. At the real size a finetune checkpoint is
  about 14 bytes x 2.5 B trainable parameters = 35 GB; a pretrain one about 0.4 GB.
- how many new checkpoints are on disk at once: a save writes a complete new folder before an old
  one is pruned (bettersynth.train.checkpoint), so --save_total_limit L means at most L + 1 folders
  (those already there count), and no limit means every save stays.
- the final outputs: pretrain, mm_projector.bin (the trainable weights); finetune, the whole model
  (every parameter and buffer at its dtype, as safetensors shards: about 5 GB in bf16).
- a margin of MARGIN_FRACTION (5%) plus MARGIN_BYTES (256 MiB) for logs, the trainer and RNG
  state, the tokenizer and file system blocks.
Free space is that of the output folder's file system (its nearest existing parent), read by
``free_bytes`` (shutil.disk_usage unless a caller passes another query, as the tests do).

A write that runs out of space, an OSError with ENOSPC or EDQUOT, or torch's RuntimeError around one
("basic_ios::clear: iostream error", "PytorchStreamWriter failed writing file", "file write
failed"), is recognised by ``out_of_space`` and reported as DiskSpaceError ("no space left on
<path> ...") by ``space_message``; checkpoint.py keeps the last good checkpoint when that happens.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

log = logging.getLogger(__name__)

OPTIMIZER_BYTES = 12
MARGIN_FRACTION = 0.05
MARGIN_BYTES = 256 * 2**20
SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# torch's C++ writers lose the errno: these are the texts they raise when a write to disk fails
TORCH_WRITE_FAILURES = ("basic_ios::clear", "iostream error", "PytorchStreamWriter failed writing file",
                        "file write failed", "No space left on device")


class DiskSpaceError(Exception):
    """The stage does not fit on the disk, or a write ran out of space (the message says which)."""


def human_size(size: float) -> str:
    """``size`` bytes as "12.3 GiB", "4.5 MiB", "6.7 KiB" or "89 B"."""
    for unit, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if size >= unit:
            return f"{size / unit:.1f} {name}"
    return f"{int(size)} B"


def free_space(path: Path) -> int:
    """Bytes free for this user on the file system that holds ``path`` (or would hold it)."""
    for folder in (path, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    raise FileNotFoundError(f"no existing folder above {path}")


def out_of_space(error: BaseException) -> bool:
    """True when ``error``, or an error it was raised from, is a write that ran out of disk space."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in SPACE_ERRNOS:
            return True
        if isinstance(error, RuntimeError) and any(text in str(error) for text in TORCH_WRITE_FAILURES):
            return True
        error = error.__cause__ or error.__context__
    return False


def space_message(path: Path, error: BaseException | None, kept: Path | None) -> str:
    """"no space left on <path>", with the free space, the original error and what was kept."""
    cause = f"the write failed with: {error}" if error is not None else "another process ran out of space"
    keeps = (f"the last good checkpoint, {kept}, is kept and a re-run resumes from it" if kept is not None
             else "no earlier checkpoint exists, so a re-run starts the stage over")
    return (f"no space left on {path} ({human_size(free_space(path))} free there; {cause}). Nothing of this save "
            f"was kept; {keeps}. Free some space, or give the stage another --output_dir, and run again.")


def tensor_bytes(tensors) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


@dataclass(frozen=True)
class StageWrites:
    """What a stage will still write: ``checkpoints`` new folders of ``checkpoint_bytes``, then
    ``final_bytes`` of outputs, plus the margin."""

    checkpoint_bytes: int
    checkpoints: int
    final_bytes: int

    @property
    def margin_bytes(self) -> int:
        return int(MARGIN_FRACTION * (self.checkpoints * self.checkpoint_bytes + self.final_bytes)) + MARGIN_BYTES

    @property
    def total_bytes(self) -> int:
        return self.checkpoints * self.checkpoint_bytes + self.final_bytes + self.margin_bytes

    def describe(self) -> str:
        return (f"{self.checkpoints} new checkpoint(s) of {human_size(self.checkpoint_bytes)}, final outputs of "
                f"{human_size(self.final_bytes)}, margin {human_size(self.margin_bytes)}")


def saves_left(args, global_step: int, max_steps: int) -> int:
    """Checkpoint saves the loop will still make: at every due step before the last one, and where
    --stop_after_steps stops it (the loop stops after at least one more step)."""
    stop = None if args.stop_after_steps is None else max(args.stop_after_steps, global_step + 1)
    end = max_steps if stop is None else min(stop + 1, max_steps)
    due = {step for step in range(global_step + 1, end)
           if args.save_strategy == "steps" and step % args.save_steps == 0}
    if stop is not None and stop < max_steps:
        due.add(stop)
    return len(due)


def stage_writes(model: nn.Module, args, global_step: int, max_steps: int, existing: int) -> StageWrites:
    """The estimate documented above, for a stage at ``global_step`` with ``existing`` complete
    checkpoints in its output folder."""
    trainable = [param for param in model.parameters() if param.requires_grad]
    weights = tensor_bytes(trainable)
    saves = saves_left(args, global_step, max_steps)
    if args.save_total_limit is None:
        new = saves
    else:
        new = max(0, min(existing + saves, args.save_total_limit + 1) - existing)
    final = 0
    if args.stop_after_steps is None or max(args.stop_after_steps, global_step + 1) >= max_steps:
        final = weights if args.stage == "pretrain" else tensor_bytes([*model.parameters(), *model.buffers()])
    return StageWrites(checkpoint_bytes=weights + OPTIMIZER_BYTES * sum(param.numel() for param in trainable),
                       checkpoints=new, final_bytes=final)


def check_stage_space(output_dir: Path, model: nn.Module, args, state,
                      free_bytes: Callable[[Path], int] = free_space) -> StageWrites:
    """Raises DiskSpaceError when what the stage will write from ``state`` on does not fit in the
    free space of ``output_dir``; returns the estimate otherwise."""
    from bettersynth.train.checkpoint import complete_checkpoints  # checkpoint.py imports this module

    writes = stage_writes(model, args, state.global_step, state.max_steps, len(complete_checkpoints(output_dir)))
    free = free_bytes(output_dir)
    if writes.total_bytes > free:
        raise DiskSpaceError(
            f"not enough disk space for the {args.stage} stage in {output_dir}: it will write about "
            f"{human_size(writes.total_bytes)} ({writes.describe()}) and {human_size(free)} is free. Free some space, "
            f"lower --save_total_limit, or give the stage another --output_dir.")
    log.info("disk: the %s stage will write about %s (%s); %s free in %s", args.stage, human_size(writes.total_bytes),
             writes.describe(), human_size(free), output_dir)
    return writes
