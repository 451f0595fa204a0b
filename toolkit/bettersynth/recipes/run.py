"""``bsynth recipe run``: one Data-Juicer recipe over a pool, offline, losing nothing when it fails.

    bsynth recipe run solution/recipes/clip_rank_recaption.yaml \
        --dataset input/pretrain_stage_1_10k/mgm_pretrain_stage_1_10k.jsonl \
        --export output/processed_data/processed_data.jsonl [--skip-unchanged]

Steps: stage the input (absolute image paths, every line checked) -> resolve the recipe (variables,
operator paths, forced run settings; see bettersynth.recipes.recipe) -> run Data-Juicer in a child
process (bettersynth.recipes.worker; with ``--executor ray``, the leading operators Ray runs on Ray
and the rest on the default executor after it: bettersynth.recipes.stages) pointed at the recipe
models (DATA_JUICER_EXTERNAL_MODELS_HOME), with caches under the toolkit's cache folder, the hub
offline and package installs disabled ->
check nothing was installed -> write the export with image paths relative to the image root ->
report (bettersynth.recipes.report) -> commit.

Images an operator draws (``fast_image_regeneration_mapper``) go to ``DJ_PRODUCED_DATA_DIR``, which is the
attempt's ``synthetic_images/NAME/``: the export's synthetic samples point into it (relative to the
export's folder, marked ``"synthetic_images": true``; bettersynth.data.image_roots), images the export
does not use are removed from it, and it is committed with the export and fingerprinted in the export's
record. A new attempt starts from (hard links to) the images of the committed export and of an
unfinished earlier attempt, so a rerun draws only the images it has not drawn before.

Everything of a run is written into an attempt folder beside the export (``NAME_attempt/``); only a
run that succeeded is committed: its work folder, report and synthetic images replace the earlier
ones and its export replaces the earlier export by one rename, then the export's record (what it was made
from: bettersynth.provenance) is written. A failed or interrupted run (Ctrl-C, SIGTERM, SIGHUP)
leaves the previous export, report and record exactly as they were, exits non-zero (1; 128 +
the signal number when interrupted) and keeps its attempt folder for the post-mortem (run.json,
run.log); the next run clears it. Signals are held back during the commit, so an interrupted run
never leaves a half-committed export.

``--skip-unchanged`` (the main job) reuses an export whose record shows it was made from the same
recipe operators (after ``${VARIABLE}`` expansion), seed pool, image root, custom operator code,
recipe models and executor, and says what changed otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path

from bettersynth import paths
from bettersynth.recipes import installs
from bettersynth.recipes.config import RecipeRun
from bettersynth.recipes.pool import PoolError, stage_input, write_export
from bettersynth.provenance import (ABSENT, Provenance, file_sha256, fingerprint, judge, read_record, short,
                                    value_fingerprint, write_record)
from bettersynth.recipes.placement import PlacementError
from bettersynth.recipes.recipe import RecipeError, resolve_recipe, write_resolved
from bettersynth.recipes.stages import Stage, plan_stages, run_stages
from bettersynth.recipes.synthetic_images import keep_only, link_files, synthetic_paths

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
        # operators that write files (drawn images) write them here, inside the attempt
        DJ_PRODUCED_DATA_DIR=str(run.synthetic_images_dir),
        # worker processes started by spawn/forkserver (Data-Juicer's choice for GPU ops) import
        # the custom operators by module name
        PYTHONPATH=os.pathsep.join(op_parents + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else op_parents),
    )
    return env


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Settings Data-Juicer is given by the run itself, not by the recipe: they do not change what it keeps.
RUN_ONLY_KEYS = ("dataset_path", "dataset", "export_path", "work_dir", "executor_type",
                 "skip_op_error", "np", "ray_address",
                 "custom_operator_paths")


class Interrupted(Exception):
    """A stop signal reached ``bsynth recipe run``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Interrupted in this process while the block runs."""
    def stop(signum, frame):
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Stop signals wait until the block is done (they are delivered right after it)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def run_worker(run: RecipeRun, env: dict[str, str], stage: Stage, verbose: bool) -> int:
    """Run one Data-Juicer stage; its whole output goes to run.log, the important lines to the terminal.
    An exception here (a stop signal) kills the Data-Juicer process group before it propagates."""
    command = [sys.executable, "-m", "bettersynth.recipes.worker", str(stage.resolved), str(stage.progress)]
    # its own process group, so that stopping it also stops what it started (decoding workers, ...)
    with run.log.open("a", encoding="utf-8") as log, subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", start_new_session=True) as child:
        try:
            for line in child.stdout:
                log.write(line)
                if verbose or any(marker in line for marker in ECHOED):
                    print(line, end="", flush=True)
            return child.wait()
        except BaseException:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            raise


def last_error(log: Path) -> str:
    """The end of a log from its last ``error:`` line (Data-Juicer's reason when it stops while reading
    its config: ``error: Parser key "np": Not of type PositiveInt: ...``), else its last non-blank line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] \
        if log.is_file() else []
    starts = [number for number, line in enumerate(lines) if line.startswith("error:")]
    return " ".join(lines[starts[-1]:]) if starts else (lines[-1] if lines else "")


