"""Data-Juicer filter ``fast_image_text_matching_filter``: BLIP image-text matching, batched.

A faster drop-in for Data-Juicer's ``image_text_matching_filter`` with any Hugging Face
``BlipForImageTextRetrieval`` folder, same parameters and stats key
(``__dj__stats__.image_text_matching_score``). The score is the built-in's: the ITM head's
P(match), softmax of ``itm_score``, one (image, chunk text) pair at a time, reduced over the images
of a chunk with ``reduce_mode``, one value per chunk. Here images are decoded, optionally flipped,
resized by the worker processes of a torch DataLoader (sent as uint8, scaled on the device), each
distinct image of a Data-Juicer batch goes through the vision tower once, ``gpu_batch_size`` at a
time, and the text encoder then reads every pair of that image batch (cross-attending to its
image's embeddings), bfloat16 on a GPU by default. A thread tokenizes the texts of the next image
batches meanwhile. A sample whose score is already there is not scored again.

    process:
      - fast_image_text_matching_filter:
          hf_blip: Salesforce/blip-itm-base-coco   # a folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME
          min_score: 0.003
          batch_size: 65536     # samples per Data-Juicer batch (each starts the decoding workers anew)
          gpu_batch_size: 256   # images, and (image, text) pairs, per forward pass
          num_workers: 8        # image decoding processes
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from data_juicer.ops.base_op import OPERATORS, Filter
from data_juicer.utils.constant import Fields, StatsKeys
from data_juicer.utils.model_utils import get_model
from PIL import ImageOps

from .batching import (REDUCERS, PixelScaling, check_dtype, check_filter_options, one_process_per_gpu, pixel_batches,
                       resolve_model_dir, torch_dtype, unscored_chunks)

OP_NAME = "fast_image_text_matching_filter"


def load_blip_itm(model_dir: str, dtype: str, device: str = "cpu"):
    """(model, processor) on ``device``; called through Data-Juicer's model cache (get_model)."""
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    model = BlipForImageTextRetrieval.from_pretrained(model_dir, dtype=torch_dtype(dtype, device))
    return model.to(device).eval(), BlipProcessor.from_pretrained(model_dir)


class FlippedThen:
    """A decoding worker's step: the built-in's optional flips of the decoded image, then ``prepare``."""

    def __init__(self, prepare: Callable, horizontal: bool, vertical: bool):
        self.prepare, self.horizontal, self.vertical = prepare, horizontal, vertical

    def __call__(self, image) -> torch.Tensor:
        if self.horizontal:
            image = ImageOps.mirror(image)
        if self.vertical:
            image = ImageOps.flip(image)
        return self.prepare(image)


