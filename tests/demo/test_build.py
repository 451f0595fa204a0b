"""`build_demo` is deterministic, fast, skips complete items and redoes interrupted ones.

    HF_HUB_OFFLINE=1 python -m pytest tests/demo/test_build.py -q -s     (-s prints the build times)
"""

from __future__ import annotations

import hashlib
import shutil
import time

from bettersynth.cli import main as bsynth
from bettersynth.demo.build import MARKER_NAME, build_demo, demo_items
from bettersynth.paths import AssetLayout


def _digests(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_give_identical_bytes_in_under_two_minutes(demo, tmp_path):
    start = time.perf_counter()
    results = build_demo(AssetLayout(tmp_path), seed=0)
    seconds = time.perf_counter() - start
    print(f"\nsecond demo build: {seconds:.1f} s")
    assert seconds < 120 and all(r.status == "built" for r in results)
    first, second = _digests(demo.root), _digests(tmp_path)
    assert len(first) > 450 and first == second


def test_a_complete_build_is_skipped_and_an_interrupted_item_redone(tmp_path):
    layout = AssetLayout(tmp_path)
    items = {item.name: item for item in demo_items(layout)}
    build_demo(layout, seed=0)
    before = _digests(tmp_path)
    assert all(r.status == "skipped" for r in build_demo(layout, seed=0))

    # interrupted: the marker is missing (written last) and a half-written temporary folder is left
    seed_dir = items["seed_pool"].folder
    (seed_dir / MARKER_NAME).unlink()
    (seed_dir / "mgm_pretrain_stage_1_10k.jsonl").write_text("{truncated")
    stale = seed_dir.with_name(f".{seed_dir.name}.partial")
    stale.mkdir()
    (stale / "junk").write_text("x")
    results = {r.name: r.status for r in build_demo(layout, seed=0)}
    assert results["seed_pool"] == "built"
    assert [name for name, status in results.items() if status == "built"] == ["seed_pool"]
    assert not stale.exists() and _digests(tmp_path) == before

    # another seed rebuilds everything; --force rebuilds even what is complete
    other = {r.status for r in build_demo(layout, seed=1)}
    assert other == {"built"} and _digests(tmp_path) != before
    shutil.rmtree(items["mmbench"].folder)
    assert {r.name for r in build_demo(layout, seed=1) if r.status == "built"} == {"mmbench"}
    assert {r.status for r in build_demo(layout, seed=1, force=True)} == {"built"}


def test_cli_reports_each_item(demo, capsys):
    assert bsynth(["demo", "build", "--root", str(demo.root)]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == len(demo_items(demo)) and "demo assets ready" in out
