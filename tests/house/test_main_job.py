"""The main job, exactly as a new user runs it: `bash train_mgm_2b_stage_1.sh` on the demo default.

One run is killed during pretraining (after its first checkpoint) and started again: the second
run must resume the stage, finish the whole pipeline and leave every file the organisers and the
README promise; `bsynth pack` must then build a valid zip. A wrong per-GPU batch must stop the job
before any data or training step, with the check's message and a non-zero exit; "auto" batch
values are resolved by `bsynth plan-batch` first; a TORCH_COMPILE other than True or False stops it
before anything. The baseline without a recipe (trained on the seed pool's own jsonl, its derived
files written into the image folder) is trained once: a second run skips every step.

Outputs and demo assets go to a temporary folder (BSYNTH_OUTPUT, BSYNTH_DEMO_ROOT), so the test
leaves the checkout untouched. Slow (about 10 minutes on 2 cores); .ci/run runs it.

Run: python -m pytest tests/house/test_main_job.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from bettersynth.provenance import read_record

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "train_mgm_2b_stage_1.sh"
EXP = "MGM-2B-Finetune-demo"


def job_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "BSYNTH_OUTPUT": str(tmp / "output"), "BSYNTH_DEMO_ROOT": str(tmp / "demo"),
            "PRETRAIN_DATASET": str(tmp / "output" / "processed_data" / "processed_data.jsonl"),
            "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def test_wrong_batch_stops_before_any_data_step(tmp_path: Path):
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env=job_env(tmp_path, DEMO_PRETRAIN_BATCH_SIZE_PER_GPU="3"))
    assert result.returncode != 0
    # demo global batches are 8 and 4 per training process: one process here (no GPU)
    assert ("Demo settings: pretrain global batch 8 (3 per GPU x 2 accumulation x 1 process(es)), "
            "finetune global batch 4 (2 x 2 x 1)") in result.stdout
    assert "check the pretrain global batch" in result.stdout
    assert "recipe" not in result.stdout.split("check the pretrain global batch")[1]
    assert not (tmp_path / "output" / "training_dirs").exists()
    message = result.stdout + result.stderr
    assert "3" in message and "8" in message, message[-2000:]


def test_auto_batch_values_are_planned_then_checked(tmp_path: Path):
    # demo global batches: 8 and 4 on one (CPU) process. Pretrain "auto x auto" becomes 8 x 1 (16
    # does not divide 8); finetune accumulation "auto" with micro-batch 3 cannot split 4 and stops
    # the job before any data step, with the plan's message.
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env=job_env(tmp_path, DEMO_PRETRAIN_BATCH_SIZE_PER_GPU="auto",
                                        DEMO_PRETRAIN_GRADIENT_ACCUMULATION_STEPS="auto",
                                        DEMO_FINETUNE_BATCH_SIZE_PER_GPU="3",
                                        DEMO_FINETUNE_GRADIENT_ACCUMULATION_STEPS="auto"))
    assert result.returncode == 1
    assert "pretrain: 8 per GPU x 1 accumulation x 1 process(es)" in result.stderr
    assert "bsynth plan-batch finetune: micro-batch 3 does not divide the 4 samples per GPU" in result.stderr
    assert "check the pretrain global batch" not in result.stdout
    assert not (tmp_path / "output" / "training_dirs").exists()


def test_bad_torch_compile_value_stops_before_anything(tmp_path: Path):
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env=job_env(tmp_path, TORCH_COMPILE="yes please"))
    assert result.returncode == 2
    assert "TORCH_COMPILE must be True or False, got 'yes please'" in result.stderr
    assert result.stdout == "" and not (tmp_path / "demo").exists() and not (tmp_path / "output").exists()


# The finished demo job's output tree: the official kit's files, plus each artefact's record of what
# made it (*.made-from.json, made-from.json), the validation report, the run record and the lock.
# Folders whose content varies (checkpoints, Data-Juicer's work folder and report) are named only.
EXPECTED_TREE = sorted([
    ".bsynth.lock", "train.sh", "experiments/demo/run.json",
    "processed_data/processed_data.jsonl", "processed_data/processed_data.jsonl.made-from.json",
    "processed_data/processed_data.jsonl.validation.json",
    "processed_data/processed_data.jsonl.validation.json.made-from.json",
    "processed_data/processed_data.jsonl-200k.jsonl", "processed_data/processed_data.jsonl-200k.jsonl.made-from.json",
    "processed_data/processed_data.jsonl-200k.jsonl.json",
    "processed_data/processed_data.jsonl-200k.jsonl.json.made-from.json",
    "processed_data/processed_data_report/", "processed_data/processed_data_work/",
    *[f"training_dirs/MGM-2B-Pretrain-demo/{name}" for name in (
        "checkpoint-*/", "config.json", "made-from.json", "mm_projector.bin", "pretrain.log", "train.log",
        "train_args.json", "trainer_state.json", "training_complete.json")],
    *[f"training_dirs/{EXP}/{name}" for name in (
        "checkpoint-*/", "config.json", "finetuning.log", "generation_config.json", "made-from.json",
        "model.safetensors", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "train.log",
        "train_args.json", "trainer_state.json", "training_complete.json")],
    f"eval_results/{EXP}/scores.json", f"eval_results/{EXP}/scores.json.made-from.json",
    f"eval_results/{EXP}/textvqa/1_0.jsonl", f"eval_results/{EXP}/textvqa/bm1.jsonl",
    f"eval_results/{EXP}/textvqa/bm1.jsonl.made-from.json",
    f"eval_results/{EXP}/mmbench/answers/mmbench_dev_20230712/{EXP}.jsonl",
    f"eval_results/{EXP}/mmbench/answers_upload/mmbench_dev_20230712/{EXP}.xlsx",
    f"eval_results/{EXP}/mmbench/answers_upload/mmbench_dev_20230712/{EXP}.xlsx.made-from.json",
    f"eval_results/{EXP}/mmbench/shards/mmbench_dev_20230712/1_0.jsonl",
])


def output_tree(output: Path) -> list[str]:
    """Relative paths under ``output``; checkpoint folders as ``checkpoint-*/``, Data-Juicer's folders by name."""
    entries = set()
    for path in output.rglob("*"):
        relative = path.relative_to(output)
        parts = relative.parts
        if len(parts) >= 3 and parts[0] == "training_dirs" and parts[2].startswith("checkpoint-"):
            entries.add(f"{parts[0]}/{parts[1]}/checkpoint-*/")
        elif len(parts) >= 2 and parts[0] == "processed_data" and parts[1].endswith(("_work", "_report")):
            entries.add(f"{parts[0]}/{parts[1]}/")
        elif path.is_file():
            entries.add(relative.as_posix())
    return sorted(entries)


