"""``bsynth runs``: the table of every run record, with ratios to a reference run.

    python -m pytest tests/experiments/test_exp_runs.py -q
"""

import csv
import io
import json

import pytest
from bettersynth.cli import main
from bettersynth.experiments.record import all_records, load_run, write_record
from bettersynth.experiments.runs import table_rows
from experiment_helpers import RIGHT_MMBENCH, RIGHT_TEXTVQA, make_run, write_data


@pytest.fixture
def runs(output, eval_data):
    recipe, export = write_data(output, "mine", "process: []\n", samples=5)
    # base: 4 of 6 TextVQA right, 2 of 4 MMBench groups; mine: all right
    make_run(output, eval_data, "base", recipe, export, 1, ["x", "y"] + RIGHT_TEXTVQA[2:],
             {**RIGHT_MMBENCH, 1000000: "A", 3: "A"})
    make_run(output, eval_data, "mine", recipe, export, 2, RIGHT_TEXTVQA, {**RIGHT_MMBENCH, 1: "B."}, proxy="3")
    write_record(output, "pending", {"SEED": "9"})  # nothing ran yet: a row of empty cells
    return output


def test_rows_with_reference(runs):
    rows = {row.name: row for row in table_rows(all_records(runs)[0], load_run(runs, "base"))}
    mine = rows["mine"]
    assert (mine.recipe, mine.samples, mine.seed, mine.proxy) == ("mine.yaml", 5, 2, 3)
    assert mine.pretrain_loss == pytest.approx(3.2 - 0.2 * 6) and mine.finetune_loss == pytest.approx(2.0 - 0.12 * 4)
    assert mine.textvqa == pytest.approx(1.0) and mine.mmbench_strict == pytest.approx(3 / 4)
    assert mine.mmbench_extracted == pytest.approx(1.0)
    assert mine.textvqa_ratio == pytest.approx(1.0 / (4 / 6)) and mine.mmbench_ratio == pytest.approx((3 / 4) / (2 / 4))
    assert mine.score == pytest.approx((1.5 + 1.5) / 2) and mine.wall_time_s == 152.0
    assert rows["base"].score == pytest.approx(1.0)
    pending = rows["pending"]
    assert pending.seed == 9 and pending.textvqa is None and pending.score is None and pending.pretrain_loss is None


def test_cli_formats(runs, capsys):
    assert main(["runs", "--reference", "base", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in parsed] == ["base", "mine", "pending"]
    assert parsed[1]["score"] == pytest.approx(1.5)
    assert main(["runs", "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert table[1]["textvqa"] == "1.0" and table[1]["score"] == "" and table[2]["textvqa"] == ""
    assert main(["runs", "--reference", "base"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split()[:3] == ["name", "recipe", "samples"]
    mine = text[2].split()
    assert mine[:5] == ["mine", "mine.yaml", "5", "2", "3"] and "100.00" in mine and "1.5000" in mine
    assert mine[-1] == "0:02:32"


def test_reference_must_be_scored(runs, capsys):
    assert main(["runs", "--reference", "pending"]) == 1
    assert "reference run 'pending' has no TextVQA and MMBench scores yet" in capsys.readouterr().err
    assert main(["runs", "--reference", "nobody"]) == 1
    assert "no run record for 'nobody'" in capsys.readouterr().err


def test_a_run_without_a_total_has_empty_ratios_and_is_not_blamed_on_the_reference(runs, capsys):
    """A record edited by hand may keep a benchmark's section without its accuracy: that run's ratios are
    empty; the table is still printed and the reference is not named as the run at fault."""
    from bettersynth.experiments.record import record_file

    path = record_file(runs, "mine")
    record = json.loads(path.read_text())
    del record["scores"]["textvqa"]["accuracy"]
    path.write_text(json.dumps(record))
    assert main(["runs", "--reference", "base", "--csv"]) == 0
    captured = capsys.readouterr()
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(captured.out))}
    assert (rows["mine"]["textvqa"], rows["mine"]["textvqa_ratio"], rows["mine"]["score"]) == ("", "", "")
    assert rows["mine"]["mmbench_strict"] == "0.75" and rows["base"]["score"] == "1.0"
    assert captured.err == ""


def test_the_runs_of_sweeps_are_found_in_their_own_trees(output):
    """A sweep's run records live in the run's tree (experiments/sweeps/<sweep>/runs/<run>/): listed after
    the tree's own runs, found by name, and a name that two sweeps hold must be given as a path."""
    from bettersynth.experiments.record import RecordError, record_file, sweep_run_tree

    write_record(output, "own", {"SEED": "1"})
    write_record(sweep_run_tree(output, "a", "a-r-s1"), "a-r-s1", {"SEED": "2"})
    for sweep in ("a", "b"):
        write_record(sweep_run_tree(output, sweep, "twice"), "twice", {"SEED": "3"})
    assert [record["exp_name"] for record in all_records(output)[0]] == ["own", "a-r-s1", "twice", "twice"]
    assert load_run(output, "a-r-s1")["seed"] == 2
    with pytest.raises(RecordError, match="'twice' names runs of several sweeps"):
        load_run(output, "twice")
    path = record_file(sweep_run_tree(output, "b", "twice"), "twice")
    assert load_run(output, str(path))["seed"] == 3


def test_a_diverged_loss_is_nan_or_inf_in_every_format(output, capsys):
    """JSON has no NaN or Infinity: --json gives the strings the CSV and the table give."""
    from experiment_helpers import write_stage

    log = [{"step": 1, "loss": float("nan")}, {"step": 2, "loss": float("inf")}]
    write_stage(output / "training_dirs" / "MGM-2B-Pretrain-div", "pretrain", log, 1, finished=True)
    write_stage(output / "training_dirs" / "MGM-2B-Finetune-div", "finetune", log[:1], 1, finished=True)
    write_record(output, "div", {"SEED": "1"})
    assert main(["runs", "--json"]) == 0
    row = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)[0]  # strict JSON
    assert (row["pretrain_loss"], row["finetune_loss"]) == ("inf", "nan")
    assert main(["runs", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("div,,,1,,inf,nan,")
    assert main(["runs"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["div", "1", "inf", "nan"]
