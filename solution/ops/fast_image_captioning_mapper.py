"""Data-Juicer mapper ``fast_image_captioning_mapper``: BLIP-2 captions in large batches.

A faster alternative to Data-Juicer's ``image_captioning_mapper`` for a Hugging Face
``Blip2ForConditionalGeneration`` folder: images are decoded by DataLoader worker processes, each
distinct image of a batch is captioned once, generation runs ``gpu_batch_size`` images at a time
(bfloat16 on a GPU by default), greedy by default (``num_beams`` > 1: beam search; ``do_sample``:
sampling, as the official baseline did), with ``max_new_tokens`` (30 keeps captions short). Only the
newly generated tokens become the caption (the prompt is not repeated in it).

A new sample is a copy of its source (same ``id``, so ``dj2llava --restore_questions`` finds it in
stage_1.json; same images) whose text is ``"<__dj__image> {caption} <|__dj__eoc|>"`` per chunk
(Data-Juicer's layout), whose stats are emptied (a later filter scores the new caption) and whose
meta says ``recaptioned: true``. ``keep_original_sample`` keeps the source next to it. An image
whose caption comes out empty keeps its source sample (with a warning) rather than losing it.
``select_meta_key``/``select_below`` caption only samples whose meta value is below a bound (e.g. the
lower half of a CLIP ranking written by ``stats_quantile_tagger``); ``select_stats_key`` reads a stats
value instead (a list is averaged, as Data-Juicer's selectors do), and ``select_min`` adds a lower
bound, so ``select_stats_key: image_text_similarity, select_min: 0.01, select_below: 0.28`` captions
an absolute CLIP band; the others pass unchanged.

    process:
      - fast_image_captioning_mapper:
          hf_blip2: Salesforce/blip2-opt-2.7b   # a folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME
          keep_original_sample: true
          select_meta_key: image_text_similarity_quantile
          select_below: 0.5
"""

from __future__ import annotations

import copy
import functools
from typing import Optional

import torch
from data_juicer.ops.base_op import OPERATORS, TAGGING_OPS, Mapper
from data_juicer.utils.common_utils import stats_to_number
from data_juicer.utils.constant import Fields
from data_juicer.utils.mm_utils import SpecialTokens, insert_texts_after_placeholders, remove_non_special_tokens
from data_juicer.utils.model_utils import get_model
from loguru import logger

from .batching import check_dtype, one_process_per_gpu, pixel_batches, resolve_model_dir, torch_dtype

OP_NAME = "fast_image_captioning_mapper"
RECAPTIONED = "recaptioned"


def load_blip2(model_dir: str, dtype: str, device: str = "cpu"):
    """(model, processor) on ``device``; called through Data-Juicer's model cache (get_model)."""
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    model = Blip2ForConditionalGeneration.from_pretrained(model_dir, dtype=torch_dtype(dtype, device))
    return model.to(device).eval(), Blip2Processor.from_pretrained(model_dir)