def run_until_checkpoint_then_kill(tmp_path: Path) -> str:
    """Starts the job, kills its whole process group once pretraining has saved a checkpoint."""
    log_path = tmp_path / "first_run.log"
    with open(log_path, "w") as log:
        job = subprocess.Popen(["bash", str(SCRIPT)], cwd=tmp_path, env=job_env(tmp_path), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 1200
        checkpoint_seen = False
        while time.monotonic() < deadline and job.poll() is None:
            time.sleep(2)
            pretrain = tmp_path / "output" / "training_dirs" / "MGM-2B-Pretrain-demo"
            if any(pretrain.glob("checkpoint-*")):
                checkpoint_seen = True
                break
        # a second job in the same output tree stops at once, naming the running one
        second = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=job_env(tmp_path), capture_output=True,
                                text=True, timeout=300)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    output = log_path.read_text()
    assert checkpoint_seen, "pretraining never saved a checkpoint:\n" + output[-3000:]
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-3000:]
    assert (f"{(tmp_path / 'output').resolve()} is in use by PID {job.pid} (bash train_mgm_2b_stage_1.sh, "
            "EXP_NAME=demo, started") in second.stdout
    assert "training_dirs" not in second.stdout
    return output


def test_killed_job_resumes_and_completes_then_packs(tmp_path: Path):
    run_until_checkpoint_then_kill(tmp_path)
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=job_env(tmp_path), capture_output=True,
                            text=True, timeout=2400)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert "resuming automatically from" in result.stdout
    assert "[recipe] skipped: " in result.stdout, "the finished recipe step must not run again"
    assert "[skip] validate: " in result.stdout and "[skip] cap: " in result.stdout

    output = tmp_path / "output"
    pretrain = output / "training_dirs" / "MGM-2B-Pretrain-demo"
    finetune = output / "training_dirs" / EXP
    for path in [output / "train.sh", pretrain / "pretrain.log", pretrain / "mm_projector.bin",
                 pretrain / "trainer_state.json", finetune / "finetuning.log", finetune / "config.json",
                 finetune / "tokenizer_config.json", output / "eval_results" / EXP / "textvqa" / "bm1.jsonl",
                 output / "eval_results" / EXP / "mmbench" / "answers" / "mmbench_dev_20230712" / f"{EXP}.jsonl",
                 output / "eval_results" / EXP / "mmbench" / "answers_upload" / "mmbench_dev_20230712" / f"{EXP}.xlsx",
                 output / "eval_results" / EXP / "scores.json"]:
        assert path.is_file() and path.stat().st_size > 0, f"missing or empty: {path}"
    assert list(finetune.glob("*.safetensors")), "the finetuned weights are missing"
    questions = (tmp_path / "demo" / "toolkit" / "training" / "data" / "eval_stage_1" / "textvqa" /
                 "llava_textvqa_val_v051_ocr.jsonl").read_text().splitlines()
    answers = (output / "eval_results" / EXP / "textvqa" / "bm1.jsonl").read_text().splitlines()
    assert [json.loads(a)["question_id"] for a in answers] == [json.loads(q)["question_id"] for q in questions]
    scores = json.loads((output / "eval_results" / EXP / "scores.json").read_text())
    assert scores["textvqa"]["num_questions"] == len(questions)
    assert (output / "train.sh").read_text() == SCRIPT.read_text()

    assert output_tree(output) == EXPECTED_TREE
    # pretraining was made by two runs, the killed one (until its checkpoint) and the resumed one; both count
    killed, resumed = read_record(pretrain)["made_during"]
    assert killed[0] < killed[1] <= resumed[0] < resumed[1]
    record = json.loads((output / "experiments" / "demo" / "run.json").read_text())
    assert record["steps"]["pretrain"] == pytest.approx(killed[1] - killed[0] + resumed[1] - resumed[0], abs=0.1)

    zip_path = tmp_path / "submit.zip"
    packed = subprocess.run(["bsynth", "pack", "--exp", "demo", "--out", str(zip_path)], cwd=REPO_ROOT,
                            env=job_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert packed.returncode == 0, packed.stdout[-3000:] + packed.stderr[-3000:]
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"solution", "output"}
    assert f"output/training_dirs/{EXP}/finetune.log" in names
    assert f"output/eval_results/{EXP}/textvqa/bm1.jsonl" in names

    rerun = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=job_env(tmp_path), capture_output=True,
                           text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "taking over the lock" not in rerun.stdout  # the finished job released it
    assert rerun.stdout.count("already holds a finished") == 2, "a finished stage must not be trained again"
    for name in ("textvqa", "mmbench", "scores"):
        assert f"[skip] {name}: " in rerun.stdout
    assert json.loads((output / "experiments" / "demo" / "run.json").read_text())["steps"] == record["steps"]

    # another recipe: its export, the cap, the conversion and pretraining are made again, saying why
    # (the job is stopped once pretraining has said it; the rest follows from the same records)
    recipe_output = rerun_with_another_recipe_until_pretrain_restarts(tmp_path)
    assert "[recipe] running: " in recipe_output and "recipe operators changed (sha" in recipe_output
    assert "==> cap: curated data changed (sha" in recipe_output
    assert "==> convert: capped data changed (sha" in recipe_output
    assert "pretrain: training data changed (sha" in recipe_output and "training again" in recipe_output


