"""Reading and writing the eval's files: jsonl with line-numbered errors, atomic writes, shards.

Every output is written to a temporary file in the destination folder and renamed into place, so
an interrupted step never leaves a partial file under the final name.

    from bettersynth.eval.files import read_jsonl, write_jsonl_atomic, shard_range
    records = read_jsonl(path)              # EvalDataError "path:12: ..." on a bad line
    write_jsonl_atomic(out_path, records)
    shard_range(5000, num_chunks=4, chunk_idx=1)   # range(1250, 2500)
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


class EvalDataError(ValueError):
    """An input or output file of the evaluation is missing, malformed or inconsistent."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All objects of a jsonl file (blank lines skipped); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise EvalDataError(f"{path}: file not found")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvalDataError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(record, dict):
                raise EvalDataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object a line (UTF-8, not ASCII-escaped); returns the number of lines."""
    count = 0
    with atomic_path(path) as temporary:
        with temporary.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count


def write_json_atomic(path: Path, value: Any) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def shard_range(total: int, num_chunks: int, chunk_idx: int) -> range:
    """Positions of shard ``chunk_idx`` of ``num_chunks`` contiguous, near-equal slices (sizes
    differ by at most one; the first ``total % num_chunks`` shards hold one more)."""
    if num_chunks < 1:
        raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
    if not 0 <= chunk_idx < num_chunks:
        raise ValueError(f"chunk_idx must be in [0, {num_chunks}), got {chunk_idx}")
    base, extra = divmod(total, num_chunks)
    start = chunk_idx * base + min(chunk_idx, extra)
    return range(start, start + base + (1 if chunk_idx < extra else 0))


def shard_file_name(num_chunks: int, chunk_idx: int) -> str:
    """The official shard file name, ``{CHUNKS}_{IDX}.jsonl``."""
    return f"{num_chunks}_{chunk_idx}.jsonl"
