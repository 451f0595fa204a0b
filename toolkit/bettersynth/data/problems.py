"""Problems found in a data file, collected instead of raised one at a time, and reported together.

The official tools stop at the first bad sample, so a 400k-sample file with 3,000 unknown ids takes
3,000 runs to fix. Here every check records a :class:`Problem` (kind, where, which sample) and the
command reports them all at the end: a count per kind and the first few examples of each.

    problems = [Problem("unknown_id", "id not in stage_1.json", line=12, sample_id="0042")]
    raise DataError(path, problems)        # str(): counts per kind + first examples
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Problem:
    """One problem: its kind (a short snake_case name), a message, and where it is."""

    kind: str
    message: str
    line: int | None = None  # 1-based line of a jsonl file, or 1-based record of a json array
    sample_id: Any = None
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def where(self, path: Path | str, unit: str = "line") -> str:
        place = f"{path}:{unit} {self.line}" if self.line is not None else str(path)
        return place if self.sample_id is None else f"{place} (id {self.sample_id!r})"


def summarize(path: Path | str, problems: list[Problem], max_examples: int = 10,
              unit: str = "line") -> str:
    """Human summary: one header per kind with its count, then up to ``max_examples`` examples."""
    counts = Counter(p.kind for p in problems)
    lines = [f"{len(problems)} problem(s) in {path}:"]
    for kind, count in counts.most_common():
        examples = [p for p in problems if p.kind == kind][:max_examples]
        shown = f", first {len(examples)}" if count > len(examples) else ""
        lines.append(f"  {kind}: {count}{shown}")
        lines.extend(f"    {p.where(path, unit)}: {p.message}" for p in examples)
    return "\n".join(lines)


class DataError(Exception):
    """Every error found in one input file; ``str()`` is the per-kind summary."""

    def __init__(self, path: Path | str, problems: list[Problem], max_examples: int = 10,
                 unit: str = "line") -> None:
        self.path = path
        self.problems = problems
        super().__init__(summarize(path, problems, max_examples, unit))
