"""Batched greedy answers from a finetuned MGM checkpoint (TextVQA and MMBench share this).

Each request is a user message (holding ``<image>``) and an image source. Requests are sorted by
prompt length so a batch holds similar lengths (less padding), then by image, so requests of one
image and length (MMBench's circular copies of a question) share a batch, where the image is
decoded and encoded once; batches are left-padded, answered with the model's greedy ``generate``
and put back in request order. Each answer is cut at the first
``<eos>``, decoded without special tokens and stripped. Images are decoded and preprocessed
(aspect "pad") by data-loader workers while the GPU works, and the model encodes a batch's images
``images_per_pass`` at a time (8: the same answers as all at once, with the image path's memory of 8
images, not of the whole batch). Batched answers equal one-by-one answers
(tests/eval/test_generate.py checks it on the demo model).

    from bettersynth.eval.generate import AnswerEngine, GenerationSettings, ImageSource
    engine = AnswerEngine.load(checkpoint_dir)                   # bf16 on GPU, fp32 on CPU
    texts = engine.answer([("<image>\\nWhat is written?", ImageSource(path=p))],
                          GenerationSettings(batch_size=16, max_new_tokens=128))
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bettersynth.eval.files import EvalDataError


IMAGES_PER_PASS = 8  # images the image path encodes at a time (memory only: MGMForCausalLM.encode_images)


@dataclass(frozen=True)
class GenerationSettings:
    batch_size: int
    max_new_tokens: int
    num_workers: int = 0
    progress_label: str = "answers"
    images_per_pass: int = IMAGES_PER_PASS

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.images_per_pass < 1:
            raise ValueError(f"images_per_pass must be >= 1, got {self.images_per_pass}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


@dataclass(frozen=True)
class ImageSource:
    """An image file, or base64 bytes (MMBench's TSV); ``label`` names it in errors."""

    path: Path | None = None
    base64_data: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if (self.path is None) == (self.base64_data is None):
            raise ValueError("an ImageSource needs exactly one of path or base64_data")

    @property
    def content_key(self) -> tuple[str, str]:
        """Equal for sources of the same image: the same file, or the same base64 text (the label
        does not count)."""
        return ("path", str(self.path)) if self.path is not None else ("base64", self.base64_data)

    def _decoded_bytes(self) -> io.BytesIO:
        return io.BytesIO(base64.b64decode(self.base64_data))

    def header_problem(self) -> str | None:
        """Why this is not an image, from its header alone (an empty, cut or foreign file, bad base64),
        or None; a fault further into the data shows when it is decoded (``load``)."""
        from PIL import Image, UnidentifiedImageError

        try:
            if self.path is not None:
                with Image.open(self.path):
                    return None
            with Image.open(self._decoded_bytes()):
                return None
        except (ValueError, UnidentifiedImageError, OSError) as error:
            return f"{self.label or self.path or 'base64 image'}: not an image ({error})"

    def load(self, preprocessor):
        if self.path is not None:
            return preprocessor.load(self.path)
        from PIL import Image, UnidentifiedImageError

        try:
            return Image.open(self._decoded_bytes()).convert("RGB")
        except (ValueError, UnidentifiedImageError, OSError) as error:
            raise EvalDataError(f"{self.label or 'base64 image'}: image does not decode ({error})") from error


class _ImageDataset:
    """Preprocessed image tensors by request position (runs inside data-loader workers). They are
    cast to the model's dtype here: the same rounding as on the GPU, half the bytes to move."""

    def __init__(self, sources: Sequence[ImageSource], preprocessor, dtype) -> None:
        self.sources = list(sources)
        self.preprocessor = preprocessor
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, position: int):
        """(position, image tensor), or (position, the message) for an image that cannot be used:
        returned, not raised, because a data-loader worker would bury the message in a traceback."""
        from bettersynth.model.preprocess import ImageLoadError

        try:
            image = self.sources[position].load(self.preprocessor)
        except (EvalDataError, ImageLoadError) as error:
            return position, str(error)
        return position, self.preprocessor(image, aspect="pad").to(self.dtype)


def _collate(items):
    """(positions, stacked image tensors), or (positions, the first bad image's message)."""
    import torch

    positions = [position for position, _ in items]
    problems = [value for _, value in items if isinstance(value, str)]
    if problems:
        return positions, problems[0]
    return positions, torch.stack([tensor for _, tensor in items])


