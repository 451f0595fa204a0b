"""Recipe files and run settings that ``bsynth recipe run`` refuses before Data-Juicer starts, with a
message naming the file (and line) and a non-zero exit.

    python -m pytest tests/recipes/test_recipe_faults.py -q
"""

import json
import os
import stat
from pathlib import Path

import pytest

from bettersynth.cli import main as bsynth
from bettersynth.recipes.config import RecipeRun
from bettersynth.recipes.recipe import RecipeError, expand_variables, load_recipe
from bettersynth.recipes.run import last_error


@pytest.mark.parametrize("text, message", [
    ("np: 1\nprocess:\n  - words_num_filter:\n    min_num: [1\n",
     "{path}:5:1: not valid YAML: expected ',' or ']', but got '<stream end>' "
     "(while parsing a flow sequence started at line 4)"),
    ("np: 1\nprocess:\n\t- a\n",
     "{path}:3:1: not valid YAML: found character '\\t' that cannot start any token "
     "(while scanning for the next token)"),
    ("", "{path}: the recipe is empty; a recipe is a mapping with a `process` list"),
    ("- words_num_filter\n", "{path}: a recipe is a mapping with a `process` list, not a list"),
    ("np: 1\n", "{path}: `process` must be a non-empty list of operators"),
    ("process:\n  - words_num_filter: 5\n",
     "{path}: process item 1 (words_num_filter): the arguments must be a mapping of parameter names to values "
     "(or empty), got 5"),
    # each was a traceback (TypeError)
    ("process:\n  - words_num_filter:\ncustom_operator_paths: 5\n",
     "{path}: `custom_operator_paths` must be a list of paths (relative to the recipe), got 5"),
    ("process:\n  - words_num_filter:\ncustom_operator_paths: ops\n",
     "{path}: `custom_operator_paths` must be a list of paths (relative to the recipe), got 'ops'"),
])
def test_recipe_file_refused(tmp_path, text, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe)
    assert str(raised.value) == message.format(path=recipe)


def test_recipe_that_is_not_utf8_is_refused(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(b"process:\n  - words_num_filter: # caf\xe9\n")
    with pytest.raises(RecipeError) as raised:  # was a UnicodeDecodeError traceback
        load_recipe(recipe)
    assert str(raised.value) == f"{recipe}: not UTF-8 text (invalid continuation byte at byte 36)"


def test_variable_whose_value_is_not_yaml_is_refused():
    with pytest.raises(RecipeError) as raised:  # was a yaml ParserError traceback
        expand_variables({"min_score": "${BSYNTH_CLIP_MIN:-0.2}"}, {"BSYNTH_CLIP_MIN": "[0.3"}, "r.yaml")
    assert str(raised.value) == ("r.yaml: ${BSYNTH_CLIP_MIN} gives '[0.3', which is not a YAML value "
                                 "(expected ',' or ']', but got '<stream end>')")


def test_operator_without_arguments_is_accepted(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("process:\n  - words_num_filter:\n")
    assert load_recipe(recipe)["process"] == [{"words_num_filter": None}]


def run_settings(tmp_path: Path, dataset: Path, export: Path) -> RecipeRun:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("process:\n  - words_num_filter:\n")
    return RecipeRun(recipe=recipe, dataset=dataset, export=export, image_root=tmp_path, models_root=tmp_path)


def test_export_that_is_a_folder_is_refused_before_the_run(tmp_path):
    dataset = tmp_path / "pool.jsonl"
    dataset.write_text("{}\n")
    export = tmp_path / "out.jsonl"
    export.mkdir()
    with pytest.raises(ValueError) as raised:
        run_settings(tmp_path, dataset, export)
    assert str(raised.value) == f"export {export} is a folder; give the path of a .jsonl file"


def test_export_that_is_a_named_pipe_is_refused_not_replaced(tmp_path):
    dataset = tmp_path / "pool.jsonl"
    dataset.write_text("{}\n")
    export = tmp_path / "out.jsonl"
    os.mkfifo(export)
    with pytest.raises(ValueError) as raised:
        run_settings(tmp_path, dataset, export)
    assert str(raised.value) == (f"export {export} is not a regular file (a named pipe or a device): the finished "
                                 "export is renamed onto its path, which would replace it; give the path of a .jsonl "
                                 "file")
    assert stat.S_ISFIFO(export.stat().st_mode)


def test_dataset_that_is_a_folder_is_named_so(tmp_path):
    with pytest.raises(ValueError) as raised:
        run_settings(tmp_path, tmp_path, tmp_path / "out.jsonl")
    assert str(raised.value) == f"dataset {tmp_path} is a folder; give the path of its jsonl file"


@pytest.mark.parametrize("lines, message", [
    (b'{"id": "1", "text": "t", "images": []}\n{"id": "2", "te\n', "{export}: line 2: not JSON (Invalid "
     "control character at: line 1 column 16 (char 15))"),
    (b'[1, 2]\n', "{export}: line 1: not a sample (a JSON object with a text)"),
    (b'{"id": "1", "text": "t"}\n{"id": "\xff"}\n', "{export}: line 2: not UTF-8 text (invalid start byte)"),
    (b'{"id": "1", "text": "t", "images": ["broken.jpg"]}\n', "{export}: image {image} cannot be read "
     "(cannot identify image file '{image}')"),
])
def test_report_of_an_export_with_a_bad_line_or_image_names_it(tmp_path, capsys, lines, message):
    export = tmp_path / "out.jsonl"
    export.write_bytes(lines)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "out_work").mkdir()
    (tmp_path / "out_work" / "run.json").write_text(json.dumps(
        {"status": "complete", "recipe": "r.yaml", "image_root": str(tmp_path), "input_samples": 1,
         "output_samples": 1, "executor": "default", "ops": []}))
    assert bsynth(["recipe", "report", str(export)]) == 1  # was a JSONDecodeError / PIL traceback
    assert capsys.readouterr().out == f"[recipe] {message.format(export=export, image=tmp_path / 'broken.jpg')}\n"


def test_last_error_of_a_data_juicer_log(tmp_path):
    log = tmp_path / "run.log"
    log.write_text('usage: worker.py ...\nerror: Parser key "np":\n  Not of type PositiveInt: bad\n\n')
    assert last_error(log) == 'error: Parser key "np": Not of type PositiveInt: bad'
    log.write_text("loading\nKilled\n")
    assert last_error(log) == "Killed"
    assert last_error(tmp_path / "absent.log") == ""


@pytest.mark.parametrize("record, message", [
    ('{"status": "comp', "{record}: not a readable run record (Unterminated string starting at: line 1 column 12 "
     "(char 11))"),
    ('{"status": "failed", "input_samples": 3}', "{record} does not record a finished run (status 'failed'): a "
     "report is made of the export of a `bsynth recipe run` that succeeded"),
    ("[]", "{record} does not record a finished run (status None): a report is made of the export of a "
     "`bsynth recipe run` that succeeded"),
])
def test_report_of_a_run_that_did_not_finish_is_refused(tmp_path, capsys, record, message):
    export = tmp_path / "out.jsonl"
    export.write_text('{"id": "1", "text": "t", "images": []}\n')
    (tmp_path / "out_work").mkdir()
    (tmp_path / "out_work" / "run.json").write_text(record)
    assert bsynth(["recipe", "report", str(export)]) == 1  # was a JSONDecodeError / KeyError traceback
    assert capsys.readouterr().out == f"[recipe] {message.format(record=tmp_path / 'out_work' / 'run.json')}\n"
    assert not (tmp_path / "out_report").exists()
