"""The frozen ConvNeXt aux tower: an OpenCLIP ConvNeXt trunk's stem + 4 stages, fused to one map.

The architecture comes from the folder's ``open_clip_config.json`` (``model_cfg.vision_cfg``:
``timm_model_name``, ``timm_drop_path``), built with timm; the weights are the ``visual.trunk.*``
entries of ``open_clip_pytorch_model.bin``. The stage outputs are upsampled to the stage-1 size
(bilinear, align_corners False, in float32) and concatenated: for convnext_large at 768 px,
[B, 192+384+768+1536 = 2880, 192, 192].

    tower = ConvNeXtAuxTower.from_openclip_folder(aux_dir, drop_path_in_training=True)
    feature_map = tower(images_aux)

Official quirk: stochastic depth stays active in this frozen tower while the model trains
(``drop_path_in_training=True``); with False the tower always runs in eval mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.models.convnext import ConvNeXt
from torch import nn

OPENCLIP_CONFIG = "open_clip_config.json"
OPENCLIP_WEIGHTS = "open_clip_pytorch_model.bin"
TRUNK_PREFIX = "visual.trunk."
LOADED_TRUNK_PARTS = ("stem", "stages")
# Parts of the OpenCLIP state dict this tower does not use: the trunk's pooling head and the
# visual projection head (both after the stages), and everything outside ``visual.`` (text tower).
IGNORED_VISUAL_PREFIXES = ("visual.trunk.head.", "visual.head.")


def read_openclip_vision_cfg(folder: str | Path) -> dict[str, Any]:
    """``model_cfg.vision_cfg`` of an OpenCLIP folder's open_clip_config.json."""
    path = Path(folder) / OPENCLIP_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"aux tower folder has no {OPENCLIP_CONFIG}: {folder}")
    config = json.loads(path.read_text())
    try:
        vision_cfg = config["model_cfg"]["vision_cfg"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: no model_cfg.vision_cfg") from err
    if "timm_model_name" not in vision_cfg:
        raise ValueError(f"{path}: vision_cfg has no timm_model_name (only timm ConvNeXt trunks are supported)")
    return vision_cfg


class ConvNeXtAuxTower(nn.Module):
    """Stem + stages of a timm ConvNeXt; forward returns the fused multi-stage feature map."""

    def __init__(self, vision_cfg: dict[str, Any], drop_path_in_training: bool = True,
                 channels_last: bool = True) -> None:
        super().__init__()
        self.vision_cfg = dict(vision_cfg)
        trunk = timm.create_model(vision_cfg["timm_model_name"], pretrained=False, num_classes=0,
                                  global_pool="", drop_path_rate=float(vision_cfg.get("timm_drop_path") or 0.0))
        if not isinstance(trunk, ConvNeXt):
            raise ValueError(f"aux tower {vision_cfg['timm_model_name']!r} is a {type(trunk).__name__}, "
                             "not a timm ConvNeXt")
        self.stem = trunk.stem
        self.stages = trunk.stages
        self.stage_channels = tuple(info["num_chs"] for info in trunk.feature_info)
        self.reduction = trunk.feature_info[0]["reduction"]
        self.drop_path_in_training = drop_path_in_training
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.train(False)

    @classmethod
    def from_openclip_folder(cls, folder: str | Path, drop_path_in_training: bool = True,
                             channels_last: bool = True, dtype: torch.dtype = torch.float32) -> ConvNeXtAuxTower:
        tower = cls(read_openclip_vision_cfg(folder), drop_path_in_training, channels_last)
        weights = Path(folder) / OPENCLIP_WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"aux tower folder has no {OPENCLIP_WEIGHTS}: {folder}")
        state_dict = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
        tower.load_openclip_state_dict(state_dict, source=str(weights))
        return tower.to(dtype)

    def load_openclip_state_dict(self, state_dict: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Loads the stem and stage weights; any missing or unexpected trunk key is an error."""
        trunk: dict[str, torch.Tensor] = {}
        unexpected = []
        for key, value in state_dict.items():
            if key.startswith(IGNORED_VISUAL_PREFIXES) or not key.startswith("visual."):
                continue
            name = key[len(TRUNK_PREFIX):] if key.startswith(TRUNK_PREFIX) else None
            if name is not None and name.split(".", 1)[0] in LOADED_TRUNK_PARTS:
                trunk[name] = value
            else:
                unexpected.append(key)
        expected = set(self.state_dict())
        missing = sorted(expected - set(trunk))
        unexpected += sorted(set(trunk) - expected)
        if missing or unexpected:
            raise ValueError(f"{source} does not match the {self.vision_cfg['timm_model_name']} trunk: "
                             f"missing {missing[:10]} ({len(missing)}), unexpected {unexpected[:10]} "
                             f"({len(unexpected)})")
        self.load_state_dict(trunk, strict=True)

    @property
    def hidden_size(self) -> int:
        """Channels of the fused map (sum over the stages)."""
        return sum(self.stage_channels)

    @property
    def dtype(self) -> torch.dtype:
        return self.stem[0].weight.dtype

    def train(self, mode: bool = True) -> ConvNeXtAuxTower:
        """Follows the model's mode only when the drop-path quirk is on; otherwise stays in eval."""
        return super().train(mode and self.drop_path_in_training)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, A, A] normalised images → [B, sum(stage channels), A/4, A/4] in the tower's dtype."""
        x = images.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        stage_outputs = []
        for stage in self.stages:
            x = stage(x)
            stage_outputs.append(x)
        size = stage_outputs[0].shape[-2:]
        fused = [stage_outputs[0]] + [
            F.interpolate(out.float(), size=size, mode="bilinear", align_corners=False).to(out.dtype)
            for out in stage_outputs[1:]
        ]
        return torch.cat(fused, dim=1)
