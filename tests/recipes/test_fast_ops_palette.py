"""The fast BLIP ITM, aesthetics and watermark filters of solution/ops equal Data-Juicer's built-ins.

On the demo's tiny models (float32 on CPU), for seed samples plus the awkward shapes (two chunks,
two images in a chunk, a repeated image, no image, no image token): ``fast_image_text_matching_filter``
stats equal ``image_text_matching_filter``'s (also flipped, and with reduce_mode max/min),
``fast_image_aesthetics_filter`` equal ``image_aesthetics_filter``'s and ``fast_image_watermark_filter``
equal ``image_watermark_filter``'s, within 1e-5 (the brief asks 1e-3), and keep/drop is the same with
'any' and 'all' and thresholds between the scores; Data-Juicer tries no install meanwhile. Also:
batch sizes and decoding workers change nothing, existing stats are kept, the demo's aesthetics
folder loads whole, and our loader of aesthetics predictors scores like each of
simple-aesthetics-predictor's three classes.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_fast_ops_palette.py -q      (~1 min)
"""

from __future__ import annotations

import copy
import importlib.util
import json

import numpy as np
import pytest

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN
from bettersynth.recipes.installs import install_attempts

STATS = "__dj__stats__"
TOLERANCE = 1e-5
ITM = "Salesforce/blip-itm-base-coco"
AESTHETICS = "shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE"
WATERMARK = "amrul-hzz/watermark_detector"
# Data-Juicer's image_aesthetics_filter imports this package through its LazyLoader, which installs
# it (and with it transformers < 5) when it is missing; it must be installed with --no-deps first.
AESTHETICS_PACKAGE = "aesthetics_predictor"
SMALL_BATCHES = dict(gpu_batch_size=4, num_workers=2)  # batches cross samples; decoded by worker processes


@pytest.fixture(scope="module")
def model_dir(recipe_demo):
    return lambda name: str(recipe_demo.recipe_models_dir / name)


@pytest.fixture(scope="module")
def rows(recipe_demo) -> list[dict]:
    """24 seed samples plus the awkward shapes."""
    seed = [json.loads(line) for line in recipe_demo.seed_jsonl.read_text().splitlines()[:24]]
    for row in seed:
        row["images"] = [str(recipe_demo.seed_dir / path) for path in row["images"]]
    a, b, c = (row["images"][0] for row in seed[:3])
    extra = [
        {"id": "two-chunks", "images": [a, b],
         "text": f"{DJ_IMAGE_TOKEN} first caption {DJ_EOC_TOKEN}{DJ_IMAGE_TOKEN} second one {DJ_EOC_TOKEN}"},
        {"id": "two-images", "images": [a, c], "text": f"{DJ_IMAGE_TOKEN}{DJ_IMAGE_TOKEN} two pictures {DJ_EOC_TOKEN}"},
        {"id": "repeated-image", "images": [b, c, b],
         "text": f"{DJ_IMAGE_TOKEN}{DJ_IMAGE_TOKEN} pair {DJ_EOC_TOKEN}{DJ_IMAGE_TOKEN} again {DJ_EOC_TOKEN}"},
        {"id": "no-image", "images": [], "text": "just words"},
        {"id": "no-image-token", "images": [c], "text": "words about a picture"},
    ]
    return [dict(row, **{STATS: {}}) for row in seed + extra]


def columns(rows: list[dict]) -> dict[str, list]:
    keys = sorted({key for row in rows for key in row})
    return {key: [copy.deepcopy(row.get(key)) for row in rows] for key in keys}


def builtin_stats(op, rows: list[dict], key: str) -> list[list[float]]:
    """The built-in's stats, one sample at a time; Data-Juicer must not try to install anything meanwhile."""
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG")
    try:
        stats = [list(op.compute_stats_single(copy.deepcopy(row))[STATS][key]) for row in rows]
    finally:
        logger.remove(sink)
    assert not install_attempts("".join(lines))
    return stats


@pytest.fixture(scope="module")
def predictor_module(custom_ops):
    """ops.aesthetics_predictor_model (imported by the aesthetics filter only when it loads a model)."""
    return importlib.import_module(f"{custom_ops.__name__}.aesthetics_predictor_model")


