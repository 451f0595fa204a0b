"""Real-size MGM-2B model folders with random weights, and real-format training data, for benchmarks.

Nothing here needs a download: the architectures come from ``bettersynth.model.real_size`` (the
gemma-2b-it, CLIP ViT-L/14-336 and OpenCLIP convnext_large_d_320 configurations), saved in the
same on-disk layouts as the real folders (so the benchmark loads them through the real code path);
the tokenizer is the demo's Gemma-style tokenizer (its ids all fall inside Gemma's 256,000 vocab).
Images are drawn with the demo's scene painter at realistic web sizes and stored as JPEG, so the
data loader decodes and preprocesses real files.

    python bench/real_size_assets.py --root /tmp/bench-assets --images 1024
"""

from __future__ import annotations

import argparse
import json
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from bettersynth.constants import CLIP_MEAN, CLIP_STD, IMAGE_TOKEN
from bettersynth.demo.images import draw, jpeg_bytes
from bettersynth.demo.scenes import caption, corpus, random_scene
from bettersynth.demo.tokenizer import gemma_tokenizer
from bettersynth.model import real_size
from bettersynth.model.aux_tower import OPENCLIP_CONFIG, OPENCLIP_WEIGHTS, TRUNK_PREFIX, ConvNeXtAuxTower

QUESTIONS = ["Describe the image briefly.", "What is in the photo?", "Give a short caption for this picture."]
FILLER = ("the a of with and on in near under beside large small bright dark colourful plain object "
          "shape background scene picture detail edge corner pattern surface light shadow").split()


def write_convnext_folder(folder: Path, vision_cfg: dict) -> None:
    """An OpenCLIP-layout folder: open_clip_config.json + the trunk's weights under ``visual.trunk.``."""
    tower = ConvNeXtAuxTower(vision_cfg, channels_last=False)
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"{TRUNK_PREFIX}{name}": value.to(torch.bfloat16) for name, value in tower.state_dict().items()}
    torch.save(state, folder / OPENCLIP_WEIGHTS)
    config = {"model_cfg": {"embed_dim": 768, "vision_cfg": vision_cfg,
                            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 768, "heads": 12,
                                         "layers": 16}},
              "preprocess_cfg": {"mean": list(CLIP_MEAN), "std": list(CLIP_STD)}}
    (folder / OPENCLIP_CONFIG).write_text(json.dumps(config, indent=2))


def write_models(root: Path, seed: int = 0) -> dict[str, Path]:
    """The three model folders with random weights (bf16) side by side under ``root``."""
    return write_model_folders({"llm": root / "gemma-2b-it", "clip": root / "clip-vit-large-patch14-336",
                                "aux": root / "openclip-convnext-large-d-320"}, seed)


def model_configs(tiny: bool = False) -> tuple:
    """(Gemma config, CLIP vision config, ConvNeXt vision_cfg) at real size; ``tiny`` keeps the image
    geometry (576 CLIP patches, a 768-px ConvNeXt input, its 24 x 24 map) with widths a CPU runs fast."""
    llm, clip, aux = (real_size.gemma_2b_it_config(), real_size.clip_vit_l14_336_vision_config(),
                      real_size.convnext_large_d_320_vision_cfg())
    if tiny:
        llm.update({"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "head_dim": 16})
        clip.update({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2})
        aux = dict(aux, timm_model_name="convnext_atto")
    return llm, clip, aux


def write_model_folders(folders: dict[str, Path], seed: int = 0, tiny: bool = False) -> dict[str, Path]:
    """Random-weight (bf16) models in ``folders`` ("llm", "clip", "aux"), built on the GPU when there
    is one; a folder already holding its config is kept. ``tiny``: see model_configs."""
    from transformers import CLIPImageProcessor, CLIPVisionModel, GemmaForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    llm_config, clip_config, aux_config = model_configs(tiny)
    if not (folders["llm"] / "config.json").exists():
        with torch.device(device):
            llm = GemmaForCausalLM(llm_config).to(torch.bfloat16)
        llm.save_pretrained(folders["llm"])
        gemma_tokenizer(corpus(seed)).save_pretrained(folders["llm"])
        del llm
    if not (folders["clip"] / "config.json").exists():
        with torch.device(device):
            clip = CLIPVisionModel(clip_config).to(torch.bfloat16)
        clip.save_pretrained(folders["clip"])
        CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                           image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD)).save_pretrained(folders["clip"])
        del clip
    if not (folders["aux"] / "open_clip_config.json").exists():
        write_convnext_folder(folders["aux"], aux_config)
    return folders


def _draw_one(job: tuple[int, Path]) -> None:
    index, path = job
    rng = random.Random(index)
    width, height = rng.choice([(640, 480), (500, 375), (1024, 768), (800, 800), (480, 640), (1024, 576)])
    path.write_bytes(jpeg_bytes(draw(random_scene(rng, width, height, with_word=rng.random() < 0.3))))


def write_images(folder: Path, count: int, workers: int = 16) -> list[str]:
    """``count`` JPEGs at web sizes (drawn in parallel); returns their paths relative to ``folder``."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    names = [f"images/{i:06d}.jpg" for i in range(count)]
    missing = [(i, folder / name) for i, name in enumerate(names) if not (folder / name).exists()]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_draw_one, missing, chunksize=16))
    return names


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(FILLER) for _ in range(count))


def write_pretrain_json(path: Path, images: list[str], samples: int, caption_words: int, seed: int = 0) -> None:
    """Caption records: one question, one caption of about ``caption_words`` words."""
    rng = random.Random(seed)
    records = []
    for i in range(samples):
        scene_caption = caption(random_scene(rng, 64, 64, False), rng)
        text = (scene_caption + " " + _words(rng, max(0, caption_words - len(scene_caption.split())))).strip()
        records.append({"id": f"{i:09d}", "image": images[i % len(images)], "conversations": [
            {"from": "human", "value": f"{IMAGE_TOKEN}\n{rng.choice(QUESTIONS)}"},
            {"from": "gpt", "value": text}]})
    path.write_text(json.dumps(records))


def write_finetune_json(path: Path, images: list[str], samples: int, answer_words: int, seed: int = 0) -> None:
    """Instruction records: two rounds about the image, answers of about ``answer_words`` words each."""
    rng = random.Random(seed)
    records = []
    for i in range(samples):
        records.append({"id": f"ft{i:07d}", "image": images[i % len(images)], "conversations": [
            {"from": "human", "value": f"{IMAGE_TOKEN}\n{rng.choice(QUESTIONS)}"},
            {"from": "gpt", "value": _words(rng, answer_words)},
            {"from": "human", "value": "What else can you see? " + _words(rng, 8)},
            {"from": "gpt", "value": _words(rng, answer_words)}]})
    path.write_text(json.dumps(records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--images", type=int, default=1024)
    args = parser.parse_args()
    print(write_models(args.root / "models"))
    write_images(args.root / "data", args.images)


if __name__ == "__main__":
    main()
