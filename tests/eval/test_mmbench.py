"""MMBench: prompts, answer lines, the upload .xlsx and circular scoring (strict vs letter-extracted).

    python -m pytest tests/eval/test_mmbench.py -q
"""

import json

import pandas as pd
import pytest

from bettersynth.eval.files import EvalDataError
from bettersynth.eval.mmbench import (INSTRUCTION, UPLOAD_COLUMNS, answer_record, extract_letter, is_missing,
                                      read_items, score_answers, write_upload)


def _answers(path, predictions: dict[int, str]) -> None:
    path.write_text("".join(json.dumps({"question_id": k, "text": v}) + "\n" for k, v in predictions.items()))


def test_prompts(eval_data):
    items = {item.index: item for item in read_items(eval_data.mmbench_tsv)}
    assert items[0].prompt == "What colour is the ball?\nA. red\nB. blue\nC. green"
    assert items[0].option_chars == ("A", "B", "C")
    assert items[1].prompt == "Look at the picture.\nWhich animal is shown?\nA. cat\nB. dog\nC. cow\nD. hen"
    assert items[2].user_message == f"<image>\nIs it day?\nA. yes\nB. no\n{INSTRUCTION}"
    record = answer_record(items[2], "A", "MGM-2B-Finetune-x")
    assert record["question_id"] == 2 and record["round_id"] == 0 and record["options"] == ["yes", "no"]
    assert record["option_char"] == ["A", "B"] and record["prompt"] == items[2].prompt
    assert record["model_id"] == "MGM-2B-Finetune-x" and record["metadata"] == {} and len(record["answer_id"]) == 32


def test_missing_values():
    assert is_missing(None) and is_missing(float("nan")) and is_missing("NaN") and is_missing("none")
    assert not is_missing("0") and not is_missing("no")


def test_extract_letter():
    chars = ("A", "B", "C")
    assert extract_letter("B", chars) == "B"
    assert extract_letter("B. blue", chars) == "B"
    assert extract_letter(" (C) green", chars) == "C"
    assert extract_letter("D", chars) is None        # not an option of this question
    assert extract_letter("Blue", chars) is None      # a word, not a letter
    assert extract_letter("The answer is A", chars) is None


def test_circular_scoring(eval_data, tmp_path):
    answers = tmp_path / "answers.jsonl"
    # group 0 (three rotations): one rotation answered "C. blue" -> strict wrong, extracted right
    # group 1 (two rotations): one rotation wrong -> wrong both ways
    # group 2 (single row): right
    _answers(answers, {0: "A", 1000000: "B", 2000000: "C. blue", 1: "B", 1000001: "A", 2: "A"})
    result = score_answers(answers, eval_data.mmbench_tsv)
    assert result.num_questions == 3 and result.num_rows == 6
    assert result.strict_circular_accuracy == pytest.approx(1 / 3)
    assert result.extracted_circular_accuracy == pytest.approx(2 / 3)
    assert result.per_category == {
        "animal": {"strict": 0.0, "extracted": 0.0, "num_questions": 1},
        "color": {"strict": 0.5, "extracted": 1.0, "num_questions": 2},
    }


def test_every_row_must_be_answered(eval_data, tmp_path):
    answers = tmp_path / "answers.jsonl"
    _answers(answers, {0: "A", 1: "B"})
    with pytest.raises(EvalDataError, match="4 TSV rows unanswered"):
        score_answers(answers, eval_data.mmbench_tsv)


def test_upload_file(eval_data, tmp_path):
    answers = tmp_path / "answers.jsonl"
    predictions = {0: "A", 1: "B.", 2: "A", 1000000: "B", 2000000: "C", 1000001: "the cat"}
    _answers(answers, {**predictions, 2: "\x06A"})  # a control character a worksheet cannot hold
    out = tmp_path / "upload" / "x.xlsx"
    assert write_upload(eval_data.mmbench_tsv, answers, out) == 6
    sheet = pd.read_excel(out, engine="openpyxl")
    assert tuple(sheet.columns) == UPLOAD_COLUMNS
    assert dict(zip(sheet["index"], sheet["prediction"])) == predictions
    assert list(sheet["answer"]) == ["A", "B", "A", "B", "C", "C"]
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind
