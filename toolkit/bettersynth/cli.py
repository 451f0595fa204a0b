"""The ``bsynth`` command: one subcommand per job, each a thin call into the library.

Run ``bsynth --help`` for the list and ``bsynth <command> --help`` for each. Every command module
below exposes ``register(subparsers)``, which adds its parsers with ``set_defaults(func=...)``; a
handler returns the process exit status; a command that writes files also sets ``outputs`` (args ->
the paths it writes), and holds the output tree's lock (bettersynth.lock) while it runs when one of
them lies in that tree. Modules import their heavy dependencies (torch,
data_juicer) inside the handlers, so ``bsynth --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "bettersynth.layout",            # layout (asset paths for shell scripts)
    "bettersynth.data.commands",     # dj2llava, llava2dj, sample, check-batch, validate
    "bettersynth.demo.commands",     # demo build
    "bettersynth.recipes.commands",  # recipe run, recipe report
    "bettersynth.train.commands",    # train
    "bettersynth.train.launch",      # launch (a stage's training processes on this node)
    "bettersynth.eval.commands",     # eval textvqa / mmbench, score
    "bettersynth.submit",            # pack
    "bettersynth.steps",             # step (skip a step whose output is made from the same inputs)
    "bettersynth.lock",              # lock take (the main job's hold on the output tree)
    "bettersynth.experiments.commands",  # runs, runs record, report (experiment records)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bsynth", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    from bettersynth.paths import RootNotFoundError

    outputs = getattr(args, "outputs", None)
    try:
        if outputs is None:
            return int(args.func(args) or 0)
        return run_holding_lock(args, outputs(args), argv if argv is not None else sys.argv[1:])
    except RootNotFoundError as error:
        print(f"bsynth: {error}", file=sys.stderr, flush=True)
        return 2


def run_holding_lock(args, outputs, argv: list[str]) -> int:
    """Runs the command holding the output tree's lock when it writes there; exit 1 when it is taken."""
    from bettersynth import paths
    from bettersynth.lock import OutputLockError, output_lock, writes_under

    try:
        tree = paths.output_dir()
    except paths.RootNotFoundError:  # outside a checkout there is no output tree to lock
        return int(args.func(args) or 0)
    if not writes_under(tree, outputs):
        return int(args.func(args) or 0)
    try:
        with output_lock(tree, "bsynth " + " ".join(argv)):
            return int(args.func(args) or 0)
    except OutputLockError as error:
        print(f"bsynth: {error}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
