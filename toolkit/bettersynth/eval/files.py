"""Reading the eval's files (jsonl with line-numbered errors) and splitting them into shards.

Outputs are written with ``bettersynth.files`` (atomic writes).

    from bettersynth.eval.files import read_jsonl, shard_range
    records = read_jsonl(path)              # EvalDataError "path:12: ..." on a bad line
    shard_range(5000, num_chunks=4, chunk_idx=1)   # range(1250, 2500)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bettersynth.data.jsonl import JsonLinesError, iter_json_objects


class EvalDataError(ValueError):
    """An input or output file of the evaluation is missing, malformed or inconsistent."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All objects of a jsonl file (blank lines skipped); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise EvalDataError(f"{path}: file not found")
    try:
        return [record for _, record in iter_json_objects(path)]
    except JsonLinesError as error:
        raise EvalDataError(str(error)) from error


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
