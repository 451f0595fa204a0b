"""What the batched model operators share: model folders, device and dtype, parallel image decoding.

Not an operator. The image-text filters take their samples' image chunks from ``unscored_chunks``
and check their common options with ``check_filter_options``. The model operators decode
and preprocess images in the worker processes of a torch ``DataLoader`` (so the GPU is fed while
the CPU cores decode JPEGs) and run the model in large batches on the device Data-Juicer assigns.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from data_juicer.utils.constant import Fields
from data_juicer.utils.mm_utils import SpecialTokens, load_image, remove_special_tokens
from data_juicer.utils.model_utils import check_model_home
from torch.utils.data import DataLoader, Dataset, default_collate

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
REDUCERS = {"avg": np.mean, "max": np.max, "min": np.min}  # over the images of one chunk


def check_filter_options(reduce_mode: str, any_or_all: str, gpu_batch_size: int, num_workers: int) -> None:
    """The image-text filters' shared options, as the built-ins take them; ValueError naming a bad one."""
    if reduce_mode not in REDUCERS:
        raise ValueError(f"reduce_mode must be one of {sorted(REDUCERS)}, got {reduce_mode!r}")
    if any_or_all not in ("any", "all"):
        raise ValueError(f"any_or_all must be 'any' or 'all', got {any_or_all!r}")
    if gpu_batch_size < 1 or num_workers < 0:
        raise ValueError("gpu_batch_size must be >= 1 and num_workers >= 0")


def unscored_chunks(samples, text_key: str, image_key: str, stat_key: str) -> list[tuple[int, str, list[str]]]:
    """(sample index, chunk text without special tokens, chunk image paths) of every image chunk of the
    samples that have no ``stat_key`` stat yet (a sample scored earlier keeps its score)."""
    chunks = []
    texts = samples[text_key]
    for index, (stats, text, images) in enumerate(
            zip(samples[Fields.stats], texts, samples.get(image_key, [None] * len(texts)))):
        if stats.get(stat_key) is not None or not images:
            continue
        offset = 0
        for chunk in text.split(SpecialTokens.eoc):
            count = chunk.count(SpecialTokens.image)
            if count == 0 or len(chunk) == 0:
                continue
            chunks.append((index, remove_special_tokens(chunk), list(images[offset:offset + count])))
            offset += count
    return chunks


def resolve_model_dir(name: str) -> str:
    """The local folder of model ``name``: itself if it is a folder, else
    ``$DATA_JUICER_EXTERNAL_MODELS_HOME/<name>``. Raises instead of falling back to a hub download."""
    path = check_model_home(name)
    if not os.path.isdir(path):
        home = os.environ.get("DATA_JUICER_EXTERNAL_MODELS_HOME", "<unset>")
        raise FileNotFoundError(
            f"model {name!r} is neither a folder nor found under DATA_JUICER_EXTERNAL_MODELS_HOME={home}")
    return path


def check_dtype(name: str) -> None:
    if name != "auto" and name not in DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {name!r}")


def torch_dtype(name: str, device: str) -> torch.dtype:
    """'auto' is bfloat16 on a GPU and float32 on the CPU."""
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return DTYPES[name]


class DecodedImages(Dataset):
    """Image files -> preprocessed tensors; an undecodable file raises with its path."""

    def __init__(self, paths: Sequence[str], preprocess: Callable):
        self.paths = list(paths)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        try:
            image = load_image(path)
        except Exception as error:
            raise OSError(f"cannot load image {path}: {error}") from error
        return self.preprocess(image)


