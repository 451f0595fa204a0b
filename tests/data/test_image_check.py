"""The image rule that ``bsynth validate`` and the training loader share (``data/image_check.py``).

Each PIL mode is decided and checked on a small file: the modes kept give the pixel values
``convert("RGB")`` should give; 16-bit greyscale (which ``convert("RGB")`` turns white), float and
LAB are refused with their reason. Size and aspect ratio are refused from the header alone: a PNG
whose header claims 100000x30 but holds no pixel data is refused for its size, not reported as
undecodable, so the check runs before any decoding.

    HF_HUB_OFFLINE=1 python -m pytest tests/data/test_image_check.py -q
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image
from data_helpers import write_png

from bettersynth.data.image_check import ImageLoadError, check_image, check_images, load_rgb, size_problem

SIZE_ADVICE = ("over the limits that keep preprocessing one image under a gigabyte; resize it or filter "
               "it out (Data-Juicer's image_shape_filter, image_aspect_ratio_filter)")
HIGH_BIT_DEPTH = ("(16/32-bit greyscale or float): convert('RGB') clips it to 0..255 (a 16-bit image "
                  "turns white); save it as 8-bit first")


def _palette_image(transparent: bool) -> Image.Image:
    image = Image.new("P", (3, 2), 1)
    image.putpalette([0, 0, 0, 200, 100, 50])
    if transparent:
        image.info["transparency"] = 1
    return image


# (name, writer, expected RGB of pixel (0, 0))
KEPT = [
    ("L.png", lambda p: Image.new("L", (3, 2), 77).save(p), (77, 77, 77)),
    ("1.png", lambda p: Image.new("1", (3, 2), 1).save(p), (255, 255, 255)),
    ("P.png", lambda p: _palette_image(False).save(p), (200, 100, 50)),
    ("P-transparent.png", lambda p: _palette_image(True).save(p), (200, 100, 50)),
    ("RGBA.png", lambda p: Image.new("RGBA", (3, 2), (10, 20, 30, 0)).save(p), (10, 20, 30)),
    ("LA.png", lambda p: Image.new("LA", (3, 2), (100, 0)).save(p), (100, 100, 100)),
    ("CMYK.tif", lambda p: Image.new("CMYK", (3, 2), (0, 255, 255, 0)).save(p), (255, 0, 0)),
    ("rgb16.png", lambda p: write_png(p, 1, 1, 16, 2, struct.pack(">HHH", 0x1234, 0x8000, 0xFFFF)),
     (0x12, 0x80, 0xFF)),
    ("rgba16.png", lambda p: write_png(p, 1, 1, 16, 6, struct.pack(">HHHH", 0x1234, 0x8000, 0xFFFF, 0)),
     (0x12, 0x80, 0xFF)),
    ("la16.png", lambda p: write_png(p, 1, 1, 16, 4, struct.pack(">HH", 0x1234, 0x8000)), (0x12, 0x12, 0x12)),
]


@pytest.mark.parametrize("name, write, expected", KEPT, ids=[case[0] for case in KEPT])
def test_kept_modes_convert_to_the_right_colour(tmp_path, name, write, expected):
    path = tmp_path / name
    write(path)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == expected
    assert check_image(str(path)) is None


def test_a_16_bit_png_would_turn_white_and_is_refused(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((4, 6), 40000, dtype=np.uint16)).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16" and image.convert("RGB").getpixel((0, 0)) == (255, 255, 255)  # the hazard
    with pytest.raises(ImageLoadError) as caught:
        load_rgb(path)
    assert str(caught.value) == f"{path}: mode I;16 {HIGH_BIT_DEPTH}"
    assert (caught.value.kind, caught.value.reason) == ("image_mode", f"mode I;16 {HIGH_BIT_DEPTH}")
    assert check_images([str(path)], workers=1)[str(path)].message == str(caught.value)


@pytest.mark.parametrize("mode, value, reason", [
    ("I", 70000, f"mode I {HIGH_BIT_DEPTH}"),
    ("F", 0.5, f"mode F {HIGH_BIT_DEPTH}"),
    ("LAB", (50, 0, 0), "mode LAB: convert('RGB') does not give its colours correctly; save it as RGB first"),
])
def test_other_modes_that_convert_wrongly_are_refused(tmp_path, mode, value, reason):
    path = tmp_path / f"{mode}.tif"
    Image.new(mode, (3, 2), value).save(path)
    failure = check_image(str(path))
    assert (failure.kind, failure.message) == ("image_mode", f"{path}: {reason}")


@pytest.mark.parametrize("width, height, reason", [
    (6144, 6144, None),
    (6144, 308, None),                                      # aspect 19.95
    (200, 10, None),                                        # aspect exactly 20
    (201, 10, "201x10 pixels: the aspect ratio 20.1 is over 20"),
    (6145, 4000, "6145x4000 pixels: the long side 6145 is over 6144 px"),
    (20, 20000, "20x20000 pixels: the long side 20000 is over 6144 px and the aspect ratio 1000.0 is over 20"),
])
def test_size_limits(width, height, reason):
    assert size_problem(width, height) == (None if reason is None else f"{reason}, {SIZE_ADVICE}")


def test_extreme_aspect_ratio_is_refused(tmp_path):
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (20000, 20), (200, 30, 60)).save(path)
    failure = check_image(str(path))
    assert failure.kind == "image_size"
    assert failure.message == (f"{path}: 20000x20 pixels: the long side 20000 is over 6144 px and the aspect "
                               f"ratio 1000.0 is over 20, {SIZE_ADVICE}")


def test_size_is_checked_on_the_header_before_decoding(tmp_path):
    """The header claims a size but the file holds no pixel data: decoding it would fail."""
    inside = write_png(tmp_path / "inside.png", 300, 200, 8, 2, b"")
    assert check_image(str(inside)).kind == "image_undecodable"  # the body is indeed unreadable
    huge = write_png(tmp_path / "huge.png", 100000, 30, 8, 2, b"")
    failure = check_image(str(huge))
    assert failure.kind == "image_size"
    assert failure.message.startswith(f"{huge}: 100000x30 pixels: the long side 100000 is over 6144 px")


def test_decompression_bomb_header_is_a_size_refusal(tmp_path):
    bomb = write_png(tmp_path / "bomb.png", 20000, 20000, 8, 2, b"")
    failure = check_image(str(bomb))
    assert failure.kind == "image_size" and "exceeds limit" in failure.message


def test_missing_and_undecodable_files(tmp_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image")
    assert check_image(str(tmp_path / "absent.jpg")).message == f"{tmp_path / 'absent.jpg'}: image file not found"
    failure = check_image(str(garbage))
    assert failure.kind == "image_undecodable" and failure.message.startswith(f"{garbage}: UnidentifiedImageError")


def test_the_error_is_rebuilt_from_its_message():
    """DataLoader workers re-raise an exception by calling its type on the message alone."""
    error = ImageLoadError("x.png: broken")
    assert (str(error), error.kind, error.reason) == ("x.png: broken", "image_undecodable", "x.png: broken")
