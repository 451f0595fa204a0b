"""`bsynth demo build`: build the embedded demo assets (tiny random models, synthetic data sets).

    bsynth demo build                 # into demo_assets/ (or $BSYNTH_DEMO_ROOT)
    bsynth demo build --root DIR      # into DIR, with the same layout
    bsynth demo build --force         # rebuild even the items that are complete

Offline and deterministic; complete items are skipped. See `bettersynth.demo.build`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="embedded demo assets")
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="DEMO_COMMAND", required=True)
    build = demo_sub.add_parser("build", help="build the tiny models and synthetic data sets, offline",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--root", type=Path, default=None,
                       help="root of the demo layout (default: $BSYNTH_DEMO_ROOT or <repo>/demo_assets)")
    build.add_argument("--force", action="store_true", help="rebuild items that are already complete")
    build.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    import time

    from transformers.utils import logging as transformers_logging

    from bettersynth.demo.build import build_demo
    from bettersynth.paths import AssetLayout, demo_layout

    transformers_logging.disable_progress_bar()  # one summary line per item instead
    layout = AssetLayout(args.root.resolve()) if args.root is not None else demo_layout()
    start = time.perf_counter()
    results = build_demo(layout, seed=args.seed, force=args.force)
    for result in results:
        detail = f"{result.seconds:5.1f} s" if result.status == "built" else "complete"
        print(f"{result.status:8s} {result.name:18s} {detail:9s} {result.folder}")
    print(f"demo assets ready under {layout.root} ({time.perf_counter() - start:.1f} s)")
    return 0
