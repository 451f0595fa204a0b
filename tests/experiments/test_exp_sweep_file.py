"""``bsynth sweep``: a sweep file, its state or its job that cannot run is refused before anything runs
(exit status 2), naming the file and the line or field.

    python -m pytest tests/experiments/test_exp_sweep_file.py -q      (~2 s)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bettersynth.cli import main
from bettersynth.experiments.sweep_file import SweepError, load_sweep

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = "solution/recipes/cpu_prefilter.yaml"
BASE = f"name: t\nrecipes: [{RECIPE}]\nseeds: [1]\n"
KEYS = "name, recipes, seeds, proxy_pretrain_samples, gpus_per_run, env"


@pytest.mark.parametrize("text, message", [
    ("", "a sweep is a mapping with name, recipes and seeds, got NoneType"),
    ("- a\n- b\n", "a sweep is a mapping with name, recipes and seeds, got list"),
    (f"name: t\nrecipes: [{RECIPE}]\nseed: [1]\n", f"unknown key(s) seed; a sweep's keys are {KEYS}"),
    (BASE + "proxy_pretrain_sample: [100]\n", f"unknown key(s) proxy_pretrain_sample; a sweep's keys are {KEYS}"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: 1024\n", "`seeds` must be a non-empty list, got 1024"),
    (f"name: t\nrecipes: {RECIPE}\nseeds: [1]\n", f"`recipes` must be a non-empty list, got '{RECIPE}'"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: []\n", "`seeds` must be a non-empty list, got []"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: [1.0]\n", "`seeds` must be integers from 0 to 4294967295, got 1.0"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: [-1]\n", "`seeds` must be integers from 0 to 4294967295, got -1"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: [4294967296]\n",
     "`seeds` must be integers from 0 to 4294967295, got 4294967296"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: [true]\n", "`seeds` must be integers from 0 to 4294967295, got True"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: [3, 1, 3]\n", "`seeds` lists 3 more than once (each value is one run)"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: [1, 1.0]\n", "`seeds` must be integers from 0 to 4294967295, got 1.0"),
    (f"name: t\nrecipes: [{RECIPE}]\nseeds: [true, 1]\n", "`seeds` must be integers from 0 to 4294967295, got True"),
    (BASE + "proxy_pretrain_samples: [0]\n",
     "`proxy_pretrain_samples` must be integers >= 1 or null (the official run), got 0"),
    (BASE + "proxy_pretrain_samples: [-5]\n",
     "`proxy_pretrain_samples` must be integers >= 1 or null (the official run), got -5"),
    (BASE + "proxy_pretrain_samples: [500, 500]\n",
     "`proxy_pretrain_samples` lists 500 more than once (each value is one run)"),
    (BASE + "proxy_pretrain_samples: null\n", "`proxy_pretrain_samples` must be a non-empty list, got None"),
    ("name: t\nrecipes: [solution/recipes]\nseeds: [1]\n", f"recipe solution/recipes is not a file under {REPO_ROOT}"),
    ("name: t\nrecipes: [solution/recipes/nope.yaml]\nseeds: [1]\n",
     f"recipe solution/recipes/nope.yaml is not a file under {REPO_ROOT}"),
    ("name: t\nrecipes: [5]\nseeds: [1]\n", "`recipes` must be paths of recipe files, got 5"),
    (f"name: t\nrecipes: [{RECIPE}, ./{RECIPE}]\nseeds: [1]\n",
     f"recipe {RECIPE} is listed twice (its runs would be run twice)"),
    ('name: "a\\nb"\n' + f"recipes: [{RECIPE}]\nseeds: [1]\n", "`name` must be one folder name, got 'a\\nb'"),
    (BASE + "gpus_per_run: '2'\n", "`gpus_per_run` must be a positive integer, got '2'"),
    (BASE + "env: {A: [1, 2]}\n", "`env.A` must be a text, number or boolean, got [1, 2]"),
    (BASE + "env: {B: null}\n", "`env.B` must be a text, number or boolean, got None"),
    (BASE + "env: {'A B': 1}\n", "`env` key 'A B' is not an environment variable name"),
])
def test_a_bad_field_is_named(tmp_path, text, message):
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SweepError) as refused:
        load_sweep(path, REPO_ROOT)
    assert str(refused.value) == f"{path}: {message}"


@pytest.mark.parametrize("data, message", [
    (f"name: t\nrecipes: [{RECIPE}\nseeds: [1]\n".encode(),
     "line 3, column 6: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence)"),
    (b"name: t\n\trecipes: x\n",
     "line 2, column 1: not valid YAML: found character '\\t' that cannot start any token "
     "(while scanning for the next token)"),
    (BASE.encode() + b"name: u\n", "line 4, column 1: not valid YAML: the key 'name' is given twice"),
    (BASE.encode() + b"env:\n  A: 1\n  A: 2\n", "line 6, column 3: not valid YAML: the key 'A' is given twice"),
    (b"name: t\nrecipes: [caf\xe9.yaml]\n", "line 2: byte 0xe9 is not UTF-8 text"),
])
def test_a_file_that_is_not_yaml_is_refused_with_its_line(tmp_path, data, message):
    path = tmp_path / "sweep.yaml"
    path.write_bytes(data)
    with pytest.raises(SweepError) as refused:
        load_sweep(path, REPO_ROOT)
    assert str(refused.value) == f"{path}, {message}"


def test_a_good_file_loads(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(BASE.replace("[1]", "[0, 4294967295]") + "proxy_pretrain_samples: [null, 500]\n"
                    "env: {C: true, D: 3}\n")
    sweep = load_sweep(path, REPO_ROOT)
    assert [run.name for run in sweep.runs()] == ["t-cpu_prefilter-s0", "t-cpu_prefilter-s4294967295",
                                                  "t-cpu_prefilter-s0-p500", "t-cpu_prefilter-s4294967295-p500"]
    assert sweep.env == {"C": "True", "D": "3"}


def test_the_command_exits_2_on_a_bad_file_state_or_job(tmp_path, output, capsys):
    path, job = tmp_path / "sweep.yaml", tmp_path / "job.sh"
    path.write_text(BASE + "seed: [2]\n")
    assert main(["sweep", str(path)]) == 2
    assert capsys.readouterr().err == f"bsynth sweep: {path}: unknown key(s) seed; a sweep's keys are {KEYS}\n"
    path.write_text(BASE)
    assert main(["sweep", str(path), "--job", str(tmp_path / "missing.sh")]) == 2
    assert capsys.readouterr().err == f"bsynth sweep: the job {tmp_path / 'missing.sh'} is not a file\n"

    job.write_text("exit 0\n")
    state = output / "experiments" / "sweeps" / "t" / "sweep.json"
    state.parent.mkdir(parents=True)
    advice = "repair it, or move it away to start every run again (each resumes in its own tree)"
    state.write_text('{"name": "t", "runs": {')  # cut off mid-write
    assert main(["sweep", str(path), "--job", str(job)]) == 2
    assert capsys.readouterr().err == (f"bsynth sweep: {state}: cannot read the sweep's state (Expecting property "
                                       f"name enclosed in double quotes: line 1 column 24 (char 23)); {advice}\n")
    state.write_text('{"name": "t", "runs": []}')
    assert main(["sweep", str(path), "--job", str(job)]) == 2
    assert capsys.readouterr().err == (f"bsynth sweep: {state}: not a sweep's state (an object whose runs and "
                                       f"recipes map names to objects); {advice}\n")
