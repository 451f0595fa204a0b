"""Data-Juicer model-operator throughput: our batched CLIP filter and BLIP-2 captioner against the built-ins.

Builds CLIP ViT-L/14-336 (openai/clip-vit-large-patch14-336 sizes) and BLIP-2 OPT-2.7B
(Salesforce/blip2-opt-2.7b sizes: ViT-g 39 layers, 32 queries, OPT 32 x 2560) with random weights
as Hugging Face folders (offline tokenizers from bettersynth.demo.tokenizer), then runs through
real Data-Juicer (``load_ops`` + ``NestedDataset.process``, as a recipe does), JPEG decoding
included, in one run:
  - ``fast_image_text_similarity_filter`` vs the built-in ``image_text_similarity_filter``, pairs/s;
  - ``fast_image_captioning_mapper`` (greedy, --max-new-tokens) vs the built-in
    ``image_captioning_mapper`` (hard-coded: sampled, 128 new tokens), captions/s and new tokens/s;
the built-ins at each --builtin-np, and prints the ratios against their best np; and, with
``--only itm grounding aesthetics watermark regeneration``, the recipe palette's operators against
their built-ins (``fast_image_text_matching_filter`` / ``image_text_matching_filter``,
``fast_phrase_grounding_recall_filter`` / ``phrase_grounding_recall_filter``,
``fast_image_aesthetics_filter`` / ``image_aesthetics_filter``, ``fast_image_watermark_filter`` /
``image_watermark_filter``, ``fast_image_regeneration_mapper`` at 512 px and --regen-steps /
``image_diffusion_mapper``), real-size models of bench/recipe_op_models.py, measured as
bench/recipe_op_timing.py says: each operator's batched method in this process (steady rate),
decoding and forward alone, and ours once through Data-Juicer at a large size (whole-run rate and
Data-Juicer's fixed cost per run).

    python bench/data_throughput.py --work /tmp/data-bench --out data_throughput.json   # one GPU
    python bench/data_throughput.py --quick --work /tmp/data-quick --out quick.json     # CPU smoke, tiny models
    python bench/data_throughput.py --setup-only --work /tmp/data-bench   # models and images only (no Data-Juicer)
    python bench/data_throughput.py --only itm grounding aesthetics watermark regeneration --out palette.json

Images: the shared 1k seed sample with its captions when --sample-dir exists, else JPEGs drawn at
web sizes (500-1024 px, bench/real_size_assets.write_images). Each pair gets its own symlinked
path, so no operator can reuse a decoded image.

Rates are steady-state: one operator instance per setting processes a small and a large dataset,
rate = (large - small) / (time large - time small). That removes model loading and worker start-up,
paid once per pool run rather than per sample: on a GPU, Data-Juicer runs every map pass of a GPU
operator (its stats pass and its filter pass) in a fresh worker process that loads the model, np = 1
included, 15-20 s each and varying by seconds, hence large sizes of a minute of work or more (at
np = 1 an untimed run of the small size comes first).
The OPT has no end-of-sequence id, so every caption runs to its maximum length (random weights would
rarely stop anyway): ours generate exactly --max-new-tokens tokens, the built-in 128. Weights are
stored in float32 like the real checkpoints (the built-ins load them as stored; ours cast to
bfloat16 on the GPU).

Where Data-Juicer is not installed (the GPU machine), its wheels travel with the call (see
bench/RESULTS.md with the command that ran it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_size_assets import write_images  # noqa: E402
from recipe_op_models import write_recipe_models  # noqa: E402
from recipe_op_timing import OPS, UNITS, core_rate, core_rate_or_error, op_configs, parts  # noqa: E402

from bettersynth.constants import CLIP_MEAN, CLIP_STD, DJ_EOC_TOKEN, DJ_IMAGE_TOKEN  # noqa: E402
from bettersynth.demo import tokenizer as tok  # noqa: E402
from bettersynth.demo.scenes import caption, corpus, random_scene  # noqa: E402
from bettersynth.model.real_size import clip_vit_l14_336_vision_config  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "seed_sample_1k"
BUILTIN_NEW_TOKENS = 128  # image_captioning_mapper's generate(max_new_tokens=128, do_sample=True)
BLIP2_IMAGE_TOKEN_ID = 50265
OURS_CLIP, BUILTIN_CLIP = "ours: fast_image_text_similarity", "built-in: image_text_similarity"
OURS_BLIP2, BUILTIN_BLIP2 = "ours: fast_image_captioning", "built-in: image_captioning"
PARTS_IMAGES = 16384  # images decoded and encoded by the parts of our CLIP filter alone
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
FAMILIES = list(OPS)  # the recipe palette's operators (recipe_op_timing.OPS)
# per family: ours (warm-up, timed) in this process, the built-in's (warm-up, timed; None: not run),
# ours through Data-Juicer (one run), GPU batch. Each timed size is 5-30 s of work at the expected
# rate (the model is loaded in the warm-up). The grounding built-in is not run on the GPU machine:
# Data-Juicer 1.6.1's phrase_grounding_recall_filter fetches NLTK's pickled tagger from the network
# at run time (nothing can be reached there; here it stops with LookupError, as the --quick run shows)
# and does not run on transformers 5 (tests/recipes/test_fast_ops_grounding_regen.py compares ours with
# its steps done one by one instead).
PALETTE_SIZES = dict(itm=((1024, 16384), (16, 256), 65536, 256), grounding=((256, 4096), None, 8192, 128),
                     aesthetics=((1024, 16384), (16, 256), 65536, 256),
                     watermark=((1024, 16384), (16, 256), 65536, 256), regeneration=((16, 96), (1, 6), 64, 16))
QUICK_PALETTE_SIZES = dict(itm=((4, 48), (2, 12), 48, 8), grounding=((4, 24), (2, 8), 24, 8),
                           aesthetics=((4, 48), (2, 12), 48, 8), watermark=((4, 48), (2, 12), 48, 8),
                           regeneration=((2, 4), None, 4, 2))  # the built-in's fixed 512 px: minutes on a CPU


def clip_config(tokenizer, tiny: bool):
    from transformers import CLIPConfig

    vision = clip_vit_l14_336_vision_config().to_dict()
    text = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)
    if tiny:
        vision.update(TINY)
        text.update(TINY)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=64 if tiny else 768)


def blip2_config(tiny: bool):
    from transformers import Blip2Config

    vision = dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
                  image_size=224, patch_size=14, qkv_bias=True)
    qformer = dict(vocab_size=30522, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, encoder_hidden_size=1408, cross_attention_frequency=2)
    # eos_token_id None: generation never stops early, every caption has max_new_tokens tokens
    text = dict(model_type="opt", vocab_size=50272, hidden_size=2560, ffn_dim=10240, num_hidden_layers=32,
                num_attention_heads=32, word_embed_proj_dim=2560, max_position_embeddings=2048,
                bos_token_id=2, eos_token_id=None, pad_token_id=1)
    if tiny:
        vision.update(TINY)
        qformer.update(TINY, encoder_hidden_size=TINY["hidden_size"])
        text.update(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=2, word_embed_proj_dim=64)
    return Blip2Config(vision_config=vision, qformer_config=qformer, text_config=text, num_query_tokens=32,
                       image_token_index=BLIP2_IMAGE_TOKEN_ID)


def write_models(root: Path, texts: list[str], tiny: bool, only: list[str], seed: int = 0) -> dict[str, Path]:
    """CLIP and BLIP-2 folders, those in ``only`` (float32 random weights, processors, tokenizers); built on
    the GPU if any."""
    from transformers import (BlipImageProcessor, Blip2ForConditionalGeneration, Blip2Processor,
                              CLIPImageProcessor, CLIPModel, CLIPProcessor)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    folders = {"clip": root / "clip-vit-large-patch14-336", "blip2": root / "blip2-opt-2.7b"}
    torch.manual_seed(seed)
    if "clip" in only and not (folders["clip"] / "config.json").exists():
        tokenizer = tok.clip_tokenizer(texts)
        with torch.device(device):
            model = CLIPModel(clip_config(tokenizer, tiny))
        model.save_pretrained(folders["clip"])
        image_processor = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                             image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
        CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folders["clip"])
        del model
    if "blip2" in only and not (folders["blip2"] / "config.json").exists():
        image_processor = BlipImageProcessor(size={"height": 224, "width": 224},
                                             image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
        processor = Blip2Processor(image_processor=image_processor, tokenizer=tok.opt_tokenizer(texts),
                                   num_query_tokens=32)
        image_token = processor.tokenizer.convert_tokens_to_ids(processor.image_token.content)
        if image_token != BLIP2_IMAGE_TOKEN_ID:
            raise RuntimeError(f"BLIP-2 <image> got id {image_token}, expected {BLIP2_IMAGE_TOKEN_ID}")
        with torch.device(device):
            model = Blip2ForConditionalGeneration(blip2_config(tiny))
        model.save_pretrained(folders["blip2"])
        processor.save_pretrained(folders["blip2"])
        del model
    torch.cuda.empty_cache()
    return folders


def image_pool(sample_dir: Path, work: Path, count: int, workers: int) -> list[tuple[str, str]]:
    """(JPEG path, caption) pairs: the seed sample's, or ``count`` drawn images with scene captions."""
    lines = (sample_dir / "seed_sample_1k.jsonl")
    if lines.exists():
        rows = [json.loads(line) for line in lines.read_text().splitlines()]
        return [(str(sample_dir / row["images"][0]), row["text"]) for row in rows if row.get("images")]
    names = write_images(work / "drawn", count, workers)
    rng = random.Random(0)
    return [(str(work / "drawn" / name), f"{DJ_IMAGE_TOKEN}\n{caption(random_scene(rng, 64, 64, False), rng)} "
             f"{DJ_EOC_TOKEN}") for name in names]


