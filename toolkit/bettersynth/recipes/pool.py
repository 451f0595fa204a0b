"""The jsonl files around a Data-Juicer run: the staged input and the finished export.

Image paths in the seed pool (and in every pool the toolkit writes) are relative to an image
root. Data-Juicer resolves relative paths against the dataset file's folder and writes absolute
paths on export, so:

- ``stage_input`` writes the input with absolute paths (image root + relative path), checking on
  the way that every line is a JSON object with an ``images`` list of existing files: a bad line
  stops the run before Data-Juicer starts, with the file and line number;
- ``write_export`` turns Data-Juicer's export back into paths relative to the image root (paths
  outside it, e.g. images a recipe synthesised elsewhere, stay absolute) and writes it to a
  temporary file that the caller renames into place only when everything succeeded. The Ray
  executor exports a folder of shards; they are concatenated in file-name order.

So ``bsynth recipe run``'s export has the seed pool's own layout, and ``bsynth validate`` /
``bsynth dj2llava`` read it with the same ``--image-root`` as the seed pool.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from bettersynth.data.jsonl import InputError, JsonLinesError, iter_json_objects
from bettersynth.files import atomic_output


class PoolError(ValueError):
    """A line of a pool that cannot be used; the message names the file and line."""


def _lines(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        yield from iter_json_objects(path)
    except (JsonLinesError, InputError) as error:
        raise PoolError(str(error)) from error


def stage_input(dataset: Path, image_root: Path, staged: Path) -> int:
    """Copy ``dataset`` to ``staged`` with absolute, existing image paths; returns the sample count.
    ``staged`` appears only when every line passed."""
    count = 0
    with atomic_output(staged) as out:
        for number, row in _lines(dataset):
            images = row.get("images", [])
            if not isinstance(images, list) or not all(isinstance(path, str) for path in images):
                raise PoolError(f"{dataset}:{number}: `images` must be a list of paths")
            absolute = [str(image_root / path) for path in images]
            for path in absolute:
                if not os.path.isfile(path):
                    raise PoolError(f"{dataset}:{number}: sample {row.get('id')!r}: image {path} does not exist")
            row["images"] = absolute
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def export_files(dj_export: Path) -> list[Path]:
    """The file Data-Juicer exported, or the shards of a Ray export, in order."""
    if dj_export.is_dir():
        return sorted(path for path in dj_export.iterdir() if path.suffix in (".json", ".jsonl"))
    if dj_export.is_file():
        return [dj_export]
    raise PoolError(f"Data-Juicer wrote no export at {dj_export}")


def relative_image_path(path: str, image_root: Path) -> str:
    """``path`` relative to ``image_root`` when inside it (no symlinks followed), else unchanged."""
    normalized = Path(os.path.normpath(path))
    return str(normalized.relative_to(image_root)) if normalized.is_relative_to(image_root) else path


def write_export(dj_export: Path, image_root: Path, target: Path) -> int:
    """Write Data-Juicer's export to ``target`` with image paths relative to ``image_root``;
    returns the sample count."""
    root = Path(os.path.normpath(image_root))
    count = 0
    with target.open("w", encoding="utf-8") as out:
        for source in export_files(dj_export):
            for _, row in _lines(source):
                row["images"] = [relative_image_path(path, root) for path in row.get("images") or []]
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count
