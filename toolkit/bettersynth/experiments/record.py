"""The run record of one experiment: ``output/experiments/<EXP_NAME>/run.json``, rebuilt after each step.

    bsynth runs record EXP_NAME --editable KEY=VALUE ... [--made STEP=PATH ...] [--data-root DIR]

The main job calls it after every step with all its Editable Part values; each call rebuilds the
record from what is on disk now and writes it atomically, so it never fails because a later step
has not run: what is not there yet is ``null`` (or an empty list). What it reads:

- the recipe: ``RECIPE`` (path), the SHA-256 of the recipe file that made the export (from the recipe
  run's summary ``<export stem>_work/run.json``) and the fingerprint of its operators after
  ``${VARIABLE}`` expansion (from the export's ``.made-from.json``, which also gives the seed pool's);
- the export ``PRETRAIN_DATASET`` and the capped file beside it (``<export>-200k.jsonl``, the main job's
  name): sample count (non-blank lines) and SHA-256, the cap's ``max samples`` from its record;
- both training stages (bettersynth.experiments.stages): status, seed, the logged steps;
- the eval answers (bettersynth.experiments.scores): totals and per-question results;
- ``SEED`` (else the pretrain stage's recorded seed) and ``PROXY_PRETRAIN_SAMPLES`` (empty: the
  official run, ``proxy_pretrain_samples: null``).

A sweep's runs each have an output tree of their own (bettersynth.experiments.sweep), so their
records are ``experiments/sweeps/<sweep>/runs/<run>/experiments/<run>/run.json``: ``all_records``
and ``load_run`` find them too.

What is on disk may be another run's: a job started again under the same EXP_NAME with other data
finds the last run's export, stages and answers until its own steps replace them. The record never
attributes them to this run: the recipe is the one that made the export (``RECIPE`` with a note
where they differ; none when no recipe run made it), a pretrain stage counts only when it was
trained on this run's pretraining file as it is now, a finetune stage only when finetuned from that
stage's projector, answers only when made by that finetuned checkpoint; what is left out is named
under ``notes``.

Editable values accumulate over calls (a later value replaces an earlier one). Time is read from
the artefacts, not from the calls: the main job names each step's artefact (``--made cap=PATH``,
kept under ``artefacts``), and each artefact's made-from record says when it was being made
(``made_during``: the step that made it; each run of a resumed training stage). ``steps`` holds each
artefact's making seconds and ``wall_time_s`` the seconds during which at least one was being made
(two evals side by side count once), over this run's artefacts only (as above). So a rerun that
reuses every step keeps the first run's times, and a stage resumed after an interruption counts
every run of it. Artefacts that exist but cannot be read (and answers that cannot be scored) are
listed under ``notes``, printed as warnings.

    from bettersynth.experiments.record import build_record, write_record
    record = write_record(Path("output"), "demo", {"RECIPE": "solution/recipes/x.yaml", ...},
                          made={"cap": Path("output/processed_data/x.jsonl-200k.jsonl"), ...})
"""

from __future__ import annotations

import glob
import json
import time
from pathlib import Path
from typing import Any

from bettersynth import __version__, paths
from bettersynth.experiments.record_schema import SCHEMA_VERSION, record_problem
from bettersynth.experiments.scores import eval_sections, made_from_other_checkpoint
from bettersynth.experiments.stages import StageReadError, read_stage
from bettersynth.files import write_json_atomic
from bettersynth.lineage import made_from_problem
from bettersynth.provenance import fingerprint, made_during, read_record
from bettersynth.recipes.config import work_dir_for

RECORD_NAME = "run.json"
CAPPED_SUFFIX = "-200k.jsonl"  # the main job's capped file: "$PRETRAIN_DATASET-200k.jsonl"
STAGE_FOLDERS = {"pretrain": "MGM-2B-Pretrain-{}", "finetune": "MGM-2B-Finetune-{}"}
SWEEPS_FOLDER, SWEEP_RUNS_FOLDER = "sweeps", "runs"  # experiments/sweeps/<sweep>/runs/<run>/: a run's tree
EVAL_STEPS, SCORES_STEP = ("textvqa", "mmbench"), "scores"  # the main job's eval step names (--made NAME=PATH)


class RecordError(ValueError):
    """A run record, or a value given for one, that cannot be used (the message names it)."""


def experiments_dir(output_dir: Path) -> Path:
    return Path(output_dir) / "experiments"


