"""``bsynth runs record``: the run record of a hand-made output tree, at any point of the main job.

    python -m pytest tests/experiments/test_exp_record.py -q
"""

import json

import pytest
from bettersynth import __version__
from bettersynth.cli import main
from bettersynth.eval import textvqa
from bettersynth.experiments.record import (
    RecordError,
    build_record,
    record_file,
    union_seconds,
    write_record,
)
from bettersynth.paths import AssetLayout
from bettersynth.provenance import Provenance, fingerprint
from bettersynth.provenance import write_record as write_made_from
from experiment_helpers import (
    RIGHT_MMBENCH,
    RIGHT_TEXTVQA,
    editable_values,
    loss_log,
    write_answers,
    write_data,
    write_stage,
)


def test_record_of_a_running_job(output, eval_data):
    recipe, export = write_data(output, "mine", "process: []\n", samples=7)
    capped = export.with_name("mine.jsonl-200k.jsonl")
    write_made_from(capped, Provenance("cap", {"curated data": "sha256:x"}, {"max samples": "200000"}),
                    made_during=[[1000.0, 1002.0]])
    made = {"cap": capped, "pretrain": output / "training_dirs" / "MGM-2B-Pretrain-exp1",
            "finetune": output / "training_dirs" / "MGM-2B-Finetune-exp1"}
    write_stage(made["pretrain"], "pretrain", loss_log(5, 3.0, 0.2), 7, finished=True, made_during=[[1002.5, 1032.5]])
    write_stage(made["finetune"], "finetune", loss_log(2, 2.0, 0.1), 7, finished=False)  # running: no times yet
    editable = editable_values("exp1", recipe, export, seed=7)
    record = build_record(output, "exp1", editable, made=made, data_root=eval_data.root)

    assert record["exp_name"] == "exp1" and record["toolkit_version"] == __version__ and record["schema"] == 1
    assert record["editable"] == editable and record["seed"] == 7 and record["proxy_pretrain_samples"] is None
    assert record["recipe"] == {"path": str(recipe), "file_sha256": fingerprint(recipe), "operators": "sha256:op-mine"}
    assert record["seed_pool"] == "sha256:5eed"
    assert record["export"] == {"path": str(export), "samples": 7, "sha256": fingerprint(export)}
    assert record["capped"] == {"path": str(capped), "samples": 7, "sha256": fingerprint(capped),
                                "max_samples": "200000"}
    pretrain, finetune = record["stages"]["pretrain"], record["stages"]["finetune"]
    assert pretrain["status"] == "finished" and pretrain["global_step"] == 5 and pretrain["seed"] == 7
    assert [entry["loss"] for entry in pretrain["log"]] == pytest.approx([2.8, 2.6, 2.4, 2.2, 2.0])
    assert (pretrain["log"][0]["learning_rate"] == pytest.approx(2e-4)
            and pretrain["log"][0]["samples_per_second"] == 51.0)
    assert finetune["status"] == "running" and finetune["global_step"] == 2 and len(finetune["log"]) == 2
    assert record["artefacts"] == {name: str(path) for name, path in made.items()}
    assert record["steps"] == {"cap": 2.0, "pretrain": 30.0} and record["wall_time_s"] == 32.0
    assert record["scores"] == {} and record["notes"] == []


def test_record_before_anything_ran(output):
    record = build_record(output, "fresh", {"RECIPE": "solution/recipes/x.yaml",
                                            "PRETRAIN_DATASET": str(output / "nothing.jsonl"),
                                            "PROXY_PRETRAIN_SAMPLES": "2000"})
    assert record["export"] is None and record["capped"] is None and record["seed_pool"] is None
    assert record["recipe"] == {"path": "solution/recipes/x.yaml", "file_sha256": None, "operators": None}
    assert record["stages"]["pretrain"]["status"] == "absent" and record["stages"]["pretrain"]["log"] == []
    assert record["seed"] is None and record["proxy_pretrain_samples"] == 2000
    assert record["scores"] == {} and record["wall_time_s"] is None


