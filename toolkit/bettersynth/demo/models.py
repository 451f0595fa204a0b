"""Tiny randomly initialised models in the real models' architectures and on-disk layouts.

Each builder writes one complete model folder that loads with the same code the real one uses:
- `build_llm`: `GemmaForCausalLM` (config.json, model.safetensors, generation_config.json, tokenizer);
- `build_vision_tower`: a full `CLIPModel` + `CLIPProcessor` (112 px, patch 14: 8x8 patches);
- `build_vision_tower_aux`: an OpenCLIP ConvNeXt (`open_clip_config.json` + `open_clip_pytorch_model.bin`);
- `build_recipe_clip`, `build_recipe_blip_itm`, `build_recipe_blip2`: the Data-Juicer ops' models
  (CLIP similarity, BLIP image-text matching, BLIP-2 OPT captioning) with their processors.
The weights are random (seeded): outputs are meaningless, the files and code paths are real.
Called by `bettersynth.demo.build`; not run on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor, BlipProcessor,
                          Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, CLIPConfig,
                          CLIPImageProcessor, CLIPModel, CLIPProcessor, GemmaConfig, GemmaForCausalLM)

from bettersynth.constants import CLIP_MEAN, CLIP_STD
from bettersynth.demo import tokenizer as tok

# Tiny sizes (real sizes in the comments).
LLM = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=1, head_dim=16, max_position_embeddings=4096)  # 2048/16384/18/8/1/256/8192
CLIP_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                   image_size=112, patch_size=14, hidden_act="quick_gelu")  # 1024/4096/24/16/336/14
CLIP_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=77, hidden_act="quick_gelu")
AUX_IMAGE_SIZE = 256  # real 768
AUX_MODEL_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"timm_model_name": "convnext_atto", "timm_model_pretrained": False, "timm_pool": "",
                   "timm_proj": "mlp", "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": AUX_IMAGE_SIZE},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1, "mlp_ratio": 2},
}
RECIPE_CLIP_IMAGE_SIZE = 224
BLIP_IMAGE_SIZE = 96   # real 384
BLIP2_IMAGE_SIZE = 56  # real 224
BLIP2_QUERY_TOKENS = 4  # real 32
BLIP2_IMAGE_TOKEN_ID = 50265  # as in the real model; Data-Juicer's captioning op hard-codes it


def _clip_image_processor(size: int) -> CLIPImageProcessor:
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                              do_center_crop=True, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))


def build_llm(folder: Path, texts: list[str], seed: int) -> None:
    """Gemma LLM: exact GELU as in the gemma-2b-it config, tied embeddings, float32 weights."""
    tokenizer = tok.gemma_tokenizer(texts)
    config = GemmaConfig(vocab_size=len(tokenizer), hidden_act="gelu", pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True, **LLM)
    torch.manual_seed(seed)
    GemmaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _clip(texts: list[str], seed: int, vision: dict, image_size: int) -> tuple[CLIPModel, CLIPProcessor]:
    tokenizer = tok.clip_tokenizer(texts)
    text = dict(CLIP_TEXT, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)
    torch.manual_seed(seed)
    return CLIPModel(config), CLIPProcessor(image_processor=_clip_image_processor(image_size), tokenizer=tokenizer)


def build_vision_tower(folder: Path, texts: list[str], seed: int) -> None:
    """CLIP ViT folder in the layout of openai/clip-vit-large-patch14-336 (112 px here, 8x8 patches)."""
    model, processor = _clip(texts, seed, CLIP_VISION, CLIP_VISION["image_size"])
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    processor.image_processor.save_pretrained(folder)  # preprocessor_config.json, as the real folder has


def build_vision_tower_aux(folder: Path, seed: int) -> None:
    """OpenCLIP ConvNeXt folder: the config the real one ships and the whole CLIP state dict."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.CLIP(**AUX_MODEL_CFG)
    config = {"model_cfg": AUX_MODEL_CFG,
              "preprocess_cfg": {"mean": list(CLIP_MEAN), "std": list(CLIP_STD)}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")


def build_recipe_clip(folder: Path, texts: list[str], seed: int) -> None:
    """openai/clip-vit-base-patch32 for image_text_similarity_filter (224 px, patch 32)."""
    vision = dict(CLIP_VISION, image_size=RECIPE_CLIP_IMAGE_SIZE, patch_size=32, num_hidden_layers=2)
    model, processor = _clip(texts, seed, vision, RECIPE_CLIP_IMAGE_SIZE)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def build_recipe_blip_itm(folder: Path, texts: list[str], seed: int) -> None:
    """Salesforce/blip-itm-base-coco for image_text_matching_filter."""
    tokenizer = tok.bert_tokenizer(texts)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=BLIP_IMAGE_SIZE, patch_size=16)
    text = dict(vocab_size=len(tokenizer), hidden_size=32, encoder_hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=2, bos_token_id=tokenizer.bos_token_id,
                pad_token_id=tokenizer.pad_token_id, sep_token_id=tokenizer.sep_token_id,
                eos_token_id=tokenizer.sep_token_id)
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=32, image_text_hidden_size=32)
    image_processor = BlipImageProcessor(size={"height": BLIP_IMAGE_SIZE, "width": BLIP_IMAGE_SIZE},
                                         image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    torch.manual_seed(seed)
    BlipForImageTextRetrieval(config).save_pretrained(folder)
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _mute_tokens(opt, token_ids: torch.Tensor) -> None:
    """Make an OPT LM (tied embeddings) never predict `token_ids`, so random captions use real pieces.

    One hidden dimension is reserved: the final layer norm outputs a constant 1 there, and the
    muted tokens' (tied) embeddings hold -100 there while all others hold 0, so their logits are
    about 100 below every other token's. The generation config cannot do it: BLIP-2 generates
    with its language model's own default config.
    """
    reserved = opt.config.hidden_size - 1
    with torch.no_grad():
        norm = opt.model.decoder.final_layer_norm
        norm.weight[reserved], norm.bias[reserved] = 0.0, 1.0
        embeddings = opt.get_input_embeddings().weight
        embeddings[:, reserved] = 0.0
        embeddings[token_ids, reserved] = -100.0


def build_recipe_blip2(folder: Path, texts: list[str], seed: int) -> None:
    """Salesforce/blip2-opt-2.7b for image_captioning_mapper: ViT + Q-Former + OPT, tiny."""
    tokenizer = tok.opt_tokenizer(texts)
    image_processor = BlipImageProcessor(size={"height": BLIP2_IMAGE_SIZE, "width": BLIP2_IMAGE_SIZE},
                                         image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    processor = Blip2Processor(image_processor=image_processor, tokenizer=tokenizer,
                               num_query_tokens=BLIP2_QUERY_TOKENS)
    image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token.content)
    if image_token_id != BLIP2_IMAGE_TOKEN_ID:
        raise RuntimeError(f"BLIP-2 <image> token got id {image_token_id}, expected {BLIP2_IMAGE_TOKEN_ID}")
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=BLIP2_IMAGE_SIZE, patch_size=14)
    qformer = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64, encoder_hidden_size=32)
    text = dict(model_type="opt", vocab_size=len(processor.tokenizer), hidden_size=32, ffn_dim=64,
                num_hidden_layers=2, num_attention_heads=2, word_embed_proj_dim=32,
                max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = Blip2Config(vision_config=vision, qformer_config=qformer, text_config=text,
                         num_query_tokens=BLIP2_QUERY_TOKENS, image_token_index=image_token_id,
                         image_text_hidden_size=32)
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(config)
    fillers = sorted(i for token, i in tokenizer.get_vocab().items() if token.startswith(tok.OPT_FILLER_PREFIX))
    _mute_tokens(model.language_model, torch.tensor(fillers))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
