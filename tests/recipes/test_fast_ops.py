"""The batched model operators of solution/ops equal plain per-sample Hugging Face computations.

On the demo's tiny CLIP and BLIP-2 (float32 on CPU): ``fast_image_text_similarity_filter`` scores
equal ``CLIPModel(**CLIPProcessor(text, images)).logits_per_text / 100`` per chunk, and Data-Juicer's
built-in ``image_text_similarity_filter``; ``fast_image_captioning_mapper`` captions equal one
``generate`` call per image (greedy and beam search). Also: decoding workers change nothing, uneven
GPU batches change nothing, existing scores are kept, new samples are shaped as documented.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_fast_ops.py -q      (~1 min)
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from PIL import Image

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN

STATS, META = "__dj__stats__", "__dj__meta__"


@pytest.fixture(scope="module")
def clip_dir(recipe_demo):
    return recipe_demo.recipe_models_dir / "openai" / "clip-vit-base-patch32"


@pytest.fixture(scope="module")
def blip2_dir(recipe_demo):
    return recipe_demo.recipe_models_dir / "Salesforce" / "blip2-opt-2.7b"


@pytest.fixture(scope="module")
def seed_rows(recipe_demo):
    rows = [json.loads(line) for line in recipe_demo.seed_jsonl.read_text().splitlines()[:13]]
    for row in rows:
        row["images"] = [str(recipe_demo.seed_dir / path) for path in row["images"]]
    return rows


def columns(rows: list[dict]) -> dict[str, list]:
    keys = sorted({key for row in rows for key in row})
    return {key: [copy.deepcopy(row.get(key)) for row in rows] for key in keys}


@pytest.fixture(scope="module")
def scoring_rows(seed_rows):
    """Seed samples plus the awkward shapes: two chunks, two images in a chunk, no image, a repeat."""
    a, b, c = seed_rows[0], seed_rows[1], seed_rows[2]
    extra = [
        {"id": "two-chunks", "images": a["images"] + b["images"],
         "text": f"{DJ_IMAGE_TOKEN} first caption {DJ_EOC_TOKEN}{DJ_IMAGE_TOKEN} second one {DJ_EOC_TOKEN}"},
        {"id": "two-images", "images": a["images"] + c["images"],
         "text": f"{DJ_IMAGE_TOKEN}{DJ_IMAGE_TOKEN} two pictures at once {DJ_EOC_TOKEN}"},
        {"id": "no-image", "images": [], "text": "just words"},
        dict(seed_rows[3], id="repeat"),
    ]
    rows = [dict(row, **{STATS: {}}) for row in seed_rows + extra]
    return rows


@pytest.fixture(scope="module")
def plain_clip(clip_dir):
    from transformers import CLIPModel, CLIPProcessor

    return CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)


def reference_scores(plain_clip, row) -> list[float]:
    """Data-Juicer's definition, one plain HF forward per chunk."""
    from data_juicer.utils.mm_utils import remove_special_tokens

    model, processor = plain_clip
    scores, offset = [], 0
    for chunk in row["text"].split(DJ_EOC_TOKEN):
        count = chunk.count(DJ_IMAGE_TOKEN)
        if count == 0:
            continue
        images = [Image.open(path).convert("RGB") for path in row["images"][offset:offset + count]]
        inputs = processor(text=remove_special_tokens(chunk), images=images, return_tensors="pt", padding=True,
                           truncation=True, max_length=model.config.text_config.max_position_embeddings)
        with torch.no_grad():
            scores.append(float((model(**inputs).logits_per_text / 100.0).mean()))
        offset += count
    return scores


@pytest.fixture(scope="module")
def fast_scores(custom_ops, clip_dir, scoring_rows):
    op = custom_ops.fast_image_text_similarity_filter.FastImageTextSimilarityFilter(
        hf_clip=str(clip_dir), min_score=-1.0, max_score=1.0, gpu_batch_size=5, num_workers=2)
    return op.compute_stats_batched(columns(scoring_rows))[STATS]


