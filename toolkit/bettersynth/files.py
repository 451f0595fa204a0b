"""Writing outputs atomically: a file appears under its final name only once it is complete.

Every command that writes a result (converted data, answers, scores, reports, checkpoints'
markers, the submission zip) goes through here, so an interrupted or failed run never leaves a
partial file that looks finished. The temporary file sits beside the target (same file system,
so the final rename is atomic), is hidden, and is removed when the writer fails.

    from bettersynth.files import atomic_output, atomic_path, write_json_atomic, write_jsonl_atomic
    with atomic_output(path) as f: f.write(...)          # a text handle
    with atomic_path(path) as tmp: workbook.save(tmp)     # a path, for writers that open it themselves
    write_json_atomic(path, value); write_jsonl_atomic(path, records)
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A hidden temporary path beside ``path``, renamed onto it only when the block succeeds.

    Nothing is created up front, so the file the caller writes gets ordinary permissions (umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A UTF-8 text file that appears at ``path`` only if the ``with`` block completes."""
    with atomic_path(path) as temporary:
        with open(temporary, "x", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_json_atomic(path: Path, value: Any, *, sort_keys: bool = False) -> None:
    """One JSON document (indented, UTF-8, not ASCII-escaped), written atomically."""
    with atomic_output(path) as handle:
        handle.write(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n")


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """One JSON object a line (UTF-8, not ASCII-escaped), written atomically; returns the line count."""
    count = 0
    with atomic_output(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
