"""Data-Juicer mapper ``fast_image_regeneration_mapper``: new images drawn from the captions, batched.

A batched counterpart of Data-Juicer's ``image_diffusion_mapper`` for a diffusers text-to-image
folder (Stable Diffusion's ``model_index.json`` layout, loaded with ``AutoPipelineForText2Image``):
each selected sample's images are drawn anew from their chunk's caption, ``gpu_batch_size`` prompts
per pipeline call, in ``num_inference_steps`` steps with classifier-free guidance
``guidance_scale``, bfloat16 on a GPU by default, at ``height`` x ``width`` (default: the model's
own size, 512 px for SD v1-4). The built-in instead runs image-to-image from the old picture
(strength 0.8, diffusers' 50 steps, one image per call, resized back to the old size) and, without
a caption field, first recaptions it with BLIP-2.

Every image gets its own seed, derived from ``seed``, the source file's name and the prompt, so a
picture does not depend on the batch it falls in: it is the one a pipeline call for that prompt
alone, with a generator seeded so, draws. New images are written as JPEG (quality 95) under
``save_dir`` (default ``$DJ_PRODUCED_DATA_DIR/fast_image_regeneration_mapper``; ``bsynth recipe run``
sets DJ_PRODUCED_DATA_DIR to the export's ``synthetic_images/NAME/`` and commits it with the export;
the op refuses to start with neither, rather than write into the source image tree), in two-hex-digit subfolders,
named after the source image and a hash of everything that decides the picture (model folder,
steps, guidance, size, seed, source, prompt): a file already there, from an identical earlier
run, is reused.

A new sample is a copy of its source (same ``id`` and text) whose images are the new files, whose
stats are emptied (a later filter scores the new pairs) and whose meta says ``regenerated: true``,
so the export tells which images are synthetic. ``keep_original_sample`` keeps the source next to
it. ``select_meta_key``/``select_below`` regenerate only samples whose meta value is below a bound
(e.g. the lower CLIP band tagged by ``stats_quantile_tagger``); the others pass unchanged. An image
the pipeline's safety checker flags, or one without a caption, leaves its sample as it was.

    process:
      - fast_image_regeneration_mapper:
          hf_diffusion: CompVis/stable-diffusion-v1-4   # a folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME
          save_dir: /data/output/regenerated_images
          num_inference_steps: 25
          select_meta_key: image_text_similarity_quantile
          select_below: 0.1
          gpu_batch_size: 32     # prompts per pipeline call
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Optional

import torch
from data_juicer.ops.base_op import OPERATORS, TAGGING_OPS, Mapper
from data_juicer.utils.constant import Fields
from data_juicer.utils.mm_utils import SpecialTokens, remove_special_tokens
from data_juicer.utils.model_utils import get_model
from loguru import logger
from PIL import Image

from .batching import check_dtype, one_process_per_gpu, resolve_model_dir, torch_dtype

OP_NAME = "fast_image_regeneration_mapper"
REGENERATED = "regenerated"
JPEG_QUALITY = 95


def load_text_to_image(model_dir: str, dtype: str, device: str = "cpu"):
    """A diffusers text-to-image pipeline on ``device``; called through Data-Juicer's model cache (get_model)."""
    from diffusers import AutoPipelineForText2Image

    pipeline = AutoPipelineForText2Image.from_pretrained(model_dir, dtype=torch_dtype(dtype, device))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


@dataclass(frozen=True)
class Drawing:
    """One image to draw: its prompt, its seed and the file it goes to."""

    prompt: str
    seed: int
    path: str


