"""Which image files training can use: the one rule that ``bsynth validate`` and the loader share.

``load_rgb(path)`` is how training (``model/preprocess.py``, used by ``train/dataset.py``) and
TextVQA evaluation read an image file: the official kit's ``Image.open(path).convert("RGB")``,
guarded so that an image it would train on wrongly, or that would cost gigabytes, stops with a
reason instead. ``bsynth validate`` runs the very same function on every image (``check_images``,
in worker processes), so validate and the loader cannot disagree. Checks, in this order:

1. ``image_missing``: the file exists (a folder named like an image is not one); an empty
   file (0 bytes) is ``image_undecodable``.
2. ``image_size``, read from the header (``Image.open`` is lazy: no pixel is decoded yet):
   the long side is at most ``MAX_IMAGE_SIDE`` (6144) pixels and the long side over the short
   side at most ``MAX_ASPECT_RATIO`` (20). Why: finetune pads to a square of the long side and
   pretrain resizes the short side to 768 before cropping, and the CLIP processor copies the
   whole picture into numpy arrays on the way (about 13 bytes a pixel). A 20000x20 JPEG took
   5.6 GB and 30 s to preprocess at 768; within the limits the worst cases measured 0.65 GB and
   2.5 s (6144x6144, padded) and 0.12 GB and 0.6 s (aspect 20, cropped). The real seed sample
   has at most 1936 px and an aspect of 5.8, so the limits only stop accidents.
3. ``image_mode``: the header's mode converts correctly with ``convert("RGB")``:
   - kept, as the official loader converts them: ``RGB``, ``RGBX``, ``L`` and ``1`` (grey
     repeated), ``P`` (palette applied), ``YCbCr``, ``CMYK`` (PIL's plain inversion, no colour
     profile), ``RGBA``, ``LA`` and ``PA`` (alpha dropped: transparent pixels show the colour
     stored under them, exactly what the official kit trains on). 16-bit RGB(A) and grey+alpha
     PNGs open as ``RGB``/``RGBA`` holding each value's high byte, which is right;
   - refused: 16- and 32-bit greyscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, ``I``) and
     float (``F``), which ``convert("RGB")`` clips to 0..255 (a 16-bit PNG turns white); they
     are refused rather than rescaled because the official kit would train on the white image, so
     a rescaled local run would not match it: save such images as 8-bit first. ``LAB``, ``HSV``,
     ``La``, ``RGBa`` and any other mode are refused too (``LAB`` converts to wrong colours).
4. ``image_undecodable``: every pixel decodes, strictly. ``import data_juicer`` sets PIL's
   ``LOAD_TRUNCATED_IMAGES`` for its whole process, after which a truncated JPEG decodes without
   error (its missing part grey): the flag is turned off while decoding and restored after.

Multi-frame files give their first frame and EXIF orientation is not applied, as in the official
loader.

    from bettersynth.data.image_check import ImageLoadError, check_images, load_rgb
    image = load_rgb("/data/a.jpg")                               # RGB, or ImageLoadError
    failures = check_images(["/data/a.jpg", ...], workers=16)     # {path: ImageFailure}
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile

MAX_IMAGE_SIDE = 6144
MAX_ASPECT_RATIO = 20
CONVERTIBLE_MODES = frozenset({"RGB", "RGBX", "L", "1", "P", "YCbCr", "CMYK", "RGBA", "LA", "PA"})
HIGH_BIT_DEPTH_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


class ImageLoadError(Exception):
    """An image file training cannot use: ``str()`` is "path: reason", ``kind`` names the check.

    One message alone builds it too: a DataLoader worker's exception is re-raised from its message.
    """

    def __init__(self, message: str, kind: str = "image_undecodable", reason: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason or message


def _refusal(path: str, kind: str, reason: str) -> ImageLoadError:
    return ImageLoadError(f"{path}: {reason}", kind, reason)


@dataclass(frozen=True)
class ImageFailure:
    kind: str  # "image_missing" | "image_size" | "image_mode" | "image_undecodable"
    message: str


def size_problem(width: int, height: int) -> str | None:
    """Why an image of this size is refused (before decoding), or None."""
    if min(width, height) < 1:
        return f"empty image ({width}x{height})"
    over = []
    if max(width, height) > MAX_IMAGE_SIDE:
        over.append(f"the long side {max(width, height)} is over {MAX_IMAGE_SIDE} px")
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT_RATIO:
        over.append(f"the aspect ratio {aspect:.1f} is over {MAX_ASPECT_RATIO}")
    if not over:
        return None
    return (f"{width}x{height} pixels: {' and '.join(over)}, over the limits that keep preprocessing one "
            "image under a gigabyte; resize it or filter it out (Data-Juicer's image_shape_filter, "
            "image_aspect_ratio_filter)")


def mode_problem(mode: str) -> str | None:
    """Why ``convert("RGB")`` of this mode is refused, or None."""
    if mode in CONVERTIBLE_MODES:
        return None
    if mode in HIGH_BIT_DEPTH_MODES:
        return (f"mode {mode} (16/32-bit greyscale or float): convert('RGB') clips it to 0..255 "
                "(a 16-bit image turns white); save it as 8-bit first")
    return f"mode {mode}: convert('RGB') does not give its colours correctly; save it as RGB first"


@contextmanager
def _strict_decoding() -> Iterator[None]:
    """Truncated files raise while inside, whatever PIL's process-wide flag says; restored after."""
    tolerant = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant


