"""Reading the eval's files (jsonl with line-numbered errors), checking that an answer file covers
its questions exactly, and splitting them into shards.

Outputs are written with ``bettersynth.files`` (atomic writes).

    from bettersynth.eval.files import coverage_problem, read_jsonl, shard_range
    records = read_jsonl(path)              # EvalDataError "path:12: ..." on a bad line
    for lineno, record in read_numbered_jsonl(path): ...   # the same, with each object's line number
    check_output_path(out, inputs)          # EvalDataError when out is a folder or one of the inputs
    coverage_problem(path, expected_ids, answered_ids, "questions")   # None, or "path: 3 of 5 questions missing (...)"
    shard_range(5000, num_chunks=4, chunk_idx=1)   # range(1250, 2500)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from bettersynth.data.jsonl import JsonLinesError, iter_json_objects

MAX_LISTED = 5  # ids quoted in a message


class EvalDataError(ValueError):
    """An input or output file of the evaluation is missing, malformed or inconsistent."""


def read_numbered_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every line of a jsonl file (blank lines skipped); errors name the file and line."""
    path = Path(path)
    if path.is_dir():
        raise EvalDataError(f"{path}: is a folder, not a jsonl file")
    if not path.is_file():
        raise EvalDataError(f"{path}: file not found")
    try:
        return list(iter_json_objects(path))
    except JsonLinesError as error:
        raise EvalDataError(str(error)) from error


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All objects of a jsonl file (blank lines skipped); errors name the file and line."""
    return [record for _, record in read_numbered_jsonl(path)]


def check_output_path(out: Path, inputs: Sequence[Path | None]) -> None:
    """Refuse an output path that is a folder or that names one of the command's input files (the
    output would replace it)."""
    out = Path(out)
    if out.is_dir():
        raise EvalDataError(f"{out}: output path is a folder; give a file path")
    for source in inputs:
        if source is not None and out.resolve() == Path(source).resolve():
            raise EvalDataError(f"{out}: output path is also an input of this command; it would be overwritten")


def listed(items: Sequence[Any]) -> str:
    """Up to MAX_LISTED items for a message: "3, 4" or, when there are more, "first: 3, 4, 7, 8, 9 ..."."""
    shown = ", ".join(str(item) for item in items[:MAX_LISTED])
    return f"first: {shown} ..." if len(items) > MAX_LISTED else shown


def counted(count: int, noun: str) -> str:
    """"1 answer", "3 answers"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def coverage_problem(source: Path, expected: Sequence[Hashable], answered: Sequence[Hashable], unit: str,
                     label: Callable[[Hashable], str] = str) -> str | None:
    """Why ``answered`` does not hold every expected id exactly as often as ``expected`` does (an id
    may be expected more than once), or None when it does. The message gives the number of missing
    ids (in question order), of extra answers to ids already answered and of answers to unknown ids
    (in answer order), each with its first few ids."""
    want, got = Counter(expected), Counter(answered)
    missing = [key for key in want if got[key] < want[key]]
    repeated = [key for key in got if want[key] and got[key] > want[key]]
    unknown = [key for key in got if not want[key]]
    parts = []
    if missing:
        count = sum(want[key] - got[key] for key in missing)
        parts.append(f"{count} of {len(expected)} {unit} missing ({listed([label(key) for key in missing])})")
    if repeated:
        count = sum(got[key] - want[key] for key in repeated)
        parts.append(f"{counted(count, 'duplicate answer')} ({listed([label(key) for key in repeated])})")
    if unknown:
        count = sum(got[key] for key in unknown)
        parts.append(f"{counted(count, 'answer')} to unknown {unit} ({listed([label(key) for key in unknown])})")
    return f"{source}: " + "; ".join(parts) if parts else None


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
