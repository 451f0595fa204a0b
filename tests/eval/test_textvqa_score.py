"""TextVQA scoring: leave-one-out soft score, prompt -> question matching, whole-file accuracy.

    python -m pytest tests/eval/test_textvqa_score.py -q
"""

import json

import pytest

from bettersynth.eval.files import EvalDataError
from bettersynth.eval.textvqa import question_of_prompt, read_questions, score_answers, soft_score


def test_soft_score_leave_one_out():
    answers = ["yes"] * 2 + ["no"] * 8
    # "yes": left-out yes (2 cases) -> 1 match -> 1/3; left-out no (8 cases) -> 2 matches -> 2/3
    assert soft_score("yes", answers) == pytest.approx((2 * (1 / 3) + 8 * (2 / 3)) / 10)  # 0.6
    assert soft_score("no", answers) == pytest.approx(1.0)
    # three agreeing answers: left-out one of them (3 cases) -> 2/3, else 1 -> 0.9
    assert soft_score("Yes!", ["yes"] * 3 + ["no"] * 7) == pytest.approx(0.9)
    assert soft_score("maybe", answers) == 0.0
    # normalisation applies to both sides: "Two." == "2", "the cat" == "cat"
    assert soft_score("Two.", ["2"] * 10) == pytest.approx(1.0)
    assert soft_score("cat", ["the cat"] + ["dog"] * 9) == pytest.approx(9 * (1 / 3) / 10)


def test_soft_score_needs_ten_answers():
    with pytest.raises(EvalDataError):
        soft_score("a", ["a"] * 9)


def test_question_of_prompt():
    ocr = "What is the brand?\nReference OCR token: DAKOTA, DIGITAL\nAnswer the question using a single word or phrase."
    assert question_of_prompt(ocr) == "what is the brand?"
    assert question_of_prompt("Reference OCR token: X\nWhat is it?\nAnswer briefly.") == "what is it?"
    assert question_of_prompt("What is it?\nAnswer briefly.") == "what is it?"
    with pytest.raises(EvalDataError):
        question_of_prompt("a\nb\nc\nd")


def test_score_file(eval_data, tmp_path):
    questions = read_questions(eval_data.textvqa_questions)
    predictions = ["Dakota", "10", "red", "author", "don't stop"]
    expected = [1.0,                       # 6 x dakota
                1.0,                       # 3 x "10" + 2 x "ten" -> 5 x "10": always >= 3 others match
                (3 * (2 / 3) + 7 * 1) / 10,  # red, red, "Red." -> 3 matches
                1.0,                       # "the author" -> "author"
                1.0]                       # 4 x "dont stop" -> "don't stop"
    answers = tmp_path / "bm1.jsonl"
    answers.write_text("".join(json.dumps({"question_id": q.question_id, "prompt": q.text, "text": p}) + "\n"
                               for q, p in zip(questions, predictions)))
    result = score_answers(answers, eval_data.textvqa_annotations)
    assert result.num_questions == 5
    assert result.accuracy == pytest.approx(sum(expected) / 5)


def _answer_lines(path, pairs) -> None:
    """An answers file of (question, prediction) pairs."""
    path.write_text("".join(json.dumps({"question_id": q.question_id, "prompt": q.text, "text": p}) + "\n"
                            for q, p in pairs))


def test_unknown_question_is_an_error(eval_data, tmp_path):
    answers = tmp_path / "bm1.jsonl"
    questions = read_questions(eval_data.textvqa_questions)
    _answer_lines(answers, [(q, "x") for q in questions])
    with answers.open("a") as f:
        f.write(json.dumps({"question_id": "nope", "prompt": "What?\nAnswer.", "text": "x"}) + "\n")
    with pytest.raises(EvalDataError) as raised:
        score_answers(answers, eval_data.textvqa_annotations)
    assert str(raised.value) == f"{answers}: 1 answer to unknown questions (nope 'what?')"


def test_missing_and_duplicate_questions_are_refused(eval_data, tmp_path):
    # right answers to two questions, repeated: every line has an annotation, 5 lines for 5 questions
    questions = read_questions(eval_data.textvqa_questions)
    answers = tmp_path / "bm1.jsonl"
    _answer_lines(answers, [(questions[0], "dakota")] * 3 + [(questions[3], "author")] * 2)
    with pytest.raises(EvalDataError) as raised:
        score_answers(answers, eval_data.textvqa_annotations)
    assert str(raised.value) == (
        f"{answers}: 3 of 5 questions missing (img1 'what number is on the shirt?', "
        f"img1 'what color is the sign?', img3 'what does it say?'); "
        f"3 duplicate answers (img0 'what brand is this camera?', img2 'who wrote this?')")


def test_questions_of_one_image_are_told_apart(eval_data, tmp_path):
    # img1 has two questions: both answered once is complete; one of them twice is not
    questions = read_questions(eval_data.textvqa_questions)
    assert [q.question_id for q in questions].count("img1") == 2
    answers = tmp_path / "bm1.jsonl"
    _answer_lines(answers, [(q, "x") for q in questions])
    assert score_answers(answers, eval_data.textvqa_annotations).num_questions == 5
    _answer_lines(answers, [(q, "x") for q in questions[:2] + questions[1:2] + questions[3:]])
    with pytest.raises(EvalDataError) as raised:
        score_answers(answers, eval_data.textvqa_annotations)
    assert str(raised.value) == (f"{answers}: 1 of 5 questions missing (img1 'what color is the sign?'); "
                                 f"1 duplicate answer (img1 'what number is on the shirt?')")


def test_answer_line_lacking_a_field(eval_data, tmp_path):
    answers = tmp_path / "bm1.jsonl"
    answers.write_text(json.dumps({"question_id": "img0", "text": "x"}) + "\n")
    with pytest.raises(EvalDataError) as raised:
        score_answers(answers, eval_data.textvqa_annotations)
    assert str(raised.value) == f"{answers}:1: answer lacks prompt"
