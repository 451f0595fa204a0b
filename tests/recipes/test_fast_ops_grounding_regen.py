"""The grounding filter and the regeneration mapper of solution/ops against plain per-sample computations.

On the demo's tiny OWL-ViT, NLTK data and Stable Diffusion pipeline (float32 on CPU):
- ``noun_phrases.NounPhrases`` finds the phrases Data-Juicer's own ``run_ner`` finds (NLTK pointed
  at the same data folder);
- ``fast_phrase_grounding_recall_filter`` recalls equal Data-Juicer 1.6.1's
  ``phrase_grounding_recall_filter.compute_stats_single`` done step for step, one processor call and
  forward per chunk (``reference_recalls``). The built-in itself cannot run here: it calls
  ``OwlViTProcessor.post_process_object_detection``, which transformers 5 no longer has (its
  ``post_process_grounded_object_detection`` is the same computation, used below);
- ``fast_image_regeneration_mapper`` images equal ``StableDiffusionPipeline`` called for one prompt
  at a time with the op's per-image seed; its new samples point at decodable images of the
  configured size and are marked in their meta.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_fast_ops_grounding_regen.py -q
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN

STATS, META = "__dj__stats__", "__dj__meta__"
RECALL = "phrase_grounding_recall"


@pytest.fixture(scope="module")
def owlvit_dir(recipe_demo):
    return recipe_demo.recipe_models_dir / "google" / "owlvit-base-patch32"


@pytest.fixture(scope="module")
def nltk_dir(recipe_demo):
    return recipe_demo.recipe_models_dir / "nltk_data"


@pytest.fixture(scope="module")
def nltk_on_path(nltk_dir):
    """NLTK's global functions (which Data-Juicer's run_ner calls) reading the demo's NLTK data."""
    import nltk

    nltk.data.path.insert(0, str(nltk_dir))
    yield nltk
    nltk.data.path.remove(str(nltk_dir))


@pytest.fixture(scope="module")
def seed_rows(recipe_demo):
    rows = [json.loads(line) for line in recipe_demo.seed_jsonl.read_text().splitlines()]
    for row in rows:
        row["images"] = [str(recipe_demo.seed_dir / path) for path in row["images"]]
    return rows


def columns(rows: list[dict]) -> dict[str, list]:
    keys = sorted({key for row in rows for key in row})
    return {key: [copy.deepcopy(row.get(key)) for row in rows] for key in keys}


def test_noun_phrases_equal_data_juicer_run_ner(custom_ops, nltk_dir, nltk_on_path, seed_rows):
    from data_juicer.ops.filter.phrase_grounding_recall_filter import run_ner
    from data_juicer.utils.mm_utils import remove_special_tokens

    find = custom_ops.noun_phrases.NounPhrases(nltk_dir)
    captions = [remove_special_tokens(row["text"]) for row in seed_rows]
    captions += ["A picture of two red circles. The sign says \"STOP\"!", "Mr. Smith's (big) dog, at 5 p.m.; it's $3.",
                 "", "...", "a a a", "untitled - IMG_4032.JPG"]
    found_any = 0
    for caption in captions:
        phrases = find(caption)
        assert len(phrases) == len(set(phrases)), caption
        assert sorted(phrases) == sorted(run_ner(caption, nltk_on_path.pos_tag)), caption
        found_any += bool(phrases)
    assert found_any > len(seed_rows) // 2


def test_noun_phrases_survive_pickling(custom_ops, nltk_dir):
    """Data-Juicer pickles operators into its worker processes; an unpickled NLTK chunker would fail."""
    import pickle

    find = custom_ops.noun_phrases.NounPhrases(nltk_dir)
    caption = "a picture of two red circles and a blue square on a white background"
    assert pickle.loads(pickle.dumps(find))(caption) == find(caption) != []


