"""``bsynth report``: the page, its sections and figures, seed groups and the paired comparison.

    python -m pytest tests/experiments/test_exp_report.py -q
"""

import re

import pytest
from bettersynth.cli import main
from bettersynth.experiments.groups import group_runs
from bettersynth.experiments.record import all_records, write_record
from experiment_helpers import RIGHT_MMBENCH, RIGHT_TEXTVQA, make_run, write_data

SECTIONS = ["Runs", "Loss curves", "Scores", "Seed groups", "Paired comparison", "Methods"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sweep(output, eval_data):
    """2 recipes x 2 seeds; recipe "good" answers more right than recipe "weak"."""
    good = write_data(output, "good", "process: [good]\n", samples=6)
    weak = write_data(output, "weak", "process: [weak]\n", samples=4)
    make_run(output, eval_data, "good-s1", *good, 1, RIGHT_TEXTVQA, RIGHT_MMBENCH)
    make_run(output, eval_data, "good-s2", *good, 2, ["x"] + RIGHT_TEXTVQA[1:], RIGHT_MMBENCH)
    make_run(output, eval_data, "weak-s1", *weak, 1, ["x", "y", "z"] + RIGHT_TEXTVQA[3:], {**RIGHT_MMBENCH, 1: "A"})
    make_run(output, eval_data, "weak-s2", *weak, 2, ["x", "y"] + RIGHT_TEXTVQA[2:], {**RIGHT_MMBENCH, 3: "A"})
    make_run(output, eval_data, "good-proxy", *good, 1, RIGHT_TEXTVQA, RIGHT_MMBENCH, proxy="3")
    write_record(output, "pending", {"SEED": "5"})
    return output


def test_groups_differ_only_by_seed(sweep):
    records = [r for r in all_records(sweep) if r["exp_name"] != "pending"]  # by name
    assert [(g.label, g.names) for g in group_runs(records)] == [
        ("good.yaml (proxy 3)", ["good-proxy"]), ("good.yaml", ["good-s1", "good-s2"]),
        ("weak.yaml", ["weak-s1", "weak-s2"])]
    assert [g.names for g in group_runs(records, "recipe")] == [["good-proxy", "good-s1", "good-s2"],
                                                                ["weak-s1", "weak-s2"]]


def test_report_page_and_figures(sweep, tmp_path, capsys):
    out = tmp_path / "reports" / "report.html"
    assert main(["report", "good-s1", "good-s2", "weak-s1", "weak-s2", "pending", "--reference", "weak-s1",
                 "--draws", "200", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert re.findall(r"<h2>(.*?)</h2>", page) == SECTIONS
    figures = re.findall(r'<img src="([^"]+)"', page)
    assert figures == ["report_files/loss_pretrain.png", "report_files/loss_finetune.png", "report_files/scores.png",
                       "report_files/groups.png"]
    for figure in figures:
        assert (out.parent / figure).read_bytes()[:8] == PNG_MAGIC
    assert "<script" not in page and "http" not in page
    assert "A = <b>good.yaml</b> (2 run(s)), B = <b>weak.yaml</b> (2 run(s))" in page
    assert "challenge score mean ± std" in page and "P(A &gt; B)" in page
    assert "Without scores yet (table and losses only): pending." in page
    assert "numpy <code>default_rng(0)</code>" in page and "200 draws" in page
    # good: TextVQA 6/6 and 5/6 -> mean 0.9167 +- 0.1179
    assert "0.9167 ± 0.1179" in page
    assert "report written to" in capsys.readouterr().err


def test_report_by_recipe_and_one_group(sweep, tmp_path):
    out = tmp_path / "one.html"
    assert main(["report", "good-s1", "good-proxy", "--group-by", "recipe", "--draws", "50", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "Only one group of scored runs: nothing to compare." in page
    assert "challenge score" not in page.split("<h2>Methods</h2>")[0]
    assert "Runs with the same recipe operators" in page


def test_report_without_scores_drops_old_figures(sweep, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", "good-s1", "weak-s1", "--draws", "20", "--out", str(out)]) == 0
    assert (tmp_path / "r_files" / "scores.png").is_file()
    assert main(["report", "pending", "--out", str(out)]) == 0
    assert not (tmp_path / "r_files" / "scores.png").exists()
    assert "No run has per-question scores yet." in out.read_text(encoding="utf-8")


def test_report_refuses_unknown_runs(sweep, tmp_path, capsys):
    assert main(["report", "nobody", "--out", str(tmp_path / "x.html")]) == 1
    assert "no run record for 'nobody'" in capsys.readouterr().err
