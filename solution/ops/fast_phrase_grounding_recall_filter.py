"""Data-Juicer filter ``fast_phrase_grounding_recall_filter``: OWL-ViT phrase-grounding recall, batched.

A faster drop-in for Data-Juicer's ``phrase_grounding_recall_filter`` with any Hugging Face
``OwlViTForObjectDetection`` folder. The recall of a chunk is the built-in's: the caption's noun
phrases (found as the built-in finds them, ``noun_phrases.NounPhrases``, from an NLTK data folder
that nothing downloads at run time) are the detection queries; an image's boxes are taken by
descending confidence, at most one per phrase and as many as there are phrases, skipping boxes
below ``conf_thr``, boxes covering more than ``large_area_ratio_thr`` of the image and boxes
overlapping an earlier hit by more than ``iou_thr``; recall = hit phrases / phrases, reduced over a
chunk's images with ``reduce_mode``; a chunk without phrases scores 1.0. It is stored, one value per
chunk, under the built-in's stats key (``__dj__stats__.phrase_grounding_recall``).

What is batched: each distinct image of a Data-Juicer batch is decoded and resized by DataLoader
workers (sent as uint8, rescaled and normalised on the device) and run through the vision tower
once, ``gpu_batch_size`` at a time (bfloat16 on a GPU by default); each distinct phrase is encoded
once; the class head then scores every (image, chunk) pair of an image batch against its chunk's
phrases in one call (padded phrase slots masked out), and boxes come from the box head once per
image. Unlike the built-in, a chunk without phrases does not shift the images of the chunks after
it (the built-in forgets to advance past its images).

A sample whose recall is already there is not scored again.

    process:
      - fast_phrase_grounding_recall_filter:
          hf_owlvit: google/owlvit-base-patch32   # a folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME
          nltk_data: nltk_data                    # the same: punkt_tab + averaged_perceptron_tagger_eng
          min_recall: 0.1
          batch_size: 8192       # samples per Data-Juicer batch (noun phrases are found on the CPU first)
          gpu_batch_size: 128    # images per forward pass
          num_workers: 8         # image decoding processes
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch
from data_juicer.ops.base_op import OPERATORS, Filter
from data_juicer.utils.constant import Fields, StatsKeys
from data_juicer.utils.mm_utils import iou
from data_juicer.utils.model_utils import get_model
from PIL import Image, ImageOps

from .batching import (REDUCERS, PixelScaling, check_dtype, check_filter_options, one_process_per_gpu, pixel_batches,
                       resolve_model_dir, torch_dtype, unscored_chunks)
from .noun_phrases import NounPhrases

OP_NAME = "fast_phrase_grounding_recall_filter"


def load_owlvit(model_dir: str, dtype: str, device: str = "cpu"):
    """(model, processor) on ``device``; called through Data-Juicer's model cache (get_model)."""
    from transformers import OwlViTForObjectDetection, OwlViTProcessor

    model = OwlViTForObjectDetection.from_pretrained(model_dir, dtype=torch_dtype(dtype, device))
    return model.to(device).eval(), OwlViTProcessor.from_pretrained(model_dir)


def grounded_recall(scores: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor, num_phrases: int,
                    image_area: float, iou_thr: float, large_area_ratio_thr: float) -> float:
    """The share of phrases hit by one image's detections (score, phrase index, x0 y0 x1 y1 box in pixels)."""
    order = scores.argsort(descending=True)[:num_phrases]
    hits: dict[int, list[float]] = {}
    for box, label in zip(boxes[order].tolist(), labels[order].tolist()):
        if label in hits:
            continue
        x0, y0, x1, y1 = box
        if (x1 - x0) * (y1 - y0) / image_area > large_area_ratio_thr:
            continue
        if any(iou(box, hit) > iou_thr for hit in hits.values()):
            continue
        hits[label] = box
    return len(hits) / num_phrases


