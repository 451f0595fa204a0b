"""``bsynth pack``: the submission zip's layout, its checks and its refusals.

    python -m pytest tests/eval/test_submit.py -q
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from bettersynth.eval.mmbench import write_upload
from bettersynth.paths import MMBENCH_SPLIT
from bettersynth.provenance import Provenance, write_record
from bettersynth.submit import MAX_SOLUTION_FILE_BYTES, find_experiment, plan, write_zip, zip_problems

from eval_helpers import write_run

TOOLKIT = Path(__file__).resolve().parents[2] / "toolkit"
FINISHED_LOG = ("INFO step 1/2 | loss 2.1\nINFO step 2/2 | loss 1.9\nINFO training took 12.5 s\n"
                "INFO finetune finished: outputs in /x/output/training_dirs/MGM-2B-Finetune-demo\n")
MMBENCH = {0: "A", 1000000: "B", 2000000: "C", 1: "B", 1000001: "C", 2: "A"}
F = "MGM-2B-Finetune-demo"
P = "MGM-2B-Pretrain-demo"


@pytest.fixture
def tree(tmp_path, eval_data):
    """A finished run: repository root with solution/ and output/ (online and offline files)."""
    root = tmp_path / "repo"
    solution, output = root / "solution", root / "output"
    (solution / "recipes").mkdir(parents=True)
    (solution / "readme.md").write_text("# write-up\n")
    (solution / "requirements.txt").write_text("py-data-juicer==1.6.1\n")
    (solution / "recipes" / "r.yaml").write_text("process: []\n")
    (solution / "__pycache__").mkdir()
    (solution / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (output / "training_dirs" / P).mkdir(parents=True)
    (output / "training_dirs" / F).mkdir(parents=True)
    (output / "train.sh").write_text("#!/usr/bin/env bash\n")
    (output / "training_dirs" / P / "pretrain.log").write_text(FINISHED_LOG)
    (output / "training_dirs" / F / "finetuning.log").write_text(FINISHED_LOG)
    (output / "training_dirs" / P / "mm_projector.bin").write_bytes(b"projector")
    (output / "training_dirs" / F / "model.safetensors").write_bytes(b"weights")
    for stage in (P, F):
        (output / "training_dirs" / stage / "training_complete.json").write_text('{"stage": "done"}\n')
    write_record(output / "training_dirs" / F, Provenance.of(
        "finetune", {"projector": output / "training_dirs" / P / "mm_projector.bin"}, {}), finished="now")
    (output / "processed_data" / "synthetic_images").mkdir(parents=True)
    (output / "processed_data" / "processed_data.jsonl").write_text('{"id": "1"}\n')
    (output / "processed_data" / "synthetic_images" / "s1.jpg").write_bytes(b"jpeg")
    files = write_run(output / "eval_results" / F, eval_data, ["a", "b", "c", "d", "e"], MMBENCH)
    write_upload(eval_data.mmbench_tsv, files.mmbench_answers(MMBENCH_SPLIT), files.mmbench_upload(MMBENCH_SPLIT))
    return root


def _plan(tree, eval_data, round_name="online", include=()):
    return plan(round_name, "demo", MMBENCH_SPLIT, str(eval_data.root), tree / "solution", tree / "output", include)


def _zip_names(tree, eval_data, tmp_path, include=()) -> list[str]:
    result = _plan(tree, eval_data, include=include)
    assert result.problems == []
    write_zip(result.entries, tmp_path / "submit.zip", "online")
    return sorted(zipfile.ZipFile(tmp_path / "submit.zip").namelist())


ONLINE_NAMES = sorted([
    "solution/readme.md", "solution/requirements.txt", "solution/recipes/r.yaml",
    "output/train.sh",
    f"output/training_dirs/{P}/pretrain.log",
    f"output/training_dirs/{F}/finetune.log",
    f"output/eval_results/{F}/textvqa/bm1.jsonl",
    f"output/eval_results/{F}/mmbench/answers/{MMBENCH_SPLIT}/{F}.jsonl",
    f"output/eval_results/{F}/mmbench/answers_upload/{MMBENCH_SPLIT}/{F}.xlsx",
])


def test_online_zip_layout(tree, eval_data, tmp_path):
    assert _zip_names(tree, eval_data, tmp_path) == ONLINE_NAMES
    out = tmp_path / "submit.zip"
    log = zipfile.ZipFile(out).read(f"output/training_dirs/{F}/finetune.log").decode()
    assert log == FINISHED_LOG
    assert zip_problems(out, "online") == []
    assert zip_problems(out, "offline")  # the online zip lacks the offline files


def test_offline_zip_adds_data_and_weights(tree, eval_data, tmp_path):
    result = _plan(tree, eval_data, "offline")
    assert result.problems == []
    names = {entry.arcname for entry in result.entries}
    assert {"output/processed_data/processed_data.jsonl", "output/processed_data/synthetic_images/s1.jpg",
            f"output/training_dirs/{P}/mm_projector.bin", f"output/training_dirs/{F}/model.safetensors"} <= names
    write_zip(result.entries, tmp_path / "offline.zip", "offline")
    assert zip_problems(tmp_path / "offline.zip", "offline") == []


def test_a_sharded_checkpoint_missing_a_shard_is_refused(tree, eval_data):
    finetune = tree / "output" / "training_dirs" / F
    (finetune / "model.safetensors").unlink()
    (finetune / "model-00001-of-00002.safetensors").write_bytes(b"weights 1")
    (finetune / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert _plan(tree, eval_data, "offline").problems == [
        f"{finetune}: 1 weight file that model.safetensors.index.json names missing "
        "(model-00002-of-00002.safetensors): the finetuned weights are incomplete"]
    (finetune / "model-00002-of-00002.safetensors").write_bytes(b"weights 2")
    result = _plan(tree, eval_data, "offline")
    assert result.problems == []
    zipped = tree / "offline.zip"
    write_zip(result.entries, zipped, "offline")
    assert zip_problems(zipped, "offline") == []
    # `pack --check` of a zip that lost a shard on its way (rebuilt without it)
    shard = f"output/training_dirs/{F}/model-00002-of-00002.safetensors"
    cut = tree / "cut.zip"
    with zipfile.ZipFile(zipped) as source, zipfile.ZipFile(cut, "w") as target:
        for info in source.infolist():
            if info.filename != shard:
                target.writestr(info, source.read(info))
    assert zip_problems(cut, "offline") == [
        f"{cut}: output/training_dirs/{F}/model.safetensors.index.json names weight files the zip lacks: "
        "['model-00002-of-00002.safetensors']"]


def test_missing_and_empty_files_are_listed(tree, eval_data):
    (tree / "output" / "train.sh").unlink()
    (tree / "output" / "training_dirs" / P / "pretrain.log").write_text("")
    (tree / "output" / "training_dirs" / F / "model.safetensors").unlink()
    text = "\n".join(_plan(tree, eval_data, "offline").problems)
    assert "train.sh: missing" in text
    assert "pretrain.log: empty" in text
    assert "no model*.safetensors" in text


def test_unfinished_stages_and_mismatched_parts_are_refused(tree, eval_data):
    pretrain, finetune = tree / "output" / "training_dirs" / P, tree / "output" / "training_dirs" / F
    (pretrain / "training_complete.json").unlink()
    problems = _plan(tree, eval_data).problems
    assert f"{pretrain}: the pretrain stage has not finished (no training_complete.json; rerun the main job to " \
           "resume it)" in problems
    (pretrain / "training_complete.json").write_text("{}\n")
    bm1 = tree / "output" / "eval_results" / F / "textvqa" / "bm1.jsonl"
    write_record(bm1, Provenance.of("textvqa", {"checkpoint": finetune}, {}))
    assert _plan(tree, eval_data).problems == []
    # pretraining ran again (new data): the finetune and the answers no longer belong to it
    (pretrain / "mm_projector.bin").write_bytes(b"another projector")
    problems = _plan(tree, eval_data).problems
    assert any(p.startswith(f"{finetune}: was finetuned from another projector (sha ") for p in problems), problems
    write_record(finetune, Provenance.of("finetune", {"projector": pretrain / "mm_projector.bin"}, {}),
                 finished="later")
    problems = _plan(tree, eval_data).problems
    assert problems == [f"{bm1}: holds the answers of another checkpoint" + problems[0].split("checkpoint", 1)[1]]
    assert "rerun the main job so that they match" in problems[0]


def test_scores_of_other_answers_are_refused(tree, eval_data):
    """A scores.json made from earlier answers (a re-score that failed leaves it) must not ship with new ones."""
    results = tree / "output" / "eval_results" / F
    bm1 = results / "textvqa" / "bm1.jsonl"
    upload = results / "mmbench" / "answers_upload" / MMBENCH_SPLIT / f"{F}.xlsx"
    scores = results / "scores.json"
    scores.write_text('{"textvqa": {"accuracy": 0.5}}\n')
    plan_ = _plan(tree, eval_data)
    assert plan_.problems == []
    assert f"{scores}: no record of the answers it scores (made outside the main job?)" in plan_.notes
    write_record(scores, Provenance.of("scores", {"textvqa answers": bm1, "mmbench answers": upload}, {}))
    assert _plan(tree, eval_data).problems == []
    bm1.write_text(bm1.read_text().replace('"text": "a"', '"text": "z"'))   # new answers, the old scores left
    problems = _plan(tree, eval_data).problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{scores}: holds the scores of another textvqa answers (sha ")
    assert f"than {bm1} (sha " in problems[0]
    assert "rerun the main job so that they match" in problems[0]


def test_answer_counts_must_match_questions(tree, eval_data):
    bm1 = tree / "output" / "eval_results" / F / "textvqa" / "bm1.jsonl"
    lines = bm1.read_text().splitlines()
    bm1.write_text("\n".join(lines[:-1]) + "\n")
    assert _plan(tree, eval_data).problems == [f"{bm1}: 1 of 5 questions missing (img3)"]
    bm1.write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    assert _plan(tree, eval_data).problems == [
        f"{bm1}: the questions of {eval_data.textvqa_questions}, not in their order (first difference at answer 0)"]


def test_symlinks_are_refused(tree, eval_data, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the submission")
    (tree / "solution" / "recipes" / "link.txt").symlink_to(outside)
    assert _plan(tree, eval_data).problems == [f"{tree}/solution/recipes/link.txt: symlinks are not packed"]


def test_only_the_allow_list_is_packed(tree, eval_data, tmp_path):
    solution = tree / "solution"
    (solution / "notes.txt").write_text("drafts")
    (solution / ".env").write_text("HF_TOKEN=hf_abc\n")  # the old pack shipped it without a word
    (solution / "data").mkdir()
    (solution / "data" / "pool.jsonl").write_text('{"id": "1"}\n')
    (solution / "ops").mkdir()
    (solution / "ops" / "tokenizer_filter.py").write_text("x = 1\n")
    assert _plan(tree, eval_data).left_out == ["solution/.env (not on the allow-list)",
                                               "solution/data/pool.jsonl (not on the allow-list)",
                                               "solution/notes.txt (not on the allow-list)"]
    assert _zip_names(tree, eval_data, tmp_path) == sorted(ONLINE_NAMES + ["solution/ops/tokenizer_filter.py"])
    assert _zip_names(tree, eval_data, tmp_path, include=[solution / "notes.txt"]) == \
        sorted(ONLINE_NAMES + ["solution/notes.txt", "solution/ops/tokenizer_filter.py"])


def test_secret_looking_files_are_refused(tree, eval_data, tmp_path):
    recipes = tree / "solution" / "recipes"
    for name in (".env", "deploy.pem", "id_rsa", "hf_token.txt"):
        (recipes / name).write_text("secret\n")
    secret_file = "looks like a secret (key, certificate or .env file); never packed, not even with --include"
    assert _plan(tree, eval_data).problems == [
        f"{recipes}/.env: {secret_file}", f"{recipes}/deploy.pem: {secret_file}",
        f"{recipes}/hf_token.txt: named like a secret; rename it, or name it with --include if it holds none",
        f"{recipes}/id_rsa: {secret_file}"]
    for name in (".env", "deploy.pem", "id_rsa"):
        (recipes / name).unlink()
    # a name like a secret's is packed when the user names it; a .env never is
    assert _zip_names(tree, eval_data, tmp_path, include=[recipes / "hf_token.txt"]) == \
        sorted(ONLINE_NAMES + ["solution/recipes/hf_token.txt"])
    (tree / "solution" / ".env").write_text("secret\n")
    assert _plan(tree, eval_data, include=[tree / "solution" / ".env"]).problems == [
        f"{tree}/solution/.env: {secret_file}", f"{recipes}/hf_token.txt: named like a secret; rename it, "
        "or name it with --include if it holds none"]


def test_large_solution_files_need_include(tree, eval_data, tmp_path):
    big = tree / "solution" / "recipes" / "model.bin"
    with big.open("wb") as f:
        f.truncate(MAX_SOLUTION_FILE_BYTES + 1)
    assert _plan(tree, eval_data).problems == [
        f"{big}: 10,000,001 bytes, over the 10,000,000-byte limit for solution/ files; "
        "name it with --include to pack it"]
    assert _zip_names(tree, eval_data, tmp_path, include=[big]) == sorted(ONLINE_NAMES + ["solution/recipes/model.bin"])


def test_zips_are_never_packed(tree, eval_data, tmp_path):
    earlier = tree / "solution" / "recipes" / "submit.zip"
    write_zip(_plan(tree, eval_data).entries, earlier, "online")  # an earlier pack written into the tree
    result = _plan(tree, eval_data)
    assert result.problems == [] and result.left_out == ["solution/recipes/submit.zip (zip archives are never packed)"]
    assert _zip_names(tree, eval_data, tmp_path) == ONLINE_NAMES
    assert _plan(tree, eval_data, include=[earlier]).problems == [f"{earlier}: zip archives are never packed"]


def test_include_names_files_of_the_tree(tree, eval_data, tmp_path):
    shard = tree / "output" / "eval_results" / F / "textvqa" / "1_0.jsonl"
    shard.write_text('{"question_id": "img0"}\n')
    assert _zip_names(tree, eval_data, tmp_path, include=[shard]) == \
        sorted(ONLINE_NAMES + [f"output/eval_results/{F}/textvqa/1_0.jsonl"])
    elsewhere = tmp_path / "notes.txt"
    elsewhere.write_text("x")
    assert _plan(tree, eval_data, include=[elsewhere, tree / "solution" / "recipes"]).problems == [
        f"{elsewhere}: --include names files under {tree / 'solution'} or {tree / 'output'} only",
        f"{tree / 'solution' / 'recipes'}: a folder; --include names files"]


def test_packed_jsonl_files_must_parse(tree, eval_data):
    pool = tree / "solution" / "recipes" / "pool.jsonl"
    pool.write_text('{"id": "1"}\n{"id": \n')
    processed = tree / "output" / "processed_data" / "processed_data.jsonl"
    processed.write_text('{"id": "1"}\n{"text": "no id"}\n{"id": ""}\n')
    problems = _plan(tree, eval_data, "offline").problems
    assert len(problems) == 2 and problems[0].startswith(f"{pool}:2: invalid JSON")
    assert problems[1] == f"{processed}: 2 samples without a string id (line 2, 3)"


def test_upload_is_opened_and_checked(tree, eval_data):
    eval_dir = tree / "output" / "eval_results" / F
    upload = eval_dir / "mmbench" / "answers_upload" / MMBENCH_SPLIT / f"{F}.xlsx"
    answers = eval_dir / "mmbench" / "answers" / MMBENCH_SPLIT / f"{F}.jsonl"
    good = upload.read_bytes()
    upload.write_bytes(good[:-100])  # the old pack shipped a corrupt upload file
    assert _plan(tree, eval_data).problems == [
        f"{upload}: not a readable .xlsx workbook (BadZipFile: File is not a zip file)"]
    upload.write_bytes(good)
    # answers newer than the upload
    write_run(eval_dir, eval_data, ["a", "b", "c", "d", "e"], {**MMBENCH, 0: "B", 2: "B"})
    assert _plan(tree, eval_data).problems == [f"{upload}: prediction differs from {answers} in 2 rows (index 0, 2)"]
    write_upload(eval_data.mmbench_tsv, answers, upload)
    sheet = pd.read_excel(upload, engine="openpyxl", na_filter=False)
    sheet.iloc[:-1].to_excel(upload, index=False, engine="openpyxl")
    assert _plan(tree, eval_data).problems == [f"{upload}: 1 of 6 TSV rows missing (1000001)"]


def test_zip_check_refusals(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("solution/readme.md", "x")
        archive.writestr("output/train.sh", "x")
        archive.writestr("notes.txt", "stray")
        archive.writestr("output/../../evil.sh", "x")
        link = zipfile.ZipInfo("solution/link")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
        archive.writestr("solution/.env", "HF_TOKEN=x")
        archive.writestr("solution/recipes/old.zip", "x")
    text = "\n".join(zip_problems(bad, "online"))
    assert "entry 'solution/.env' is a secret-looking file or a zip" in text
    assert "entry 'solution/recipes/old.zip' is a secret-looking file or a zip" in text
    assert "top level must be exactly ['output', 'solution']" in text
    assert "unsafe entry name 'output/../../evil.sh'" in text
    assert "symlink entry 'solution/link'" in text
    assert "MGM-2B-Finetune-*/ folder" in text


def test_find_experiment(tree):
    assert find_experiment(tree / "output") == "demo"
    (tree / "output" / "training_dirs" / "MGM-2B-Finetune-other").mkdir()
    with pytest.raises(ValueError, match="choose one with --exp"):
        find_experiment(tree / "output")


def test_pack_command(tree, eval_data):
    env = {**os.environ, "BSYNTH_ROOT": str(tree), "BSYNTH_OUTPUT": str(tree / "output"),
           "PYTHONPATH": str(TOOLKIT), "BSYNTH_EVAL_DATA_ROOT": str(eval_data.root)}
    (tree / "solution" / ".env").write_text("HF_TOKEN=x\n")
    (tree / "solution" / "notes.txt").write_text("how the pool was made\n")
    done = subprocess.run([sys.executable, "-m", "bettersynth", "pack", "--include", "solution/notes.txt"],
                          env=env, cwd=tree, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"output/training_dirs/{F}/finetune.log" in done.stdout and "-> " in done.stdout
    assert ("not packed (the zip takes solution/'s readme*, requirements.txt, recipes/ and ops/, and files named "
            "with --include):\n  - solution/.env (not on the allow-list)\n") in done.stderr
    assert sorted(zipfile.ZipFile(tree / "submit.zip").namelist()) == sorted(ONLINE_NAMES + ["solution/notes.txt"])
    (tree / "output" / "train.sh").unlink()
    failed = subprocess.run([sys.executable, "-m", "bettersynth", "pack", "--out", str(tree / "again.zip")],
                            env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "train.sh: missing" in failed.stderr
    assert not (tree / "again.zip").exists()
    checked = subprocess.run([sys.executable, "-m", "bettersynth", "pack", "--check", str(tree / "submit.zip")],
                             env=env, capture_output=True, text=True)
    assert checked.returncode == 0 and "layout ok" in checked.stdout


def test_a_proxy_run_is_refused(tree, eval_data):
    record = tree / "output" / "experiments" / "demo" / "run.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"exp_name": "demo", "proxy_pretrain_samples": null}\n')
    assert _plan(tree, eval_data).problems == []
    record.write_text('{"exp_name": "demo", "proxy_pretrain_samples": 1000}\n')
    assert _plan(tree, eval_data).problems == [
        f"demo is a proxy run (PROXY_PRETRAIN_SAMPLES=1000: pretrained on a subset of the capped data, {record}); "
        "only an official run can be submitted: rerun with PROXY_PRETRAIN_SAMPLES empty"]
