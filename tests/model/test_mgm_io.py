"""build_mgm from the model folders, mm_projector.bin round trip and strictness, and the complete
checkpoint folder: relocatable (move it, reload it, identical logits), sharded, no stale files.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_mgm_io.py -q``
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from model_helpers import TINY_AUX_SIZE, tiny_options

from bettersynth.constants import IGNORE_INDEX as X
from bettersynth.constants import IMAGE_TOKEN_INDEX as IMG
from bettersynth.model.io import build_mgm, load_checkpoint, load_projector, save_checkpoint, save_projector
from bettersynth.model.splice import pad_sequences
from bettersynth.train.stages import set_trainable

OFFICIAL_PROJECTOR_KEYS = {
    "model.mm_projector.0.weight", "model.mm_projector.0.bias", "model.mm_projector.2.weight",
    "model.mm_projector.2.bias",
    *(f"model.vlm_uni_{part}_projector.{index}.{kind}" for part in ("query", "aux", "val")
      for index in (0, 1) for kind in ("weight", "bias")),
}


def batch() -> dict:
    ids, mask = pad_sequences([[2, 4, IMG, 7, 8, 5, 6, 11, 12, 1], [2, 4, 9, 10, 5, 6, 13, 1]], 0, "right")
    labels, _ = pad_sequences([[X] * 7 + [11, 12, 1], [X] * 6 + [13, 1]], X, "right")
    images = torch.randn(2, 3, TINY_AUX_SIZE, TINY_AUX_SIZE, generator=torch.Generator().manual_seed(7))
    images[1] = 0.0
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "images_aux": images,
            "has_image": torch.tensor([True, False])}


def perturb(model, seed: int) -> None:
    """Stands in for training: moves every trainable weight away from its loaded/initial value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in set_trainable(model, "finetune"):
            param = model.get_parameter(name)
            param.add_(0.05 * torch.randn(param.shape, generator=generator))


def test_build_mgm_from_folders(tiny_mgm):
    model, tokenizer, preprocessor = tiny_mgm
    assert tokenizer.padding_side == "right" and tokenizer.model_max_length == 64
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 1, 2)
    assert preprocessor.image_size == TINY_AUX_SIZE
    assert model.num_image_tokens == 16 and not model.training
    assert model.llm.config._attn_implementation == "sdpa"


def test_build_mgm_without_aux_weights_fails(tiny_dirs, tmp_path):
    aux = tmp_path / "aux"
    aux.mkdir()
    shutil.copy(tiny_dirs["aux"] / "open_clip_config.json", aux)
    with pytest.raises(FileNotFoundError, match="open_clip_pytorch_model.bin"):
        build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], aux, tiny_options())


def test_projector_round_trip_uses_official_keys(tiny_mgm, tiny_dirs, tmp_path):
    model = tiny_mgm[0]
    perturb(model, seed=1)
    path = tmp_path / "run" / "mm_projector.bin"
    save_projector(model, path)
    state = torch.load(path, weights_only=True)
    assert set(state) == OFFICIAL_PROJECTOR_KEYS
    torch.manual_seed(99)
    fresh, _, _ = build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], tiny_dirs["aux"], tiny_options())
    assert not torch.equal(fresh.projector[0].weight, model.projector[0].weight)
    load_projector(fresh, path)
    for part in ("projector", "mining"):
        expected = getattr(model, part).state_dict()
        for key, value in getattr(fresh, part).state_dict().items():
            assert torch.equal(value, expected[key]), f"{part}.{key}"