def _shared_images(batch: list[int], images: Sequence[ImageSource]) -> tuple[list[int], list[int]]:
    """The batch's distinct images (the first request position of each) and each request's index
    among them."""
    index_of: dict[tuple[str, str], int] = {}
    distinct, rows = [], []
    for position in batch:
        key = images[position].content_key
        if key not in index_of:
            index_of[key] = len(distinct)
            distinct.append(position)
        rows.append(index_of[key])
    return distinct, rows


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class AnswerEngine:
    """A loaded model and image preprocessor on one device; the tokenizer builds prompts and decodes."""

    def __init__(self, model, preprocessor, device: str, dtype, pad_token_id: int, eos_token_id: int,
                 tokenizer=None) -> None:
        self.model, self.preprocessor, self.tokenizer = model.eval(), preprocessor, tokenizer
        self.device, self.dtype = device, dtype
        self.pad_token_id, self.eos_token_id = pad_token_id, eos_token_id
        self.images_encoded = 0  # by generate_ids so far: one per distinct image of each batch

    @classmethod
    def load(cls, checkpoint: Path, device: str | None = None) -> "AnswerEngine":
        """A checkpoint folder written by ``save_checkpoint``: bf16 on GPU, fp32 on CPU."""
        import torch

        from bettersynth.model.io import load_checkpoint

        checkpoint = Path(checkpoint)
        if not (checkpoint / "config.json").is_file():
            raise EvalDataError(f"{checkpoint}: not a checkpoint folder (no config.json)")
        device = device or default_device()
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            model, tokenizer, preprocessor = load_checkpoint(checkpoint, device=device, dtype=dtype)
        except (OSError, ValueError, KeyError, TypeError) as error:  # a missing or damaged file of the folder
            raise EvalDataError(
                f"{checkpoint}: cannot load the checkpoint ({type(error).__name__}: {error})") from error
        return cls(model, preprocessor, device, dtype, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer)

    def prompt_ids(self, message: str) -> list[int]:
        from bettersynth.template import generation_prompt_ids

        return generation_prompt_ids(message, self.tokenizer)

    def _left_padded(self, prompts: list[list[int]]):
        import torch

        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.bool)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids):] = True
        return input_ids.to(self.device), attention_mask.to(self.device)

    def _until_eos(self, new_tokens) -> list[list[int]]:
        rows = []
        for row in new_tokens.tolist():
            rows.append(row[:row.index(self.eos_token_id)] if self.eos_token_id in row else row)
        return rows

    def generate_ids(self, prompts: Sequence[list[int]], images: Sequence[ImageSource],
                     settings: GenerationSettings) -> list[list[int]]:
        """New token ids (cut before the first eos) for prompt ids with one image each, in order."""
        import torch
        from torch.utils.data import DataLoader
        from tqdm import tqdm

        if len(prompts) != len(images):
            raise ValueError(f"{len(prompts)} prompts but {len(images)} images")
        order = sorted(range(len(prompts)), key=lambda at: (-len(prompts[at]), images[at].content_key))
        batches = [order[start:start + settings.batch_size] for start in range(0, len(order), settings.batch_size)]
        shared = [_shared_images(batch, images) for batch in batches]
        loader = DataLoader(_ImageDataset(images, self.preprocessor, self.dtype),
                            batch_sampler=[distinct for distinct, _ in shared],
                            collate_fn=_collate,
                            num_workers=settings.num_workers, pin_memory=self.device.startswith("cuda"),
                            multiprocessing_context="fork" if settings.num_workers else None)
        answers: list[list[int]] = [[] for _ in prompts]
        with torch.inference_mode(), tqdm(total=len(prompts), desc=settings.progress_label, unit="q",
                                          mininterval=5.0, disable=not prompts) as bar:
            for positions, (_, image_rows), (_, pixels) in zip(batches, shared, loader):
                if isinstance(pixels, str):
                    raise EvalDataError(pixels)
                input_ids, attention_mask = self._left_padded([prompts[p] for p in positions])
                new_tokens = self.model.generate(
                    input_ids=input_ids, attention_mask=attention_mask,
                    images_aux=pixels.to(self.device, non_blocking=True),
                    has_image=torch.ones(len(positions), dtype=torch.bool, device=self.device),
                    max_new_tokens=settings.max_new_tokens, eos_token_id=self.eos_token_id,
                    pad_token_id=self.pad_token_id, images_per_pass=settings.images_per_pass,
                    image_rows=torch.tensor(image_rows, device=self.device))
                self.images_encoded += len(pixels)
                for position, ids in zip(positions, self._until_eos(new_tokens.cpu())):
                    answers[position] = ids
                bar.update(len(positions))
        return answers

    def peak_memory(self) -> str:
        """The GPU memory this process peaked at so far, allocated and reserved by torch's allocator
        (the process holds ~1 GiB more: the CUDA context), for the log; "" on CPU."""
        import torch

        if not self.device.startswith("cuda"):
            return ""
        return (f"peak GPU memory {torch.cuda.max_memory_allocated(self.device) / 2**30:.1f} GiB allocated, "
                f"{torch.cuda.max_memory_reserved(self.device) / 2**30:.1f} GiB reserved")

    def answer(self, requests: Sequence[tuple[str, ImageSource]], settings: GenerationSettings) -> list[str]:
        """Answers to (user message, image) requests, in request order: decoded without special
        tokens and stripped."""
        if self.tokenizer is None:
            raise ValueError("answer() needs the tokenizer; use generate_ids() with prompt ids")
        prompts = [self.prompt_ids(message) for message, _ in requests]
        ids = self.generate_ids(prompts, [source for _, source in requests], settings)
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]


def default_workers(device: str) -> int:
    """Image workers: none on CPU (the model needs the cores); beside a GPU up to 8 (decoding and
    CLIP preprocessing at 768 px take 50-75 ms an image; on a 16-core H100 host 12 workers were
    slower than 8, the generation loop needs CPU too)."""
    return 0 if not device.startswith("cuda") else max(1, min(8, (os.cpu_count() or 1) - 2))
