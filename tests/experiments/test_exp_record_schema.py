"""A run record or trainer state that is truncated, empty, not UTF-8 or of the wrong shape is refused with
a message naming the file and the field (``bsynth runs`` / ``bsynth report`` exit 1), never a traceback;
``runs`` still lists the records it can read.

    python -m pytest tests/experiments/test_exp_record_schema.py -q      (~2 s)
"""

from __future__ import annotations

import json

import pytest
from bettersynth.cli import main
from bettersynth.experiments.record import build_record, record_file, write_record
from experiment_helpers import loss_log, write_stage

GOOD = {"schema": 1, "exp_name": "bad"}


@pytest.mark.parametrize("data, message", [
    (b"", "cannot read the run record (Expecting value: line 1 column 1 (char 0))"),
    (b'{"schema": 1, "exp_name": "ba', "cannot read the run record (Unterminated string starting at: line 1 "
                                     "column 27 (char 26))"),
    (b'\xff{}', "cannot read the run record ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"),
    (b"[1, 2]", "not a usable run record: it holds list, not a JSON object"),
    (json.dumps({"schema": 1}).encode(), "not a usable run record: `exp_name` is None, not a run's name"),
    (json.dumps({"exp_name": 5}).encode(), "not a usable run record: `exp_name` is 5, not a run's name"),
    (json.dumps({**GOOD, "schema": 2}).encode(), "not a usable run record: `schema` is 2; this toolkit reads schema 1"),
    (json.dumps({**GOOD, "stages": []}).encode(), "not a usable run record: `stages` is [], not an object"),
    (json.dumps({**GOOD, "stages": {"pretrain": {"log": [{"step": 1, "loss": 2.0}, {"step": 2}]}}}).encode(),
     "not a usable run record: `stages.pretrain.log[1].loss` is None, not a number"),
    (json.dumps({**GOOD, "stages": {"pretrain": {"log": [{"step": float("nan"), "loss": 2.0}]}}}).encode(),
     "not a usable run record: `stages.pretrain.log[0].step` is nan, not a step number (an integer >= 0)"),
    (json.dumps({**GOOD, "stages": {"finetune": {"log": [{"step": -3, "loss": 2.0}]}}}).encode(),
     "not a usable run record: `stages.finetune.log[0].step` is -3, not a step number (an integer >= 0)"),
    (json.dumps({**GOOD, "seed": "x"}).encode(), "not a usable run record: `seed` is 'x', not an integer"),
    (json.dumps({**GOOD, "wall_time_s": "abc"}).encode(),
     "not a usable run record: `wall_time_s` is 'abc', not a number of seconds (finite, >= 0)"),
    (json.dumps({**GOOD, "wall_time_s": float("nan")}).encode(),
     "not a usable run record: `wall_time_s` is nan, not a number of seconds (finite, >= 0)"),
    (json.dumps({**GOOD, "wall_time_s": -100}).encode(),
     "not a usable run record: `wall_time_s` is -100, not a number of seconds (finite, >= 0)"),
    (json.dumps({**GOOD, "steps": {"cap": float("inf")}}).encode(),
     "not a usable run record: `steps.cap` is inf, not a number of seconds (finite, >= 0)"),
    (json.dumps({**GOOD, "editable": {"SEED": 3}}).encode(), "not a usable run record: `editable.SEED` is 3, not text"),
    (json.dumps({**GOOD, "scores": "x"}).encode(), "not a usable run record: `scores` is 'x', not an object"),
    (json.dumps({**GOOD, "scores": {"textvqa": {"accuracy": 1.0, "per_question": {"ids": ["a", "b"],
                                                                                  "accuracy": [1.0]}}}}).encode(),
     "not a usable run record: `scores.textvqa.per_question.accuracy` holds 1 values for 2 question ids"),
    (json.dumps({**GOOD, "scores": {"textvqa": {"accuracy": float("nan")}}}).encode(),
     "not a usable run record: `scores.textvqa.accuracy` is nan, not a number from 0 to 1"),
    (json.dumps({**GOOD, "scores": {"mmbench": {"strict_circular_accuracy": 1.5}}}).encode(),
     "not a usable run record: `scores.mmbench.strict_circular_accuracy` is 1.5, not a number from 0 to 1"),
    (json.dumps({**GOOD, "scores": {"mmbench": {"per_question": {"ids": [0], "strict": [7],
                                                                 "extracted": [1]}}}}).encode(),
     "not a usable run record: `scores.mmbench.per_question.strict` is [7], not a list of numbers from 0 to 1 or "
     "booleans"),
    (json.dumps({**GOOD, "scores": {"textvqa": {"per_question": {"ids": ["a"], "accuracy": [float("nan")]}}}}).encode(),
     "not a usable run record: `scores.textvqa.per_question.accuracy` is [nan], not a list of numbers from 0 to 1 or "
     "booleans"),
    (json.dumps({**GOOD, "scores": {"mmbench": {"per_question": {"ids": [0, 1, 0], "strict": [True] * 3,
                                                                 "extracted": [True] * 3}}}}).encode(),
     "not a usable run record: `scores.mmbench.per_question.ids` holds the id 0 more than once"),
    (json.dumps({**GOOD, "scores": {"mmbench": {"per_question": {"ids": [[0]], "strict": [True],
                                                                 "extracted": [True]}}}}).encode(),
     "not a usable run record: `scores.mmbench.per_question.ids` is [[0]], not a list of question ids"),
])
def test_a_broken_record_is_named_by_runs_and_report(output, tmp_path, capsys, data, message):
    path = record_file(output, "bad")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    assert main(["runs"]) == 1
    assert capsys.readouterr().err == f"bsynth runs: {path}: {message} (left out of the table)\n"
    assert main(["report", "bad", "--out", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err == f"bsynth report: {path}: {message}\n"
    assert not (tmp_path / "r.html").exists()


def test_a_record_that_is_a_folder_is_refused(output, capsys):
    path = record_file(output, "dir")
    path.mkdir(parents=True)
    assert main(["runs", "record", "dir", "--editable", "SEED=1"]) == 1
    assert capsys.readouterr().err == (f"bsynth runs record: {path}: cannot read the run record ([Errno 21] Is a "
                                       f"directory: '{path}')\n")
    assert main(["runs"]) == 1
    assert capsys.readouterr().err == (f"bsynth runs: {path}: cannot read the run record ([Errno 21] Is a "
                                       f"directory: '{path}') (left out of the table)\n")


def test_a_copied_run_folder_is_named_not_listed_twice(output, tmp_path, capsys):
    write_record(output, "good", {"SEED": "7"})
    copy = record_file(output, "good-copy")
    copy.parent.mkdir(parents=True)
    copy.write_bytes(record_file(output, "good").read_bytes())
    message = (f"{copy}: the record is of run 'good' but lies in the folder 'good-copy' (a copied or renamed "
               "folder?): give the folder back its name, or remove the copy")
    assert main(["runs", "--csv"]) == 1
    captured = capsys.readouterr()
    assert [line.split(",")[0] for line in captured.out.splitlines()[1:]] == ["good"]
    assert captured.err == f"bsynth runs: {message} (left out of the table)\n"
    assert main(["report", "good-copy", "--out", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err == f"bsynth report: {message}\n"
    assert main(["report", str(copy), "--out", str(tmp_path / "r.html")]) == 0  # a file given by its path is read


def test_one_broken_record_leaves_the_others_in_the_table(output, capsys):
    write_record(output, "good", {"SEED": "7"})
    broken = record_file(output, "broken")
    broken.parent.mkdir(parents=True)
    broken.write_text('{"schema": 1, "exp_name": "bro')
    assert main(["runs", "--csv"]) == 1
    captured = capsys.readouterr()
    assert [line.split(",")[:4] for line in captured.out.splitlines()[1:]] == [["good", "", "", "7"]]
    assert captured.err == (f"bsynth runs: {broken}: cannot read the run record (Unterminated string starting at: "
                            "line 1 column 27 (char 26)) (left out of the table)\n")


@pytest.mark.parametrize("state, problem", [
    ([1], "not a usable trainer state: it holds list, not a JSON object"),
    ({"global_step": "x"}, "not a usable trainer state: `global_step` is 'x', not an integer"),
    ({"log_history": {"a": 1}}, "not a usable trainer state: `log_history` is dict, not a list"),
    ({"log_history": [{"step": 1}]}, "not a usable trainer state: `log_history[0].loss` is None, not a number"),
    ({"log_history": [{"step": 1.5, "loss": 2.0}]},
     "not a usable trainer state: `log_history[0].step` is 1.5, not a step number (an integer >= 0)"),
])
def test_a_broken_trainer_state_is_a_note_not_a_crash(output, state, problem):
    folder = output / "training_dirs" / "MGM-2B-Pretrain-x"
    write_stage(folder, "pretrain", loss_log(2, 2.0, 0.1), 1, finished=True)
    (folder / "trainer_state.json").write_text(json.dumps(state))
    record = build_record(output, "x", {})
    assert record["stages"]["pretrain"] is None
    assert record["notes"] == [f"pretrain: {folder / 'trainer_state.json'}: {problem}"]


def test_a_trainer_state_that_is_not_utf8_is_a_note(output):
    folder = output / "training_dirs" / "MGM-2B-Pretrain-x"
    write_stage(folder, "pretrain", loss_log(2, 2.0, 0.1), 1, finished=True)
    (folder / "trainer_state.json").write_bytes(b"\xff")
    assert build_record(output, "x", {})["notes"] == [
        f"pretrain: {folder / 'trainer_state.json'}: cannot read the trainer state ('utf-8' codec can't decode byte "
        "0xff in position 0: invalid start byte)"]


@pytest.mark.parametrize("seed", ["x", 1.7, True])
def test_a_stage_record_whose_seed_is_not_an_integer_is_a_note(output, capsys, seed):
    folder = output / "training_dirs" / "MGM-2B-Pretrain-x"
    write_stage(folder, "pretrain", loss_log(2, 2.0, 0.1), 1, finished=True)
    record = json.loads((folder / "made-from.json").read_text())
    record["settings"]["seed"] = seed
    (folder / "made-from.json").write_text(json.dumps(record))
    assert main(["runs", "record", "x"]) == 0
    assert f"bsynth runs record: warning: pretrain: {folder / 'made-from.json'}: `settings.seed` is {seed!r}, not an " \
           "integer\n" in capsys.readouterr().err
    assert build_record(output, "x", {})["stages"]["pretrain"] is None
