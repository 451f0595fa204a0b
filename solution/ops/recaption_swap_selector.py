"""Data-Juicer operator ``recaption_swap_selector``: a recaption replaces its source only when it scores above a bar.

The bronze-level ITM recipe of recipes.md swaps in "BLIP-2 recaptions of the 0.01-0.28 CLIP band that
reach > 0.28". After ``fast_image_captioning_mapper`` (``keep_original_sample: true``) has added a
recaption next to each selected source and a filter has scored the recaptions, this dataset-level
operator keeps, for every source, exactly one of the two: the recaption (its meta says
``recaptioned: true``) when its ``field_key`` value is above ``min_score``, else the source. A
recaption and its source are the samples with the same ``id`` and images (the captioner copies
both). Samples without a recaption pass; the dataset order is kept.

    process:
      - recaption_swap_selector:
          field_key: __dj__stats__.image_text_similarity
          min_score: 0.28
"""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Selector
from data_juicer.utils.constant import Fields

from .fields import check_field_key, field_values

OP_NAME = "recaption_swap_selector"


@OPERATORS.register_module(OP_NAME)
class RecaptionSwapSelector(Selector):
    """Keep a recaption instead of its source when it scores above ``min_score``, else the source."""

    def __init__(self, field_key: str = "__dj__stats__.image_text_similarity", min_score: float = 0.28,
                 recaption_meta_key: str = "recaptioned", id_key: str = "id", *args, **kwargs):
        """
        :param field_key: the dotted field a recaption must exceed ``min_score`` in.
        :param min_score: the bar (exclusive) a recaption must pass to replace its source.
        :param recaption_meta_key: the ``__dj__meta__`` flag that marks a recaption.
        :param id_key: the sample id field; a recaption and its source share it (and their images).
        """
        super().__init__(*args, **kwargs)
        check_field_key(field_key)
        self.field_key, self.min_score = field_key, min_score
        self.recaption_meta_key, self.id_key = recaption_meta_key, id_key

    def kept_indices(self, ids: list, images: list, metas: list, values) -> list[int]:
        """Dataset indices of the output, in dataset order."""
        keys = [(str(sample_id), tuple(paths or [])) for sample_id, paths in zip(ids, images)]
        recaption = [bool((meta or {}).get(self.recaption_meta_key)) for meta in metas]
        wins = [is_recaption and value > self.min_score for is_recaption, value in zip(recaption, values)]
        replaced = {key for key, won in zip(keys, wins) if won}
        return [index for index, key in enumerate(keys)
                if wins[index] or (not recaption[index] and key not in replaced)]

    def process(self, dataset):
        if len(dataset) == 0:
            return dataset
        for column in (self.id_key, self.image_key, Fields.meta):
            if column not in dataset.features:
                raise KeyError(f"{OP_NAME}: the dataset has no {column!r} column (columns: {sorted(dataset.features)})")
        values = field_values(dataset, self.field_key)
        return dataset.select(self.kept_indices(dataset[self.id_key], dataset[self.image_key], dataset[Fields.meta],
                                                values))
