"""The real MGM-2B component configs (written out, no download) and the real-size model builder.

Used for parameter counting on the meta device (tests/model/test_param_counts.py) and for GPU
benchmarks with random weights::

    from bettersynth.model.real_size import build_real_size_mgm
    model = build_real_size_mgm(device="meta")          # counts only, no memory
    model = build_real_size_mgm(device="cuda", dtype=torch.bfloat16)

Values: google/gemma-2b-it config.json, openai/clip-vit-large-patch14-336 vision config, OpenCLIP
convnext_large_d_320 (laion2B-s29B-b131K-ft-soup) vision_cfg.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import CLIPVisionConfig, GemmaConfig

from bettersynth.model.assemble import assemble_mgm
from bettersynth.model.config import MGMOptions
from bettersynth.model.mgm import MGMForCausalLM


def gemma_2b_it_config() -> GemmaConfig:
    return GemmaConfig(
        vocab_size=256000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
        num_attention_heads=8, num_key_value_heads=1, head_dim=256, hidden_act="gelu",
        max_position_embeddings=8192, rms_norm_eps=1e-6, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        attention_bias=False, attention_dropout=0.0)


def clip_vit_l14_336_vision_config() -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, projection_dim=768, num_hidden_layers=24,
        num_attention_heads=16, num_channels=3, image_size=336, patch_size=14, hidden_act="quick_gelu",
        layer_norm_eps=1e-5, attention_dropout=0.0)


def convnext_large_d_320_vision_cfg() -> dict[str, Any]:
    return {"timm_model_name": "convnext_large", "timm_model_pretrained": False, "timm_pool": "",
            "timm_proj": "mlp", "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": 320}


def build_real_size_mgm(options: MGMOptions | None = None, device: str | torch.device = "meta",
                        dtype: torch.dtype = torch.bfloat16) -> MGMForCausalLM:
    """The real MGM-2B architecture with random weights (image_size_aux 768 by default)."""
    return assemble_mgm(gemma_2b_it_config(), clip_vit_l14_336_vision_config(), convnext_large_d_320_vision_cfg(),
                        options or MGMOptions(), device=device, dtype=dtype)
