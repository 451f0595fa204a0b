"""Before a stage of a several-process job touches its output folder, every process checks that it
agrees with the first one: the same training arguments, and one and the same output folder.

Arguments: nodes that resolved another layout (node 1 without the real models picks the demo),
another data file or another batch split would train a different job; every argument but the
process's own (``--local_rank``) and the output folder's path must equal rank 0's.
Output folder: checkpoints are written by every process (DeepSpeed's optimizer shards, each rank's
RNG state) and resumed by every process, so nodes that each see a folder of their own would save
half a checkpoint each and resume from different steps. Rank 0 writes a file with a fresh random
name in the folder and sends the name (with its arguments) to every process over the process
group; each process waits up to ``--shared_output_wait`` seconds (network file systems show new
files late) to see it; the file is removed afterwards.

When any process disagrees, every process stops with one message naming the ranks, hosts and
arguments concerned (both problems where both apply). One process: nothing to check. Called by run.py.

    check_nodes_agree(args, dist)      # NodesDisagreeError
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import torch.distributed as torch_dist

from bettersynth.files import write_json_atomic
from bettersynth.train.args import TrainArgs
from bettersynth.train.distributed import DistInfo, barrier

TOKEN_PREFIX = ".bsynth-shared-check-"
POLL_S = 0.2
OWN_ARGUMENTS = ("local_rank", "output_dir")  # may differ between processes (the folder is checked by a file)


class NodesDisagreeError(RuntimeError):
    """Some training processes have other arguments than rank 0, or do not see its output folder."""


def seen_within(path: Path, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while not path.is_file():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def shared_arguments(args: TrainArgs) -> dict:
    return {key: value for key, value in args.to_dict().items() if key not in OWN_ARGUMENTS}


def check_nodes_agree(args: TrainArgs, dist: DistInfo) -> None:
    """Raises NodesDisagreeError on every process unless all agree with rank 0 (see the module docstring)."""
    if not dist.distributed:
        return
    output_dir = Path(args.output_dir)
    mine = shared_arguments(args)
    sent = [(f"{TOKEN_PREFIX}{uuid.uuid4().hex}", mine) if dist.is_main else None]
    torch_dist.broadcast_object_list(sent, src=0)
    name, first = sent[0]
    differing = {key: mine.get(key) for key in sorted(set(first) | set(mine)) if first.get(key) != mine.get(key)}
    token = output_dir / name
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(token, {"host": socket.gethostname(), "pid": os.getpid()}, sort_keys=True)
    barrier()
    answers: list = [None] * dist.world_size
    torch_dist.all_gather_object(answers, (dist.rank, socket.gethostname(), seen_within(token, args.shared_output_wait),
                                           differing))
    if dist.is_main:
        token.unlink()
    problems = []
    differ = [f"rank {rank} on {host} has " + ", ".join(f"--{key} {value!r} (rank 0: {first.get(key)!r})"
                                                         for key, value in theirs.items())
              for rank, host, _, theirs in answers if theirs]
    if differ:
        problems.append("the training processes were started with different arguments: " + "; ".join(differ)
                        + ". Every node needs the same Editable Part values, and the models and data at the same "
                        "paths")
    blind = [f"rank {rank} on {host}" for rank, host, seen, _ in answers if not seen]
    if blind:
        problems.append(f"the output folder {output_dir} is not shared by every node: rank 0 on {answers[0][1]} "
                        f"wrote {token.name} in it and {', '.join(blind)} did not see it within "
                        f"{args.shared_output_wait:g} s. Checkpoints and resume need OUTPUT_DIR on storage that every "
                        "node mounts at the same path (NFS, Lustre, ...)")
    if problems:
        raise NodesDisagreeError("\n".join(problems) + '\nSee README "More than one machine".')
