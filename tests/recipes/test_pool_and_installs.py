"""The files around a Data-Juicer run and the install guard, without running Data-Juicer.

Staging makes image paths absolute and stops at the first bad line with file:line (a recipe's
export, with synthetic samples, is refused as input, and so is a sample without a text string); the
export writer makes them relative to the image root again, marks the samples whose images the run drew
(relative to the export's folder), refuses any other image and concatenates Ray's shard folder; the
install guard reads Data-Juicer's install lines, diffs distributions and strips pip/uv settings so an
install attempt fails.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_pool_and_installs.py -q      (~2 s)
"""

from __future__ import annotations

import json
import os

import pytest

from bettersynth.recipes import installs
from bettersynth.recipes.pool import PoolError, stage_input, write_export


@pytest.fixture
def image_root(tmp_path):
    root = tmp_path / "seed"
    (root / "images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (root / "images" / name).write_bytes(b"jpeg")
    return root


def write_lines(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_staging_makes_paths_absolute(tmp_path, image_root):
    dataset = write_lines(tmp_path / "pool.jsonl", [{"id": "1", "text": "t", "images": ["images/a.jpg"]},
                                                    {"id": "2", "text": "u", "images": ["images/b.jpg"]}])
    staged = tmp_path / "staged.jsonl"
    assert stage_input(dataset, image_root, staged) == 2
    rows = [json.loads(line) for line in staged.read_text().splitlines()]
    assert [row["images"] for row in rows] == [[str(image_root / "images/a.jpg")], [str(image_root / "images/b.jpg")]]
    assert [row["id"] for row in rows] == ["1", "2"]


@pytest.mark.parametrize("bad, message", [
    ("{not json", "pool.jsonl:2: invalid JSON"),
    ('["a list"]', "pool.jsonl:2: expected a JSON object, got list"),
    ({"id": "9", "text": "t", "images": "images/a.jpg"}, "pool.jsonl:2: `images` must be a list"),
    ({"id": "9", "text": None, "images": ["images/a.jpg"]},
     "pool.jsonl:2: sample '9': `text` must be a string, got None"),
    ({"id": "9", "images": ["images/a.jpg"]}, "pool.jsonl:2: sample '9': `text` must be a string, got None"),
    ({"id": "9", "text": ["t"], "images": ["images/a.jpg"]}, "pool.jsonl:2: sample '9': `text` must be a string"),
    ({"id": "9", "text": "t", "images": ["images/zzz.jpg"]},
     "pool.jsonl:2: sample '9': image .*zzz.jpg does not exist"),
    ({"id": "9", "text": "t", "images": ["synthetic_images/pool/x.jpg"], "synthetic_images": True},
     "pool.jsonl:2: sample '9' has synthetic images"),
])
def test_staging_names_the_bad_line(tmp_path, image_root, bad, message):
    dataset = write_lines(tmp_path / "pool.jsonl", [{"id": "1", "text": "t", "images": ["images/a.jpg"]}, bad])
    with pytest.raises(PoolError, match=message):
        stage_input(dataset, image_root, tmp_path / "staged.jsonl")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pool.jsonl", "seed"]  # no partial staged file


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_staging_an_empty_pool_is_refused(tmp_path, image_root, content):
    dataset = tmp_path / "pool.jsonl"
    dataset.write_text(content)
    with pytest.raises(PoolError) as raised:  # was Data-Juicer's "FAILED: StopIteration:"
        stage_input(dataset, image_root, tmp_path / "staged.jsonl")
    assert str(raised.value) == f"{dataset}: the file holds no samples: nothing to run the recipe on"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pool.jsonl", "seed"]


def test_export_paths_become_relative_and_ray_shards_are_joined(tmp_path, image_root):
    shards = tmp_path / "dj_export.jsonl"
    shards.mkdir()
    drawn = tmp_path / "synthetic_images" / "out"
    write_lines(shards / "b_000001.json", [
        {"id": "2", "images": [str(drawn / "op/ab/b_1.jpg")], "synthetic_images": None},
        {"id": "3", "images": [str(image_root / "images/b.jpg")]}])
    write_lines(shards / "a_000000.json", [{"id": "1", "images": [str(image_root / "images/./a.jpg")]}])
    target = tmp_path / "out.jsonl"
    assert write_export(shards, image_root, drawn, target) == (3, 1)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows == [{"id": "1", "images": ["images/a.jpg"]},
                    {"id": "2", "images": ["synthetic_images/out/op/ab/b_1.jpg"], "synthetic_images": True},
                    {"id": "3", "images": ["images/b.jpg"]}]


@pytest.mark.parametrize("images, message", [
    (["{elsewhere}/c.jpg"], "out.jsonl:1: sample '1': image .*c.jpg is neither under the image root"),
    (["{drawn}/op/c.jpg", "{seed}/images/a.jpg"], "out.jsonl:1: sample '1' mixes drawn and seed images"),
])
def test_export_refuses_images_it_cannot_place(tmp_path, image_root, images, message):
    drawn = tmp_path / "synthetic_images" / "out"
    places = {"elsewhere": tmp_path / "elsewhere", "drawn": drawn, "seed": image_root}
    export = write_lines(tmp_path / "out.jsonl", [{"id": "1", "images": [image.format(**places) for image in images]}])
    with pytest.raises(PoolError, match=message):
        write_export(export, image_root, drawn, tmp_path / "target.jsonl")


def test_missing_export_is_an_error(tmp_path, image_root):
    with pytest.raises(PoolError, match="wrote no export"):
        write_export(tmp_path / "absent.jsonl", image_root, tmp_path / "drawn", tmp_path / "out.jsonl")


def test_install_lines_and_distribution_changes_are_reported():
    log = ("2026 | INFO | lazy_loader:214 - Package [spacy] not found, installing...\n"
           "Package [spacy] not found, installing...\nPackage [torchcodec==0.7] not found, installing...\n")
    assert installs.install_attempts(log) == ["spacy", "torchcodec==0.7"]
    before, after = {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"}
    assert installs.distribution_changes(before, after) == ["changed b 2 -> 2.1", "removed c==3", "installed d==4"]
    assert installs.distribution_changes(before, dict(before)) == []
    assert "torch" in installs.installed_distributions()


def test_no_install_environment_drops_indexes_and_wheel_folders():
    env = installs.no_install_environment({"PATH": "/bin", "PIP_FIND_LINKS": "/opt/wheels",
                                           "UV_INDEX_URL": "https://x", "PIP_EXTRA_INDEX_URL": "file:///y"})
    assert env["PATH"] == "/bin"
    assert "PIP_FIND_LINKS" not in env and "UV_INDEX_URL" not in env and "PIP_EXTRA_INDEX_URL" not in env
    assert env["PIP_NO_INDEX"] == "1" and env["UV_OFFLINE"] == "1" and env["PIP_CONFIG_FILE"] == os.devnull