def test_projector_load_ignores_tower_weights_of_the_official_file(tiny_mgm, tmp_path):
    model = tiny_mgm[0]
    save_projector(model, tmp_path / "mm_projector.bin")
    state = torch.load(tmp_path / "mm_projector.bin", weights_only=True)
    state["model.vision_tower.vision_tower.vision_model.post_layernorm.weight"] = torch.ones(32)
    torch.save(state, tmp_path / "official.bin")
    load_projector(model, tmp_path / "official.bin")


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("model.mm_projector.2.bias"), "missing model.mm_projector.2.bias"),
    (lambda s: s.pop("model.vlm_uni_val_projector.0.weight"), "missing model.vlm_uni_val_projector.0.weight"),
    (lambda s: s.update({"model.mm_projector.4.weight": torch.ones(2)}), "unexpected model.mm_projector.4.weight"),
    (lambda s: s.update({"model.mm_projector.0.weight": torch.ones(32, 8)}), r"shape of model.mm_projector.0.weight"),
])
def test_projector_load_is_strict(tiny_mgm, tmp_path, change, message):
    model = tiny_mgm[0]
    save_projector(model, tmp_path / "mm_projector.bin")
    state = torch.load(tmp_path / "mm_projector.bin", weights_only=True)
    change(state)
    torch.save(state, tmp_path / "bad.bin")
    before = model.projector[0].weight.clone()
    with pytest.raises(ValueError, match=message):
        load_projector(model, tmp_path / "bad.bin")
    assert torch.equal(model.projector[0].weight, before)  # nothing half-loaded


def test_checkpoint_moves_and_reloads_to_identical_logits(tiny_mgm, tmp_path):
    model, tokenizer, preprocessor = tiny_mgm
    perturb(model, seed=2)
    model.eval()
    expected = model(**batch(), return_logits=True).logits
    written = tmp_path / "written" / "ckpt"
    save_checkpoint(model, tokenizer, written, preprocessor=preprocessor, max_shard_size="200KB")
    names = {p.name for p in written.iterdir()}
    shards = sorted(n for n in names if n.startswith("model-"))
    assert len(shards) > 1 and shards[-1].endswith(f"-of-{len(shards):05d}.safetensors")
    assert {"config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json", "preprocessor_config.json"} <= names
    assert not any(n.startswith(".") for n in names)
    for path in written.glob("*.json"):
        assert str(tmp_path) not in path.read_text() and "tiny_models" not in path.read_text(), path.name
    moved = tmp_path / "elsewhere" / "ckpt"
    shutil.move(str(written.parent), str(moved.parent))
    loaded, loaded_tokenizer, loaded_pre = load_checkpoint(moved)
    assert not loaded.training and loaded.options == model.options
    assert torch.equal(loaded(**batch(), return_logits=True).logits, expected)
    original = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key]), key
    assert loaded.llm.get_output_embeddings().weight is loaded.llm.get_input_embeddings().weight
    assert loaded_tokenizer("what is in the image").input_ids == tokenizer("what is in the image").input_ids
    assert loaded_pre.image_size == TINY_AUX_SIZE
    ids, mask = pad_sequences([[2, 4, IMG, 7, 8, 5, 6, 4]], 0, "left")
    images = batch()["images_aux"][:1]
    assert torch.equal(loaded.generate(ids, mask, images, torch.tensor([True]), max_new_tokens=6),
                       model.generate(ids, mask, images, torch.tensor([True]), max_new_tokens=6))


