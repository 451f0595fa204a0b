"""``bsynth report``: the page, its sections and figures, seed groups and the paired comparison.

    python -m pytest tests/experiments/test_exp_report.py -q
"""

import json
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
    records = [r for r in all_records(sweep)[0] if r["exp_name"] != "pending"]  # by name
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


def test_report_refuses_a_run_given_twice(sweep, tmp_path, capsys):
    out = tmp_path / "twice.html"
    path = sweep / "experiments" / "good-s1" / "run.json"
    assert main(["report", "good-s1", "weak-s1", str(path), "--out", str(out)]) == 1
    assert capsys.readouterr().err == ("bsynth report: run(s) given more than once: 'good-s1'; a report shows each "
                                       "run once (runs of two sweeps with one name cannot be told apart: report "
                                       "them separately)\n")
    assert not out.exists() and not (tmp_path / "twice_files").exists()


def test_report_refuses_an_out_it_cannot_write(sweep, tmp_path, capsys):
    folder = tmp_path / "taken"
    folder.mkdir()
    assert main(["report", "good-s1", "--out", str(folder)]) == 1
    assert capsys.readouterr().err == (f"bsynth report: --out {folder} is a folder (or another non-file); give the "
                                       "path of the HTML page to write\n")
    (tmp_path / "r_files").write_text("not a folder")
    assert main(["report", "good-s1", "--out", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err == (f"bsynth report: --out {tmp_path / 'r.html'}: its figures go to the folder "
                                       f"{tmp_path / 'r_files'}, but a file of that name is there\n")
    notes = tmp_path / "notes.html"   # a page of the user's own: never replaced
    notes.write_text("<html><body>my notes</body></html>\n")
    assert main(["report", "good-s1", "--out", str(notes)]) == 1
    assert capsys.readouterr().err == (f"bsynth report: --out {notes} exists and is not a page `bsynth report` "
                                       "wrote; it is left as it is: give a new path (or remove that file)\n")
    assert notes.read_text() == "<html><body>my notes</body></html>\n"
    assert not (tmp_path / "notes_files").exists()
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "r.html"
    assert main(["report", "good-s1", "--out", str(out)]) == 1
    assert capsys.readouterr().err == (f"bsynth report: cannot write the report {out} ([Errno 20] Not a directory: "
                                       f"'{out}')\n")


@pytest.mark.parametrize("option, value, message", [
    ("--draws", "0", "argument --draws: must be >= 1, got 0"),
    ("--draws", "1000000000000", "argument --draws: must be at most 100000, got 1000000000000"),  # 43 TiB, hours
    ("--bootstrap-seed", "-1", "argument --bootstrap-seed: must be >= 0, got -1"),
])
def test_report_refuses_a_bad_bootstrap(sweep, tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as stopped:
        main(["report", "good-s1", option, value, "--out", str(tmp_path / "b.html")])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.endswith(f"bsynth report: error: {message}\n")


def test_a_refused_report_leaves_the_earlier_page_whole(sweep, tmp_path, capsys):
    """Runs whose questions differ are found before anything is written: the earlier page and its figures
    stay as they were (not a page whose figures were half replaced)."""
    out = tmp_path / "keep.html"
    assert main(["report", "good-s1", "weak-s1", "--draws", "20", "--out", str(out)]) == 0
    before = {path.name: path.read_bytes() for path in [out, *sorted((tmp_path / "keep_files").iterdir())]}
    write_record(sweep, "short", {"SEED": "1"})
    path = sweep / "experiments" / "short" / "run.json"
    record = json.loads(path.read_text())
    record["scores"] = json.loads((sweep / "experiments" / "weak-s2" / "run.json").read_text())["scores"]
    questions = record["scores"]["textvqa"]["per_question"]
    questions["ids"], questions["accuracy"] = questions["ids"][:-1], questions["accuracy"][:-1]
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["report", "good-s1", "short", "--draws", "20", "--out", str(out)]) == 1
    assert capsys.readouterr().err == ("bsynth report: run 'short': its textvqa questions are not those of the first "
                                       "run (1 missing, 0 others, 5 vs 6 answers)\n")
    after = {path.name: path.read_bytes() for path in [out, *sorted((tmp_path / "keep_files").iterdir())]}
    assert after == before


def test_a_reference_scoring_zero_is_refused_even_without_scored_runs(sweep, tmp_path, capsys):
    path = sweep / "experiments" / "zero" / "run.json"
    record = json.loads((sweep / "experiments" / "weak-s1" / "run.json").read_text())
    record["exp_name"], record["scores"]["textvqa"]["accuracy"] = "zero", 0.0
    path.parent.mkdir()
    path.write_text(json.dumps(record))
    assert main(["report", "pending", "--reference", "zero", "--out", str(tmp_path / "z.html")]) == 1
    assert capsys.readouterr().err == ("bsynth report: reference run 'zero': reference scores must be positive to "
                                       "form ratios (TextVQA 0.0, MMBench 0.75)\n")  # weak-s1: question 1 wrong
