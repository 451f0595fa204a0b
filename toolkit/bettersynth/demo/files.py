"""Deterministic writers for the demo data files (same records, same bytes).

JSON keeps the records' key order (built in a fixed order), UTF-8 without ASCII escaping, "\n"
line ends. The demo builders write into a temporary item folder that `bettersynth.demo.build`
renames into place once complete, so these writers need no atomic renames of their own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
