"""A proxy experiment at real size, timed end to end (issue 19): the main job with
PROXY_PRETRAIN_SAMPLES, the full finetune and both evals, on real-size random-weight models.

First builds a complete real asset layout under WORK/assets (``bettersynth.paths.AssetLayout``), in
the sizes of ``COUNTS["real"]``: the three model folders (``real_size_assets.write_model_folders``),
a seed pool of 24,000 samples (Data-Juicer jsonl + stage_1.json over web-size JPEGs, captions sized
so a sample is ~614 tokens as in train_throughput.py), 12,000 two-round finetuning conversations
(~700 tokens), TextVQA (5,000 questions over 3,166 images, with annotations) and MMBench (1,334
questions and their circular copies), the last two from the demo's builders at these counts. Each
part's completion marker holds its settings; a rerun builds only what is missing, was cut off or
was built with other settings. The build is not part of the timed job; the models are built
in a process of their own, so this driver holds no GPU memory while the job runs.

Then runs ``bash train_mgm_2b_stage_1.sh`` on it as an entrant would (BSYNTH_LAYOUT=real, RECIPE="",
the pool as PRETRAIN_DATASET, PROXY_PRETRAIN_SAMPLES, output under WORK/output), its output teed to
WORK/job.log, and writes WORK/proxy.json: its settings, the GPU, each invocation's wall time and exit
status, and each step's seconds from the run record. Random weights never emit <eos>, so the eval
answers stop at ``--eval-max-new-tokens`` (BSYNTH_EVAL_MAX_NEW_TOKENS; 8 by default, the realistic
answer length bench/eval_throughput.py takes). The job resumes step by step, so a run cut off by a
time limit is continued by the same command (its wall time is then the sum of the invocations); a
finished one is not run again, and other settings (counts, --tiny, the answer cap) start again with a
new output tree.

    python bench/proxy_experiment.py --work /tmp/proxy                  # one GPU, real sizes (~18 min, H100)
    python bench/proxy_experiment.py --work /tmp/proxy-tiny --tiny      # CPU check: tiny widths and sets (~4 min)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from bettersynth.arguments import positive_int
from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN
from bettersynth.demo.eval_sets import build_mmbench, build_textvqa
from bettersynth.demo.files import write_jsonl
from bettersynth.experiments.record import read_run_record, record_file
from bettersynth.paths import AssetLayout

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_size_assets import write_finetune_json, write_images, write_model_folders, write_pretrain_json  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXP_NAME = "proxy"
DONE = ".proxy-part-complete"
COUNTS = {  # the real-size run; --tiny is the CPU check of the same path
    "real": {"pool": 24_000, "pretrain_samples": 20_000, "finetune_samples": 12_000, "pool_images": 8192,
             "finetune_images": 4096, "textvqa_images": 3166, "textvqa_questions": 5000, "mmbench_base": 1334},
    "tiny": {"pool": 320, "pretrain_samples": 256, "finetune_samples": 128, "pool_images": 48,
             "finetune_images": 32, "textvqa_images": 10, "textvqa_questions": 16, "mmbench_base": 8},
}


def part(folder: Path, settings: dict, build, *args) -> str:
    """``build(*args)`` into an emptied ``folder`` unless its completion marker holds ``settings``
    (a part built with other counts or sizes, or cut off halfway, is built again); "built" or "kept"."""
    marker = folder / DONE
    wanted = json.dumps(settings, sort_keys=True)
    if marker.is_file() and marker.read_text() == wanted:
        return "kept"
    if folder.exists():
        shutil.rmtree(folder)
    build(*args)
    marker.write_text(wanted)
    return "built"


def calibrated_words(work: Path, stage: str, llm_dir: Path) -> int:
    """Caption / answer words giving ~614 (pretrain) or ~700 (finetune) tokens, as train_throughput.py."""
    from train_throughput import calibrate_words
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    names = write_images(work / "calibration", 8)
    (work / "calibration" / "data").mkdir(exist_ok=True)
    return calibrate_words(work / "calibration", stage, names, tokenizer, 614 if stage == "pretrain" else 700)


def write_seed_pool(layout: AssetLayout, samples: int, images: int, words: int) -> None:
    """stage_1.json (LLaVA records) and the Data-Juicer jsonl of the same ids, captions and images."""
    names = write_images(layout.seed_dir, images)
    write_pretrain_json(layout.stage1_json, names, samples, caption_words=words)
    records = json.loads(layout.stage1_json.read_text())
    write_jsonl(layout.seed_jsonl, ({"id": r["id"], "images": [r["image"]],
                                     "text": f"{DJ_IMAGE_TOKEN}\n{r['conversations'][1]['value']} {DJ_EOC_TOKEN}"}
                                    for r in records))


def write_finetune_set(layout: AssetLayout, samples: int, images: int, words: int) -> None:
    write_finetune_json(layout.finetune_json, write_images(layout.finetune_dir, images), samples, answer_words=words)


def write_textvqa(layout: AssetLayout, images: int, questions: int) -> None:
    build_textvqa(layout.textvqa_questions.parent, layout.textvqa_questions.name, layout.textvqa_images.name,
                  layout.textvqa_annotations.name, 1, images, questions)


def write_mmbench(layout: AssetLayout, base: int) -> None:
    build_mmbench(layout.mmbench_tsv.parent, layout.mmbench_tsv.name, 2, base)


def build_assets(work: Path, counts: dict[str, int], tiny: bool) -> dict[str, str]:
    """The whole real layout under WORK/assets; returns each part's "built" / "kept"."""
    layout = AssetLayout(work / "assets")
    folders = {"llm": layout.llm_dir, "clip": layout.vision_tower_dir, "aux": layout.vision_tower_aux_dir}
    # in a process of its own: the models are built on the GPU, and memory this driver kept would be
    # missing to the job (12 GiB once, enough to run two evals out of memory)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as builder:
        done = {"models": builder.submit(part, layout.model_zoo, {"tiny": tiny}, write_model_folders, folders, 0,
                                         tiny).result()}
    textvqa_counts = (counts["textvqa_images"], counts["textvqa_questions"])
    with ProcessPoolExecutor(2) as pool:  # the eval sets draw their images one by one: beside the rest
        textvqa = pool.submit(part, layout.textvqa_questions.parent, {"textvqa": textvqa_counts}, write_textvqa,
                              layout, *textvqa_counts)
        mmbench = pool.submit(part, layout.mmbench_tsv.parent, {"mmbench": counts["mmbench_base"]}, write_mmbench,
                              layout, counts["mmbench_base"])
        pool_settings = {"samples": counts["pool"], "images": counts["pool_images"],
                         "words": calibrated_words(work, "pretrain", layout.llm_dir)}
        finetune_settings = {"samples": counts["finetune_samples"], "images": counts["finetune_images"],
                             "words": calibrated_words(work, "finetune", layout.llm_dir)}
        done["seed pool"] = part(layout.seed_dir, pool_settings, write_seed_pool, layout, *pool_settings.values())
        done["finetune set"] = part(layout.finetune_dir, finetune_settings, write_finetune_set, layout,
                                    *finetune_settings.values())
        done["textvqa"], done["mmbench"] = textvqa.result(), mmbench.result()
    return done


