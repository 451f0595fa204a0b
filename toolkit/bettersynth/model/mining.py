"""Patch info mining (MGM's "unified resampler"): each CLIP patch attends to the high-res cells under it.

For N CLIP patches (n = sqrt(N) per side) and a high-res map of side H (p = H / n cells per patch
side), query i at row r, column c attends over the p*p cells rows p*r..p*r+p-1, columns
p*c..p*c+p-1 of the map. Real sizes: N = 576, n = 24, H = 192, p = 8, 2880 → 1024 channels.

    mining = PatchInfoMining(clip_dim=1024, aux_dim=2880)
    features = mining(clip_features, aux_map)    # [B, N, 1024] = clip + attended values

Attribute names (query, aux, val) map to the official ``vlm_uni_{query,aux,val}_projector``.

Evaluation order. The official module projects every cell to keys and values (two 2880 → 1024
linears over 64 cells a patch: ~1.3 TFLOP a real-size sample with the backward) and then takes one
query's scores and a weighted sum. This module computes the same function with the products
reassociated, so no per-cell projection is ever formed:

    q · (W_k (g_k * x_j + b_k) + c_k)  =  x_j · (g_k * (W_k^T q))  +  (b_k · W_k^T q + q · c_k)
    sum_j a_j (W_v (g_v * x_j + b_v) + c_v)  =  W_v (g_v * sum_j a_j x_j + b_v) + c_v

where x_j is cell j after LayerNorm's normalisation (shared by both branches: same input, same eps),
g/b the LayerNorm affine and W/c the linear (the second identity uses sum_j a_j = 1). Parameters,
state-dict keys, the NaN handling and the result are the official ones; only the rounding of the
intermediate products differs (tests compare with the per-cell form in float64, and in bfloat16).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, as in the official projectors


class PatchInfoMining(nn.Module):
    """query = LN→Linear(clip→clip); aux, val = LN→Linear(aux→clip). PyTorch default init."""

    def __init__(self, clip_dim: int, aux_dim: int) -> None:
        super().__init__()
        self.clip_dim = clip_dim
        self.aux_dim = aux_dim
        self.query = nn.Sequential(nn.LayerNorm(clip_dim, eps=LAYER_NORM_EPS), nn.Linear(clip_dim, clip_dim))
        self.aux = nn.Sequential(nn.LayerNorm(aux_dim, eps=LAYER_NORM_EPS), nn.Linear(aux_dim, clip_dim))
        self.val = nn.Sequential(nn.LayerNorm(aux_dim, eps=LAYER_NORM_EPS), nn.Linear(aux_dim, clip_dim))

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
        aux_norm, aux_linear = self.aux
        val_norm, val_linear = self.val
        # [B, N, P, C]: each cell normalised over its channels (no affine); materialised once, it is
        # the only per-cell tensor the forward and backward passes read.
        cells = F.layer_norm(self.regroup(aux_map, n, p), (self.aux_dim,), eps=LAYER_NORM_EPS).contiguous()
        query = self.query(clip_features)                                   # [B, N, D]
        query_in_aux = query @ aux_linear.weight                            # [B, N, C]: W_k^T q
        score_offset = query_in_aux @ aux_norm.bias + query @ aux_linear.bias  # [B, N], the same for every cell
        scores = (cells @ (query_in_aux * aux_norm.weight).unsqueeze(-1)).squeeze(-1) + score_offset.unsqueeze(-1)
        # Official: NaNs → 0 (and ±inf → finite extremes) before the softmax over the p*p cells.
        attention = torch.nan_to_num(scores / math.sqrt(self.clip_dim)).softmax(dim=-1)  # [B, N, P]
        mixed_cells = (attention.unsqueeze(2) @ cells).squeeze(2)            # [B, N, C]
        mined = val_linear(mixed_cells * val_norm.weight + val_norm.bias)
        return clip_features + mined
