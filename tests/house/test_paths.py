"""The root is the checkout that runs (bettersynth.paths.repo_root), never the installed package's
location: two clones sharing this Python environment each get their own output/ and assets;
outside a checkout a command that needs the root says so, and commands given explicit paths run.
``bsynth check-paths`` (the main job's first check) accepts spaces and non-ASCII and refuses, with
the path and the reason, what the pipeline cannot carry.

    python -m pytest tests/house/test_paths.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bettersynth import paths

PACKAGE_CHECKOUT = Path(paths.__file__).resolve().parents[2]
OVERRIDES = ("BSYNTH_ROOT", "BSYNTH_ASSETS_ROOT", "BSYNTH_DEMO_ROOT", "BSYNTH_OUTPUT", "BSYNTH_LOCK_HELD")


def make_checkout(folder: Path, name: str = "bettersynth") -> Path:
    """The markers of a checkout: the main job and a pyproject.toml naming the project."""
    folder.mkdir(parents=True)
    (folder / paths.MAIN_JOB).write_text("#!/usr/bin/env bash\n")
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
    return folder


def bsynth(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The installed ``bsynth`` (this checkout's package) run in ``cwd``, no BSYNTH_* overrides but ``env``."""
    clean = {key: value for key, value in os.environ.items() if key not in OVERRIDES}
    return subprocess.run([sys.executable, "-m", "bettersynth", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def layout_of(cwd: Path, **env: str) -> dict[str, str]:
    done = bsynth("layout", "--which", "real", "--format", "json", cwd=cwd, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_two_clones_each_use_their_own_tree(tmp_path):
    first, second = make_checkout(tmp_path / "clone one"), make_checkout(tmp_path / "clone-two ü")
    (first / "output" / "deep").mkdir(parents=True)
    for root, cwd in ((first, first / "output" / "deep"), (second, second)):
        found = layout_of(cwd)
        assert found["REPO_ROOT"] == str(root) and found["ASSETS_ROOT"] == str(root)
        assert found["OUTPUT_DIR"] == str(root / "output")
        assert found["LLM_DIR"] == str(root / "toolkit" / "training" / "model_zoo" / "LLM" / "gemma" / "gemma-2b-it")
        assert str(PACKAGE_CHECKOUT) not in json.dumps(found)


def test_bsynth_root_wins_and_a_lookalike_project_is_not_a_checkout(tmp_path, monkeypatch):
    outer = make_checkout(tmp_path / "outer")
    make_checkout(outer / "vendored", name="some-other-project")
    monkeypatch.chdir(outer / "vendored")
    monkeypatch.delenv("BSYNTH_ROOT", raising=False)
    assert paths.repo_root() == outer
    other = make_checkout(tmp_path / "other")
    monkeypatch.setenv("BSYNTH_ROOT", str(other))
    assert paths.repo_root() == other and paths.cache_dir() == other / ".cache"
    monkeypatch.setenv("BSYNTH_ROOT", str(tmp_path / "missing"))
    with pytest.raises(paths.RootNotFoundError, match="BSYNTH_ROOT=.*missing is not a folder"):
        paths.repo_root()


def test_outside_a_checkout_root_commands_say_so_and_path_commands_run(tmp_path):
    done = bsynth("layout", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"bsynth layout: {tmp_path} is not inside a bettersynth checkout (a folder holding "
                           "train_mgm_2b_stage_1.sh and the project's pyproject.toml), and BSYNTH_ROOT is not set: "
                           "cd into the checkout to use, or set BSYNTH_ROOT=/path/to/checkout\n")
    assert bsynth("--help", cwd=tmp_path).returncode == 0
    assert (layout_of(tmp_path, BSYNTH_ROOT=str(make_checkout(tmp_path / "given")))["REPO_ROOT"]
            == str(tmp_path / "given"))

    sample = {"id": "1", "text": "[[human]]: <__dj__image>\nWhat is it?\n[[gpt]]: A cat. <|__dj__eoc|>",
              "images": ["a.jpg"]}
    (tmp_path / "in.jsonl").write_text(json.dumps(sample) + "\n")
    done = bsynth("dj2llava", "in.jsonl", "out.json", "--image_special_token", "<__dj__image>", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "out.json").read_text())[0]["image"] == "a.jpg"


def test_check_paths_takes_spaces_and_non_ascii(tmp_path):
    root = make_checkout(tmp_path / "my checkout ä")
    (root / "solution").mkdir()
    (root / "solution" / "r ü.yaml").write_text("process: []\n")
    done = bsynth("check-paths", "--name", "EXP_NAME=run 1 é", "--file", "RECIPE=solution/r ü.yaml",
                  f"PRETRAIN_DATASET={root / 'output' / 'données' / 'p q.jsonl'}", cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "paths: 5 paths and names checked, all usable\n"


@pytest.mark.parametrize("argument, message", [
    ("PRETRAIN_DATASET=/data/{x}/p.jsonl", "PRETRAIN_DATASET '/data/{x}/p.jsonl' cannot be used: it contains { or }, "
                                           "which Data-Juicer reads as placeholders in its work and export paths"),
    ("PRETRAIN_DATASET=/data/a\nb.jsonl", "PRETRAIN_DATASET '/data/a\\nb.jsonl' cannot be used: it contains a control "
                                          "character (a newline or tab, say)"),
    ("--name=EXP_NAME=a/b", "EXP_NAME 'a/b' cannot be used: it must be one folder name: not empty, not . or .., no /"),
    ("--file=RECIPE=recipes/x.yaml", "RECIPE 'recipes/x.yaml' is not a file (relative paths are relative to {root})"),
])
def test_check_paths_refuses_what_cannot_be_carried(tmp_path, argument, message):
    root = make_checkout(tmp_path / "checkout")
    done = bsynth("check-paths", argument, cwd=root)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"bsynth check-paths: {message.replace('{root}', str(root))}\n"
                           "bsynth check-paths: rename or move what is named above, then run again\n")


def test_a_checkout_path_with_braces_is_refused_first(tmp_path):
    root = make_checkout(tmp_path / "job {1}")
    done = bsynth("check-paths", cwd=root)
    assert done.returncode == 2 and f"the checkout '{root}' cannot be used: it contains {{ or }}" in done.stderr
    assert f"the output folder '{root / 'output'}' cannot be used" in done.stderr


def test_path_problem_names_each_reason():
    assert paths.path_problem("/data/My Drive/données 中文/p q.jsonl") is None
    assert paths.path_problem(os.fsdecode(b"/data/caf\xe9")) == "it contains bytes that are not UTF-8"
    assert paths.path_problem("/data/a\tb") == "it contains a control character (a newline or tab, say)"
    with pytest.raises(paths.UnusablePathError, match=r"^export '/o/\{x\}' cannot be used: it contains \{ or \}"):
        paths.check_usable_path("/o/{x}", "export")


def editable_value(key: str, environment: dict[str, str]) -> str:
    """``key`` as the main job's Editable Part sets it in ``environment`` (the part alone, run by bash)."""
    script = (PACKAGE_CHECKOUT / paths.MAIN_JOB).read_text()
    part = script[script.index("# exp meta information"):script.index("Editable Part Ends")]
    done = subprocess.run(["bash", "-c", f'set -euo pipefail\n{part}\nprintf %s "${key}"'], capture_output=True,
                          text=True, env=environment, check=True)
    return done.stdout


def test_the_default_export_follows_the_output_tree():
    """Two jobs in two output trees (BSYNTH_OUTPUT) must not share one recipe export."""
    base = {key: value for key, value in os.environ.items() if key not in OVERRIDES + ("PRETRAIN_DATASET",)}
    assert editable_value("PRETRAIN_DATASET", base) == "output/processed_data/processed_data.jsonl"
    assert (editable_value("PRETRAIN_DATASET", {**base, "BSYNTH_OUTPUT": "/runs/a"})
            == "/runs/a/processed_data/processed_data.jsonl")
    assert editable_value("PRETRAIN_DATASET", {**base, "BSYNTH_OUTPUT": "/runs/a", "PRETRAIN_DATASET": "/d.jsonl"}) \
        == "/d.jsonl"
