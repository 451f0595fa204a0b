"""The Data-Juicer runs of one ``bsynth recipe run``: one stage, or a Ray stage and then a default one.

With the default executor the resolved recipe runs as it is. With ``--executor ray`` the operators
are placed first (bettersynth.recipes.placement, in a child process that reads their classes):

- all run on Ray: one Ray stage, its shards rewritten into the run's Data-Juicer export;
- none does (the first operator is one Ray refuses): one default stage, said in the log;
- else two stages of one run: the leading Ray operators write their shards into the work folder
  (``ray_part_shards.parquet/``, always with stats and meta: the operators after them may rank by
  them), the shards are rewritten into ``ray_part.jsonl``, the default executor runs the rest on it
  into ``default_part.jsonl``, and that is rewritten into the run's export. A Ray part that keeps
  no sample ends the run there with an empty export (which bettersynth.recipes.run refuses as it
  refuses any empty pool).

Each stage writes its own resolved recipe (``recipe.ray.yaml``, ``recipe.default.yaml``; the whole
recipe stays in ``recipe.resolved.yaml``) and progress file, and its output goes to run.log in turn.

The stages reproduce the default executor's export byte for byte: Ray keeps the input order
(bettersynth.recipes.ray_cluster), and the rewrites (``write_held``) give the stats and meta the
form the default executor holds them in. It holds each sample's stats and meta as its own dict in a
``datasets`` Json feature, encoded and decoded with pandas' ujson: rounded to 10 decimals, then
parsed fast (0.0334413902... is held as 0.033441390200000004), and that is what its selectors rank
and its export writes. Ray and a stats column read back from a file hold them as columns: a key one
sample has is null in every other (the rewrite drops null entries: Data-Juicer's operators never
write a null stat), and Ray's JSON writer turns an integer column with nulls into floats (so the
Ray part is written as Parquet, which keeps types and full precision, and rounded here). The default
part of a split run reads its stats as plain columns, so the operators there rank unrounded values;
the order is the same except for two values closer than 1e-10 (the default executor sees a tie and
keeps dataset order), which float32 scores can reach only below about 0.001.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bettersynth.recipes.config import RecipeRun
from bettersynth.recipes.placement import DEFAULT, RAY, OperatorInfo, Placement, PlacementError, op_name, place
from bettersynth.recipes.recipe import write_resolved


@dataclass(frozen=True)
class Stage:
    """One Data-Juicer process of a run."""

    executor: str        # "ray" or "default"
    config: dict         # the Data-Juicer config it runs
    resolved: Path       # where that config is written (the worker's RESOLVED.yaml)
    progress: Path       # the worker's PROGRESS.json
    held: Optional[Path] = None   # where its export is rewritten by write_held (next stage's input, or the run's)

    @property
    def ops(self) -> list[str]:
        return [op_name(item) for item in self.config["process"]]

    @property
    def export(self) -> Path:
        return Path(self.config["export_path"])


@dataclass(frozen=True)
class Plan:
    """The stages of a run, and what runs where (for the log and run.json)."""

    stages: list[Stage]
    lines: list[str]

    @property
    def where(self) -> dict[str, list[str]]:
        return {stage.executor: stage.ops for stage in self.stages}


def read_placement(run: RecipeRun, env: dict[str, str]) -> tuple[dict[str, OperatorInfo], bool]:
    """The operator classes of ``run``'s resolved recipe, read by bettersynth.recipes.placement in a child."""
    output = run.work_dir / "operators.json"
    command = [sys.executable, "-m", "bettersynth.recipes.placement", str(run.resolved_recipe), str(output)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace")
    with run.log.open("a", encoding="utf-8") as log:
        log.write(done.stdout + done.stderr)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("bsynth recipe:")]
        reason = lines[-1].removeprefix("bsynth recipe: ") if lines else f"exit status {done.returncode}, see {run.log}"
        raise PlacementError(f"could not read the recipe's operators: {reason}")
    payload = json.loads(output.read_text())
    return {name: OperatorInfo.from_json(info) for name, info in payload["operators"].items()}, payload["gpu_here"]


