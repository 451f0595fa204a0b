"""Which runs belong together, and their per-question results as aligned matrices (for stats.py).

Grouping (``bsynth report --group-by``):

- ``settings`` (the default): runs that differ only by seed. The key is every Editable Part value
  except the seed, the experiment name and the values that do not change what is trained
  (``OPERATIONAL_KEYS``: GPUs, workers, logging and checkpoint cadence, compiling, gradient
  checkpointing, the deepspeed config and the split of the global batch, as in
  bettersynth.train.made_from), with the recipe and the training data named by content (the
  recipe operators' fingerprint and the export's SHA-256) instead of by path;
- ``recipe``: runs with the same recipe operators (or, without a recipe, the same export), whatever
  else differs (seed, proxy budget, ...).

Groups keep the order of their first run in the list given; a group's label is its recipe's file
name (or the export's), with the proxy budget when there is one, numbered when labels repeat.

Benchmarks (per-question values of a run record's ``scores``): ``textvqa`` (VQA soft score),
``mmbench_strict`` and ``mmbench_extracted`` (circular correctness, 1 or 0). Every run must hold
the same questions; the matrices follow the question order of the first run given.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bettersynth.experiments.defaults import GROUP_BY

OPERATIONAL_KEYS = frozenset({
    "EXP_NAME", "SEED", "INFER_CUDA_IDX", "PRETRAIN_DATALOADER_NUM_WORKERS", "FINETUNE_DATALOADER_NUM_WORKERS",
    "LOGGING_STEP", "CKPT_SAVE_STEPS", "TOTAL_SAVE_CKPT_LIMIT", "TORCH_COMPILE", "DEEPSPEED_CONFIG",
    "PRETRAIN_GRADIENT_CHECKPOINTING", "FINETUNE_GRADIENT_CHECKPOINTING",
    "PRETRAIN_BATCH_SIZE_PER_GPU", "PRETRAIN_GRADIENT_ACCUMULATION_STEPS",
    "FINETUNE_BATCH_SIZE_PER_GPU", "FINETUNE_GRADIENT_ACCUMULATION_STEPS",
})
BY_CONTENT_KEYS = frozenset({"RECIPE", "PRETRAIN_DATASET"})  # replaced by their content's fingerprints
BENCHMARKS = {"textvqa": ("textvqa", "accuracy"), "mmbench_strict": ("mmbench", "strict"),
              "mmbench_extracted": ("mmbench", "extracted")}


class GroupError(ValueError):
    """Runs that cannot be compared (the message names them)."""


@dataclass(frozen=True)
class RunGroup:
    label: str
    records: list[dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return [record["exp_name"] for record in self.records]


def data_identity(record: dict[str, Any]) -> dict[str, Any]:
    return {"recipe operators": (record.get("recipe") or {}).get("operators"),
            "export": (record.get("export") or {}).get("sha256")}


def group_key(record: dict[str, Any], by: str) -> str:
    identity = data_identity(record)
    if by == "recipe":
        key: dict[str, Any] = {"recipe operators": identity["recipe operators"]} if identity["recipe operators"] \
            else {"export": identity["export"]}
    elif by == "settings":
        editable = record.get("editable") or {}
        key = {**identity, **{name: value for name, value in editable.items()
                              if name not in OPERATIONAL_KEYS | BY_CONTENT_KEYS}}
    else:
        raise GroupError(f"unknown grouping {by!r}; known: {', '.join(GROUP_BY)}")
    return json.dumps(key, sort_keys=True)


def base_label(record: dict[str, Any], by: str) -> str:
    named = (record.get("recipe") or {}).get("path") or (record.get("export") or {}).get("path") or record["exp_name"]
    label = Path(named).name
    proxy = record.get("proxy_pretrain_samples")
    return f"{label} (proxy {proxy})" if by == "settings" and proxy else label


def group_runs(records: list[dict[str, Any]], by: str = "settings") -> list[RunGroup]:
    """The groups of ``records`` in order of their first run (module docstring)."""
    members: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        members.setdefault(group_key(record, by), []).append(record)
    labels = [base_label(group[0], by) for group in members.values()]
    repeated, seen = Counter(labels), Counter()
    groups = []
    for label, group in zip(labels, members.values()):
        seen[label] += 1
        groups.append(RunGroup(f"{label} #{seen[label]}" if repeated[label] > 1 else label, group))
    return groups


def per_question(record: dict[str, Any], benchmark: str) -> tuple[list[Any], np.ndarray] | None:
    """(question ids, values) of one benchmark of a run, None when the run has no such scores."""
    section, field = BENCHMARKS[benchmark]
    questions = ((record.get("scores") or {}).get(section) or {}).get("per_question")
    if not questions:
        return None
    return list(questions["ids"]), np.asarray(questions[field], dtype=float)


def is_scored(record: dict[str, Any]) -> bool:
    return all(per_question(record, benchmark) is not None for benchmark in BENCHMARKS)


def aligned(records: list[dict[str, Any]], benchmark: str, order: list[Any]) -> np.ndarray:
    """values[run, question] of ``records`` with the questions in ``order``; the sets must be equal."""
    wanted = set(order)
    rows = []
    for record in records:
        ids, values = per_question(record, benchmark)
        if len(ids) != len(order) or set(ids) != wanted:
            missing, extra = len(wanted - set(ids)), len(set(ids) - wanted)
            raise GroupError(f"run {record['exp_name']!r}: its {benchmark} questions are not those of the first "
                             f"run ({missing} missing, {extra} others, {len(ids)} vs {len(order)} answers)")
        position = dict(zip(ids, values))
        rows.append([position[question] for question in order])
    return np.asarray(rows, dtype=float)


def question_order(first: dict[str, Any]) -> dict[str, list[Any]]:
    return {benchmark: per_question(first, benchmark)[0] for benchmark in BENCHMARKS}


def matrices(records: list[dict[str, Any]], order: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """benchmark -> values[run, question] of scored ``records``, in ``order`` (``question_order``)."""
    return {benchmark: aligned(records, benchmark, order[benchmark]) for benchmark in BENCHMARKS}
