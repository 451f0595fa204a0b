"""``bsynth sweep SWEEP.yaml``: recipes x seeds (x proxy budgets) through the main job, one run after
another or several at once on disjoint GPU sets, resumable, a failed run reported while the others
go on, a report at the end.

    # SWEEP.yaml
    name: palette                     # runs are named <name>-<recipe stem>-s<seed>[-p<proxy>]
    recipes: [solution/recipes/clip_top_repeat.yaml, solution/recipes/cpu_prefilter.yaml]
    seeds: [1024, 1025]
    proxy_pretrain_samples: [20000]   # optional; null (or leaving it out) is the official run
    gpus_per_run: 2                   # optional: floor(GPUs / 2) runs at once, each on 2 GPUs of its own
    env: {PRETRAIN_GRADIENT_CHECKPOINTING: "True"}   # optional: Editable Part values for every run

    bsynth sweep SWEEP.yaml [--gpus 0,1,2,3]   # exit status: the number of failed runs (0: all finished)

No other keys. The file is read and checked by bettersynth.experiments.sweep_file before anything
runs (a typo'd key, a wrong type, a seed listed twice... exit status 2, naming the file and line or field).

How it runs (folders under ``output/experiments/sweeps/<name>/``; the sweep holds ``output/``'s lock):

1. **Each recipe once**, one after another on every GPU: ``bsynth recipe run --skip-unchanged`` with
   the main job's arguments (the layout's seed pool and recipe models, decided here once and passed
   to every run as BSYNTH_LAYOUT) into ``output/processed_data/<name>-<recipe stem>.jsonl``; its log
   is ``recipe-<stem>.log``. A recipe that fails fails its runs; the others go on.
2. **Each run in an output tree of its own**, ``runs/<run>/`` (the job's BSYNTH_OUTPUT): the main job
   locks one tree for its whole run, so runs that share a tree could not go at once. The recipe's
   export is shown in the tree read-only, as ``processed_data/<stem>.jsonl``: a hard link (a copy
   across file systems) with copies of its record and its run's summary; the job's own recipe step
   then finds it made from the same inputs and skips it (were it remade, the recipe run's commit
   would replace the link by a rename, never write through it). Validation, cap, proxy subset,
   conversion, both trainings, evals and scores are the run's own, in its tree. Each run is ``bash
   train_mgm_2b_stage_1.sh`` with EXP_NAME (and DEMO_EXP_NAME, which the demo reads first), RECIPE,
   SEED, PROXY_PRETRAIN_SAMPLES and PRETRAIN_DATASET set; its output goes to ``<run>.log``.
3. **Runs on GPU slots** (bettersynth.experiments.scheduler): without ``gpus_per_run`` one after
   another, each seeing every GPU; with it, floor(N / gpus_per_run) at once, each with its own
   CUDA_VISIBLE_DEVICES, INFER_CUDA_IDX and MASTER_PORT (MASTER_PORT from the environment, else
   29500, plus the slot's number). All runs share one torch.compile kernel cache, the main job's
   own of ``output/`` on node 0 (bettersynth.paths.kernel_cache_dir; the sweep file's ``env`` may
   name another), so only the first compiles cold.

State is ``sweep.json``: a run finishes when its job exits 0 and its run record shows both stages
finished and both benchmarks scored (``missing_result``; else it failed, the lack named). A run that
finished is not started again (unless its record no longer shows that); a failed or interrupted one is
started again in its tree, where the main job skips the finished steps and resumes training from
the last checkpoint. At the end the report of every finished run is written to ``report.html``
(bettersynth.experiments.report); when none can be made, the sweep says why and an earlier
``report.html`` is removed, as it no longer covers the sweep's runs. ``bsynth runs`` lists the runs
(their records are in their trees); ``BSYNTH_OUTPUT=output/experiments/sweeps/<name>/runs/<run>``
points any command at one run's tree.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import partial
from pathlib import Path
from typing import Callable

from bettersynth.experiments.record import RecordError, read_run_record, record_file, sweep_dir, sweep_run_tree
from bettersynth.experiments.record_schema import TOTALS
from bettersynth.experiments.scheduler import Job, StateError, SweepState, plan_slots, run_in_group, run_jobs
from bettersynth.experiments.sweep_file import Sweep, SweepError
from bettersynth.files import atomic_path
from bettersynth.layout import resolve_layout
from bettersynth.paths import AssetLayout, kernel_cache_dir
from bettersynth.provenance import record_path
from bettersynth.recipes.config import work_dir_for


def shared_export(output: Path, sweep: Sweep, recipe: Path) -> Path:
    return output / "processed_data" / f"{sweep.name}-{recipe.stem}.jsonl"


def place_export_view(export: Path, view: Path) -> None:
    """``view`` shows ``export``: a hard link (a copy across file systems), then copies of its record
    and of its recipe run's summary, each replacing the earlier one by a rename."""
    with atomic_path(view) as temporary:
        try:
            os.link(export, temporary)
        except OSError:
            shutil.copy2(export, temporary)
    pairs = [(record_path(export), record_path(view)),
             (work_dir_for(export) / "run.json", work_dir_for(view) / "run.json")]
    for source, target in pairs:
        if source.is_file():
            with atomic_path(target) as temporary:
                shutil.copy2(source, temporary)


