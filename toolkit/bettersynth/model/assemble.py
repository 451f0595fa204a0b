"""Builds an MGMForCausalLM from component configs with random weights (no weight files read).

Used to open checkpoints (build, then load the saved weights) and to build the real-size model
for parameter counting (``device="meta"``) and benchmarks (``device="cuda"``)::

    model = assemble_mgm(gemma_config, clip_vision_config, openclip_vision_cfg, MGMOptions(),
                         device="meta", dtype=torch.bfloat16)

The mining module and projector are built after the LLM and towers, from the global RNG (seed it
first for a reproducible init).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForCausalLM, GemmaConfig, GemmaForCausalLM, PreTrainedConfig
from transformers import CLIPVisionConfig

from bettersynth.model.aux_tower import ConvNeXtAuxTower
from bettersynth.model.config import MGMOptions
from bettersynth.model.mgm import MGMForCausalLM
from bettersynth.model.mining import PatchInfoMining
from bettersynth.model.projector import build_projector
from bettersynth.model.vision_tower import CLIPVisionTower


def configure_llm(config: PreTrainedConfig, options: MGMOptions) -> GemmaConfig:
    """Checks the LLM is Gemma and sets its MLP activation from the options (see MGMOptions)."""
    if not isinstance(config, GemmaConfig):
        raise ValueError(f"the MGM-2B LLM must be Gemma (model_type 'gemma'), got {config.model_type!r}")
    config.hidden_act = options.gemma_hidden_act
    return config


def build_image_path(vision_tower: CLIPVisionTower, aux_tower: ConvNeXtAuxTower, llm_hidden: int,
                     options: MGMOptions) -> tuple[PatchInfoMining, torch.nn.Module]:
    """Fresh projector then mining module (in this order), float32, on the current default device."""
    projector = build_projector(options.mm_projector_type, vision_tower.hidden_size, llm_hidden)
    mining = PatchInfoMining(vision_tower.hidden_size, aux_tower.hidden_size)
    return mining, projector


def assemble_mgm(llm_config: PreTrainedConfig, vision_config: CLIPVisionConfig, openclip_vision_cfg: dict[str, Any],
                 options: MGMOptions, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> MGMForCausalLM:
    """All parts with random weights, created directly on ``device`` in ``dtype``."""
    llm_config = configure_llm(llm_config, options)
    with torch.device(device):
        llm = AutoModelForCausalLM.from_config(llm_config, dtype=dtype,
                                               attn_implementation=options.attn_implementation)
        if not isinstance(llm, GemmaForCausalLM):
            raise TypeError(f"expected GemmaForCausalLM, got {type(llm).__name__}")
        vision_tower = CLIPVisionTower.from_config(vision_config, options.mm_vision_select_layer, dtype,
                                                   options.attn_implementation)
        aux_tower = ConvNeXtAuxTower(openclip_vision_cfg, options.aux_drop_path_in_training,
                                     options.aux_channels_last).to(dtype)
        mining, projector = build_image_path(vision_tower, aux_tower, llm_config.hidden_size, options)
    return MGMForCausalLM(llm, vision_tower, aux_tower, mining.to(dtype), projector.to(dtype), options)
