"""What `download.sh` fetches and where it goes; and the model-hub snapshot step it calls.

The real assets come from the organisers' object store (URLs as in the official kit; the base is
overridable with BSYNTH_DOWNLOAD_BASE_URL) and, for the models of the recipe ops, from ModelScope
or the Hugging Face hub. Destinations come from `bettersynth.paths.real_layout()` (so they honour
BSYNTH_ASSETS_ROOT), named there once.

    python -m bettersynth.download manifest --variant 10k --groups models,data,eval
        one tab-separated line per item: name, group, kind, source, destination, archive top
        folder, the item it must come after ("-" where none)
    python -m bettersynth.download snapshot --hub modelscope --model-id goldsj/blip2-opt-2.7b --dest DIR
        downloads a model repository into a temporary sibling of DIR, marks it complete, renames it
        into place (an already complete DIR is left alone)

`download.sh` is the user-facing entry point; see its --help.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bettersynth.paths import AssetLayout, real_layout

DEFAULT_BASE_URL = "http://dail-wlcb.oss-cn-wulanchabu.aliyuncs.com/dj-competition/better_synth"
TEXTVQA_ANNOTATIONS_URL = "https://dl.fbaipublicfiles.com/textvqa/data/TextVQA_0.5.1_val.json"
MARKER_NAME = ".bsynth-download-complete"
GROUPS = ("models", "data", "eval", "recipe-models")
KINDS = ("archive", "file", "modelscope", "huggingface", "nltk")
# Stable Diffusion repositories also hold full .ckpt files and .bin duplicates of the safetensors
# weights (~12 GB that diffusers never reads): left out of the snapshot.
SNAPSHOT_IGNORE = {"CompVis/stable-diffusion-v1-4": ["*.ckpt", "*.bin", "*.msgpack", "*.h5", "*.onnx*"]}


@dataclass(frozen=True)
class Item:
    """One thing to fetch: an archive (extracted to `dest`), a file, or a model-hub snapshot."""

    name: str
    group: str
    kind: str
    source: str  # URL, or model id for the hubs
    dest: Path
    after: str = "-"  # an item that must be complete first (the archive this file goes into)

    def __post_init__(self) -> None:
        if self.group not in GROUPS or self.kind not in KINDS:
            raise ValueError(f"bad download item {self}")
        if any(c in field for field in (self.name, self.source, str(self.dest)) for c in "\t\n"):
            raise ValueError(f"tab or newline in download item {self}")

    @property
    def top(self) -> str:
        """The one top-level folder an archive holds (the official archives unpack to dest's name)."""
        return self.dest.name if self.kind == "archive" else "-"

    def line(self) -> str:
        return "\t".join((self.name, self.group, self.kind, self.source, str(self.dest), self.top, self.after))


def manifest(layout: AssetLayout, base_url: str) -> list[Item]:
    """Every real asset of the layout's seed variant, in download order."""
    base = base_url.rstrip("/")
    seed_archive = f"{layout.seed_dir.name}.tar.gz"
    finetune_archive = f"{layout.finetune_dir.name}.tar.gz"
    recipe = layout.recipe_models_dir
    return [
        Item("gemma-2b-it", "models", "archive", f"{base}/models/{layout.llm_dir.name}.tar.gz", layout.llm_dir),
        Item("clip-vit-large-patch14-336", "models", "archive",
             f"{base}/models/{layout.vision_tower_dir.name}.tar.gz", layout.vision_tower_dir),
        Item("openclip-convnext-large", "models", "archive",
             f"{base}/models/{layout.vision_tower_aux_dir.name}.tar.gz", layout.vision_tower_aux_dir),
        Item(seed_archive, "data", "archive", f"{base}/data/stage_1/{seed_archive}", layout.seed_dir),
        Item(layout.seed_jsonl.name, "data", "file", f"{base}/data/stage_1/{layout.seed_jsonl.name}",
             layout.seed_jsonl, after=seed_archive),
        Item("stage_1.json", "data", "file", f"{base}/data/stage_1/{layout.stage1_json.name}",
             layout.stage1_json, after=seed_archive),
        Item(finetune_archive, "data", "archive", f"{base}/data/stage_1/{finetune_archive}", layout.finetune_dir),
        Item(layout.finetune_json.name, "data", "file", f"{base}/data/stage_1/{layout.finetune_json.name}",
             layout.finetune_json, after=finetune_archive),
        Item("eval_stage_1.tar.gz", "eval", "archive", f"{base}/data/stage_1/{layout.eval_dir.name}.tar.gz",
             layout.eval_dir),
        Item("TextVQA_0.5.1_val.json", "eval", "file", TEXTVQA_ANNOTATIONS_URL, layout.textvqa_annotations,
             after="eval_stage_1.tar.gz"),
        # The organisers' notebook fetched BLIP-2 from ModelScope; the other two ops' models keep
        # their Hugging Face ids (set HF_ENDPOINT for a mirror). Folders: <org>/<name>, as
        # Data-Juicer resolves names under DATA_JUICER_EXTERNAL_MODELS_HOME.
        Item("blip2-opt-2.7b", "recipe-models", "modelscope", "goldsj/blip2-opt-2.7b",
             recipe / "Salesforce" / "blip2-opt-2.7b"),
        Item("clip-vit-base-patch32", "recipe-models", "huggingface", "openai/clip-vit-base-patch32",
             recipe / "openai" / "clip-vit-base-patch32"),
        Item("blip-itm-base-coco", "recipe-models", "huggingface", "Salesforce/blip-itm-base-coco",
             recipe / "Salesforce" / "blip-itm-base-coco"),
        Item("aesthetics-predictor-v2", "recipe-models", "huggingface",
             "shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE",
             recipe / "shunk031" / "aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE"),
        Item("watermark_detector", "recipe-models", "huggingface", "amrul-hzz/watermark_detector",
             recipe / "amrul-hzz" / "watermark_detector"),
        Item("owlvit-base-patch32", "recipe-models", "huggingface", "google/owlvit-base-patch32",
             recipe / "google" / "owlvit-base-patch32"),
        Item("stable-diffusion-v1-4", "recipe-models", "huggingface", "CompVis/stable-diffusion-v1-4",
             recipe / "CompVis" / "stable-diffusion-v1-4"),
        # the grounding filter's noun phrases: NLTK's own data server (no pip or apt package ships it)
        Item("nltk_data", "recipe-models", "nltk", "punkt_tab,averaged_perceptron_tagger_eng", recipe / "nltk_data"),
    ]


def fill_once(dest: Path, source: str, fill: Callable[[Path], None]) -> None:
    """``fill(folder)`` into a temporary sibling of `dest` (kept across attempts: the hubs resume their
    files), marked with `source` and renamed onto `dest`; a complete `dest` is skipped."""
    if (dest / MARKER_NAME).is_file():
        print(f"complete: {dest}")
        return
    if dest.exists():
        raise SystemExit(f"{dest} exists but was not completed by download.sh; remove it to download again")
    partial = dest.with_name(f".{dest.name}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    fill(partial)
    (partial / MARKER_NAME).write_text(f"{source}\n")
    partial.rename(dest)
    print(f"downloaded {source} -> {dest}")


def snapshot(hub: str, model_id: str, dest: Path) -> None:
    """Download a model repository from a hub into `dest` (fill_once)."""
    def fill(folder: Path) -> None:
        if hub == "modelscope":
            from modelscope import snapshot_download as modelscope_snapshot

            modelscope_snapshot(model_id, local_dir=str(folder))
        else:
            from huggingface_hub import snapshot_download as hf_snapshot

            hf_snapshot(model_id, local_dir=folder, ignore_patterns=SNAPSHOT_IGNORE.get(model_id))

    fill_once(dest, f"{hub}:{model_id}", fill)


def nltk_packages(packages: list[str], dest: Path) -> None:
    """NLTK data packages into `dest`, in NLTK's folder layout (fill_once)."""
    def fill(folder: Path) -> None:
        import nltk

        for package in packages:
            nltk.download(package, download_dir=str(folder), quiet=True, raise_on_error=True)

    fill_once(dest, f"nltk:{','.join(packages)}", fill)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bettersynth.download", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("manifest", help="print the items to fetch, one tab-separated line each")
    listing.add_argument("--variant", choices=("10k", "full"), default="10k")
    listing.add_argument("--groups", default="models,data,eval",
                         help=f"comma-separated subset of {','.join(GROUPS)}")
    fetch = sub.add_parser("snapshot", help="download one model repository from a hub into DEST")
    fetch.add_argument("--hub", choices=("modelscope", "huggingface"), required=True)
    fetch.add_argument("--model-id", required=True)
    fetch.add_argument("--dest", type=Path, required=True)
    nltk_data = sub.add_parser("nltk", help="download NLTK data packages into DEST")
    nltk_data.add_argument("--packages", required=True, help="comma-separated NLTK package names")
    nltk_data.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "snapshot":
        snapshot(args.hub, args.model_id, args.dest)
        return 0
    if args.command == "nltk":
        nltk_packages([name for name in args.packages.split(",") if name], args.dest)
        return 0
    groups = [g for g in args.groups.split(",") if g]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; known: {', '.join(GROUPS)}")
    base_url = os.environ.get("BSYNTH_DOWNLOAD_BASE_URL", DEFAULT_BASE_URL)
    for item in manifest(real_layout(args.variant), base_url):
        if item.group in groups:
            print(item.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