def bsynth(*args: str) -> list[str]:
    return [sys.executable, "-m", "bettersynth", *args]


def make_exports(sweep: Sweep, recipes: list[Path], layout: AssetLayout, root: Path, output: Path,
                 env: dict[str, str], state: SweepState, say: Callable[[str], None]) -> dict[Path, Path | None]:
    """Step 1: each recipe's export once (None for a recipe that failed), as the main job runs it."""
    folder = sweep_dir(output, sweep.name)
    if env["BSYNTH_LAYOUT"] == "demo":
        log = folder / "demo-build.log"
        if run_in_group(bsynth("demo", "build"), log, root, env) != 0:
            raise SweepError(f"the demo assets could not be built (see {log})")
    exports: dict[Path, Path | None] = {}
    for recipe in recipes:
        export, log = shared_export(output, sweep, recipe), folder / f"recipe-{recipe.stem}.log"
        say(f"[sweep] recipe {recipe} -> {export} (log {log})")
        status = run_in_group(bsynth("recipe", "run", str(recipe), "--dataset", str(layout.seed_jsonl),
                                   "--export", str(export), "--models-root", str(layout.recipe_models_dir),
                                   "--skip-unchanged"), log, root, env)
        state.set_recipe(recipe.stem, status="made" if status == 0 else "failed", exit_status=status,
                         export=str(export), log=str(log))
        exports[recipe] = export if status == 0 else None
        if status != 0:
            say(f"[sweep] recipe {recipe}: FAILED with exit status {status} (see {log}); its runs are not started")
    return exports


def missing_result(output: Path, sweep: str, run: str) -> str | None:
    """What a run's record lacks of a complete run (both stages finished, both benchmarks scored), or None.
    A job that exits 0 without them (a main job edited to skip a step, a record deleted) is not finished."""
    path = record_file(sweep_run_tree(output, sweep, run), run)
    if not path.is_file():
        return f"its run record {path} does not exist"
    try:
        record = read_run_record(path)
    except RecordError as error:
        return str(error)
    stages = record.get("stages") or {}
    unfinished = [stage for stage in ("pretrain", "finetune") if (stages.get(stage) or {}).get("status") != "finished"]
    if unfinished:
        return f"{path} shows the {' and '.join(unfinished)} stage not finished"
    scores = record.get("scores") or {}
    unscored = [name for name, totals in TOTALS.items()
                if any((scores.get(name) or {}).get(total) is None for total in totals)]
    if unscored:
        return f"{path} holds no {' or '.join(unscored)} score"
    return None


