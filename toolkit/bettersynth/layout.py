"""``bsynth layout``: prints where the assets of the real or demo layout are, for shell scripts;
``bsynth check-paths``: stops a job before any work when a path or name it will use cannot be used.

The main job reads its paths from here instead of hard-coding them, so they are named once
(bettersynth.paths). ``--which auto`` picks the real layout when its models and data are all on
disk, the embedded demo when none of them is, and stops naming what is missing for a mix (exit 2).
REPO_ROOT is the checkout that runs (bettersynth.paths.repo_root).

    eval "$(bsynth layout --which auto --format shell)"   # sets REPO_ROOT, LAYOUT_MODE, SEED_JSONL, ...
    bsynth layout --format shell --editable PRETRAIN_BATCH_SIZE_PER_GPU=auto ...   # + the job's settings
    bsynth layout --which demo --format json
    bsynth check-paths --name "EXP_NAME=$EXP_NAME" --file "RECIPE=$RECIPE" "PRETRAIN_DATASET=$PRETRAIN_DATASET"

check-paths always checks the checkout and the output folder, then each WHAT=PATH (a path that
will be read or written), ``--file WHAT=PATH`` (also: an existing file; relative paths are relative
to the current directory) and ``--name WHAT=NAME`` (a name that becomes one folder name). Exit 0
when all are usable, else 2 with one line per problem naming the path and why
(bettersynth.paths.path_problem: spaces and non-ASCII letters are fine).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from bettersynth import paths
from bettersynth.arguments import key_value


class IncompleteLayoutError(RuntimeError):
    """Some real assets are on disk and others are not: neither the real run nor the demo is meant."""


def resolve_layout(which: str) -> tuple[str, paths.AssetLayout]:
    """('real' | 'demo', layout) for which = real | demo | auto. ``auto``: real when every real
    asset the job reads is on disk, the demo when none is; a mix is an IncompleteLayoutError naming
    what is missing (training the demo and scoring it on real eval data would mean nothing)."""
    if which == "real":
        return "real", paths.real_layout()
    if which == "demo":
        return "demo", paths.demo_layout()
    if which != "auto":
        raise ValueError(f"unknown layout {which!r}; use real, demo or auto")
    real = paths.real_layout()
    present = [path for path in real.training_assets() if path.exists()]
    if not present:
        return "demo", paths.demo_layout()
    missing = [path for path in real.training_assets() if not path.exists()]
    if missing:
        raise IncompleteLayoutError(
            f"the real assets under {real.root} are incomplete: {len(present)} of {len(present) + len(missing)} "
            f"present, missing: {', '.join(str(path) for path in missing)}. Fetch the rest with `bash download.sh` "
            "(see --help), or run the embedded demo on purpose with BSYNTH_LAYOUT=demo")
    return "real", real


def layout_variables(mode: str, layout: paths.AssetLayout) -> dict[str, str]:
    return {
        "REPO_ROOT": str(paths.repo_root()),
        "LAYOUT_MODE": mode,
        "ASSETS_ROOT": str(layout.root),
        "SEED_DIR": str(layout.seed_dir),
        "SEED_JSONL": str(layout.seed_jsonl),
        "STAGE1_JSON": str(layout.stage1_json),
        "LLM_DIR": str(layout.llm_dir),
        "VISION_TOWER_DIR": str(layout.vision_tower_dir),
        "VISION_TOWER_AUX_DIR": str(layout.vision_tower_aux_dir),
        "RECIPE_MODELS_DIR": str(layout.recipe_models_dir),
        "FINETUNE_JSON": str(layout.finetune_json),
        "FINETUNE_IMAGE_DIR": str(layout.finetune_dir),
        "TEXTVQA_QUESTIONS": str(layout.textvqa_questions),
        "MMBENCH_TSV": str(layout.mmbench_tsv),
        "OUTPUT_DIR": str(paths.output_dir()),
    }


def job_variables(mode: str, layout: paths.AssetLayout, editable: dict[str, str]) -> dict[str, str]:
    """The main job's layout-dependent settings (bettersynth.job_settings) as shell variables."""
    import os

    from bettersynth.job_settings import REQUIRED, job_settings
    from bettersynth.train.commands import gpu_memory_gib, optimizer_offload

    missing = [key for key in REQUIRED if key not in editable]
    if missing:
        raise ValueError(f"--editable lacks {', '.join(missing)}: the job's settings are planned from all of them "
                         "(the main job passes every Editable Part value)")
    settings = job_settings(mode, editable, os.environ, str(layout.seed_dir), gpu_memory_gib(),
                            optimizer_offload(editable.get("DEEPSPEED_CONFIG")),
                            say=lambda line: print(line, file=sys.stderr, flush=True))
    kernels = paths.kernel_cache_dir(paths.output_dir(), settings.nodes.node_rank)
    return {**settings.shell_variables(), "KERNEL_CACHE_DIR": str(kernels)}


def run(args) -> int:
    try:
        mode, layout = resolve_layout(args.which)
        variables = layout_variables(mode, layout)
        if args.editable:
            variables.update(job_variables(mode, layout, dict(args.editable)))
    except (paths.RootNotFoundError, IncompleteLayoutError) as error:
        print(f"bsynth layout: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # an Editable Part value, or a batch that cannot be split or fit
        print(error if str(error).startswith("bsynth ") else f"bsynth layout: {error}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(variables, indent=1))
    else:
        for key, value in variables.items():
            print(f"{key}={shlex.quote(value)}")
    return 0


def path_problems(args) -> list[str]:
    """One line per path or name of ``args`` that cannot be used."""
    found = []
    checked = [("the checkout", paths.repo_root()), ("the output folder", paths.output_dir()), *args.paths,
               *args.files]
    for what, path in checked:
        problem = paths.path_problem(path)
        if problem:
            found.append(f"{what} {str(path)!r} cannot be used: {problem}")
    for what, path in args.files:
        if not paths.path_problem(path) and not Path(path).is_file():
            found.append(f"{what} {path!r} is not a file (relative paths are relative to {Path.cwd()})")
    for what, name in args.names:
        problem = paths.name_problem(name)
        if problem:
            found.append(f"{what} {name!r} cannot be used: {problem}")
    return found


def check_paths(args) -> int:
    try:
        found = path_problems(args)
    except paths.RootNotFoundError as error:
        found = [str(error)]
    for line in found:
        print(f"bsynth check-paths: {line}", file=sys.stderr)
    if found:
        print("bsynth check-paths: rename or move what is named above, then run again", file=sys.stderr)
        return 2
    print(f"paths: {2 + len(args.paths) + len(args.files) + len(args.names)} paths and names checked, all usable")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("layout", help="print the asset paths of the real or demo layout",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--which", choices=["real", "demo", "auto"], default="auto")
    parser.add_argument("--format", choices=["shell", "json"], default="shell")
    parser.add_argument("--editable", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="an Editable Part value of the main job (repeatable): with them, the job's "
                             "layout-dependent settings are printed too (global batches, the planned batch "
                             "split, the demo's scaled values; bettersynth/job_settings.py)")
    parser.set_defaults(func=run)

    check = subparsers.add_parser("check-paths", help="stop early when a path or name the job uses cannot be used",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("paths", nargs="*", type=key_value, metavar="WHAT=PATH", help="a path to be read or written")
    check.add_argument("--file", dest="files", action="append", type=key_value, default=[], metavar="WHAT=PATH",
                       help="a file that must exist")
    check.add_argument("--name", dest="names", action="append", type=key_value, default=[], metavar="WHAT=NAME",
                       help="a name that becomes one folder name (EXP_NAME)")
    check.set_defaults(func=check_paths)
