"""The output path of a data command is never one of its inputs, nor a folder (checked before any work).

``bsynth sample X X 5`` used to replace its input with the sample: the output is written to a
temporary file and renamed onto the target, which happily replaces the input. ``sample``,
``dj2llava``, ``llava2dj``, ``validate --report`` and ``pack --out`` call ``check_output`` first;
it raises ``OutputPathError`` (exit 1) when the output

* is an existing folder, or lies below a file (writing would fail with a traceback);
* exists and is not a regular file (a named pipe, a device such as ``/dev/null``): the finished
  output is renamed onto its path, which would replace that special file with a regular one;
* is one of the command's input files: the same path once ``..`` and symbolic links are resolved,
  or, when the output exists, the same file on disk (``os.path.samefile``: a hard link too).

    check_output(Path("in.jsonl"), {"input": Path("./in.jsonl")})   # raises OutputPathError
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class OutputPathError(Exception):
    """An output path that would destroy an input, or that cannot be written as a file."""


def _same_file(output: Path, source: Path) -> bool:
    if output.resolve() == source.resolve():
        return True
    return output.exists() and source.exists() and os.path.samefile(output, source)


def _existing_ancestor(path: Path) -> Path:
    return next(parent for parent in path.absolute().parents if parent.exists())


def check_output(output: Path, inputs: Mapping[str, Path | None]) -> None:
    """Raise OutputPathError when ``output`` cannot be written as a file or is the same file as
    one of ``inputs`` (named by role, e.g. ``{"input": path}``; None entries are not used)."""
    output = Path(output)
    if output.is_dir():
        raise OutputPathError(f"the output {output} is a folder: give the path of the file to write")
    if output.exists() and not output.is_file():
        raise OutputPathError(f"the output {output} is not a regular file (a named pipe or a device): writing "
                              "replaces it with one; give the path of a regular file")
    if not _existing_ancestor(output).is_dir():
        raise OutputPathError(f"the output {output} cannot be created: {_existing_ancestor(output)} is a file, "
                              "not a folder")
    for role, source in inputs.items():
        if source is not None and _same_file(output, Path(source)):
            raise OutputPathError(f"the output {output} is the {role} {source}: writing it would replace "
                                  "that file; choose another output path")
