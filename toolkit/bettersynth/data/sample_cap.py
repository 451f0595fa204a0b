"""The official sample cap, exactly: ``bsynth sample IN OUT N`` (check_sample_number.py's semantics).

The official script seeds the global generator with ``random.seed(1024)`` at import, reads every
line of the jsonl, and writes ``random.sample(samples, N)`` when there are MORE than N samples
(a new, random order), else every sample in its original order. Duplicated lines are kept as
such (no deduplication). Each output line is the input line's JSON object written again as
``jsonlines`` writes it: ``json.dumps(obj, ensure_ascii=False)`` + ``\\n``; so non-ASCII text
stays as UTF-8, and whitespace inside a line may differ from the input, the content does not.

Here the generator is a fresh ``random.Random(1024)``: the same sequence as the seeded global
one, without touching global state. ``random.sample`` picks positions from the length alone, so
sampling positions and then writing those lines gives the very samples the script writes, while
holding only the (re-serialised) lines in memory. Every line is checked first; all bad lines are
reported at once, and the output appears only when complete. An output that is the input
(``bsynth sample X X``, a link to it) or a folder is refused before anything is read. Unlike the
script, an input without samples and a cap of 0 are refused: each could only write an empty file
that the next step would take for data.

    bsynth sample processed.jsonl processed-200k.jsonl 200000
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from bettersynth.constants import SEED
from bettersynth.data.jsonl import iter_json_lines
from bettersynth.data.output_path import check_output
from bettersynth.files import atomic_output
from bettersynth.data.problems import DataError, Problem


@dataclass(frozen=True)
class SampleResult:
    output: Path
    num_input: int
    num_output: int
    sampled: bool  # True when the input held more than N samples and a random subset was taken


def sample_positions(count: int, n: int, seed: int = SEED) -> list[int]:
    """0-based positions the official cap keeps out of ``count`` lines, in output order."""
    if n < 0:
        raise ValueError(f"N must be >= 0, got {n}")
    if n < count:
        return random.Random(seed).sample(range(count), n)
    return list(range(count))


def sample_cap(in_path: Path, out_path: Path, n: int, seed: int = SEED,
               max_examples: int = 10) -> SampleResult:
    """Write the official sample cap of ``in_path`` to ``out_path``; DataError on bad lines or an
    input without samples, OutputPathError when ``out_path`` is a folder or the input itself,
    ValueError when ``n`` is below 1 (a cap of 0 could only write an empty training file)."""
    if n < 1:
        raise ValueError(f"N must be >= 1, got {n}: a cap of 0 samples leaves nothing to train on")
    check_output(Path(out_path), {"input": Path(in_path)})
    lines: list[str] = []
    problems: list[Problem] = []
    for line in iter_json_lines(Path(in_path)):
        if line.error is not None:
            problems.append(Problem("invalid_line", line.error, line.lineno))
        elif not isinstance(line.value, dict):
            problems.append(Problem("not_an_object",
                                    f"expected a JSON object, got {type(line.value).__name__}", line.lineno))
        elif not problems:
            lines.append(json.dumps(line.value, ensure_ascii=False) + "\n")
    if not lines and not problems:
        problems.append(Problem("empty_file", "the file holds no samples: nothing to sample"))
    if problems:
        raise DataError(in_path, problems, max_examples)
    positions = sample_positions(len(lines), n, seed)
    with atomic_output(Path(out_path)) as out:
        out.writelines(lines[p] for p in positions)
    return SampleResult(Path(out_path), len(lines), len(positions), sampled=n < len(lines))
