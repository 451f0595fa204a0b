"""This submission's custom Data-Juicer operators, one per file; loading this folder registers them all.

A recipe loads them with (paths relative to the recipe file when run through ``bsynth recipe run``)::

    custom_operator_paths: ["../ops"]

Operators:
  fast_image_text_similarity_filter  CLIP image-text similarity, batched, parallel decoding, bf16 on GPU
  fast_image_captioning_mapper       BLIP-2 captions, batched greedy/beam/sampled generation, bf16 on GPU
  stats_quantile_tagger              writes each sample's rank quantile of a stats field into its meta
  repeat_to_cap_selector             repeats the best-scored samples until a target count is reached
``batching.py`` holds what the two model operators share (image loading workers, device and dtype).
"""

from . import (fast_image_captioning_mapper, fast_image_text_similarity_filter, repeat_to_cap_selector,
               stats_quantile_tagger)

__all__ = ["fast_image_captioning_mapper", "fast_image_text_similarity_filter", "repeat_to_cap_selector",
           "stats_quantile_tagger"]
