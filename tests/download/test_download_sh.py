"""download.sh against a local HTTP server: resume, integrity checks, skipping, summary, exit status.

    python -m pytest tests/download -q
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bettersynth.download import MARKER_NAME, snapshot
from bettersynth.paths import AssetLayout, real_layout

MODEL_DIRS = {"gemma-2b-it": "llm_dir", "clip-vit-large-patch14-336": "vision_tower_dir",
              "openclip-convnext-large-d-320-laion2B-s29B-b131K-ft-soup": "vision_tower_aux_dir"}


def _serve_models(served, make_tarball) -> dict[str, dict[str, bytes]]:
    contents = {}
    for number, top in enumerate(MODEL_DIRS):
        contents[top] = {"config.json": f'{{"model": {number}}}\n'.encode(),
                         "weights.bin": os.urandom(300_000 + number)}
        served.files[f"/models/{top}.tar.gz"] = make_tarball(top, contents[top])
    return contents


def _leftovers(layout: AssetLayout) -> list[Path]:
    """Temporary files or folders download.sh leaves beside the destinations (must be none)."""
    parents = {getattr(layout, attr).parent for attr in MODEL_DIRS.values()}
    return sorted(p for parent in parents if parent.exists() for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("downloader", ["wget", "curl"])
def test_interrupted_transfer_resumes_and_second_run_skips(server, make_tarball, download, tmp_path, downloader):
    base, served = server
    contents = _serve_models(served, make_tarball)
    gemma = "/models/gemma-2b-it.tar.gz"
    served.drop_first[gemma] = 0.4  # the first response is cut after 40% of the bytes
    run = download(["--models"], tmp_path, base, downloader)
    assert run.returncode == 0, run.stdout + run.stderr

    layout = AssetLayout(tmp_path)
    for top, attr in MODEL_DIRS.items():
        folder = getattr(layout, attr)
        assert folder.name == top and (folder / MARKER_NAME).is_file()
        for name, data in contents[top].items():
            assert (folder / name).read_bytes() == data
    first, second = served.requests(gemma)[:2]
    total = len(served.files[gemma])
    assert first == (None, int(total * 0.4))
    assert second == (f"bytes={int(total * 0.4)}-", total - int(total * 0.4))  # resumed, not restarted
    assert _leftovers(layout) == []

    requests_before = len(served.log)
    again = download(["--models"], tmp_path, base, downloader)
    assert again.returncode == 0 and again.stdout.count("skipped") == 3, again.stdout
    assert len(served.log) == requests_before  # nothing fetched


def test_partial_file_of_a_killed_run_is_resumed(server, make_tarball, download, tmp_path):
    base, served = server
    contents = _serve_models(served, make_tarball)
    layout = AssetLayout(tmp_path)
    archive = served.files["/models/clip-vit-large-patch14-336.tar.gz"]
    part = layout.vision_tower_dir.parent / ".clip-vit-large-patch14-336.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(archive[:100_000])
    run = download(["--models"], tmp_path, base)
    assert run.returncode == 0, run.stdout + run.stderr
    assert served.requests("/models/clip-vit-large-patch14-336.tar.gz") == [
        ("bytes=100000-", len(archive) - 100_000)]
    assert ((layout.vision_tower_dir / "weights.bin").read_bytes()
            == contents["clip-vit-large-patch14-336"]["weights.bin"])


def test_corrupt_archive_is_rejected_with_nothing_half_extracted(server, make_tarball, download, tmp_path):
    base, served = server
    _serve_models(served, make_tarball)
    good = served.files["/models/clip-vit-large-patch14-336.tar.gz"]
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2] ^= 0xFF  # one flipped byte in the compressed stream
    served.files["/models/clip-vit-large-patch14-336.tar.gz"] = bytes(corrupt)
    layout = AssetLayout(tmp_path)

    run = download(["--models"], tmp_path, base)
    assert run.returncode == 1
    assert "FAILED    clip-vit-large-patch14-336" in run.stdout and "corrupt archive" in run.stderr
    assert not layout.vision_tower_dir.exists() and _leftovers(layout) == []
    assert (layout.llm_dir / MARKER_NAME).is_file() and (layout.vision_tower_aux_dir / MARKER_NAME).is_file()

    served.files["/models/clip-vit-large-patch14-336.tar.gz"] = good
    fixed = download(["--models"], tmp_path, base)
    assert fixed.returncode == 0 and fixed.stdout.count("skipped") == 2
    assert "done      clip-vit-large-patch14-336" in fixed.stdout


def test_archive_with_another_layout_is_rejected(server, make_tarball, download, tmp_path):
    base, served = server
    served.files["/models/gemma-2b-it.tar.gz"] = make_tarball("not-gemma", {"config.json": b"{}"})
    run = download(["--models"], tmp_path, base)
    assert run.returncode == 1 and "unexpected archive layout" in run.stderr
    assert not AssetLayout(tmp_path).llm_dir.exists()


def test_data_files_wait_for_their_archive_and_land_in_the_seed_folder(server, make_tarball, download, tmp_path):
    base, served = server
    layout = AssetLayout(tmp_path)
    jsonl = b'{"id": "000000001", "text": "x", "images": ["images/00000/000000001.jpg"]}\n'
    served.files["/data/stage_1/mgm_pretrain_stage_1_10k.jsonl"] = jsonl
    served.files["/data/stage_1/stage_1.json"] = b"[]\n"
    served.files["/data/stage_1/finetuning_stage_1_12k.tar.gz"] = make_tarball(
        "finetuning_stage_1_12k", {"coco/a.jpg": b"jpeg"})
    served.files["/data/stage_1/mgm_instruction_stage_1_12k.json"] = b"[]\n"
    # the seed archive is missing on the server: its two files must not be fetched
    run = download(["--data"], tmp_path, base)
    assert run.returncode == 1
    assert "BLOCKED   mgm_pretrain_stage_1_10k.jsonl" in run.stdout and "BLOCKED   stage_1.json" in run.stdout
    assert served.requests("/data/stage_1/mgm_pretrain_stage_1_10k.jsonl") == []
    assert layout.finetune_json.read_bytes() == b"[]\n"

    served.files["/data/stage_1/pretrain_stage_1_10k.tar.gz"] = make_tarball(
        "pretrain_stage_1_10k", {"images/00000/000000001.jpg": b"jpeg"})
    run = download(["--data"], tmp_path, base)
    assert run.returncode == 0, run.stdout + run.stderr
    assert layout.seed_jsonl.read_bytes() == jsonl and layout.stage1_json.read_bytes() == b"[]\n"
    assert (layout.seed_dir / "images/00000/000000001.jpg").read_bytes() == b"jpeg"


def test_dry_run_full_lists_every_real_file_with_its_destination(download, tmp_path):
    run = download(["--dry-run", "--full", "--models", "--data", "--eval", "--recipe-models"], tmp_path,
                   "http://dail-wlcb.oss-cn-wulanchabu.aliyuncs.com/dj-competition/better_synth")
    assert run.returncode == 0, run.stderr
    full = AssetLayout(tmp_path, "full")
    lines = [line for line in run.stdout.splitlines() if line.strip().startswith("would get")]
    assert len(lines) == 18
    expected = [
        ("models/gemma-2b-it.tar.gz", full.llm_dir),
        ("models/clip-vit-large-patch14-336.tar.gz", full.vision_tower_dir),
        ("data/stage_1/pretrain_stage_1.tar.gz", full.seed_dir),
        ("data/stage_1/mgm_pretrain_stage_1.jsonl", full.seed_jsonl),
        ("data/stage_1/stage_1.json", full.stage1_json),
        ("data/stage_1/finetuning_stage_1.tar.gz", full.finetune_dir),
        ("data/stage_1/mgm_instruction_stage_1.json", full.finetune_json),
        ("data/stage_1/eval_stage_1.tar.gz", full.eval_dir),
        ("goldsj/blip2-opt-2.7b", full.recipe_models_dir / "Salesforce" / "blip2-opt-2.7b"),
        ("google/owlvit-base-patch32", full.recipe_models_dir / "google" / "owlvit-base-patch32"),
        ("CompVis/stable-diffusion-v1-4", full.recipe_models_dir / "CompVis" / "stable-diffusion-v1-4"),
        ("amrul-hzz/watermark_detector", full.recipe_models_dir / "amrul-hzz" / "watermark_detector"),
        ("punkt_tab,averaged_perceptron_tagger_eng", full.recipe_models_dir / "nltk_data"),
    ]
    for source, dest in expected:
        assert any(source in line and line.endswith(f"-> {dest}") for line in lines), source
    assert list(tmp_path.iterdir()) == []  # a dry run creates nothing


def test_bad_options_exit_2(download, tmp_path):
    assert download(["--nope"], tmp_path, "http://127.0.0.1:9").returncode == 2
    assert download(["--demo", "--models"], tmp_path, "http://127.0.0.1:9").returncode == 2


def test_demo_flag_builds_the_demo(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, BSYNTH_DEMO_ROOT=str(tmp_path), HF_HUB_OFFLINE="1")
    run = subprocess.run(["bash", str(repo / "download.sh"), "--demo"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    layout = AssetLayout(tmp_path)
    assert layout.training_assets_present() and layout.seed_jsonl.is_file()


def test_snapshot_skips_complete_and_refuses_unmarked_destinations(tmp_path):
    complete = tmp_path / "done"
    complete.mkdir()
    (complete / MARKER_NAME).write_text("modelscope:x\n")
    snapshot("modelscope", "goldsj/blip2-opt-2.7b", complete)  # no network needed: already complete
    unmarked = tmp_path / "someone_elses"
    unmarked.mkdir()
    with pytest.raises(SystemExit, match="not completed by download.sh"):
        snapshot("huggingface", "openai/clip-vit-base-patch32", unmarked)


def test_manifest_destinations_follow_the_layout():
    from bettersynth.download import manifest

    layout = real_layout("10k")
    dests = {item.name: item.dest for item in manifest(layout, "http://x")}
    assert dests["gemma-2b-it"] == layout.llm_dir and dests["stage_1.json"] == layout.stage1_json
    assert dests["TextVQA_0.5.1_val.json"] == layout.textvqa_annotations
