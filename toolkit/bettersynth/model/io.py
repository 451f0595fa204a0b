"""Building MGM-2B from the model folders, and saving/loading its weights.

    model, tokenizer, pre = build_mgm(layout.llm_dir, layout.vision_tower_dir, layout.vision_tower_aux_dir,
                                      MGMOptions())
    save_projector(model, out / "mm_projector.bin")       # pretrain output
    load_projector(model, out / "mm_projector.bin")       # finetune start (strict on trainable keys)
    save_checkpoint(model, tokenizer, out, preprocessor=pre)  # finetune output: relocatable HF-style folder
    model, tokenizer, pre = load_checkpoint(out, device="cuda", dtype=torch.float16)

Checkpoint folder: config.json (MGM options, LLM config, CLIP vision config, OpenCLIP vision cfg;
no paths), model-0000x-of-0000y.safetensors + model.safetensors.index.json (every weight, towers
included; the tied LM head is stored once, as the token embedding), tokenizer files,
generation_config.json, preprocessor_config.json. Files are written to a staging folder inside the
target and moved in with config.json last: a folder with config.json is complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import load_torch_model, save_torch_state_dict
from safetensors import SafetensorError
from torch import nn
from transformers import (AutoConfig, AutoTokenizer, CLIPImageProcessorPil, CLIPVisionConfig, GemmaConfig,
                          GemmaForCausalLM, GenerationConfig, PreTrainedTokenizerBase)

from bettersynth.model.assemble import assemble_mgm, build_image_path, configure_llm
from bettersynth.model.aux_tower import ConvNeXtAuxTower
from bettersynth.model.config import MGMOptions
from bettersynth.model.mgm import MGMForCausalLM
from bettersynth.model.preprocess import ImagePreprocessor
from bettersynth.model.vision_tower import CLIPVisionTower

logger = logging.getLogger(__name__)

CHECKPOINT_TYPE = "bettersynth_mgm"
CHECKPOINT_VERSION = 1
WEIGHTS_PATTERN = "model{suffix}.safetensors"
TIED_LM_HEAD = "llm.lm_head.weight"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")  # a fast tokenizer, or its SentencePiece model


def require_tokenizer(folder: str | Path) -> None:
    """FileNotFoundError naming ``folder`` when it holds no tokenizer file (transformers would build an
    empty tokenizer from the config, which reads every word as <unk> without an error)."""
    if not any((Path(folder) / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{folder} has no tokenizer ({' or '.join(TOKENIZER_FILES)})")


def load_tokenizer(folder: str | Path, **options) -> PreTrainedTokenizerBase:
    """The tokenizer of a model folder (``require_tokenizer`` first)."""
    require_tokenizer(folder)
    return AutoTokenizer.from_pretrained(folder, **options)


class ModelFileError(ValueError):
    """A model folder or weights file that cannot be read; the message names it."""


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Names ``what`` ("LLM folder X") when its files cannot be read (a config that is not JSON, weights
    that are missing, cut or foreign) in a ModelFileError; a missing file stays a FileNotFoundError."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError) as error:
        raise ModelFileError(f"{what} cannot be loaded ({type(error).__name__}: {error})") from error


def build_mgm(llm_dir: str | Path, vision_tower_dir: str | Path, vision_tower_aux_dir: str | Path,
              options: MGMOptions, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32) -> tuple[MGMForCausalLM, PreTrainedTokenizerBase, ImagePreprocessor]:
    """Pretrained LLM and towers + fresh mining and projector (global RNG: seed first).

    The model comes back in eval mode (call ``.train()`` to train); the tokenizer pads on the right
    and knows ``model_max_length``. Each folder must exist locally (nothing is fetched from a hub); one
    whose files cannot be read is named in a ModelFileError.
    """
    for role, folder, needed in (("LLM", llm_dir, "config.json"), ("vision tower", vision_tower_dir, "config.json"),
                                 ("aux vision tower", vision_tower_aux_dir, "open_clip_config.json")):
        if not (Path(folder) / needed).is_file():
            raise FileNotFoundError(f"{role} folder {folder} has no {needed}: download the models (bash download.sh "
                                    "--models) or build the demo (bsynth demo build)")
    with _reading(f"LLM folder {llm_dir}"):
        tokenizer = load_tokenizer(llm_dir, model_max_length=options.model_max_length, padding_side="right")
        llm_config = configure_llm(AutoConfig.from_pretrained(llm_dir), options)
        llm, info = GemmaForCausalLM.from_pretrained(llm_dir, config=llm_config, dtype=dtype,
                                                     output_loading_info=True,
                                                     attn_implementation=options.attn_implementation)
    if tokenizer.pad_token_id is None:
        raise ValueError(f"tokenizer in {llm_dir} has no pad token")
    if info["missing_keys"] or info["mismatched_keys"] or info["unexpected_keys"]:
        raise ValueError(f"LLM weights in {llm_dir} do not match its config: "
                         f"missing {sorted(info['missing_keys'])[:10]}, "
                         f"unexpected {sorted(info['unexpected_keys'])[:10]}, "
                         f"mismatched {list(info['mismatched_keys'])[:10]}")
    with _reading(f"vision tower folder {vision_tower_dir}"):
        vision_tower = CLIPVisionTower.from_pretrained(vision_tower_dir, options.mm_vision_select_layer, dtype,
                                                       options.attn_implementation)
    with _reading(f"aux vision tower folder {vision_tower_aux_dir}"):
        aux_tower = ConvNeXtAuxTower.from_openclip_folder(vision_tower_aux_dir, options.aux_drop_path_in_training,
                                                          options.aux_channels_last, dtype)
    mining, projector = build_image_path(vision_tower, aux_tower, llm_config.hidden_size, options)
    model = MGMForCausalLM(llm, vision_tower, aux_tower, mining.to(dtype), projector.to(dtype), options)
    with _reading(f"vision tower folder {vision_tower_dir}"):
        preprocessor = ImagePreprocessor.from_vision_tower(vision_tower_dir, options.image_size_aux)
    return model.to(device).eval(), tokenizer, preprocessor


# --- mm_projector.bin ---------------------------------------------------------------------

def _projector_parts(model: MGMForCausalLM) -> dict[str, nn.Module]:
    """Official key prefix → our module."""
    return {"model.mm_projector.": model.projector,
            "model.vlm_uni_query_projector.": model.mining.query,
            "model.vlm_uni_aux_projector.": model.mining.aux,
            "model.vlm_uni_val_projector.": model.mining.val}


def save_projector(model: MGMForCausalLM, path: str | Path) -> None:
    """Writes the projector and mining weights under the official key names (atomically)."""
    state = {prefix + key: value.detach().cpu().clone()
             for prefix, module in _projector_parts(model).items() for key, value in module.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_projector(model: MGMForCausalLM, path: str | Path) -> None:
    """Loads projector + mining weights; every missing, unexpected or mis-shaped trainable key is an error.

    Keys outside the four official prefixes (the official file also holds tower weights) are ignored.
    """
    with _reading(f"projector file {path}"):
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: not a projector state dict (a {type(state).__name__})")
    problems, used = [], 0
    for prefix, module in _projector_parts(model).items():
        part = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        expected = module.state_dict()
        used += len(part)
        problems += [f"missing {prefix}{key}" for key in sorted(set(expected) - set(part))]
        problems += [f"unexpected {prefix}{key}" for key in sorted(set(part) - set(expected))]
        problems += [f"shape of {prefix}{key}: file {tuple(part[key].shape)}, model {tuple(value.shape)}"
                     for key, value in expected.items() if key in part and part[key].shape != value.shape]
    if problems:
        raise ValueError(f"{path} does not match the model's projector/mining: " + "; ".join(problems))
    for prefix, module in _projector_parts(model).items():
        module.load_state_dict({key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)})
    logger.info("loaded %d projector/mining tensors from %s (%d other keys ignored)", used, path, len(state) - used)


# --- complete checkpoint folder -----------------------------------------------------------

def _portable(config: dict[str, Any]) -> dict[str, Any]:
    """A component config without the folder it was loaded from."""
    return {key: value for key, value in config.items() if key != "_name_or_path"}


def _lm_head_is_tied(model: MGMForCausalLM) -> bool:
    return model.llm.get_output_embeddings().weight is model.llm.get_input_embeddings().weight


def checkpoint_config(model: MGMForCausalLM) -> dict[str, Any]:
    return {"model_type": CHECKPOINT_TYPE, "format_version": CHECKPOINT_VERSION,
            "architectures": ["MGMForCausalLM"], "dtype": str(model.dtype).removeprefix("torch."),
            "mgm_options": model.options.to_dict(),
            "llm_config": _portable(model.llm.config.to_dict()),
            "vision_config": _portable(model.vision_tower.config.to_dict()),
            "openclip_vision_cfg": dict(model.aux_tower.vision_cfg)}


def save_checkpoint(model: MGMForCausalLM, tokenizer: PreTrainedTokenizerBase, folder: str | Path,
                    preprocessor: ImagePreprocessor | None = None, max_shard_size: int | str = "5GB") -> None:
    """Writes the complete, relocatable checkpoint into ``folder`` (other files there are kept).

    Without ``preprocessor`` the CLIP processor defaults (OpenAI mean/std, bicubic) at
    ``image_size_aux`` are written, which equal the official CLIP folder's settings.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mgm-save-", dir=folder))
    try:
        state = model.state_dict()
        if _lm_head_is_tied(model):
            del state[TIED_LM_HEAD]
        # Independent CPU copies: under DeepSpeed the parameters are views into flat buffers, whose
        # shared storage safetensors refuses to serialise.
        state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}
        save_torch_state_dict(state, staging, filename_pattern=WEIGHTS_PATTERN, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(staging)
        model.llm.generation_config.save_pretrained(staging)
        if preprocessor is None:
            size = model.options.image_size_aux
            preprocessor = ImagePreprocessor(CLIPImageProcessorPil(
                size={"shortest_edge": size}, crop_size={"height": size, "width": size}))
        preprocessor.save_pretrained(staging)
        (staging / "config.json").write_text(json.dumps(checkpoint_config(model), indent=2, sort_keys=True))
        _publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("saved MGM checkpoint to %s", folder)


def _publish(staging: Path, folder: Path) -> None:
    """Moves staged files into ``folder``: old config.json and weights go first, config.json last."""
    (folder / "config.json").unlink(missing_ok=True)
    stale = [*folder.glob("model-*-of-*.safetensors"), folder / "model.safetensors",
             folder / "model.safetensors.index.json"]
    for path in stale:
        path.unlink(missing_ok=True)
    for path in sorted(staging.iterdir()):
        if path.name != "config.json":
            os.replace(path, folder / path.name)
    os.replace(staging / "config.json", folder / "config.json")


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                    attn_implementation: str | None = None
                    ) -> tuple[MGMForCausalLM, PreTrainedTokenizerBase, ImagePreprocessor]:
    """Opens a folder written by ``save_checkpoint`` (nothing else needed); the model is in eval mode."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} is not a complete MGM checkpoint (no config.json)")
    config = json.loads(config_file.read_text())
    if config.get("model_type") != CHECKPOINT_TYPE or config.get("format_version") != CHECKPOINT_VERSION:
        raise ValueError(f"{config_file}: not a {CHECKPOINT_TYPE} v{CHECKPOINT_VERSION} checkpoint "
                         f"(model_type {config.get('model_type')!r}, version {config.get('format_version')!r})")
    require_tokenizer(folder)  # before the weights' load, not after it
    options = MGMOptions.from_dict(config["mgm_options"])
    if attn_implementation is not None:
        options = dataclasses.replace(options, attn_implementation=attn_implementation)
    model = assemble_mgm(GemmaConfig.from_dict(config["llm_config"]),
                         CLIPVisionConfig.from_dict(config["vision_config"]),
                         config["openclip_vision_cfg"], options, device=device, dtype=dtype)
    result = load_torch_model(model, folder, strict=False, filename_pattern=WEIGHTS_PATTERN)
    allowed_missing = {TIED_LM_HEAD} if _lm_head_is_tied(model) else set()
    missing = set(result.missing_keys) - allowed_missing
    if missing or result.unexpected_keys:
        raise ValueError(f"{folder}: weights do not match the config: missing {sorted(missing)[:10]}, "
                         f"unexpected {sorted(result.unexpected_keys)[:10]}")
    model.llm.generation_config = GenerationConfig.from_pretrained(folder)
    tokenizer = load_tokenizer(folder, config=model.llm.config)
    preprocessor = ImagePreprocessor.from_vision_tower(folder, options.image_size_aux)
    return model.eval(), tokenizer, preprocessor