@TAGGING_OPS.register_module(OP_NAME)
@OPERATORS.register_module(OP_NAME)
class FastImageCaptioningMapper(Mapper):
    """Caption images with BLIP-2; new samples replace or join their sources."""

    _accelerator = "cuda"
    _batched_op = True

    def __init__(self, hf_blip2: str = "Salesforce/blip2-opt-2.7b", prompt: str = "", max_new_tokens: int = 30,
                 num_beams: int = 1, do_sample: bool = False, seed: int = 1024, keep_original_sample: bool = True,
                 select_meta_key: Optional[str] = None, select_below: float = 0.5,
                 select_stats_key: Optional[str] = None, select_min: Optional[float] = None, gpu_batch_size: int = 64,
                 num_workers: int = 8, dtype: str = "auto", *args, **kwargs):
        """
        :param hf_blip2: Blip2ForConditionalGeneration folder, or a name under DATA_JUICER_EXTERNAL_MODELS_HOME.
        :param prompt: text the caption continues (empty: plain captioning).
        :param max_new_tokens: the longest caption, in tokens.
        :param num_beams: 1 for greedy search, more for beam search.
        :param do_sample: sample instead of searching (seeded with ``seed`` before every batch).
        :param keep_original_sample: keep each captioned source sample next to its caption.
        :param select_meta_key: caption only samples whose ``__dj__meta__`` value under this key is
            below ``select_below``; None (and no ``select_stats_key``) captions every sample with an image.
        :param select_below: the (exclusive) upper bound of the selected values.
        :param select_stats_key: select by this ``__dj__stats__`` value instead of a meta value.
        :param select_min: the (inclusive) lower bound of the selected values; None: no lower bound.
        :param gpu_batch_size: images per generate call.
        :param num_workers: DataLoader processes decoding and preprocessing images.
        :param dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'.
        """
        kwargs.setdefault("memory", "16GB")
        kwargs.setdefault("batch_size", 1024)
        super().__init__(*args, **one_process_per_gpu(kwargs))
        if max_new_tokens < 1 or num_beams < 1 or gpu_batch_size < 1 or num_workers < 0:
            raise ValueError("max_new_tokens, num_beams and gpu_batch_size must be >= 1, num_workers >= 0")
        check_dtype(dtype)
        self.prompt, self.seed = prompt, seed
        self.generate_args = dict(max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=do_sample)
        self.keep_original_sample = keep_original_sample
        if select_meta_key is not None and select_stats_key is not None:
            raise ValueError("select by select_meta_key or by select_stats_key, not both")
        if select_min is not None and select_min >= select_below:
            raise ValueError(f"select_min {select_min} must be below select_below {select_below}")
        self.select_meta_key, self.select_stats_key = select_meta_key, select_stats_key
        self.select_min, self.select_below = select_min, select_below
        self.gpu_batch_size, self.num_workers = gpu_batch_size, num_workers
        self.model_key = functools.partial(load_blip2, resolve_model_dir(hf_blip2), dtype)

    def _selected(self, sample: dict) -> bool:
        if not sample.get(self.image_key):
            return False
        if self.select_meta_key is not None:
            value = (sample.get(Fields.meta) or {}).get(self.select_meta_key)
            if value is None:
                raise ValueError(f"sample {sample.get('id')!r} has no meta value {self.select_meta_key!r} "
                                 f"(tag it first, e.g. with stats_quantile_tagger)")
        elif self.select_stats_key is not None:
            value = (sample.get(Fields.stats) or {}).get(self.select_stats_key)
            if value is None or value == []:
                raise ValueError(f"sample {sample.get('id')!r} has no stats value {self.select_stats_key!r} "
                                 f"(score it first, e.g. with fast_image_text_similarity_filter)")
            value = stats_to_number(value)
        else:
            return True
        return (self.select_min is None or value >= self.select_min) and value < self.select_below

    @torch.no_grad()
    def caption_images(self, model, processor, paths: list[str]) -> list[str]:
        """One caption per image file, in order."""
        def preprocess(image):
            inputs = processor(images=image, text=self.prompt, return_tensors="pt")
            return {"pixel_values": inputs["pixel_values"][0], "input_ids": inputs["input_ids"][0]}

        captions = []
        for batch in pixel_batches(paths, preprocess, self.gpu_batch_size, self.num_workers, model.device):
            input_ids = batch["input_ids"]
            if self.generate_args["do_sample"]:
                torch.manual_seed(self.seed)
            output = model.generate(pixel_values=batch["pixel_values"].to(model.dtype),
                                    input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                    **self.generate_args)
            new_tokens = output[:, input_ids.shape[1]:]
            captions += [text.strip() for text in processor.batch_decode(new_tokens, skip_special_tokens=True)]
        return captions

    def _captioned_copy(self, sample: dict, captions: dict[str, str]) -> dict:
        new = copy.deepcopy(sample)
        text, offset = "", 0
        for chunk in sample[self.text_key].split(SpecialTokens.eoc):
            if not chunk.strip():
                continue
            count = chunk.count(SpecialTokens.image)
            chunk_captions = [captions[path] for path in sample[self.image_key][offset:offset + count]]
            text += insert_texts_after_placeholders(remove_non_special_tokens(chunk), [SpecialTokens.image] * count,
                                                    chunk_captions) + SpecialTokens.eoc
            offset += count
        new[self.text_key] = text
        if Fields.stats in new:
            new[Fields.stats] = {}
        new[Fields.meta] = dict(new.get(Fields.meta) or {}, **{RECAPTIONED: True})
        return new

    def process_batched(self, samples, rank=None):
        keys = list(samples.keys())
        rows = [{key: samples[key][i] for key in keys} for i in range(len(samples[self.text_key]))]
        selected = [self._selected(row) for row in rows]
        paths = sorted({path for row, chosen in zip(rows, selected) if chosen for path in row[self.image_key]})
        captions = {}
        if paths:
            model, processor = get_model(self.model_key, rank, self.use_cuda())
            captions = dict(zip(paths, self.caption_images(model, processor, paths)))
        output, empty = [], 0
        for row, chosen in zip(rows, selected):
            # an image whose caption came out empty keeps its original sample instead
            failed = chosen and not all(captions[path] for path in row[self.image_key])
            empty += failed
            if not chosen or self.keep_original_sample or failed:
                output.append(row)
            if chosen and not failed:
                output.append(self._captioned_copy(row, captions))
        if empty:
            logger.warning(f"{OP_NAME}: {empty} sample(s) got an empty caption; their original was kept instead")
        return {key: [row[key] for row in output] for key in keys}
