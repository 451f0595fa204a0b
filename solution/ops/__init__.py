"""This submission's custom Data-Juicer operators, one per file; loading this folder registers them all.

A recipe loads them with (paths relative to the recipe file when run through ``bsynth recipe run``)::

    custom_operator_paths: ["../ops"]

Operators:
  fast_image_text_similarity_filter  CLIP image-text similarity, batched, parallel decoding, bf16 on GPU
  fast_image_captioning_mapper       BLIP-2 captions, batched greedy/beam/sampled generation, bf16 on GPU
  fast_image_text_matching_filter    BLIP image-text matching, batched, parallel decoding, bf16 on GPU
  fast_image_aesthetics_filter       LAION aesthetics predictor scores, batched, parallel decoding, bf16 on GPU
  fast_image_watermark_filter        watermark classifier probability, batched, parallel decoding, bf16 on GPU
  fast_phrase_grounding_recall_filter  OWL-ViT phrase-grounding recall, batched, parallel decoding, bf16 on GPU
  fast_image_regeneration_mapper     Stable Diffusion images drawn from the captions, batched, bf16 on GPU
  stats_quantile_tagger              writes each sample's rank quantile of a stats field into its meta
  repeat_to_cap_selector             repeats the best-scored samples until a target count is reached
  recaption_swap_selector            keeps a recaption instead of its source when it scores above a bar
``batching.py`` holds what the model operators share (image loading workers, device and dtype);
``image_scores.py`` the per-image scoring of the aesthetics and watermark filters;
``aesthetics_predictor_model.py`` the aesthetics predictor, loaded with transformers alone;
``noun_phrases.py`` the grounding filter's noun phrases (NLTK, from a given data folder).
"""

from . import (fast_image_aesthetics_filter, fast_image_captioning_mapper, fast_image_regeneration_mapper,
               fast_image_text_matching_filter, fast_image_text_similarity_filter, fast_image_watermark_filter,
               fast_phrase_grounding_recall_filter, recaption_swap_selector, repeat_to_cap_selector,
               stats_quantile_tagger)

__all__ = ["fast_image_aesthetics_filter", "fast_image_captioning_mapper", "fast_image_regeneration_mapper",
           "fast_image_text_matching_filter", "fast_image_text_similarity_filter", "fast_image_watermark_filter",
           "fast_phrase_grounding_recall_filter", "recaption_swap_selector", "repeat_to_cap_selector",
           "stats_quantile_tagger"]