def reference_recalls(model, processor, row: dict, horizontal_flip: bool = False, vertical_flip: bool = False,
                      reduce_mode: str = "avg", iou_thr: float = 0.5, large_area_ratio_thr: float = 0.95,
                      conf_thr: float = 0.0) -> list[float]:
    """The built-in's compute_stats_single, step for step (one processor call and forward per chunk)."""
    import nltk
    from data_juicer.ops.filter.phrase_grounding_recall_filter import run_ner
    from data_juicer.utils.mm_utils import iou, load_image, remove_special_tokens

    recalls, offset = [], 0
    for chunk in row["text"].split(DJ_EOC_TOKEN):
        count = chunk.count(DJ_IMAGE_TOKEN)
        if count == 0 or len(chunk) == 0:
            continue
        ners = run_ner(remove_special_tokens(chunk), nltk.pos_tag)
        if not ners:
            recalls.append(1.0)
            offset += count
            continue
        images = []
        for path in row["images"][offset:offset + count]:
            image = load_image(path)
            if horizontal_flip:
                image = ImageOps.mirror(image)
            if vertical_flip:
                image = ImageOps.flip(image)
            images.append(image)
        inputs = processor(text=[ners] * len(images), images=images, return_tensors="pt", padding=True,
                           truncation=True)
        with torch.no_grad():
            outputs = model(**inputs)
        target_sizes = torch.tensor([image.size[::-1] for image in images])
        results = processor.post_process_grounded_object_detection(outputs, threshold=conf_thr,
                                                                   target_sizes=target_sizes)
        image_recalls = []
        for index, result in enumerate(results):
            order = result["scores"].argsort(descending=True)
            labels = result["labels"][order].tolist()[:len(ners)]
            boxes = result["boxes"][order].tolist()[:len(ners)]
            image_area = target_sizes[index].prod()
            hit = {}
            for box, label in zip(boxes, labels):
                if ners[label] in hit:
                    continue
                xmin, ymin, xmax, ymax = box
                if 1.0 * (xmax - xmin) * (ymax - ymin) / image_area > large_area_ratio_thr:
                    continue
                if any(iou(box, other) > iou_thr for other in hit.values()):
                    continue
                hit[ners[label]] = box
            image_recalls.append(len(hit) / len(ners))
        recalls.append(float({"avg": np.mean, "max": np.max, "min": np.min}[reduce_mode](image_recalls)))
        offset += count
    return recalls


@pytest.fixture(scope="module")
def plain_owlvit(owlvit_dir):
    from transformers import OwlViTForObjectDetection, OwlViTProcessor

    return OwlViTForObjectDetection.from_pretrained(owlvit_dir).eval(), OwlViTProcessor.from_pretrained(owlvit_dir)


@pytest.fixture(scope="module")
def grounding_rows(seed_rows):
    """Seed samples plus: two chunks, two images in a chunk, a chunk without phrases last, no image, a repeat."""
    a, b, c = seed_rows[0], seed_rows[1], seed_rows[2]
    extra = [
        {"id": "two-chunks", "images": a["images"] + b["images"],
         "text": f"{DJ_IMAGE_TOKEN} a red circle and two blue squares {DJ_EOC_TOKEN}"
                 f"{DJ_IMAGE_TOKEN} green stars on a white background {DJ_EOC_TOKEN}"},
        {"id": "two-images", "images": a["images"] + c["images"],
         "text": f"{DJ_IMAGE_TOKEN}{DJ_IMAGE_TOKEN} a picture of a pink diamond and a gray star {DJ_EOC_TOKEN}"},
        {"id": "phrase-less-last", "images": b["images"] + c["images"],
         "text": f"{DJ_IMAGE_TOKEN} yellow ellipses {DJ_EOC_TOKEN}{DJ_IMAGE_TOKEN} - {DJ_EOC_TOKEN}"},
        {"id": "no-image", "images": [], "text": "just words"},
        dict(seed_rows[3], id="repeat"),
    ]
    return [dict(row, **{STATS: {}}) for row in seed_rows[:8] + extra]


GROUNDING_SETTINGS = {
    "defaults": {},
    "flips-max-strict": dict(horizontal_flip=True, vertical_flip=True, reduce_mode="max", iou_thr=0.1,
                             conf_thr=0.75),
    "min-small-boxes": dict(reduce_mode="min", large_area_ratio_thr=0.03, iou_thr=0.9),
}


@pytest.mark.parametrize("setting", sorted(GROUNDING_SETTINGS))
def test_recalls_equal_the_builtin_step_for_step(custom_ops, owlvit_dir, nltk_dir, nltk_on_path, plain_owlvit,
                                                 grounding_rows, setting):
    params = GROUNDING_SETTINGS[setting]
    op = custom_ops.fast_phrase_grounding_recall_filter.FastPhraseGroundingRecallFilter(
        hf_owlvit=str(owlvit_dir), nltk_data=str(nltk_dir), gpu_batch_size=4, num_workers=2, **params)
    stats = op.compute_stats_batched(columns(grounding_rows))[STATS]
    values = set()
    for row, row_stats in zip(grounding_rows, stats):
        expected = reference_recalls(*plain_owlvit, row, **params) if row["images"] else []
        assert row_stats[RECALL] == pytest.approx(expected, abs=1e-3), (setting, row["id"])
        values.update(row_stats[RECALL])
    assert len(values) >= 3  # the tiny model's recalls differ from sample to sample
    assert len(stats[-5][RECALL]) == 2 and stats[-3][RECALL][1] == 1.0  # one recall per chunk; no phrase: 1.0