def run_sweep(sweep: Sweep, root: Path, output: Path, job: Path, gpus: str | None,
              say: Callable[[str], None] = print) -> SweepState:
    """Runs what is not finished (module docstring); returns the state (also in sweep.json).
    SweepError, SlotError, StateError or IncompleteLayoutError before anything runs."""
    if not Path(job).is_file():
        raise SweepError(f"the job {job} is not a file")
    environ = {**os.environ, **sweep.env}
    slots = plan_slots(sweep.gpus_per_run, gpus, environ)
    folder = sweep_dir(output, sweep.name)
    folder.mkdir(parents=True, exist_ok=True)
    state = SweepState(folder / "sweep.json", sweep.name)
    left = state.left_running()
    if left:
        groups = ", ".join(f"{run} (process group {group})" for run, group in left.items())
        raise StateError(f"runs of an earlier sweep {sweep.name!r} are still running: {groups}; it was stopped "
                         f"without stopping them (SIGKILL?). Let them end or stop them (kill -TERM -<group>), "
                         "then run the sweep again: it resumes them")
    todo = []
    for run in sweep.runs():
        if state.status(run.name) != "finished":
            todo.append(run)
        elif (missing := missing_result(output, sweep.name, run.name)) is not None:
            say(f"[sweep] {run.name}: recorded finished, but {missing}: run again")
            todo.append(run)
        else:
            say(f"[sweep] {run.name}: finished earlier, skipped")
    if not todo:
        return state
    # the one layout decision, passed to every run as the main job passes it to its steps
    mode, layout = resolve_layout(environ.get("BSYNTH_LAYOUT") or "auto")
    # every run compiles the same model: one kernel cache for all (the main job's own is per tree). Not
    # taken from this process's environment: importing torch's inductor puts its /tmp default there.
    kernels = sweep.env.get("TORCHINDUCTOR_CACHE_DIR") or str(kernel_cache_dir(output, 0))
    env = {**environ, "BSYNTH_LAYOUT": mode, "TORCHINDUCTOR_CACHE_DIR": kernels}
    exports = make_exports(sweep, list(dict.fromkeys(run.recipe for run in todo)), layout, root, output, env,
                           state, say)
    jobs = []
    for run in todo:
        export, tree = exports[run.recipe], sweep_run_tree(output, sweep.name, run.name)
        if export is None:
            state.set_run(run.name, status="failed", exit_status=None, tree=str(tree),
                          log=state.data["recipes"][run.recipe.stem]["log"], reason=f"recipe {run.recipe} failed")
            continue
        view = tree / "processed_data" / f"{run.recipe.stem}.jsonl"
        place_export_view(export, view)
        jobs.append(Job(run.name, ["bash", str(job)], {**env, **run.environment(view), "BSYNTH_OUTPUT": str(tree)},
                        folder / f"{run.name}.log", tree,
                        missing_output=partial(missing_result, output, sweep.name, run.name)))
    run_jobs(jobs, slots, root, state, say)
    return state


def write_sweep_report(sweep: Sweep, state: SweepState, output: Path) -> Path | None:
    """``report.html`` of the sweep's finished runs (None when none has finished). When it cannot be
    made (the error goes to the caller), a page an earlier call wrote there is removed: it shows an
    older set of runs and would be taken for this sweep's report."""
    from bettersynth.experiments.report import build_report, written_by_report

    finished = [run.name for run in sweep.runs() if state.status(run.name) == "finished"]
    if not finished:
        return None
    page = sweep_dir(output, sweep.name) / "report.html"
    try:
        records = [read_run_record(record_file(sweep_run_tree(output, sweep.name, name), name)) for name in finished]
        return build_report(records, page)
    except Exception:
        if page.is_file() and written_by_report(page):
            page.unlink()
        raise


def summary_line(sweep: Sweep, state: SweepState, report: Path | None) -> str:
    names = [run.name for run in sweep.runs()]
    failed = state.unfinished(names)
    return (f"[sweep] {len(names) - len(failed)} of {len(names)} runs finished"
            + (f"; failed: {', '.join(failed)}" if failed else "") + (f"; report {report}" if report else ""))
