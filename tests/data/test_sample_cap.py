"""``bsynth sample`` against the official cap: random.seed(1024) + random.sample, written by jsonlines.

The expected file is built exactly as check_sample_number.py builds it (global ``random.seed(1024)``,
``random.sample`` over the parsed samples when there are more than N, ``jsonlines`` writer),
for N below, equal to and above the sample count.

    HF_HUB_OFFLINE=1 python -m pytest tests/data/test_sample_cap.py -q
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonlines
import pytest

from bettersynth.cli import main as bsynth
from bettersynth.data.problems import DataError
from bettersynth.data.sample_cap import sample_cap, sample_positions

COUNT = 57


def _samples() -> list[dict]:
    samples = [{"id": f"{n:05d}", "text": f"<__dj__image>\ncaption {n} 中文 {n % 3} <|__dj__eoc|>",
                "images": [f"images/{n}.jpg"]} for n in range(COUNT - 2)]
    return samples + [samples[4], samples[9]]  # duplicates are kept


def _write_input(path: Path, samples: list[dict]) -> Path:
    # Compact separators and escaped non-ASCII: the output re-serialises, so bytes differ on purpose.
    path.write_text("".join(json.dumps(s, separators=(",", ":")) + "\n" for s in samples), encoding="utf-8")
    return path


def _official(samples: list[dict], n: int, out: Path) -> bytes:
    state = random.getstate()
    try:
        random.seed(1024)
        chosen = random.sample(samples, n) if n < len(samples) else samples
    finally:
        random.setstate(state)
    with jsonlines.open(out, "w") as writer:
        writer.write_all(chosen)
    return out.read_bytes()


@pytest.mark.parametrize("n", [1, 10, COUNT - 1, COUNT, COUNT + 1, 10 * COUNT])
def test_matches_the_official_cap(tmp_path, n):
    samples = _samples()
    source = _write_input(tmp_path / "in.jsonl", samples)
    result = sample_cap(source, tmp_path / "out.jsonl", n)
    expected = _official(samples, n, tmp_path / "official.jsonl")
    assert (tmp_path / "out.jsonl").read_bytes() == expected
    assert result.num_input == COUNT and result.num_output == min(n, COUNT)
    assert result.sampled == (n < COUNT)
    if n >= COUNT:  # all lines, in their order, duplicates included
        assert [json.loads(line) for line in expected.decode().splitlines()] == samples


def test_positions_equal_sampling_the_list_itself():
    state = random.getstate()
    population = [f"line{i}" for i in range(1000)]
    for k in (1, 5, 21, 400, 999):  # covers both of random.sample's internal strategies
        assert [population[p] for p in sample_positions(1000, k)] == random.Random(1024).sample(population, k)
    assert sample_positions(3, 3) == [0, 1, 2]
    assert random.getstate() == state  # the global generator is left alone
    with pytest.raises(ValueError):
        sample_positions(3, -1)


def test_real_sample_is_capped_like_the_official_script(tmp_path, real_sample_dir):
    source = real_sample_dir / "seed_sample_1k.jsonl"
    with jsonlines.open(source) as reader:
        samples = list(reader)
    sample_cap(source, tmp_path / "out.jsonl", 200)
    assert (tmp_path / "out.jsonl").read_bytes() == _official(samples, 200, tmp_path / "official.jsonl")


def test_bad_lines_are_all_reported_and_nothing_is_written(tmp_path, capsys):
    source = _write_input(tmp_path / "in.jsonl", _samples()[:5])
    with source.open("a", encoding="utf-8") as f:
        f.write('{"id": "cut\n\n[1, 2]\n')
    with pytest.raises(DataError) as caught:
        sample_cap(source, tmp_path / "out.jsonl", 2)
    assert sorted((p.kind, p.line) for p in caught.value.problems) == [
        ("invalid_line", 6), ("invalid_line", 7), ("not_an_object", 8)]
    assert not (tmp_path / "out.jsonl").exists()
    assert bsynth(["sample", str(source), str(tmp_path / "out.jsonl"), "2"]) == 1
    assert "in.jsonl:line 7: blank line" in capsys.readouterr().err


def test_cli(tmp_path, capsys):
    samples = _samples()
    source = _write_input(tmp_path / "in.jsonl", samples)
    assert bsynth(["sample", str(source), str(tmp_path / "out.jsonl"), "10"]) == 0
    assert (tmp_path / "out.jsonl").read_bytes() == _official(samples, 10, tmp_path / "official.jsonl")
    assert "57 samples in, 10 written" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bsynth(["sample", str(source), str(tmp_path / "out.jsonl"), "-1"])
