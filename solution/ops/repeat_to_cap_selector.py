"""Data-Juicer operator ``repeat_to_cap_selector``: repeat the best-scored samples up to a target count.

Teams filled the 200k pretraining cap by repeating a smaller high-quality set (recipes.md: "repeat
x3.76 to fill the cap", "duplicated x2"). This dataset-level operator keeps every sample once, in
dataset order, then appends copies ranked by ``field_key`` (best first, ties in dataset order),
round after round, until ``target_num`` samples or ``max_repeats`` copies of each sample are
reached. A dataset already at or above ``target_num`` passes unchanged (the cap itself is applied
by ``bsynth sample``). Copies are exact (same ``id``, text and images).

    process:
      - repeat_to_cap_selector:
          field_key: __dj__stats__.image_text_similarity
          target_num: 200000
          max_repeats: 4
"""

from __future__ import annotations

import numpy as np
from data_juicer.ops.base_op import OPERATORS, Selector
from pydantic import PositiveInt

from .fields import check_field_key, field_values

OP_NAME = "repeat_to_cap_selector"


@OPERATORS.register_module(OP_NAME)
class RepeatToCapSelector(Selector):
    """Append copies of the best samples until ``target_num`` (at most ``max_repeats`` copies each)."""

    def __init__(self, field_key: str = "__dj__stats__.image_text_similarity", target_num: PositiveInt = 200_000,
                 max_repeats: PositiveInt = 4, higher_is_better: bool = True, *args, **kwargs):
        """
        :param field_key: the dotted field to rank by, as Data-Juicer selectors name it.
        :param target_num: the sample count to reach (the challenge's cap is 200,000).
        :param max_repeats: the most times one sample may appear (1: no repetition).
        :param higher_is_better: rank by descending value (True) or ascending.
        """
        super().__init__(*args, **kwargs)
        check_field_key(field_key)
        if target_num < 1 or max_repeats < 1:
            raise ValueError("target_num and max_repeats must be >= 1")
        self.field_key, self.target_num, self.max_repeats = field_key, target_num, max_repeats
        self.higher_is_better = higher_is_better

    def repeated_indices(self, values: np.ndarray) -> list[int]:
        """Dataset indices of the output, in output order."""
        indices = list(range(len(values)))
        ranking = np.argsort(-values if self.higher_is_better else values, kind="stable").tolist()
        for _ in range(1, self.max_repeats):
            missing = self.target_num - len(indices)
            if missing <= 0:
                break
            indices += ranking[:missing]
        return indices

    def process(self, dataset):
        if len(dataset) == 0 or len(dataset) >= self.target_num:
            return dataset
        return dataset.select(self.repeated_indices(field_values(dataset, self.field_key)))
