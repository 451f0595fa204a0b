"""Bad inputs of the data commands and of ``bsynth pack``: each gives its exact message and exit status,
and nothing is written (an input is never replaced).

    python -m pytest tests/data/test_data_fault_cases.py -q
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from data_helpers import write_jpeg, write_json, write_jsonl

from bettersynth.cli import main as bsynth
from bettersynth.data.dj_llava import relative_to_root
from bettersynth.data.sample_cap import sample_cap
from bettersynth.data.validate import ValidateOptions, validate
from bettersynth.submit import out_problem, proxy_problem

IMG, EOC = "<__dj__image>", "<|__dj__eoc|>"


def _sample(sid: str, image) -> dict:
    return {"id": sid, "text": f"{IMG}\ncaption {sid} {EOC}", "images": [image]}


def _seed(tmp_path: Path) -> tuple[Path, Path]:
    """An image root with a.jpg and a valid one-line jsonl using it."""
    root = tmp_path / "root"
    write_jpeg(root / "a.jpg")
    return root, write_jsonl(tmp_path / "data.jsonl", [_sample("0", "a.jpg")])


def _replaced(path: Path) -> str:
    return (f"the output {path} is the input {path}: writing it would replace that file; "
            "choose another output path")


# --- validate ---------------------------------------------------------------------------------
def test_validate_report_never_replaces_an_input(tmp_path, capsys):
    root, data = _seed(tmp_path)
    original = write_json(tmp_path / "stage_1.json", [{"id": "0", "conversations": []}])
    before = data.read_bytes(), original.read_bytes()
    base = ["validate", str(data), "--image-root", str(root), "--workers", "1"]

    assert bsynth(base + ["--report", str(data)]) == 1
    assert capsys.readouterr() == ("", f"bsynth validate: {_replaced(data)}\n")
    assert bsynth(base + ["--original", str(original), "--report", str(original)]) == 1
    assert capsys.readouterr().err == (
        f"bsynth validate: the output {original} is the original LLaVA file (--original) {original}: "
        "writing it would replace that file; choose another output path\n")
    assert bsynth(base + ["--report", str(root)]) == 1
    assert capsys.readouterr().err == (
        f"bsynth validate: the output {root} is a folder: give the path of the file to write\n")
    assert bsynth(base + ["--report", str(data / "r.json")]) == 1
    assert capsys.readouterr().err == (
        f"bsynth validate: the output {data / 'r.json'} cannot be created: {data} is a file, not a folder\n")
    assert (data.read_bytes(), original.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "root", "stage_1.json"]


def test_validate_input_that_is_a_folder(tmp_path, capsys):
    root, _ = _seed(tmp_path)
    assert bsynth(["validate", str(root), "--image-root", str(root), "--workers", "1"]) == 1
    assert capsys.readouterr().err == f"bsynth validate: input {root} is a folder: give the path of a file\n"


def test_empty_file_counts_no_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    report = validate(empty, ValidateOptions(image_root=tmp_path, workers=1))
    assert (report.num_lines, report.lines_with_errors, report.to_json()["num_valid_lines"]) == (0, 0, 0)
    summary = report.summary()
    assert "\nvalid lines        0\n" in summary  # was -1
    assert "\nerrors             1 on 0 line(s)\n" in summary


def test_validate_image_paths_outside_the_root_empty_or_not_files(tmp_path):
    root, _ = _seed(tmp_path)
    write_jpeg(tmp_path / "outside.jpg")  # a readable image, but not under the root
    (root / "dir.jpg").mkdir()
    (root / "zero.jpg").write_bytes(b"")
    images = ["./a.jpg", "sub/../a.jpg", "../outside.jpg", "sub/../../outside.jpg", ".", "", "dir.jpg", "zero.jpg"]
    data = write_jsonl(tmp_path / "paths.jsonl", [_sample(str(n), image) for n, image in enumerate(images)])
    report = validate(data, ValidateOptions(image_root=root, workers=1))
    assert [(p.line, p.kind, p.message) for p in report.errors] == [
        (3, "image_outside_root", f"image path ../outside.jpg is not under the image root {root}"),
        (4, "image_outside_root", f"image path sub/../../outside.jpg is not under the image root {root}"),
        (5, "image_outside_root", f"image path . is not under the image root {root}"),
        (6, "bad_images", "'images' must be a list of non-empty path strings"),
        (7, "image_missing", f"{root / 'dir.jpg'}: a folder, not an image file"),
        (8, "image_undecodable", f"{root / 'zero.jpg'}: empty file (0 bytes)"),
    ]


def test_an_image_path_with_a_nul_byte_is_a_bad_sample(tmp_path, capsys):
    root, _ = _seed(tmp_path)
    data = write_jsonl(tmp_path / "nul.jsonl", [_sample("0", "/elsewhere\0/a.jpg")])
    message = "an image path holds a NUL byte, which no file system accepts"
    report = validate(data, ValidateOptions(image_root=root, workers=1))  # was "invalid arguments: embedded null byte"
    assert [(p.line, p.kind, p.message) for p in report.errors] == [(1, "bad_images", message)]
    out = tmp_path / "out.json"
    assert bsynth(["dj2llava", str(data), str(out), "--image-root", str(root)]) == 1  # was exit 2, the same
    assert capsys.readouterr().err == (f"bsynth dj2llava: 1 problem(s) in {data}:\n  bad_images: 1\n"
                                       f"    {data}:line 1 (id '0'): {message}\n")
    assert not out.exists()


def test_synthetic_image_may_not_climb_out_of_its_folder(tmp_path):
    root, _ = _seed(tmp_path)
    data = write_jsonl(tmp_path / "syn.jsonl", [{**_sample("0", "../x.jpg"), "synthetic_images": True}])
    report = validate(data, ValidateOptions(image_root=root, workers=1))
    assert [(p.kind, p.message) for p in report.errors] == [
        ("bad_synthetic_image", f"synthetic image ../x.jpg must be relative to the folder of {data}, below it")]


def test_relative_to_root():
    root = Path("/data/seed")
    assert relative_to_root("a/b.jpg", root) == "a/b.jpg"
    assert relative_to_root("./a/../b.jpg", root) == "./a/../b.jpg"  # inside: returned unchanged
    assert relative_to_root("../seed2/b.jpg", root) is None
    assert relative_to_root("a/../../b.jpg", root) is None
    assert relative_to_root("..", root) is None
    assert relative_to_root(".", root) is None
    assert relative_to_root("/data/seed", root) is None  # the root itself is no image
    assert relative_to_root("/data/seed/x/../b.jpg", root) == "b.jpg"


# --- sample -----------------------------------------------------------------------------------
def test_sample_refuses_a_zero_cap(tmp_path, capsys):
    _, data = _seed(tmp_path)
    with pytest.raises(SystemExit) as exited:
        bsynth(["sample", str(data), str(tmp_path / "out.jsonl"), "0"])
    assert exited.value.code == 2
    assert "bsynth sample: error: argument N: must be >= 1, got 0\n" in capsys.readouterr().err
    with pytest.raises(ValueError, match="^N must be >= 1, got 0: a cap of 0 samples leaves nothing to train on$"):
        sample_cap(data, tmp_path / "out.jsonl", 0)
    assert not (tmp_path / "out.jsonl").exists()


def test_sample_of_an_empty_file_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "proxy.jsonl"
    assert bsynth(["sample", str(empty), str(out), "5", "--seed", "7"]) == 1
    assert capsys.readouterr() == ("", f"bsynth sample: 1 problem(s) in {empty}:\n  empty_file: 1\n"
                                       f"    {empty}: the file holds no samples: nothing to sample\n")
    assert not out.exists()


def test_sample_input_that_is_a_folder(tmp_path, capsys):
    assert bsynth(["sample", str(tmp_path), str(tmp_path / "out.jsonl"), "5"]) == 1
    assert capsys.readouterr().err == f"bsynth sample: input {tmp_path} is a folder: give the path of a file\n"
    assert not (tmp_path / "out.jsonl").exists()


def test_sample_bom_crlf_and_no_final_newline(tmp_path):
    records = [_sample(str(n), "a.jpg") for n in range(3)]
    text = "\r\n".join(json.dumps(r) for r in records)  # CRLF, no newline after the last line
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = sample_cap(source, tmp_path / "out.jsonl", 5)
    assert (result.num_input, result.num_output, result.sampled) == (3, 3, False)
    assert (tmp_path / "out.jsonl").read_text() == "".join(json.dumps(r) + "\n" for r in records)


# --- dj2llava / llava2dj ------------------------------------------------------------------------
def test_dj2llava_of_an_empty_file_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "out.json"
    assert bsynth(["dj2llava", str(empty), str(out)]) == 1
    assert capsys.readouterr() == ("", f"bsynth dj2llava: 1 problem(s) in {empty}:\n  empty_file: 1\n"
                                       f"    {empty}: the file holds no samples: nothing to convert\n")
    assert not out.exists()


def test_dj2llava_refuses_paths_leaving_the_root_and_empty_paths(tmp_path, capsys):
    root, _ = _seed(tmp_path)
    data = write_jsonl(tmp_path / "in.jsonl", [_sample("0", "./a.jpg"), _sample("1", "../x.jpg"), _sample("2", "")])
    turns = [{"from": "human", "value": "<image>\nDescribe it."}, {"from": "gpt", "value": "x"}]
    original = write_json(tmp_path / "stage_1.json", [{"id": str(n), "conversations": turns} for n in range(3)])
    out = tmp_path / "out.json"
    base = ["dj2llava", str(data), str(out), "--image_special_token", IMG, "--restore_questions", "True",
            "--original_llava_ds_path", str(original)]
    assert bsynth(base + ["--image-root", str(root)]) == 1
    assert capsys.readouterr().err == (
        f"bsynth dj2llava: 2 problem(s) in {data}:\n"
        "  image_outside_root: 1\n"
        f"    {data}:line 2 (id '1'): image path ../x.jpg is not under the image root {root}\n"
        "  bad_images: 1\n"
        f"    {data}:line 3 (id '2'): 'images' must be a list of non-empty path strings\n")
    assert not out.exists()
    assert bsynth(base) == 1  # without --image-root the empty path is still refused
    assert capsys.readouterr().err == (
        f"bsynth dj2llava: 1 problem(s) in {data}:\n  bad_images: 1\n"
        f"    {data}:line 3 (id '2'): 'images' must be a list of non-empty path strings\n")


def test_llava2dj_of_an_empty_array_writes_nothing(tmp_path, capsys):
    source = write_json(tmp_path / "stage_1.json", [])
    out = tmp_path / "seed.jsonl"
    assert bsynth(["llava2dj", str(source), str(out)]) == 1
    assert capsys.readouterr().err == (f"bsynth llava2dj: 1 problem(s) in {source}:\n  empty_file: 1\n"
                                       f"    {source}: the array holds no records: nothing to convert\n")
    assert not out.exists()


# --- pack -------------------------------------------------------------------------------------
def test_pack_out_must_be_a_zip_path_that_can_be_written(tmp_path):
    (tmp_path / "folder.zip").mkdir()
    (tmp_path / "train.sh").write_text("#!/bin/bash\n")
    assert out_problem(tmp_path / "train.sh", []) == (
        f"--out {tmp_path / 'train.sh'}: the submission is a zip: give a path ending in .zip")
    assert out_problem(tmp_path / "folder.zip", []) == (
        f"the output {tmp_path / 'folder.zip'} is a folder: give the path of the file to write")
    assert out_problem(tmp_path / "train.sh" / "s.zip", []) == (
        f"the output {tmp_path / 'train.sh' / 's.zip'} cannot be created: {tmp_path / 'train.sh'} is a file, "
        "not a folder")
    assert out_problem(tmp_path / "new" / "submit.zip", []) is None


def test_pack_check_of_a_file_that_is_not_a_zip(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BSYNTH_OUTPUT", str(tmp_path / "output"))
    text = tmp_path / "readme.md"
    text.write_text("# write-up\n")
    assert bsynth(["pack", "--check", str(text)]) == 1
    assert capsys.readouterr().out == f"problem: {text}: not a readable zip file (File is not a zip file)\n"
    assert bsynth(["pack", "--check", str(tmp_path / "absent.zip")]) == 1
    assert capsys.readouterr().out == (f"problem: {tmp_path / 'absent.zip'}: not a readable zip file ([Errno 2] "
                                       f"No such file or directory: '{tmp_path / 'absent.zip'}')\n")


def test_pack_refuses_an_experiment_name_that_is_a_path(tmp_path, capsys, monkeypatch):
    output = tmp_path / "output"
    monkeypatch.setenv("BSYNTH_OUTPUT", str(output))
    assert bsynth(["pack", "--exp", "../x", "--out", str(tmp_path / "s.zip")]) == 1
    assert capsys.readouterr().err == (
        f"error: experiment name '../x' cannot name a folder under {output / 'experiments'}\n")


@pytest.mark.parametrize("command", [["pack"], ["score", "run", "RUN"], ["eval", "locate", "CKPT"]])
def test_an_mmbench_split_that_is_a_path_is_refused(tmp_path, capsys, monkeypatch, command):
    """The split is a folder and file name part (answers/<split>/...): "../x" would reach outside."""
    monkeypatch.setenv("BSYNTH_OUTPUT", str(tmp_path / "output"))
    for split in ("../x", "a/b", ".."):
        with pytest.raises(SystemExit) as stopped:
            bsynth([*command, "--split", split])
        assert stopped.value.code == 2
        assert (f"error: argument --split: {split!r} cannot be used: it must be one folder name: not empty, "
                "not . or .., no /") in capsys.readouterr().err


@pytest.mark.parametrize("command", [["validate", "IN", "--image-root", "DIR"], ["dj2llava", "IN", "out.json"],
                                     ["sample", "IN", "out.jsonl", "3"], ["llava2dj", "IN", "out.jsonl"]])
def test_an_input_that_is_a_named_pipe_is_named_so(tmp_path, capsys, command):
    pipe = tmp_path / "in.jsonl"
    os.mkfifo(pipe)
    given = {"IN": str(pipe), "DIR": str(tmp_path)}
    argv = [given.get(word) or (str(tmp_path / word) if word.startswith("out") else word) for word in command]
    assert bsynth(argv) == 1  # was "input file not found"
    assert (f"input {pipe} is not a regular file (a named pipe or a device): give the path of a file"
            in capsys.readouterr().err)


def test_pack_unreadable_run_record_is_a_problem(tmp_path):
    record = tmp_path / "experiments" / "demo" / "run.json"
    record.parent.mkdir(parents=True)
    record.write_text("{")
    assert proxy_problem(tmp_path, "demo") == (
        f"{record}: cannot read the run record (Expecting property name enclosed in double quotes: line 1 "
        "column 2 (char 1)): cannot tell whether demo is a proxy run")


def test_a_lone_surrogate_escape_is_a_bad_line(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "0", "text": "ok \\ud83d\\ude00"}\n{"id": "1", "text": "cut \\ud800"}\n')
    out = tmp_path / "out.jsonl"
    assert bsynth(["sample", str(source), str(out), "5"]) == 1  # was exit 2, "invalid arguments: 'utf-8' codec ..."
    assert capsys.readouterr().err == (
        f"bsynth sample: 1 problem(s) in {source}:\n  invalid_line: 1\n"
        f"    {source}:line 2: a lone surrogate escape (\\ud800-\\udfff) that UTF-8 cannot encode\n")
    assert not out.exists()


def test_an_output_the_system_refuses_is_one_line_not_a_traceback(tmp_path, capsys):
    _, data = _seed(tmp_path)
    out = tmp_path / ("x" * 300 + ".jsonl")
    assert bsynth(["sample", str(data), str(out), "5"]) == 1  # was an OSError traceback
    assert capsys.readouterr().err == f"bsynth sample: [Errno 36] File name too long: '{out}'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "root"]