def test_clip_scores_equal_plain_per_chunk_hf(fast_scores, plain_clip, scoring_rows):
    for row, stats in zip(scoring_rows, fast_scores):
        expected = reference_scores(plain_clip, row) if row["images"] else []
        got = stats["image_text_similarity"]
        assert len(got) == len(expected), row["id"]
        assert got == pytest.approx(expected, abs=1e-5), row["id"]
    assert len(fast_scores[-4]["image_text_similarity"]) == 2  # one score per chunk


def test_clip_scores_equal_data_juicer_builtin(fast_scores, clip_dir, scoring_rows):
    from data_juicer.ops.filter.image_text_similarity_filter import ImageTextSimilarityFilter

    builtin = ImageTextSimilarityFilter(hf_clip=str(clip_dir), min_score=-1.0, max_score=1.0)
    for row, stats in zip(scoring_rows, fast_scores):
        expected = builtin.compute_stats_single(copy.deepcopy(row))[STATS]["image_text_similarity"]
        assert stats["image_text_similarity"] == pytest.approx(list(expected), abs=1e-5), row["id"]


def test_clip_workers_and_batch_size_change_nothing(custom_ops, clip_dir, scoring_rows, fast_scores):
    op = custom_ops.fast_image_text_similarity_filter.FastImageTextSimilarityFilter(
        hf_clip=str(clip_dir), gpu_batch_size=64, num_workers=0)
    again = op.compute_stats_batched(columns(scoring_rows))[STATS]
    for first, second in zip(fast_scores, again):
        assert first["image_text_similarity"] == pytest.approx(second["image_text_similarity"], abs=1e-6)


def _score_in_daemon(op, batch, queue):
    torch.set_num_threads(1)  # as Data-Juicer's workers do; a forked child of a torch parent hangs otherwise
    queue.put(op.compute_stats_batched(batch)[STATS])


def test_clip_in_a_daemonic_worker_decodes_with_threads(custom_ops, clip_dir, scoring_rows, fast_scores):
    """Data-Juicer's np > 1 workers are daemonic (no child processes): decoding falls back to threads."""
    import multiprocessing

    op = custom_ops.fast_image_text_similarity_filter.FastImageTextSimilarityFilter(
        hf_clip=str(clip_dir), gpu_batch_size=4, num_workers=3)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_score_in_daemon, args=(op, columns(scoring_rows), queue), daemon=True)
    worker.start()
    again = queue.get(timeout=120)
    worker.join(timeout=60)
    assert worker.exitcode == 0
    for first, second in zip(fast_scores, again):
        assert first["image_text_similarity"] == pytest.approx(second["image_text_similarity"], abs=1e-6)


def test_clip_keeps_existing_scores_and_filters_by_range(custom_ops, clip_dir, seed_rows):
    op = custom_ops.fast_image_text_similarity_filter.FastImageTextSimilarityFilter(
        hf_clip=str(clip_dir), min_score=0.02, max_score=0.5, num_workers=0)
    rows = [dict(seed_rows[0], **{STATS: {"image_text_similarity": [0.7]}}),
            dict(seed_rows[1], **{STATS: {"image_text_similarity": None}}),
            dict(seed_rows[2], **{STATS: {}})]
    stats = op.compute_stats_batched(columns(rows))[STATS]
    assert stats[0]["image_text_similarity"] == [0.7]
    assert len(stats[1]["image_text_similarity"]) == 1 and len(stats[2]["image_text_similarity"]) == 1
    keep = list(op.process_batched({STATS: [{"image_text_similarity": v} for v in
                                            ([0.7], [0.3], [0.01], [], [0.01, 0.3])]}))
    assert keep == [False, True, False, True, True]  # any_or_all='any'


