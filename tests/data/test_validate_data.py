"""``bsynth validate``: the real sample passes; a corrupted copy fails with (file, line, id) per error.

The corrupted copy is built in tmp_path from a few real samples: a truncated line, a missing
image, a truncated JPEG, a file of garbage bytes named .jpg, and an unknown id. Generated cases
cover token placement, absolute paths, duplicates, the empty file and images that decode but that
training cannot use (a 16-bit PNG, a 20000x20 JPEG).

    HF_HUB_OFFLINE=1 python -m pytest tests/data/test_validate_data.py -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from data_helpers import write_jpeg, write_json, write_jsonl

from bettersynth.cli import main as bsynth
from bettersynth.data.image_check import check_images
from bettersynth.data.validate import ValidateOptions, check_text, validate

IMG, EOC = "<__dj__image>", "<|__dj__eoc|>"


def test_real_sample_has_no_errors(real_sample_dir, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code = bsynth(["validate", str(real_sample_dir / "seed_sample_1k.jsonl"), "--image-root", str(real_sample_dir),
                   "--original", str(real_sample_dir / "stage_1_sample_1k.json"), "--workers", "2",
                   "--report", str(report_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["num_lines"] == 1000 and report["num_valid_lines"] == 1000
    assert report["images_checked"] == 1000 and report["errors"] == [] and report["warnings"] == []
    assert "RESULT: OK" in out


@pytest.fixture()
def corrupted_copy(real_sample_dir, tmp_path) -> tuple[Path, Path, Path, dict]:
    """12 real samples copied with their images, then broken in five ways; returns the expected errors."""
    root = tmp_path / "seed"
    lines = (real_sample_dir / "seed_sample_1k.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    samples = [json.loads(line) for line in lines]
    for sample in samples:
        target = root / sample["images"][0]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real_sample_dir / sample["images"][0], target)
    ids = [s["id"] for s in samples]
    lines[2] = lines[2][: len(lines[2]) // 2]                                  # line 3: truncated line
    (root / samples[4]["images"][0]).unlink()                                  # line 5: missing image
    jpeg = root / samples[6]["images"][0]                                      # line 7: truncated JPEG
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    (root / samples[8]["images"][0]).write_bytes(b"\xff\xd8 not a jpeg at all" * 20)  # line 9: garbage
    samples[10]["id"] = "999999999"                                            # line 11: unknown id
    lines[10] = json.dumps(samples[10], ensure_ascii=False)
    dj = tmp_path / "broken.jsonl"
    dj.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {(3, None, "invalid_line"), (5, ids[4], "image_missing"), (7, ids[6], "image_undecodable"),
                (9, ids[8], "image_undecodable"), (11, "999999999", "unknown_id")}
    return dj, root, real_sample_dir / "stage_1_sample_1k.json", expected


@pytest.mark.parametrize("workers", [1, 2])
def test_corrupted_copy_reports_each_error(corrupted_copy, workers):
    dj, root, original, expected = corrupted_copy
    report = validate(dj, ValidateOptions(image_root=root, original=original, workers=workers))
    assert {(p.line, p.sample_id, p.kind) for p in report.errors} == expected
    assert not report.ok and report.num_lines == 12 and report.lines_with_errors == 5
    assert report.images_checked == 11  # the truncated line names no image


def test_corrupted_copy_cli_lists_file_line_id_and_exits_1(corrupted_copy, tmp_path, capsys):
    dj, root, original, expected = corrupted_copy
    report_path = tmp_path / "out" / "report.json"
    code = bsynth(["validate", str(dj), "--image-root", str(root), "--original", str(original),
                   "--report", str(report_path), "--max-listed", "3"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{dj}:line 3 invalid_line: invalid JSON" in out
    assert f"{dj}:line 5 (id '{sorted(expected)[1][1]}') image_missing" in out
    assert "line 9" not in out.split("errors (file:line")[1]  # the printed list is capped at 3
    assert "RESULT: FAILED with 5 error(s)" in out
    report = json.loads(report_path.read_text())
    assert {(e["line"], e["sample_id"], e["kind"]) for e in report["errors"]} == expected
    assert report["error_counts"] == {"image_undecodable": 2, "invalid_line": 1, "image_missing": 1, "unknown_id": 1}


@pytest.mark.parametrize("text, kinds", [
    (f"{IMG}\na caption {EOC}", []),
    (f"a caption {IMG} {EOC}", []),
    (f"{IMG}\n一个标题 {EOC}\n", []),
    (f"{IMG}\nno end token", ["eoc_missing"]),
    (f"a caption {EOC}", ["image_token_count"]),
    (f"{IMG}\n{IMG} two {EOC}", ["image_token_count"]),
    (f"in {IMG} the middle {EOC}", ["image_token_position"]),
    (f"{IMG}\nchunk one {EOC}\nchunk two {EOC}", ["eoc_position"]),
    (f"{IMG}\n {EOC}", ["empty_caption"]),
])
def test_token_placement(text, kinds):
    options = ValidateOptions(image_root=Path("."), workers=1)
    assert [kind for _, kind, _ in check_text(text, options)] == kinds


def test_generated_problems_duplicates_and_paths(tmp_path):
    root = tmp_path / "root"
    for name in ("a", "b", "c"):
        write_jpeg(root / f"{name}.jpg")
    write_jpeg(tmp_path / "outside.jpg")
    rows = [
        {"id": "1", "text": f"{IMG}\nok {EOC}", "images": ["a.jpg"]},
        {"id": "1", "text": f"{IMG}\nsame id, same image {EOC}", "images": ["a.jpg"]},
        {"id": "2", "text": f"{IMG}\nabsolute under root {EOC}", "images": [str(root / "b.jpg")]},
        {"id": "3", "text": f"{IMG}\nabsolute outside {EOC}", "images": [str(tmp_path / "outside.jpg")]},
        {"id": 4, "text": f"{IMG}\nint id {EOC}", "images": ["c.jpg"]},
        {"id": "5", "text": f"{IMG}\ntwo images {EOC}", "images": ["a.jpg", "b.jpg"]},
        {"id": "6", "text": ["not", "text"], "images": "c.jpg"},
        ["not", "an", "object"],
    ]
    dj = write_jsonl(tmp_path / "gen.jsonl", rows)
    report = validate(dj, ValidateOptions(image_root=root, workers=1))
    assert sorted((p.line, p.kind) for p in report.errors) == [
        (4, "image_outside_root"), (5, "bad_id"), (6, "image_count"), (7, "bad_images"), (7, "bad_text"),
        (8, "not_an_object")]
    assert [(p.line, p.kind) for p in report.warnings] == [(3, "absolute_image_path")]
    assert (report.duplicate_ids.repeated_values, report.duplicate_ids.extra_lines) == (1, 1)
    assert report.duplicate_images.examples == [(str(root / "a.jpg"), 2)]


def test_empty_file_and_missing_inputs(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    report = validate(empty, ValidateOptions(image_root=tmp_path, workers=1))
    assert [p.kind for p in report.errors] == ["empty_file"]
    assert bsynth(["validate", str(tmp_path / "absent.jsonl"), "--image-root", str(tmp_path)]) == 1
    assert "input file not found" in capsys.readouterr().err
    assert bsynth(["validate", str(empty), "--image-root", str(tmp_path / "nope")]) == 1
    assert "image root is not a folder" in capsys.readouterr().err


def test_image_check_in_parallel_equals_serial(tmp_path):
    paths = [str(write_jpeg(tmp_path / f"{n}.jpg", size=(10 + n, 7))) for n in range(40)]
    (tmp_path / "7.jpg").write_bytes(b"garbage")
    (tmp_path / "30.jpg").unlink()
    serial, parallel = check_images(paths, workers=1), check_images(paths, workers=2)
    assert serial == parallel
    assert {Path(p).name: f.kind for p, f in parallel.items()} == {"7.jpg": "image_undecodable",
                                                                  "30.jpg": "image_missing"}


def test_original_must_be_a_list(tmp_path):
    original = write_json(tmp_path / "o.json", {"id": "1"})
    dj = write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "text": f"{IMG}\nx {EOC}", "images": ["a.jpg"]}])
    assert bsynth(["validate", str(dj), "--image-root", str(tmp_path), "--original", str(original)]) == 1


def test_truncated_images_fail_even_after_data_juicer_is_imported(tmp_path):
    """Data-Juicer turns on PIL's LOAD_TRUNCATED_IMAGES for its process; decoding must stay strict."""
    pytest.importorskip("data_juicer")
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the hazard: set by `import data_juicer`
    jpeg = tmp_path / "t.jpg"
    Image.effect_noise((128, 128), 60).convert("RGB").save(jpeg, format="JPEG")
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    with Image.open(jpeg) as image:
        image.load()  # in this process the truncated file "decodes"
    for workers in (1, 2):
        assert check_images([str(jpeg)], workers)[str(jpeg)].kind == "image_undecodable"


