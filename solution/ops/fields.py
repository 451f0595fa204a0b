"""What the dataset-level operators share: reading one numeric value per sample from a dotted field.

Not an operator. ``stats_quantile_tagger`` and ``repeat_to_cap_selector`` rank samples by a field
such as ``__dj__stats__.image_text_similarity``, named the way Data-Juicer's selectors name it.
"""

from __future__ import annotations

import numpy as np
from data_juicer.utils.common_utils import stats_to_number


def field_values(dataset, field_key: str) -> np.ndarray:
    """One float per sample: the field's value (a list is averaged, as Data-Juicer's selectors do;
    an empty list, e.g. the similarity of a sample without images, ranks lowest).

    Raises KeyError naming the sample when the field is missing, so a misspelt key cannot silently
    rank everything equal.
    """
    top, *rest = field_key.split(".")
    if top not in dataset.features:
        raise KeyError(f"field {top!r} not in the dataset (columns: {sorted(dataset.features)})")
    values = []
    for index, value in enumerate(dataset[top]):
        for key in rest:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"sample {index} has no field {field_key!r} (was the op computing it run before?)")
            value = value[key]
        values.append(stats_to_number(value, reverse=True))
    return np.asarray(values, dtype=np.float64)


def check_field_key(field_key: str) -> None:
    if not field_key or any(not part for part in field_key.split(".")):
        raise ValueError(f"field_key must be a dotted field name such as "
                         f"'__dj__stats__.image_text_similarity', got {field_key!r}")
