"""The tiny demo models load through the real models' code paths and behave like them where it matters.

    HF_HUB_OFFLINE=1 python -m pytest tests/demo/test_models.py -q
"""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import (AutoConfig, AutoProcessor, AutoTokenizer, CLIPImageProcessor, CLIPVisionModel,
                          GemmaForCausalLM, GemmaTokenizer)

from bettersynth.constants import CLIP_MEAN, CLIP_STD


def test_gemma_tokenizer_special_ids_bos_and_byte_fallback(demo):
    tokenizer = AutoTokenizer.from_pretrained(demo.llm_dir)
    assert isinstance(tokenizer, GemmaTokenizer)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>", "<unk>")}
    assert ids == {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 1, 2)
    start, end = tokenizer.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>"])
    assert (start, end) == (4, 5)
    encoded = tokenizer("<start_of_turn>user\nhi<end_of_turn>\n<eos>").input_ids
    assert encoded[:2] == [2, 4] and encoded[-1] == 1 and 5 in encoded
    assert tokenizer("two red circles", add_special_tokens=False).input_ids[0] != 2
    text = "Ünïcode 日本語 🙂 wörds"
    ids_ = tokenizer(text).input_ids
    assert 3 not in ids_  # never <unk>: byte fallback
    assert tokenizer.decode(ids_, skip_special_tokens=True) == text
    # byte-fallback pieces are the <0xXX> tokens, e.g. the 4 bytes of the emoji
    assert all(tokenizer.convert_tokens_to_ids(f"<0x{b:02X}>") == 6 + b for b in (0, 0x41, 0xFF))


def test_gemma_llm_loads_with_real_config_keys(demo):
    model, info = GemmaForCausalLM.from_pretrained(demo.llm_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    config = json.loads((demo.llm_dir / "config.json").read_text())
    assert config["model_type"] == "gemma" and config["hidden_act"] == "gelu"
    assert config["architectures"] == ["GemmaForCausalLM"] and config["tie_word_embeddings"] is True
    saved = load_file(demo.llm_dir / "model.safetensors")
    assert torch.equal(model.model.embed_tokens.weight, saved["model.embed_tokens.weight"])
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    tokenizer = AutoTokenizer.from_pretrained(demo.llm_dir)
    assert model.config.vocab_size == len(tokenizer)
    batch = tokenizer(["a red circle"], return_tensors="pt")
    logits = model(**batch).logits
    assert logits.shape == (1, batch.input_ids.shape[1], len(tokenizer)) and torch.isfinite(logits).all()


def test_clip_vision_tower_and_processor(demo):
    processor = CLIPImageProcessor.from_pretrained(demo.vision_tower_dir)
    assert processor.size["shortest_edge"] == 112
    assert (processor.crop_size["height"], processor.crop_size["width"]) == (112, 112)
    assert tuple(processor.image_mean) == CLIP_MEAN and tuple(processor.image_std) == CLIP_STD
    assert (demo.vision_tower_dir / "preprocessor_config.json").is_file()
    assert AutoConfig.from_pretrained(demo.vision_tower_dir).model_type == "clip"
    tower = CLIPVisionModel.from_pretrained(demo.vision_tower_dir)
    assert (tower.config.image_size, tower.config.patch_size, tower.config.hidden_size) == (112, 14, 32)
    assert tower.config.num_hidden_layers >= 2
    pixels = processor(images=Image.new("RGB", (300, 200), (200, 30, 30)), return_tensors="pt").pixel_values
    assert pixels.shape == (1, 3, 112, 112)
    # a uniform red image normalises to ((200/255 - mean) / std) in the red channel
    assert pixels[0, 0, 56, 56].item() == pytest.approx((200 / 255 - CLIP_MEAN[0]) / CLIP_STD[0], abs=1e-4)
    out = tower(pixel_values=pixels, output_hidden_states=True)
    assert out.hidden_states[-2].shape == (1, 1 + 8 * 8, 32)


def test_clip_tokenizer_has_a_real_vocab(demo):
    """transformers 5 silently builds a 3-token CLIP vocab from vocab_file/merges_file: not here."""
    tokenizer = AutoTokenizer.from_pretrained(demo.vision_tower_dir)
    assert len(tokenizer) > 500
    ids = tokenizer("A Red Circle").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a red circle"


def test_openclip_convnext_loads_through_open_clip(demo):
    folder = demo.vision_tower_aux_dir
    config = json.loads((folder / "open_clip_config.json").read_text())
    vision = config["model_cfg"]["vision_cfg"]
    assert vision["timm_model_name"] == "convnext_atto" and vision["timm_pool"] == ""
    assert vision["timm_proj"] == "mlp" and vision["timm_drop_path"] == 0.1 and vision["image_size"] == 256
    assert set(config["preprocess_cfg"]) >= {"mean", "std"}
    model = open_clip.create_model(f"local-dir:{folder}")
    saved = torch.load(folder / "open_clip_pytorch_model.bin", map_location="cpu", weights_only=True)
    assert set(saved) == set(model.state_dict())
    assert any(k.startswith("visual.trunk.stem.") for k in saved)
    assert any(k.startswith("visual.trunk.stages.3.") for k in saved)
    assert any(k.startswith("visual.head.") for k in saved) and "token_embedding.weight" in saved
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    trunk = model.visual.trunk.eval()
    x = torch.zeros(1, 3, 256, 256)
    shapes = []
    with torch.no_grad():
        x = trunk.stem(x)
        for stage in trunk.stages:
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(40, 64, 64), (80, 32, 32), (160, 16, 16), (320, 8, 8)]


@pytest.mark.parametrize("name, architecture, processor_class", [
    ("openai/clip-vit-base-patch32", "CLIPModel", "CLIPProcessor"),
    ("Salesforce/blip-itm-base-coco", "BlipForImageTextRetrieval", "BlipProcessor"),
    ("Salesforce/blip2-opt-2.7b", "Blip2ForConditionalGeneration", "Blip2Processor"),
])
def test_recipe_models_load_like_data_juicer_loads_them(demo, name, architecture, processor_class):
    import transformers

    folder = demo.recipe_models_dir / name
    processor = AutoProcessor.from_pretrained(folder)
    config = AutoConfig.from_pretrained(folder)
    assert type(processor).__name__ == processor_class and config.architectures == [architecture]
    model, info = getattr(transformers, architecture).from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"]
    if architecture == "Blip2ForConditionalGeneration":
        assert config.text_config.model_type == "opt"
        # Data-Juicer's captioning op sets image_token_index = 50265 (the real model's id)
        assert processor.tokenizer.convert_tokens_to_ids("<image>") == config.image_token_index == 50265
        assert processor.num_query_tokens == config.num_query_tokens
