"""Records of what made an artefact, and the reuse verdicts (bettersynth.provenance, ``bsynth step``).

    python -m pytest tests/core/test_provenance.py -q      (seconds)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from bettersynth.provenance import Provenance, fingerprint, judge, made_during, record_path, write_record


def test_fingerprints_of_files_folders_with_a_record_and_plain_folders(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_bytes(b'{"id": 1}\n')
    assert fingerprint(data) == "sha256:" + hashlib.sha256(b'{"id": 1}\n').hexdigest()
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "weights.bin").write_bytes(b"x" * 10)
    listing = fingerprint(stage)
    assert listing.startswith("listing-sha256:")
    (stage / "weights.bin").write_bytes(b"y" * 11)  # another size: another listing
    assert fingerprint(stage) != listing
    write_record(stage, Provenance("pretrain", {}, {}))
    assert fingerprint(stage) == "sha256:" + hashlib.sha256((stage / "made-from.json").read_bytes()).hexdigest()
    assert fingerprint(tmp_path / "nothing") == "absent"


def test_judge_names_what_changed(tmp_path):
    data, output = tmp_path / "data.jsonl", tmp_path / "capped.jsonl"
    data.write_text("one\n")
    output.write_text("made\n")
    made = Provenance.of("cap", {"curated data": data}, {"max samples": 200000})
    assert judge(output, made).reason == f"{output} has no record of what made it"
    write_record(output, made)
    assert json.loads(record_path(output).read_text())["output"] == fingerprint(output)
    assert judge(output, made).fresh
    old_sha, new_sha = fingerprint(data)[7:15], hashlib.sha256(b"two\n").hexdigest()[:8]
    data.write_text("two\n")
    verdict = judge(output, Provenance.of("cap", {"curated data": data}, {"max samples": 100}))
    assert not verdict.fresh
    assert verdict.reason == (f"curated data changed (sha {old_sha}… → sha {new_sha}…); setting max samples "
                              "changed (200000 → 100) since it was made")


def test_an_artefact_changed_after_its_record_is_not_reused(tmp_path):
    output = tmp_path / "capped.jsonl"
    output.write_text("made\n")
    made = Provenance.of("cap", {}, {})
    write_record(output, made)
    output.write_text("edited by hand\n")
    verdict = judge(output, made)
    assert not verdict.fresh and verdict.reason.startswith(f"{output} changed since it was made")


def bsynth_step(tmp_path, *arguments):
    return subprocess.run([sys.executable, "-m", "bettersynth", "step", *arguments], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, BSYNTH_OUTPUT=str(tmp_path / "output")))


def test_bsynth_step_runs_skips_and_reruns_on_change(tmp_path):
    source, output = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("a\n")
    copy = [sys.executable, "-c", f"import shutil; shutil.copy({str(source)!r}, {str(output)!r})"]
    arguments = ["--name", "copy", "--output", str(output), "--input", f"source={source}",
                 "--setting", "mode=plain", "--"]
    before = time.time()
    first = bsynth_step(tmp_path, *arguments, *copy)
    assert first.returncode == 0 and "does not exist yet: running it" in first.stdout and output.read_text() == "a\n"
    [(start, end)] = made_during(output)  # when the command ran
    assert before <= start <= end <= time.time()
    second = bsynth_step(tmp_path, *arguments, *copy)
    assert second.returncode == 0
    assert f"==> [skip] copy: {output} was made from the same inputs and settings" in second.stdout
    assert made_during(output) == [(start, end)]  # a step skipped keeps the time it was made in
    source.write_text("b\n")
    third = bsynth_step(tmp_path, *arguments, *copy)
    assert third.returncode == 0 and "source changed (sha" in third.stdout and output.read_text() == "b\n"


def test_bsynth_step_failure_leaves_no_record(tmp_path):
    output = tmp_path / "out.txt"
    output.write_text("old\n")
    write_record(output, Provenance.of("copy", {}, {"mode": "old"}))
    failed = bsynth_step(tmp_path, "--name", "copy", "--output", str(output), "--setting", "mode=new", "--",
                         sys.executable, "-c", "raise SystemExit(3)")
    assert failed.returncode == 3 and "==> copy: FAILED with exit status 3" in failed.stdout
    assert not record_path(output).exists()
    missing = bsynth_step(tmp_path, "--name", "copy", "--output", str(tmp_path / "never.txt"),
                          "--", sys.executable, "-c", "")
    assert missing.returncode == 1 and "exited 0 but" in missing.stdout


def test_bsynth_step_command_that_cannot_run_is_named(tmp_path):
    output = tmp_path / "out.txt"
    missing = bsynth_step(tmp_path, "--name", "copy", "--output", str(output), "--", "no-such-command-zz", "x")
    assert missing.returncode == 127 and missing.stderr == ""  # was a FileNotFoundError traceback, exit 1
    assert missing.stdout.endswith("==> copy: FAILED: cannot run 'no-such-command-zz': No such file or directory\n")
    assert not output.exists() and not record_path(output).exists()


def test_a_folder_listing_leaves_out_the_artefacts_made_in_it(tmp_path):
    """The baseline job writes its validation report, capped file and LLaVA json beside the seed pool's
    data, in the image folder: they (with their records, and artefact folders) do not change the
    folder's fingerprint, an image does."""
    images = tmp_path / "pool"
    (images / "images").mkdir(parents=True)
    (images / "images" / "0.jpg").write_bytes(b"jpeg")
    (images / "pool.jsonl").write_text('{"id": 1}\n')
    before = fingerprint(images)
    capped = images / "pool.jsonl-200k.jsonl"
    capped.write_text('{"id": 1}\n')
    write_record(capped, Provenance.of("cap", {"curated data": images / "pool.jsonl"}, {}))
    stage = images / "stage"
    stage.mkdir()
    (stage / "weights.bin").write_bytes(b"w")
    write_record(stage, Provenance("pretrain", {}, {}))
    assert fingerprint(images) == before
    unrecorded = images / "notes.txt"  # a file of the folder's own: listed
    unrecorded.write_text("x")
    assert fingerprint(images) != before
    unrecorded.unlink()
    (images / "images" / "1.jpg").write_bytes(b"jpeg")
    assert fingerprint(images) != before


def test_a_folder_with_a_link_to_nowhere_has_a_fingerprint(tmp_path):
    images = tmp_path / "pool"
    images.mkdir()
    (images / "0.jpg").symlink_to(tmp_path / "nowhere.jpg")
    dangling = fingerprint(images)  # was a FileNotFoundError traceback (bsynth step --input, recipe run)
    assert dangling.startswith("listing-sha256:")
    (tmp_path / "nowhere.jpg").write_bytes(b"jpeg, at last")
    assert fingerprint(images) != dangling


@pytest.mark.parametrize("times", [[[5.0, 2.0]], [[1.0, float("nan")]], [[1.0]], "soon", [["a", "b"]],
                                   [[1.0, 2.0, 3.0]]])
def test_times_that_are_not_intervals_are_no_times(tmp_path, times):
    """A record edited by hand or written by another tool: its times are not used (no negative or NaN
    seconds in a run record), the record itself still is."""
    output = tmp_path / "out.txt"
    output.write_text("made\n")
    write_record(output, Provenance("copy", {}, {}), made_during=times)
    assert made_during(output) == [] and judge(output, Provenance("copy", {}, {})).fresh
