"""``bsynth score run``: both benchmarks of a run, scores.json, ratios to a reference, challenge score.

    python -m pytest tests/eval/test_score_run.py -q
"""

import json

import pytest

from bettersynth.cli import main

from eval_helpers import write_run

GOOD_TEXTVQA = ["dakota", "10", "orange", "author", "stop"]
GOOD_MMBENCH = {0: "A", 1000000: "B", 2000000: "C", 1: "B", 1000001: "C", 2: "A"}


def test_score_run_with_reference(eval_data, tmp_path, capsys):
    runs = tmp_path / "output" / "eval_results"
    mine = write_run(runs / "MGM-2B-Finetune-mine", eval_data, GOOD_TEXTVQA, GOOD_MMBENCH)
    # the reference gets two TextVQA answers wrong and one MMBench group wrong
    base = write_run(runs / "MGM-2B-Finetune-base", eval_data, ["x", "y"] + GOOD_TEXTVQA[2:],
                     {**GOOD_MMBENCH, 1000001: "D"})
    status = main(["score", "run", str(mine.root), "--reference", str(base.root), "--data-root", str(eval_data.root)])
    assert status == 0
    scores = json.loads(mine.scores.read_text())
    # orange: 7 of 10 -> 1.0; stop: 6 of 10 -> 1.0; so every answer scores 1
    assert scores["textvqa"] == {"accuracy": pytest.approx(1.0), "num_questions": 5}
    assert scores["mmbench"]["strict_circular_accuracy"] == pytest.approx(1.0)
    assert scores["reference"]["textvqa_accuracy"] == pytest.approx(3 / 5)
    assert scores["reference"]["mmbench_strict_circular_accuracy"] == pytest.approx(2 / 3)
    assert scores["challenge"]["textvqa_ratio"] == pytest.approx(5 / 3)
    assert scores["challenge"]["mmbench_ratio"] == pytest.approx(3 / 2)
    assert scores["challenge"]["score"] == pytest.approx((5 / 3 + 3 / 2) / 2)
    printed = capsys.readouterr().out
    assert "TextVQA ratio 1.6667" in printed and "MMBench ratio 1.5000" in printed
    assert "challenge score (mean of the ratios) 1.5833" in printed


def test_reference_from_scores_json(eval_data, tmp_path):
    runs = tmp_path / "output" / "eval_results"
    mine = write_run(runs / "MGM-2B-Finetune-mine", eval_data, GOOD_TEXTVQA, GOOD_MMBENCH)
    published = runs / "official-baseline"
    published.mkdir()
    (published / "scores.json").write_text(json.dumps(
        {"textvqa": {"accuracy": 0.5}, "mmbench": {"strict_circular_accuracy": 0.8}}))
    assert main(["score", "run", str(mine.root), "--reference", str(published), "--data-root", str(eval_data.root)]) == 0
    challenge = json.loads(mine.scores.read_text())["challenge"]
    assert challenge == {"textvqa_ratio": pytest.approx(2.0), "mmbench_ratio": pytest.approx(1.25),
                         "score": pytest.approx(1.625)}


def test_incomplete_run_fails(eval_data, tmp_path, capsys):
    run = write_run(tmp_path / "MGM-2B-Finetune-mine", eval_data, GOOD_TEXTVQA, GOOD_MMBENCH)
    run.textvqa_answers.unlink()
    assert main(["score", "run", str(run.root), "--data-root", str(eval_data.root)]) == 1
    assert "bm1.jsonl: file not found" in capsys.readouterr().err
    assert not run.scores.exists()


def test_benchmark_commands(eval_data, tmp_path, capsys):
    run = write_run(tmp_path / "MGM-2B-Finetune-mine", eval_data, GOOD_TEXTVQA, {**GOOD_MMBENCH, 0: "A."})
    assert main(["score", "textvqa", "--answers", str(run.textvqa_answers),
                 "--annotations", str(eval_data.textvqa_annotations)]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(1.0)
    answers = next(run.root.glob("mmbench/answers/*/*.jsonl"))
    assert main(["score", "mmbench", "--answers", str(answers), "--tsv", str(eval_data.mmbench_tsv)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["strict_circular_accuracy"] == pytest.approx(2 / 3)
    assert result["extracted_circular_accuracy"] == pytest.approx(1.0)
