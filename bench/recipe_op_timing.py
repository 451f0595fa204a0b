"""Timing of the recipe palette's operators for bench/data_throughput.py: BLIP ITM, OWL-ViT phrase
grounding, aesthetics, watermark and Stable Diffusion regeneration, ours against Data-Juicer's built-ins.

Three measures per operator, all with JPEG decoding included where the operator decodes:
  - ``core_rate``: the operator's own batched method (``compute_stats_batched`` of a filter,
    ``process_batched`` of a mapper) called in this process on a warm-up batch, then timed on a
    larger one: the steady rate of the operator's code, model loaded once. Data-Juicer's own
    worker runs exactly this method on each batch; what it adds per map pass (a fresh worker
    process that loads the model, 15-20 s) is measured apart by ``data_throughput.measure_whole``;
  - ``parts``: decoding alone (the operator's own preprocessing, in its DataLoader workers) and the
    model's image-side forward alone on random pixels at the operator's GPU batch, images/s, to say
    which of the two limits the operator (regeneration: the pipeline call alone, images/s).
Not run on its own: ``data_throughput.py --only itm grounding aesthetics watermark regeneration`` runs it.
"""

from __future__ import annotations

import functools
import gc
import time
from pathlib import Path

import torch

# family -> (ours, built-in, stats key or None for the mapper)
OPS = dict(itm=("fast_image_text_matching_filter", "image_text_matching_filter"),
           grounding=("fast_phrase_grounding_recall_filter", "phrase_grounding_recall_filter"),
           aesthetics=("fast_image_aesthetics_filter", "image_aesthetics_filter"),
           watermark=("fast_image_watermark_filter", "image_watermark_filter"),
           regeneration=("fast_image_regeneration_mapper", "image_diffusion_mapper"))
UNITS = dict(itm="pairs", grounding="pairs", aesthetics="images", watermark="images", regeneration="images")


def op_configs(family: str, folders: dict[str, Path], work: Path, args) -> tuple[dict, dict]:
    """(ours, built-in) Data-Juicer op configs of a family, as a recipe writes them."""
    model = str(folders[family])
    ours_name, builtin_name = OPS[family]
    common = dict(gpu_batch_size=args.op_gpu_batch[family], num_workers=args.workers)
    if family == "itm":
        ours, builtin = dict(hf_blip=model, min_score=0.0, **common), dict(hf_blip=model, min_score=0.0)
    elif family == "grounding":
        ours = dict(hf_owlvit=model, nltk_data=str(folders["nltk"]), min_recall=0.0, **common)
        builtin = dict(hf_owlvit=model, min_recall=0.0)
    elif family == "aesthetics":
        ours, builtin = dict(hf_scorer_model=model, min_score=0.0, **common), dict(hf_scorer_model=model, min_score=0.0)
    elif family == "watermark":
        ours = dict(hf_watermark_model=model, prob_threshold=1.0, **common)
        builtin = dict(hf_watermark_model=model, prob_threshold=1.0)
    else:
        ours = dict(hf_diffusion=model, save_dir=str(work / "regenerated-ours"), num_inference_steps=args.regen_steps,
                    height=args.regen_size, width=args.regen_size, keep_original_sample=False,
                    gpu_batch_size=args.op_gpu_batch[family])
        builtin = dict(hf_diffusion=model, save_dir=str(work / "regenerated-builtin"), caption_key="caption",
                       keep_original_sample=False)
    return {ours_name: ours}, {builtin_name: builtin}


def _columns(rows: list[dict], mapper: bool) -> dict:
    from data_juicer.utils.constant import Fields

    samples = {key: [row[key] for row in rows] for key in rows[0]}
    if not mapper:
        samples[Fields.stats] = [{} for _ in rows]
    return samples


def _run_batch(op, rows: list[dict], mapper: bool, device_rank) -> int:
    samples = _columns(rows, mapper)
    if mapper:
        return len(op.process_batched(samples, rank=device_rank)["images"])
    return len(op.compute_stats_batched(samples, rank=device_rank)["images"])


