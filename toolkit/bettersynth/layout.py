"""``bsynth layout``: prints where the assets of the real or demo layout are, for shell scripts.

The main job reads its paths from here instead of hard-coding them, so they are named once
(bettersynth.paths). ``--which auto`` picks the real layout when its models and data are all on
disk, else the embedded demo.

    eval "$(bsynth layout --which auto --format shell)"   # sets LAYOUT_MODE, SEED_JSONL, LLM_DIR, ...
    bsynth layout --which demo --format json
"""

from __future__ import annotations

import json
import shlex

from bettersynth import paths


def resolve_layout(which: str) -> tuple[str, paths.AssetLayout]:
    """('real' | 'demo', layout) for which = real | demo | auto."""
    if which == "real":
        return "real", paths.real_layout()
    if which == "demo":
        return "demo", paths.demo_layout()
    if which == "auto":
        real = paths.real_layout()
        return ("real", real) if real.training_assets_present() else ("demo", paths.demo_layout())
    raise ValueError(f"unknown layout {which!r}; use real, demo or auto")


def layout_variables(mode: str, layout: paths.AssetLayout) -> dict[str, str]:
    return {
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


def run(args) -> int:
    mode, layout = resolve_layout(args.which)
    variables = layout_variables(mode, layout)
    if args.format == "json":
        print(json.dumps(variables, indent=1))
    else:
        for key, value in variables.items():
            print(f"{key}={shlex.quote(value)}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("layout", help="print the asset paths of the real or demo layout",
                                   description=__doc__)
    parser.add_argument("--which", choices=["real", "demo", "auto"], default="auto")
    parser.add_argument("--format", choices=["shell", "json"], default="shell")
    parser.set_defaults(func=run)