def write_summary(run: RecipeRun, summary: dict) -> None:
    run.summary.write_text(json.dumps(summary, indent=2) + "\n")


def attempt_of(run: RecipeRun) -> RecipeRun:
    """The same run writing into ``NAME_attempt/`` beside the export (export, work folder, report)."""
    folder = run.export.with_name(run.export.stem + "_attempt")
    return replace(run, export=folder / run.export.name)


def recipe_provenance(run: RecipeRun, config: dict) -> Provenance:
    """What an export of ``run`` is made from: the recipe as Data-Juicer runs it, data, code, models."""
    recipe_settings = {key: value for key, value in config.items() if key not in RUN_ONLY_KEYS}
    inputs = {"seed pool": run.dataset, "image root": run.image_root, "recipe models": run.models_root}
    for number, folder in enumerate(config["custom_operator_paths"], start=1):
        inputs[f"custom operators {number}"] = Path(folder)
    fingerprints = {label: fingerprint(path) for label, path in inputs.items()}
    # the operators after ${VARIABLE} expansion: BSYNTH_CLIP_MIN=0.3 is another recipe; a comment is not
    fingerprints["recipe operators"] = value_fingerprint(recipe_settings)
    return Provenance("recipe", fingerprints, {"executor": run.executor})


def unchanged_export(run: RecipeRun) -> tuple[bool, str]:
    """(True, why) when ``run``'s export is already made from what ``run`` would make it from."""
    try:
        config, _ = resolve_recipe(run, os.environ)
    except RecipeError as error:
        return False, str(error)
    verdict = judge(run.export, recipe_provenance(run, config))
    if not verdict.fresh:
        return False, verdict.reason
    # a record without the entry is from a run that drew nothing
    recorded = (read_record(run.export) or {}).get("synthetic_images", ABSENT)
    now = fingerprint(run.synthetic_images_dir)
    if recorded != now:
        return False, f"{run.synthetic_images_dir} changed ({short(recorded)} → {short(now)}) since it was made"
    return True, verdict.reason


def clear_attempt(attempt: RecipeRun, run: RecipeRun) -> None:
    """A fresh attempt folder whose synthetic-images folder holds what the committed export and an
    unfinished earlier attempt already drew."""
    folder = attempt.export.parent
    drawn = folder.with_name(folder.name + ".drawn")
    if drawn.exists():
        shutil.rmtree(drawn)
    if folder.exists():
        say(f"removing {folder}, left by an earlier run that did not finish (keeping the images it drew)")
        if attempt.synthetic_images_dir.is_dir():
            attempt.synthetic_images_dir.rename(drawn)
        shutil.rmtree(folder)
    attempt.work_dir.mkdir(parents=True)
    if drawn.exists():
        attempt.synthetic_images_dir.parent.mkdir()
        drawn.rename(attempt.synthetic_images_dir)
    reused = link_files(run.synthetic_images_dir, attempt.synthetic_images_dir)
    if reused:
        say(f"reusing {reused} images drawn for the committed export ({run.synthetic_images_dir})")


def commit(attempt: RecipeRun, run: RecipeRun, provenance: Provenance, started: float) -> None:
    """Moves a finished attempt into place: work folder, report and synthetic images (or none), then
    the export (one rename), then its record (made from 'started' until now). Run with stop signals held."""
    folders = ((attempt.work_dir, run.work_dir), (attempt.report_dir, run.report_dir),
               (attempt.synthetic_images_dir, run.synthetic_images_dir))
    for new, final in folders:
        previous = final.with_name(final.name + ".previous")
        if previous.exists():
            shutil.rmtree(previous)
        if final.exists():
            final.rename(previous)
        if new.exists():
            final.parent.mkdir(exist_ok=True)  # synthetic_images/ of the export's folder
            new.rename(final)
    os.replace(attempt.export, run.export)
    write_record(run.export, provenance, synthetic_images=fingerprint(run.synthetic_images_dir),
                 made_during=[[started, time.time()]])
    for _, final in folders:
        shutil.rmtree(final.with_name(final.name + ".previous"), ignore_errors=True)
    with suppress(OSError):  # synthetic_images/ when no export of the folder has drawn images now
        run.synthetic_images_dir.parent.rmdir()
    shutil.rmtree(attempt.export.parent)


def keep_previous_note(run: RecipeRun) -> str:
    if run.export.exists():
        return f"the previous export {run.export} and its report are kept as they were"
    return f"no export was written to {run.export}"


