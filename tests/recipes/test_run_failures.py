"""How ``bsynth recipe run`` fails: non-zero exit, the failing operator named, nothing lost.

Cases: a model that is not there (the op's constructor fails), an image that does not decode (the op
fails while processing), an operator whose dependency Data-Juicer would install at run time, a
recipe that keeps nothing, a bad input line, and a run interrupted half way (by a signal sent while
an operator is known to be running, so the test does not depend on the machine's speed). A failed
run writes no export and leaves an earlier run's export, report and record as they were; its logs
are in the attempt folder.

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


def attempt_work_dir(export):
    """Where a failed run's run.json and run.log are: ``NAME_attempt/NAME_work/``."""
    return export.with_name(export.stem + "_attempt") / (export.stem + "_work")


def earlier_run(export) -> dict:
    """An earlier run's export, report and record, as files; returns their bytes by path."""
    files = {export: b'{"id": "from an earlier run"}\n',
             export.with_name(export.name + ".made-from.json"): b'{"step": "recipe"}\n',
             export.with_name(export.stem + "_report") / "report.html": b"<html>earlier</html>\n",
             export.with_name(export.stem + "_work") / "run.json": b'{"status": "complete"}\n'}
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def unchanged(files: dict) -> bool:
    return all(path.read_bytes() == content for path, content in files.items())


def write_recipe(tmp_path, text: str):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"np: 1\ncustom_operator_paths: ['{RECIPES_DIR.parent / 'ops'}']\n{text}")
    return recipe


def test_missing_model_fails_in_its_operator_and_keeps_the_earlier_export(recipe_demo, tmp_path):
    export = tmp_path / "out" / "pool.jsonl"
    earlier = earlier_run(export)
    recipe = write_recipe(tmp_path, "process:\n  - fast_image_text_similarity_filter:\n      hf_clip: org/absent\n")
    result = run_cli(recipe, recipe_demo, export)
    assert result.returncode == 1
    assert "FAILED in operator fast_image_text_similarity_filter" in result.output
    assert "org/absent" in result.output
    assert f"the previous export {export} and its report are kept as they were" in result.output
    assert unchanged(earlier)
    summary = json.loads((attempt_work_dir(export) / "run.json").read_text())
    assert summary["status"] == "failed" and summary["failed_op"] == "fast_image_text_similarity_filter"


def test_recipe_typo_keeps_the_earlier_export(recipe_demo, tmp_path):
    export = tmp_path / "out" / "pool.jsonl"
    earlier = earlier_run(export)
    recipe = write_recipe(tmp_path, "process:\n  - words_num_filter:\n    min_num: [1\n")
    result = run_cli(recipe, recipe_demo, export)
    assert result.returncode == 1 and "not valid YAML" in result.output
    assert unchanged(earlier)


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
    ops = json.loads((attempt_work_dir(export) / "run.json").read_text())["ops"]
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


# A dataset-level operator that says it is running, then waits: the signal always lands mid-run.
WAITING_OP = """
import time
from pathlib import Path

from data_juicer.ops.base_op import OPERATORS, Selector


@OPERATORS.register_module("wait_for_stop_selector")
class WaitForStopSelector(Selector):
    def __init__(self, ready_file: str = "", *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ready_file = ready_file

    def process(self, dataset):
        Path(self.ready_file).write_text("running")
        time.sleep(600)
        return dataset
"""


@pytest.mark.parametrize("how, signum", [("SIGINT to the process group", signal.SIGINT),
                                         ("SIGTERM to bsynth", signal.SIGTERM),
                                         ("SIGHUP to bsynth", signal.SIGHUP)])
def test_interrupted_run_exits_non_zero_and_keeps_the_earlier_export(recipe_demo, tmp_path, how, signum):
    export = tmp_path / "out" / "pool_out.jsonl"
    earlier = earlier_run(export)
    (tmp_path / "wait_for_stop_selector.py").write_text(WAITING_OP)
    ready = tmp_path / "op-is-running"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"np: 1\ncustom_operator_paths: ['{tmp_path / 'wait_for_stop_selector.py'}']\nprocess:\n"
                      f"  - words_num_filter:\n      min_num: 1\n"
                      f"  - wait_for_stop_selector:\n      ready_file: '{ready}'\n")
    command = [sys.executable, "-m", "bettersynth", "recipe", "run", str(recipe),
               "--dataset", str(recipe_demo.seed_jsonl), "--export", str(export),
               "--models-root", str(recipe_demo.recipe_models_dir)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    try:
        deadline = time.time() + 600
        while time.time() < deadline and not ready.exists() and child.poll() is None:
            time.sleep(0.2)
        assert ready.exists(), "the waiting operator never started:\n" + (child.stdout.read() if child.poll() else "")
        if how.endswith("process group"):
            os.killpg(child.pid, signum)
        else:
            child.send_signal(signum)
        output, _ = child.communicate(timeout=120)
        assert child.returncode == 128 + signum, output
        assert f"INTERRUPTED by {signal.Signals(signum).name}" in output
        # the Data-Juicer process and its children went with it: nothing of the run is left running
        deadline = time.time() + 30
        while time.time() < deadline and subprocess.run(["pgrep", "-f", str(attempt_work_dir(export))],
                                                        capture_output=True).returncode == 0:
            time.sleep(0.5)
        assert subprocess.run(["pgrep", "-f", str(attempt_work_dir(export))], capture_output=True).returncode == 1
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert unchanged(earlier)


@pytest.mark.parametrize("argument", [["--np", "0"], ["--executor", "spark"]])
def test_bad_arguments_exit_non_zero(argument, tmp_path):
    done = subprocess.run([sys.executable, "-m", "bettersynth", "recipe", "run",
                           str(RECIPES_DIR / "cpu_prefilter.yaml"), *argument], capture_output=True, text=True)
    assert done.returncode != 0
