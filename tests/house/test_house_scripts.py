"""The repository's scripts and container file: they parse, fail fast, and pass the linter.

Run: python -m pytest tests/house/test_scripts.py
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shell_scripts() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.sh"],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [REPO_ROOT / name for name in listed] + [REPO_ROOT / ".ci" / "run"]


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_shell_script_parses_and_fails_fast(script: Path):
    subprocess.run(["bash", "-n", str(script)], check=True)
    head = script.read_text().splitlines()[:15]
    assert "set -euo pipefail" in head, f"{script} must start with 'set -euo pipefail'"


def test_top_level_layout_is_the_official_kits():
    for name in ["Dockerfile", "install.sh", "download.sh", "solution", "toolkit",
                 "train_mgm_2b_stage_1.sh", "tests", "README.md", "pyproject.toml", ".ci/run"]:
        assert (REPO_ROOT / name).exists(), f"{name} is missing at the top level"


def test_dockerfile_passes_hadolint():
    result = subprocess.run(["hadolint", str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_install_script_on_a_cuda_devel_base():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM nvidia/cuda:12." in text and "-devel-ubuntu22.04" in text
    assert "RUN bash install.sh" in text
    assert "BSYNTH_FLASH_ATTN=1" in text, "the image must build flash-attn even though no GPU is visible at build time"