def test_cli_accumulates_values_and_reads_times_from_the_artefacts(output, capsys, tmp_path):
    validated, pretrain = tmp_path / "a=b.jsonl.validation.json", tmp_path / "MGM-2B-Pretrain-exp2"
    validated.write_text("{}")
    write_made_from(validated, Provenance("validate", {}, {}), made_during=[[50.0, 54.5]])
    write_stage(pretrain, "pretrain", loss_log(2, 3.0, 0.2), 3, finished=True, made_during=[[60.0, 70.0]])
    assert main(["runs", "record", "exp2", "--editable", "RECIPE=", "--editable", "SEED=3",
                 "--made", f"validate={validated}"]) == 0
    assert main(["runs", "record", "exp2", "--editable", "SEED=4", "--made", f"validate={validated}",
                 "--made", f"pretrain={pretrain}", "--made", f"finetune={tmp_path / 'not yet'}"]) == 0
    record = json.loads(record_file(output, "exp2").read_text())
    assert record["editable"] == {"RECIPE": "", "SEED": "4"} and record["seed"] == 4 and record["recipe"] is None
    assert record["steps"] == {"validate": 4.5, "pretrain": 10.0} and record["wall_time_s"] == 14.5
    assert "run record: " in capsys.readouterr().err
    assert main(["runs", "record", "exp2"]) == 0  # a refresh by hand, naming no artefacts, keeps the job's
    again = json.loads(record_file(output, "exp2").read_text())
    assert again["artefacts"] == record["artefacts"] and again["steps"] == record["steps"]
    with pytest.raises(SystemExit) as stop:
        main(["runs", "record", "exp2", "--made", "pretrain"])
    assert stop.value.code == 2 and "expected KEY=VALUE, got 'pretrain'" in capsys.readouterr().err
    assert main(["runs", "record", "exp2", "--editable", "SEED=x"]) == 1
    assert "SEED='x' is not an integer" in capsys.readouterr().err
    for key, value, allowed in [("SEED", "-1", "from 0 to 4294967295"), ("SEED", "4294967296", "from 0 to 4294967295"),
                                ("PROXY_PRETRAIN_SAMPLES", "0", "at least 1")]:
        assert main(["runs", "record", "exp2", "--editable", f"{key}={value}"]) == 1
        assert f"{key}='{value}' is out of range: it must be an integer {allowed}" in capsys.readouterr().err
    assert json.loads(record_file(output, "exp2").read_text())["seed"] == 4  # the refused values changed nothing


@pytest.mark.parametrize("intervals, covered", [
    ([], 0.0), ([(0.0, 10.0)], 10.0), ([(0.0, 10.0), (20.0, 25.0)], 15.0),
    ([(0.0, 10.0), (5.0, 15.0)], 15.0),                  # two evals side by side: the overlap once
    ([(0.0, 10.0), (2.0, 3.0), (9.0, 12.0)], 12.0),     # one inside another, then one reaching past it
    ([(30.0, 40.0), (0.0, 5.0), (5.0, 8.0)], 18.0),     # unsorted, touching
])
def test_wall_time_counts_overlapping_steps_once(intervals, covered):
    assert union_seconds(intervals) == covered


def test_times_of_other_runs_artefacts_are_left_out(output, eval_data):
    """A stage or answers that are not this run's (module docstring of record.py) do not count: the
    pretrain made from other data, the finetune made from it, their answers and scores."""
    recipe, export = write_data(output, "mine", "process: []\n", samples=3)
    pretrain = output / "training_dirs" / "MGM-2B-Pretrain-exp8"
    finetune = output / "training_dirs" / "MGM-2B-Finetune-exp8"
    write_stage(pretrain, "pretrain", loss_log(2, 3.0, 0.2), 1, finished=True,
                inputs={"training data": export}, made_during=[[10.0, 20.0]])  # not the run's LLaVA json
    write_stage(finetune, "finetune", loss_log(2, 2.0, 0.1), 1, finished=True, made_during=[[20.0, 30.0]])
    files = write_answers(output / "eval_results" / finetune.name, eval_data, RIGHT_TEXTVQA, RIGHT_MMBENCH)
    write_made_from(files.textvqa_answers, Provenance("textvqa", {"checkpoint": fingerprint(finetune)}, {}),
                    made_during=[[30.0, 40.0]])
    capped = export.with_name("mine.jsonl-200k.jsonl")
    write_made_from(capped, Provenance("cap", {}, {}), made_during=[[5.0, 6.0]])
    made = {"cap": capped, "pretrain": pretrain, "finetune": finetune, "textvqa": files.textvqa_answers}
    editable = editable_values("exp8", recipe, export, seed=1)
    record = build_record(output, "exp8", editable, made=made, data_root=eval_data.root)
    assert any(note.startswith("pretrain: not this run's") for note in record["notes"])
    assert record["steps"] == {"cap": 1.0} and record["wall_time_s"] == 1.0
    # answers of an earlier checkpoint of this run's finetune do not count either
    write_stage(pretrain, "pretrain", loss_log(2, 3.0, 0.2), 1, finished=True, made_during=[[10.0, 20.0]])
    write_made_from(files.textvqa_answers, Provenance("textvqa", {"checkpoint": "sha256:older"}, {}),
                    made_during=[[30.0, 40.0]])
    record = build_record(output, "exp8", editable, made=made, data_root=eval_data.root)
    assert record["steps"] == {"cap": 1.0, "pretrain": 10.0, "finetune": 10.0} and record["wall_time_s"] == 21.0


