"""Real-size MGM-2B (random weights, bf16) on one GPU: a pretrain and a finetune training step of the
model (forward + backward, no optimizer), the image path alone, and generation. Prints median
timings and peak memory. Opt-in GPU test.

Run on the GPU machine: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_real_size_gpu.py -m gpu -q -s``
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from bettersynth.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from bettersynth.model.real_size import build_real_size_mgm
from bettersynth.model.splice import pad_sequences
from bettersynth.train.stages import set_trainable

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def model():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(1024)
    return build_real_size_mgm(device="cuda", dtype=torch.bfloat16)


def batch(size: int, tokens: int, supervised: int, seed: int = 0) -> dict:
    """``tokens`` per sample after splicing (576 of them image), the last ``supervised`` supervised."""
    generator = torch.Generator().manual_seed(seed)
    text = tokens - 576
    rows, labels = [], []
    for _ in range(size):
        ids = [2, 106] + [IMAGE_TOKEN_INDEX] + torch.randint(3, 256000, (text - 2,), generator=generator).tolist()
        rows.append(ids)
        labels.append([IGNORE_INDEX] * (len(ids) - supervised) + ids[-supervised:])
    input_ids, mask = pad_sequences(rows, 0, "right")
    label_ids, _ = pad_sequences(labels, IGNORE_INDEX, "right")
    images = torch.randn(size, 3, 768, 768, generator=generator)
    return {key: value.cuda() for key, value in {"input_ids": input_ids, "labels": label_ids, "attention_mask": mask,
                                                 "images_aux": images,
                                                 "has_image": torch.ones(size, dtype=torch.bool)}.items()}


def median_seconds(step, steps: int = 5, warmup: int = 2) -> float:
    times = []
    for index in range(warmup + steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step(model, data):
    def step():
        out = model(**data)
        (out.loss_sum / out.num_tokens).backward()
        model.zero_grad(set_to_none=True)
        assert torch.isfinite(out.loss_sum)
    return step


def report(name: str, size: int, seconds: float) -> None:
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"\n{torch.cuda.get_device_name()} | {name}: {seconds * 1000:.0f} ms/step, {size / seconds:.1f} samples/s, "
          f"peak {peak:.1f} GiB")
    torch.cuda.reset_peak_memory_stats()


@pytest.mark.parametrize("size, checkpointing", [(8, False), (16, False), (16, True)])
def test_pretrain_step(model, size, checkpointing):
    set_trainable(model, "pretrain")
    model.train()
    if checkpointing:
        model.enable_gradient_checkpointing()
    data = batch(size, 614, 30)
    seconds = median_seconds(train_step(model, data))
    report(f"pretrain B={size} x 614 tokens, checkpointing {checkpointing}", size, seconds)
    model.llm.gradient_checkpointing_disable()
    out = model(**data)
    out.loss_sum.backward()
    assert model.projector[0].weight.grad is not None and model.llm.model.norm.weight.grad is None
    model.zero_grad(set_to_none=True)


def test_finetune_step(model):
    set_trainable(model, "finetune")
    model.train()
    data = batch(8, 700, 100)
    report("finetune B=8 x 700 tokens (no optimizer)", 8, median_seconds(train_step(model, data)))


def test_image_path_alone(model):
    model.eval()
    images = torch.randn(16, 3, 768, 768, device="cuda")

    def step():
        with torch.no_grad():
            model.encode_images(images)
    report("image path (CLIP + ConvNeXt + mining + projector) B=16", 16, median_seconds(step))


def test_generation(model):
    model.eval()
    data = batch(8, 640, 1)
    ids, mask = data["input_ids"], data["attention_mask"]
    seconds = median_seconds(lambda: model.generate(ids, mask, data["images_aux"], data["has_image"],
                                                    max_new_tokens=16, eos_token_id=-1), steps=3, warmup=1)
    report("generate B=8, 64-token prompts + 576 image, 16 new tokens", 8, seconds)
