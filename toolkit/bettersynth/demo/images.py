"""Draw demo scenes with PIL and encode them as JPEG, deterministically.

`draw(scene)` paints the scene's shapes (placed by a generator seeded with `scene.seed`) and its
sign word; `add_watermark` overlays stock-photo style text (noise for the recipes to remove);
`jpeg_bytes` encodes with fixed settings, so the same scene always gives the same bytes (with the
same Pillow release). Pillow's built-in font is used, so no system font is needed.
Used by the demo data builders; not run on its own.
"""

from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageDraw, ImageFont

from bettersynth.demo.scenes import COLOURS, Scene

JPEG_QUALITY = 90


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, size))


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        angles, radii = [-90, 30, 150], [r] * 3
    elif shape == "diamond":
        angles, radii = [-90, 0, 90, 180], [r] * 4
    else:  # star
        angles, radii = [-90 + 36 * k for k in range(10)], [r if k % 2 == 0 else r * 0.45 for k in range(10)]
    return [(cx + rad * math.cos(math.radians(a)), cy + rad * math.sin(math.radians(a)))
            for a, rad in zip(angles, radii)]


def _draw_shape(canvas: ImageDraw.ImageDraw, shape: str, colour: tuple[int, int, int],
                cx: float, cy: float, r: float) -> None:
    if shape == "circle":
        canvas.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "ellipse":
        canvas.ellipse((cx - r, cy - r * 0.55, cx + r, cy + r * 0.55), fill=colour)
    elif shape == "square":
        canvas.rectangle((cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8), fill=colour)
    elif shape == "rectangle":
        canvas.rectangle((cx - r, cy - r * 0.5, cx + r, cy + r * 0.5), fill=colour)
    else:
        canvas.polygon(_polygon(shape, cx, cy, r), fill=colour)


def draw(scene: Scene) -> Image.Image:
    """The scene as an RGB image of scene.width x scene.height pixels."""
    rng = random.Random(scene.seed)
    image = Image.new("RGB", (scene.width, scene.height), COLOURS[scene.background])
    canvas = ImageDraw.Draw(image)
    short = min(scene.width, scene.height)
    for item in scene.items:
        for _ in range(item.count):
            r = short * rng.uniform(0.05, 0.12)
            cx = rng.uniform(r, scene.width - r)
            cy = rng.uniform(r, scene.height - r)
            _draw_shape(canvas, item.shape, COLOURS[item.colour], cx, cy, max(r, 1.0))
    if scene.word is not None:
        font = _font(int(short * 0.16))
        left, top, right, bottom = canvas.textbbox((0, 0), scene.word, font=font)
        w, h = right - left, bottom - top
        x, y = (scene.width - w) / 2, (scene.height - h) / 2
        sign = "white" if scene.word_colour == "black" else "black"
        pad = max(2, short // 40)
        canvas.rectangle((x - pad, y - pad, x + w + pad, y + h + pad), fill=COLOURS[sign])
        canvas.text((x - left, y - top), scene.word, font=font, fill=COLOURS[scene.word_colour])
    return image


def add_watermark(image: Image.Image, text: str) -> Image.Image:
    """Tile semi-transparent stock-photo text over the image (what watermark filters look for)."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    canvas = ImageDraw.Draw(layer)
    font = _font(max(10, min(base.size) // 10))
    step_y = max(12, base.size[1] // 4)
    for row, y in enumerate(range(0, base.size[1], step_y)):
        canvas.text((-(row % 2) * base.size[0] // 6, y), f"{text}   " * 4, font=font, fill=(255, 255, 255, 110))
    return Image.alpha_composite(base, layer).convert("RGB")


def jpeg_bytes(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """Baseline JPEG with fixed settings (no EXIF, no timestamps): same image, same bytes."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, subsampling=2)
    return buffer.getvalue()
