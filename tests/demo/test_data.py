"""The demo data sets have the real formats, the promised content and noise, and pass `bsynth validate`.

    HF_HUB_OFFLINE=1 python -m pytest tests/demo/test_data.py -q
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections import Counter

import pandas as pd
from PIL import Image

from bettersynth.cli import main as bsynth
from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN, IMAGE_TOKEN
from bettersynth.demo.eval_sets import CIRCULAR_OFFSET, MMBENCH_COLUMNS
from bettersynth.demo.scenes import BRIEF_QUESTIONS
from bettersynth.demo.seed_pool import KIND_COUNTS, NEAR_EMPTY_CAPTIONS


def _seed_lines(demo):
    return [json.loads(line) for line in demo.seed_jsonl.read_text(encoding="utf-8").splitlines()]


def _caption(text: str) -> str:
    assert text.startswith(DJ_IMAGE_TOKEN + "\n") and text.endswith(" " + DJ_EOC_TOKEN)
    return text[len(DJ_IMAGE_TOKEN) + 1:-len(DJ_EOC_TOKEN) - 1]


def test_seed_pool_passes_bsynth_validate(demo, capsys):
    code = bsynth(["validate", str(demo.seed_jsonl), "--image-root", str(demo.seed_dir),
                   "--original", str(demo.stage1_json), "--workers", "1"])
    assert code == 0, capsys.readouterr().out


def test_seed_pool_format_and_stage1_questions(demo):
    lines = _seed_lines(demo)
    assert len(lines) == sum(KIND_COUNTS.values()) == 300
    assert all(set(s) == {"id", "text", "images"} and isinstance(s["id"], str) for s in lines)
    assert len({s["id"] for s in lines}) == len(lines)
    stage1 = json.loads(demo.stage1_json.read_text(encoding="utf-8"))
    assert [r["id"] for r in stage1] == [s["id"] for s in lines]
    for record, sample in zip(stage1, lines):
        human, gpt = record["conversations"]
        assert record["image"] == sample["images"][0]
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert human["value"].replace(IMAGE_TOKEN, "").strip() in BRIEF_QUESTIONS
        assert human["value"].startswith(IMAGE_TOKEN + "\n") or human["value"].endswith("\n" + IMAGE_TOKEN)
        assert gpt["value"] == _caption(sample["text"])
    placements = Counter(r["conversations"][0]["value"].startswith(IMAGE_TOKEN) for r in stage1)
    assert placements[True] > 50 and placements[False] > 50


def test_seed_pool_holds_the_promised_noise(demo):
    lines = _seed_lines(demo)
    sizes, digests = {}, Counter()
    for sample in lines:
        path = demo.seed_dir / sample["images"][0]
        with Image.open(path) as image:
            assert image.format == "JPEG"
            sizes[sample["id"]] = image.size
        digests[hashlib.sha256(path.read_bytes()).hexdigest()] += 1
    captions = {s["id"]: _caption(s["text"]) for s in lines}
    tiny = [i for i, (w, h) in sizes.items() if max(w, h) <= 64]
    extreme = [i for i, (w, h) in sizes.items() if max(w, h) / min(w, h) >= 5]
    assert len(tiny) == KIND_COUNTS["tiny_image"] and len(extreme) == KIND_COUNTS["extreme_aspect"]
    assert sum(n - 1 for n in digests.values()) == KIND_COUNTS["exact_duplicate"]
    assert sorted(c for c in captions.values() if c in NEAR_EMPTY_CAPTIONS) == sorted(NEAR_EMPTY_CAPTIONS)
    assert sum(len(c.split()) > 150 for c in captions.values()) == KIND_COUNTS["long_caption"]
    assert sum("stock photo" in c or "royalty free image" in c for c in captions.values()) >= 4
    chinese = [s for s in lines if s["images"][0].startswith("ALLaVA-4V/allava_laion/images/")]
    assert len(chinese) == KIND_COUNTS["allava_chinese"] and all("图片" in captions[s["id"]] for s in chinese)
    others = [size for i, size in sizes.items() if i not in tiny and i not in extreme]
    assert min(min(s) for s in others) >= 150 and max(max(s) for s in others) <= 900
    assert len({s for s in others}) > 100  # varied sizes and aspect ratios
    assert all(sample["images"][0] == f"images/{sample['id'][:5]}/{sample['id']}.jpg"
               for sample in lines if sample not in chinese)


def test_finetune_set_is_in_the_instruction_format(demo):
    records = json.loads(demo.finetune_json.read_text(encoding="utf-8"))
    assert 110 <= len(records) <= 130 and len({r["id"] for r in records}) == len(records)
    text_only = [r for r in records if "image" not in r]
    assert len(text_only) == 12
    assert sum(len(r["conversations"]) >= 4 for r in records if "image" in r) >= 15
    for record in records:
        roles = [m["from"] for m in record["conversations"]]
        assert roles == ["human", "gpt"] * (len(roles) // 2) and roles
        image_tokens = sum(m["value"].count(IMAGE_TOKEN) for m in record["conversations"])
        if "image" in record:
            assert image_tokens == 1 and IMAGE_TOKEN in record["conversations"][0]["value"]
            with Image.open(demo.finetune_dir / record["image"]) as image:
                image.load()
        else:
            assert image_tokens == 0


def test_textvqa_questions_images_and_annotations_agree(demo):
    questions = [json.loads(line) for line in demo.textvqa_questions.read_text().splitlines()]
    annotations = json.loads(demo.textvqa_annotations.read_text())["data"]
    assert len(questions) == len(annotations) == 40
    by_key = {(a["image_id"], a["question"]): a for a in annotations}
    with_ocr = 0
    for question in questions:
        assert set(question) == {"question_id", "image", "text"}
        assert question["image"] == f"{question['question_id']}.jpg"
        with Image.open(demo.textvqa_images / question["image"]) as image:
            image.load()
        lines = question["text"].split("\n")
        assert lines[-1] == "Answer the question using a single word or phrase."
        if len(lines) == 3:
            assert lines[1].startswith("Reference OCR token: ")
            with_ocr += 1
        annotation = by_key[(question["question_id"], lines[0].lower())]
        answers = annotation["answers"]
        assert len(answers) == 10
        # the most common answer is given by at least 5 of 10 annotators: predicting it scores 1.0
        assert Counter(answers).most_common(1)[0][1] >= 5
    assert 30 <= with_ocr < 40


def test_mmbench_tsv_has_the_dev_columns_and_circular_copies(demo):
    table = pd.read_csv(demo.mmbench_tsv, sep="\t")
    assert tuple(table.columns) == MMBENCH_COLUMNS
    base = table[table["index"] < CIRCULAR_OFFSET].set_index("index")
    copies = table[table["index"] >= CIRCULAR_OFFSET]
    assert len(base) == 30
    option_counts = Counter(int(row[list("ABCD")].notna().sum()) for _, row in base.iterrows())
    assert set(option_counts) <= {2, 3, 4} and len(option_counts) >= 2
    assert len(copies) == sum(n - 1 for n in (row[list("ABCD")].notna().sum() for _, row in base.iterrows()))
    assert base["hint"].isna().any() and base["hint"].notna().any()
    assert base["category"].nunique() >= 4 and (table["split"] == "dev").all()
    for _, copy in copies.iterrows():
        original = base.loc[copy["index"] % CIRCULAR_OFFSET]
        k = copy["index"] // CIRCULAR_OFFSET
        options = [o for o in original[list("ABCD")] if isinstance(o, str)]
        rotated = [o for o in copy[list("ABCD")] if isinstance(o, str)]
        assert rotated == options[k:] + options[:k]
        assert copy[copy["answer"]] == original[original["answer"]]
        assert copy["question"] == original["question"] and copy["image"] == original["image"]
    for encoded in base["image"]:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
            assert image.format == "JPEG"
