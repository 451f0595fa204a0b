"""The frozen CLIP vision tower: patch features of one hidden layer, CLS token dropped.

    tower = CLIPVisionTower.from_pretrained(clip_dir, select_layer=-2, dtype=torch.bfloat16)
    features = tower(pixel_values)    # [B, 576, 1024] for ViT-L/14-336

``from_pretrained`` accepts a full ``CLIPModel`` folder (the official tower folder) as well as a
vision-only one; transformers then logs the unused text-tower weights as UNEXPECTED (expected),
while a missing vision weight is an error. The tower never trains: parameters are frozen and the
forward runs under no_grad.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, CLIPVisionConfig, CLIPVisionModel


class CLIPVisionTower(nn.Module):
    """Wraps ``CLIPVisionModel``; ``forward`` returns hidden_states[select_layer][:, 1:]."""

    def __init__(self, model: CLIPVisionModel, select_layer: int) -> None:
        super().__init__()
        layers = model.config.num_hidden_layers
        if not -(layers + 1) <= select_layer <= layers or select_layer == 0:
            raise ValueError(f"select_layer {select_layer} is outside the {layers} layers of the CLIP tower")
        self.model = model
        self.select_layer = select_layer
        self.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, folder: str | Path, select_layer: int, dtype: torch.dtype = torch.float32,
                        attn_implementation: str = "sdpa") -> CLIPVisionTower:
        config_file = Path(folder) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"CLIP vision tower folder has no config.json: {folder}")
        model, info = CLIPVisionModel.from_pretrained(folder, dtype=dtype, output_loading_info=True,
                                                      attn_implementation=attn_implementation)
        if info["missing_keys"] or info["mismatched_keys"]:
            raise ValueError(f"CLIP vision weights in {folder} are incomplete: "
                             f"missing {sorted(info['missing_keys'])[:10]}, "
                             f"mismatched {list(info['mismatched_keys'])[:10]}")
        return cls(model, select_layer)

    @classmethod
    def from_config(cls, config: CLIPVisionConfig, select_layer: int, dtype: torch.dtype = torch.float32,
                    attn_implementation: str = "sdpa") -> CLIPVisionTower:
        """Random weights (for checkpoint loading and real-size benchmarks)."""
        model = AutoModel.from_config(config, dtype=dtype, attn_implementation=attn_implementation)
        if not isinstance(model, CLIPVisionModel):
            raise TypeError(f"expected a CLIP vision config, got model type {config.model_type!r}")
        return cls(model, select_layer)

    @property
    def config(self) -> CLIPVisionConfig:
        return self.model.config

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def num_patches(self) -> int:
        return (self.model.config.image_size // self.model.config.patch_size) ** 2

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] normalised images → [B, num_patches, hidden] in the tower's dtype."""
        outputs = self.model(pixel_values=pixel_values.to(self.model.dtype), output_hidden_states=True)
        return outputs.hidden_states[self.select_layer][:, 1:]
