"""Loss normalisation: with ``global_tokens`` the gradient of a global batch is the same however it
is split into micro-batches (2x4, 4x2, 8x1) and equals the gradient of the mean token loss over the
whole batch; ``micro_batch_mean`` reproduces the official per-micro-batch mean (and differs).

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_loss_math.py -q``. Tiny demo models
on CPU, finetune stage (LLM, projector and mining all receive gradients), drop path off so every
split sees the same aux features.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from types import SimpleNamespace

import pytest
import torch

from bettersynth.train.backend import PlainBackend
from bettersynth.train.checkpoint import TrainerState
from bettersynth.train.collate import BatchInfo, Collator
from bettersynth.train.dataset import DataOptions, LazySupervisedDataset
from bettersynth.train.distributed import DistInfo
from bettersynth.train.loop import FitContext, train_step
from bettersynth.train.progress import StepResult
from bettersynth.train.sampler import BatchLayout, StepBatchSampler

from train_helpers import TEST_IMAGE_SIZE_AUX

CPU = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


class GradientRecorder(PlainBackend):
    """PlainBackend that keeps a copy of the accumulated gradients taken into the optimizer step."""

    def end_micro_batch(self, last: bool) -> None:
        if last:
            self.gradients = {name: param.grad.detach().clone()
                              for name, param in self.model.named_parameters() if param.requires_grad}
        super().end_micro_batch(last)


@pytest.fixture(scope="module")
def setup(demo_layout_for_tests, finetune_records, tmp_path_factory):
    from bettersynth.model.config import MGMOptions
    from bettersynth.model.io import build_mgm
    from bettersynth.train.stages import set_trainable

    layout = demo_layout_for_tests
    torch.manual_seed(1024)
    model, tokenizer, preprocessor = build_mgm(
        layout.llm_dir, layout.vision_tower_dir, layout.vision_tower_aux_dir,
        MGMOptions(image_size_aux=TEST_IMAGE_SIZE_AUX, aux_drop_path_in_training=False))
    set_trainable(model, "finetune")
    model.train()
    images = [r for r in finetune_records if "image" in r][:5]
    texts = [r for r in finetune_records if "image" not in r][:3]
    data = [images[0], texts[0], images[1], images[2], texts[1], images[3], texts[2], images[4]]
    path = tmp_path_factory.mktemp("loss_math") / "data.json"
    path.write_text(json.dumps(data))
    dataset = LazySupervisedDataset(DataOptions(path, layout.finetune_dir, "pad", 2048, model.num_image_tokens),
                                    tokenizer, preprocessor)
    return model, Collator(tokenizer.pad_token_id, TEST_IMAGE_SIZE_AUX), dataset


def run_step(setup, per_device: int, accumulation: int, mode: str) -> tuple[GradientRecorder, StepResult]:
    model, collator, dataset = setup
    args = SimpleNamespace(loss_normalization=mode, learning_rate=1e-3, weight_decay=0.0, adam_beta1=0.9,
                           adam_beta2=0.999, adam_epsilon=1e-8, lr_scheduler_type="constant", warmup_ratio=0.0,
                           bf16=False)
    backend = GradientRecorder(copy.deepcopy(model), args, CPU, total_steps=1)
    layout = BatchLayout(1, accumulation, per_device)
    sampler = StepBatchSampler(list(range(8)), layout, rank=0, start_step=0, stop_step=1)
    micro_batches = [collator([dataset[i] for i in indices]) for indices in sampler]
    state = TrainerState("finetune", 1, 1, 8, mode)
    context = FitContext(args=args, dist=CPU, backend=backend, dataset=dataset, collator=collator, layout=layout,
                         state=state, epoch_order=lambda epoch: list(range(8)), output_dir=None)
    result = train_step(context, micro_batches)
    assert result.samples == 8 and result.supervised_tokens == sum(info.num_tokens for _, info in micro_batches)
    return backend, result


def gradients(setup, per_device: int, accumulation: int, mode: str) -> dict[str, torch.Tensor]:
    return run_step(setup, per_device, accumulation, mode)[0].gradients


def reference_gradients(setup, micro_sizes: list[int] | None) -> dict[str, torch.Tensor]:
    """Direct autograd on the model: the mean token loss of all 8 samples (micro_sizes None), or the
    official mean over micro-batches of their mean token losses."""
    model, collator, dataset = setup
    model = copy.deepcopy(model)
    if micro_sizes is None:
        batch, info = collator([dataset[i] for i in range(8)])
        (model(**batch).loss_sum / info.num_tokens).backward()
    else:
        start = 0
        for size in micro_sizes:
            batch, info = collator([dataset[i] for i in range(start, start + size)])
            (model(**batch).loss_sum / info.num_tokens / len(micro_sizes)).backward()
            start += size
    return {name: param.grad for name, param in model.named_parameters() if param.requires_grad}


def assert_same(first, second, rtol=1e-5, atol=1e-7):
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=rtol, atol=atol, msg=name)


def test_global_tokens_gradient_does_not_depend_on_the_split(setup):
    reference = reference_gradients(setup, None)
    for per_device, accumulation in ((2, 4), (4, 2), (8, 1)):
        assert_same(gradients(setup, per_device, accumulation, "global_tokens"), reference)


def test_micro_batch_mean_is_the_official_rule_and_differs(setup):
    official = gradients(setup, 2, 4, "micro_batch_mean")
    assert_same(official, reference_gradients(setup, [2, 2, 2, 2]))
    reference = reference_gradients(setup, None)
    name = "llm.model.embed_tokens.weight"
    assert not torch.allclose(official[name], reference[name], rtol=1e-3, atol=1e-6)


def test_the_step_reports_the_global_gradient_norm_of_its_update(setup):
    """The norm a step reports is the L2 norm, over every trainable parameter, of the gradient its
    update applies: here from direct autograd, summed in float64 by hand."""
    reference = reference_gradients(setup, None)
    expected = math.sqrt(sum(float(gradient.double().pow(2).sum()) for gradient in reference.values()))
    _, result = run_step(setup, 4, 2, "global_tokens")
    assert expected > 0 and result.grad_norm == pytest.approx(expected, rel=1e-5)


class MiscountingBackend:
    """Counts one supervised token fewer than the data set did, and records optimizer steps."""

    def __init__(self):
        self.model = torch.nn.Linear(1, 1)
        self.steps = 0

    def sync(self, last):
        return contextlib.nullcontext()

    def forward(self, batch):
        loss_sum = self.model(torch.ones(1, 1)).sum()
        return SimpleNamespace(loss_sum=loss_sum, num_tokens=torch.tensor(int(batch["tokens"]) - 1))

    def backward(self, loss):
        loss.backward()

    def end_micro_batch(self, last):
        self.steps += int(last)

    def learning_rate(self):
        return 1e-3


def test_token_count_mismatch_stops_before_the_optimizer_step():
    backend = MiscountingBackend()
    context = SimpleNamespace(backend=backend, dist=CPU, layout=BatchLayout(1, 2, 1),
                              args=SimpleNamespace(loss_normalization="global_tokens"),
                              state=SimpleNamespace(global_step=0))
    micro_batches = [({"tokens": torch.tensor(5)}, BatchInfo(num_samples=1, num_tokens=5)),
                     ({"tokens": torch.tensor(3)}, BatchInfo(num_samples=1, num_tokens=3))]
    with pytest.raises(RuntimeError, match=r"model counted \[4, 2\] .* data set counted \[5, 3\]"):
        train_step(context, micro_batches)
    assert backend.steps == 0
