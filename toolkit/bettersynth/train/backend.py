"""How a micro-batch's forward, backward and the optimizer step run: plain torch (one process or
DDP) or a DeepSpeed engine. Both take the trainer's own AdamW and schedule, so the math is the same.

The loop calls, per micro-batch: ``with backend.sync(last): out = backend.forward(batch);
backend.backward(loss)`` then ``backend.end_micro_batch(last)``; the optimizer steps after the last
micro-batch of a global batch. The loss passed in is already normalised for the global batch and
the number of processes (gradients are averaged over processes by DDP and DeepSpeed alike), so
neither backend rescales it. ``grad_norm()`` is the global gradient norm the last optimizer step
took in (a figure for the log: neither backend clips, as the official run does not).
``save``/``load`` write and read the trainable weights, optimizer and schedule of a checkpoint
folder. ``TrainingBackend`` is that interface, typed; both classes implement it and
``make_backend`` (called by run.py) returns one.
"""

from __future__ import annotations

import contextlib
import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bettersynth.train.distributed import DistInfo
from bettersynth.train.ds_config import offloads_optimizer
from bettersynth.train.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

DEEPSPEED_TAG = "deepspeed"


class TrainingBackend(Protocol):
    """What the loop and the checkpoints need of a backend."""

    model: nn.Module  # the unwrapped model (for saving final outputs)

    def sync(self, last: bool) -> AbstractContextManager: ...

    def forward(self, batch: dict[str, torch.Tensor]): ...

    def backward(self, loss: torch.Tensor) -> None: ...

    def end_micro_batch(self, last: bool) -> None: ...

    def learning_rate(self) -> float: ...

    def grad_norm(self) -> torch.Tensor | float | None: ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...


class PlainBackend:
    """torch AdamW on the model's device; DDP across processes; bf16 autocast on GPU when asked."""

    def __init__(self, model: nn.Module, args, dist: DistInfo, total_steps: int):
        self.model = model.to(dist.device)
        self.dist = dist
        self.optimizer = build_optimizer(model, args, dist.device, cpu_offload=False)
        self.scheduler = build_scheduler(self.optimizer, args, total_steps)
        self.autocast = bool(args.bf16) and dist.device.type == "cuda"
        self.wrapped = (DistributedDataParallel(model, device_ids=[dist.local_rank] if dist.device.type == "cuda"
                                                else None) if dist.distributed else model)
        self.last_grad_norm: torch.Tensor | None = None

    def sync(self, last: bool):
        """Gradients are all-reduced only on the last micro-batch of a global batch."""
        if self.dist.distributed and not last:
            return self.wrapped.no_sync()
        return contextlib.nullcontext()

    def forward(self, batch: dict[str, torch.Tensor]):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            return self.wrapped(**batch)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def end_micro_batch(self, last: bool) -> None:
        if last:
            # the accumulated gradients, all-reduced on the last micro-batch: the same on every process
            gradients = [param.grad for param in self.model.parameters() if param.grad is not None]
            self.last_grad_norm = torch.nn.utils.get_total_norm(gradients) if gradients else None
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)

    def learning_rate(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def grad_norm(self) -> torch.Tensor | None:
        """L2 norm over all trainable parameters' gradients taken into the last optimizer step."""
        return self.last_grad_norm

    def save(self, folder: Path) -> None:
        if not self.dist.is_main:
            return
        trainable = {name: param.detach().cpu() for name, param in self.model.named_parameters() if param.requires_grad}
        torch.save(trainable, folder / "trainable.pt")
        torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")
        torch.save(self.scheduler.state_dict(), folder / "scheduler.pt")

    def load(self, folder: Path) -> None:
        trainable = torch.load(folder / "trainable.pt", map_location="cpu", weights_only=True)
        params = {name: param for name, param in self.model.named_parameters() if param.requires_grad}
        if set(trainable) != set(params):
            raise ValueError(f"{folder}: checkpoint weights ({len(trainable)} tensors) do not match this stage's "
                             f"trainable parameters ({len(params)}): e.g. "
                             f"{sorted(set(trainable) ^ set(params))[:5]}")
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(trainable[name])
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=self.dist.device,
                                                  weights_only=True))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))


class DeepSpeedBackend:
    """A DeepSpeed engine (ZeRO-2, optionally with the optimizer state on the CPU)."""

    def __init__(self, model: nn.Module, args, dist: DistInfo, total_steps: int, config: dict):
        import deepspeed

        self.dist = dist
        optimizer = build_optimizer(model, args, dist.device, cpu_offload=offloads_optimizer(config))
        scheduler = build_scheduler(optimizer, args, total_steps)
        # The engine broadcasts every parameter as a byte view when it starts, which needs a unit
        # stride in the last dimension: the channels-last ConvNeXt weights (frozen, not held by the
        # optimizer) are made contiguous for that and put back afterwards.
        model.to(memory_format=torch.contiguous_format)
        self.engine, _, _, self.scheduler = deepspeed.initialize(model=model, optimizer=optimizer,
                                                                 lr_scheduler=scheduler, config=config)
        if model.options.aux_channels_last:
            model.aux_tower.to(memory_format=torch.channels_last)
        self.model = self.engine.module
        self.float_dtype = torch.bfloat16 if self.engine.bfloat16_enabled() else torch.float32

    def sync(self, last: bool):
        return contextlib.nullcontext()

    def forward(self, batch: dict[str, torch.Tensor]):
        batch = {key: value.to(self.float_dtype) if value.is_floating_point() else value
                 for key, value in batch.items()}
        return self.engine(**batch)

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss, scale_wrt_gas=False)

    def end_micro_batch(self, last: bool) -> None:
        if self.engine.is_gradient_accumulation_boundary() != last:
            raise RuntimeError("DeepSpeed's accumulation boundary disagrees with the trainer's global batch")
        self.engine.step()

    def learning_rate(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def grad_norm(self) -> torch.Tensor | float | None:
        """The global gradient norm ZeRO computed in the last step (None where its config turns it off)."""
        return self.engine.get_global_grad_norm()

    def save(self, folder: Path) -> None:
        self.engine.save_checkpoint(str(folder), tag=DEEPSPEED_TAG, save_latest=False,
                                    exclude_frozen_parameters=True)

    def load(self, folder: Path) -> None:
        path, _ = self.engine.load_checkpoint(str(folder), tag=DEEPSPEED_TAG, load_module_strict=False)
        if path is None:
            raise ValueError(f"DeepSpeed could not load the checkpoint in {folder}")


def make_backend(model: nn.Module, args, dist: DistInfo, total_steps: int,
                 deepspeed_config: dict | None) -> TrainingBackend:
    """DeepSpeed where a config is given and CUDA is available; plain torch otherwise."""
    if deepspeed_config is not None and dist.device.type == "cuda":
        log.info("engine: DeepSpeed ZeRO-%s (%s)", deepspeed_config.get("zero_optimization", {}).get("stage"),
                 "optimizer on CPU" if offloads_optimizer(deepspeed_config) else "optimizer on GPU")
        return DeepSpeedBackend(model, args, dist, total_steps, deepspeed_config)
    if deepspeed_config is not None:
        log.info("engine: no CUDA here, so the DeepSpeed config is not used; plain torch AdamW (same math)%s",
                 ", DDP over gloo" if dist.distributed else "")
    else:
        log.info("engine: plain torch AdamW%s", ", DDP" if dist.distributed else "")
    return PlainBackend(model, args, dist, total_steps)
