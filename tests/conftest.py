"""Shared test settings: everything runs offline on CPU; GPU tests are opt-in (-m gpu).

Paths to the shared real sample (../shared/data/seed_sample_1k) are exposed as a fixture that skips
cleanly where it is absent (a user's clone does not have it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "seed_sample_1k"


def pytest_collection_modifyitems(config, items):
    """Skip GPU tests unless asked for with -m gpu (and a GPU is there)."""
    if "gpu" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="GPU test: run with -m gpu on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_sample_dir() -> Path:
    """The 1,000 real seed samples; skips the test where the folder is absent."""
    if not (SHARED_SAMPLE / "seed_sample_1k.jsonl").exists():
        pytest.skip(f"real sample not present at {SHARED_SAMPLE}")
    return SHARED_SAMPLE