@pytest.fixture(scope="module")
def aesthetics_package():
    if importlib.util.find_spec(AESTHETICS_PACKAGE) is None:
        pytest.fail("image_aesthetics_filter needs simple-aesthetics-predictor; install it first with "
                    "`pip install --no-deps simple-aesthetics-predictor==0.1.2` (Data-Juicer would install it "
                    "at run time, downgrading transformers)")



def make_ops(custom_ops, model_dir, name: str, batching: dict = SMALL_BATCHES, **params):
    """(fast, built-in, stats key) of one palette operator, both with ``params``; the fast one with ``batching``."""
    from data_juicer.ops.filter.image_aesthetics_filter import ImageAestheticsFilter
    from data_juicer.ops.filter.image_text_matching_filter import ImageTextMatchingFilter
    from data_juicer.ops.filter.image_watermark_filter import ImageWatermarkFilter

    if name == "itm":
        return (custom_ops.fast_image_text_matching_filter.FastImageTextMatchingFilter(
                    hf_blip=model_dir(ITM), **batching, **params),
                ImageTextMatchingFilter(hf_blip=model_dir(ITM), **params), "image_text_matching_score")
    if name == "aesthetics":
        return (custom_ops.fast_image_aesthetics_filter.FastImageAestheticsFilter(
                    hf_scorer_model=model_dir(AESTHETICS), **batching, **params),
                ImageAestheticsFilter(hf_scorer_model=model_dir(AESTHETICS), **params), "image_aesthetics_scores")
    return (custom_ops.fast_image_watermark_filter.FastImageWatermarkFilter(
                hf_watermark_model=model_dir(WATERMARK), **batching, **params),
            ImageWatermarkFilter(hf_watermark_model=model_dir(WATERMARK), **params), "image_watermark_prob")


@pytest.fixture(scope="module", params=["itm", "aesthetics", "watermark"])
def compared(request, custom_ops, model_dir, rows):
    """(name, fast stats, built-in stats, stats key) on ``rows``."""
    if request.param == "aesthetics":
        request.getfixturevalue("aesthetics_package")
    fast, builtin, key = make_ops(custom_ops, model_dir, request.param)
    got = [stats[key] for stats in fast.compute_stats_batched(columns(rows))[STATS]]
    return request.param, got, builtin_stats(builtin, rows, key), key


def assert_equal_stats(got: list[list[float]], expected: list[list[float]], rows: list[dict]) -> None:
    for row, values, reference in zip(rows, got, expected):
        assert len(values) == len(reference), row["id"]
        assert values == pytest.approx(reference, abs=TOLERANCE), row["id"]


def test_stats_equal_the_builtin(compared, rows):
    name, got, expected, _ = compared
    assert_equal_stats(got, expected, rows)
    by_id = {row["id"]: values for row, values in zip(rows, got)}
    assert by_id["no-image"] == []
    assert len(by_id["no-image-token"]) == (0 if name == "itm" else 1)  # ITM scores chunks; the others, images
    assert len(by_id["two-chunks"]) == 2 and len(by_id["repeated-image"]) == 2  # 2 chunks; 2 distinct images
    spread = np.ptp([value for values in got for value in values])
    assert spread > 30 * TOLERANCE, f"{name}: scores too alike ({spread:.2e}) for the comparison to mean much"


def _between_scores(values: list[float], quantile: float) -> float:
    """A threshold halfway between two neighbouring scores near ``quantile`` that lie over 4 tolerances
    apart, so a difference within the tolerance cannot move a score across it."""
    ordered = np.sort(values)
    gaps = [i for i in range(len(ordered) - 1) if ordered[i + 1] - ordered[i] > 4 * TOLERANCE]
    index = min(gaps, key=lambda i: abs(i - quantile * (len(ordered) - 1)))
    return float((ordered[index] + ordered[index + 1]) / 2)


