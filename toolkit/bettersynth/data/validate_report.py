"""The result of ``bsynth validate``: a printed summary table and a machine-readable JSON report.

The JSON report holds every error and warning as ``{kind, message, line, sample_id, severity}``
(the printed list is capped), the counts per kind, the duplicate counts and the timings.

    report.summary(max_listed=20)      # text for the terminal
    report.write_json(Path("report.json"))
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bettersynth.files import atomic_output
from bettersynth.data.problems import Problem


@dataclass(frozen=True)
class Duplicates:
    """Values seen on more than one line: how many such values, how many extra lines, examples."""

    repeated_values: int
    extra_lines: int
    examples: list[tuple[str, int]]  # (value, occurrences), most frequent first

    @classmethod
    def from_counter(cls, counts: Counter, max_examples: int = 10) -> Duplicates:
        repeated = [(str(v), n) for v, n in counts.most_common() if n > 1]
        return cls(len(repeated), sum(n - 1 for _, n in repeated), repeated[:max_examples])


@dataclass
class ValidationReport:
    file: Path
    image_root: Path
    original: Path | None
    workers: int
    num_lines: int = 0
    problems: list[Problem] = field(default_factory=list)
    duplicate_ids: Duplicates = field(default_factory=lambda: Duplicates(0, 0, []))
    duplicate_images: Duplicates = field(default_factory=lambda: Duplicates(0, 0, []))
    images_checked: int = 0
    synthetic_samples: int = 0  # samples marked "synthetic_images": true (images beside the file)
    decode_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return sorted((p for p in self.problems if p.severity == "error"), key=lambda p: p.line or 0)

    @property
    def warnings(self) -> list[Problem]:
        return sorted((p for p in self.problems if p.severity == "warning"), key=lambda p: p.line or 0)

    @property
    def lines_with_errors(self) -> int:
        """Lines holding at least one error (an error of the whole file, such as ``empty_file``, is on none)."""
        return len({p.line for p in self.errors if p.line is not None})

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        errors, warnings = self.errors, self.warnings
        return {
            "file": str(self.file), "image_root": str(self.image_root),
            "original": None if self.original is None else str(self.original),
            "ok": self.ok, "num_lines": self.num_lines,
            "num_valid_lines": self.num_lines - self.lines_with_errors,
            "num_errors": len(errors), "num_warnings": len(warnings),
            "error_counts": dict(Counter(p.kind for p in errors).most_common()),
            "warning_counts": dict(Counter(p.kind for p in warnings).most_common()),
            "duplicate_ids": vars(self.duplicate_ids), "duplicate_images": vars(self.duplicate_images),
            "images_checked": self.images_checked, "synthetic_samples": self.synthetic_samples,
            "workers": self.workers,
            "decode_seconds": round(self.decode_seconds, 3), "total_seconds": round(self.total_seconds, 3),
            "samples_per_second": round(self.num_lines / self.total_seconds, 1) if self.total_seconds else None,
            "errors": [p.to_json() for p in errors], "warnings": [p.to_json() for p in warnings],
        }

    def write_json(self, path: Path) -> None:
        with atomic_output(path) as f:
            json.dump(self.to_json(), f, ensure_ascii=False, indent=1)
            f.write("\n")

    def summary(self, max_listed: int = 20) -> str:
        errors, warnings = self.errors, self.warnings
        rate = f"{self.num_lines / self.total_seconds:,.0f} samples/s" if self.total_seconds else "-"
        rows = [
            ("file", str(self.file)),
            ("image root", str(self.image_root)),
            ("original ids", str(self.original) if self.original else "(not checked: no --original)"),
            ("lines", f"{self.num_lines:,}"),
            ("valid lines", f"{self.num_lines - self.lines_with_errors:,}"),
            ("errors", f"{len(errors):,} on {self.lines_with_errors:,} line(s)"),
            ("warnings", f"{len(warnings):,}"),
            ("duplicate ids", f"{self.duplicate_ids.repeated_values:,} id(s) on "
                              f"{self.duplicate_ids.extra_lines:,} extra line(s)"),
            ("duplicate images", f"{self.duplicate_images.repeated_values:,} image(s) on "
                                 f"{self.duplicate_images.extra_lines:,} extra line(s)"),
            ("synthetic samples", f"{self.synthetic_samples:,} (images relative to {self.file.parent})"),
            ("images decoded", f"{self.images_checked:,} in {self.decode_seconds:.2f} s "
                               f"({self.workers} worker(s))"),
            ("total time", f"{self.total_seconds:.2f} s ({rate})"),
        ]
        width = max(len(k) for k, _ in rows)
        out = [f"{k:<{width}}  {v}" for k, v in rows]
        for title, items in (("errors", errors), ("warnings", warnings)):
            if not items:
                continue
            out.append(f"\n{title} by kind:")
            out.extend(f"  {kind:<24} {n:,}" for kind, n in Counter(p.kind for p in items).most_common())
        if errors:
            capped = f" - first {max_listed}" if len(errors) > max_listed else ""
            out.append(f"\nerrors (file:line, id, kind: message){capped}:")
            out.extend(f"  {p.where(self.file)} {p.kind}: {p.message}" for p in errors[:max_listed])
        out.append("\nRESULT: " + ("OK" if self.ok else f"FAILED with {len(errors):,} error(s)"))
        return "\n".join(out)
