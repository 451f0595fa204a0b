"""build_mgm opens the demo engineer's model folders (bettersynth.demo: tiny Gemma with its
trained tokenizer, full CLIPModel folder, OpenCLIP ConvNeXt written by open_clip itself) and the
model trains a step and generates on them, at the demo geometry (8x8 patches, 256 px aux, p = 8).

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_mgm_demo_assets.py -q``
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from bettersynth.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from bettersynth.model.config import MGMOptions
from bettersynth.model.io import build_mgm
from bettersynth.model.mining import PatchInfoMining
from bettersynth.model.splice import pad_sequences
from bettersynth.train.stages import set_trainable
from bettersynth.paths import AssetLayout

DEMO_MODELS = ("llm", "vision_tower", "vision_tower_aux")


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory) -> AssetLayout:
    pytest.importorskip("open_clip")  # the demo writes its aux tower with open_clip
    from bettersynth.demo.build import build_item, demo_items

    layout = AssetLayout(tmp_path_factory.mktemp("demo_models"))
    for item in demo_items(layout):
        if item.name in DEMO_MODELS:
            assert build_item(item, seed=0, force=False).status == "built"
    return layout


@pytest.fixture(scope="module")
def demo_mgm(demo_models):
    torch.manual_seed(1024)
    return build_mgm(demo_models.llm_dir, demo_models.vision_tower_dir, demo_models.vision_tower_aux_dir,
                     MGMOptions(image_size_aux=256, model_max_length=512))


def prompt(tokenizer, question: str, with_image: bool) -> list[int]:
    """<bos> <start_of_turn>user\\n [<image>]\\n question <end_of_turn>\\n<start_of_turn>model\\n."""
    head = tokenizer("<start_of_turn>user\n").input_ids
    tail = tokenizer(f"\n{question}<end_of_turn>\n<start_of_turn>model\n", add_special_tokens=False).input_ids
    return head + ([IMAGE_TOKEN_INDEX] if with_image else []) + tail


def test_demo_geometry_matches_the_real_one(demo_mgm):
    model, tokenizer, preprocessor = demo_mgm
    assert model.num_image_tokens == 64 and preprocessor.image_size == 256
    assert PatchInfoMining.patch_grid(64, 256 // model.aux_tower.reduction) == (8, 8)
    assert model.llm.config.hidden_act == "gelu"
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 1, 2)


def test_a_pretrain_step_on_demo_models(demo_mgm):
    model, tokenizer, preprocessor = demo_mgm
    set_trainable(model, "pretrain")
    model.train()
    ids = prompt(tokenizer, "what is shown?", True)
    answer = tokenizer("a red circle<end_of_turn>\n", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    input_ids, mask = pad_sequences([ids + answer], tokenizer.pad_token_id, "right")
    labels, _ = pad_sequences([[IGNORE_INDEX] * len(ids) + answer], IGNORE_INDEX, "right")
    image = preprocessor(Image.new("RGB", (320, 200), (200, 30, 30)), "square")[None]
    out = model(input_ids=input_ids, labels=labels, attention_mask=mask, images_aux=image,
                has_image=torch.tensor([True]))
    assert int(out.num_tokens) == len(answer) and torch.isfinite(out.loss_sum)
    out.loss_sum.backward()
    assert model.projector[0].weight.grad.abs().sum() > 0
    assert model.mining.aux[1].weight.grad.abs().sum() > 0
    model.eval()


def test_generation_on_demo_models_batched_equals_one_by_one(demo_mgm):
    model, tokenizer, preprocessor = demo_mgm
    model.eval()
    prompts = [prompt(tokenizer, "what colour is the shape?", True), prompt(tokenizer, "hello", False)]
    images = torch.stack([preprocessor(Image.new("RGB", (200, 320), (20, 60, 200)), "pad"),
                          torch.zeros(3, 256, 256)])
    has_image = torch.tensor([True, False])
    ids, mask = pad_sequences(prompts, tokenizer.pad_token_id, "left")
    batched = model.generate(ids, mask, images, has_image, max_new_tokens=8)
    for row, ids_row in enumerate(prompts):
        single = model.generate(torch.tensor([ids_row]), torch.ones(1, len(ids_row), dtype=torch.bool),
                                images[row:row + 1], has_image[row:row + 1], max_new_tokens=8)
        assert batched[row, :single.shape[1]].tolist() == single[0].tolist()