@pytest.mark.parametrize("any_or_all", ["any", "all"])
def test_keep_and_drop_equal_the_builtin(compared, custom_ops, model_dir, any_or_all):
    name, got, _, key = compared
    scores = [value for values in got for value in values]
    if name == "watermark":
        params = dict(prob_threshold=_between_scores(scores, 0.5))
    else:
        params = dict(min_score=_between_scores(scores, 0.3), max_score=_between_scores(scores, 0.8))
    fast, builtin, _ = make_ops(custom_ops, model_dir, name, any_or_all=any_or_all, **params)
    samples = {STATS: [{key: values} for values in got]}
    keep = list(fast.process_batched(samples))
    assert keep == [bool(builtin.process_single({STATS: {key: values}})) for values in got]
    assert True in keep and False in keep


@pytest.mark.parametrize("params", [dict(horizontal_flip=True), dict(vertical_flip=True, reduce_mode="max"),
                                    dict(horizontal_flip=True, vertical_flip=True, reduce_mode="min")])
def test_itm_flips_and_reductions_equal_the_builtin(custom_ops, model_dir, rows, params):
    picked = rows[:3] + rows[-5:]
    fast, builtin, key = make_ops(custom_ops, model_dir, "itm", batching=dict(gpu_batch_size=4, num_workers=0),
                                  **params)
    got = [stats[key] for stats in fast.compute_stats_batched(columns(picked))[STATS]]
    assert_equal_stats(got, builtin_stats(builtin, picked, key), picked)


def test_batch_size_and_workers_change_nothing(compared, custom_ops, model_dir, rows):
    """One batch decoded in-process gives the stats of small batches crossing samples, decoded by workers."""
    name, got, _, key = compared
    fast, _, _ = make_ops(custom_ops, model_dir, name, batching=dict(gpu_batch_size=64, num_workers=0))
    again = [stats[key] for stats in fast.compute_stats_batched(columns(rows))[STATS]]
    for first, second in zip(got, again):
        assert first == pytest.approx(second, abs=1e-6)


@pytest.mark.parametrize("name", ["itm", "watermark"])
def test_existing_stats_are_kept(custom_ops, model_dir, rows, name):
    fast, _, key = make_ops(custom_ops, model_dir, name)
    picked = [dict(rows[0], **{STATS: {key: [0.25]}}), dict(rows[1], **{STATS: {key: None}}), rows[2]]
    stats = fast.compute_stats_batched(columns(picked))[STATS]
    assert stats[0][key] == [0.25]
    assert len(stats[1][key]) == 1 and len(stats[2][key]) == 1


def test_watermark_keeps_probabilities_up_to_the_threshold(custom_ops, model_dir):
    fast, _, key = make_ops(custom_ops, model_dir, "watermark", prob_threshold=0.5)
    samples = {STATS: [{key: values} for values in ([0.5], [0.51], [], [0.9, 0.1])]}
    assert list(fast.process_batched(samples)) == [True, False, True, True]  # any_or_all='any'


def test_aesthetics_folder_loads_whole_and_names_its_head(predictor_module, model_dir):
    from transformers import CLIPVisionConfig

    model, info = predictor_module.AestheticsPredictor.from_pretrained(model_dir(AESTHETICS), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.head_attribute == "layers" and len(model.layers) == 8
    with pytest.raises(ValueError, match="AestheticsPredictorV2Linear"):
        predictor_module.AestheticsPredictor(CLIPVisionConfig(architectures=["CLIPVisionModel"]))


@pytest.mark.parametrize("architecture", ["AestheticsPredictorV1", "AestheticsPredictorV2Linear",
                                          "AestheticsPredictorV2ReLU"])
def test_aesthetics_heads_equal_the_package_classes(aesthetics_package, predictor_module, tmp_path, architecture):
    """Each class of simple-aesthetics-predictor, saved by the package, scores the same through our loader."""
    import aesthetics_predictor
    import torch
    from transformers import CLIPVisionConfig

    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=16, projection_dim=16)
    torch.manual_seed(0)
    getattr(aesthetics_predictor, architecture)(config).save_pretrained(tmp_path)
    reference = getattr(aesthetics_predictor, architecture).from_pretrained(tmp_path).eval()
    ours = predictor_module.AestheticsPredictor.from_pretrained(tmp_path).eval()
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(pixels), reference(pixel_values=pixels).logits.squeeze(-1))
