"""Bad inputs to ``bsynth eval`` / ``bsynth score`` and the eval scripts: each gives one ``error:``
line naming the file (and line or row) and a non-zero exit, before any model is loaded, and writes
or replaces nothing.

    python -m pytest tests/eval/test_eval_fault_cases.py -q
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from eval_helpers import write_run

from bettersynth.cli import main
from bettersynth.eval import textvqa
from bettersynth.paths import MMBENCH_SPLIT

REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv) -> tuple[int, str]:
    """(exit status, stderr) of ``bsynth ARGV``."""
    status = main([str(arg) for arg in argv])
    return status, capsys.readouterr().err


def answers_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, records) -> Path:
    path.write_text("".join((record if isinstance(record, str) else json.dumps(record)) + "\n" for record in records))
    return path


# --- bsynth eval textvqa / mmbench: arguments and inputs, checked before the model loads ---------

def textvqa_args(eval_data, answers, *extra):
    # the checkpoint does not exist: every case below must stop before it is needed
    return ["eval", "textvqa", "--checkpoint", eval_data.root / "no_checkpoint", "--questions",
            eval_data.textvqa_questions, "--image-folder", eval_data.textvqa_images, "--answers-file", answers,
            "--device", "cpu", *extra]


@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["--max-new-tokens", "0"], "max_new_tokens must be >= 1, got 0"),
    (["--num-chunks", "0"], "num_chunks must be >= 1, got 0"),
    (["--num-chunks", "2", "--chunk-idx", "2"], "chunk_idx must be in [0, 2), got 2"),
    (["--device", "bogus"], "--device 'bogus' is not a device name such as cpu, cuda or cuda:0"),
])
def test_shard_arguments_out_of_range(eval_data, tmp_path, capsys, extra, message):
    answers = tmp_path / "out" / "1_0.jsonl"
    status, err = run_cli(capsys, *textvqa_args(eval_data, answers, *extra))
    assert status == 1 and err.strip().endswith(f"error: {message}")
    assert not answers.exists()


def test_answers_file_that_is_a_folder_or_the_question_file(eval_data, tmp_path, capsys):
    folder = tmp_path / "answers"
    folder.mkdir()
    status, err = run_cli(capsys, *textvqa_args(eval_data, folder))
    assert status == 1 and f"error: {folder}: output path is a folder; give a file path" in err
    before = eval_data.textvqa_questions.read_bytes()
    status, err = run_cli(capsys, *textvqa_args(eval_data, eval_data.textvqa_questions))
    assert status == 1
    assert f"error: {eval_data.textvqa_questions}: output path is also an input of this command; " \
           "it would be overwritten" in err
    assert eval_data.textvqa_questions.read_bytes() == before


@pytest.mark.parametrize("lines, message", [
    ([], "{path}: no questions"),
    (['{"question_id": "a", "image": "img0.jpg", "text": "Q?"}', '{"question_id": null, "image": "img0.jpg", '
      '"text": "Q?"}'], "{path}:2: question_id must be a non-empty string, got None"),
    (['{"question_id": "a", "image": "img0.jpg", "text": ["Q?"]}'], "{path}:1: text must be a non-empty string, "
     "got ['Q?']"),
    (['', '{"question_id": "a", "image": "", "text": "Q?"}'], "{path}:2: image must be a non-empty string, got ''"),
    (['{"question_id": "a", "text": "Q?"}'], "{path}:1: question lacks image"),
])
def test_bad_question_file(eval_data, tmp_path, capsys, lines, message):
    questions = write_lines(tmp_path / "questions.jsonl", lines)
    args = textvqa_args(eval_data, tmp_path / "a.jsonl")
    args[args.index("--questions") + 1] = questions
    status, err = run_cli(capsys, *args)
    assert status == 1 and err.strip() == "error: " + message.format(path=questions)


@pytest.mark.parametrize("change, message", [
    ({"index": "abc"}, "{path}: data row 2: index 'abc' is not an integer"),
    ({"index": None}, "{path}: data row 2: index nan is not an integer"),
    ({"index": "99999999999999999999"}, "{path}: data row 2: index 99999999999999999999 is out of range "
                                        "(-9223372036854775808 to 9223372036854775807)"),
    ({"index": 1e300}, "{path}: data row 2: index 1e+300 is out of range (-9223372036854775808 to "
                       "9223372036854775807)"),
    ({"image": None}, "{path}: index 1: empty image cell"),
    ({"question": None}, "{path}: index 1: no question"),
    ({"A": None}, "{path}: index 1: no options (column A is empty)"),
])
def test_bad_mmbench_row(eval_data, tmp_path, capsys, change, message):
    frame = pd.read_csv(eval_data.mmbench_tsv, sep="\t").astype({"index": object})
    for column, value in change.items():
        frame.loc[1, column] = value
    tsv = tmp_path / "bad.tsv"
    frame.to_csv(tsv, sep="\t", index=False)
    status, err = run_cli(capsys, "eval", "mmbench", "--checkpoint", eval_data.root / "no_checkpoint", "--tsv", tsv,
                          "--answers-file", tmp_path / "a.jsonl", "--device", "cpu")
    assert status == 1 and err.strip() == "error: " + message.format(path=tsv)


def test_images_that_are_not_images_stop_a_shard_before_the_model_loads(eval_data, tmp_path, capsys):
    """An empty file, a web page saved as .jpg, text in MMBench's image cell, bad base64: named at once
    (the checkpoint does not exist, so the model never loads), not after the answers so far."""
    first, second = sorted({question.image for question in textvqa.read_questions(eval_data.textvqa_questions)})[:2]
    (eval_data.textvqa_images / first).write_bytes(b"")
    (eval_data.textvqa_images / second).write_bytes(b"<html>404 Not Found</html>")
    status, err = run_cli(capsys, *textvqa_args(eval_data, tmp_path / "a.jsonl"))
    assert status == 1 and "error: 2 image(s) of textvqa shard 0/1 cannot be read: [" in err
    for name in (first, second):
        assert f"{eval_data.textvqa_images / name}: not an image (cannot identify image file" in err

    frame = pd.read_csv(eval_data.mmbench_tsv, sep="\t")
    frame.loc[1, "image"] = "bm90IGFuIGltYWdl"  # base64 of "not an image"
    frame.loc[2, "image"] = "not base64!"
    tsv = tmp_path / "images.tsv"
    frame.to_csv(tsv, sep="\t", index=False)
    status, err = run_cli(capsys, "eval", "mmbench", "--checkpoint", eval_data.root / "no_checkpoint", "--tsv", tsv,
                          "--answers-file", tmp_path / "m.jsonl", "--device", "cpu")
    assert status == 1 and "error: 2 image(s) of mmbench shard 0/1 cannot be read: [" in err
    assert f"{tsv}: index {frame.loc[1, 'index']}: not an image (cannot identify image file" in err
    assert f"{tsv}: index {frame.loc[2, 'index']}: not an image (" in err


def test_unreadable_tsv(eval_data, tmp_path, capsys):
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text(eval_data.mmbench_tsv.read_text() + "5\tx\ty\n7" + "\tz" * 16 + "\n")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    answers = tmp_path / "a.jsonl"
    status, err = run_cli(capsys, "score", "mmbench", "--answers", answers, "--tsv", ragged)
    assert status == 1 and err.strip() == (f"error: {ragged}: not a readable TSV (ParserError: Error tokenizing "
                                           "data. C error: Expected 14 fields in line 9, saw 17)")
    status, err = run_cli(capsys, "score", "mmbench", "--answers", answers, "--tsv", empty)
    assert status == 1
    assert err.strip() == f"error: {empty}: not a readable TSV (EmptyDataError: No columns to parse from file)"


def test_checkpoint_without_weights_is_named(eval_data, tmp_path, capsys):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{")
    args = textvqa_args(eval_data, tmp_path / "a.jsonl")
    args[args.index("--checkpoint") + 1] = checkpoint
    status, err = run_cli(capsys, *args)
    assert status == 1
    assert err.strip().endswith(f"error: {checkpoint}: cannot load the checkpoint (JSONDecodeError: Expecting "
                                "property name enclosed in double quotes: line 1 column 2 (char 1))")


# --- bsynth eval merge / mmbench-upload: outputs never replace inputs ------------------------------

def test_merge_and_upload_refuse_to_overwrite_an_input(eval_data, output_root, capsys):
    files = write_run(output_root / "run", eval_data, ["x"] * 5, {0: "A", 1: "B", 2: "A", 1000000: "B",
                                                                  2000000: "C", 1000001: "C"})
    shard = files.mmbench_answers(MMBENCH_SPLIT)
    before = shard.read_bytes()
    status, err = run_cli(capsys, "eval", "merge", "--out", shard, "--mmbench-tsv", eval_data.mmbench_tsv, shard)
    assert status == 1
    assert f"error: {shard}: output path is also an input of this command; it would be overwritten" in err
    assert shard.read_bytes() == before
    tsv_before = eval_data.mmbench_tsv.read_bytes()
    status, err = run_cli(capsys, "eval", "mmbench-upload", "--tsv", eval_data.mmbench_tsv, "--answers", shard,
                          "--out", eval_data.mmbench_tsv)
    assert status == 1 and eval_data.mmbench_tsv.read_bytes() == tsv_before


# --- bsynth score: answers and annotations of the wrong types --------------------------------------

def test_textvqa_answer_that_is_not_a_string(eval_data, output_root, capsys):
    answers = output_root / "bm1.jsonl"
    questions = textvqa.read_questions(eval_data.textvqa_questions)
    records = [textvqa.answer_record(question, "dakota", "m") for question in questions]
    records[2]["text"] = None
    write_lines(answers, records)
    status, err = run_cli(capsys, "score", "textvqa", "--answers", answers, "--annotations",
                          eval_data.textvqa_annotations)
    assert status == 1 and err.strip() == f"error: {answers}:3: text must be a string, got None"


@pytest.mark.parametrize("change, message", [
    ({"text": None}, "{path}:1: text must be a string, got None"),
    ({"text": 1}, "{path}:1: text must be a string, got 1"),
    ({"question_id": "0"}, "{path}:1: question_id must be an integer (the TSV index), got '0'"),
    ({"question_id": 1.7}, "{path}:1: question_id must be an integer (the TSV index), got 1.7"),
    ({"question_id": True}, "{path}:1: question_id must be an integer (the TSV index), got True"),
])
def test_mmbench_answer_of_the_wrong_type(eval_data, output_root, capsys, change, message):
    files = write_run(output_root / "run", eval_data, ["x"] * 5, {0: "A", 1: "B", 2: "A", 1000000: "B",
                                                                  2000000: "C", 1000001: "C"})
    answers = files.mmbench_answers(MMBENCH_SPLIT)
    records = answers_lines(answers)
    records[0].update(change)
    write_lines(answers, records)
    status, err = run_cli(capsys, "score", "mmbench", "--answers", answers, "--tsv", eval_data.mmbench_tsv)
    assert status == 1 and err.strip() == "error: " + message.format(path=answers)


def test_mmbench_answer_key_outside_the_options(eval_data, output_root, capsys):
    files = write_run(output_root / "run", eval_data, ["x"] * 5, {0: "A", 1: "B", 2: "A", 1000000: "B",
                                                                  2000000: "C", 1000001: "C"})
    frame = pd.read_csv(eval_data.mmbench_tsv, sep="\t")
    frame.loc[2, "answer"] = "C"  # index 2 has options A and B only
    frame.to_csv(eval_data.mmbench_tsv, sep="\t", index=False)
    status, err = run_cli(capsys, "score", "mmbench", "--answers", files.mmbench_answers(MMBENCH_SPLIT),
                          "--tsv", eval_data.mmbench_tsv)
    assert status == 1
    assert err.strip() == f"error: {eval_data.mmbench_tsv}: index 2: answer 'C' is not one of its options A, B"


@pytest.mark.parametrize("document, message", [
    ({"data": {"a": 1}}, "{path}: not a TextVQA annotation file (expected an object with a 'data' list)"),
    ([1, 2], "{path}: not a TextVQA annotation file (expected an object with a 'data' list)"),
    ({"data": [{"image_id": "img0", "question": "q", "answers": "dakota"}]},
     "{path}: data[0] (image 'img0'): answers must be a list of 10 strings, got 'dakota'"),
    ({"data": [{"image_id": "img0", "question": "q", "answers": ["a"] * 9}]},
     "{path}: data[0] (image 'img0'): answers must be a list of 10 strings, got " + repr(["a"] * 9)),
])
def test_annotations_of_the_wrong_structure(eval_data, tmp_path, capsys, document, message):
    annotations = tmp_path / "annotations.json"
    annotations.write_text(json.dumps(document))
    status, err = run_cli(capsys, "score", "textvqa", "--answers", tmp_path / "a.jsonl", "--annotations", annotations)
    assert status == 1 and err.strip() == "error: " + message.format(path=annotations)


@pytest.mark.parametrize("value, shown", [("NaN", "nan"), ("true", "True"), ("1.5", "1.5"), ('"0.5"', "'0.5'")])
def test_reference_scores_out_of_range(eval_data, output_root, capsys, monkeypatch, value, shown):
    monkeypatch.setenv("BSYNTH_EVAL_DATA_ROOT", str(eval_data.root))
    files = write_run(output_root / "run", eval_data, ["x"] * 5, {0: "A", 1: "B", 2: "A", 1000000: "B",
                                                                  2000000: "C", 1000001: "C"})
    reference = output_root / "reference"
    reference.mkdir()
    (reference / "scores.json").write_text(
        f'{{"textvqa": {{"accuracy": {value}}}, "mmbench": {{"strict_circular_accuracy": 0.3}}}}')
    status, err = run_cli(capsys, "score", "run", files.root, "--reference", reference)
    assert status == 1
    assert err.strip().endswith(f"error: {reference}: textvqa.accuracy must be a number from 0 to 1, got {shown}")


def test_reference_scores_that_are_not_utf8(eval_data, output_root, capsys, monkeypatch):
    monkeypatch.setenv("BSYNTH_EVAL_DATA_ROOT", str(eval_data.root))
    files = write_run(output_root / "run", eval_data, ["x"] * 5, {0: "A", 1: "B", 2: "A", 1000000: "B",
                                                                  2000000: "C", 1000001: "C"})
    reference = output_root / "reference"
    reference.mkdir()
    (reference / "scores.json").write_bytes(b'{"textvqa": "\xff"}')
    status, err = run_cli(capsys, "score", "run", files.root, "--reference", reference)
    assert status == 1
    assert err.strip().endswith(f"error: {reference / 'scores.json'}: not UTF-8 text (byte 0xff at position 13)")


# --- toolkit/eval/*.sh: the GPU list ----------------------------------------------------------------

@pytest.mark.parametrize("script, arguments", [("textvqa.sh", ["CKPT"]), ("mmbench.sh", ["CKPT", MMBENCH_SPLIT])])
@pytest.mark.parametrize("gpu_list", ["0,,1", "a", "", "1,", " 0"])
def test_scripts_refuse_a_bad_gpu_list(tmp_path, script, arguments, gpu_list):
    env = {**os.environ, "BSYNTH_OUTPUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / "toolkit" / "eval" / script), *arguments, gpu_list], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == f"error: GPU_LIST '{gpu_list}' must be GPU indices separated by commas, e.g. 0 or 0,1,2,3\n"
