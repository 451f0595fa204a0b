"""Image preprocessing shared by training and evaluation: one image file → ``image_aux`` [3, A, A].

1. decode and ``convert("RGB")`` through ``bettersynth.data.image_check.load_rgb``, the rule that
   ``bsynth validate`` applies too: a missing, undecodable, too large or too elongated file, or
   one whose mode ``convert("RGB")`` gets wrong (16-bit greyscale turns white), raises
   ``ImageLoadError`` naming the path and the reason, checked on the header before decoding;
2. aspect "pad" (finetune, eval): paste centred on a square canvas of the CLIP mean colour as
   integers (122, 116, 104); aspect "square" (pretrain): no padding;
3. the CLIP image processor (PIL backend, as in the official kit) with resize target and crop both
   set to A: bicubic shortest-edge resize to A, centre crop A×A, scale 1/255, normalise with the
   processor's (OpenAI CLIP) mean and std.

The low-resolution CLIP input is derived from this tensor inside the model.

    pre = ImagePreprocessor.from_vision_tower(clip_dir, image_size_aux=768)
    image_aux = pre(pre.load("img.jpg"), aspect="pad")
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

# ImageLoadError is part of this module's interface: training and evaluation catch it from here.
from bettersynth.data.image_check import ImageLoadError, load_rgb  # noqa: F401

ASPECTS = ("square", "pad")


class ImagePreprocessor:
    """Turns PIL images into normalised ``image_aux`` tensors of side ``image_size``."""

    def __init__(self, processor: CLIPImageProcessorPil) -> None:
        crop = processor.crop_size
        if processor.size.shortest_edge != crop.height or crop.height != crop.width:
            raise ValueError(f"processor must resize the shortest edge to its square crop size, got "
                             f"size {processor.size} and crop {crop}")
        self.processor = processor
        self.image_size = crop.height
        self.pad_color = tuple(int(mean * 255) for mean in processor.image_mean)

    @classmethod
    def from_vision_tower(cls, clip_dir: str | Path, image_size_aux: int) -> ImagePreprocessor:
        """The CLIP folder's processor (mean, std, resampling) with resize and crop set to A."""
        if not (Path(clip_dir) / "preprocessor_config.json").is_file():
            raise FileNotFoundError(f"no preprocessor_config.json in {clip_dir}")
        processor = CLIPImageProcessorPil.from_pretrained(
            clip_dir, size={"shortest_edge": image_size_aux},
            crop_size={"height": image_size_aux, "width": image_size_aux})
        return cls(processor)

    def save_pretrained(self, folder: str | Path) -> None:
        """Writes preprocessor_config.json (resize and crop already set to A)."""
        self.processor.save_pretrained(folder)

    @staticmethod
    def load(path: str | Path) -> Image.Image:
        """The decoded RGB image; ImageLoadError ("path: reason") when training cannot use the file."""
        return load_rgb(path)

    def pad_to_square(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if width == height:
            return image
        side = max(width, height)
        canvas = Image.new(image.mode, (side, side), self.pad_color)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        return canvas

    def __call__(self, image: Image.Image, aspect: str) -> torch.Tensor:
        """RGB PIL image → float32 [3, A, A]."""
        if aspect not in ASPECTS:
            raise ValueError(f"aspect must be one of {ASPECTS}, got {aspect!r}")
        image = image.convert("RGB")
        if aspect == "pad":
            image = self.pad_to_square(image)
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]