def record_file(output_dir: Path, exp_name: str) -> Path:
    """``<output>/experiments/<exp_name>/run.json``; the name must be a plain folder name."""
    if paths.name_problem(exp_name):
        raise RecordError(f"experiment name {exp_name!r} cannot name a folder under {experiments_dir(output_dir)}")
    return experiments_dir(output_dir) / exp_name / RECORD_NAME


def read_run_record(path: Path) -> dict[str, Any]:
    """A run.json as a dict; an unreadable file, or one without the shape of a run record
    (bettersynth.experiments.record_schema), is a RecordError naming it and what is wrong."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not JSON, or bytes that are not UTF-8
        raise RecordError(f"{path}: cannot read the run record ({error})") from error
    problem = record_problem(payload)
    if problem is not None:
        raise RecordError(f"{path}: not a usable run record: {problem}")
    return payload


def read_named_record(path: Path) -> dict[str, Any]:
    """``read_run_record`` of a run.json found by its folder (``experiments/<name>/run.json``), which must
    be the run the record names: a copied or renamed folder would list one run twice, or under a name
    that ``bsynth report NAME`` would not find."""
    record = read_run_record(path)
    folder = Path(path).parent.name
    if record["exp_name"] != folder:
        raise RecordError(f"{path}: the record is of run {record['exp_name']!r} but lies in the folder {folder!r} "
                          "(a copied or renamed folder?): give the folder back its name, or remove the copy")
    return record


def sweep_dir(output_dir: Path, sweep: str) -> Path:
    """``<output>/experiments/sweeps/<sweep>``: a sweep's state, logs and report."""
    return experiments_dir(output_dir) / SWEEPS_FOLDER / sweep


def sweep_run_tree(output_dir: Path, sweep: str, run: str) -> Path:
    """The output tree of one run of a sweep (its job's BSYNTH_OUTPUT)."""
    return sweep_dir(output_dir, sweep) / SWEEP_RUNS_FOLDER / run


def sweep_record_files(output_dir: Path, exp_name: str = "*") -> list[Path]:
    """The run.json files in the sweeps' run trees (of ``exp_name``; every one by default)."""
    pattern = f"{SWEEPS_FOLDER}/*/{SWEEP_RUNS_FOLDER}/*/experiments/{exp_name}/{RECORD_NAME}"
    return sorted(experiments_dir(output_dir).glob(pattern))