def test_clip_names_an_undecodable_image(custom_ops, clip_dir, seed_rows, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    op = custom_ops.fast_image_text_similarity_filter.FastImageTextSimilarityFilter(hf_clip=str(clip_dir),
                                                                                    num_workers=0)
    rows = [dict(seed_rows[0], images=[str(broken)], **{STATS: {}})]
    with pytest.raises(OSError, match="broken.jpg"):
        op.compute_stats_batched(columns(rows))


def test_missing_model_is_refused_before_running(custom_ops, tmp_path):
    with pytest.raises(FileNotFoundError, match="org/absent"):
        custom_ops.fast_image_text_similarity_filter.FastImageTextSimilarityFilter(hf_clip="org/absent")


def reference_captions(blip2_dir, paths, **generate_args) -> list[str]:
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    model = Blip2ForConditionalGeneration.from_pretrained(blip2_dir).eval()
    processor = Blip2Processor.from_pretrained(blip2_dir)
    captions = []
    for path in paths:
        inputs = processor(images=Image.open(path).convert("RGB"), text="", return_tensors="pt")
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=30, **generate_args)
        captions.append(processor.batch_decode(output[:, inputs["input_ids"].shape[1]:],
                                               skip_special_tokens=True)[0].strip())
    return captions


@pytest.mark.parametrize("num_beams", [1, 3])
def test_captions_equal_per_image_generate(custom_ops, blip2_dir, seed_rows, num_beams):
    module = custom_ops.fast_image_captioning_mapper
    op = module.FastImageCaptioningMapper(hf_blip2=str(blip2_dir), num_beams=num_beams, gpu_batch_size=4,
                                          num_workers=2)
    paths = [row["images"][0] for row in seed_rows[:6]]
    model, processor = module.load_blip2(str(blip2_dir), "float32")
    captions = op.caption_images(model, processor, paths)
    assert captions == reference_captions(blip2_dir, paths, num_beams=num_beams, do_sample=False)
    assert any(captions)


def test_captioner_adds_selected_samples_with_seed_ids(custom_ops, blip2_dir, seed_rows):
    op = custom_ops.fast_image_captioning_mapper.FastImageCaptioningMapper(
        hf_blip2=str(blip2_dir), keep_original_sample=True, select_meta_key="q", select_below=0.5, num_workers=0)
    rows = [dict(row, **{STATS: {"image_text_similarity": [0.1]}, META: {"q": q}})
            for row, q in zip(seed_rows[:4], (0.0, 0.75, 0.25, 0.5))]
    out = op.process_batched(columns(rows))
    out_rows = [{key: out[key][i] for key in out} for i in range(len(out["id"]))]
    assert [row["id"] for row in out_rows] == [rows[0]["id"], rows[0]["id"], rows[1]["id"],
                                               rows[2]["id"], rows[2]["id"], rows[3]["id"]]
    originals, new = out_rows[0], out_rows[1]
    assert originals == rows[0]
    assert new["images"] == rows[0]["images"] and new[STATS] == {} and new[META] == {"q": 0.0, "recaptioned": True}
    assert new["text"].startswith(DJ_IMAGE_TOKEN + " ") and new["text"].endswith(" " + DJ_EOC_TOKEN)

    replace = custom_ops.fast_image_captioning_mapper.FastImageCaptioningMapper(
        hf_blip2=str(blip2_dir), keep_original_sample=False, num_workers=0)
    replaced = replace.process_batched(columns(rows))
    assert replaced["id"] == [row["id"] for row in rows]
    assert all(meta.get("recaptioned") for meta in replaced[META])


def test_captioner_requires_the_selection_tag(custom_ops, blip2_dir, seed_rows):
    op = custom_ops.fast_image_captioning_mapper.FastImageCaptioningMapper(
        hf_blip2=str(blip2_dir), select_meta_key="q", num_workers=0)
    with pytest.raises(ValueError, match="no meta value 'q'"):
        op.process_batched(columns([dict(seed_rows[0], **{META: {}})]))


