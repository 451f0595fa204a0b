"""regenerate_low_clip.yaml on the demo pool, through ``bsynth recipe run``, and its export downstream.

The run draws new images for the lowest-scored tenth of the CLIP ranking with the demo's tiny Stable
Diffusion pipeline (2 steps) and keeps what reaches the demo bar (PALETTE_DEMO_ENV). Checked: the
low band's samples are replaced by samples whose images are new JPEG files under the export's
``synthetic_images/processed_data/`` folder (which holds exactly those), marked synthetic and
re-scored (equal to a plain CLIP forward on the new file); every other sample is its seed sample,
untouched; the export's record fingerprints the folder (a missing image makes the export stale); a
failing rerun leaves the export and its images as they were; validate, dj2llava and training's data
set read both image roots.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_regenerate_low_clip.py -q      (~1.5 min)
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from recipe_helpers import PALETTE_DEMO_ENV, RECIPES_DIR, check_complete_run, read_rows, run_cli

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN
from bettersynth.provenance import fingerprint, read_record

STATS, META = "__dj__stats__", "__dj__meta__"
BAND = 0.1  # the recipe's default band: rank quantile below 0.1
BAR = float(PALETTE_DEMO_ENV["regenerate_low_clip"]["BSYNTH_CLIP_MIN"])
FOLDER = "synthetic_images/processed_data"


@pytest.fixture(scope="module")
def regenerated(recipe_runs, recipe_demo):
    result = recipe_runs.palette("regenerate_low_clip")
    return result, check_complete_run(result, recipe_demo)


@pytest.fixture(scope="module")
def seed(recipe_demo) -> dict[str, dict]:
    return {row["id"]: row for row in read_rows(recipe_demo.seed_jsonl)}


def plain_clip_score(clip_dir, text: str, image_path) -> float:
    """Data-Juicer's CLIP similarity of one pair: one plain transformers forward, logits / 100."""
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    caption = text.replace(DJ_IMAGE_TOKEN, "").replace(DJ_EOC_TOKEN, "").strip()
    with Image.open(image_path) as image:
        inputs = processor(text=caption, images=image.convert("RGB"), return_tensors="pt", padding=True)
    with torch.no_grad():
        return float(model(**inputs).logits_per_text[0, 0] / 100.0)


def test_the_low_band_is_drawn_anew_under_the_output_tree(regenerated, seed, recipe_demo):
    result, rows = regenerated
    export_dir = result.export.parent
    synthetic = [row for row in rows if row.get("synthetic_images")]
    kept_seed = [row for row in rows if "synthetic_images" not in row]
    assert len(synthetic) + len(kept_seed) == len(rows)
    # the lowest tenth of 300 is 30 samples; the bar keeps some of their new pairs, not all
    band = {row["id"] for row in synthetic}
    assert 0 < len(synthetic) < 30 and len(band) == len(synthetic)
    for row in synthetic:
        assert row[META]["regenerated"] is True and row[META]["image_text_similarity_quantile"] < BAND
        assert row["text"] == seed[row["id"]]["text"]
        (image,) = row["images"]
        assert image.startswith(f"{FOLDER}/fast_image_regeneration_mapper/") and image.endswith(".jpg")
        with Image.open(export_dir / image) as drawn:
            assert drawn.format == "JPEG" and drawn.size == (64, 64)  # the demo pipeline's own size
        assert (export_dir / image).read_bytes() != (recipe_demo.seed_dir / seed[row["id"]]["images"][0]).read_bytes()
    for row in kept_seed:  # untouched: the seed sample, plus its score and rank
        assert row[META]["image_text_similarity_quantile"] >= BAND and "regenerated" not in row[META]
        assert {key: row[key] for key in ("id", "text", "images")} == seed[row["id"]]
    assert not band & {row["id"] for row in kept_seed}, "a low-band sample kept its old image"
    assert all(min(row[STATS]["image_text_similarity"]) >= BAR for row in rows)
    # the folder holds exactly the export's images; the attempt is gone
    on_disk = {path.relative_to(export_dir).as_posix() for path in (export_dir / FOLDER).rglob("*") if path.is_file()}
    assert on_disk == {row["images"][0] for row in synthetic}
    assert not (export_dir / "processed_data_attempt").exists()
    summary = json.loads((result.work_dir / "run.json").read_text())
    assert summary["synthetic_samples"] == len(synthetic)


def test_new_pairs_are_rescored(regenerated, recipe_demo):
    result, rows = regenerated
    clip_dir = recipe_demo.recipe_models_dir / "openai" / "clip-vit-base-patch32"
    for row in [row for row in rows if row.get("synthetic_images")][:3]:
        expected = plain_clip_score(clip_dir, row["text"], result.export.parent / row["images"][0])
        assert row[STATS]["image_text_similarity"] == pytest.approx([expected], abs=1e-4)