def job_environment(work: Path, pretrain_samples: int, eval_max_new_tokens: int) -> dict[str, str]:
    layout = AssetLayout(work / "assets")
    return dict(os.environ, BSYNTH_ROOT=str(REPO), BSYNTH_ASSETS_ROOT=str(layout.root), BSYNTH_LAYOUT="real",
                BSYNTH_OUTPUT=str(work / "output"), BSYNTH_EVAL_MAX_NEW_TOKENS=str(eval_max_new_tokens),
                EXP_NAME=EXP_NAME, RECIPE="", PRETRAIN_DATASET=str(layout.seed_jsonl),
                PRETRAIN_DATASET_IMAGE_PATH=str(layout.seed_dir), PROXY_PRETRAIN_SAMPLES=str(pretrain_samples))


def run_job(work: Path, environment: dict[str, str]) -> dict:
    """One invocation of the main job, its output teed to WORK/job.log; wall seconds and exit status."""
    start = time.time()
    with open(work / "job.log", "a", encoding="utf-8") as log:
        job = subprocess.Popen(["bash", str(REPO / "train_mgm_2b_stage_1.sh")], cwd=REPO, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in job.stdout:
            sys.stdout.write(line)
            log.write(line)
            log.flush()
        status = job.wait()
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)),
            "seconds": round(time.time() - start, 1), "exit": status}


def summary_of(work: Path, invocations: list[dict]) -> dict:
    path = record_file(work / "output", EXP_NAME)
    record = read_run_record(path) if path.is_file() else {}
    mmbench_rows = sum(1 for _ in open(AssetLayout(work / "assets").mmbench_tsv, encoding="utf-8")) - 1
    return {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "mmbench_rows": mmbench_rows, "invocations": invocations,
            "job_seconds": round(sum(i["seconds"] for i in invocations), 1),
            "steps": record.get("steps", {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="assets, output, job.log and proxy.json go here")
    parser.add_argument("--tiny", action="store_true", help="tiny widths and sets: a CPU check of the same path")
    parser.add_argument("--pretrain-samples", type=positive_int, default=None,
                        help="PROXY_PRETRAIN_SAMPLES (default: 20,000; --tiny: 256)")
    parser.add_argument("--eval-max-new-tokens", type=positive_int, default=8)
    args = parser.parse_args()
    counts = dict(COUNTS["tiny" if args.tiny else "real"])
    if args.pretrain_samples:
        counts["pretrain_samples"] = args.pretrain_samples
    settings = {"counts": counts, "tiny": args.tiny, "eval_max_new_tokens": args.eval_max_new_tokens}
    if args.work.exists() and not args.work.is_dir():
        parser.error(f"--work {args.work} is a file: give a folder")
    args.work.mkdir(parents=True, exist_ok=True)
    summary_path = args.work / "proxy.json"
    try:
        previous = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    except (OSError, ValueError) as error:
        parser.error(f"{summary_path} cannot be read ({error}): remove it, and {args.work / 'output'} to measure again")
    if previous and previous.get("settings") != settings:
        print(f"{summary_path}: made with other settings; starting again with a new output tree")
        shutil.rmtree(args.work / "output", ignore_errors=True)
        previous = {}
    invocations = previous.get("invocations", [])
    if invocations and invocations[-1]["exit"] == 0:
        print(f"{summary_path}: this experiment finished already ({previous['job_seconds']} s); "
              f"remove it and {args.work / 'output'} to measure again")
        return 0
    start = time.time()
    print(f"assets: {build_assets(args.work, counts, args.tiny)} in {time.time() - start:.0f} s", flush=True)
    invocations.append(run_job(args.work, job_environment(args.work, counts["pretrain_samples"],
                                                          args.eval_max_new_tokens)))
    summary = {"settings": settings, **summary_of(args.work, invocations)}
    summary_path.write_text(json.dumps(summary, indent=1))
    print(json.dumps({key: summary[key] for key in ("gpu", "job_seconds", "steps", "invocations")}, indent=1))
    return invocations[-1]["exit"]

if __name__ == "__main__":
    sys.exit(main())
