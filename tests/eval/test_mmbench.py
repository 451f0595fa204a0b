"""MMBench: prompts, answer lines, the upload .xlsx and circular scoring (strict vs letter-extracted).

    python -m pytest tests/eval/test_mmbench.py -q
"""

import json

import pandas as pd
import pytest

from bettersynth.eval.files import EvalDataError
from bettersynth.eval.mmbench import (UPLOAD_COLUMNS, answer_record, check_upload, extract_letter,
                                      is_missing, read_items, score_answers, write_upload)


def _answers(path, predictions: dict[int, str]) -> None:
    path.write_text("".join(json.dumps({"question_id": k, "text": v}) + "\n" for k, v in predictions.items()))


def test_prompts(eval_data):
    items = {item.index: item for item in read_items(eval_data.mmbench_tsv)}
    assert items[0].prompt == "What colour is the ball?\nA. red\nB. blue\nC. green"
    assert items[0].option_chars == ("A", "B", "C")
    assert items[1].prompt == "Look at the picture.\nWhich animal is shown?\nA. cat\nB. dog\nC. cow\nD. hen"
    assert items[2].user_message == ("<image>\nIs it day?\nA. yes\nB. no\n"
                                     "Answer with the option's letter from the given choices directly.")
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


GOOD = {0: "A", 1000000: "B", 2000000: "C", 1: "B", 1000001: "C", 2: "A"}


def _message(call) -> str:
    with pytest.raises(EvalDataError) as raised:
        call()
    return str(raised.value)


def test_every_row_must_be_answered(eval_data, tmp_path):
    answers = tmp_path / "answers.jsonl"
    _answers(answers, {0: "A", 1: "B"})
    assert _message(lambda: score_answers(answers, eval_data.mmbench_tsv)) == \
        f"{answers}: 4 of 6 TSV rows missing (2, 1000000, 2000000, 1000001)"


def test_each_row_is_answered_once(eval_data, tmp_path):
    # a circular copy shares its question but is its own row: answering row 0 twice does not answer 1000000
    answers = tmp_path / "answers.jsonl"
    _answers(answers, {index: text for index, text in GOOD.items() if index != 1000000})
    with answers.open("a") as f:
        f.write(json.dumps({"question_id": 0, "text": "B"}) + "\n" + json.dumps({"question_id": 5, "text": "A"}) + "\n")
    assert _message(lambda: score_answers(answers, eval_data.mmbench_tsv)) == \
        f"{answers}: 1 of 6 TSV rows missing (1000000); 1 duplicate answer (0); 1 answer to unknown TSV rows (5)"


def _upload(eval_data, tmp_path, predictions=GOOD):
    answers, upload = tmp_path / "answers.jsonl", tmp_path / "upload.xlsx"
    _answers(answers, predictions)
    write_upload(eval_data.mmbench_tsv, answers, upload)
    return answers, upload


def test_upload_file_scores_like_the_answers(eval_data, tmp_path, capsys):
    answers, upload = _upload(eval_data, tmp_path, {**GOOD, 2000000: "C. blue", 2: ""})
    from_answers, from_upload = (score_answers(answers, eval_data.mmbench_tsv),
                                 score_answers(upload, eval_data.mmbench_tsv))
    assert from_upload == from_answers and from_upload.strict_circular_accuracy == pytest.approx(1 / 3)
    assert capsys.readouterr().err == f"warning: {answers}: 1 empty prediction, scored as wrong (index 2)\n" \
                                      f"warning: {upload}: 1 empty prediction, scored as wrong (index 2)\n"


def _edit_upload(upload, edit) -> None:
    sheet = pd.read_excel(upload, engine="openpyxl", na_filter=False)
    edit(sheet).to_excel(upload, index=False, engine="openpyxl")


def test_upload_rows_must_match_the_tsv(eval_data, tmp_path):
    _, upload = _upload(eval_data, tmp_path)
    _edit_upload(upload, lambda sheet: pd.concat([sheet.iloc[1:], sheet.iloc[[1]]]))  # row 0 lost, row 1 twice
    assert _message(lambda: score_answers(upload, eval_data.mmbench_tsv)) == \
        f"{upload}: 1 of 6 TSV rows missing (0); 1 duplicate answer (1)"
    _edit_upload(upload, lambda sheet: sheet.drop(columns=["prediction"]))
    assert _message(lambda: score_answers(upload, eval_data.mmbench_tsv)) == (
        f"{upload}: missing columns ['prediction'] (an upload file has "
        f"['index', 'question', 'A', 'B', 'C', 'D', 'prediction', 'answer', 'split'])")


@pytest.mark.parametrize("index, shown", [(0.4, "0.4"), (float("inf"), "inf"), ("", "''")])
def test_an_upload_index_that_is_not_an_integer_is_refused(eval_data, tmp_path, index, shown):
    """0.4 is not row 0 (int() would truncate it and the upload would pass its checks); inf has no int."""
    _, upload = _upload(eval_data, tmp_path)
    _edit_upload(upload, lambda sheet: sheet.assign(index=[index] + list(sheet["index"])[1:]))
    assert _message(lambda: score_answers(upload, eval_data.mmbench_tsv)) == \
        f"{upload}: row 2: index {shown} is not an integer"


def test_corrupt_upload_is_refused(eval_data, tmp_path):
    _, upload = _upload(eval_data, tmp_path)
    upload.write_bytes(upload.read_bytes()[:200])
    assert _message(lambda: score_answers(upload, eval_data.mmbench_tsv)) == \
        f"{upload}: not a readable .xlsx workbook (BadZipFile: File is not a zip file)"


def test_check_upload_against_the_answers(eval_data, tmp_path):
    # what the workbook does to a text: control characters removed, line ends read back as \n, a text
    # starting with "=" written as a formula (an empty cell)
    answers, upload = _upload(eval_data, tmp_path, {**GOOD, 1: "B\r\nbecause", 2: "\x06A", 1000000: "=B"})
    check_upload(upload, answers, eval_data.mmbench_tsv)
    _edit_upload(upload, lambda sheet: sheet.assign(prediction=["A", "", "", "B", "x", "C"]))
    _answers(answers, {**GOOD, 2: ""})
    assert _message(lambda: check_upload(upload, answers, eval_data.mmbench_tsv)) == (
        f"{upload}: 1 of 6 rows without a prediction (index 1); "
        f"prediction differs from {answers} in 1 row (index 2000000)")


def test_upload_file(eval_data, tmp_path):
    answers = tmp_path / "answers.jsonl"
    predictions = {0: "A", 1: "B.", 2: "A", 1000000: "B", 2000000: "C", 1000001: "the cat"}
    _answers(answers, {**predictions, 2: "\x06A\uffff"})  # a control character and an XML non-character
    out = tmp_path / "upload" / "x.xlsx"
    assert write_upload(eval_data.mmbench_tsv, answers, out) == 6
    sheet = pd.read_excel(out, engine="openpyxl")
    assert tuple(sheet.columns) == UPLOAD_COLUMNS
    assert dict(zip(sheet["index"], sheet["prediction"])) == predictions
    assert list(sheet["answer"]) == ["A", "B", "A", "B", "C", "C"]
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind
