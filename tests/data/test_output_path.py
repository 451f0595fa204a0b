"""``sample``, ``dj2llava`` and ``llava2dj`` refuse an output that would destroy an input or is a folder.

Each case runs the command line and checks the exit status (1), the exact message and that the
input is byte-for-byte untouched: the same path, the same path spelled with ``..``, a symbolic
link and a hard link to the input, the original LLaVA file of dj2llava, an existing folder, and a
path below a file.

    HF_HUB_OFFLINE=1 python -m pytest tests/data/test_output_path.py -q
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from data_helpers import write_json, write_jsonl

from bettersynth.cli import main as bsynth
from bettersynth.data.output_path import OutputPathError
from bettersynth.data.sample_cap import sample_cap

REFUSAL = "writing it would replace that file; choose another output path"
# command -> (input name, arguments after the two paths); the input's content does not matter:
# the output is checked before it is read.
COMMANDS = {"sample": ("in.jsonl", ["1"]), "dj2llava": ("in.json", []), "llava2dj": ("in.jsonl", [])}


def _output(case: str, source: Path) -> Path:
    """The output path of ``case``, pointing at ``source`` one way or another."""
    folder = source.parent
    if case == "same path":
        return source
    if case == "dot-dot":
        (folder / "sub").mkdir()
        return folder / "sub" / ".." / source.name
    link = folder / f"link{source.suffix}"
    if case == "symlink":
        link.symlink_to(source.name)
    else:
        os.link(source, link)
    return link


@pytest.mark.parametrize("case", ["same path", "dot-dot", "symlink", "hard link"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_output_equal_to_the_input_is_refused(tmp_path, capsys, command, case):
    name, extra = COMMANDS[command]
    source = write_jsonl(tmp_path / name, [{"id": str(n), "text": "x", "images": []} for n in range(3)])
    before = source.read_bytes()
    output = _output(case, source)
    assert bsynth([command, str(source), str(output), *extra]) == 1
    assert capsys.readouterr().err == f"bsynth {command}: the output {output} is the input {source}: {REFUSAL}\n"
    assert source.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_dj2llava_output_equal_to_the_original_llava_file_is_refused(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "1", "text": "<image>\nx", "images": []}])
    original = write_json(tmp_path / "stage_1.json", [{"id": "1", "conversations": []}])
    before = original.read_bytes()
    assert bsynth(["dj2llava", str(source), str(original), "--restore_questions", "True",
                   "--original_llava_ds_path", str(original)]) == 1
    assert capsys.readouterr().err == (f"bsynth dj2llava: the output {original} is the original LLaVA file "
                                       f"(--original_llava_ds_path) {original}: {REFUSAL}\n")
    assert original.read_bytes() == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_output_that_is_a_folder_or_below_a_file_is_a_clear_error(tmp_path, capsys, command):
    name, extra = COMMANDS[command]
    source = write_jsonl(tmp_path / name, [{"id": "1", "text": "x", "images": []}])
    folder = tmp_path / f"out{source.suffix}"
    folder.mkdir()
    assert bsynth([command, str(source), str(folder), *extra]) == 1
    assert capsys.readouterr().err == (f"bsynth {command}: the output {folder} is a folder: "
                                       "give the path of the file to write\n")
    below = source / f"out{source.suffix}"
    assert bsynth([command, str(source), str(below), *extra]) == 1
    assert capsys.readouterr().err == (f"bsynth {command}: the output {below} cannot be created: {source} is a "
                                       "file, not a folder\n")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_output_that_is_a_named_pipe_is_refused_not_replaced(tmp_path, capsys, command):
    name, extra = COMMANDS[command]
    source = write_jsonl(tmp_path / name, [{"id": "1", "text": "x", "images": []}])
    pipe = tmp_path / f"pipe{source.suffix}"
    os.mkfifo(pipe)
    assert bsynth([command, str(source), str(pipe), *extra]) == 1  # was exit 0, the pipe replaced by a file
    assert capsys.readouterr().err == (f"bsynth {command}: the output {pipe} is not a regular file (a named pipe "
                                       "or a device): writing replaces it with one; give the path of a regular "
                                       "file\n")
    assert pipe.is_fifo()


def test_the_library_refuses_too(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "1"}])
    with pytest.raises(OutputPathError, match="is the input"):
        sample_cap(source, source, 1)
    assert sample_cap(source, tmp_path / "out.jsonl", 1).num_output == 1