def test_recall_batching_and_workers_change_nothing(custom_ops, owlvit_dir, nltk_dir, grounding_rows):
    module = custom_ops.fast_phrase_grounding_recall_filter
    results = []
    for gpu_batch_size, num_workers in ((3, 2), (64, 0)):
        op = module.FastPhraseGroundingRecallFilter(hf_owlvit=str(owlvit_dir), nltk_data=str(nltk_dir),
                                                    gpu_batch_size=gpu_batch_size, num_workers=num_workers)
        results.append([row[RECALL] for row in op.compute_stats_batched(columns(grounding_rows))[STATS]])
    assert results[0] == results[1]


def test_a_phrase_less_chunk_does_not_shift_the_next_images(custom_ops, owlvit_dir, nltk_dir, seed_rows):
    """The built-in forgets to move past a phrase-less chunk's images; the fast filter does not."""
    op = custom_ops.fast_phrase_grounding_recall_filter.FastPhraseGroundingRecallFilter(
        hf_owlvit=str(owlvit_dir), nltk_data=str(nltk_dir), num_workers=0)
    a, b = seed_rows[0]["images"][0], seed_rows[1]["images"][0]
    caption = "two blue squares and a red circle on a gray background"
    rows = [{"text": f"{DJ_IMAGE_TOKEN} - {DJ_EOC_TOKEN}{DJ_IMAGE_TOKEN} {caption} {DJ_EOC_TOKEN}", "images": [a, b],
             STATS: {}},
            {"text": f"{DJ_IMAGE_TOKEN} {caption} {DJ_EOC_TOKEN}", "images": [b], STATS: {}},
            {"text": f"{DJ_IMAGE_TOKEN} {caption} {DJ_EOC_TOKEN}", "images": [a], STATS: {}}]
    stats = op.compute_stats_batched(columns(rows))[STATS]
    assert stats[0][RECALL] == [1.0, stats[1][RECALL][0]]
    assert stats[1][RECALL] != stats[2][RECALL]  # the two images do score differently


def test_recall_keeps_existing_stats_and_filters_by_range(custom_ops, owlvit_dir, nltk_dir, seed_rows):
    module = custom_ops.fast_phrase_grounding_recall_filter
    op = module.FastPhraseGroundingRecallFilter(hf_owlvit=str(owlvit_dir), nltk_data=str(nltk_dir), num_workers=0,
                                                min_recall=0.3, max_recall=0.8)
    rows = [dict(seed_rows[0], **{STATS: {RECALL: [0.9]}}), dict(seed_rows[1], **{STATS: {}})]
    stats = op.compute_stats_batched(columns(rows))[STATS]
    assert stats[0][RECALL] == [0.9] and len(stats[1][RECALL]) == 1
    keep = list(op.process_batched({STATS: [{RECALL: v} for v in ([0.9], [0.5], [0.1], [], [0.1, 0.5])]}))
    assert keep == [False, True, False, True, True]
    every = module.FastPhraseGroundingRecallFilter(hf_owlvit=str(owlvit_dir), nltk_data=str(nltk_dir),
                                                   min_recall=0.3, any_or_all="all")
    assert list(every.process_batched({STATS: [{RECALL: [0.1, 0.5]}, {RECALL: [0.4, 0.5]}]})) == [False, True]


def test_missing_nltk_data_is_refused_before_running(custom_ops, owlvit_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="punkt_tab"):
        custom_ops.fast_phrase_grounding_recall_filter.FastPhraseGroundingRecallFilter(
            hf_owlvit=str(owlvit_dir), nltk_data=str(tmp_path))


@pytest.fixture(scope="module")
def diffusion_dir(recipe_demo):
    return recipe_demo.recipe_models_dir / "CompVis" / "stable-diffusion-v1-4"


REGEN = dict(num_inference_steps=2, guidance_scale=7.5, height=48, width=64)


