"""``bsynth recipe run``: one Data-Juicer recipe over a pool, offline, with a clean failure story.

    bsynth recipe run solution/recipes/clip_rank_recaption.yaml \
        --dataset input/pretrain_stage_1_10k/mgm_pretrain_stage_1_10k.jsonl \
        --export output/processed_data/processed_data.jsonl

Steps: stage the input (absolute image paths, every line checked) -> resolve the recipe (variables,
operator paths, forced run settings; see bettersynth.recipes.recipe) -> run Data-Juicer in a child
process (bettersynth.recipes.worker) pointed at the recipe models (DATA_JUICER_EXTERNAL_MODELS_HOME),
with caches under the toolkit's cache folder, the hub offline and package installs disabled ->
check nothing was installed -> write the export with image paths relative to the image root to a
temporary file -> report (bettersynth.recipes.report) -> rename the export into place.

A failed or interrupted run leaves no export (a stale one from an earlier run is removed first),
exits 1 and names the failing operator; run.json in the work folder records what happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bettersynth import paths
from bettersynth.recipes import installs
from bettersynth.recipes.config import RecipeRun
from bettersynth.recipes.pool import PoolError, stage_input, write_export
from bettersynth.recipes.recipe import RecipeError, resolve_recipe, write_resolved

ECHOED = ("| WARNING ", "| ERROR ", "| CRITICAL ", "OP [", "bsynth recipe:")


def say(message: str) -> None:
    print(f"[recipe] {message}", flush=True)


def worker_environment(run: RecipeRun, config: dict) -> dict[str, str]:
    """The Data-Juicer process's environment: models, caches, offline, no installs, importable ops."""
    cache = paths.cache_dir()
    env = installs.no_install_environment(os.environ)
    op_parents = [str(Path(path).parent) for path in config["custom_operator_paths"]]
    env.update(
        DATA_JUICER_EXTERNAL_MODELS_HOME=str(run.models_root),
        DATA_JUICER_CACHE_HOME=str(cache / "data_juicer"), CACHE_HOME=str(cache),
        HF_DATASETS_CACHE=str(cache / "hf_datasets"),
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
        # worker processes started by spawn/forkserver (Data-Juicer's choice for GPU ops) import
        # the custom operators by module name
        PYTHONPATH=os.pathsep.join(op_parents + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else op_parents),
    )
    return env


def run_worker(run: RecipeRun, env: dict[str, str], progress: Path, verbose: bool) -> int:
    """Run Data-Juicer; its whole output goes to run.log, the important lines to the terminal."""
    command = [sys.executable, "-m", "bettersynth.recipes.worker", str(run.resolved_recipe), str(progress)]

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Ctrl-C and SIGTERM reach this process; it stops the Data-Juicer process group
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        # its own process group, so that stopping it also stops what it started (decoding workers, ...)
        with run.log.open("w", encoding="utf-8") as log, subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace", start_new_session=True) as child:
            try:
                for line in child.stdout:
                    log.write(line)
                    if verbose or any(marker in line for marker in ECHOED):
                        print(line, end="", flush=True)
            except BaseException:
                os.killpg(child.pid, signal.SIGKILL)
                raise
            return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_summary(run: RecipeRun, summary: dict) -> None:
    run.summary.write_text(json.dumps(summary, indent=2) + "\n")


def prepare_folders(run: RecipeRun) -> None:
    """Remove the outputs of an earlier run of this export, so nothing stale looks complete."""
    for stale in (run.export, run.export.with_name(run.export.name + ".partial")):
        if stale.exists():
            say(f"removing the earlier export {stale}")
            stale.unlink()
    for folder in (run.work_dir, run.report_dir):
        if folder.exists():
            shutil.rmtree(folder)
    run.work_dir.mkdir(parents=True)


def run_recipe(run: RecipeRun, verbose: bool = False) -> int:
    """Run ``run``; 0 when the export and report are written, 1 otherwise (the reason is printed)."""
    from bettersynth.recipes.report import build_report

    start = time.time()
    say(f"{run.recipe} on {run.dataset} -> {run.export} (executor {run.executor}, models {run.models_root})")
    prepare_folders(run)
    summary: dict = {"recipe": str(run.recipe), "recipe_sha256": file_sha256(run.recipe),
                     "dataset": str(run.dataset), "image_root": str(run.image_root),
                     "models_root": str(run.models_root), "executor": run.executor, "np": run.np,
                     "export": str(run.export), "status": "failed"}
    try:
        summary["input_samples"] = stage_input(run.dataset, run.image_root, run.staged_dataset)
        config, notes = resolve_recipe(run, os.environ)
    except (PoolError, RecipeError) as error:
        summary["error"] = str(error)
        write_summary(run, summary)
        say(f"FAILED before Data-Juicer started: {error}")
        return 1
    for note in notes:
        say(note)
    write_resolved(config, run.resolved_recipe)
    progress_path = run.work_dir / "progress.json"
    before = installs.installed_distributions()
    status = run_worker(run, worker_environment(run, config), progress_path, verbose)
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else {}
    summary.update(ops=progress.get("ops", []), loaded_samples=progress.get("loaded_samples"),
                   failed_op=progress.get("failed_op"), error=progress.get("error"))
    problems = installs.distribution_changes(before, installs.installed_distributions())
    problems += [f"Data-Juicer tried to install {package}"
                 for package in installs.install_attempts(run.log.read_text(errors="replace"))]
    if problems:
        summary["install_problems"] = problems
        write_summary(run, summary)
        say("FAILED: packages must not be installed at run time (pin them instead): " + "; ".join(problems))
        return 1
    if status != 0:
        if not progress:
            summary["error"] = f"the Data-Juicer process ended with status {status} before reporting"
        write_summary(run, summary)
        where = f" in operator {summary['failed_op']}" if summary.get("failed_op") else ""
        say(f"FAILED{where}: {summary.get('error')} (full log: {run.log})")
        return 1
    partial = run.export.with_name(run.export.name + ".partial")
    try:
        summary["output_samples"] = write_export(run.dj_export, run.image_root, partial)
        if summary["output_samples"] == 0:
            summary["error"] = "the recipe kept no samples"
            write_summary(run, summary)
            say(f"FAILED: the recipe kept none of the {summary['input_samples']} samples (see the per-op counts "
                f"in {run.summary}); an empty pool cannot be trained on")
            return 1
        build_report(partial, summary, run.report_dir)
        os.replace(partial, run.export)
    except PoolError as error:
        summary["error"] = str(error)
        write_summary(run, summary)
        say(f"FAILED reading Data-Juicer's export: {error}")
        return 1
    finally:
        partial.unlink(missing_ok=True)
    summary.update(status="complete", seconds=round(time.time() - start, 3))
    write_summary(run, summary)
    say(f"done in {summary['seconds']:.1f} s: {summary['input_samples']} -> {summary['output_samples']} samples; "
        f"export {run.export}; report {run.report_dir / 'report.html'}")
    return 0
