"""Data-Juicer filter ``fast_image_text_similarity_filter``: CLIP image-text similarity, batched.

A faster drop-in for Data-Juicer's ``image_text_similarity_filter`` with any Hugging Face
``CLIPModel`` folder: images are decoded, resized and cropped by the worker processes of a torch
DataLoader (sent as uint8, rescaled and normalised on the device), image and text embeddings are
computed in large batches (bfloat16 on a GPU by default), and each distinct image of a batch is
encoded once. The texts are tokenized by a thread while the device encodes the images, and
encoded after them. The score is the built-in's,
``logits_per_text / 100`` (= cosine similarity for a trained CLIP, whose logit scale is 100),
reduced over the images of a chunk with ``reduce_mode``; it is stored, one value per chunk, under
the same stats key (``__dj__stats__.image_text_similarity``) that selectors and the built-in read.

A sample whose score is already there is not scored again; samples written by
``fast_image_captioning_mapper`` carry no score, so a second instance of this filter after the
captioner scores exactly the new captions.

    process:
      - fast_image_text_similarity_filter:
          hf_clip: openai/clip-vit-base-patch32   # a folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME
          min_score: 0.2
          batch_size: 65536     # samples per Data-Juicer batch (each starts the decoding workers anew)
          gpu_batch_size: 256   # images per forward pass
          num_workers: 8        # image decoding processes
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from data_juicer.ops.base_op import OPERATORS, Filter
from data_juicer.utils.constant import Fields, StatsKeys
from data_juicer.utils.model_utils import get_model

from .batching import (REDUCERS, PixelScaling, check_dtype, check_filter_options, one_process_per_gpu, pixel_batches,
                       resolve_model_dir, torch_dtype, unscored_chunks)

OP_NAME = "fast_image_text_similarity_filter"


def load_clip(model_dir: str, dtype: str, device: str = "cpu"):
    """(model, processor) on ``device``; called through Data-Juicer's model cache (get_model)."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir, dtype=torch_dtype(dtype, device)).to(device).eval()
    return model, CLIPProcessor.from_pretrained(model_dir)


@OPERATORS.register_module(OP_NAME)
class FastImageTextSimilarityFilter(Filter):
    """Keep samples whose CLIP image-text similarity is in [min_score, max_score]."""

    _accelerator = "cuda"
    _batched_op = True

    def __init__(self, hf_clip: str = "openai/clip-vit-base-patch32", min_score: float = 0.1,
                 max_score: float = 1.0, any_or_all: str = "any", reduce_mode: str = "avg",
                 gpu_batch_size: int = 256, num_workers: int = 8, dtype: str = "auto", *args, **kwargs):
        """
        :param hf_clip: CLIPModel folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param min_score: the lowest similarity kept.
        :param max_score: the highest similarity kept.
        :param any_or_all: keep a sample when 'any' or 'all' of its chunks are in range.
        :param reduce_mode: 'avg', 'max' or 'min' over the images of one chunk.
        :param gpu_batch_size: images (and texts) per forward pass.
        :param num_workers: DataLoader processes decoding and preprocessing images.
        :param dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'.
        """
        kwargs.setdefault("memory", "4GB")
        kwargs.setdefault("batch_size", 65536)
        super().__init__(*args, **one_process_per_gpu(kwargs))
        check_filter_options(reduce_mode, any_or_all, gpu_batch_size, num_workers)
        check_dtype(dtype)
        self.min_score, self.max_score = min_score, max_score
        self.any = any_or_all == "any"
        self.reduce = REDUCERS[reduce_mode]
        self.gpu_batch_size, self.num_workers = gpu_batch_size, num_workers
        self.model_key = functools.partial(load_clip, resolve_model_dir(hf_clip), dtype)

    def _chunks(self, samples) -> list[tuple[int, str, list[str]]]:
        return unscored_chunks(samples, self.text_key, self.image_key, StatsKeys.image_text_similarity)

    @torch.no_grad()
    def _image_embeddings(self, model, scaling: PixelScaling, batches: Iterator) -> torch.Tensor:
        parts = []
        for pixels in batches:
            features = model.get_image_features(pixel_values=scaling(pixels, model.dtype)).pooler_output
            parts.append(torch.nn.functional.normalize(features.float(), dim=-1))
        return torch.cat(parts)

    def _tokenized(self, tokenizer, texts: list[str], max_length: int) -> list:
        """The texts as padded token batches of ``gpu_batch_size``, on the CPU."""
        return [tokenizer(texts[start:start + self.gpu_batch_size], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
                for start in range(0, len(texts), self.gpu_batch_size)]

    @torch.no_grad()
    def _text_embeddings(self, model, token_batches: list) -> torch.Tensor:
        parts = []
        for tokens in token_batches:
            features = model.get_text_features(**tokens.to(model.device)).pooler_output
            parts.append(torch.nn.functional.normalize(features.float(), dim=-1))
        return torch.cat(parts)

    def compute_stats_batched(self, samples, rank=None):
        pending = [index for index, stats in enumerate(samples[Fields.stats])
                   if stats.get(StatsKeys.image_text_similarity) is None]
        chunks = self._chunks(samples)
        scores: dict[int, list[float]] = {}
        if chunks:
            model, processor = get_model(self.model_key, rank, self.use_cuda())
            paths = sorted({path for _, _, chunk_paths in chunks for path in chunk_paths})
            row = {path: i for i, path in enumerate(paths)}
            # Resized and cropped by the decoding workers, which start now, and scaled on the device;
            # a thread tokenizes the texts meanwhile (the tokenizer's CPU time would otherwise leave
            # the device idle), and the device encodes them after the images.
            scaling = PixelScaling(processor.image_processor)
            decoded = pixel_batches(paths, scaling.prepare, self.gpu_batch_size, self.num_workers, model.device)
            with ThreadPoolExecutor(1) as tokenizing:
                token_batches = tokenizing.submit(self._tokenized, processor.tokenizer, [text for _, text, _ in chunks],
                                                  model.config.text_config.max_position_embeddings)
                image_embeds = self._image_embeddings(model, scaling, decoded)
                text_embeds = self._text_embeddings(model, token_batches.result())
            scale = model.logit_scale.float().exp().item() / 100.0
            # One (image, chunk) pair per image of every chunk, all scored in one product on the device.
            pair_images = [row[path] for _, _, chunk_paths in chunks for path in chunk_paths]
            pair_chunks = [number for number, (_, _, chunk_paths) in enumerate(chunks) for _ in chunk_paths]
            device = image_embeds.device
            similarity = (image_embeds[torch.tensor(pair_images, device=device)]
                          * text_embeds[torch.tensor(pair_chunks, device=device)]).sum(dim=-1)
            similarity = (similarity.cpu().double() * scale).numpy()
            bounds = np.cumsum([len(chunk_paths) for _, _, chunk_paths in chunks])[:-1]
            for (index, _, _), chunk_similarity in zip(chunks, np.split(similarity, bounds)):
                scores.setdefault(index, []).append(float(self.reduce(chunk_similarity)))
        for index in pending:
            samples[Fields.stats][index][StatsKeys.image_text_similarity] = scores.get(index, [])
        return samples

    def process_batched(self, samples):
        keep = []
        for stats in samples[Fields.stats]:
            values = stats[StatsKeys.image_text_similarity]
            if not values:
                keep.append(True)
                continue
            in_range = [self.get_keep_boolean(value, self.min_score, self.max_score) for value in values]
            keep.append(any(in_range) if self.any else all(in_range))
        return keep
