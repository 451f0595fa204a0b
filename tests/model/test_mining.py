"""Patch info mining equals a naive per-patch loop, handles NaN scores, and checks its geometry.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_mining.py -q``
"""

from __future__ import annotations

import math

import pytest
import torch

from bettersynth.model.mining import PatchInfoMining


def naive_mining(mining: PatchInfoMining, clip: torch.Tensor, aux_map: torch.Tensor) -> torch.Tensor:
    """Spec, one patch at a time: patch (r, c) attends over map rows p*r..p*r+p-1, cols p*c..p*c+p-1."""
    batch, num_patches, dim = clip.shape
    channels, side = aux_map.shape[1], aux_map.shape[-1]
    n = math.isqrt(num_patches)
    p = side // n
    out = torch.empty_like(clip)
    for b in range(batch):
        for index in range(num_patches):
            r, c = divmod(index, n)
            cells = aux_map[b, :, p * r:p * (r + 1), p * c:p * (c + 1)].reshape(channels, p * p).T
            query = mining.query(clip[b, index])
            keys, values = mining.aux(cells), mining.val(cells)
            scores = torch.nan_to_num(keys @ query / math.sqrt(dim))
            out[b, index] = clip[b, index] + torch.softmax(scores, dim=0) @ values
    return out


@pytest.mark.parametrize("n, p", [(4, 4), (3, 2), (2, 8)])
def test_matches_naive_loop(n, p):
    torch.manual_seed(n * 10 + p)
    mining = PatchInfoMining(clip_dim=8, aux_dim=24).double()
    for param in mining.parameters():  # non-trivial LayerNorm affine too
        torch.nn.init.normal_(param, std=0.5)
    clip = torch.randn(2, n * n, 8, dtype=torch.float64)
    aux_map = torch.randn(2, 24, n * p, n * p, dtype=torch.float64)
    torch.testing.assert_close(mining(clip, aux_map), naive_mining(mining, clip, aux_map), rtol=1e-10, atol=1e-10)


def per_cell_mining(mining: PatchInfoMining, clip: torch.Tensor, aux_map: torch.Tensor) -> torch.Tensor:
    """The official evaluation order, batched: project every cell to a key and a value."""
    cells = mining.regroup(aux_map, math.isqrt(clip.shape[1]), aux_map.shape[-1] // math.isqrt(clip.shape[1]))
    query, keys, values = mining.query(clip), mining.aux(cells), mining.val(cells)
    scores = (query.unsqueeze(2) @ keys.transpose(-1, -2)) / math.sqrt(keys.shape[-1])
    return clip + (torch.nan_to_num(scores).softmax(dim=-1) @ values).squeeze(2)


def test_gradients_match_the_per_cell_form():
    """Every parameter's gradient (and the CLIP features') equals the official order's, in float64."""
    torch.manual_seed(3)
    mining = PatchInfoMining(clip_dim=8, aux_dim=24).double()
    for param in mining.parameters():
        torch.nn.init.normal_(param, std=0.5)
    clip = torch.randn(2, 16, 8, dtype=torch.float64, requires_grad=True)
    aux_map = torch.randn(2, 24, 16, 16, dtype=torch.float64)
    weights = torch.randn(2, 16, 8, dtype=torch.float64)
    grads = []
    for forward in (mining, lambda c, a: per_cell_mining(mining, c, a)):
        mining.zero_grad()
        clip.grad = None
        (forward(clip, aux_map) * weights).sum().backward()
        grads.append({"clip": clip.grad.clone(), **{n: p.grad.clone() for n, p in mining.named_parameters()}})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-9, atol=1e-11, msg=name)


def test_bfloat16_stays_within_rounding_of_the_per_cell_form():
    """At real channel counts in bfloat16 both orders land within bf16 rounding of the float64 result."""
    torch.manual_seed(4)
    mining = PatchInfoMining(clip_dim=64, aux_dim=2880)
    clip, aux_map = torch.randn(1, 16, 64), torch.randn(1, 2880, 32, 32) * 3 + 0.5
    exact = mining.double()(clip.double(), aux_map.double())
    mining.bfloat16()
    ours = mining(clip.bfloat16(), aux_map.bfloat16()).double()
    official = per_cell_mining(mining, clip.bfloat16(), aux_map.bfloat16()).double()
    error_ours, error_official = (ours - exact).abs().max().item(), (official - exact).abs().max().item()
    assert error_ours < 0.05 and error_official < 0.05, (error_ours, error_official)
    assert error_ours < 2 * error_official + 1e-3, (error_ours, error_official)


def test_channels_last_map_gives_the_same_result():
    torch.manual_seed(0)
    mining = PatchInfoMining(clip_dim=8, aux_dim=12)
    clip, aux_map = torch.randn(1, 16, 8), torch.randn(1, 12, 16, 16)
    expected = mining(clip, aux_map)
    torch.testing.assert_close(mining(clip, aux_map.contiguous(memory_format=torch.channels_last)), expected)


def test_nan_scores_become_zero_before_softmax():
    """q has +inf where every key is 0: inf * 0 = NaN scores → 0 → uniform attention over the cells."""
    torch.manual_seed(1)
    mining = PatchInfoMining(clip_dim=4, aux_dim=6)
    with torch.no_grad():
        mining.query[1].weight[0].zero_()
        mining.query[1].bias[0] = float("inf")
        mining.aux[1].weight[0].zero_()
        mining.aux[1].bias[0] = 0.0
    clip, aux_map = torch.randn(1, 4, 4), torch.randn(1, 6, 4, 4)
    out = mining(clip, aux_map)
    cells = mining.regroup(aux_map, 2, 2)
    expected = clip + mining.val(cells).mean(dim=2)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, expected)


def test_parameter_names_and_official_layout():
    mining = PatchInfoMining(clip_dim=1024, aux_dim=2880)
    shapes = {name: tuple(param.shape) for name, param in mining.named_parameters()}
    assert shapes == {
        "query.0.weight": (1024,), "query.0.bias": (1024,), "query.1.weight": (1024, 1024), "query.1.bias": (1024,),
        "aux.0.weight": (2880,), "aux.0.bias": (2880,), "aux.1.weight": (1024, 2880), "aux.1.bias": (1024,),
        "val.0.weight": (2880,), "val.0.bias": (2880,), "val.1.weight": (1024, 2880), "val.1.bias": (1024,),
    }
    assert PatchInfoMining.patch_grid(576, 192) == (24, 8)


@pytest.mark.parametrize("patches, side, message", [(15, 16, "square patch grid"), (16, 18, "not a multiple")])
def test_bad_geometry_is_an_error(patches, side, message):
    mining = PatchInfoMining(clip_dim=4, aux_dim=6)
    with pytest.raises(ValueError, match=message):
        mining(torch.randn(1, patches, 4), torch.randn(1, 6, side, side))


def test_wrong_channels_is_an_error():
    mining = PatchInfoMining(clip_dim=4, aux_dim=6)
    with pytest.raises(ValueError, match="expects 4 CLIP and 6 aux channels"):
        mining(torch.randn(1, 16, 4), torch.randn(1, 7, 16, 16))
