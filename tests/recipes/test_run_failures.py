"""How ``bsynth recipe run`` fails: non-zero exit, the failing operator named, no export left behind.

Cases: a model that is not there (the op's constructor fails), an image that does not decode (the op
fails while processing), an operator whose dependency Data-Juicer would install at run time, a
recipe that keeps nothing, a bad input line, and a run interrupted half way. An export left by an
earlier run of the same path is removed first, so it can never pass for this run's.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_failures.py -q      (~1.5 min)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from recipe_helpers import RECIPES_DIR, read_rows, run_cli


def no_export_left(export) -> bool:
    return not export.exists() and not export.with_name(export.name + ".partial").exists()


def write_recipe(tmp_path, text: str):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"np: 1\ncustom_operator_paths: ['{RECIPES_DIR.parent / 'ops'}']\n{text}")
    return recipe


def test_missing_model_fails_in_its_operator_and_removes_an_old_export(recipe_demo, tmp_path):
    export = tmp_path / "out" / "pool.jsonl"
    export.parent.mkdir()
    export.write_text('{"id": "from an earlier run"}\n')
    recipe = write_recipe(tmp_path, "process:\n  - fast_image_text_similarity_filter:\n      hf_clip: org/absent\n")
    result = run_cli(recipe, recipe_demo, export)
    assert result.returncode == 1
    assert "FAILED in operator fast_image_text_similarity_filter" in result.output
    assert "org/absent" in result.output
    assert no_export_left(export)
    summary = json.loads((result.work_dir / "run.json").read_text())
    assert summary["status"] == "failed" and summary["failed_op"] == "fast_image_text_similarity_filter"


def test_undecodable_image_fails_in_the_operator_reading_it(recipe_demo, tmp_path):
    root = tmp_path / "seed"
    rows = read_rows(recipe_demo.seed_jsonl)[:6]
    for row in rows:
        (root / row["images"][0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(recipe_demo.seed_dir / row["images"][0], root / row["images"][0])
    (root / rows[3]["images"][0]).write_bytes(b"\xff\xd8 truncated")
    dataset = root / "pool.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
    export = tmp_path / "pool_out.jsonl"
    recipe = write_recipe(tmp_path, "process:\n  - words_num_filter:\n      min_num: 1\n"
                                    "  - image_aspect_ratio_filter:\n      min_ratio: 0.1\n")
    result = run_cli(recipe, recipe_demo, export, dataset=dataset)
    assert result.returncode == 1
    assert "FAILED in operator image_aspect_ratio_filter" in result.output
    assert no_export_left(export)
    ops = json.loads((result.work_dir / "run.json").read_text())["ops"]
    assert [op["op"] for op in ops] == ["words_num_filter"]  # the first op finished, the second failed


def test_run_time_install_is_refused(recipe_demo, tmp_path):
    export = tmp_path / "pool_out.jsonl"
    result = run_cli(write_recipe(tmp_path, "process:\n  - text_action_filter: {}\n"), recipe_demo, export)
    assert result.returncode == 1
    assert "Data-Juicer tried to install spacy" in result.output
    assert not result.distributions_changed
    assert no_export_left(export)


def test_recipe_keeping_nothing_fails(recipe_demo, tmp_path):
    export = tmp_path / "pool_out.jsonl"
    result = run_cli(write_recipe(tmp_path, "process:\n  - words_num_filter:\n      min_num: 1000\n"),
                     recipe_demo, export)
    assert result.returncode == 1 and "kept none of the 300 samples" in result.output
    assert no_export_left(export)


def test_bad_input_line_stops_before_data_juicer(recipe_demo, tmp_path):
    dataset = tmp_path / "pool.jsonl"
    dataset.write_text(recipe_demo.seed_jsonl.read_text().splitlines()[0] + "\n{oops\n")
    result = run_cli(RECIPES_DIR / "cpu_prefilter.yaml", recipe_demo, tmp_path / "out.jsonl", "--image-root",
                     str(recipe_demo.seed_dir), dataset=dataset)
    assert result.returncode == 1 and f"{dataset}:2: invalid JSON" in result.output
    assert result.seconds < 15 and no_export_left(tmp_path / "out.jsonl")


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to bsynth"])
def test_interrupted_run_leaves_no_export(recipe_demo, tmp_path, how):
    export = tmp_path / "pool_out.jsonl"
    command = [sys.executable, "-m", "bettersynth", "recipe", "run", str(RECIPES_DIR / "clip_rank_recaption.yaml"),
               "--dataset", str(recipe_demo.seed_jsonl), "--export", str(export), "--np", "1",
               "--models-root", str(recipe_demo.recipe_models_dir)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             env=dict(os.environ, HF_HUB_OFFLINE="1"))
    log = tmp_path / "pool_out_work" / "run.log"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "OP [fast_image_text_similarity_filter] Done" in
                                          log.read_text(errors="replace")):
        time.sleep(0.5)
    assert child.poll() is None, "the run ended before it could be interrupted"
    if how.startswith("SIGINT"):
        os.killpg(child.pid, signal.SIGINT)
    else:
        child.send_signal(signal.SIGTERM)
    try:
        assert child.wait(timeout=120) != 0
        time.sleep(2)
        # the Data-Juicer process and its children went with it: nothing of the run is left running
        assert subprocess.run(["pgrep", "-f", str(export.with_name("pool_out_work"))],
                              capture_output=True).returncode == 1
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert no_export_left(export)


@pytest.mark.parametrize("argument", [["--np", "0"], ["--executor", "spark"]])
def test_bad_arguments_exit_non_zero(argument, tmp_path):
    done = subprocess.run([sys.executable, "-m", "bettersynth", "recipe", "run",
                           str(RECIPES_DIR / "cpu_prefilter.yaml"), *argument], capture_output=True, text=True)
    assert done.returncode != 0