@TAGGING_OPS.register_module(OP_NAME)
@OPERATORS.register_module(OP_NAME)
class FastImageRegenerationMapper(Mapper):
    """Draw each selected sample's images anew from their captions; new samples replace or join their sources."""

    _accelerator = "cuda"
    _batched_op = True

    def __init__(self, hf_diffusion: str = "CompVis/stable-diffusion-v1-4", save_dir: Optional[str] = None,
                 num_inference_steps: int = 25, guidance_scale: float = 7.5, height: Optional[int] = None,
                 width: Optional[int] = None, seed: int = 1024, keep_original_sample: bool = True,
                 select_meta_key: Optional[str] = None, select_below: float = 0.5, gpu_batch_size: int = 16,
                 dtype: str = "auto", *args, **kwargs):
        """
        :param hf_diffusion: diffusers text-to-image folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param save_dir: folder for the new images (default: $DJ_PRODUCED_DATA_DIR/fast_image_regeneration_mapper).
        :param num_inference_steps: denoising steps per image.
        :param guidance_scale: classifier-free guidance scale (guidance is off at <= 1).
        :param height: image height in pixels (a multiple of 8; None: the model's own).
        :param width: image width in pixels (a multiple of 8; None: the model's own).
        :param seed: the seed every image's own seed is derived from.
        :param keep_original_sample: keep each regenerated source sample next to the new one.
        :param select_meta_key: regenerate only samples whose ``__dj__meta__`` value under this key is
            below ``select_below``; None regenerates every sample with an image.
        :param gpu_batch_size: prompts per pipeline call.
        :param dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'.
        """
        kwargs.setdefault("memory", "8GB")
        kwargs.setdefault("batch_size", 1024)
        super().__init__(*args, **one_process_per_gpu(kwargs))
        if num_inference_steps < 1 or gpu_batch_size < 1:
            raise ValueError("num_inference_steps and gpu_batch_size must be >= 1")
        if any(side is not None and (side < 8 or side % 8) for side in (height, width)):
            raise ValueError(f"height and width must be multiples of 8, got {height} x {width}")
        check_dtype(dtype)
        produced = os.environ.get("DJ_PRODUCED_DATA_DIR")
        save_dir = save_dir or (os.path.join(produced, OP_NAME) if produced else None)
        if not save_dir:
            raise ValueError(f"{OP_NAME} needs save_dir (or DJ_PRODUCED_DATA_DIR): the folder for the new images")
        self.save_dir = os.path.abspath(save_dir)
        self.model_dir = resolve_model_dir(hf_diffusion)
        self.call_args = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                              height=height, width=width)
        self.seed = seed
        self.keep_original_sample = keep_original_sample
        self.select_meta_key, self.select_below = select_meta_key, select_below
        self.gpu_batch_size = gpu_batch_size
        self.model_key = functools.partial(load_text_to_image, self.model_dir, dtype)

    def _selected(self, sample: dict) -> bool:
        if not sample.get(self.image_key):
            return False
        if self.select_meta_key is None:
            return True
        value = (sample.get(Fields.meta) or {}).get(self.select_meta_key)
        if value is None:
            raise ValueError(f"sample {sample.get('id')!r} has no meta value {self.select_meta_key!r} "
                             f"(tag it first, e.g. with stats_quantile_tagger)")
        return value < self.select_below

    def _prompts(self, sample: dict) -> list[str]:
        """Each image's prompt: the caption of its chunk ('' for an image no chunk captions)."""
        prompts, images = [], sample[self.image_key]
        for chunk in sample[self.text_key].split(SpecialTokens.eoc):
            count = chunk.count(SpecialTokens.image)
            prompts += [remove_special_tokens(chunk)] * count
        return (prompts + [""] * len(images))[:len(images)]

    def drawing(self, source: str, prompt: str) -> Drawing:
        """Where the picture of ``prompt`` for the image ``source`` goes, and its seed."""
        seed_key = json.dumps([self.seed, os.path.basename(source), prompt])
        seed = int.from_bytes(hashlib.sha256(seed_key.encode()).digest()[:8], "big") & (2 ** 63 - 1)
        name_key = json.dumps([self.model_dir, self.call_args, seed, source, prompt], sort_keys=True)
        digest = hashlib.sha256(name_key.encode()).hexdigest()
        stem = os.path.splitext(os.path.basename(source))[0]
        return Drawing(prompt, seed, os.path.join(self.save_dir, digest[:2], f"{stem}_{digest[:16]}.jpg"))

    @torch.no_grad()
    def draw(self, pipeline, prompts: list[str], seeds: list[int]) -> list[Optional[Image.Image]]:
        """One image per prompt (None where the safety checker flags it), ``gpu_batch_size`` prompts per call."""
        images = []
        for start in range(0, len(prompts), self.gpu_batch_size):
            end = start + self.gpu_batch_size
            generators = [torch.Generator().manual_seed(seed) for seed in seeds[start:end]]
            output = pipeline(prompt=prompts[start:end], generator=generators, **self.call_args)
            flagged = getattr(output, "nsfw_content_detected", None) or [False] * len(output.images)
            images += [None if unsafe else image for image, unsafe in zip(output.images, flagged)]
        return images

    def _write(self, image: Image.Image, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.partial"
        image.save(partial, format="JPEG", quality=JPEG_QUALITY)
        os.replace(partial, path)

    def _regenerated_copy(self, sample: dict, paths: list[str]) -> dict:
        new = copy.deepcopy(sample)
        new[self.image_key] = paths
        if Fields.stats in new:
            new[Fields.stats] = {}
        new[Fields.meta] = dict(new.get(Fields.meta) or {}, **{REGENERATED: True})
        return new

    def process_batched(self, samples, rank=None):
        keys = list(samples.keys())
        rows = [{key: samples[key][i] for key in keys} for i in range(len(samples[self.text_key]))]
        plans: list[Optional[list[Drawing]]] = []  # per sample: one drawing per image, or None (left as it is)
        for row in rows:
            prompts = self._prompts(row) if self._selected(row) else []
            plan = [self.drawing(source, prompt) for source, prompt in zip(row[self.image_key] or [], prompts)]
            plans.append(plan if plan and all(prompts) else None)
        wanted = {drawing.path: drawing for plan in plans if plan for drawing in plan}
        todo = [drawing for path, drawing in sorted(wanted.items()) if not os.path.exists(path)]
        if todo:
            pipeline = get_model(self.model_key, rank, self.use_cuda())
            for drawing, image in zip(todo, self.draw(pipeline, [d.prompt for d in todo], [d.seed for d in todo])):
                if image is not None:
                    self._write(image, drawing.path)
        output, flagged = [], 0
        for row, plan in zip(rows, plans):
            done = plan is not None and all(os.path.exists(drawing.path) for drawing in plan)
            flagged += plan is not None and not done
            if not done or self.keep_original_sample:
                output.append(row)
            if done:
                output.append(self._regenerated_copy(row, [drawing.path for drawing in plan]))
        if flagged:
            logger.warning(f"{OP_NAME}: the safety checker flagged images of {flagged} sample(s); "
                           f"they were kept as they were")
        return {key: [row[key] for row in output] for key in keys}