def test_regenerated_images_equal_one_prompt_pipeline_calls(custom_ops, diffusion_dir, seed_rows, tmp_path):
    from data_juicer.utils.mm_utils import remove_special_tokens
    from diffusers import StableDiffusionPipeline

    module = custom_ops.fast_image_regeneration_mapper
    op = module.FastImageRegenerationMapper(hf_diffusion=str(diffusion_dir), save_dir=str(tmp_path), gpu_batch_size=3,
                                            **REGEN)
    drawings = [op.drawing(row["images"][0], remove_special_tokens(row["text"])) for row in seed_rows[:4]]
    images = op.draw(module.load_text_to_image(str(diffusion_dir), "float32"), [d.prompt for d in drawings],
                     [d.seed for d in drawings])
    plain = StableDiffusionPipeline.from_pretrained(diffusion_dir)
    plain.set_progress_bar_config(disable=True)
    for drawing, image in zip(drawings, images):
        generator = torch.Generator().manual_seed(drawing.seed)
        expected = plain(prompt=drawing.prompt, generator=generator, **REGEN).images[0]
        assert image.size == expected.size == (64, 48)
        # batched and single convolutions differ in the last float bits: at most one level after rounding
        assert np.abs(np.asarray(image, np.int16) - np.asarray(expected, np.int16)).max() <= 1
    assert len({np.asarray(image).tobytes() for image in images}) == len(images)
    assert len({drawing.seed for drawing in drawings}) == len(drawings)


def test_regeneration_writes_and_marks_new_samples(custom_ops, diffusion_dir, seed_rows, tmp_path):
    module = custom_ops.fast_image_regeneration_mapper
    save_dir = tmp_path / "regenerated"
    rows = [dict(row, **{STATS: {"image_text_similarity": [0.1]}, META: {"q": q}})
            for row, q in zip(seed_rows[:3], (0.0, 0.9, 0.2))]
    op = module.FastImageRegenerationMapper(hf_diffusion=str(diffusion_dir), save_dir=str(save_dir),
                                            select_meta_key="q", select_below=0.5, **REGEN)
    out = op.process_batched(columns(rows))
    out_rows = [{key: out[key][i] for key in out} for i in range(len(out["id"]))]
    ids = [row["id"] for row in rows]
    assert [row["id"] for row in out_rows] == [ids[0], ids[0], ids[1], ids[2], ids[2]]
    assert [out_rows[0], out_rows[2], out_rows[3]] == rows  # sources unchanged
    for source, new in ((rows[0], out_rows[1]), (rows[2], out_rows[4])):
        assert new["text"] == source["text"] and new[STATS] == {} and new[META] == {"q": source[META]["q"],
                                                                                     "regenerated": True}
        (path,) = new["images"]
        assert path.startswith(str(save_dir)) and path.endswith(".jpg")
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (64, 48)
            image.load()
    written = sorted(save_dir.rglob("*.jpg"))
    assert len(written) == 2
    stamps = [path.stat().st_mtime_ns for path in written]
    assert op.process_batched(columns(rows)) == out  # a second run reuses the files it finds
    assert [path.stat().st_mtime_ns for path in written] == stamps

    replace = module.FastImageRegenerationMapper(hf_diffusion=str(diffusion_dir), save_dir=str(save_dir),
                                                 keep_original_sample=False, **REGEN)
    replaced = replace.process_batched(columns(rows))
    assert replaced["id"] == [row["id"] for row in rows]
    assert all(meta["regenerated"] for meta in replaced[META])
    assert replaced["images"][0] == out["images"][1]  # same settings and sample, same file


def test_regeneration_needs_a_folder_for_its_images(custom_ops, diffusion_dir, monkeypatch, tmp_path):
    module = custom_ops.fast_image_regeneration_mapper
    monkeypatch.delenv("DJ_PRODUCED_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="save_dir"):
        module.FastImageRegenerationMapper(hf_diffusion=str(diffusion_dir))
    monkeypatch.setenv("DJ_PRODUCED_DATA_DIR", str(tmp_path))
    op = module.FastImageRegenerationMapper(hf_diffusion=str(diffusion_dir))
    assert op.save_dir == str(tmp_path / module.OP_NAME)
    with pytest.raises(ValueError, match="multiples of 8"):
        module.FastImageRegenerationMapper(hf_diffusion=str(diffusion_dir), height=50)