def test_the_record_covers_the_images_and_a_failed_rerun_keeps_them(regenerated, recipe_demo, tmp_path, monkeypatch):
    from bettersynth.recipes.config import RecipeRun
    from bettersynth.recipes.run import unchanged_export

    result, rows = regenerated
    copy = tmp_path / "out"
    shutil.copytree(result.export.parent, copy, copy_function=shutil.copy2)
    export = copy / result.export.name
    assert read_record(export)["synthetic_images"] == fingerprint(copy / FOLDER)
    run = RecipeRun.create(RECIPES_DIR / "regenerate_low_clip.yaml", dataset=recipe_demo.seed_jsonl, export=export,
                           models_root=recipe_demo.recipe_models_dir)
    for key, value in PALETTE_DEMO_ENV["regenerate_low_clip"].items():
        monkeypatch.setenv(key, value)  # the recipe as the run resolved it
    assert unchanged_export(run)[0]
    images = sorted((copy / FOLDER).rglob("*.jpg"))
    stamps = {path: path.stat().st_mtime_ns for path in images}
    hidden = images[0].rename(tmp_path / "hidden.jpg")
    fresh, reason = unchanged_export(run)
    assert not fresh and f"{copy / FOLDER} changed" in reason
    hidden.rename(images[0])
    # a bar nothing reaches: the run fails after drawing; the export and its images stay as they were
    env = dict(PALETTE_DEMO_ENV["regenerate_low_clip"], BSYNTH_CLIP_MIN="2.0")
    failed = run_cli(RECIPES_DIR / "regenerate_low_clip.yaml", recipe_demo, export, "--np", "1", env=env)
    assert failed.returncode == 1 and "the recipe kept none" in failed.output
    assert "reusing" in failed.output and f"images drawn for the committed export ({copy / FOLDER})" in failed.output
    assert read_rows(export) == rows and {path: path.stat().st_mtime_ns for path in images} == stamps
    assert sorted((copy / FOLDER).rglob("*.jpg")) == images
    # the attempt kept what it drew (more than the export holds: the whole band) for the next run
    assert len(list((copy / "processed_data_attempt" / FOLDER).rglob("*.jpg"))) == 30


def test_validate_dj2llava_and_training_read_both_roots(regenerated, recipe_demo, tmp_path):
    from transformers import AutoTokenizer

    from bettersynth.data.dj_llava import DjToLlavaOptions, dj_to_llava
    from bettersynth.data.validate import ValidateOptions, validate
    from bettersynth.model.preprocess import ImagePreprocessor
    from bettersynth.train.dataset import DataOptions, LazySupervisedDataset

    result, rows = regenerated
    report = validate(result.export, ValidateOptions(image_root=recipe_demo.seed_dir, original=recipe_demo.stage1_json,
                                                     workers=1))
    assert report.ok and report.synthetic_samples == sum(1 for row in rows if row.get("synthetic_images"))
    llava = tmp_path / "train.json"
    converted = dj_to_llava(result.export, llava, DjToLlavaOptions(
        image_special_token=DJ_IMAGE_TOKEN, restore_questions=True, original_llava_ds_path=recipe_demo.stage1_json,
        image_root=recipe_demo.seed_dir))
    assert converted.num_samples == len(rows) and converted.num_synthetic == report.synthetic_samples
    records = json.loads(llava.read_text())
    for row, record in zip(rows, records):
        if row.get("synthetic_images"):
            assert record["image"] == str(result.export.parent / row["images"][0])
        else:
            assert record["image"] == row["images"][0]
    first_synthetic = next(i for i, row in enumerate(rows) if row.get("synthetic_images"))
    first_seed = next(i for i, row in enumerate(rows) if not row.get("synthetic_images"))
    llava.write_text(json.dumps([records[first_synthetic], records[first_seed]]))
    preprocessor = ImagePreprocessor.from_vision_tower(recipe_demo.vision_tower_dir, 64)
    dataset = LazySupervisedDataset(DataOptions(data_path=llava, image_folder=recipe_demo.seed_dir, aspect="square",
                                                model_max_length=2048, num_image_tokens=64),
                                    AutoTokenizer.from_pretrained(recipe_demo.llm_dir), preprocessor)
    for position, image in ((0, result.export.parent / rows[first_synthetic]["images"][0]),
                            (1, recipe_demo.seed_dir / rows[first_seed]["images"][0])):
        assert torch.equal(dataset[position].image, preprocessor(preprocessor.load(str(image)), aspect="square"))
