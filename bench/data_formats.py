"""CPU throughput of the data commands on the real 1k seed sample: validate (with full image
decode) and dj2llava (the sample repeated to ~10k lines), with Data-Juicer's own dj_to_llava on the
same input for comparison when it is installed.

    python bench/data_formats.py                       # sample at ../shared/data/seed_sample_1k
    python bench/data_formats.py --sample-dir DIR --workers 1 2 16 --runs 5

Each figure is the best of --runs timed runs after one untimed warm-up (images are then in the
page cache: this measures decoding, not the disk; the best run is the one least disturbed by other
work on a shared machine). Prints a table and the command that made it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import PIL

from bettersynth.data.dj_llava import DjToLlavaOptions, dj_to_llava
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))  # the reference tools' loader
from dj_reference import ReferenceUnavailable, load_tool  # noqa: E402
from bettersynth.data.sample_cap import sample_cap
from bettersynth.data.validate import ValidateOptions, validate

DEFAULT_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "seed_sample_1k"
DJ_IMAGE = "<__dj__image>"


def best_seconds(run: Callable[[], object], runs: int) -> float:
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def repeated_jsonl(source: Path, repeat: int, target: Path) -> int:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text("".join(lines * repeat), encoding="utf-8")
    return len(lines) * repeat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-dir", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--repeat", type=int, default=10, help="dj2llava input = the sample x REPEAT")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dj = args.sample_dir / "seed_sample_1k.jsonl"
    original = args.sample_dir / "stage_1_sample_1k.json"
    if not dj.is_file():
        print(f"real sample not found at {args.sample_dir}", file=sys.stderr)
        return 1
    num_lines = sum(1 for _ in dj.open(encoding="utf-8"))
    rows: list[tuple[str, int, float]] = []
    for workers in args.workers:
        options = ValidateOptions(image_root=args.sample_dir, original=original, workers=workers)
        report = validate(dj, options)
        if not report.ok:
            print(report.summary(), file=sys.stderr)
            return 1
        seconds = best_seconds(lambda: validate(dj, options), args.runs)
        rows.append((f"validate, full decode, {workers} worker(s)", num_lines, seconds))
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jsonl"
        count = repeated_jsonl(dj, args.repeat, big)
        kwargs = dict(image_special_token=DJ_IMAGE, restore_questions=True, original_llava_ds_path=original)
        out = Path(tmp) / "out.json"
        seconds = best_seconds(lambda: dj_to_llava(big, out, DjToLlavaOptions(**kwargs)), args.runs)
        rows.append(("dj2llava --restore_questions (bsynth)", count, seconds))
        try:
            tool = load_tool("dj_to_llava")
            reference = Path(tmp) / "reference.json"
            tool_kwargs = {**kwargs, "original_llava_ds_path": str(original)}
            seconds = best_seconds(lambda: tool.main(str(big), str(reference), **tool_kwargs), args.runs)
            rows.append(("dj2llava, Data-Juicer's dj_to_llava tool", count, seconds))
            same = "identical" if reference.read_bytes() == out.read_bytes() else "DIFFERENT"
        except ReferenceUnavailable as exc:
            same = f"not compared ({exc})"
        seconds = best_seconds(lambda: sample_cap(big, Path(tmp) / "capped.jsonl", count // 2), args.runs)
        rows.append((f"sample (cap {count // 2:,} of {count:,})", count, seconds))
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} CPU cores, Python {platform.python_version()}, Pillow {PIL.__version__}; "
          f"best of {args.runs} runs after a warm-up")
    print(f"{'what':<46} {'samples':>8} {'seconds':>8} {'samples/s':>10}")
    for what, n, seconds in rows:
        print(f"{what:<46} {n:>8,} {seconds:>8.3f} {n / seconds:>10,.0f}")
    print(f"dj2llava output vs the tool's: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
