"""What every artefact of the main job was made from, and whether it can be reused: the one design.

An artefact (a recipe export, the capped file, the LLaVA json, a training stage's folder, an eval's
answers, the scores) gets a *record* beside it when it is complete: the step that made it, the
fingerprints of its inputs, its settings, and (for a file) the fingerprint of the artefact itself.
A step is skipped, or a training stage resumed, only when the recorded step, inputs and settings
equal the current ones and the artefact still is what was recorded; otherwise it is redone and
the reason is said, e.g. ``training data changed since it was made (sha 1a2b3c4d… → 5e6f7a8b…)``.

Fingerprints (``sha256:<hex>``):
- a file: the SHA-256 of its bytes;
- a folder holding a record (a finished or running training stage): the SHA-256 of that record,
  which changes with every completed training run, so an eval of a retrained checkpoint reruns;
- any other folder (model folders, image folders): the SHA-256 of its files' relative names, sizes
  and modification times, so replacing a model is seen without hashing gigabytes of weights on
  every run. The artefacts this toolkit made inside it are left out of the listing: a file with a
  record beside it, the records, a sub-folder holding a record. The main job writes its validation
  report, capped file and LLaVA json beside the data it reads, which in the baseline (no recipe) is
  the seed pool's own folder, the image folder; were they listed, every run would change the image
  folder and train again. Each of them is fingerprinted as an input of its own where it is one.

Records: ``<file>.made-from.json`` beside a file, ``<folder>/made-from.json`` inside a folder.
Users of this module: ``bsynth step`` (bettersynth.steps) for the file steps of the main job,
``bsynth recipe run --skip-unchanged`` for the recipe export, and the trainer (bettersynth.train.run)
for the finished-stage and resume checks.

    current = Provenance.of("cap", {"curated data": export}, {"max samples": 200000})
    verdict = judge(capped, current)        # Verdict(fresh=False, reason="no record of what made it")
    ... make the artefact ...
    write_record(capped, current)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bettersynth import __version__
from bettersynth.files import write_json_atomic

RECORD_NAME = "made-from.json"
RECORD_SUFFIX = ".made-from.json"
MADE_DURING = "made_during"  # a record's field: [[start, end], ...] of the runs that made the artefact
ABSENT = "absent"
_CHUNK = 1 << 20


def record_path(artefact: Path) -> Path:
    """Where the record of ``artefact`` lives (inside a folder, beside a file)."""
    artefact = Path(artefact)
    return artefact / RECORD_NAME if artefact.is_dir() else artefact.with_name(artefact.name + RECORD_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def made_here(name: str, names: set[str]) -> bool:
    """Whether the file ``name``, among the file names ``names`` of its folder, is a record or has one."""
    return name.endswith(RECORD_SUFFIX) or name == RECORD_NAME or name + RECORD_SUFFIX in names


def folder_listing_sha256(folder: Path) -> str:
    """SHA-256 of the relative names, sizes and modification times of every file under ``folder``,
    but the artefacts this toolkit made there (``made_here``; sub-folders holding a record). A
    symbolic link to nowhere is listed with its own size and time (its target's, once it exists)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if not (Path(root) / name / RECORD_NAME).is_file())
        names = set(files)
        for name in sorted(files):
            if made_here(name, names):
                continue
            path = Path(root) / name
            stat = path.stat() if path.exists() else path.lstat()  # a link to nowhere: the link's own
            digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def fingerprint(path: Path | None) -> str:
    """The fingerprint of a file or folder (see the module docstring); ``absent`` when not there."""
    if path is None:
        return ABSENT
    path = Path(path)
    if path.is_file():
        return "sha256:" + file_sha256(path)
    if path.is_dir():
        record = path / RECORD_NAME
        if record.is_file():
            return "sha256:" + file_sha256(record)
        return "listing-sha256:" + folder_listing_sha256(path)
    return ABSENT


def value_fingerprint(value: Any) -> str:
    """The fingerprint of a JSON value (canonical form: sorted keys), for settings too long to show."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def short(value: Any) -> str:
    """A fingerprint shortened for messages (``sha 1a2b3c4d…``); other values as they are."""
    if isinstance(value, str) and ":" in value and value.split(":", 1)[0].endswith("sha256"):
        return f"sha {value.split(':', 1)[1][:8]}…"
    if value == ABSENT:
        return ABSENT
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class Provenance:
    """What an artefact is made from: its step, its inputs' fingerprints by label, its settings."""

    step: str
    inputs: Mapping[str, str]
    settings: Mapping[str, Any]

    @classmethod
    def of(cls, step: str, inputs: Mapping[str, Path | None], settings: Mapping[str, Any] | None = None
           ) -> Provenance:
        """Fingerprints the given input paths now (a missing one is recorded as ``absent``)."""
        return cls(step, {label: fingerprint(path) for label, path in inputs.items()},
                   json.loads(json.dumps(dict(settings or {}))))

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "inputs": dict(self.inputs), "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Provenance:
        return cls(str(payload["step"]), dict(payload["inputs"]), dict(payload["settings"]))

    def changes_since(self, recorded: Provenance) -> list[str]:
        """Why ``recorded`` (what made the artefact) is not this provenance, one phrase a difference."""
        changes = []
        if recorded.step != self.step:
            changes.append(f"it was made by step {recorded.step!r}, not {self.step!r}")
        for label in sorted(set(recorded.inputs) | set(self.inputs)):
            before, now = recorded.inputs.get(label, ABSENT), self.inputs.get(label, ABSENT)
            if before != now:
                changes.append(f"{label} changed ({short(before)} → {short(now)})")
        for key in sorted(set(recorded.settings) | set(self.settings)):
            before, now = recorded.settings.get(key), self.settings.get(key)
            if before != now:
                changes.append(f"setting {key} changed ({short(before)} → {short(now)})")
        return changes


@dataclass(frozen=True)
class Verdict:
    """Whether an artefact may be reused (``fresh``), and why not."""

    fresh: bool
    reason: str


def read_record(artefact: Path) -> dict[str, Any] | None:
    """The record of ``artefact``, or None when there is none or it does not parse."""
    path = record_path(artefact)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        Provenance.from_dict(payload)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return payload


def made_during(artefact: Path) -> list[tuple[float, float]]:
    """When ``artefact`` was being made, as its record says: one (start, end) in Unix seconds for each
    run that worked on it (a resumed training stage has several); [] without a record or times, or
    with times that are not finite intervals (a record written by hand or by another tool)."""
    intervals = (read_record(artefact) or {}).get(MADE_DURING) or []
    try:
        spans = [(float(start), float(end)) for start, end in intervals]
    except (TypeError, ValueError):
        return []
    return spans if all(math.isfinite(start) and math.isfinite(end) and start <= end for start, end in spans) else []


def write_record(artefact: Path, provenance: Provenance, **extra: Any) -> Path:
    """Records that ``artefact`` (complete now) was made from ``provenance``; returns the record's path.

    A file's own fingerprint is recorded too, so an artefact changed or replaced afterwards is
    not taken for the recorded one. ``extra`` adds fields (a training stage's completion time, and
    ``made_during``: when it was being made, read back by ``made_during``).
    """
    artefact = Path(artefact)
    payload = {**provenance.to_dict(), "toolkit_version": __version__,
               "recorded": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}
    if artefact.is_file():
        payload["output"] = fingerprint(artefact)
    path = record_path(artefact)
    write_json_atomic(path, payload, sort_keys=True)
    return path


def judge(artefact: Path, current: Provenance) -> Verdict:
    """Whether ``artefact`` exists, has a record, still is what was recorded and was made from ``current``."""
    artefact = Path(artefact)
    if not artefact.exists():
        return Verdict(False, f"{artefact} does not exist yet")
    payload = read_record(artefact)
    if payload is None:
        return Verdict(False, f"{artefact} has no record of what made it")
    if "output" in payload and payload["output"] != fingerprint(artefact):
        return Verdict(False, f"{artefact} changed since it was made ({short(payload['output'])} → "
                              f"{short(fingerprint(artefact))})")
    changes = current.changes_since(Provenance.from_dict(payload))
    if changes:
        return Verdict(False, "; ".join(changes) + " since it was made")
    return Verdict(True, f"{artefact} was made from the same inputs and settings")