def run_recipe(run: RecipeRun, verbose: bool = False, skip_unchanged: bool = False) -> int:
    """Run ``run``; 0 when the export and report are written (or reused with ``skip_unchanged``), 1 when
    the run failed, 128 + N when signal N stopped it (the reason is printed)."""
    if skip_unchanged:
        fresh, reason = unchanged_export(run)
        if fresh:
            say(f"skipped: {reason}")
            return 0
        say(f"running: {reason}")
    attempt = attempt_of(run)
    try:
        with stop_signals_raise():
            status = run_attempt(attempt, run, verbose)
    except Interrupted as stop:
        say(f"INTERRUPTED by {stop}: {keep_previous_note(run)}; this run's logs: {attempt.work_dir}")
        return 128 + stop.signum
    if status != 0:
        say(f"{keep_previous_note(run)}; this run's logs: {attempt.work_dir}")
    return status


def run_attempt(attempt: RecipeRun, run: RecipeRun, verbose: bool) -> int:
    from bettersynth.recipes.report import ReportError, build_report

    start = time.time()
    say(f"{run.recipe} on {run.dataset} -> {run.export} (executor {run.executor}, models {run.models_root})")
    clear_attempt(attempt, run)
    summary: dict = {"recipe": str(run.recipe), "recipe_sha256": file_sha256(run.recipe),
                     "dataset": str(run.dataset), "image_root": str(run.image_root),
                     "models_root": str(run.models_root), "executor": run.executor, "np": run.np,
                     "export": str(run.export), "status": "failed"}
    try:
        summary["input_samples"] = stage_input(attempt.dataset, attempt.image_root, attempt.staged_dataset)
        config, notes = resolve_recipe(attempt, os.environ)
    except (PoolError, RecipeError) as error:
        summary["error"] = str(error)
        write_summary(attempt, summary)
        say(f"FAILED before Data-Juicer started: {error}")
        return 1
    for note in notes:
        say(note)
    write_resolved(config, attempt.resolved_recipe)
    env = worker_environment(attempt, config)
    before = installs.installed_distributions()
    try:
        plan = plan_stages(attempt, config, env)
    except PlacementError as error:
        summary["error"] = str(error)
        write_summary(attempt, summary)
        say(f"FAILED before Data-Juicer started: {error}")
        return 1
    for line in plan.lines:
        say(line)
    status, progress = run_stages(plan, lambda stage: run_worker(attempt, env, stage, verbose))
    summary.update(ops=progress.get("ops", []), loaded_samples=progress.get("loaded_samples"),
                   failed_op=progress.get("failed_op"), error=progress.get("error"), placement=plan.where)
    problems = installs.distribution_changes(before, installs.installed_distributions())
    problems += [f"Data-Juicer tried to install {package}"
                 for package in installs.install_attempts(attempt.log.read_text(errors="replace"))]
    if problems:
        summary["install_problems"] = problems
        write_summary(attempt, summary)
        say("FAILED: packages must not be installed at run time (pin them instead): " + "; ".join(problems))
        return 1
    if status != 0:
        if not progress:
            summary["error"] = (f"the Data-Juicer process ended with status {status} before reporting; "
                                f"its log ends: {last_error(attempt.log)}")
        write_summary(attempt, summary)
        where = f" in operator {summary['failed_op']}" if summary.get("failed_op") else ""
        say(f"FAILED{where}: {summary.get('error')} (full log: {attempt.log})")
        return 1
    try:
        summary["output_samples"], summary["synthetic_samples"] = write_export(
            attempt.dj_export, attempt.image_root, attempt.synthetic_images_dir, attempt.export)
    except PoolError as error:
        summary["error"] = str(error)
        write_summary(attempt, summary)
        say(f"FAILED reading Data-Juicer's export: {error}")
        return 1
    if summary["output_samples"] == 0:
        summary["error"] = "the recipe kept no samples"
        write_summary(attempt, summary)
        say(f"FAILED: the recipe kept none of the {summary['input_samples']} samples (see the per-op counts "
            f"in {attempt.summary}); an empty pool cannot be trained on")
        return 1
    keep_only(attempt.synthetic_images_dir, synthetic_paths(attempt.export), attempt.export.parent)
    try:
        build_report(attempt.export, summary, attempt.report_dir)
    except ReportError as error:  # a sample or image of the export the report cannot read
        summary["error"] = str(error)
        write_summary(attempt, summary)
        say(f"FAILED making the data report: {error}")
        return 1
    summary.update(status="complete", seconds=round(time.time() - start, 3))
    write_summary(attempt, summary)
    provenance = recipe_provenance(run, config)
    with stop_signals_held():
        commit(attempt, run, provenance, start)
    drawn = f" ({summary['synthetic_samples']} with drawn images, in {run.synthetic_images_dir})" \
        if summary["synthetic_samples"] else ""
    say(f"done in {summary['seconds']:.1f} s: {summary['input_samples']} -> {summary['output_samples']} samples"
        f"{drawn}; export {run.export}; report {run.report_dir / 'report.html'}")
    return 0
