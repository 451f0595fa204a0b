"""Data-Juicer filter ``fast_image_watermark_filter``: watermark probability, batched.

A faster drop-in for Data-Juicer's ``image_watermark_filter`` with any Hugging Face image
classification folder whose class 1 means "watermark" (as in ``amrul-hzz/watermark_detector``, a
ViT), same parameters and stats key (``__dj__stats__.image_watermark_prob``: the softmax
probability of class 1, one per distinct image, see ``image_scores``). Images are decoded and
preprocessed by DataLoader workers with the folder's image processor and classified
``gpu_batch_size`` at a time, bfloat16 on a GPU by default. A sample is kept when its images'
probabilities are at most ``prob_threshold`` ('any' or 'all' of them).

    process:
      - fast_image_watermark_filter:
          hf_watermark_model: amrul-hzz/watermark_detector  # a folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME
          prob_threshold: 0.8
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

OP_NAME = "fast_image_watermark_filter"
WATERMARK_CLASS = 1  # the built-in reads class 1 as "watermark"


def load_watermark_classifier(model_dir: str, dtype: str, device: str = "cpu"):
    """(model, image processor) on ``device``; called through Data-Juicer's model cache (get_model)."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(model_dir, dtype=torch_dtype(dtype, device))
    if model.config.num_labels <= WATERMARK_CLASS:
        raise ValueError(f"{model_dir}: a watermark classifier needs class {WATERMARK_CLASS} (watermark); "
                         f"it has {model.config.num_labels} label(s)")
    return model.to(device).eval(), AutoImageProcessor.from_pretrained(model_dir)


@OPERATORS.register_module(OP_NAME)
class FastImageWatermarkFilter(ImageScoreFilter):
    """Keep samples whose images' watermark probabilities are at most ``prob_threshold``."""

    stats_key = StatsKeys.image_watermark_prob

    def __init__(self, hf_watermark_model: str = "amrul-hzz/watermark_detector", prob_threshold: float = 0.8,
                 any_or_all: str = "any", gpu_batch_size: int = 256, num_workers: int = 8, dtype: str = "auto",
                 *args, **kwargs):
        """
        :param hf_watermark_model: image classification folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param prob_threshold: the highest watermark probability kept.
        :param any_or_all: keep a sample when 'any' or 'all' of its images are at most the threshold.
        :param gpu_batch_size: images per forward pass.
        :param num_workers: DataLoader processes decoding and preprocessing images.
        :param dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'.
        """
        kwargs.setdefault("memory", "1GB")
        super().__init__(None, prob_threshold, any_or_all, gpu_batch_size, num_workers, *args, **kwargs)
        check_dtype(dtype)
        self.model_key = functools.partial(load_watermark_classifier, resolve_model_dir(hf_watermark_model), dtype)

    def score(self, model, pixel_values: torch.Tensor) -> torch.Tensor:
        return model(pixel_values=pixel_values).logits.float().softmax(dim=-1)[:, WATERMARK_CLASS]