def test_scores_with_per_question_results_and_reuse(output, eval_data, monkeypatch):
    finetune = output / "training_dirs" / "MGM-2B-Finetune-exp3"
    write_stage(finetune, "finetune", loss_log(2, 2.0, 0.1), 1, finished=True)
    files = write_answers(output / "eval_results" / finetune.name, eval_data, ["x"] + RIGHT_TEXTVQA[1:],
                          {**RIGHT_MMBENCH, 1000003: "B"})
    write_made_from(files.textvqa_answers, Provenance("textvqa", {"checkpoint": fingerprint(finetune)}, {}))
    first = write_record(output, "exp3", {}, data_root=eval_data.root)
    text, bench = first["scores"]["textvqa"], first["scores"]["mmbench"]
    assert text["accuracy"] == pytest.approx(5 / 6) and text["per_question"]["accuracy"][0] == 0.0
    assert bench["strict_circular_accuracy"] == pytest.approx(3 / 4)
    assert bench["per_question"]["strict"] == [True, True, True, False]
    assert bench["per_question"]["category"] == ["color", "animal", "color", "count"]
    # unchanged answers and data: the sections are reused, not scored again
    monkeypatch.setattr(textvqa, "question_scores", lambda *args: pytest.fail("scored again"))
    assert write_record(output, "exp3", {}, data_root=eval_data.root)["scores"]["textvqa"] == text


def test_answers_of_an_earlier_checkpoint_are_not_scored(output, eval_data):
    finetune = output / "training_dirs" / "MGM-2B-Finetune-exp4"
    write_stage(finetune, "finetune", loss_log(2, 2.0, 0.1), 1, finished=True)
    files = write_answers(output / "eval_results" / finetune.name, eval_data, RIGHT_TEXTVQA, RIGHT_MMBENCH)
    write_made_from(files.textvqa_answers, Provenance("textvqa", {"checkpoint": "sha256:older"}, {}))
    record = build_record(output, "exp4", {}, data_root=eval_data.root)
    assert "textvqa" not in record["scores"] and "mmbench" in record["scores"]
    assert record["notes"] == [(f"textvqa: {files.textvqa_answers} was made from an earlier checkpoint than "
                                f"{finetune}; not scored")]


def test_incomplete_answers_are_a_note(output, eval_data):
    files = write_answers(output / "eval_results" / "MGM-2B-Finetune-exp5", eval_data, RIGHT_TEXTVQA[:3], RIGHT_MMBENCH)
    record = build_record(output, "exp5", {}, data_root=eval_data.root)
    assert "mmbench" in record["scores"] and "textvqa" not in record["scores"]
    assert record["notes"][0].startswith(f"textvqa: not scored: {files.textvqa_answers}: 3 of 6 questions missing")


@pytest.mark.parametrize("name", ["", "..", "a/b", "tab\there"])
def test_unusable_names(output, name):
    with pytest.raises(RecordError, match="cannot name a folder"):
        build_record(output, name, {})


def test_scores_are_kept_when_the_eval_data_is_gone(output, eval_data, tmp_path):
    """Recording again with eval data that cannot be read keeps the scores of the same answers, with a note."""
    write_answers(output / "eval_results" / "MGM-2B-Finetune-exp7", eval_data, RIGHT_TEXTVQA, RIGHT_MMBENCH)
    scores = write_record(output, "exp7", {}, data_root=eval_data.root)["scores"]
    missing = AssetLayout(tmp_path / "moved")
    record = write_record(output, "exp7", {}, data_root=missing.root)
    assert record["scores"] == scores
    assert record["notes"] == [
        f"textvqa: not scored again: {missing.textvqa_annotations}: TextVQA annotation file not found; the earlier "
        "scores of the same answers are kept",
        f"mmbench: not scored again: {missing.mmbench_tsv}: MMBench TSV not found; the earlier scores of the same "
        "answers are kept"]


