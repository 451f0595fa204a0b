"""One training stage from parsed arguments: setup → build → fit → outputs.

    from bettersynth.train.args import parse_args
    from bettersynth.train.run import run
    exit_code = run(parse_args([...official flags...]))

Entry points: ``bsynth train ...`` and ``python -m bettersynth.train ...`` (also under torchrun or
the deepspeed launcher). See ``bsynth train --help`` for resume and re-run behaviour.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil
import torch
from torch import nn
from transformers import set_seed

from bettersynth import paths
from bettersynth.lock import OutputLockError, output_lock, writes_under
from bettersynth.model.config import MGMOptions
from bettersynth.model.io import build_mgm, load_projector
from bettersynth.train.stages import differences_from_spec, set_trainable, stage_spec
from bettersynth.train.args import TrainArgs
from bettersynth.train.backend import make_backend
from bettersynth.train.checkpoint import TrainerState, latest_checkpoint, resume
from bettersynth.train.collate import Collator
from bettersynth.train.dataset import BadSampleError, DataOptions, LazySupervisedDataset
from bettersynth.train.disk import DiskSpaceError, check_stage_space
from bettersynth.train.distributed import DistInfo, barrier, init_distributed, shutdown
from bettersynth.train.ds_config import deepspeed_config
from bettersynth.train.loop import FitContext, fit
from bettersynth.train.made_from import judge_stage, prepare_stage_dir, stage_provenance
from bettersynth.train.outputs import write_final_outputs
from bettersynth.train.progress import setup_logging
from bettersynth.train.report_to import check_report_to
from bettersynth.train.preflight import NodesDisagreeError, check_nodes_agree
from bettersynth.train.sampler import BatchLayout, grouped_order, random_order

log = logging.getLogger("bettersynth.train")


def model_options(args: TrainArgs) -> MGMOptions:
    return MGMOptions(mm_projector_type=args.mm_projector_type, mm_vision_select_layer=args.mm_vision_select_layer,
                      image_size_aux=args.image_size_aux, gemma_activation=args.gemma_activation,
                      aux_drop_path_in_training=args.aux_drop_path_in_training,
                      model_max_length=args.model_max_length, attn_implementation=args.attn_implementation)


def configure_precision(args: TrainArgs, dist: DistInfo) -> None:
    if dist.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
        torch.backends.cudnn.allow_tf32 = bool(args.tf32)
        log.info("GPU: %s, tf32 %s", "bf16" if args.bf16 else "fp32", "on" if args.tf32 else "off")
    elif args.bf16 or args.tf32:
        log.info("CPU: --bf16/--tf32 do not apply; training in fp32")


def build(args: TrainArgs):
    """Seeded model build (so fresh projector/mining weights are reproducible), stage freezing, data."""
    set_seed(args.seed)
    model, tokenizer, preprocessor = build_mgm(args.model_name_or_path, args.vision_tower, args.vision_tower_aux,
                                               model_options(args))
    if args.pretrain_mm_mlp_adapter:
        load_projector(model, args.pretrain_mm_mlp_adapter)
    elif args.stage == "finetune":
        log.warning("finetune without --pretrain_mm_mlp_adapter: projector and mining start from random weights")
    set_trainable(model, args.stage)
    if args.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    if args.torch_compile:
        model.compile_blocks()
        log.info("torch.compile: the LLM decoder layers and the ConvNeXt stages compile on first use")
    model.train()
    dataset = LazySupervisedDataset(DataOptions(
        data_path=Path(args.data_path), image_folder=Path(args.image_folder) if args.image_folder else None,
        aspect=args.image_aspect_ratio, model_max_length=args.model_max_length,
        num_image_tokens=model.num_image_tokens, skip_bad_samples=args.skip_bad_samples,
        truncate_long_samples=args.truncate_long_samples), tokenizer, preprocessor)
    return model, tokenizer, preprocessor, dataset


def epoch_order_function(args: TrainArgs, dataset: LazySupervisedDataset, layout: BatchLayout):
    if args.group_by_modality_length:
        return partial(grouped_order, dataset.word_counts, dataset.has_image, layout, args.seed)
    return partial(random_order, len(dataset), args.seed)


def summarise(state: TrainerState, data_path: str, dataset: LazySupervisedDataset) -> None:
    totals = state.totals
    skipped = int(totals["skipped_samples"]) + len(dataset.problems)
    if skipped:
        ids = [problem.sample_id for problem in dataset.problems] + state.skipped_ids
        log.warning("%d bad sample(s) of %s were skipped (--skip_bad_samples); ids (first %d): %s",
                    skipped, data_path, min(len(ids), 20), ids[:20])
    if totals["mismatched_samples"]:
        log.warning("%d sample(s) were fully masked by the tokenization-mismatch rule",
                    int(totals["mismatched_samples"]))
    if totals["truncated_samples"]:
        log.info("%d sample(s) were truncated to --model_max_length", int(totals["truncated_samples"]))
    log.info("trained on %d samples, %d supervised tokens", int(totals["samples"]), int(totals["supervised_tokens"]))


def warn_unofficial(args: TrainArgs, global_batch: int) -> None:
    """Says where this run's values differ from its stage's official spec (the retraining uses the spec)."""
    spec = stage_spec(args.stage)
    differences = differences_from_spec(args.to_dict(), spec)
    if global_batch != spec.global_batch:
        differences.append(f"global batch {global_batch} (the {spec.name} stage uses {spec.global_batch})")
    for difference in differences:
        log.warning("%s: %s: not the official setting", spec.name, difference)


@dataclass
class StageOutcome:
    """How a stage ended: "finished", "stopped" (--stop_after_steps) or "already_finished"; the
    trained model (unwrapped) and trainer state where training ran."""

    status: str
    model: nn.Module | None = None
    state: TrainerState | None = None


def run_stage(args: TrainArgs, dist: DistInfo, started: float | None = None) -> StageOutcome:
    """One stage in this process (after init_distributed and setup_logging); ``started``: when this run
    began (Unix seconds; default now), recorded as when the stage was being made."""
    output_dir = Path(args.output_dir)
    check_nodes_agree(args, dist)  # same arguments, one shared folder: before any process reads it
    made_from = stage_provenance(args, BatchLayout(dist.world_size, args.gradient_accumulation_steps,
                                                   args.per_device_train_batch_size).global_batch)
    check_report_to(args.report_to)  # a missing package stops the stage before any work
    warn_unofficial(args, made_from.settings["global_batch"])
    decision = judge_stage(output_dir, made_from, args.overwrite_output_dir)
    if decision == "reuse":
        return StageOutcome("already_finished")
    barrier()  # every process has judged the folder before the main one changes it
    if dist.is_main:
        prepare_stage_dir(output_dir, made_from, decision)
    barrier()
    configure_precision(args, dist)
    model, tokenizer, preprocessor, dataset = build(args)
    layout = BatchLayout(dist.world_size, args.gradient_accumulation_steps, args.per_device_train_batch_size)
    steps_per_epoch = layout.steps_per_epoch(len(dataset))
    max_steps = args.max_steps if args.max_steps > 0 else steps_per_epoch * args.num_train_epochs
    trainable = sum(param.numel() for param in model.parameters() if param.requires_grad)
    ds_config = (deepspeed_config(args.deepspeed, args, dist.world_size, model.llm.config.hidden_size, trainable)
                 if args.deepspeed else None)
    backend = make_backend(model, args, dist, max_steps, ds_config)
    state = TrainerState(stage=args.stage, max_steps=max_steps, steps_per_epoch=steps_per_epoch,
                         global_batch=layout.global_batch, loss_normalization=args.loss_normalization)
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is not None:
        state = resume(checkpoint, backend, dist, state)
        log.info("resuming automatically from %s (step %d of %d)", checkpoint, state.global_step, max_steps)
    state.begin_run(time.time() if started is None else started)
    check_stage_space(output_dir, backend.model, args, state)
    log.info("%s: %d samples, global batch %d (%d processes x %d accumulation x %d per device), %d steps per "
             "epoch, %d steps, loss normalisation %s", args.stage, len(dataset), layout.global_batch,
             layout.world_size, layout.accumulation, layout.per_device, steps_per_epoch, max_steps,
             args.loss_normalization)
    left_out = len(dataset) - steps_per_epoch * layout.global_batch
    if left_out:
        log.warning("%d samples beyond the last full global batch of each epoch are not trained (as in the "
                    "official trainer); which ones changes with the shuffled order", left_out)
    start = time.perf_counter()
    finished = fit(FitContext(args=args, dist=dist, backend=backend, dataset=dataset,
                              collator=Collator(tokenizer.pad_token_id, args.image_size_aux), layout=layout,
                              state=state, epoch_order=epoch_order_function(args, dataset, layout),
                              output_dir=output_dir))
    if not finished:
        log.info("stopped after step %d as asked (--stop_after_steps); run again to resume", state.global_step)
        return StageOutcome("stopped", backend.model, state)
    log.info("training took %.1f s%s", time.perf_counter() - start,
             f"; peak GPU memory {torch.cuda.max_memory_allocated(dist.device) / 2**30:.1f} GiB"
             if dist.device.type == "cuda" else "")
    summarise(state, args.data_path, dataset)
    if dist.is_main:
        write_final_outputs(backend.model, tokenizer, preprocessor, args, state, output_dir, made_from)
    barrier()
    return StageOutcome("finished", backend.model, state)


def run(args: TrainArgs) -> int:
    """Runs one stage; returns the exit status (1 on bad data, with the sample named, a missing or
    unusable input, or an output tree another job holds). The first process holds the output tree's
    lock (bettersynth.lock) while it trains into it; a launcher stops the other processes when it exits."""
    try:
        tree = paths.output_dir()
    except paths.RootNotFoundError:  # outside a checkout there is no output tree to lock
        return run_unlocked(args)
    if int(os.environ.get("RANK", "0")) != 0 or not writes_under(tree, [Path(args.output_dir)]):
        return run_unlocked(args)
    try:
        with output_lock(tree, f"bsynth train ({args.stage} -> {args.output_dir})"):
            return run_unlocked(args)
    except OutputLockError as error:
        print(f"bsynth train: {error}", file=sys.stderr, flush=True)
        return 1


def log_process_failure(error: RuntimeError, dist: DistInfo, output_dir: Path) -> None:
    """The message of a process of a several-process job that failed, often because another one died."""
    checkpoint = latest_checkpoint(output_dir)
    resume_from = f"resumes from {checkpoint}" if checkpoint else "starts over (no complete checkpoint yet)"
    log.error("training process rank %d of %d on %s failed: %s\nWhen this is a lost connection or a timeout, "
              "another process or node of the job died or lost its network: its own log says why. Every node's "
              "launcher stops the job; start it again on every node and it %s.", dist.rank, dist.world_size,
              socket.gethostname(), error, resume_from)


def run_unlocked(args: TrainArgs) -> int:
    dist = init_distributed(args.local_rank, single_process_group=bool(args.deepspeed) and torch.cuda.is_available())
    setup_logging(dist.is_main, Path(args.output_dir) / "train.log")
    try:
        run_stage(args, dist, started=psutil.Process().create_time())  # launch and imports count too
        return 0
    except BadSampleError as error:
        log.error("bad training data: %s", error)
        return 1
    except FileNotFoundError as error:
        log.error("missing input: %s", error)
        return 1
    # ValueError: an input check (too few samples, mismatched or unreadable weights, a damaged checkpoint,
    # a bad DeepSpeed config or --report_to)
    except (DiskSpaceError, NodesDisagreeError, ValueError) as error:
        log.error("%s", error)
        return 1
    except RuntimeError as error:
        if not dist.distributed:
            raise
        log_process_failure(error, dist, Path(args.output_dir))
        return 1
    finally:
        shutdown()