def _undecodable(path: str, error: Exception) -> ImageLoadError:
    return _refusal(path, "image_undecodable", f"{type(error).__name__}: {error}")


def _check_header(path: str, image: Image.Image) -> None:
    """The size and mode checks, on the header alone (before any pixel is decoded)."""
    for kind, reason in (("image_size", size_problem(*image.size)), ("image_mode", mode_problem(image.mode))):
        if reason is not None:
            raise _refusal(path, kind, reason)


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """The decoded RGB image at ``path`` after the checks above; ImageLoadError says why not."""
    path = str(path)
    if os.path.isdir(path):
        raise _refusal(path, "image_missing", "a folder, not an image file")
    if not os.path.isfile(path):
        raise _refusal(path, "image_missing", "image file not found")
    if os.path.getsize(path) == 0:
        raise _refusal(path, "image_undecodable", "empty file (0 bytes)")
    # Any exception from PIL (OSError for truncation, SyntaxError, struct errors from malformed
    # headers ...) means training cannot read the file: it is re-raised with its type, never
    # swallowed. PIL itself refuses headers of over 2 x Image.MAX_IMAGE_PIXELS on opening.
    with _strict_decoding():
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as error:
            raise _refusal(path, "image_size", str(error)) from error
        except Exception as error:  # noqa: BLE001
            raise _undecodable(path, error) from error
        with image:
            _check_header(path, image)
            try:
                image.load()
                return image.convert("RGB")
            except Exception as error:  # noqa: BLE001
                raise _undecodable(path, error) from error


def check_image(path: str) -> ImageFailure | None:
    """None when training can use the image at ``path`` (``load_rgb`` succeeds), else why not."""
    try:
        load_rgb(path)
    except ImageLoadError as error:
        return ImageFailure(error.kind, str(error))
    return None


def _check_chunk(paths: list[str]) -> list[tuple[str, ImageFailure]]:
    return [(p, f) for p in paths if (f := check_image(p)) is not None]


def check_images(paths: list[str], workers: int = 1) -> dict[str, ImageFailure]:
    """Failures by path for every image training cannot use (checked in ``workers`` processes)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not paths:
        return {}
    # Several chunks per worker balance uneven image sizes; at least 16 paths amortise the IPC.
    size = max(16, -(-len(paths) // (workers * 8)))
    chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
    failures: dict[str, ImageFailure] = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
        for found in pool.map(_check_chunk, chunks):
            failures.update(found)
    return failures
