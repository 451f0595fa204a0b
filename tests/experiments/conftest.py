"""Fixtures of the experiments tests: eval data in a temporary asset root, and an output tree
that ``paths.output_dir()`` points at (BSYNTH_OUTPUT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bettersynth.paths import AssetLayout
from experiment_helpers import write_eval_data


@pytest.fixture
def eval_data(tmp_path) -> AssetLayout:
    return write_eval_data(tmp_path / "assets")


@pytest.fixture
def output(tmp_path, monkeypatch) -> Path:
    out = tmp_path / "output"
    out.mkdir()
    monkeypatch.setenv("BSYNTH_OUTPUT", str(out))
    return out
