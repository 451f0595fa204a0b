"""What the per-image scoring filters share: one score per distinct image of a sample, batched.

Not an operator. ``fast_image_aesthetics_filter`` and ``fast_image_watermark_filter`` score images
without their text, as Data-Juicer's ``image_aesthetics_filter`` and ``image_watermark_filter`` do:
a sample's stat is a list with one value per distinct image path of the sample, in order of first
appearance (the built-ins read a sample's images into a dict keyed by path), and is empty for a
sample without images (which is kept). Each distinct path of a Data-Juicer batch is decoded by the
worker processes of a torch DataLoader (``batching.pixel_batches``) and scored once,
``gpu_batch_size`` images per forward pass. A sample whose stat is already there is not scored again.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

import torch
from data_juicer.ops.base_op import Filter
from data_juicer.utils.constant import Fields
from data_juicer.utils.model_utils import get_model

from .batching import PixelScaling, one_process_per_gpu, pixel_batches


class ImageScoreFilter(Filter):
    """Keep samples whose images score in [min_score, max_score] ('any' or 'all' of their images).

    An operator sets ``stats_key`` and ``model_key`` (a get_model loader returning
    ``(model, image_processor)``) and defines ``score(model, pixel_values) -> [B] float tensor``.
    """

    _accelerator = "cuda"
    _batched_op = True
    stats_key: str
    model_key: Callable

    def __init__(self, min_score: float | None, max_score: float | None, any_or_all: str, gpu_batch_size: int,
                 num_workers: int, *args, **kwargs):
        kwargs.setdefault("memory", "2GB")
        kwargs.setdefault("batch_size", 65536)
        super().__init__(*args, **one_process_per_gpu(kwargs))
        if any_or_all not in ("any", "all"):
            raise ValueError(f"any_or_all must be 'any' or 'all', got {any_or_all!r}")
        if gpu_batch_size < 1 or num_workers < 0:
            raise ValueError("gpu_batch_size must be >= 1 and num_workers >= 0")
        self.min_score, self.max_score = min_score, max_score
        self.any = any_or_all == "any"
        self.gpu_batch_size, self.num_workers = gpu_batch_size, num_workers

    @abstractmethod
    def score(self, model, pixel_values: torch.Tensor) -> torch.Tensor:
        """One score per image of a preprocessed batch."""

    @torch.no_grad()
    def score_paths(self, model, image_processor, paths: list[str]) -> list[float]:
        """One score per path, in order."""
        scaling = PixelScaling(image_processor)
        scores = [self.score(model, scaling(pixels, model.dtype)).float().cpu()
                  for pixels in pixel_batches(paths, scaling.prepare, self.gpu_batch_size, self.num_workers,
                                              model.device)]
        return torch.cat(scores).tolist()

    def compute_stats_batched(self, samples, rank=None):
        stats = samples[Fields.stats]
        images = samples.get(self.image_key, [None] * len(stats))
        pending = {index: list(dict.fromkeys(images[index] or [])) for index in range(len(stats))
                   if stats[index].get(self.stats_key) is None}
        paths = sorted({path for sample_paths in pending.values() for path in sample_paths})
        scores = {}
        if paths:
            model, image_processor = get_model(self.model_key, rank, self.use_cuda())
            scores = dict(zip(paths, self.score_paths(model, image_processor, paths)))
        for index, sample_paths in pending.items():
            stats[index][self.stats_key] = [scores[path] for path in sample_paths]
        return samples

    def process_batched(self, samples):
        keep = []
        for stats in samples[Fields.stats]:
            in_range = [self.get_keep_boolean(value, self.min_score, self.max_score) for value in stats[self.stats_key]]
            keep.append(not in_range or (any(in_range) if self.any else all(in_range)))
        return keep
