"""Fixtures of the model tests: tiny Gemma / CLIP / OpenCLIP folders written once per session.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model -q``
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from model_helpers import tiny_options, write_tiny_clip, write_tiny_llm, write_tiny_openclip


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    dirs = {"llm": root / "llm", "clip": root / "clip", "aux": root / "aux"}
    write_tiny_llm(dirs["llm"])
    write_tiny_clip(dirs["clip"])
    write_tiny_openclip(dirs["aux"])
    return dirs


@pytest.fixture()
def tiny_mgm(tiny_dirs):
    """(model, tokenizer, preprocessor) built from the tiny folders, float32, seeded init."""
    from bettersynth.model.io import build_mgm

    torch.manual_seed(1024)
    return build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], tiny_dirs["aux"], tiny_options())
