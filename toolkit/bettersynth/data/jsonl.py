"""Reading JSON-lines files line by line (the one jsonl reader of the toolkit).

Reading follows what Data-Juicer's tools accept (they read with ``jsonlines``): UTF-8, an optional
BOM, one JSON value a line, no ``NaN``/``Infinity`` literals; a string holding a lone surrogate escape
(``"\\ud800"``), which parses but cannot be written back as UTF-8, makes its line bad. Two ways to read:

- ``iter_json_lines`` (the data commands): a bad line does not stop the reader; each line comes
  back with its number and either its value or the reason it is bad (a blank line is bad too), so
  callers can report every problem at once;
- ``iter_json_objects`` (evaluation files, recipe pools): blank lines are skipped and the first
  line that is not a JSON object raises ``JsonLinesError`` naming ``file:line``.

Outputs are written with ``bettersynth.files.atomic_output``.

    from bettersynth.data.jsonl import iter_json_lines, iter_json_objects
    for line in iter_json_lines(path):
        if line.error: ...
    for lineno, record in iter_json_objects(path): ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BOM = b"\xef\xbb\xbf"


class InputError(Exception):
    """An input file is missing or unusable as a whole (the message names it)."""


class JsonLinesError(ValueError):
    """A line that is not a JSON object (``iter_json_objects``); the message names the file and line."""


@dataclass(frozen=True)
class JsonLine:
    """One line of a JSON-lines file: its 1-based number and its value, or why it is not valid."""

    lineno: int
    value: Any = None
    error: str | None = None
    blank: bool = False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for all lines (json.loads with an option builds a new one per call).
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def loads_strict(text: str) -> Any:
    """``json.loads`` without the NaN/Infinity extension (strict JSON, as Data-Juicer's readers)."""
    return _STRICT_DECODER.decode(text)


def encodable(value: Any) -> bool:
    """Whether ``value`` can be written back as UTF-8 (a lone ``\\ud800`` escape parses but cannot)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_file(path: Path) -> Path:
    """``path`` as a Path; InputError when it is missing or is not a regular file (a folder, a pipe)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"input {path} is a folder: give the path of a file")
    if path.exists() and not path.is_file():  # read more than once by some commands, which a pipe cannot be
        raise InputError(f"input {path} is not a regular file (a named pipe or a device): give the path of a file")
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    return path


def iter_json_lines(path: Path) -> Iterator[JsonLine]:
    """Yield every line of ``path`` parsed as JSON; bad lines carry ``error`` instead of a value."""
    path = require_file(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield JsonLine(lineno, error=f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            if not text.strip():
                yield JsonLine(lineno, error="blank line", blank=True)
                continue
            try:
                value = loads_strict(text)
            except ValueError as exc:
                yield JsonLine(lineno, error=f"invalid JSON: {exc}")
                continue
            if "\\u" in text and not encodable(value):
                yield JsonLine(lineno, error="a lone surrogate escape (\\ud800-\\udfff) that UTF-8 cannot encode")
                continue
            yield JsonLine(lineno, value=value)


def iter_json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of ``path``; the first bad line raises
    ``JsonLinesError("path:N: why")``, a missing file ``InputError``."""
    for line in iter_json_lines(path):
        if line.blank:
            continue
        if line.error is not None:
            raise JsonLinesError(f"{path}:{line.lineno}: {line.error}")
        if not isinstance(line.value, dict):
            raise JsonLinesError(f"{path}:{line.lineno}: expected a JSON object, got {type(line.value).__name__}")
        yield line.lineno, line.value


def load_json(path: Path) -> Any:
    """Load a whole JSON document (strict: NaN and Infinity are not JSON, as in the jsonl lines), naming
    the file in the error when it is missing or invalid."""
    path = require_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            return loads_strict(f.read())
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc
