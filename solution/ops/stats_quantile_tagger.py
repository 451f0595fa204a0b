"""Data-Juicer operator ``stats_quantile_tagger``: each sample's rank quantile of a stats field, in its meta.

A dataset-level operator (a Data-Juicer Selector that keeps every sample): it ranks the whole
dataset by ``field_key`` (ascending, ties in dataset order) and writes ``rank / n`` (0 for the
lowest, < 0.5 for the lower half) into ``__dj__meta__.<meta_key>``. Later per-sample operators use
it to treat a part of the ranking differently, e.g. ``fast_image_captioning_mapper`` with
``select_meta_key`` recaptions only the lower half of a CLIP ranking.

    process:
      - stats_quantile_tagger:
          field_key: __dj__stats__.image_text_similarity
          meta_key: image_text_similarity_quantile
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from data_juicer.ops.base_op import OPERATORS, TAGGING_OPS, Selector
from data_juicer.utils.constant import Fields

from .fields import check_field_key, field_values

OP_NAME = "stats_quantile_tagger"


@TAGGING_OPS.register_module(OP_NAME)
@OPERATORS.register_module(OP_NAME)
class StatsQuantileTagger(Selector):
    """Tag every sample with its rank quantile (in [0, 1)) of a numeric field."""

    def __init__(self, field_key: str = "__dj__stats__.image_text_similarity", meta_key: Optional[str] = None,
                 *args, **kwargs):
        """
        :param field_key: the dotted field to rank by, as Data-Juicer selectors name it.
        :param meta_key: where the quantile goes in ``__dj__meta__`` (default: the field's last
            part + ``_quantile``).
        """
        super().__init__(*args, **kwargs)
        check_field_key(field_key)
        self.field_key = field_key
        self.meta_key = meta_key or field_key.split(".")[-1] + "_quantile"

    def process(self, dataset):
        if len(dataset) == 0:
            return dataset
        order = np.argsort(field_values(dataset, self.field_key), kind="stable")
        quantiles = np.empty(len(order), dtype=np.float64)
        quantiles[order] = np.arange(len(order)) / len(order)

        def tag(batch, indices):
            batch[Fields.meta] = [dict(meta or {}, **{self.meta_key: float(quantiles[i])})
                                  for meta, i in zip(batch[Fields.meta], indices)]
            return batch

        return dataset.map(tag, batched=True, with_indices=True, batch_size=self.batch_size,
                           desc=self._name + "_process")