@OPERATORS.register_module(OP_NAME)
class FastPhraseGroundingRecallFilter(Filter):
    """Keep samples whose OWL-ViT phrase-grounding recall is in [min_recall, max_recall]."""

    _accelerator = "cuda"
    _batched_op = True

    def __init__(self, hf_owlvit: str = "google/owlvit-base-patch32", nltk_data: str = "nltk_data",
                 min_recall: float = 0.1, max_recall: float = 1.0, horizontal_flip: bool = False,
                 vertical_flip: bool = False, any_or_all: str = "any", reduce_mode: str = "avg",
                 iou_thr: float = 0.5, large_area_ratio_thr: float = 0.95, conf_thr: float = 0.0,
                 gpu_batch_size: int = 128, num_workers: int = 8, dtype: str = "auto", *args, **kwargs):
        """
        :param hf_owlvit: OwlViTForObjectDetection folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param nltk_data: NLTK data folder (punkt_tab, averaged_perceptron_tagger_eng), or a name
            under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param min_recall: the lowest recall kept.
        :param max_recall: the highest recall kept.
        :param horizontal_flip: mirror each image (left to right) before detecting.
        :param vertical_flip: flip each image (top to bottom) before detecting.
        :param any_or_all: keep a sample when 'any' or 'all' of its chunks are in range.
        :param reduce_mode: 'avg', 'max' or 'min' over the images of one chunk.
        :param iou_thr: a box overlapping an earlier hit by more than this IoU is skipped.
        :param large_area_ratio_thr: a box covering more than this share of the image is skipped.
        :param conf_thr: boxes scoring at most this confidence are dropped.
        :param gpu_batch_size: images (and phrases) per forward pass.
        :param num_workers: DataLoader processes decoding and preprocessing images.
        :param dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'.
        """
        kwargs.setdefault("memory", "4GB")
        kwargs.setdefault("batch_size", 8192)
        super().__init__(*args, **one_process_per_gpu(kwargs))
        check_filter_options(reduce_mode, any_or_all, gpu_batch_size, num_workers)
        check_dtype(dtype)
        self.min_recall, self.max_recall = min_recall, max_recall
        self.flips = (horizontal_flip, vertical_flip)
        self.any = any_or_all == "any"
        self.reduce = REDUCERS[reduce_mode]
        self.iou_thr, self.large_area_ratio_thr, self.conf_thr = iou_thr, large_area_ratio_thr, conf_thr
        self.gpu_batch_size, self.num_workers = gpu_batch_size, num_workers
        self.noun_phrases = NounPhrases(resolve_model_dir(nltk_data))
        self.model_key = functools.partial(load_owlvit, resolve_model_dir(hf_owlvit), dtype)

    def _chunks(self, samples) -> list[tuple[int, list[str], list[str]]]:
        """(sample index, noun phrases, image paths) of each image chunk of the samples without a recall."""
        return [(index, self.noun_phrases(text), paths) for index, text, paths in
                unscored_chunks(samples, self.text_key, self.image_key, StatsKeys.phrase_grounding_recall)]

    def _prepare(self, scaling: PixelScaling, image: Image.Image) -> dict:
        """In a decoding worker: the flipped image, resized for the model, and its (height, width)."""
        if self.flips[0]:
            image = ImageOps.mirror(image)
        if self.flips[1]:
            image = ImageOps.flip(image)
        return {"pixels": scaling.prepare(image), "size": torch.tensor([image.height, image.width])}

    @torch.no_grad()
    def _phrase_embeddings(self, model, tokenizer, phrases: list[str]) -> torch.Tensor:
        """[phrases, D] normalised text embeddings, as OwlViTModel gives the detection head."""
        parts = []
        for start in range(0, len(phrases), self.gpu_batch_size):
            tokens = tokenizer(phrases[start:start + self.gpu_batch_size], padding=True, truncation=True,
                               return_tensors="pt").to(model.device)
            embeds = model.owlvit.get_text_features(**tokens).pooler_output
            parts.append(embeds / torch.linalg.norm(embeds, ord=2, dim=-1, keepdim=True))
        return torch.cat(parts)

    @torch.no_grad()
    def _recalls(self, model, processor, scaling: PixelScaling, batches: Iterator, image_pairs: list[list[int]],
                 pair_phrases: list[list[int]], phrase_embeds: torch.Tensor) -> list[float]:
        """One recall per (chunk, image) pair; ``image_pairs[i]``: the pairs of image i, in batch order;
        ``pair_phrases[p]``: the rows of pair p's phrases in ``phrase_embeds``."""
        from transformers.models.owlvit.modeling_owlvit import OwlViTObjectDetectionOutput

        recalls = [0.0] * len(pair_phrases)
        first = 0
        for batch in batches:
            feature_map, _ = model.image_embedder(pixel_values=scaling(batch["pixels"], model.dtype))
            rows, height, width, dim = feature_map.shape
            image_feats = feature_map.reshape(rows, height * width, dim)
            boxes = model.box_predictor(image_feats, feature_map)
            pairs = [(row, pair) for row in range(rows) for pair in image_pairs[first + row]]
            first += rows
            if not pairs:
                continue
            # each pair's phrase embeddings, padded to the most phrases of a pair here; padding masked out
            most = max(len(pair_phrases[pair]) for _, pair in pairs)
            slots = [pair_phrases[pair] + [0] * (most - len(pair_phrases[pair])) for _, pair in pairs]
            valid = [[True] * len(pair_phrases[pair]) + [False] * (most - len(pair_phrases[pair])) for _, pair in pairs]
            queries = phrase_embeds[torch.tensor(slots, device=phrase_embeds.device)]
            query_mask = torch.tensor(valid, device=queries.device)
            pair_rows = torch.tensor([row for row, _ in pairs], device=feature_map.device)
            logits, _ = model.class_predictor(image_feats[pair_rows], queries, query_mask)
            sizes = batch["size"][pair_rows].cpu()
            # post-processed on the CPU: one copy of the batch's logits and boxes instead of three per pair
            detections = processor.image_processor.post_process_object_detection(
                OwlViTObjectDetectionOutput(logits=logits.cpu(), pred_boxes=boxes[pair_rows].float().cpu()),
                threshold=self.conf_thr, target_sizes=sizes)
            for (_, pair), found, (image_height, image_width) in zip(pairs, detections, sizes.tolist()):
                recalls[pair] = grounded_recall(found["scores"], found["labels"], found["boxes"],
                                                len(pair_phrases[pair]), float(image_height * image_width),
                                                self.iou_thr, self.large_area_ratio_thr)
        return recalls

    def compute_stats_batched(self, samples, rank=None):
        pending = [index for index, stats in enumerate(samples[Fields.stats])
                   if stats.get(StatsKeys.phrase_grounding_recall) is None]
        chunks = self._chunks(samples)
        grounded = [number for number, (_, phrases, _) in enumerate(chunks) if phrases]
        chunk_recalls = {number: 1.0 for number, (_, phrases, _) in enumerate(chunks) if not phrases}
        if grounded:
            model, processor = get_model(self.model_key, rank, self.use_cuda())
            scaling = PixelScaling(processor.image_processor)
            paths = sorted({path for number in grounded for path in chunks[number][2]})
            decoded = pixel_batches(paths, functools.partial(self._prepare, scaling), self.gpu_batch_size,
                                    self.num_workers, model.device)
            phrases = sorted({phrase for number in grounded for phrase in chunks[number][1]})
            phrase_row = {phrase: row for row, phrase in enumerate(phrases)}
            phrase_embeds = self._phrase_embeddings(model, processor.tokenizer, phrases)
            # one (chunk, image) pair per image of every grounded chunk
            pairs = [(number, path) for number in grounded for path in chunks[number][2]]
            image_row = {path: row for row, path in enumerate(paths)}
            image_pairs: list[list[int]] = [[] for _ in paths]
            for pair, (_, path) in enumerate(pairs):
                image_pairs[image_row[path]].append(pair)
            pair_phrases = [[phrase_row[phrase] for phrase in chunks[number][1]] for number, _ in pairs]
            recalls = self._recalls(model, processor, scaling, decoded, image_pairs, pair_phrases, phrase_embeds)
            per_chunk: dict[int, list[float]] = {}
            for (number, _), recall in zip(pairs, recalls):
                per_chunk.setdefault(number, []).append(recall)
            chunk_recalls.update({number: float(self.reduce(values)) for number, values in per_chunk.items()})
        scores: dict[int, list[float]] = {}
        for number, (index, _, _) in enumerate(chunks):
            scores.setdefault(index, []).append(chunk_recalls[number])
        for index in pending:
            samples[Fields.stats][index][StatsKeys.phrase_grounding_recall] = scores.get(index, [])
        return samples

    def process_batched(self, samples):
        keep = []
        for stats in samples[Fields.stats]:
            values = stats[StatsKeys.phrase_grounding_recall]
            if not values:
                keep.append(True)
                continue
            in_range = [self.get_keep_boolean(value, self.min_recall, self.max_recall) for value in values]
            keep.append(any(in_range) if self.any else all(in_range))
        return keep
