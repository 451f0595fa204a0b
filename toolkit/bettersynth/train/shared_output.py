"""Every training process must see one and the same output folder: checkpoints are written by all of
them (DeepSpeed's optimizer shards, each rank's RNG state) and resumed by all of them, so nodes that
each see a folder of their own would save half a checkpoint each and resume from different steps.

Before a stage touches its output folder, the first process writes a file with a fresh random name
in it, sends the name to every process over the process group, and each process waits up to
``--shared_output_wait`` seconds (network file systems show new files late) to see it. When any
process does not, every process stops with a message naming the hosts and ranks that did not; the
file is removed either way. One process: nothing to check. Called by run.py.

    check_shared_output(Path(args.output_dir), dist, args.shared_output_wait)   # NotSharedError
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import torch.distributed as torch_dist

from bettersynth.files import write_json_atomic
from bettersynth.train.distributed import DistInfo, barrier

TOKEN_PREFIX = ".bsynth-shared-check-"
POLL_S = 0.2


class NotSharedError(RuntimeError):
    """Some training processes do not see the output folder the first one writes to."""


def seen_within(path: Path, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while not path.is_file():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def check_shared_output(output_dir: Path, dist: DistInfo, wait_s: float) -> None:
    """Raises NotSharedError (on every process) unless all processes see the first one's file in ``output_dir``."""
    if not dist.distributed:
        return
    name = [f"{TOKEN_PREFIX}{uuid.uuid4().hex}" if dist.is_main else None]
    torch_dist.broadcast_object_list(name, src=0)
    token = output_dir / name[0]
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(token, {"host": socket.gethostname(), "pid": os.getpid()}, sort_keys=True)
    barrier()
    answers: list = [None] * dist.world_size
    torch_dist.all_gather_object(answers, (dist.rank, socket.gethostname(), seen_within(token, wait_s)))
    if dist.is_main:
        token.unlink()
    blind = [f"rank {rank} on {host}" for rank, host, seen in answers if not seen]
    if blind:
        raise NotSharedError(
            f"the output folder {output_dir} is not shared by every node: rank 0 on {answers[0][1]} wrote "
            f"{token.name} in it and {', '.join(blind)} did not see it within {wait_s:g} s. Checkpoints and "
            "resume need OUTPUT_DIR on storage that every node mounts at the same path (NFS, Lustre, ...): see "
            "README \"More than one machine\"")
