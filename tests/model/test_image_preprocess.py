"""Preprocessing equals a step-by-step PIL + torch reference on real JPEGs; bad files fail loudly.

Uses real JPEGs of the shared 1k sample (skipped where absent) and the tiny CLIP folder's
preprocessor_config.json (OpenAI CLIP mean/std, bicubic) with A = 768 as in the real run.

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_preprocess.py -q``
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bettersynth.constants import CLIP_MEAN, CLIP_STD, PAD_COLOR
from bettersynth.model.preprocess import ImageLoadError, ImagePreprocessor

# Shared-sample images: wider than tall, taller than wide, square.
SAMPLE_IMAGES = ["images/00038/000381368.jpg", "images/00243/002433621.jpg", "images/00444/004446105.jpg"]


def reference(path, size: int, aspect: str) -> torch.Tensor:
    """The spec by hand: RGB, optional centred pad, bicubic shortest-edge resize, centre crop, normalise."""
    image = Image.open(path).convert("RGB")
    if aspect == "pad":
        width, height = image.size
        side = max(width, height)
        canvas = Image.new("RGB", (side, side), (122, 116, 104))
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        image = canvas
    width, height = image.size
    if width <= height:
        new_width, new_height = size, int(size * height / width)
    else:
        new_width, new_height = int(size * width / height), size
    image = image.resize((new_width, new_height), Image.Resampling.BICUBIC)
    top, left = (new_height - size) // 2, (new_width - size) // 2
    image = image.crop((left, top, left + size, top + size))
    pixels = torch.from_numpy(np.asarray(image).astype(np.float64) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float64)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float64)[:, None, None]
    return ((pixels - mean) / std).float()


@pytest.fixture(scope="module")
def preprocessor(tiny_dirs):
    return ImagePreprocessor.from_vision_tower(tiny_dirs["clip"], image_size_aux=768)


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
@pytest.mark.parametrize("aspect", ["square", "pad"])
def test_matches_step_by_step_reference(preprocessor, real_sample_dir, name, aspect):
    path = real_sample_dir / name
    out = preprocessor(preprocessor.load(path), aspect)
    assert out.shape == (3, 768, 768) and out.dtype == torch.float32
    torch.testing.assert_close(out, reference(path, 768, aspect), rtol=0, atol=1e-5)


def test_pad_and_square_differ_on_non_square_images(preprocessor, real_sample_dir):
    image = preprocessor.load(real_sample_dir / SAMPLE_IMAGES[0])
    padded, cropped = preprocessor(image, "pad"), preprocessor(image, "square")
    pad_value = (torch.tensor(PAD_COLOR) / 255.0 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(padded[:, 0, 384], pad_value, atol=1e-5, rtol=0)  # top border is pad colour
    assert not torch.allclose(padded, cropped)


def test_pad_colour_is_the_clip_mean(preprocessor):
    assert preprocessor.pad_color == PAD_COLOR
    assert preprocessor.image_size == 768


def test_small_synthetic_image_in_pad_mode(tiny_dirs, tmp_path):
    """Works without the shared sample: a 30x20 image through A = 64."""
    rng = np.random.default_rng(0)
    path = tmp_path / "small.png"
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
    pre = ImagePreprocessor.from_vision_tower(tiny_dirs["clip"], image_size_aux=64)
    torch.testing.assert_close(pre(pre.load(path), "pad"), reference(path, 64, "pad"), rtol=0, atol=1e-5)


def test_grayscale_and_rgba_become_rgb(preprocessor, tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (40, 50), 128).save(path)
    assert preprocessor.load(path).mode == "RGB"
    assert preprocessor(Image.new("RGBA", (40, 50)), "pad").shape == (3, 768, 768)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ImageLoadError, match="nope.jpg"):
        ImagePreprocessor.load(missing)


def test_undecodable_and_truncated_files_fail(tmp_path, real_sample_dir):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(ImageLoadError, match="garbage.jpg"):
        ImagePreprocessor.load(garbage)
    data = (real_sample_dir / SAMPLE_IMAGES[0]).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated.jpg"):
        ImagePreprocessor.load(truncated)


def test_unknown_aspect_is_an_error(preprocessor):
    with pytest.raises(ValueError, match="aspect must be one of"):
        preprocessor(Image.new("RGB", (8, 8)), "crop")


def test_truncated_file_fails_even_when_pil_is_set_to_tolerate_it(tmp_path):
    """Data-Juicer sets PIL's LOAD_TRUNCATED_IMAGES process-wide on import; the loader must not care."""
    from PIL import Image, ImageFile

    from bettersynth.model.preprocess import ImageLoadError, ImagePreprocessor

    good = tmp_path / "good.jpg"
    Image.effect_noise((64, 64), 50).convert("RGB").save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(ImageLoadError, match="truncated.jpg"):
            ImagePreprocessor.load(truncated)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is left as it was
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_16_bit_greyscale_is_refused_instead_of_turning_white(tmp_path):
    """convert('RGB') clips 16-bit values to 255: the official loader would train on a white image."""
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16)).save(path)
    with pytest.raises(ImageLoadError) as caught:
        ImagePreprocessor.load(path)
    assert str(caught.value) == (f"{path}: mode I;16 (16/32-bit greyscale or float): convert('RGB') clips it to "
                                 "0..255 (a 16-bit image turns white); save it as 8-bit first")


def test_extreme_aspect_ratio_is_refused_before_preprocessing(tmp_path):
    """A 20000x20 JPEG took 5.6 GB and 30 s to preprocess at 768: it stops at the header check."""
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (20000, 20), (200, 30, 60)).save(path)
    with pytest.raises(ImageLoadError) as caught:
        ImagePreprocessor.load(path)
    assert caught.value.kind == "image_size"
    assert caught.value.reason.startswith("20000x20 pixels: the long side 20000 is over 6144 px and the aspect "
                                          "ratio 1000.0 is over 20, over the limits")
