"""``bsynth score run``: both benchmarks of a run, scores.json, ratios to a reference, challenge score.

    python -m pytest tests/eval/test_score_run.py -q
"""

import json

import pytest

from bettersynth.cli import main
from bettersynth.eval.mmbench import write_upload
from bettersynth.eval.textvqa import answer_record, read_questions
from bettersynth.paths import MMBENCH_SPLIT

from eval_helpers import write_run, write_textvqa

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
    assert main(["score", "run", str(mine.root), "--reference", str(published),
                 "--data-root", str(eval_data.root)]) == 0
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


def test_repeated_right_answers_are_refused(eval_data, tmp_path, capsys):
    # 20 questions; the right answers to the first 5, each written 4 times: the old scorer said
    # "TextVQA accuracy 100.00 (20 questions)" and exit 0
    write_textvqa(eval_data, [(f"q{n}", f"what is sign {n}?", [f"word{n}"] * 10) for n in range(20)])
    run = write_run(tmp_path / "MGM-2B-Finetune-mine", eval_data, [], GOOD_MMBENCH)
    questions = read_questions(eval_data.textvqa_questions)
    run.textvqa_answers.write_text("".join(json.dumps(answer_record(q, f"word{n}", "mine")) + "\n"
                                           for _ in range(4) for n, q in enumerate(questions[:5])))
    expected = (f"error: {run.textvqa_answers}: 15 of 20 questions missing (first: q5 'what is sign 5?', "
                "q6 'what is sign 6?', q7 'what is sign 7?', q8 'what is sign 8?', q9 'what is sign 9?' ...); "
                "15 duplicate answers (q0 'what is sign 0?', q1 'what is sign 1?', q2 'what is sign 2?', "
                "q3 'what is sign 3?', q4 'what is sign 4?')\n")
    assert main(["score", "run", str(run.root), "--data-root", str(eval_data.root)]) == 1
    assert capsys.readouterr().err.endswith(expected)
    assert not run.scores.exists()
    assert main(["score", "textvqa", "--answers", str(run.textvqa_answers),
                 "--annotations", str(eval_data.textvqa_annotations)]) == 1
    captured = capsys.readouterr()
    assert captured.err == expected and captured.out == ""


def test_mmbench_answers_must_match_the_tsv_rows(eval_data, tmp_path, capsys):
    # row 2 missing, row 0 answered twice, an unknown row 7
    run = write_run(tmp_path / "MGM-2B-Finetune-mine", eval_data, GOOD_TEXTVQA, GOOD_MMBENCH)
    answers = run.mmbench_answers(MMBENCH_SPLIT)
    lines = [json.loads(line) for line in answers.read_text().splitlines()]
    kept = [line for line in lines if line["question_id"] != 2] + [lines[0], {**lines[0], "question_id": 7}]
    answers.write_text("".join(json.dumps(line) + "\n" for line in kept))
    assert main(["score", "run", str(run.root), "--data-root", str(eval_data.root)]) == 1
    assert capsys.readouterr().err.endswith(
        f"error: {answers}: 1 of 6 TSV rows missing (2); 1 duplicate answer (0); 1 answer to unknown TSV rows (7)\n")
    assert not run.scores.exists()


def test_score_mmbench_reads_the_upload_file(eval_data, tmp_path, capsys):
    run = write_run(tmp_path / "MGM-2B-Finetune-mine", eval_data, GOOD_TEXTVQA, {**GOOD_MMBENCH, 0: "A."})
    answers, upload = run.mmbench_answers(MMBENCH_SPLIT), run.mmbench_upload(MMBENCH_SPLIT)
    write_upload(eval_data.mmbench_tsv, answers, upload)
    results = []
    for path in (answers, upload):
        assert main(["score", "mmbench", "--answers", str(path), "--tsv", str(eval_data.mmbench_tsv)]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1]
    assert results[1]["strict_circular_accuracy"] == pytest.approx(2 / 3)
    upload.write_bytes(b"PK\x03\x04 not really a workbook")
    assert main(["score", "mmbench", "--answers", str(upload), "--tsv", str(eval_data.mmbench_tsv)]) == 1
    assert capsys.readouterr().err == (f"error: {upload}: not a readable .xlsx workbook "
                                       "(BadZipFile: File is not a zip file)\n")
