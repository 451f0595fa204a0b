"""Tiny random image scorers for Data-Juicer's image filters, in the real folders' layouts.

- `build_recipe_aesthetics`: shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE for
  `image_aesthetics_filter` (and `fast_image_aesthetics_filter`): config.json (a CLIP vision config
  naming `AestheticsPredictorV2Linear`), model.safetensors (a `CLIPVisionModelWithProjection` plus the
  LAION head as `layers.0/2/4/6/7`, the parameter layout of simple-aesthetics-predictor's class) and
  a `CLIPProcessor` (tokenizer and image processor, as the real folder has);
- `build_recipe_watermark`: amrul-hzz/watermark_detector for `image_watermark_filter` (and
  `fast_image_watermark_filter`): a two-class `ViTForImageClassification` and its image processor.
The weights are random (seeded): scores are meaningless, the files and code paths are real. Random
towers see all images alike, so each head's last layer is rescaled until plain images of eight
colours spread over most of the score range (aesthetics 2-8 of LAION's 0-10, watermark
probabilities 0.05-0.95): a demo recipe's thresholds then keep some samples and drop others, and
the fast operators' tests compare scores that differ. The aesthetics folder is written without
simple-aesthetics-predictor, so the demo builds wherever the toolkit is installed. Called by
`bettersynth.demo.build`; not run on its own.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import (CLIPImageProcessor, CLIPProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection,
                          ViTConfig, ViTForImageClassification, ViTImageProcessor)

from bettersynth.constants import CLIP_MEAN, CLIP_STD
from bettersynth.demo import tokenizer as tok

# Tiny sizes (real sizes in the comments).
AESTHETICS_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         image_size=64, patch_size=16, projection_dim=32)  # ViT-L/14: 1024/4096/24/16/224/14/768
# AestheticsPredictorV2Linear's head: (index in its `layers` Sequential, in, out); dropouts sit between
AESTHETICS_HEAD = ((0, AESTHETICS_VISION["projection_dim"], 1024), (2, 1024, 128), (4, 128, 64), (6, 64, 16),
                   (7, 16, 1))
WATERMARK_VIT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                     image_size=64, patch_size=16)  # ViT-B/16: 768/3072/12/12/224/16
VIT_MEAN = VIT_STD = (0.5, 0.5, 0.5)
CALIBRATION_COLOURS = ((0, 0, 0), (255, 255, 255), (200, 30, 30), (30, 160, 60), (40, 60, 200), (230, 200, 40),
                       (120, 120, 120), (160, 80, 200))
AESTHETICS_SPAN = (2.0, 8.0)  # plain colours' scores on LAION's 0-10 scale
WATERMARK_MARGIN = 3.0  # plain colours' logit(watermark) - logit(clean) within +-3: probabilities 0.05-0.95


def _calibration_pixels(image_processor) -> torch.Tensor:
    images = [Image.new("RGB", (80, 60), colour) for colour in CALIBRATION_COLOURS]
    return image_processor(images=images, return_tensors="pt")["pixel_values"]


def build_recipe_aesthetics(folder: Path, texts: list[str], seed: int) -> None:
    """The aesthetics predictor folder: CLIP vision tower + projection + LAION v2 linear head."""
    size = AESTHETICS_VISION["image_size"]
    image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                         do_center_crop=True, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    config = CLIPVisionConfig(**AESTHETICS_VISION)
    torch.manual_seed(seed)
    tower = CLIPVisionModelWithProjection(config).eval()
    head = {index: torch.nn.Linear(n_in, n_out) for index, n_in, n_out in AESTHETICS_HEAD}
    with torch.no_grad():
        hidden = tower(pixel_values=_calibration_pixels(image_processor)).image_embeds
        hidden = hidden / hidden.norm(dim=-1, keepdim=True)
        for layer in list(head.values())[:-1]:
            hidden = layer(hidden)
        last, (low, high) = list(head.values())[-1], AESTHETICS_SPAN
        scores = last(hidden)
        scale = (high - low) / (scores.max() - scores.min())  # scores -> (scores - min) * scale + low
        last.weight.mul_(scale)
        last.bias.copy_((last.bias - scores.min()) * scale + low)
    state = tower.state_dict()
    for index, layer in head.items():
        state[f"layers.{index}.weight"], state[f"layers.{index}.bias"] = layer.weight, layer.bias
    config.architectures = ["AestheticsPredictorV2Linear"]
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    save_file({name: tensor.detach().contiguous() for name, tensor in state.items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    CLIPProcessor(image_processor=image_processor, tokenizer=tok.clip_tokenizer(texts)).save_pretrained(folder)
    image_processor.save_pretrained(folder)  # preprocessor_config.json, as the real folder has


def build_recipe_watermark(folder: Path, seed: int) -> None:
    """The watermark classifier folder: ViT with a two-class head (class 1: watermark)."""
    size = WATERMARK_VIT["image_size"]
    image_processor = ViTImageProcessor(size={"height": size, "width": size}, image_mean=list(VIT_MEAN),
                                        image_std=list(VIT_STD))
    config = ViTConfig(num_labels=2, **WATERMARK_VIT)
    torch.manual_seed(seed)
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():
        logits = model(pixel_values=_calibration_pixels(image_processor)).logits
        margin = logits[:, 1] - logits[:, 0]
        # the margin is linear in the head's weights: scaling both rows scales it; shifting bias[1] shifts it
        scale = 2 * WATERMARK_MARGIN / (margin.max() - margin.min())
        model.classifier.weight.mul_(scale)
        model.classifier.bias.mul_(scale)
        model.classifier.bias[1] -= (margin.min() * scale + WATERMARK_MARGIN)
    model.save_pretrained(folder)
    image_processor.save_pretrained(folder)