class PixelScaling:
    """A Hugging Face image processor's rescale and normalise steps, on the device.

    The decoding workers run the processor with those two steps off, so they send the resized and
    cropped pixels as uint8 (a quarter of the float32 bytes to copy between processes and to the
    GPU) and skip two float passes over every image; this applies the processor's own factor,
    mean and std to a batch there. Same values as the processor's float32 output (to rounding).

        scaling = PixelScaling(processor.image_processor)
        pixels = scaling.prepare(image)                       # in a decoding worker: uint8 [C, H, W]
        model_input = scaling(pixels_on_gpu, torch.bfloat16)  # a batch on the device
    """

    DEFERRED = {"do_rescale": False, "do_normalize": False}

    def __init__(self, image_processor) -> None:
        self.image_processor = image_processor
        self.factor = float(image_processor.rescale_factor) if image_processor.do_rescale else None
        self.mean = tuple(image_processor.image_mean) if image_processor.do_normalize else None
        self.std = tuple(image_processor.image_std) if image_processor.do_normalize else None

    def prepare(self, image) -> torch.Tensor:
        """One image resized and cropped by the processor, not yet rescaled or normalised."""
        return self.image_processor(images=image, return_tensors="pt", **self.DEFERRED)["pixel_values"][0]

    def __call__(self, pixels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """[B, C, H, W] pixels (uint8 or float) -> the processor's float values, cast to ``dtype``."""
        values = pixels.float()
        if self.factor is not None:
            values = values * self.factor
        if self.mean is not None:
            shape = (1, len(self.mean), 1, 1)
            mean = torch.tensor(self.mean, device=values.device).view(shape)
            std = torch.tensor(self.std, device=values.device).view(shape)
            values = (values - mean) / std
        return values.to(dtype)


DECODE_CHUNK = 16  # images one decoding worker prepares at a time


def _concat(chunks: list):
    """One batch from consecutive collated chunks (tensors, or dicts of tensors)."""
    if isinstance(chunks[0], dict):
        return {key: torch.cat([chunk[key] for chunk in chunks]) for key in chunks[0]}
    return torch.cat(chunks)


def _split(batch, size: int):
    """(first ``size`` rows, the rest) of a tensor or a dict of tensors."""
    if isinstance(batch, dict):
        return {k: v[:size] for k, v in batch.items()}, {k: v[size:] for k, v in batch.items()}
    return batch[:size], batch[size:]


def _rows(batch) -> int:
    return len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)


def _to_device(batch, device: torch.device):
    if isinstance(batch, dict):
        return {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    return batch.to(device, non_blocking=True)


def pixel_batches(paths: Sequence[str], preprocess: Callable, batch_size: int, num_workers: int,
                  device: torch.device | str = "cpu") -> Iterator:
    """Batches of ``batch_size`` (the last one smaller) ``preprocess(image)`` results (tensors, or
    dicts of tensors, stacked) on ``device``, in the order of ``paths``, decoded by ``num_workers``
    processes.

    The worker processes start, and begin decoding, when this is called, so the caller can do other
    work (encode the texts, say) before taking the first batch. Each worker decodes
    ``DECODE_CHUNK`` images at a time, so all of them work on the next GPU batch at once (a worker
    per whole GPU batch would leave the others idle and the GPU waiting). On a GPU each chunk is
    copied from pinned memory without blocking and the batch is assembled there.
    Data-Juicer's own worker processes (np > 1, e.g. one per GPU) are daemonic and may not start
    children: there the images are decoded by ``num_workers`` threads instead, from the first batch
    taken (Pillow releases the GIL while decoding).
    """
    device = torch.device(device)
    images = DecodedImages(paths, preprocess)
    if num_workers > 0 and multiprocessing.current_process().daemon:
        return _thread_decoded_batches(images, batch_size, num_workers, device)
    loader = DataLoader(images, batch_size=min(DECODE_CHUNK, batch_size), shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda",
                        multiprocessing_context="fork" if num_workers > 0 else None,
                        prefetch_factor=4 if num_workers > 0 else None)
    return _assembled_batches(iter(loader), batch_size, device)


def _thread_decoded_batches(images: DecodedImages, batch_size: int, num_workers: int,
                            device: torch.device) -> Iterator:
    with ThreadPoolExecutor(num_workers) as pool:
        for start in range(0, len(images), batch_size):
            indices = range(start, min(start + batch_size, len(images)))
            yield _to_device(default_collate(list(pool.map(images.__getitem__, indices))), device)


def _assembled_batches(chunks: Iterator, batch_size: int, device: torch.device) -> Iterator:
    pending, count = [], 0
    for chunk in chunks:
        pending.append(_to_device(chunk, device))
        count += _rows(chunk)
        while count >= batch_size:
            batch, rest = _split(_concat(pending), batch_size)
            yield batch
            count -= batch_size
            pending = [rest] if count else []
    if pending:
        yield _concat(pending)


def one_process_per_gpu(kwargs: dict) -> dict:
    """Operator kwargs asking Data-Juicer for one process per GPU (each batches on its GPU and decodes
    with its own workers) instead of as many as the GPU memory would hold."""
    if torch.cuda.is_available():
        kwargs.setdefault("num_gpus", 1)
    return kwargs
