"""Parameter counts of the real-size MGM-2B (built on the meta device) equal the spec table.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_param_counts.py -q``
"""

from __future__ import annotations

import pytest

from bettersynth.model.real_size import build_real_size_mgm
from bettersynth.train.stages import set_trainable


def count(module) -> int:
    return sum(param.numel() for param in module.parameters())


@pytest.fixture(scope="module")
def real_model():
    return build_real_size_mgm(device="meta")


def test_component_counts_match_spec(real_model):
    assert count(real_model.llm) == 2_506_172_416
    assert count(real_model.vision_tower) == 303_507_456
    assert count(real_model.aux_tower) == 196_227_264
    assert count(real_model.mining) == 6_963_456
    assert count(real_model.projector) == 6_295_552


def test_real_geometry(real_model):
    assert real_model.num_image_tokens == 576
    assert real_model.aux_tower.stage_channels == (192, 384, 768, 1536)
    assert real_model.aux_tower.hidden_size == 2880
    assert real_model.llm.get_output_embeddings().weight is real_model.llm.get_input_embeddings().weight


@pytest.mark.parametrize("stage, expected", [("pretrain", 13_259_008), ("finetune", 2_519_431_424)])
def test_trainable_counts_per_stage(real_model, stage, expected):
    names = set(set_trainable(real_model, stage))
    trainable = sum(param.numel() for name, param in real_model.named_parameters() if param.requires_grad)
    assert trainable == expected
    assert names == {name for name, param in real_model.named_parameters() if param.requires_grad}
    assert not any(name.startswith(("vision_tower.", "aux_tower.")) for name in names)
