"""Eval inference throughput: TextVQA-sized (5,000) + MMBench-sized (4,377) batched greedy answers
at real MGM-2B size with random weights, through the same engine the eval commands use
(bettersynth.eval.generate: JPEG/base64 decode + pad + CLIP preprocessing in data-loader workers,
sorted left-padded batches, the model's KV-cached greedy generate).

    PYTHONPATH=toolkit python bench/eval_throughput.py                      # full run on the GPU
    PYTHONPATH=toolkit python bench/eval_throughput.py --quick --batch-sizes 16,32,64
    PYTHONPATH=toolkit python bench/eval_throughput.py --quick --images-per-pass 32,8   # image path's memory
    PYTHONPATH=toolkit python bench/eval_throughput.py --tiny --quick        # CPU smoke test, tiny model

Prompts are synthetic token ids of TextVQA-like (question + OCR tokens + instruction, 35-90 text
tokens) and MMBench-like (hint + question + options, 40-250) lengths around one image placeholder
(576 image tokens at real size). Images are synthetic JPEGs of TextVQA-like sizes (files, decoded
on every read) and MMBench-like base64 JPEGs, shared between requests as in the real sets
(``workload``). Random weights never emit <eos>, so every answer runs
to its max_new_tokens: the defaults (8 for TextVQA, 4 for MMBench) are the lengths of typical real
answers followed by "<end_of_turn>", "\n", "<eos>" ("coca cola", "B"); real runs stop at <eos> per
row, so a long outlier answer keeps its batch busy longer than here. Prints answers/s per benchmark and the total
minutes against the 5-minute target, plus one JSON line for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, GemmaConfig

from bettersynth.constants import IMAGE_TOKEN_INDEX
from bettersynth.eval.generate import IMAGES_PER_PASS, AnswerEngine, GenerationSettings, ImageSource, default_workers
from bettersynth.model.assemble import assemble_mgm
from bettersynth.model.config import MGMOptions
from bettersynth.model.preprocess import ImagePreprocessor
from bettersynth.model.real_size import build_real_size_mgm

TEXTVQA_QUESTIONS, TEXTVQA_IMAGES, MMBENCH_ROWS = 5000, 3166, 4377
DISTINCT_IMAGES = 256
TARGET_MINUTES = 5.0
BOS, PAD, EOS = 2, 0, 1
TINY_AUX_SIZE = 64


def tiny_model(options: MGMOptions, device: str):
    """A few-layer MGM with the real structure (CLIP 56 px / patch 14, ConvNeXt-atto trunk)."""
    llm = GemmaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=1, head_dim=16, hidden_act="gelu",
                      pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS)
    clip = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            image_size=56, patch_size=14)
    aux = {"timm_model_name": "convnext_atto", "timm_model_pretrained": False, "timm_pool": "", "timm_proj": "mlp",
           "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": TINY_AUX_SIZE}
    return assemble_mgm(llm, clip, aux, options, device=device, dtype=torch.float32)


def synthetic_jpeg(rng: random.Random, width: int, height: int) -> bytes:
    """A photo-like JPEG: gradient background, a few shapes, a line of text."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.rectangle([x, y, x + rng.randint(20, width // 3), y + rng.randint(20, height // 3)],
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    draw.text((width // 10, height // 2), "SALE 50% OFF", fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def prompt(rng: random.Random, vocab: int, text_tokens: int) -> list[int]:
    """BOS, a few turn-opening ids, the image placeholder, then the question text ids."""
    body = [rng.randrange(3, vocab) for _ in range(text_tokens)]
    return [BOS, rng.randrange(3, vocab), rng.randrange(3, vocab), IMAGE_TOKEN_INDEX] + body


def workload(count_textvqa: int, count_mmbench: int, vocab: int, image_dir: Path, seed: int = 0):
    """TextVQA-like requests over as many image files as the real set has a question (3,166 for
    5,000; hard links to DISTINCT_IMAGES drawn JPEGs, to save drawing) and MMBench-like rows as the
    real TSV holds them: each question (its own drawn image) followed by its circular copies, one row
    per option order (2 to 4 options) with the question's prompt length and image, which the engine
    encodes once when the copies share a batch."""
    rng = random.Random(seed)
    drawn = []
    for number in range(DISTINCT_IMAGES):
        path = image_dir / f"drawn-{number:04d}.jpg"
        path.write_bytes(synthetic_jpeg(rng, rng.randint(600, 1024), rng.randint(400, 1024)))
        drawn.append(path)
    files = []
    for number in range(max(1, count_textvqa * TEXTVQA_IMAGES // TEXTVQA_QUESTIONS)):
        files.append(image_dir / f"{number:05d}.jpg")
        files[-1].hardlink_to(drawn[number % len(drawn)])
    textvqa = ([prompt(rng, vocab, rng.randint(35, 90)) for _ in range(count_textvqa)],
               [ImageSource(path=files[n * len(files) // count_textvqa]) for n in range(count_textvqa)])
    mmbench_prompts, mmbench_images = [], []
    while len(mmbench_prompts) < count_mmbench:
        question, copies = prompt(rng, vocab, rng.randint(40, 250)), rng.randint(2, 4)
        image = base64.b64encode(synthetic_jpeg(rng, rng.randint(300, 700), rng.randint(250, 600))).decode()
        for _ in range(min(copies, count_mmbench - len(mmbench_prompts))):
            mmbench_prompts.append(question)
            mmbench_images.append(ImageSource(base64_data=image, label=f"row {len(mmbench_images)}"))
    return textvqa, (mmbench_prompts, mmbench_images)


def timed(engine: AnswerEngine, prompts, images, settings: GenerationSettings) -> tuple[float, float, int]:
    """(seconds, mean answer length in tokens, images encoded). A row that happens to emit <eos>
    stops early; its batch still runs until its longest row is done, so the timing stays comparable."""
    encoded_before = engine.images_encoded
    if engine.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    answers = engine.generate_ids(prompts, images, settings)
    if engine.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if len(answers) != len(prompts):
        raise RuntimeError(f"{len(answers)} answers for {len(prompts)} prompts")
    return seconds, sum(len(a) for a in answers) / len(answers), engine.images_encoded - encoded_before


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent)
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10%% of the prompts (500 + 438)")
    parser.add_argument("--tiny", action="store_true", help="tiny model, for a CPU smoke test")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", default="32", help="comma-separated; each is timed in turn")
    parser.add_argument("--images-per-pass", default=str(IMAGES_PER_PASS),
                        help="comma-separated images the image path encodes at a time; each is timed in turn "
                             "(a value >= the batch size encodes a batch's images at once)")
    parser.add_argument("--workers", type=int, default=None, help="image workers (default up to 8 on GPU, 0 on CPU)")
    parser.add_argument("--textvqa-answer-tokens", type=int, default=8)
    parser.add_argument("--mmbench-answer-tokens", type=int, default=4)
    args = parser.parse_args(argv)

    fraction = 0.1 if args.quick else 1.0
    counts = (round(TEXTVQA_QUESTIONS * fraction), round(MMBENCH_ROWS * fraction))
    if args.tiny:
        options = MGMOptions(image_size_aux=TINY_AUX_SIZE, model_max_length=512)
        model, dtype, vocab = tiny_model(options, args.device), torch.float32, 512
    else:
        dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
        options = MGMOptions()
        model, vocab = build_real_size_mgm(options, device=args.device, dtype=dtype), 256000
    size = options.image_size_aux
    preprocessor = ImagePreprocessor(CLIPImageProcessorPil(size={"shortest_edge": size},
                                                           crop_size={"height": size, "width": size}))
    engine = AnswerEngine(model, preprocessor, args.device, dtype, pad_token_id=PAD, eos_token_id=EOS)
    workers = default_workers(args.device) if args.workers is None else args.workers
    card = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device {card}, torch {torch.__version__}, model {'tiny' if args.tiny else 'MGM-2B real size'} "
          f"({sum(p.numel() for p in model.parameters()) / 1e9:.2f} B params, {dtype}), workers {workers}, "
          f"prompts {counts[0]} + {counts[1]}", flush=True)

    with tempfile.TemporaryDirectory(prefix="eval-bench-") as folder:
        (textvqa_prompts, textvqa_images), (mmbench_prompts, mmbench_images) = workload(*counts, vocab, Path(folder))
        for batch, per_pass in [(int(b), int(p)) for b in args.batch_sizes.split(",")
                                for p in args.images_per_pass.split(",")]:
            text_settings = GenerationSettings(batch, args.textvqa_answer_tokens, workers, "textvqa", per_pass)
            bench_settings = GenerationSettings(batch, args.mmbench_answer_tokens, workers, "mmbench", per_pass)
            timed(engine, textvqa_prompts[:2 * batch], textvqa_images[:2 * batch], text_settings)  # warm-up
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            text_seconds, text_tokens, text_encoded = timed(engine, textvqa_prompts, textvqa_images, text_settings)
            bench_seconds, bench_tokens, bench_encoded = timed(engine, mmbench_prompts, mmbench_images, bench_settings)
            total = text_seconds + bench_seconds
            full_minutes = (text_seconds * TEXTVQA_QUESTIONS / counts[0]
                            + bench_seconds * MMBENCH_ROWS / counts[1]) / 60
            on_gpu = args.device.startswith("cuda")
            peak = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else 0.0
            reserved = torch.cuda.max_memory_reserved() / 2**30 if on_gpu else 0.0
            print(f"batch {batch}, {per_pass} images a pass: TextVQA {counts[0]} in {text_seconds:.1f} s "
                  f"({counts[0] / text_seconds:.1f} answers/s), "
                  f"MMBench {counts[1]} in {bench_seconds:.1f} s ({counts[1] / bench_seconds:.1f} answers/s); "
                  f"total {total / 60:.2f} min; full-size estimate {full_minutes:.2f} min "
                  f"({'meets' if full_minutes <= TARGET_MINUTES else 'misses'} the {TARGET_MINUTES:.0f}-min target); "
                  f"peak GPU memory {peak:.1f} GiB allocated, {reserved:.1f} GiB reserved; "
                  f"mean answer tokens {text_tokens:.1f} / {bench_tokens:.1f}; "
                  f"images encoded {text_encoded} / {bench_encoded}",
                  flush=True)
            print(json.dumps({"bench": "eval_throughput", "card": card, "commit": commit(), "tiny": args.tiny,
                              "batch_size": batch, "images_per_pass": per_pass, "workers": workers,
                              "textvqa": counts[0], "mmbench": counts[1],
                              "textvqa_seconds": round(text_seconds, 2), "mmbench_seconds": round(bench_seconds, 2),
                              "full_size_minutes": round(full_minutes, 2), "peak_gib": round(peak, 1),
                              "peak_reserved_gib": round(reserved, 1),
                              "answer_tokens": [args.textvqa_answer_tokens, args.mmbench_answer_tokens],
                              "images_encoded": [text_encoded, bench_encoded]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
