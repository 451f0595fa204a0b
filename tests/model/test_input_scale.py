"""Gemma's input scale: the first decoder layer gets transformers 4.38's numbers (the official kit's).

4.38 multiplied the spliced input embeddings (text and image) by the Python float sqrt(hidden)
(45.254834 at 2048), i.e. ``(x.float() * 45.254834).to(bf16)`` element for element in bf16;
transformers 5's own factor is rounded to bf16 first (45.25), which differs in about 2.6% of the
elements. Checked at the tiny test width and at Gemma-2B's 2048.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_input_scale.py -q``
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bettersynth.constants import IMAGE_TOKEN_INDEX as IMG
from bettersynth.model.input_scale import OfficialScaledEmbedding, official_input_scale
from bettersynth.model.io import build_mgm

from model_helpers import TINY_AUX_SIZE, tiny_options, write_tiny_llm

IDS = [2, 4, IMG, 7, 8, 5, 6, 4, 9]


def build(tiny_dirs, tmp_path, hidden_size: int, dtype: torch.dtype):
    llm_dir = tiny_dirs["llm"]
    if hidden_size != 32:
        llm_dir = tmp_path / f"llm{hidden_size}"
        write_tiny_llm(llm_dir, hidden_size=hidden_size)
    torch.manual_seed(1024)
    model, _, _ = build_mgm(llm_dir, tiny_dirs["clip"], tiny_dirs["aux"], tiny_options(), dtype=dtype)
    return model.eval()


def first_layer_input(model, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states entering decoder layer 0 during a training forward, the raw image embeddings)."""
    images = torch.randn(1, 3, TINY_AUX_SIZE, TINY_AUX_SIZE, generator=torch.Generator().manual_seed(5))
    batch = {"input_ids": torch.tensor([ids]), "labels": torch.tensor([ids]).clamp(min=0),
             "attention_mask": torch.ones(1, len(ids), dtype=torch.bool), "images_aux": images,
             "has_image": torch.tensor([True])}
    seen = []
    hook = model.llm.get_decoder().layers[0].register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
            image_embeds = model.encode_images(images)
    finally:
        hook.remove()
    return seen[0][0], image_embeds[0]


@pytest.mark.parametrize("hidden_size", [32, 2048])
def test_bf16_text_and_image_embeddings_equal_the_official_product(tiny_dirs, tmp_path, hidden_size):
    model = build(tiny_dirs, tmp_path, hidden_size, torch.bfloat16)
    scale = hidden_size ** 0.5  # a Python float, as in 4.38: 45.254834 at 2048, 5.656854 at 32

    def official(x):
        return (x.float() * scale).to(torch.bfloat16)

    table = model.llm.get_input_embeddings().weight
    assert table.dtype == torch.bfloat16
    every_token = torch.arange(table.shape[0])
    text = model.llm.get_input_embeddings()(every_token)
    assert torch.equal(text, official(table))
    # transformers 5's bf16-rounded factor would give other numbers: the check has teeth
    assert not torch.equal(text, table * torch.tensor(scale).to(torch.bfloat16))

    hidden, image = first_layer_input(model, IDS)
    num_image = model.num_image_tokens
    image_rows = slice(2, 2 + num_image)
    text_ids = [token for token in IDS if token != IMG]
    assert torch.equal(hidden[image_rows], official(image))
    assert torch.equal(torch.cat([hidden[:2], hidden[2 + num_image:]]), official(table[text_ids]))
    assert not torch.equal(hidden[image_rows], image * torch.tensor(scale).to(torch.bfloat16))


def test_float32_embeddings_are_unchanged(tiny_dirs, tmp_path):
    """In float32 the official product equals transformers 5's own (a float32 factor either way)."""
    model = build(tiny_dirs, tmp_path, 32, torch.float32)
    table = model.llm.get_input_embeddings().weight
    every_token = torch.arange(table.shape[0])
    transformers_5 = F.embedding(every_token, table) * torch.tensor(32 ** 0.5)
    assert torch.equal(model.llm.get_input_embeddings()(every_token), transformers_5)
    x = torch.randn(4, 32)
    assert torch.equal(official_input_scale(x, 32), x * torch.tensor(32 ** 0.5))


def test_the_official_embedding_shares_the_weight(tiny_mgm):
    """One Parameter: tied LM head, same state-dict keys, generation embeds new tokens with it too."""
    llm = tiny_mgm[0].llm
    embedding = llm.get_input_embeddings()
    assert isinstance(embedding, OfficialScaledEmbedding)
    assert llm.model.embed_tokens is embedding
    assert llm.get_output_embeddings().weight is embedding.weight
    assert [name for name in llm.state_dict() if "embed" in name] == ["model.embed_tokens.weight"]
    assert sum(1 for param in llm.parameters() if param is embedding.weight) == 1
