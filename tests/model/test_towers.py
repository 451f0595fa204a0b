"""The frozen towers: CLIP layer -2 without CLS, and the ConvNeXt stem + stages fused map, each
against a plain reference built from the same weights; strict loading of the OpenCLIP weights.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_towers.py -q``
"""

from __future__ import annotations

import json
import shutil

import pytest
import timm
import torch
import torch.nn.functional as F
from model_helpers import TINY_AUX_SIZE, tiny_openclip_state_dict
from safetensors.torch import load_file, save_file
from transformers import CLIPModel

from bettersynth.model.aux_tower import ConvNeXtAuxTower, read_openclip_vision_cfg
from bettersynth.model.vision_tower import CLIPVisionTower


@pytest.mark.parametrize("layer", [-2, -1, 1])
def test_clip_tower_is_the_selected_hidden_state_without_cls(tiny_dirs, layer):
    tower = CLIPVisionTower.from_pretrained(tiny_dirs["clip"], select_layer=layer)
    pixels = torch.randn(2, 3, 56, 56)
    reference = CLIPModel.from_pretrained(tiny_dirs["clip"]).vision_model
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[layer][:, 1:]
    out = tower(pixels)
    assert out.shape == (2, 16, 32) and not out.requires_grad
    torch.testing.assert_close(out, expected)
    assert not any(param.requires_grad for param in tower.parameters())


def test_clip_tower_with_a_missing_vision_weight_fails(tiny_dirs, tmp_path):
    folder = tmp_path / "clip"
    shutil.copytree(tiny_dirs["clip"], folder)
    weights = load_file(folder / "model.safetensors")
    del weights["vision_model.post_layernorm.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="post_layernorm.weight"):
        CLIPVisionTower.from_pretrained(folder, select_layer=-2)


def test_clip_select_layer_out_of_range_is_an_error(tiny_dirs):
    with pytest.raises(ValueError, match="outside the 3 layers"):
        CLIPVisionTower.from_pretrained(tiny_dirs["clip"], select_layer=-5)


def reference_aux_map(state: dict, images: torch.Tensor) -> torch.Tensor:
    """timm's own trunk with the same weights: stage outputs, upsampled to stage 1 in float32, concatenated."""
    trunk = timm.create_model("convnext_atto", pretrained=False, num_classes=0, global_pool="")
    trunk.load_state_dict({k.removeprefix("visual.trunk."): v for k, v in state.items()
                           if k.startswith("visual.trunk.")})
    with torch.no_grad():
        stages = trunk.eval().forward_intermediates(images, intermediates_only=True)
    size = stages[0].shape[-2:]
    return torch.cat([stages[0]] + [F.interpolate(s, size=size, mode="bilinear", align_corners=False)
                                    for s in stages[1:]], dim=1)


@pytest.mark.parametrize("channels_last", [True, False])
def test_aux_tower_equals_timm_trunk_reference(tiny_dirs, channels_last):
    tower = ConvNeXtAuxTower.from_openclip_folder(tiny_dirs["aux"], channels_last=channels_last)
    images = torch.randn(2, 3, TINY_AUX_SIZE, TINY_AUX_SIZE)
    out = tower(images)
    assert out.shape == (2, 40 + 80 + 160 + 320, 16, 16) and tower.hidden_size == 600
    torch.testing.assert_close(out, reference_aux_map(tiny_openclip_state_dict(), images), rtol=1e-5, atol=1e-5)
    assert not tower.training and not any(param.requires_grad for param in tower.parameters())


def test_aux_tower_in_bfloat16_returns_bfloat16(tiny_dirs):
    tower = ConvNeXtAuxTower.from_openclip_folder(tiny_dirs["aux"], dtype=torch.bfloat16)
    images = torch.randn(1, 3, TINY_AUX_SIZE, TINY_AUX_SIZE)
    out = tower(images)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference_aux_map(tiny_openclip_state_dict(), images), rtol=0.1, atol=0.1)


def test_openclip_config_is_read(tiny_dirs):
    cfg = read_openclip_vision_cfg(tiny_dirs["aux"])
    assert cfg["timm_model_name"] == "convnext_atto" and cfg["timm_drop_path"] == 0.1


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("visual.trunk.stages.2.blocks.1.mlp.fc1.weight"), "missing .*stages.2.blocks.1.mlp.fc1.weight"),
    (lambda s: s.pop("visual.trunk.stem.0.weight"), "missing .*stem.0.weight"),
    (lambda s: s.update({"visual.trunk.stages.4.blocks.0.gamma": torch.ones(1)}), "unexpected .*stages.4"),
    (lambda s: s.update({"visual.attnpool.weight": torch.ones(1)}), "unexpected .*visual.attnpool.weight"),
])
def test_aux_tower_weights_are_loaded_strictly(change, message):
    state = tiny_openclip_state_dict()
    change(state)
    tower = ConvNeXtAuxTower({"timm_model_name": "convnext_atto", "timm_drop_path": 0.1})
    with pytest.raises(ValueError, match=message):
        tower.load_openclip_state_dict(state)


def test_non_convnext_trunk_is_rejected():
    with pytest.raises(ValueError, match="not a timm ConvNeXt"):
        ConvNeXtAuxTower({"timm_model_name": "resnet18"})


def test_missing_openclip_config_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="open_clip_config.json"):
        read_openclip_vision_cfg(tmp_path)
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"vision_cfg": {"layers": 12}}}))
    with pytest.raises(ValueError, match="timm_model_name"):
        read_openclip_vision_cfg(tmp_path)


def test_loads_a_real_open_clip_state_dict():
    """The layout open_clip itself writes (trunk, head, text tower) loads and gives the trunk's stages."""
    open_clip = pytest.importorskip("open_clip")
    vision_cfg = {"timm_model_name": "convnext_atto", "timm_model_pretrained": False, "timm_pool": "",
                  "timm_proj": "mlp", "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": TINY_AUX_SIZE}
    torch.manual_seed(5)
    reference = open_clip.CLIP(embed_dim=16, vision_cfg=vision_cfg,
                               text_cfg={"context_length": 8, "vocab_size": 20, "width": 16, "heads": 2, "layers": 1})
    tower = ConvNeXtAuxTower(vision_cfg)
    tower.load_openclip_state_dict(reference.state_dict())
    images = torch.randn(1, 3, TINY_AUX_SIZE, TINY_AUX_SIZE)
    with torch.no_grad():
        stages = reference.visual.trunk.eval().forward_intermediates(images, intermediates_only=True)
    torch.testing.assert_close(tower(images)[:, :40], stages[0])