def test_captioner_selects_an_absolute_stats_band(custom_ops, blip2_dir, seed_rows):
    """select_stats_key / select_min / select_below: scores in [0.01, 0.28) are captioned, a list by its mean."""
    op = custom_ops.fast_image_captioning_mapper.FastImageCaptioningMapper(
        hf_blip2=str(blip2_dir), select_stats_key="image_text_similarity", select_min=0.01, select_below=0.28,
        num_workers=0)
    scores = ([0.005], [0.01], [0.2], [0.28], [0.1, 0.5], [0.3, 0.2])  # means: 0.3 and 0.25
    rows = [dict(row, **{STATS: {"image_text_similarity": value}, META: {}}) for row, value in zip(seed_rows, scores)]
    out = op.process_batched(columns(rows))
    captioned = [i for i, row in enumerate(rows) for meta, sample_id in zip(out[META], out["id"])
                 if sample_id == row["id"] and meta.get("recaptioned")]
    assert captioned == [1, 2, 5] and len(out["id"]) == len(rows) + 3
    with pytest.raises(ValueError, match="no stats value 'image_text_similarity'"):
        op.process_batched(columns([dict(seed_rows[0], **{STATS: {}, META: {}})]))
    with pytest.raises(ValueError, match="not both"):
        custom_ops.fast_image_captioning_mapper.FastImageCaptioningMapper(
            hf_blip2=str(blip2_dir), select_meta_key="q", select_stats_key="image_text_similarity")
    with pytest.raises(ValueError, match="must be below"):
        custom_ops.fast_image_captioning_mapper.FastImageCaptioningMapper(
            hf_blip2=str(blip2_dir), select_stats_key="image_text_similarity", select_min=0.3, select_below=0.28)


@pytest.mark.parametrize("count, batch_size, workers", [(37, 20, 2), (33, 16, 0), (5, 64, 2)])
def test_pixel_batches_keep_order_and_batch_sizes(custom_ops, tmp_path, count, batch_size, workers):
    """Workers decode small chunks; the batches come out in path order, all full but the last."""
    pixel_batches = custom_ops.batching.pixel_batches

    paths = []
    for index in range(count):
        path = tmp_path / f"{index:03d}.png"
        Image.new("RGB", (4, 3), (index, 0, 0)).save(path)
        paths.append(str(path))

    def preprocess(image):
        red = torch.tensor(float(image.getpixel((0, 0))[0]))
        return {"red": red, "twice": red * 2}

    batches = list(pixel_batches(paths, preprocess, batch_size, workers))
    sizes = [len(batch["red"]) for batch in batches]
    assert sizes == [batch_size] * (count // batch_size) + ([count % batch_size] if count % batch_size else [])
    assert torch.cat([batch["red"] for batch in batches]).tolist() == list(range(count))
    assert torch.cat([batch["twice"] for batch in batches]).tolist() == [2 * i for i in range(count)]


def test_pixel_scaling_gives_the_processor_values(custom_ops, clip_dir, seed_rows):
    """Workers send the processor's uint8 resize and crop; scaled on the device, they are its float output."""
    from transformers import CLIPProcessor

    PixelScaling = custom_ops.batching.PixelScaling
    image_processor = CLIPProcessor.from_pretrained(clip_dir).image_processor
    images = [Image.open(row["images"][0]).convert("RGB") for row in seed_rows[:4]]
    deferred = torch.stack([PixelScaling(image_processor).prepare(image) for image in images])
    assert deferred.dtype == torch.uint8
    expected = image_processor(images=images, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(PixelScaling(image_processor)(deferred, torch.float32), expected, rtol=0, atol=1e-6)
    # a processor with normalisation off only rescales; with both off the pixels pass through as floats
    image_processor.do_normalize = False
    torch.testing.assert_close(PixelScaling(image_processor)(deferred, torch.float32), deferred.float() / 255)
    image_processor.do_rescale = False
    assert torch.equal(PixelScaling(image_processor)(deferred, torch.float32), deferred.float())