def _free() -> None:
    from data_juicer.utils.model_utils import free_models

    free_models()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def core_rate(name: str, op_cfg: dict, sizes: tuple[int, int], new_rows, unit: str) -> dict:
    """The operator's batched method in this process: a warm-up batch of sizes[0], then sizes[1] timed."""
    from data_juicer.ops import load_ops

    op_name = next(iter(op_cfg))
    op = load_ops([op_cfg])[0]
    mapper = op_name.endswith("_mapper")
    rank = 0 if torch.cuda.is_available() else None
    start = time.perf_counter()
    _run_batch(op, new_rows(sizes[0]), mapper, rank)
    warm = time.perf_counter() - start
    rows = new_rows(sizes[1])
    start = time.perf_counter()
    out = _run_batch(op, rows, mapper, rank)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    _free()
    rate = sizes[1] / seconds
    print(f"  {name:<44} {rate:>9.2f} {unit}/s  ({sizes[1]} in {seconds:.1f}s; warm-up {sizes[0]} "
          f"in {warm:.1f}s)", flush=True)
    return dict(name=name, op=op_name, measure="core", warmup=sizes[0], count=sizes[1], seconds=round(seconds, 3),
                warmup_seconds=round(warm, 3), per_s=round(rate, 2), unit=unit, rows_out=out,
                peak_gib=round(peak, 2))


def core_rate_or_error(name: str, op_cfg: dict, sizes: tuple[int, int], new_rows, unit: str) -> dict:
    """``core_rate`` of a built-in; a built-in that raises is reported as broken, with its error, and the
    bench goes on (Data-Juicer 1.6.1's grounding filter fails on transformers 5)."""
    try:
        return core_rate(name, op_cfg, sizes, new_rows, unit)
    except Exception as error:  # noqa: BLE001 - reported in the table and the JSON, not hidden
        _free()
        message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        print(f"  {name:<44} BROKEN: {message}", flush=True)
        return dict(name=name, op=next(iter(op_cfg)), measure="core", per_s=None, unit=unit, error=message)


def _timed(fn, repeats: int) -> float:
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


@torch.no_grad()
def parts(family: str, op_cfg: dict, paths: list[str], prompts: list[str]) -> dict:
    """Decoding alone and the image-side forward alone (images/s), with the operator's own loader."""
    from data_juicer.ops import load_ops
    from data_juicer.utils.model_utils import get_model
    from ops.batching import PixelScaling, pixel_batches

    op = load_ops([op_cfg])[0]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = get_model(op.model_key, 0 if device == "cuda" else None, device == "cuda")
    batch = op.gpu_batch_size
    if family == "regeneration":
        seconds = _timed(lambda: op.draw(loaded, prompts[:batch], list(range(batch))), 1)
        _free()
        print(f"  parts of ours (regeneration): pipeline alone {batch / seconds:.2f} images/s (batch {batch})",
              flush=True)
        return dict(pipeline_images_per_s=round(batch / seconds, 2), batch=batch)
    model, processor = loaded
    image_processor = getattr(processor, "image_processor", processor)
    scaling = PixelScaling(image_processor)
    # the op's own worker step: grounding's also sends each image's size
    prepare = functools.partial(op._prepare, scaling) if family == "grounding" else scaling.prepare
    start, decoded = time.perf_counter(), 0
    for item in pixel_batches(paths, prepare, batch, op.num_workers, device):
        decoded += len(item["pixels"] if isinstance(item, dict) else item)
    if device == "cuda":
        torch.cuda.synchronize()
    decode_rate = decoded / (time.perf_counter() - start)
    size = image_processor.crop_size if getattr(image_processor, "do_center_crop", False) else image_processor.size
    side = size.get("height") or size.get("shortest_edge")
    pixels = torch.randn(batch, 3, side, side, device=device, dtype=model.dtype)
    forward = dict(itm=lambda: model.vision_model(pixel_values=pixels),
                   grounding=lambda: model.image_embedder(pixel_values=pixels),
                   aesthetics=lambda: op.score(model, pixels), watermark=lambda: op.score(model, pixels))[family]
    forward_rate = batch / _timed(forward, 3)
    _free()
    print(f"  parts of ours ({family}): decoding {decode_rate:.0f} images/s ({op.num_workers} workers), "
          f"image forward {forward_rate:.0f} images/s (batch {batch})", flush=True)
    return dict(decode_images_per_s=round(decode_rate, 1), forward_images_per_s=round(forward_rate, 1),
                workers=op.num_workers, batch=batch)