def test_a_record_never_pairs_this_run_with_another_runs_recipe_stages_or_scores(output, eval_data, tmp_path,
                                                                                monkeypatch):
    """Started again with other data (a new recipe whose step failed, or another PRETRAIN_DATASET), the
    record shows the recipe that made the export, and leaves out stages trained on other data than
    this run's pretraining file, the finetune descending from them and its scores, each with a note."""
    recipe, export = write_data(output, "mine", "process: []\n", samples=7)
    data = export.with_name("mine.jsonl-200k.jsonl.json")
    data.write_text("[]")
    pretrain, finetune = (output / "training_dirs" / f"MGM-2B-{stage}-exp8" for stage in ("Pretrain", "Finetune"))
    write_stage(pretrain, "pretrain", loss_log(5, 3.0, 0.2), 7, finished=True, inputs={"training data": data})
    (pretrain / "mm_projector.bin").write_bytes(b"projector")
    write_stage(finetune, "finetune", loss_log(2, 2.0, 0.1), 7, finished=True,
                inputs={"projector": pretrain / "mm_projector.bin"})
    write_answers(output / "eval_results" / finetune.name, eval_data, RIGHT_TEXTVQA, RIGHT_MMBENCH)
    editable = editable_values("exp8", recipe, export, seed=7)
    whole = build_record(output, "exp8", editable, data_root=eval_data.root)
    assert whole["stages"]["pretrain"]["status"] == whole["stages"]["finetune"]["status"] == "finished"
    assert set(whole["scores"]) == {"textvqa", "mmbench"} and whole["notes"] == []
    monkeypatch.chdir(recipe.parent)  # RECIPE spelt relative to the checkout: kept as spelt
    relative = build_record(output, "exp8", {**editable, "RECIPE": "mine.yaml"}, data_root=eval_data.root)
    assert relative["recipe"]["path"] == "mine.yaml" and relative["notes"] == []

    # RECIPE names another recipe, whose step has not made the export again: the export's recipe is shown
    other = tmp_path / "other.yaml"
    other.write_text("process: []\n")
    mixed = build_record(output, "exp8", {**editable, "RECIPE": str(other)}, data_root=eval_data.root)
    assert mixed["recipe"]["path"] == str(recipe) and mixed["stages"] == whole["stages"]
    assert mixed["notes"] == [f"recipe: RECIPE is {other}, but the export {export} was made by {recipe} (its recipe "
                              "step has not made it again); the record shows the recipe that made the data"]
    # a PRETRAIN_DATASET no recipe run made: no recipe is named; its pretraining file is not what the
    # stages were trained on, so they and the scores are left out
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"id": 1}\n')
    unnamed = build_record(output, "exp8", {**editable, "PRETRAIN_DATASET": str(plain)}, data_root=eval_data.root)
    assert unnamed["recipe"] is None
    assert unnamed["stages"] == {"pretrain": None, "finetune": None} and unnamed["scores"] == {}
    left_out, descends, no_recipe = unnamed["notes"]
    assert left_out == (f"pretrain: not this run's, left out: {pretrain}: was trained on another training data "
                        f"(sha {fingerprint(data)[7:15]}…) than {plain}-200k.jsonl.json (absent); rerun the main job "
                        "so that they match")
    assert descends == (f"finetune: not this run's, left out: {finetune}: was finetuned from the pretrain stage of "
                        "another run (above)")
    assert no_recipe.startswith(f"recipe: RECIPE is {recipe}, but no recipe run made the export {plain}")
    # the pretraining file made again from other data: the same
    data.write_text('[{"id": 2}]')
    assert build_record(output, "exp8", editable, data_root=eval_data.root)["stages"]["pretrain"] is None


def test_a_proxy_budget_above_the_data_is_a_note(output):
    """Runs compared at one proxy budget: a recipe that kept fewer samples than the budget trained on
    all of them, which the record says (the comparison is not at equal budgets)."""
    recipe, export = write_data(output, "small", "process: []\n", samples=5)
    record = build_record(output, "exp9", editable_values("exp9", recipe, export, seed=1, proxy="6"))
    assert record["proxy_pretrain_samples"] == 6 and record["capped"]["samples"] == 5
    assert record["notes"] == ["proxy: the budget of 6 pretraining samples is more than the 5 this run's data holds, "
                               "so all of them were trained: not the budget of runs that had enough"]
    assert build_record(output, "exp10", editable_values("exp10", recipe, export, seed=1, proxy="5"))["notes"] == []


@pytest.mark.parametrize("summary, why", [
    (b'{"recipe": "\xff"}', "'utf-8' codec can't decode byte 0xff in position 12"),
    (b'{"recipe": ', "Expecting value: line 1 column 12 (char 11)"),
])
def test_an_unreadable_recipe_summary_is_a_note(output, capsys, summary, why):
    recipe, export = write_data(output, "mine", "process: []\n", samples=3)
    summary_path = export.with_name("mine_work") / "run.json"
    summary_path.write_bytes(summary)
    assert main(["runs", "record", "exp11", *(f"--editable={key}={value}" for key, value in
                                               editable_values("exp11", recipe, export, seed=1).items())]) == 0
    assert f"bsynth runs record: warning: recipe: cannot read the recipe run's summary {summary_path} ({why}" \
        in capsys.readouterr().err
    assert json.loads(record_file(output, "exp11").read_text())["recipe"] is None