@OPERATORS.register_module(OP_NAME)
class FastImageTextMatchingFilter(Filter):
    """Keep samples whose BLIP image-text matching score is in [min_score, max_score]."""

    _accelerator = "cuda"
    _batched_op = True

    def __init__(self, hf_blip: str = "Salesforce/blip-itm-base-coco", min_score: float = 0.003,
                 max_score: float = 1.0, horizontal_flip: bool = False, vertical_flip: bool = False,
                 any_or_all: str = "any", reduce_mode: str = "avg", gpu_batch_size: int = 256,
                 num_workers: int = 8, dtype: str = "auto", *args, **kwargs):
        """
        :param hf_blip: BlipForImageTextRetrieval folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param min_score: the lowest matching probability kept.
        :param max_score: the highest matching probability kept.
        :param horizontal_flip: mirror each image left to right before scoring.
        :param vertical_flip: flip each image top to bottom before scoring.
        :param any_or_all: keep a sample when 'any' or 'all' of its chunks are in range.
        :param reduce_mode: 'avg', 'max' or 'min' over the images of one chunk.
        :param gpu_batch_size: images per vision forward pass, and pairs per text forward pass.
        :param num_workers: DataLoader processes decoding and preprocessing images.
        :param dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'.
        """
        kwargs.setdefault("memory", "4GB")
        kwargs.setdefault("batch_size", 65536)
        super().__init__(*args, **one_process_per_gpu(kwargs))
        check_filter_options(reduce_mode, any_or_all, gpu_batch_size, num_workers)
        check_dtype(dtype)
        self.min_score, self.max_score = min_score, max_score
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.any = any_or_all == "any"
        self.reduce = REDUCERS[reduce_mode]
        self.gpu_batch_size, self.num_workers = gpu_batch_size, num_workers
        self.model_key = functools.partial(load_blip_itm, resolve_model_dir(hf_blip), dtype)

    def _chunks(self, samples) -> list[tuple[int, str, list[str]]]:
        return unscored_chunks(samples, self.text_key, self.image_key, StatsKeys.image_text_matching_score)

    def _tokenized(self, processor, texts: list[str], max_length: int) -> list:
        """The texts as padded token batches of ``gpu_batch_size``, on the CPU."""
        return [processor(text=texts[start:start + self.gpu_batch_size], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
                for start in range(0, len(texts), self.gpu_batch_size)]

    def _match_probabilities(self, model, image_embeds: torch.Tensor, rows: torch.Tensor,
                             token_batches: list) -> torch.Tensor:
        """P(match) of each pair: the text of a token batch row against image ``rows[i]`` of the batch."""
        probabilities, start = [], 0
        for tokens in token_batches:
            tokens = tokens.to(model.device)
            embeds = image_embeds[rows[start:start + len(tokens["input_ids"])]]
            start += len(embeds)
            image_mask = torch.ones(embeds.shape[:-1], dtype=torch.long, device=embeds.device)
            hidden = model.text_encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                                        encoder_hidden_states=embeds, encoder_attention_mask=image_mask)
            logits = model.itm_head(hidden.last_hidden_state[:, 0, :])
            probabilities.append(logits.float().softmax(dim=-1)[:, 1])
        return torch.cat(probabilities)

    @torch.no_grad()
    def _pair_scores(self, model, processor, chunks: list[tuple[int, str, list[str]]]) -> np.ndarray:
        """P(match) of every (chunk, image) pair, chunk by chunk in image order."""
        paths = sorted({path for _, _, chunk_paths in chunks for path in chunk_paths})
        row = {path: i for i, path in enumerate(paths)}
        pair_image = np.array([row[path] for _, _, chunk_paths in chunks for path in chunk_paths])
        pair_text = [text for _, text, chunk_paths in chunks for _ in chunk_paths]
        # Pairs in image order: image batch b (rows b*G .. b*G+G-1) is read by the contiguous run
        # order[ends[b]:ends[b+1]] of pairs.
        order = np.argsort(pair_image, kind="stable")
        batch_starts = np.arange(0, len(paths) + self.gpu_batch_size, self.gpu_batch_size)
        ends = np.searchsorted(pair_image[order], batch_starts)
        max_length = model.config.text_config.max_position_embeddings
        scaling = PixelScaling(processor.image_processor)
        prepare = FlippedThen(scaling.prepare, self.horizontal_flip, self.vertical_flip)
        decoded = pixel_batches(paths, prepare, self.gpu_batch_size, self.num_workers, model.device)
        scores = np.empty(len(pair_image))
        with ThreadPoolExecutor(1) as tokenizing:
            token_batches = [tokenizing.submit(self._tokenized, processor,
                                               [pair_text[i] for i in order[ends[b]:ends[b + 1]]], max_length)
                             for b in range(len(ends) - 1)]
            for b, pixels in enumerate(decoded):
                image_embeds = model.vision_model(pixel_values=scaling(pixels, model.dtype)).last_hidden_state
                pairs = order[ends[b]:ends[b + 1]]
                rows = torch.as_tensor(pair_image[pairs] - batch_starts[b], device=image_embeds.device)
                probabilities = self._match_probabilities(model, image_embeds, rows, token_batches[b].result())
                scores[pairs] = probabilities.cpu().double().numpy()
        return scores

    def compute_stats_batched(self, samples, rank=None):
        pending = [index for index, stats in enumerate(samples[Fields.stats])
                   if stats.get(StatsKeys.image_text_matching_score) is None]
        chunks = self._chunks(samples)
        scores: dict[int, list[float]] = {}
        if chunks:
            model, processor = get_model(self.model_key, rank, self.use_cuda())
            pair_scores = self._pair_scores(model, processor, chunks)
            bounds = np.cumsum([len(chunk_paths) for _, _, chunk_paths in chunks])[:-1]
            for (index, _, _), chunk_scores in zip(chunks, np.split(pair_scores, bounds)):
                scores.setdefault(index, []).append(float(self.reduce(chunk_scores)))
        for index in pending:
            samples[Fields.stats][index][StatsKeys.image_text_matching_score] = scores.get(index, [])
        return samples

    def process_batched(self, samples):
        keep = []
        for stats in samples[Fields.stats]:
            values = stats[StatsKeys.image_text_matching_score]
            if not values:
                keep.append(True)
                continue
            in_range = [self.get_keep_boolean(value, self.min_score, self.max_score) for value in values]
            keep.append(any(in_range) if self.any else all(in_range))
        return keep
