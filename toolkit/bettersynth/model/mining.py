"""Patch info mining (MGM's "unified resampler"): each CLIP patch attends to the high-res cells under it.

For N CLIP patches (n = sqrt(N) per side) and a high-res map of side H (p = H / n cells per patch
side), query i at row r, column c attends over the p*p cells rows p*r..p*r+p-1, columns
p*c..p*c+p-1 of the map. Real sizes: N = 576, n = 24, H = 192, p = 8, 2880 → 1024 channels.

    mining = PatchInfoMining(clip_dim=1024, aux_dim=2880)
    features = mining(clip_features, aux_map)    # [B, N, 1024] = clip + attended values

Attribute names (query, aux, val) map to the official ``vlm_uni_{query,aux,val}_projector``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PatchInfoMining(nn.Module):
    """query = LN→Linear(clip→clip); aux, val = LN→Linear(aux→clip). PyTorch default init."""

    def __init__(self, clip_dim: int, aux_dim: int) -> None:
        super().__init__()
        self.clip_dim = clip_dim
        self.aux_dim = aux_dim
        self.query = nn.Sequential(nn.LayerNorm(clip_dim), nn.Linear(clip_dim, clip_dim))
        self.aux = nn.Sequential(nn.LayerNorm(aux_dim), nn.Linear(aux_dim, clip_dim))
        self.val = nn.Sequential(nn.LayerNorm(aux_dim), nn.Linear(aux_dim, clip_dim))

    @staticmethod
    def patch_grid(num_patches: int, map_size: int) -> tuple[int, int]:
        """(n, p): patches per side and high-res cells per patch side; errors on a bad geometry."""
        n = math.isqrt(num_patches)
        if n * n != num_patches:
            raise ValueError(f"patch info mining needs a square patch grid, got {num_patches} patches")
        if map_size % n:
            raise ValueError(f"high-res map side {map_size} is not a multiple of the {n}x{n} patch grid")
        return n, map_size // n

    def regroup(self, aux_map: torch.Tensor, n: int, p: int) -> torch.Tensor:
        """[B, C, n*p, n*p] → [B, n*n, p*p, C]: the cells under each patch, patches row-major."""
        batch, channels = aux_map.shape[:2]
        cells = aux_map.permute(0, 2, 3, 1).reshape(batch, n, p, n, p, channels)
        return cells.permute(0, 1, 3, 2, 4, 5).reshape(batch, n * n, p * p, channels)

    def forward(self, clip_features: torch.Tensor, aux_map: torch.Tensor) -> torch.Tensor:
        """clip_features [B, N, D], aux_map [B, C, H, H] → [B, N, D]."""
        if aux_map.shape[-1] != aux_map.shape[-2]:
            raise ValueError(f"patch info mining needs a square high-res map, got {tuple(aux_map.shape)}")
        if clip_features.shape[-1] != self.clip_dim or aux_map.shape[1] != self.aux_dim:
            raise ValueError(f"mining expects {self.clip_dim} CLIP and {self.aux_dim} aux channels, got "
                             f"{clip_features.shape[-1]} and {aux_map.shape[1]}")
        n, p = self.patch_grid(clip_features.shape[1], aux_map.shape[-1])
        cells = self.regroup(aux_map, n, p)
        query = self.query(clip_features)
        keys = self.aux(cells)
        values = self.val(cells)
        scores = (query.unsqueeze(2) @ keys.transpose(-1, -2)) / math.sqrt(keys.shape[-1])
        # Official: NaNs → 0 (and ±inf → finite extremes) before the softmax over the p*p cells.
        attention = torch.nan_to_num(scores).softmax(dim=-1)
        mined = (attention @ values).squeeze(2)
        return clip_features + mined