def test_saving_again_replaces_the_weights_without_stale_shards(tiny_mgm, tmp_path):
    model, tokenizer, _ = tiny_mgm
    save_checkpoint(model, tokenizer, tmp_path, max_shard_size="200KB")
    (tmp_path / "trainer_state.json").write_text("{}")
    perturb(model, seed=3)
    save_checkpoint(model, tokenizer, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in names and not any(n.startswith("model-") for n in names)
    assert "model.safetensors.index.json" not in names and "trainer_state.json" in names
    loaded = load_checkpoint(tmp_path)[0]
    assert torch.equal(loaded.projector[0].weight, model.projector[0].weight)


def test_incomplete_or_foreign_folders_fail(tiny_mgm, tmp_path):
    model, tokenizer, _ = tiny_mgm
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_checkpoint(tmp_path)
    save_checkpoint(model, tokenizer, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["llm_config"]["num_hidden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="missing .*llm.model.layers.2"):
        load_checkpoint(tmp_path)
    config["model_type"] = "gemma"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a bettersynth_mgm"):
        load_checkpoint(tmp_path)


def test_attention_implementation_can_be_chosen_at_load(tiny_mgm, tmp_path):
    model, tokenizer, _ = tiny_mgm
    save_checkpoint(model, tokenizer, tmp_path)
    loaded = load_checkpoint(tmp_path, attn_implementation="eager")[0]
    assert loaded.llm.config._attn_implementation == "eager"
    torch.testing.assert_close(loaded(**batch()).loss_sum, model.eval()(**batch()).loss_sum)


def test_checkpoint_of_parameters_that_are_views_of_one_flat_buffer(tiny_mgm, tmp_path):
    """DeepSpeed keeps parameters as views into flat buffers; saving must still write each tensor alone."""
    model, tokenizer, preprocessor = tiny_mgm
    params = [param for param in model.parameters()]
    flat = torch.cat([param.detach().reshape(-1) for param in params])
    offset = 0
    with torch.no_grad():
        for param in params:
            param.data = flat[offset:offset + param.numel()].view_as(param)
            offset += param.numel()
    model.eval()
    expected = model(**batch(), return_logits=True).logits
    save_checkpoint(model, tokenizer, tmp_path / "ckpt", preprocessor=preprocessor)
    loaded, _, _ = load_checkpoint(tmp_path / "ckpt")
    assert torch.equal(loaded(**batch(), return_logits=True).logits, expected)


def test_build_mgm_names_a_missing_model_folder(tiny_dirs, tmp_path):
    """A wrong path fails with the folder named, before any hub lookup."""
    with pytest.raises(FileNotFoundError, match=r"LLM folder .*nowhere has no config.json"):
        build_mgm(tmp_path / "nowhere", tiny_dirs["clip"], tiny_dirs["aux"], tiny_options())
    with pytest.raises(FileNotFoundError, match="aux vision tower folder"):
        build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], tmp_path / "nowhere", tiny_options())


def test_a_folder_without_its_tokenizer_is_named(tiny_mgm, tiny_dirs, tmp_path):
    """transformers would build an empty tokenizer from the config (every word <unk>) and go on."""
    model, tokenizer, _ = tiny_mgm
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    for name in ("tokenizer.json", "tokenizer.model"):
        (tmp_path / "ckpt" / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match=r"ckpt has no tokenizer \(tokenizer.json or tokenizer.model\)"):
        load_checkpoint(tmp_path / "ckpt")
    llm = tmp_path / "llm"
    shutil.copytree(tiny_dirs["llm"], llm, ignore=shutil.ignore_patterns("tokenizer.json", "tokenizer.model"))
    with pytest.raises(FileNotFoundError, match=r"llm has no tokenizer"):
        build_mgm(llm, tiny_dirs["clip"], tiny_dirs["aux"], tiny_options())


def test_unreadable_model_files_are_named(tiny_mgm, tiny_dirs, tmp_path):
    """A config that is not JSON, cut weights or a cut projector: a ValueError naming the folder or file."""
    llm = tmp_path / "llm"
    shutil.copytree(tiny_dirs["llm"], llm)
    (llm / "config.json").write_text("{")
    with pytest.raises(ValueError, match=rf"LLM folder {llm} cannot be loaded \(OSError: .*config.json"):
        build_mgm(llm, tiny_dirs["clip"], tiny_dirs["aux"], tiny_options())
    shutil.copy(tiny_dirs["llm"] / "config.json", llm)
    (llm / "model.safetensors").write_bytes((tiny_dirs["llm"] / "model.safetensors").read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"LLM folder {llm} cannot be loaded \(SafetensorError"):
        build_mgm(llm, tiny_dirs["clip"], tiny_dirs["aux"], tiny_options())
    aux = tmp_path / "aux"
    shutil.copytree(tiny_dirs["aux"], aux)
    (aux / "open_clip_config.json").write_text("{")
    with pytest.raises(ValueError, match=rf"aux vision tower folder {aux} cannot be loaded \(JSONDecodeError"):
        build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], aux, tiny_options())
    model = tiny_mgm[0]
    cut = tmp_path / "cut.bin"
    save_projector(model, cut)
    cut.write_bytes(cut.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"projector file {cut} cannot be loaded \(RuntimeError"):
        load_projector(model, cut)