def plain_caption(text: str) -> str:
    """A Data-Juicer text without its image and end-of-chunk tokens."""
    return " ".join(text.replace(DJ_IMAGE_TOKEN, " ").replace(DJ_EOC_TOKEN, " ").split())


def make_rows(pool: list[tuple[str, str]], links: Path, start: int, count: int) -> list[dict]:
    """``count`` Data-Juicer samples cycling through ``pool``, each image under its own symlink."""
    links.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(start, start + count):
        image, text = pool[i % len(pool)]
        link = links / f"{i:07d}.jpg"
        if not link.exists():
            link.symlink_to(image)
        rows.append({"id": f"{i:07d}", "text": text, "images": [str(link)]})
    return rows


def timed_process(op, rows: list[dict]) -> tuple[float, int]:
    from data_juicer.core.data import NestedDataset

    dataset = NestedDataset.from_list(rows)
    start = time.perf_counter()
    result = dataset.process([op], open_monitor=False)
    return time.perf_counter() - start, len(result)


def measure(name: str, op_cfg: dict, np_: int, sizes: tuple[int, int], new_rows, unit_tokens: int = 0) -> dict:
    """Steady rate of one operator setting: (large - small) / (t_large - t_small); warmed up first at np 1."""
    from data_juicer.ops import load_ops
    from data_juicer.utils.model_utils import free_models

    op_name, args = next(iter(op_cfg.items()))
    op = load_ops([{op_name: dict(args, num_proc=np_)}])[0]
    if np_ == 1:
        timed_process(op, new_rows(sizes[0]))
    (t_small, _), (t_large, out_large) = (timed_process(op, new_rows(n)) for n in sizes)
    free_models()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    # None when start-up noise swamps the difference (then raise the large size)
    rate = (sizes[1] - sizes[0]) / (t_large - t_small) if t_large > t_small else None
    result = dict(name=name, op=op_name, np=np_, small=sizes[0], large=sizes[1], seconds_small=round(t_small, 3),
                  seconds_large=round(t_large, 3), rows_out_large=out_large,
                  steady_per_s=None if rate is None else round(rate, 2), whole_per_s=round(sizes[1] / t_large, 2))
    if unit_tokens and rate is not None:
        result["new_tokens_per_s"] = round(rate * unit_tokens, 1)
    print(f"  {name:<34} np={np_}  {rate or float('nan'):>9.2f}/s steady  "
          f"({sizes[1]} in {t_large:.1f}s, {sizes[0]} in {t_small:.1f}s)", flush=True)
    return result


