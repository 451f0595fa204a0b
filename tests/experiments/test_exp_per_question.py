"""Per-question TextVQA and MMBench values agree with the scorers' totals (``bsynth score run``).

    python -m pytest tests/experiments/test_exp_per_question.py -q
"""

import pytest
from bettersynth.eval import mmbench, textvqa
from bettersynth.eval.assets import EvalLayout
from bettersynth.eval.score import score_run
from bettersynth.experiments.scores import mmbench_section, textvqa_section
from bettersynth.paths import MMBENCH_SPLIT
from experiment_helpers import RIGHT_MMBENCH, write_answers

TEXTVQA_MIXED = ["dakota digital", "ten", "red", "nobody", "go", "stop"]
# group 0: a copy wrong; group 1: "B." (strict wrong, letter right); group 2 right; group 3: letter wrong
MMBENCH_MIXED = {**RIGHT_MMBENCH, 2000000: "A", 1: "B.", 1000001: "C", 3: "A"}


@pytest.fixture
def answers(eval_data, tmp_path):
    return write_answers(tmp_path / "eval" / "MGM-2B-Finetune-mixed", eval_data, TEXTVQA_MIXED, MMBENCH_MIXED)


def test_textvqa_per_question_mean_is_accuracy(eval_data, answers):
    scored = textvqa.question_scores(answers.textvqa_answers, eval_data.textvqa_annotations)
    values = [value for _, value in scored]
    # red: 2 of 10 answers agree -> (2 x 1/3 + 8 x 2/3) / 10
    assert values == pytest.approx([1.0, 1.0, 0.6, 0.0, 0.0, 1.0])
    total = textvqa.score_answers(answers.textvqa_answers, eval_data.textvqa_annotations)
    assert total.accuracy == pytest.approx(sum(values) / len(values)) and total.num_questions == len(values)
    assert [key for key, _ in scored][:2] == [("img0", "what brand is this camera?"),
                                              ("img1", "what number is on the shirt?")]


def test_mmbench_per_question_means_are_accuracies(eval_data, answers):
    results = mmbench.circular_results(answers.mmbench_answers(MMBENCH_SPLIT), eval_data.mmbench_tsv)
    assert [(r.question, r.strict, r.extracted, r.rows) for r in results] == \
        [(0, False, False, 3), (1, False, True, 2), (2, True, True, 1), (3, False, False, 2)]
    total = mmbench.score_answers(answers.mmbench_answers(MMBENCH_SPLIT), eval_data.mmbench_tsv)
    assert total.strict_circular_accuracy == pytest.approx(sum(r.strict for r in results) / len(results)) == 0.25
    assert total.extracted_circular_accuracy == pytest.approx(sum(r.extracted for r in results) / len(results)) == 0.5
    assert total.num_questions == len(results) and total.num_rows == sum(r.rows for r in results) == 8
    for name, values in total.per_category.items():
        members = [r for r in results if r.category == name]
        assert values["strict"] == pytest.approx(sum(r.strict for r in members) / len(members))
        assert values["num_questions"] == len(members)


def test_record_sections_equal_score_run(eval_data, answers):
    scores = score_run(answers.root, EvalLayout("given", eval_data), MMBENCH_SPLIT)
    text = textvqa_section(answers.textvqa_answers, eval_data.textvqa_annotations)
    bench = mmbench_section(answers.mmbench_answers(MMBENCH_SPLIT), eval_data.mmbench_tsv, MMBENCH_SPLIT)
    assert text["accuracy"] == pytest.approx(scores["textvqa"]["accuracy"])
    assert bench["strict_circular_accuracy"] == pytest.approx(scores["mmbench"]["strict_circular_accuracy"])
    assert bench["extracted_circular_accuracy"] == pytest.approx(scores["mmbench"]["extracted_circular_accuracy"])
    # the pair asked twice gets a distinct id for its second answer
    assert text["per_question"]["ids"][-2:] == ["img3/what does it say?", "img3/what does it say?#2"]
    assert bench["per_question"]["ids"] == [0, 1, 2, 3]
