"""Small file writers shared by the data-format tests (imported as ``data_helpers``)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def write_jsonl(path: Path, records: list) -> Path:
    """One ``json.dumps`` line per record (ensure_ascii=False), as Data-Juicer exports."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_jpeg(path: Path, size: tuple[int, int] = (24, 16), color: tuple[int, int, int] = (200, 30, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG", quality=90)
    return path
