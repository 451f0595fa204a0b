"""``bsynth pack``: the submission zip's layout, its checks and its refusals.

    python -m pytest tests/eval/test_submit.py -q
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bettersynth.eval.mmbench import write_upload
from bettersynth.paths import MMBENCH_SPLIT
from bettersynth.submit import find_experiment, log_problem, plan, write_zip, zip_problems

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
    (output / "processed_data" / "synthetic_images").mkdir(parents=True)
    (output / "processed_data" / "processed_data.jsonl").write_text('{"id": "1"}\n')
    (output / "processed_data" / "synthetic_images" / "s1.jpg").write_bytes(b"jpeg")
    files = write_run(output / "eval_results" / F, eval_data, ["a", "b", "c", "d", "e"], MMBENCH)
    write_upload(eval_data.mmbench_tsv, files.mmbench_answers(MMBENCH_SPLIT), files.mmbench_upload(MMBENCH_SPLIT))
    return root


def _plan(tree, eval_data, round_name="online"):
    return plan(round_name, "demo", MMBENCH_SPLIT, str(eval_data.root), tree / "solution", tree / "output")


def test_online_zip_layout(tree, eval_data, tmp_path):
    entries, problems = _plan(tree, eval_data)
    assert problems == []
    out = tmp_path / "submit.zip"
    write_zip(entries, out, "online")
    names = sorted(zipfile.ZipFile(out).namelist())
    assert names == sorted([
        "solution/readme.md", "solution/requirements.txt", "solution/recipes/r.yaml",
        "output/train.sh",
        f"output/training_dirs/{P}/pretrain.log",
        f"output/training_dirs/{F}/finetune.log",
        f"output/eval_results/{F}/textvqa/bm1.jsonl",
        f"output/eval_results/{F}/mmbench/answers/{MMBENCH_SPLIT}/{F}.jsonl",
        f"output/eval_results/{F}/mmbench/answers_upload/{MMBENCH_SPLIT}/{F}.xlsx",
    ])
    log = zipfile.ZipFile(out).read(f"output/training_dirs/{F}/finetune.log").decode()
    assert log == FINISHED_LOG
    assert zip_problems(out, "online") == []
    assert zip_problems(out, "offline")  # the online zip lacks the offline files


def test_offline_zip_adds_data_and_weights(tree, eval_data, tmp_path):
    entries, problems = _plan(tree, eval_data, "offline")
    assert problems == []
    names = {entry.arcname for entry in entries}
    assert {"output/processed_data/processed_data.jsonl", "output/processed_data/synthetic_images/s1.jpg",
            f"output/training_dirs/{P}/mm_projector.bin", f"output/training_dirs/{F}/model.safetensors"} <= names
    write_zip(entries, tmp_path / "offline.zip", "offline")
    assert zip_problems(tmp_path / "offline.zip", "offline") == []


def test_missing_and_empty_files_are_listed(tree, eval_data):
    (tree / "output" / "train.sh").unlink()
    (tree / "output" / "training_dirs" / P / "pretrain.log").write_text("")
    (tree / "output" / "training_dirs" / F / "model.safetensors").unlink()
    _, problems = _plan(tree, eval_data, "offline")
    text = "\n".join(problems)
    assert "train.sh: missing" in text
    assert "pretrain.log: empty" in text
    assert "no model*.safetensors" in text


def test_incomplete_logs(tree, eval_data):
    log = tree / "output" / "training_dirs" / F / "finetuning.log"
    log.write_text("step 1/100 loss 2.0\n")
    assert "incomplete log" in log_problem(log)
    log.write_text(FINISHED_LOG + "Traceback (most recent call last):\n  boom\n")
    assert "Traceback follows" in log_problem(log)
    log.write_text("Traceback (most recent call last):\n  crash\nresuming\n" + FINISHED_LOG)
    assert log_problem(log) is None  # a crash, then a resumed run that finished
    log.write_text(FINISHED_LOG + "INFO /x already holds a finished finetune stage (done); nothing to do.\n")
    assert log_problem(log) is None  # the job re-run on a finished stage appends this
    log.write_text("step 100/100\n{'train_runtime': 3600.1, 'train_loss': 1.2}\n")
    assert log_problem(log) is None  # an official-kit (Hugging Face trainer) log
    log.write_text("step 1/100 loss 2.0\n")
    _, problems = _plan(tree, eval_data)
    assert any("finetuning.log: incomplete log" in p for p in problems)


def test_answer_counts_must_match_questions(tree, eval_data):
    bm1 = tree / "output" / "eval_results" / F / "textvqa" / "bm1.jsonl"
    bm1.write_text("\n".join(bm1.read_text().splitlines()[:-1]) + "\n")
    _, problems = _plan(tree, eval_data)
    assert any("bm1.jsonl: 4 answers for 5 questions" in p for p in problems)


def test_symlinks_are_refused(tree, eval_data, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the submission")
    (tree / "solution" / "link.txt").symlink_to(outside)
    _, problems = _plan(tree, eval_data)
    assert any("link.txt: symlinks are not packed" in p for p in problems)


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
    text = "\n".join(zip_problems(bad, "online"))
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
    done = subprocess.run([sys.executable, "-m", "bettersynth", "pack"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"output/training_dirs/{F}/finetune.log" in done.stdout and "-> " in done.stdout
    assert (tree / "submit.zip").is_file()
    (tree / "output" / "train.sh").unlink()
    failed = subprocess.run([sys.executable, "-m", "bettersynth", "pack", "--out", str(tree / "again.zip")],
                            env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "train.sh: missing" in failed.stderr
    assert not (tree / "again.zip").exists()
    checked = subprocess.run([sys.executable, "-m", "bettersynth", "pack", "--check", str(tree / "submit.zip")],
                             env=env, capture_output=True, text=True)
    assert checked.returncode == 0 and "layout ok" in checked.stdout
