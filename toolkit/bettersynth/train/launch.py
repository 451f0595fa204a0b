"""``bsynth launch``: starts this node's training processes for one stage, as the node settings that
``bsynth layout`` decided say (bettersynth.train.nodes: one node, a hostfile over ssh, or one launch
per node), and becomes that launcher (exec), so its exit status is the stage's.

    eval "$(bsynth layout --format shell --editable NNODES=2 --editable NODE_RANK=1 ...)"
    bsynth launch --nodes "$NODES" -- --deepspeed zero2.json --model_name_or_path ... --output_dir ...

Everything after ``--`` goes to ``bettersynth.train`` unchanged.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from bettersynth.train.nodes import NodeSettings, NodeSettingsError, launcher_argv


def handle_launch(args: argparse.Namespace) -> int:
    try:
        nodes = NodeSettings.from_json(args.nodes)
    except NodeSettingsError as error:
        print(f"bsynth launch: {error}", file=sys.stderr)
        return 2
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    argv = [*launcher_argv(nodes, Path(tempfile.gettempdir())), *train_args]
    share = nodes.world_size // nodes.nnodes
    print(f"bsynth launch: node {nodes.node_rank} of {nodes.nnodes} ({nodes.form}), {share} of "
          f"{nodes.world_size} training process(es) here: {shlex.join(argv[:argv.index('bettersynth.train') + 1])} "
          "...", flush=True)
    os.execv(argv[0], argv)  # replaces this process


def register(subparsers) -> None:
    parser = subparsers.add_parser("launch", help="start this node's training processes for one stage",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", required=True, metavar="JSON",
                        help="the node settings `bsynth layout` prints as NODES")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, metavar="-- TRAIN_ARGS",
                        help="the arguments of bettersynth.train")
    parser.set_defaults(func=handle_launch)