def plan_stages(run: RecipeRun, config: dict, env: dict[str, str]) -> Plan:
    """The stages that run ``config`` (the resolved recipe, already written to ``run.resolved_recipe``)."""
    whole = Stage(run.executor, config, run.resolved_recipe, run.work_dir / "progress.json")
    if run.executor == DEFAULT:
        return Plan([whole], [])
    shards, joined = run.work_dir / "ray_part_shards.parquet", run.work_dir / "ray_part.jsonl"
    operators, gpu_here = read_placement(run, env)
    placement: Placement = place(config["process"], operators, gpu_here)
    default_only = {key: value for key, value in config.items() if key != "ray_address"}
    default_only["executor_type"] = DEFAULT
    if not placement.on_default:
        return Plan([Stage(RAY, dict(config, export_path=str(shards)), run.resolved_recipe,
                           run.work_dir / "progress.json", held=run.dj_export)], placement.lines)
    if not placement.on_ray:
        return Plan([Stage(DEFAULT, default_only, run.work_dir / "recipe.default.yaml",
                           run.work_dir / "progress.default.json")], placement.lines)
    on_ray = dict(config, process=placement.on_ray, export_path=str(shards), keep_stats_in_res_ds=True)
    on_default = dict(default_only, process=placement.on_default, export_path=str(run.work_dir / "default_part.jsonl"),
                      dataset={"configs": [{"type": "local", "path": str(joined)}]})
    return Plan([Stage(RAY, on_ray, run.work_dir / "recipe.ray.yaml", run.work_dir / "progress.ray.json", joined),
                 Stage(DEFAULT, on_default, run.work_dir / "recipe.default.yaml",
                       run.work_dir / "progress.default.json", run.dj_export)], placement.lines)


def write_order(shard: Path) -> list:
    """Sort key of a Ray shard: its name with every number compared as a number (task 2 before task 10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", shard.name)]


def stage_rows(export: Path) -> Iterator[dict]:
    """The rows a stage exported: a Ray export's Parquet shards in write order, or a JSON-lines file
    (Data-Juicer's, and Ray's for a part that kept nothing)."""
    if export.is_dir():
        import pyarrow.parquet as pq

        for shard in sorted(export.glob("*.parquet"), key=write_order):
            yield from pq.read_table(shard).to_pylist()
        return
    with export.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def without_nulls(value):
    """``value`` with the null entries of its dicts (at any depth) left out."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    return value


def write_held(export: Path, target: Path) -> int:
    """Write the rows of a stage's export to ``target``, their stats and meta in the form the default
    executor holds them (see the module docstring); returns the row count."""
    from data_juicer.utils.constant import Fields
    from datasets.utils.json import ujson_dumps, ujson_loads

    count = 0
    with target.open("w", encoding="utf-8") as out:
        for row in stage_rows(export):
            for key in (Fields.stats, Fields.meta):
                if row.get(key) is not None:
                    row[key] = ujson_loads(ujson_dumps(without_nulls(row[key])))
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def run_stages(plan: Plan, run_stage: Callable[[Stage], int]) -> tuple[int, dict]:
    """Run the plan's stages in turn with ``run_stage`` (which starts the worker and returns its exit
    status); returns (status, progress) with progress as one worker's: per-op rows (a Ray stage is
    one row: Ray reports no per-operator counts), the loaded count, the failed op and error."""
    rows: list[dict] = []
    progress: dict = {}
    for number, stage in enumerate(plan.stages):
        write_resolved(stage.config, stage.resolved)
        status = run_stage(stage)
        progress = json.loads(stage.progress.read_text()) if stage.progress.exists() else {}
        if status != 0:   # no progress at all: the worker died before reporting
            return status, dict(progress, ops=rows + progress.get("ops", [])) if progress else {}
        left = write_held(stage.export, stage.held) if stage.held else None
        if stage.executor == DEFAULT:
            rows += progress.get("ops", [])
        else:
            rows.append({"op": f"on Ray: {', '.join(stage.ops)}", "left": left, "seconds": progress.get("seconds")})
        if left == 0 and number + 1 < len(plan.stages):
            plan.stages[-1].held.write_text("")
            break
    loaded = progress.get("loaded_samples") if plan.stages[0].executor == DEFAULT else None
    return 0, dict(progress, ops=rows, loaded_samples=loaded)