def test_the_baseline_without_a_recipe_is_trained_once(tmp_path: Path):
    """RECIPE="" trains on the seed pool's own jsonl: the job's validation report, capped file and LLaVA
    json land beside it, in the image folder; a second run must still find everything made from the
    same inputs (an image folder whose fingerprint counted them retrained every time)."""
    from bettersynth.paths import AssetLayout

    seed_jsonl = AssetLayout(tmp_path / "demo").seed_jsonl
    env = job_env(tmp_path, RECIPE="", PRETRAIN_DATASET=str(seed_jsonl))
    first = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-3000:]
    assert (seed_jsonl.parent / f"{seed_jsonl.name}-200k.jsonl.json").is_file()  # written in the image folder
    record_path = tmp_path / "output" / "experiments" / "demo" / "run.json"
    first_record = json.loads(record_path.read_text())
    assert set(first_record["steps"]) == {"validate", "cap", "convert", "pretrain", "finetune", "textvqa", "mmbench",
                                          "scores"}
    # on CPU one step after another: the wall time is their sum (each rounded to 0.1 s)
    assert first_record["wall_time_s"] == pytest.approx(sum(first_record["steps"].values()), abs=0.05 * 8)
    assert first_record["steps"]["pretrain"] > 0
    again = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-3000:]
    assert again.stdout.count("already holds a finished") == 2, again.stdout[-5000:]
    for name in ("validate", "cap", "convert", "textvqa", "mmbench", "scores"):
        assert f"[skip] {name}: " in again.stdout, name
    record = json.loads(record_path.read_text())
    assert record["recipe"] is None and record["notes"] == []
    # every step reused: the run's times are still those of the run that made them
    assert record["steps"] == first_record["steps"] and record["wall_time_s"] == first_record["wall_time_s"]
    assert record["stages"]["pretrain"]["status"] == record["stages"]["finetune"]["status"] == "finished"
    assert set(record["scores"]) == {"textvqa", "mmbench"}


def rerun_with_another_recipe_until_pretrain_restarts(tmp_path: Path) -> str:
    log_path = tmp_path / "another_recipe.log"
    with open(log_path, "w") as log:
        job = subprocess.Popen(["bash", str(SCRIPT)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                               env=job_env(tmp_path, RECIPE="solution/recipes/cpu_prefilter.yaml"),
                               start_new_session=True)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and job.poll() is None and "training again" not in log_path.read_text():
            time.sleep(1)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    return log_path.read_text()


pytestmark = pytest.mark.slow
