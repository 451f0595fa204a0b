"""An over-long sample whose rounds do not add up, end to end: data set → collator → the model's
splice and truncation, against the ids and labels the official kit trains on.

The official preprocess (transformers 4.38 MGM fork) masks a sample whose per-round count misses its
length only while that count is below ``model_max_length``; a longer sample keeps its counted
labels and is then truncated. The default still stops on an over-long sample.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_long_samples.py -q`` (seconds).
Ids: the word-level tokenizer of conftest.py (see tests/train/test_template.py).
"""

from __future__ import annotations

import json

import pytest
import torch

from bettersynth.constants import IGNORE_INDEX as X
from bettersynth.model.splice import splice_image_embeddings
from bettersynth.train.collate import Collator
from bettersynth.train.dataset import BadSampleError, DataOptions, Example, LazySupervisedDataset

BOS, EOS, SOT, EOT, NL, USER, MODEL = 2, 1, 4, 5, 6, 7, 8
HELLO, WORLD = 17, 18

# "<eos>" inside round 2 stops the per-round count at 14 ids (round 1 with BOS); the sample has 31.
RECORD = {"id": "long-1", "conversations": [
    {"from": "human", "value": "hello"}, {"from": "gpt", "value": "world"},
    {"from": "human", "value": "what <eos> is this"}, {"from": "gpt", "value": "a cat"}]}
LIMIT = 14
# What the official kit trains on at model_max_length 14: the first 14 ids, round 1's answer supervised.
OFFICIAL_IDS = [BOS, SOT, USER, NL, HELLO, EOT, NL, SOT, MODEL, NL, WORLD, EOT, NL, EOS]
OFFICIAL_LABELS = [X, X, X, X, X, X, X, X, X, X, WORLD, EOT, NL, EOS]


def dataset(tmp_path, tokenizer, truncate: bool) -> LazySupervisedDataset:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([RECORD]))
    options = DataOptions(data_path=path, image_folder=None, aspect="pad", model_max_length=LIMIT,
                          num_image_tokens=4, truncate_long_samples=truncate)
    return LazySupervisedDataset(options, tokenizer, preprocessor=None)


def test_truncate_mode_trains_the_official_labels(tmp_path, tiny_tokenizer):
    item = dataset(tmp_path, tiny_tokenizer, truncate=True)[0]
    assert isinstance(item, Example) and item.truncated and not item.mismatch
    assert item.num_tokens == 4 and item.num_input_tokens == LIMIT
    batch, info = Collator(pad_token_id=0, image_size_aux=8)([item])
    assert info.mismatched == [] and info.truncated == ["long-1"] and info.num_tokens == 4
    hidden = 3
    spliced = splice_image_embeddings(
        batch["input_ids"], batch["attention_mask"], batch["has_image"], torch.zeros(1, 4, hidden),
        lambda ids: ids[..., None].float().expand(-1, -1, hidden), max_length=LIMIT, padding_side="right",
        labels=batch["labels"])
    assert spliced.inputs_embeds[0, :, 0].long().tolist() == OFFICIAL_IDS
    assert spliced.labels[0].tolist() == OFFICIAL_LABELS


def test_default_mode_stops_on_the_over_long_sample(tmp_path, tiny_tokenizer):
    with pytest.raises(BadSampleError, match="over-long: 31 tokens"):
        dataset(tmp_path, tiny_tokenizer, truncate=False)[0]