def test_images_training_cannot_use_are_errors(tmp_path, capsys):
    """A 16-bit PNG (convert('RGB') turns it white) and a 20000x20 JPEG (gigabytes to preprocess)
    decode fine, yet training cannot use them: validate refuses them with the loader's reasons."""
    root = tmp_path / "root"
    write_jpeg(root / "ok.jpg")
    Image.fromarray(np.full((4, 6), 40000, dtype=np.uint16)).save(root / "grey16.png")
    Image.new("RGB", (20000, 20)).save(root / "wide.jpg")
    names = ["ok.jpg", "grey16.png", "wide.jpg"]
    dj = write_jsonl(tmp_path / "d.jsonl", [{"id": str(n), "text": f"{IMG}\na caption {EOC}", "images": [name]}
                                            for n, name in enumerate(names, start=1)])
    report = validate(dj, ValidateOptions(image_root=root, workers=1))
    assert [(p.line, p.sample_id, p.kind, p.message) for p in report.errors] == [
        (2, "2", "image_mode", f"{root / 'grey16.png'}: mode I;16 (16/32-bit greyscale or float): convert('RGB') "
                               "clips it to 0..255 (a 16-bit image turns white); save it as 8-bit first"),
        (3, "3", "image_size", f"{root / 'wide.jpg'}: 20000x20 pixels: the long side 20000 is over 6144 px and "
                               "the aspect ratio 1000.0 is over 20, over the limits that keep preprocessing one "
                               "image under a gigabyte; resize it or filter it out (Data-Juicer's "
                               "image_shape_filter, image_aspect_ratio_filter)")]
    assert bsynth(["validate", str(dj), "--image-root", str(root), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert f"{dj}:line 2 (id '2') image_mode" in out and f"{dj}:line 3 (id '3') image_size" in out