def measure_whole(name: str, op_cfg: dict, count: int, new_rows, unit: str, core: dict | None) -> dict:
    """One run through Data-Juicer (``NestedDataset.process``: a worker per map pass): the whole-run rate,
    and Data-Juicer's fixed cost, the run's time less ``count`` at the operator's in-process rate."""
    from data_juicer.ops import load_ops
    from data_juicer.utils.model_utils import free_models

    op = load_ops([op_cfg])[0]
    seconds, out = timed_process(op, new_rows(count))
    free_models()
    gc.collect()
    fixed = seconds - count / core["per_s"] if core and core.get("per_s") else None
    print(f"  {name + ' (through Data-Juicer)':<44} {count / seconds:>9.2f} {unit}/s whole run  ({count} in "
          f"{seconds:.1f}s; fixed cost {fixed if fixed is None else round(fixed, 1)}s)", flush=True)
    return dict(name=name, op=next(iter(op_cfg)), measure="data-juicer", count=count, seconds=round(seconds, 3),
                per_s=round(count / seconds, 2), unit=unit, rows_out=out,
                fixed_seconds=None if fixed is None else round(fixed, 1))


def palette(args, report: dict, pool: list[tuple[str, str]], new_rows, save) -> None:
    """The recipe palette's operators against their built-ins (recipe_op_timing), into ``report``."""
    families = [family for family in args.only if family in FAMILIES]
    texts = corpus(0) + [text for _, text in pool]
    folders = write_recipe_models(args.work / ("palette-tiny" if args.quick else "palette"), texts, families,
                                  tiny=args.quick)
    sizes = QUICK_PALETTE_SIZES if args.quick else PALETTE_SIZES
    args.op_gpu_batch = {family: sizes[family][3] for family in FAMILIES}
    paths = [pool[i % len(pool)][0] for i in range(PARTS_IMAGES // (64 if args.quick else 2))]
    prompts = [plain_caption(text) for _, text in pool]
    rows = report.setdefault("palette", [])
    ratios = report.setdefault("palette_ratios_ours_over_builtin", {})
    for family in families:
        if family == "regeneration":  # drawings of an earlier run (same links, same prompts) would be reused
            for folder in ("regenerated-ours", "regenerated-builtin"):
                shutil.rmtree(args.work / folder, ignore_errors=True)
        (core_sizes, builtin_sizes, whole, _), unit = sizes[family], UNITS[family]
        ours_cfg, builtin_cfg = op_configs(family, folders, args.work, args)
        report.setdefault("palette_parts", {})[family] = parts(family, ours_cfg, paths, prompts)
        ours = core_rate(f"ours: {OPS[family][0]}", ours_cfg, core_sizes, new_rows, unit)
        rows.append(dict(ours, family=family))
        save()
        if not args.skip_builtin and builtin_sizes:
            builtin = core_rate_or_error(f"built-in: {OPS[family][1]}", builtin_cfg, builtin_sizes, new_rows, unit)
            rows.append(dict(builtin, family=family))
            if builtin["per_s"]:
                ratios[family] = round(ours["per_s"] / builtin["per_s"], 2)
            save()
        if family in args.whole:
            rows.append(dict(measure_whole(f"ours: {OPS[family][0]}", ours_cfg, whole, new_rows, unit, ours),
                             family=family))
            save()


def clip_parts(clip_dir: Path, paths: list[str], workers: int, batch: int) -> dict:
    """The two halves of our CLIP filter alone, images/s: decoding (its DataLoader workers, uint8
    resize and crop, batches assembled on the device) and the bf16 image forward at ``batch``."""
    from ops.batching import PixelScaling, pixel_batches
    from transformers import CLIPModel, CLIPProcessor

    device = "cuda" if torch.cuda.is_available() else "cpu"
    image_processor = CLIPProcessor.from_pretrained(clip_dir).image_processor
    start, decoded = time.perf_counter(), 0
    for pixels in pixel_batches(paths, PixelScaling(image_processor).prepare, batch, workers, device):
        decoded += len(pixels)
    if device == "cuda":
        torch.cuda.synchronize()
    decode_rate = decoded / (time.perf_counter() - start)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = CLIPModel.from_pretrained(clip_dir, dtype=dtype).to(device).eval()
    side = image_processor.crop_size["height"]
    pixels = torch.randn(batch, 3, side, side, device=device, dtype=dtype)
    with torch.no_grad():
        for _ in range(2):
            model.get_image_features(pixel_values=pixels)
        if device == "cuda":
            torch.cuda.synchronize()
        start, repeats = time.perf_counter(), 5
        for _ in range(repeats):
            model.get_image_features(pixel_values=pixels)
        if device == "cuda":
            torch.cuda.synchronize()
    forward_rate = batch * repeats / (time.perf_counter() - start)
    del model
    print(f"  parts of ours: decoding {decode_rate:.0f} images/s ({workers} workers), "
          f"CLIP image forward {forward_rate:.0f} images/s (batch {batch})", flush=True)
    return dict(decode_images_per_s=round(decode_rate, 1), forward_images_per_s=round(forward_rate, 1),
                workers=workers, batch=batch)


def best(results: list[dict], name: str) -> dict | None:
    found = [r for r in results if r["name"] == name and r["steady_per_s"] is not None]
    return max(found, key=lambda r: r["steady_per_s"]) if found else None


def ratios(results: list[dict]) -> dict[str, float]:
    """Ours over the best built-in setting, per measure."""
    out = {}
    for key, ours, builtin in (("clip_pairs_per_s", OURS_CLIP, BUILTIN_CLIP),
                               ("captions_per_s", OURS_BLIP2, BUILTIN_BLIP2)):
        a, b = best(results, ours), best(results, builtin)
        if a and b:
            out[key] = round(a["steady_per_s"] / b["steady_per_s"], 2)
            if "new_tokens_per_s" in a:
                out["new_tokens_per_s"] = round(a["new_tokens_per_s"] / b["new_tokens_per_s"], 2)
    return out


def settings(args, folders: dict[str, Path]) -> list[tuple]:
    """(name, recipe op config, np, (small, large), new tokens per output) for every measurement asked
    for; ours first, so a run cut short still has them."""
    clip, blip2 = str(folders["clip"]), str(folders["blip2"])
    ours, builtins = [], []
    if "clip" in args.only:
        ours.append((OURS_CLIP, {"fast_image_text_similarity_filter": dict(
            hf_clip=clip, min_score=-1.0, max_score=1.0, gpu_batch_size=args.clip_gpu_batch,
            num_workers=args.workers)}, 1, args.clip_pairs, 0))
        builtins += [(BUILTIN_CLIP, {"image_text_similarity_filter": dict(hf_clip=clip, min_score=-1.0, max_score=1.0)},
                      np_, args.builtin_clip_pairs, 0) for np_ in args.builtin_np_clip if not args.skip_builtin]
    if "blip2" in args.only:
        ours.append((OURS_BLIP2, {"fast_image_captioning_mapper": dict(
            hf_blip2=blip2, max_new_tokens=args.max_new_tokens, gpu_batch_size=args.blip2_gpu_batch,
            num_workers=args.workers, batch_size=4096)}, 1, args.captions, args.max_new_tokens))
        builtins += [(BUILTIN_BLIP2, {"image_captioning_mapper": dict(hf_img2seq=blip2)}, np_, args.builtin_captions,
                      BUILTIN_NEW_TOKENS) for np_ in args.builtin_np_blip2 if not args.skip_builtin]
    return ours + builtins


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/data-bench"))
    parser.add_argument("--out", type=Path, default=None, help="JSON results file (rewritten after each setting)")
    parser.add_argument("--sample-dir", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--quick", action="store_true", help="tiny models and counts: a CPU smoke run")
    parser.add_argument("--only", nargs="+", choices=["clip", "blip2", *FAMILIES], default=["clip", "blip2"])
    parser.add_argument("--whole", nargs="*", choices=FAMILIES, default=FAMILIES,
                        help="palette operators also run once through Data-Juicer (default: all asked for)")
    parser.add_argument("--regen-steps", type=int, default=25, help="fast_image_regeneration_mapper's steps")
    parser.add_argument("--regen-size", type=int, default=512, help="its image side (the built-in's is fixed: 512)")
    parser.add_argument("--skip-builtin", action="store_true")
    parser.add_argument("--setup-only", action="store_true", help="write images and models, then stop")
    parser.add_argument("--images", type=int, default=1024, help="JPEGs to draw when the sample is absent")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding processes of our ops")
    # Every Data-Juicer pass of a GPU operator starts a worker process (~15-20 s, varying by seconds):
    # the large sizes keep the difference to the small ones a minute of work or more. The large CLIP
    # size spans two of our filter's Data-Juicer batches (65,536 samples), so the rate counts what
    # each batch starts (the decoding workers) as a whole-pool run does.
    parser.add_argument("--clip-pairs", type=int, nargs=2, default=[1024, 131072], metavar=("SMALL", "LARGE"))
    parser.add_argument("--captions", type=int, nargs=2, default=[512, 16384], metavar=("SMALL", "LARGE"))
    parser.add_argument("--builtin-clip-pairs", type=int, nargs=2, default=[64, 1024], metavar=("SMALL", "LARGE"))
    parser.add_argument("--builtin-captions", type=int, nargs=2, default=[16, 96], metavar=("SMALL", "LARGE"))
    parser.add_argument("--builtin-np-clip", type=int, nargs="*", default=[1, 2, 4], help="none: skip the built-in")
    parser.add_argument("--builtin-np-blip2", type=int, nargs="*", default=[1, 2], help="none: skip the built-in")
    parser.add_argument("--clip-gpu-batch", type=int, default=256)
    parser.add_argument("--blip2-gpu-batch", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=30)
    args = parser.parse_args()
    if args.quick:
        # large sizes a second or more above the small ones, so start-up noise cannot swamp the difference
        args.images, args.clip_pairs, args.captions = 24, [8, 200], [4, 40]
        args.builtin_clip_pairs, args.builtin_captions = [4, 80], [2, 6]
        args.builtin_np_clip, args.builtin_np_blip2 = [1, 2], [1]
        args.clip_gpu_batch, args.blip2_gpu_batch, args.workers = 16, 4, 2
        args.regen_steps, args.regen_size = 2, 64
    return args


def main() -> None:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pool = image_pool(args.sample_dir, args.work, args.images, args.workers)
    folders = write_models(args.work / ("models-tiny" if args.quick else "models"),
                           corpus(0) + [text for _, text in pool], tiny=args.quick, only=args.only)
    print(f"setup (images, models): {time.perf_counter() - start:.0f}s, {len(pool)} distinct JPEGs", flush=True)
    if args.setup_only:
        return
    # Data-Juicer's GPU workers come from a forkserver and import the custom ``ops`` package afresh
    # (`bsynth recipe run` runs Data-Juicer in a child process with solution/ on PYTHONPATH). Here
    # Data-Juicer runs in this process, so solution/ goes both on this process's sys.path and on
    # PYTHONPATH: with PYTHONPATH alone, set at run time, the workers of a GPU run (Python 3.12)
    # could not import ``ops``.
    sys.path.insert(0, str(REPO_ROOT / "solution"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT / "solution"),
                                                             os.environ.get("PYTHONPATH")]))
    from data_juicer.config.config import load_custom_operators

    load_custom_operators([str(REPO_ROOT / "solution" / "ops")])
    counter = iter(range(0, 10**9, 10**6))  # each dataset gets fresh sample ids and image paths

    def new_rows(count: int) -> list[dict]:
        rows = make_rows(pool, args.work / "links", next(counter), count)
        for row in rows:  # the built-in image_diffusion_mapper's caption_key (else it recaptions with BLIP-2)
            row["caption"] = plain_caption(row["text"])
        return rows

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.strip()
    # A copied tree may carry an older .git than its files: say so rather than name the wrong commit.
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                             capture_output=True, text=True).stdout.strip()
    if commit and changed:
        commit += " (tree differs from it)"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    images = "seed sample" if (args.sample_dir / "seed_sample_1k.jsonl").exists() else f"{len(pool)} drawn JPEGs"
    report = dict(device=device, cpus=os.cpu_count(), commit=commit, command=" ".join(sys.argv),
                  torch=torch.__version__, images=images, max_new_tokens=args.max_new_tokens,
                  builtin_new_tokens=BUILTIN_NEW_TOKENS, tiny=args.quick, results=[])

    def save() -> None:
        report["total_seconds"] = round(time.perf_counter() - start, 1)
        if args.out:  # after every setting, so a run cut short still leaves its figures
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))

    if any(family in args.only for family in FAMILIES):
        palette(args, report, pool, new_rows, save)
    if "clip" in args.only:
        paths = [pool[i % len(pool)][0] for i in range(min(args.clip_pairs[1], PARTS_IMAGES))]
        report["clip_parts"] = clip_parts(folders["clip"], paths, args.workers, args.clip_gpu_batch)
    for name, op_cfg, np_, sizes, tokens in settings(args, folders):
        report["results"].append(measure(name, op_cfg, np_, tuple(sizes), new_rows, tokens))
        report.update(ratios_ours_over_best_builtin=ratios(report["results"]))
        save()
    print(f"\n{'operator':<34} {'np':>3} {'steady/s':>10} {'whole/s':>9} {'tokens/s':>9}")
    for r in report["results"]:
        print(f"{r['name']:<34} {r['np']:>3} {r['steady_per_s'] or float('nan'):>10.2f} {r['whole_per_s']:>9.2f} "
              f"{r.get('new_tokens_per_s', ''):>9}")
    for r in report.get("palette", []):
        rate = "BROKEN" if r["per_s"] is None else f"{r['per_s']:.2f} {r['unit']}/s"
        print(f"{r['name']:<44} {r['measure']:<12} {rate}")
    if report.get("palette"):
        print(f"palette, ours / built-in (in-process rates): {report['palette_ratios_ours_over_builtin']}")
    print(f"ours / best built-in: {report.get('ratios_ours_over_best_builtin')}   "
          f"({device}, commit {commit}, {report['total_seconds']}s)")


if __name__ == "__main__":
    main()
