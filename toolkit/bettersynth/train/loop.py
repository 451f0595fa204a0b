"""The training loop: global batches in sampler order, one optimizer step each, checkpoints.

Loss normalisation (``--loss_normalization``):
- ``global_tokens`` (default): each micro-batch's summed token cross-entropy is divided by the
  number of supervised tokens of the whole global batch (all micro-batches, all processes; counted
  by the data set before the forward passes and all-reduced). The update is the gradient of the
  mean token loss of the global batch, so how it is split into micro-batches and processes does
  not change it.
- ``micro_batch_mean`` (the official behaviour): each micro-batch's mean token loss, divided by
  the accumulation steps and averaged over processes; long-answer samples in small micro-batches
  then weigh more. A micro-batch without supervised tokens contributes zero (the official code
  would produce NaN).
Both multiply by the number of processes because DDP and DeepSpeed average gradients over them.
A micro-batch left empty by skipped samples runs a zero loss over the trainable parameters so every
process takes part in the gradient reduction. Each step also reports the global gradient norm of
its update (``backend.grad_norm()``: computed from the accumulated gradients before the optimizer
step on plain torch, DeepSpeed's own on the engine); nothing is clipped, as in the official run.
Called by run.py as ``fit(context)``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader

from bettersynth.train.args import TrainArgs
from bettersynth.train.backend import TrainingBackend
from bettersynth.train.checkpoint import TrainerState, save_checkpoint
from bettersynth.train.collate import BatchInfo, Collator
from bettersynth.train.dataset import LazySupervisedDataset
from bettersynth.train.distributed import DistInfo, all_reduce_sum
from bettersynth.train.progress import ProgressReporter, StepResult
from bettersynth.train.report_to import open_sink
from bettersynth.train.sampler import BatchLayout, StepBatchSampler

log = logging.getLogger(__name__)

MAX_SKIPPED_IDS = 100


@dataclass
class FitContext:
    args: TrainArgs
    dist: DistInfo
    backend: TrainingBackend
    dataset: LazySupervisedDataset
    collator: Collator
    layout: BatchLayout
    state: TrainerState
    epoch_order: Callable[[int], Sequence[int]]
    output_dir: Path


def zero_loss(model: torch.nn.Module) -> torch.Tensor:
    """0 with a graph through every trainable parameter (for a micro-batch with no samples)."""
    return sum(param.sum() * 0.0 for param in model.parameters() if param.requires_grad)


def normalised_loss(loss_sum: torch.Tensor, micro_tokens: int, global_tokens: float, mode: str,
                    world_size: int, accumulation: int) -> torch.Tensor:
    if mode == "global_tokens":
        return loss_sum * (world_size / max(global_tokens, 1.0))
    if micro_tokens == 0:
        return loss_sum * 0.0
    return loss_sum / (micro_tokens * accumulation)


def train_step(context: FitContext, micro_batches: list[tuple[dict | None, BatchInfo]]) -> StepResult:
    backend, dist, layout = context.backend, context.dist, context.layout
    mode = context.args.loss_normalization
    (global_tokens,) = all_reduce_sum([sum(info.num_tokens for _, info in micro_batches)], dist.device)
    learning_rate = backend.learning_rate()
    # Per-micro-batch figures stay on the device until the step ends: reading them back each time
    # would stall the host until the GPU caught up, and the next micro-batch's launch with it.
    micro_loss_sums, model_counts, counted_tokens = [], [], []
    for position, (batch, info) in enumerate(micro_batches):
        last = position == len(micro_batches) - 1
        with backend.sync(last):
            if batch is None:
                loss = zero_loss(backend.model)
            else:
                output = backend.forward({key: value.to(dist.device, non_blocking=True)
                                          for key, value in batch.items()})
                loss = normalised_loss(output.loss_sum, info.num_tokens, global_tokens, mode, dist.world_size,
                                       layout.accumulation)
                micro_loss_sums.append(output.loss_sum.detach().double())
                model_counts.append(output.num_tokens.detach())
                counted_tokens.append(info.num_tokens)
            backend.backward(loss)
        if last and model_counts:  # once a step, before the optimizer applies the update
            model_counted = torch.stack(model_counts).tolist()
            if model_counted != counted_tokens:
                raise RuntimeError(f"the model counted {model_counted} supervised tokens in this step's "
                                   f"micro-batches where the data set counted {counted_tokens}; the loss "
                                   "normalisation would be wrong")
        backend.end_micro_batch(last)
    grad_norm = backend.grad_norm()  # of the update just applied; read back with the step's other figures
    loss_sum, micro_means, counted_micro = 0.0, 0.0, 0
    if micro_loss_sums:
        sums = torch.stack(micro_loss_sums).cpu().tolist()
        loss_sum = sum(sums)
        micro_means = sum(value / tokens for value, tokens in zip(sums, counted_tokens) if tokens)
        counted_micro = sum(1 for tokens in counted_tokens if tokens)
    infos = [info for _, info in micro_batches]
    totals = all_reduce_sum([loss_sum, micro_means, counted_micro,
                             sum(i.num_samples for i in infos), sum(i.num_input_tokens for i in infos),
                             sum(len(i.skipped) for i in infos), sum(len(i.mismatched) for i in infos),
                             sum(len(i.truncated) for i in infos)], dist.device)
    if mode == "global_tokens":
        loss = totals[0] / max(global_tokens, 1.0)
    else:
        loss = totals[1] / max(totals[2], 1.0)
    if global_tokens == 0:
        log.warning("step %d had no supervised tokens in its whole global batch", context.state.global_step + 1)
    return StepResult(loss=loss, learning_rate=learning_rate, grad_norm=None if grad_norm is None else float(grad_norm),
                      samples=int(totals[3]),
                      supervised_tokens=int(global_tokens), input_tokens=int(totals[4]),
                      skipped_samples=int(totals[5]), mismatched_samples=int(totals[6]),
                      truncated_samples=int(totals[7]))


def _loader(context: FitContext, epoch: int, start: int, stop: int) -> DataLoader:
    args = context.args
    sampler = StepBatchSampler(context.epoch_order(epoch), context.layout, context.dist.rank, start, stop)
    # A generator of its own keeps the loader from drawing on the global RNG, whose stream (the aux
    # tower's drop path) must continue identically after a resume.
    return DataLoader(context.dataset, batch_sampler=sampler, collate_fn=context.collator,
                      num_workers=args.dataloader_num_workers, pin_memory=context.dist.device.type == "cuda",
                      generator=torch.Generator().manual_seed(args.seed + epoch))


def fit(context: FitContext) -> bool:
    """Trains from ``state.global_step`` to ``max_steps``; False when stopped by --stop_after_steps."""
    args, state, layout = context.args, context.state, context.layout
    sink = open_sink(args.report_to, context.output_dir, args.stage) if context.dist.is_main else None
    reporter = ProgressReporter(state, args.logging_steps, context.dist.is_main, sink)
    try:
        while state.global_step < state.max_steps:
            epoch, start = divmod(state.global_step, state.steps_per_epoch)
            stop = min(state.steps_per_epoch, state.max_steps - epoch * state.steps_per_epoch)
            batches = iter(_loader(context, epoch, start, stop))
            for _ in range(start, stop):
                waiting_since = time.perf_counter()
                micro_batches = [next(batches) for _ in range(layout.accumulation)]
                data_wait = time.perf_counter() - waiting_since
                result = train_step(context, micro_batches)
                state.global_step += 1
                for info in (info for _, info in micro_batches):
                    room = MAX_SKIPPED_IDS - len(state.skipped_ids)
                    state.skipped_ids.extend(sample_id for sample_id, _ in info.skipped[:max(room, 0)])
                reporter.on_step(result, data_wait)
                stopping = args.stop_after_steps is not None and state.global_step >= args.stop_after_steps
                due = args.save_strategy == "steps" and state.global_step % args.save_steps == 0
                if state.global_step < state.max_steps and (due or stopping):
                    save_checkpoint(context.output_dir, state, context.backend, context.dist, args.save_total_limit)
                if stopping and state.global_step < state.max_steps:
                    return False
    finally:
        reporter.close()
    return True
