"""The exact set of trainable parameter names in each stage (tiny model: 2 Gemma layers).

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_stages.py -q``
"""

from __future__ import annotations

import logging

import pytest

from bettersynth.train.stages import set_trainable

IMAGE_PATH = {
    "projector.0.weight", "projector.0.bias", "projector.2.weight", "projector.2.bias",
    "mining.query.0.weight", "mining.query.0.bias", "mining.query.1.weight", "mining.query.1.bias",
    "mining.aux.0.weight", "mining.aux.0.bias", "mining.aux.1.weight", "mining.aux.1.bias",
    "mining.val.0.weight", "mining.val.0.bias", "mining.val.1.weight", "mining.val.1.bias",
}
LAYER = ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
         "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
         "input_layernorm.weight", "post_attention_layernorm.weight"]
# The LM head is tied to the token embedding: one parameter, listed once.
LLM = ({"llm.model.embed_tokens.weight", "llm.model.norm.weight"}
       | {f"llm.model.layers.{index}.{name}" for index in (0, 1) for name in LAYER})


def test_pretrain_trains_projector_and_mining_only(tiny_mgm, caplog):
    model, _, _ = tiny_mgm
    with caplog.at_level(logging.INFO, logger="bettersynth.train.stages"):
        names = set_trainable(model, "pretrain")
    assert set(names) == IMAGE_PATH
    assert "stage pretrain: training mining+projector: 16 tensors" in caplog.text


def test_finetune_adds_the_whole_llm(tiny_mgm):
    model, _, _ = tiny_mgm
    set_trainable(model, "pretrain")
    names = set_trainable(model, "finetune")
    assert set(names) == IMAGE_PATH | LLM
    assert model.llm.lm_head.weight.requires_grad
    assert not any(p.requires_grad for p in model.vision_tower.parameters())
    assert not any(p.requires_grad for p in model.aux_tower.parameters())


def test_back_to_pretrain_freezes_the_llm_again(tiny_mgm):
    model, _, _ = tiny_mgm
    set_trainable(model, "finetune")
    assert set(set_trainable(model, "pretrain")) == IMAGE_PATH


def test_unknown_stage_is_an_error(tiny_mgm):
    with pytest.raises(ValueError, match="unknown stage 'sft'"):
        set_trainable(tiny_mgm[0], "sft")
