"""The ``bsynth`` command: one subcommand per job, each a thin call into the library.

Run ``bsynth --help`` for the list and ``bsynth <command> --help`` for each. Every command module
below exposes ``register(subparsers)``, which adds its parsers with ``set_defaults(func=...)``; a
handler returns the process exit status. Modules import their heavy dependencies (torch,
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
    "bettersynth.eval.commands",     # eval textvqa / mmbench, score
    "bettersynth.submit",            # pack
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
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
