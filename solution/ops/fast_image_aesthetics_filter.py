"""Data-Juicer filter ``fast_image_aesthetics_filter``: LAION aesthetics scores, batched.

A faster drop-in for Data-Juicer's ``image_aesthetics_filter`` with the same predictor folders
(``shunk031/aesthetics-predictor-*``: CLIP vision tower, projection, LAION head; read by
``aesthetics_predictor_model``), same parameters and stats key
(``__dj__stats__.image_aesthetics_scores``: one score per distinct image, see ``image_scores``).
Images are decoded and preprocessed by DataLoader workers with the folder's CLIP processor and
scored ``gpu_batch_size`` at a time, bfloat16 on a GPU by default. The predictors score on a 0-10
scale; the built-in divides by 10 for every model whose name contains "aesthetics-predictor" (all
of them), so the default ``score_divisor`` of 10 gives its stats whatever the folder is called.

    process:
      - fast_image_aesthetics_filter:
          hf_scorer_model: shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE   # or a folder
          min_score: 0.5        # of score / score_divisor
          gpu_batch_size: 256   # images per forward pass
          num_workers: 8        # image decoding processes
"""

from __future__ import annotations

import functools

import torch
from data_juicer.ops.base_op import OPERATORS
from data_juicer.utils.constant import StatsKeys

from .batching import check_dtype, resolve_model_dir, torch_dtype
from .image_scores import ImageScoreFilter

OP_NAME = "fast_image_aesthetics_filter"


def load_aesthetics_predictor(model_dir: str, dtype: str, device: str = "cpu"):
    """(model, CLIP image processor) on ``device``; called through Data-Juicer's model cache (get_model)."""
    from transformers import CLIPProcessor

    from .aesthetics_predictor_model import AestheticsPredictor

    model = AestheticsPredictor.from_pretrained(model_dir, dtype=torch_dtype(dtype, device))
    return model.to(device).eval(), CLIPProcessor.from_pretrained(model_dir).image_processor


@OPERATORS.register_module(OP_NAME)
class FastImageAestheticsFilter(ImageScoreFilter):
    """Keep samples whose images' aesthetics scores are in [min_score, max_score]."""

    stats_key = StatsKeys.image_aesthetics_scores

    def __init__(self, hf_scorer_model: str = "shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE",
                 min_score: float = 0.5, max_score: float = 1.0, any_or_all: str = "any",
                 score_divisor: float = 10.0, gpu_batch_size: int = 256, num_workers: int = 8,
                 dtype: str = "auto", *args, **kwargs):
        """
        :param hf_scorer_model: aesthetics predictor folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param min_score: the lowest score kept.
        :param max_score: the highest score kept.
        :param any_or_all: keep a sample when 'any' or 'all' of its images are in range.
        :param score_divisor: the stat is the predictor's output divided by this (10: the built-in's 0-1 scale).
        :param gpu_batch_size: images per forward pass.
        :param num_workers: DataLoader processes decoding and preprocessing images.
        :param dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'.
        """
        super().__init__(min_score, max_score, any_or_all, gpu_batch_size, num_workers, *args, **kwargs)
        if score_divisor <= 0:
            raise ValueError(f"score_divisor must be > 0, got {score_divisor}")
        check_dtype(dtype)
        self.score_divisor = score_divisor
        self.model_key = functools.partial(load_aesthetics_predictor, resolve_model_dir(hf_scorer_model), dtype)

    def score(self, model, pixel_values: torch.Tensor) -> torch.Tensor:
        return model(pixel_values).float() / self.score_divisor
