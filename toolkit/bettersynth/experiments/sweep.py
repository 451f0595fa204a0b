"""``bsynth sweep SWEEP.yaml``: recipes x seeds (x proxy budgets) through the main job, one run after
another, resumable, a failed run reported while the others go on, a report at the end.

    # SWEEP.yaml
    name: palette                     # runs are named <name>-<recipe stem>-s<seed>[-p<proxy>]
    recipes: [solution/recipes/clip_top_repeat.yaml, solution/recipes/cpu_prefilter.yaml]
    seeds: [1024, 1025]
    proxy_pretrain_samples: [20000]   # optional; null (or leaving it out) is the official run
    env: {INFER_CUDA_IDX: "0,1"}      # optional: other Editable Part values, the same for every run

    bsynth sweep SWEEP.yaml           # exit status: the number of failed runs (0: all finished)

Each run is ``bash train_mgm_2b_stage_1.sh`` with EXP_NAME, RECIPE, SEED, PROXY_PRETRAIN_SAMPLES and
PRETRAIN_DATASET=``output/processed_data/<name>-<recipe stem>.jsonl`` set, its output going to
``output/experiments/sweeps/<name>/<run>.log``. The runs of one recipe share its export, so the
recipe runs once (the second run finds it made from the same inputs: bettersynth.provenance), and
each training runs once per seed. State is ``output/experiments/sweeps/<name>/sweep.json``: a run
that finished is not started again, an interrupted or failed one is started again and resumes
from what it left (the main job skips finished steps and resumes training). At the end the report
of every finished run is written to ``output/experiments/sweeps/<name>/report.html``
(bettersynth.experiments.report). Runs go one after another on all the GPUs the job sees; several
at once on disjoint GPU sets is not built (one job holds an output tree's lock at a time).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bettersynth.files import write_json_atomic


class SweepError(ValueError):
    """A sweep file that cannot be run (the message names the file and the field)."""


@dataclass(frozen=True)
class SweepRun:
    name: str
    recipe: Path
    seed: int
    proxy: int | None

    def environment(self, export: Path, extra: dict[str, str]) -> dict[str, str]:
        return {**extra, "EXP_NAME": self.name, "RECIPE": str(self.recipe), "SEED": str(self.seed),
                "PROXY_PRETRAIN_SAMPLES": "" if self.proxy is None else str(self.proxy),
                "PRETRAIN_DATASET": str(export)}


@dataclass(frozen=True)
class Sweep:
    name: str
    recipes: tuple[Path, ...]
    seeds: tuple[int, ...]
    proxies: tuple[int | None, ...]
    env: dict[str, str] = field(default_factory=dict)

    def runs(self) -> list[SweepRun]:
        """Recipe-major, so the runs that share a recipe's export follow each other."""
        return [SweepRun(f"{self.name}-{recipe.stem}-s{seed}" + ("" if proxy is None else f"-p{proxy}"),
                         recipe, seed, proxy)
                for recipe in self.recipes for proxy in self.proxies for seed in self.seeds]


def _list(payload: dict, key: str, source: Path, default: list | None = None) -> list:
    value = payload.get(key, default)
    if not isinstance(value, list) or not value:
        raise SweepError(f"{source}: `{key}` must be a non-empty list")
    return value


def load_sweep(path: Path, root: Path) -> Sweep:
    """The sweep of ``path``; recipe paths are relative to the checkout ``root`` (as RECIPE is)."""
    try:
        payload = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SweepError(f"{path}: cannot read the sweep file ({error})") from error
    if not isinstance(payload, dict):
        raise SweepError(f"{path}: a sweep is a mapping with name, recipes and seeds")
    name = payload.get("name")
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise SweepError(f"{path}: `name` must be one folder name, got {name!r}")
    recipes = tuple(Path(recipe) for recipe in _list(payload, "recipes", path))
    for recipe in recipes:
        if not (root / recipe).is_file():
            raise SweepError(f"{path}: recipe {recipe} is not a file under {root}")
    seeds = _list(payload, "seeds", path)
    proxies = _list(payload, "proxy_pretrain_samples", path, [None])
    if not all(isinstance(seed, int) for seed in seeds):
        raise SweepError(f"{path}: `seeds` must be integers, got {seeds}")
    if not all(proxy is None or (isinstance(proxy, int) and proxy > 0) for proxy in proxies):
        raise SweepError(f"{path}: `proxy_pretrain_samples` must be positive integers or null, got {proxies}")
    if len({recipe.stem for recipe in recipes}) != len(recipes):
        raise SweepError(f"{path}: two recipes share a file name; their runs would share names")
    env = payload.get("env") or {}
    if not isinstance(env, dict):
        raise SweepError(f"{path}: `env` must be a mapping of Editable Part names to values")
    return Sweep(name, recipes, tuple(seeds), tuple(proxies), {str(k): str(v) for k, v in env.items()})


def run_sweep(sweep: Sweep, root: Path, output: Path, job: Path, say=print) -> dict[str, Any]:
    """Runs what is not finished; returns the state (also in sweep.json)."""
    folder = output / "experiments" / "sweeps" / sweep.name
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "sweep.json"
    state = {"name": sweep.name, "runs": {}}
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
    for run in sweep.runs():
        if state["runs"].get(run.name, {}).get("status") == "finished":
            say(f"[sweep] {run.name}: finished earlier, skipped")
            continue
        export = output / "processed_data" / f"{sweep.name}-{run.recipe.stem}.jsonl"
        log = folder / f"{run.name}.log"
        say(f"[sweep] {run.name}: recipe {run.recipe}, seed {run.seed}, proxy {run.proxy or 'none'} (log {log})")
        state["runs"][run.name] = {"status": "running", "log": str(log)}
        write_json_atomic(state_path, state)
        with open(log, "a", encoding="utf-8") as handle:
            status = subprocess.run(["bash", str(job)], cwd=root, stdout=handle, stderr=subprocess.STDOUT,
                                    env={**os.environ, **run.environment(export, sweep.env)}).returncode
        state["runs"][run.name] = {"status": "finished" if status == 0 else "failed", "exit_status": status,
                                   "log": str(log)}
        write_json_atomic(state_path, state)
        say(f"[sweep] {run.name}: " + ("finished" if status == 0 else f"FAILED with exit status {status} (see {log})"))
    return state


def write_sweep_report(sweep: Sweep, state: dict[str, Any], output: Path) -> Path | None:
    from bettersynth.experiments.record import load_run
    from bettersynth.experiments.report import build_report

    finished = [name for name, run in state["runs"].items() if run["status"] == "finished"]
    if not finished:
        return None
    return build_report([load_run(output, name) for name in finished],
                        output / "experiments" / "sweeps" / sweep.name / "report.html")
