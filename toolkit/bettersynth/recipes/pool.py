"""The jsonl files around a Data-Juicer run: the staged input and the finished export.

Image paths in the seed pool (and in every pool the toolkit writes) are relative to an image
root. Data-Juicer resolves relative paths against the dataset file's folder and writes absolute
paths on export, so:

- ``stage_input`` writes the input with absolute paths (image root + relative path), checking on
  the way that every line is a JSON object with a ``text`` string and an ``images`` list of existing
  files: a bad line stops the run before Data-Juicer starts, with the file and line number (Data-Juicer's
  default executor would drop a sample whose text is null or missing without a word);
- ``write_export`` turns Data-Juicer's export back into paths relative to the image root; the
  images a recipe drew (under the run's ``synthetic_images/NAME/`` folder, ``DJ_PRODUCED_DATA_DIR``)
  become paths relative to the export's folder and their sample is marked ``"synthetic_images": true``
  (bettersynth.data.image_roots); any other image is an error naming the sample. It writes to a
  file that the caller renames into place only when everything succeeded. The Ray executor exports
  a folder of shards; they are concatenated in file-name order.

So ``bsynth recipe run``'s export has the seed pool's own layout, and ``bsynth validate`` /
``bsynth dj2llava`` read it with the same ``--image-root`` as the seed pool. A recipe runs on a
seed pool: an input that already holds synthetic samples is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from bettersynth.data.image_roots import SYNTHETIC_FIELD
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
    ``staged`` appears only when every line passed and there was one at least."""
    count = 0
    with atomic_output(staged) as out:
        for number, row in _lines(dataset):
            if not isinstance(row.get("text"), str):
                raise PoolError(f"{dataset}:{number}: sample {row.get('id')!r}: `text` must be a string, got "
                                f"{row.get('text')!r} (Data-Juicer would drop the sample silently)")
            images = row.get("images", [])
            if not isinstance(images, list) or not all(isinstance(path, str) for path in images):
                raise PoolError(f"{dataset}:{number}: `images` must be a list of paths")
            if row.get(SYNTHETIC_FIELD):
                raise PoolError(f"{dataset}:{number}: sample {row.get('id')!r} has synthetic images (a recipe's "
                                f"export): run the recipe on the seed pool it was made from instead")
            absolute = [str(image_root / path) for path in images]
            for path in absolute:
                if not os.path.isfile(path):
                    raise PoolError(f"{dataset}:{number}: sample {row.get('id')!r}: image {path} does not exist")
            row["images"] = absolute
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        if count == 0:  # Data-Juicer would stop with a bare StopIteration
            raise PoolError(f"{dataset}: the file holds no samples: nothing to run the recipe on")
    return count


def export_files(dj_export: Path) -> list[Path]:
    """The file Data-Juicer exported, or the shards of a Ray export, in order."""
    if dj_export.is_dir():
        return sorted(path for path in dj_export.iterdir() if path.suffix in (".json", ".jsonl"))
    if dj_export.is_file():
        return [dj_export]
    raise PoolError(f"Data-Juicer wrote no export at {dj_export}")


def exported_images(row: dict, image_root: Path, synthetic_dir: Path, export_dir: Path, where: str) -> list[str]:
    """``row``'s image paths as the export holds them; marks ``row`` synthetic when its images were
    drawn by the run (all of them under ``synthetic_dir``: then relative to ``export_dir``)."""
    images = [Path(os.path.normpath(path)) for path in row.get("images") or []]
    drawn = [path.is_relative_to(synthetic_dir) for path in images]
    row.pop(SYNTHETIC_FIELD, None)
    if images and all(drawn):
        row[SYNTHETIC_FIELD] = True
        return [path.relative_to(export_dir).as_posix() for path in images]
    if any(drawn):
        raise PoolError(f"{where}: sample {row.get('id')!r} mixes drawn and seed images: {row['images']}")
    outside = [str(path) for path in images if not path.is_relative_to(image_root)]
    if outside:
        raise PoolError(f"{where}: sample {row.get('id')!r}: image {outside[0]} is neither under the image root "
                        f"{image_root} nor among the images this run drew ({synthetic_dir}); an operator that "
                        f"writes images must write them under DJ_PRODUCED_DATA_DIR (leave its save_dir unset)")
    return [str(path.relative_to(image_root)) for path in images]


def write_export(dj_export: Path, image_root: Path, synthetic_dir: Path, target: Path) -> tuple[int, int]:
    """Write Data-Juicer's export to ``target`` (see the module docstring); returns (samples, synthetic samples)."""
    root, drawn = Path(os.path.normpath(image_root)), Path(os.path.normpath(synthetic_dir))
    export_dir = Path(os.path.normpath(target.parent))
    count = synthetic = 0
    with target.open("w", encoding="utf-8") as out:
        for source in export_files(dj_export):
            for number, row in _lines(source):
                row["images"] = exported_images(row, root, drawn, export_dir, f"{source}:{number}")
                synthetic += row.get(SYNTHETIC_FIELD, False)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count, synthetic