def all_records(output_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every ``experiments/*/run.json`` under ``output_dir`` by experiment name, then the sweeps' runs,
    that can be read; and, for each one that cannot, its path and why (one broken record does not
    hide the others)."""
    paths = sorted(experiments_dir(output_dir).glob(f"*/{RECORD_NAME}")) + sweep_record_files(output_dir)
    records, unreadable = [], []
    for path in paths:
        try:
            records.append(read_named_record(path))
        except RecordError as error:
            unreadable.append(str(error))
    return records, unreadable


def load_run(output_dir: Path, run: str) -> dict[str, Any]:
    """A run record by experiment name, or by the path of its run.json or of its folder."""
    given = Path(run)
    if given.is_file():
        return read_run_record(given)
    if (given / RECORD_NAME).is_file():
        return read_run_record(given / RECORD_NAME)
    path = record_file(output_dir, run)
    if path.is_file():
        return read_named_record(path)
    in_sweeps = sweep_record_files(output_dir, glob.escape(run))
    if len(in_sweeps) > 1:
        raise RecordError(f"{run!r} names runs of several sweeps ({', '.join(map(str, in_sweeps))}): give the "
                          "path of the run.json meant")
    if not in_sweeps:
        raise RecordError(f"no run record for {run!r}: {path} does not exist, nor does a sweep's run of that "
                          "name (see `bsynth runs`)")
    return read_named_record(in_sweeps[0])


# what the trainer and the proxy step can take: numpy's seed range; at least one pretraining sample
INT_RANGES = {"SEED": (0, 2**32 - 1), "PROXY_PRETRAIN_SAMPLES": (1, None)}


def optional_int(editable: dict[str, str], key: str) -> int | None:
    """The Editable Part value ``key`` as an int within INT_RANGES; None when it is absent or empty.
    The main job records its values before any work, so a bad one stops it there."""
    text = str(editable.get(key) or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError as error:
        raise RecordError(f"{key}={text!r} is not an integer") from error
    low, high = INT_RANGES.get(key, (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise RecordError(f"{key}={text!r} is out of range: it must be an integer {allowed}")
    return value


def count_samples(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def data_file(path: Path) -> dict[str, Any] | None:
    """Path, sample count and fingerprint of a jsonl, None while it does not exist."""
    if not path.is_file():
        return None
    return {"path": str(path), "samples": count_samples(path), "sha256": fingerprint(path)}


def recipe_part(recipe: str, export: Path, export_record: dict[str, Any] | None,
                notes: list[str]) -> dict[str, Any] | None:
    """The recipe that made the export: its path and file hash (from its run's summary) and its operators'
    fingerprint (from the export's record); before the export exists, ``RECIPE`` (what the job will
    run). The record never pairs one recipe's name with other data: while ``RECIPE`` names another
    recipe than the one that made the export (its recipe step has not run again yet, or failed), the
    export's own recipe is recorded, and None when no recipe run made it; a note says so."""
    if not recipe:
        return None
    if not export.is_file():
        return {"path": recipe, "file_sha256": None, "operators": None}
    summary_path = work_dir_for(export) / "run.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # ValueError: not JSON, or bytes that are not UTF-8
            notes.append(f"recipe: cannot read the recipe run's summary {summary_path} ({error})")
    made_by = summary.get("recipe") if isinstance(summary, dict) and isinstance(summary.get("recipe"), str) else None
    if made_by is None:
        notes.append(f"recipe: RECIPE is {recipe}, but no recipe run made the export {export} (no summary "
                     f"{summary_path}); the record names no recipe")
        return None
    if Path(made_by).resolve() == Path(recipe).resolve():
        made_by = recipe  # as RECIPE spells it (the summary holds the resolved path)
    else:
        notes.append(f"recipe: RECIPE is {recipe}, but the export {export} was made by {made_by} (its recipe "
                     "step has not made it again); the record shows the recipe that made the data")
    file_sha = summary.get("recipe_sha256")
    return {"path": made_by, "file_sha256": f"sha256:{file_sha}" if isinstance(file_sha, str) else None,
            "operators": ((export_record or {}).get("inputs") or {}).get("recipe operators")}


def pretrain_data(export: Path, editable: dict[str, str]) -> Path:
    """The LLaVA json the main job pretrains on: ``<export>-200k.jsonl.json``, or with a proxy budget
    ``<export>-200k.jsonl-proxy<N>-seed<SEED>.jsonl.json`` (the job's names)."""
    capped = f"{export}{CAPPED_SUFFIX}"
    proxy = optional_int(editable, "PROXY_PRETRAIN_SAMPLES")
    if proxy is not None:
        capped += f"-proxy{proxy}-seed{str(editable.get('SEED') or '').strip()}.jsonl"
    return Path(capped + ".json")


def stages_of_other_runs(pretrain_dir: Path, finetune_dir: Path, data: Path | None) -> dict[str, str]:
    """The stage folders that hold another run's training, with why: a pretrain stage trained on other
    data than this run's pretraining file now holds (the run's data changed and its pretraining has
    not run again yet), a finetune stage finetuned from another projector than the pretrain stage's,
    or from a pretrain stage that is another run's."""
    others = {}
    if data is not None:
        problem = made_from_problem(pretrain_dir, "training data", data, "was trained on")
        if problem:
            others["pretrain"] = problem
    problem = made_from_problem(finetune_dir, "projector", pretrain_dir / "mm_projector.bin", "was finetuned from")
    if problem:
        others["finetune"] = problem
    elif "pretrain" in others and read_record(finetune_dir) is not None:
        others["finetune"] = f"{finetune_dir}: was finetuned from the pretrain stage of another run (above)"
    return others


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """The seconds covered by at least one of the (start, end) intervals (overlaps counted once)."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


def run_artefacts(made: dict[str, Path], others: dict[str, str], finetune_dir: Path) -> dict[str, Path]:
    """The artefacts of ``made`` that belong to this run: not a stage of another run (``others``), nor
    answers made by another checkpoint than ``finetune_dir``, nor the scores of left-out answers."""
    evals = [name for name in EVAL_STEPS if name in made]
    left_out = set(others) | ({*evals, SCORES_STEP} if "finetune" in others else set())
    left_out |= {name for name in evals if made_from_other_checkpoint(made[name], finetune_dir)}
    if left_out & set(evals):
        left_out.add(SCORES_STEP)
    return {name: path for name, path in made.items() if name not in left_out}


def making_times(artefacts: dict[str, Path]) -> tuple[dict[str, float], float | None]:
    """Each artefact's making seconds (its record's ``made_during``; a resumed stage sums its runs) and
    the run's wall time: the seconds during which at least one of them was being made (evals run side
    by side count once)."""
    intervals = {name: made_during(path) for name, path in artefacts.items()}
    steps = {name: round(sum(end - start for start, end in spans), 1) for name, spans in intervals.items() if spans}
    every = [span for spans in intervals.values() for span in spans]
    return steps, round(union_seconds(every), 1) if every else None


def build_record(output_dir: Path, exp_name: str, editable: dict[str, str], *,
                 made: dict[str, Path] | None = None, data_root: Path | None = None) -> dict[str, Any]:
    """The run record of ``exp_name`` as the files under ``output_dir`` show it now (module docstring);
    ``editable`` is merged into the existing record's; ``made`` names the main job's artefacts by step
    (all of them: the job names each on every call; none given keeps those of the existing record)."""
    output_dir = Path(output_dir).resolve()
    path = record_file(output_dir, exp_name)
    previous = read_run_record(path) if path.exists() else {}  # a folder or a broken record: a RecordError
    editable = {**previous.get("editable", {}), **{key: str(value) for key, value in editable.items()}}
    if not made:  # a call that names no artefacts (a refresh by hand) keeps the ones the job named last
        made = previous.get("artefacts") or {}
    made = {name: Path(value).resolve() for name, value in made.items()}
    notes: list[str] = []

    export = Path(editable["PRETRAIN_DATASET"]).resolve() if editable.get("PRETRAIN_DATASET") else None
    export_record = read_record(export) if export else None
    capped = Path(str(export) + CAPPED_SUFFIX) if export else None
    capped_part = data_file(capped) if capped else None
    if capped_part is not None:
        capped_part["max_samples"] = ((read_record(capped) or {}).get("settings") or {}).get("max samples")
    proxy = optional_int(editable, "PROXY_PRETRAIN_SAMPLES")
    if proxy is not None and capped_part is not None and capped_part["samples"] < proxy:
        notes.append(f"proxy: the budget of {proxy} pretraining samples is more than the {capped_part['samples']} "
                     "this run's data holds, so all of them were trained: not the budget of runs that had enough")

    folders = {stage: output_dir / "training_dirs" / pattern.format(exp_name)
               for stage, pattern in STAGE_FOLDERS.items()}
    others = stages_of_other_runs(folders["pretrain"], folders["finetune"],
                                  pretrain_data(export, editable) if export else None)
    stages: dict[str, Any] = {}
    for stage, folder in folders.items():
        if stage in others:
            notes.append(f"{stage}: not this run's, left out: {others[stage]}")
            stages[stage] = None
            continue
        try:
            stages[stage] = read_stage(folder).to_dict()
        except StageReadError as error:
            notes.append(f"{stage}: {error}")
            stages[stage] = None
    finetune_dir = folders["finetune"]
    if "finetune" in others:  # its answers and scores are another run's too
        scores, score_notes = {}, []
    else:
        scores, score_notes = eval_sections(output_dir / "eval_results" / finetune_dir.name, finetune_dir,
                                            data_root, previous.get("scores") or {})
    seed = optional_int(editable, "SEED")
    if seed is None and stages.get("pretrain"):
        seed = stages["pretrain"]["seed"]
    recipe = recipe_part(editable.get("RECIPE", ""), export, export_record, notes) if export else None
    steps, wall_time = making_times(run_artefacts(made, others, finetune_dir))
    return {
        "schema": SCHEMA_VERSION, "exp_name": exp_name, "toolkit_version": __version__,
        "created": previous.get("created", time.strftime("%Y-%m-%d %H:%M:%S")),
        "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "editable": editable, "seed": seed, "proxy_pretrain_samples": proxy,
        "recipe": recipe,
        "seed_pool": ((export_record or {}).get("inputs") or {}).get("seed pool"),
        "export": data_file(export) if export else None,
        "capped": capped_part,
        "stages": stages,
        "artefacts": {name: str(value) for name, value in made.items()},
        "steps": steps, "wall_time_s": wall_time,
        "scores": scores,
        "notes": notes + score_notes,
    }


def write_record(output_dir: Path, exp_name: str, editable: dict[str, str], *,
                 made: dict[str, Path] | None = None, data_root: Path | None = None) -> dict[str, Any]:
    """Builds the record and writes it atomically to ``record_file(output_dir, exp_name)``; returns it."""
    record = build_record(output_dir, exp_name, editable, made=made, data_root=data_root)
    write_json_atomic(record_file(Path(output_dir).resolve(), exp_name), record)
    return record
