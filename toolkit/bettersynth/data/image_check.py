"""Do image files exist and decode completely? Checked in parallel worker processes (for validate).

Decoding is what training does to every image (PIL open + full ``load()``), so a truncated or
corrupt file fails here instead of mid-run, where the official loader silently swaps in another
sample. Each worker takes a chunk of paths to keep the inter-process traffic small.

Decoding always happens in worker processes that use PIL's strict default for truncated files:
``import data_juicer`` sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` for its whole process,
after which a truncated JPEG decodes without error (its missing part filled in grey).

    from bettersynth.data.image_check import check_images
    failures = check_images(["/data/a.jpg", ...], workers=16)   # {path: ImageFailure}
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from PIL import Image, ImageFile


@dataclass(frozen=True)
class ImageFailure:
    kind: str  # "image_missing" | "image_undecodable"
    message: str


def check_image(path: str) -> ImageFailure | None:
    """None when ``path`` is a file that PIL opens and decodes fully, else why not."""
    if not os.path.isfile(path):
        return ImageFailure("image_missing", f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            if image.width < 1 or image.height < 1:
                return ImageFailure("image_undecodable", f"{path}: empty image ({image.size})")
    # Any exception while decoding (OSError for truncation, SyntaxError, struct errors from
    # malformed headers, DecompressionBombError ...) means training cannot read it: report it.
    except Exception as exc:  # noqa: BLE001 - recorded with its type, never swallowed
        return ImageFailure("image_undecodable", f"{path}: {type(exc).__name__}: {exc}")
    return None


def _check_chunk(paths: list[str]) -> list[tuple[str, ImageFailure]]:
    return [(p, f) for p in paths if (f := check_image(p)) is not None]


def _strict_decoding() -> None:
    """Worker initializer: truncated files raise (undoes Data-Juicer's import-time setting)."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False


def check_images(paths: list[str], workers: int = 1) -> dict[str, ImageFailure]:
    """Failures by path for every path that is missing or does not decode (in ``workers`` processes)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not paths:
        return {}
    # Several chunks per worker balance uneven image sizes; at least 16 paths amortise the IPC.
    size = max(16, -(-len(paths) // (workers * 8)))
    chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
    failures: dict[str, ImageFailure] = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), initializer=_strict_decoding) as pool:
        for found in pool.map(_check_chunk, chunks):
            failures.update(found)
    return failures
