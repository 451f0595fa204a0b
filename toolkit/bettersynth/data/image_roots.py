"""Where a sample's images are: the one rule for pools that hold seed images and synthetic images.

A recipe that draws new images (``fast_image_regeneration_mapper``) exports samples of two kinds:

- a **seed** sample's image paths are relative to the image root (the seed pool's folder, the
  ``--image-root`` of ``bsynth validate`` / ``bsynth dj2llava`` and training's ``--image_folder``),
  as in the seed pool itself;
- a **synthetic** sample carries ``"synthetic_images": true`` and its image paths are relative to the
  folder of the jsonl file that holds it (Data-Juicer's own rule for relative paths). ``bsynth recipe
  run`` writes the new images of an export ``DIR/NAME.jsonl`` into ``DIR/synthetic_images/NAME/``,
  committed with the export, so a path reads ``synthetic_images/NAME/<op>/3f/<image>_<hash>.jpg``
  (``output/processed_data/synthetic_images/`` is where the offline round's submission has them).

So the export, the capped file and the proxy subset (written beside it by the main job) need no
second option: each consumer calls :func:`image_path` with the sample, the file it came from and
the image root. ``bsynth dj2llava`` writes a synthetic sample's image as an absolute path (LLaVA json
has one image folder; training joins it with ``--image_folder``, which leaves an absolute path as it
is), so training needs nothing more either. A file holding synthetic samples must stay beside its
``synthetic_images/`` folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SYNTHETIC_FIELD = "synthetic_images"
SYNTHETIC_FOLDER = "synthetic_images"


class ImageRootError(ValueError):
    """A sample whose images cannot be placed by the rule above; the message says why."""


def synthetic_images_dir(export: Path) -> Path:
    """The folder of the images a recipe drew for ``export`` (``DIR/NAME.jsonl`` -> ``DIR/synthetic_images/NAME``)."""
    return export.parent / SYNTHETIC_FOLDER / export.stem


def is_synthetic(sample: dict[str, Any]) -> bool:
    """Whether ``sample``'s images are synthetic; ImageRootError when the field is there but not a boolean."""
    value = sample.get(SYNTHETIC_FIELD, False)
    if not isinstance(value, bool):
        raise ImageRootError(f"{SYNTHETIC_FIELD!r} must be true or false, got {value!r}")
    return value


def names_below(relative: str) -> bool:
    """Whether a relative path names something below its folder: not the folder itself, not above it (``..``)."""
    normalized = os.path.normpath(relative)
    return normalized not in (os.curdir, os.pardir) and not normalized.startswith(os.pardir + os.sep)


def image_path(sample: dict[str, Any], image: str, data_file: Path, image_root: Path) -> str:
    """The full path of ``image`` (one of ``sample``'s images) read from ``data_file``.

    A seed image may be absolute (Data-Juicer exports absolute paths); a synthetic one must be
    relative and below the file's folder, since it moves with that folder.
    """
    if is_synthetic(sample):
        if os.path.isabs(image) or not names_below(image):
            raise ImageRootError(f"synthetic image {image} must be relative to the folder of {data_file}, "
                                 "below it")
        return os.path.normpath(os.path.join(Path(data_file).parent, image))
    return os.path.normpath(os.path.join(image_root, image))
