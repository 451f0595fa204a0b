"""The demo seed pool: ~300 synthetic image-caption pairs in the official seed data's formats.

Writes, into the seed folder (`layout.seed_dir`):
- `images/<id[:5]>/<id>.jpg` (and 3 `ALLaVA-4V/allava_laion/images/<id>.jpeg` with long Chinese
  captions, as the real 10k pool has);
- the Data-Juicer jsonl (`{"id", "text": "<__dj__image>\\n<caption> <|__dj__eoc|>", "images": [path]}`);
- `stage_1.json`: the LLaVA records (a brief-description question + the caption) of every id.
Besides clean pairs it holds the noise a recipe should remove, each kind in a known number:
mismatched captions, near and exact duplicates, tiny and extreme-aspect images, watermarked
images, near-empty (file-name, punctuation) and very long captions. Every line stays valid for
`bsynth validate` (one image token, a non-empty caption, decodable images).
Called by `bettersynth.demo.build`; not run on its own.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN, IMAGE_TOKEN
from bettersynth.demo import images
from bettersynth.demo.files import write_bytes, write_json, write_jsonl
from bettersynth.demo.scenes import BRIEF_QUESTIONS, Scene, caption, random_scene

# How many samples of each kind the pool holds (300 in all).
KIND_COUNTS = {
    "clean": 229, "mismatched_caption": 15, "near_duplicate": 12, "exact_duplicate": 3,
    "tiny_image": 8, "extreme_aspect": 8, "watermark": 12, "near_empty_caption": 5,
    "long_caption": 5, "allava_chinese": 3,
}
NEAR_EMPTY_CAPTIONS = (".", "image", "IMG_4032.JPG", "untitled", "-")
WATERMARKS = ("© shutterstock", "stockphoto.example", "SAMPLE", "© getty images")
LONG_FILLER = ("best cheap high quality free download wallpaper hd 4k royalty free stock vector "
               "illustration background template design graphic art print poster")
CHINESE_COLOURS = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "orange": "橙色",
                   "purple": "紫色", "pink": "粉色", "brown": "棕色", "black": "黑色", "white": "白色",
                   "gray": "灰色", "cyan": "青色"}
CHINESE_SHAPES = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形",
                  "rectangle": "长方形", "ellipse": "椭圆", "diamond": "菱形"}
CHINESE_CAPTION = ("这张图片展示了一个简单的几何图形画面。画面中有{things}，背景是纯色的。"
                   "图形的边缘清晰，颜色鲜明，排列没有明显的规律。整体构图简洁，"
                   "没有人物或文字以外的其他元素，适合用于颜色和形状识别的练习。")


@dataclass(frozen=True)
class SeedSample:
    id: str
    image: str  # relative to the seed folder
    caption: str
    question: str
    kind: str
    picture: bytes


def _clean_scene(rng: random.Random) -> Scene:
    width = rng.randint(200, 900)
    height = max(200, min(900, int(width * rng.uniform(0.5, 2.0))))
    return random_scene(rng, width, height, with_word=rng.random() < 0.3)


def _sample(rng: random.Random, kind: str, sid: str, previous: list[SeedSample]) -> SeedSample:
    """One sample of the given kind; duplicates copy one of the `previous` clean samples."""
    image_path = f"images/{sid[:5]}/{sid}.jpg"
    if kind in ("near_duplicate", "exact_duplicate"):
        source = rng.choice([s for s in previous if s.kind == "clean"])
        if kind == "exact_duplicate":
            return SeedSample(sid, image_path, source.caption, rng.choice(BRIEF_QUESTIONS), kind, source.picture)
        with Image.open(io.BytesIO(source.picture)) as original:
            w, h = original.size
            scale = rng.uniform(0.9, 0.97)
            resized = original.convert("RGB").resize((max(1, int(w * scale)), max(1, int(h * scale))))
        picture = images.jpeg_bytes(resized, quality=rng.randint(60, 80))
        return SeedSample(sid, image_path, source.caption, rng.choice(BRIEF_QUESTIONS), kind, picture)
    if kind == "tiny_image":
        scene = random_scene(rng, rng.randint(16, 64), rng.randint(16, 64), with_word=False)
    elif kind == "extreme_aspect":
        long_side, short_side = rng.randint(600, 900), rng.randint(60, 120)
        size = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
        scene = random_scene(rng, *size, with_word=False)
    else:
        scene = _clean_scene(rng)
    text = caption(scene, rng)
    picture_image = images.draw(scene)
    if kind == "mismatched_caption":
        text = caption(_clean_scene(rng), rng)
    elif kind == "watermark":
        picture_image = images.add_watermark(picture_image, rng.choice(WATERMARKS))
        text = rng.choice(("stock photo: ", "royalty free image of ", "")) + text
    elif kind == "near_empty_caption":
        text = NEAR_EMPTY_CAPTIONS[len([s for s in previous if s.kind == kind]) % len(NEAR_EMPTY_CAPTIONS)]
    elif kind == "long_caption":
        text = f"{text}, {' '.join([LONG_FILLER] * rng.randint(8, 12))}"
    elif kind == "allava_chinese":
        things = "、".join(f"{item.count}个{CHINESE_COLOURS[item.colour]}的{CHINESE_SHAPES[item.shape]}"
                          for item in scene.items)
        text = CHINESE_CAPTION.format(things=things)
        image_path = f"ALLaVA-4V/allava_laion/images/{sid}.jpeg"
    return SeedSample(sid, image_path, text, rng.choice(BRIEF_QUESTIONS), kind, images.jpeg_bytes(picture_image))


def plan_seed_pool(seed: int) -> list[SeedSample]:
    """All samples in file order: sparse 9-digit ids (ALLaVA ones named like the real ones), kinds shuffled."""
    rng = random.Random(seed)
    kinds = [kind for kind, count in KIND_COUNTS.items() for _ in range(count)]
    numbers = rng.sample(range(1, 1_000_000), len(kinds))  # real 10k ids: images/000xx/
    samples: list[SeedSample] = []
    # Clean samples are generated first so that duplicates have sources; the file order is shuffled.
    for kind, number in zip(kinds, numbers):
        sid = f"allava_laion_cap_{number:09d}" if kind == "allava_chinese" else f"{number:09d}"
        samples.append(_sample(rng, kind, sid, samples))
    rng.shuffle(samples)
    return samples


def dj_record(sample: SeedSample) -> dict:
    return {"id": sample.id, "text": f"{DJ_IMAGE_TOKEN}\n{sample.caption} {DJ_EOC_TOKEN}", "images": [sample.image]}


def llava_record(sample: SeedSample, image_first: bool) -> dict:
    question = f"{IMAGE_TOKEN}\n{sample.question}" if image_first else f"{sample.question}\n{IMAGE_TOKEN}"
    return {"id": sample.id, "image": sample.image,
            "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": sample.caption}]}


def build_seed_pool(folder: Path, jsonl_name: str, stage1_name: str, seed: int) -> None:
    """Write the images, the Data-Juicer jsonl and stage_1.json into `folder`."""
    samples = plan_seed_pool(seed)
    for sample in samples:
        write_bytes(folder / sample.image, sample.picture)
    write_jsonl(folder / jsonl_name, (dj_record(s) for s in samples))
    rng = random.Random(seed + 1)
    write_json(folder / stage1_name, [llava_record(s, rng.random() < 0.5) for s in samples])
