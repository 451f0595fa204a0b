"""The code passes the linter: ``ruff check toolkit tests bench solution`` from the repository root, with
the settings under [tool.ruff] in pyproject.toml (pycodestyle errors and warnings, pyflakes; lines up
to 120 characters). ruff is a pinned dev dependency (``bash install.sh --dev``); where it is not
installed the test skips and says so.

    python -m pytest tests/house/test_lint.py -q      (seconds)
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKED = ["toolkit", "tests", "bench", "solution"]


def ruff_command() -> list[str] | None:
    """``python -m ruff`` of this interpreter, else the ``ruff`` executable beside it; None without either."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    for name in ("ruff", "ruff.exe"):
        beside = Path(sys.executable).parent / name
        if beside.is_file():
            return [str(beside)]
    return None


def test_ruff_check_passes():
    command = ruff_command()
    if command is None:
        pytest.skip(f"ruff is not installed for {sys.executable} (a dev dependency: bash install.sh --dev)")
    # --no-cache: nothing written into the checkout, and no clash with a ruff run at the same time
    done = subprocess.run([*command, "check", "--no-cache", *CHECKED], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, (f"`ruff check {' '.join(CHECKED)}` exited {done.returncode}:\n"
                                  f"{done.stdout}{done.stderr}")
