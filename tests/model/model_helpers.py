"""Tiny model folders in the real on-disk layouts (used by conftest.py's fixtures; CPU, seconds).

- ``tiny_llm_dir``: GemmaForCausalLM (2 layers, hidden 32, exact GELU as gemma-2b-it) + a word-level
  tokenizer with <pad>=0 <eos>=1 <bos>=2, <start_of_turn>, <end_of_turn>, BOS added automatically.
- ``tiny_clip_dir``: a full CLIPModel folder (vision 56 px, patch 14 → 4x4 = 16 patches, hidden 32)
  + preprocessor_config.json.
- ``tiny_aux_dir``: an OpenCLIP-layout folder: open_clip_config.json naming timm convnext_atto and
  open_clip_pytorch_model.bin with the trunk under ``visual.trunk.`` plus head and text keys.
With ``TINY_AUX_SIZE`` = 64 the stage-1 map is 16x16, so each CLIP patch owns 4x4 high-res cells.

Imported by the tests of tests/model (``from model_helpers import ...``); not run on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import timm
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, GemmaConfig, GemmaForCausalLM,
                          GenerationConfig, PreTrainedTokenizerFast)

from bettersynth.model.config import MGMOptions

TINY_AUX_SIZE = 64
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
WORDS = ["user", "model", "what", "is", "in", "the", "image", "a", "cat", "dog", "on", "mat", "yes", "no",
         "red", "blue", "green", "it", "shows", "two", "birds", "tree", "sky", "car", "road", "\n"]


def tiny_options(**changes) -> MGMOptions:
    return MGMOptions(image_size_aux=TINY_AUX_SIZE, model_max_length=64, **changes)


def write_tiny_llm(folder: Path, hidden_size: int = 32) -> None:
    """``hidden_size`` other than 32 changes only the width (the input-scale test uses 2048)."""
    vocab = {token: index for index, token in enumerate(SPECIALS + WORDS)}
    vocab.update({f"w{index}": len(vocab) for index in range(64 - len(vocab))})
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                           special_tokens=[("<bos>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                        pad_token="<pad>", unk_token="<unk>",
                                        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"])
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GemmaConfig(vocab_size=64, hidden_size=hidden_size, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, head_dim=8, hidden_act="gelu",
                         initializer_range=0.2, max_position_embeddings=256)
    llm = GemmaForCausalLM(config)
    llm.generation_config = GenerationConfig(bos_token_id=2, eos_token_id=1, pad_token_id=0)
    llm.save_pretrained(folder)


def write_tiny_clip(folder: Path) -> None:
    torch.manual_seed(1)
    config = CLIPConfig(
        text_config={"vocab_size": 99, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": 16},
        vision_config={"image_size": 56, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 3, "num_attention_heads": 4},
        projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}).save_pretrained(folder)


def tiny_openclip_state_dict(seed: int = 2) -> dict[str, torch.Tensor]:
    """An OpenCLIP-layout CLIP state dict around a random timm convnext_atto trunk."""
    torch.manual_seed(seed)
    trunk = timm.create_model("convnext_atto", pretrained=False, num_classes=0, global_pool="")
    with torch.no_grad():  # timm initialises layer scale to 1e-6, which would hide the residual branches
        for name, param in trunk.named_parameters():
            if name.endswith(".gamma"):
                param.uniform_(0.2, 0.6)
    state = {f"visual.trunk.{key}": value for key, value in trunk.state_dict().items()}
    state.update({"visual.head.mlp.fc1.weight": torch.randn(32, 320), "visual.head.mlp.fc1.bias": torch.randn(32),
                  "visual.head.mlp.fc2.weight": torch.randn(16, 32), "positional_embedding": torch.randn(8, 16),
                  "token_embedding.weight": torch.randn(20, 16), "text_projection": torch.randn(16, 16),
                  "logit_scale": torch.tensor(4.6)})
    return state


def write_tiny_openclip(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": {"embed_dim": 16,
                            "vision_cfg": {"timm_model_name": "convnext_atto", "timm_model_pretrained": False,
                                           "timm_pool": "", "timm_proj": "mlp", "timm_drop": 0.0,
                                           "timm_drop_path": 0.1, "image_size": TINY_AUX_SIZE},
                            "text_cfg": {"context_length": 8, "vocab_size": 20, "width": 16, "heads": 2,
                                         "layers": 1}},
              "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                                 "std": [0.26862954, 0.26130258, 0.27577711]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    torch.save(tiny_openclip_state_dict(), folder / "open_clip_pytorch_model.bin")
