"""``--report_to``: where a stage's logged scalars go besides its log (the official flag's values).

    none           the log and trainer_state.json only (the default, as in the official run)
    tensorboard    event files under OUTPUT_DIR/runs/ (``tensorboard --logdir output/training_dirs``)
    wandb          a Weights & Biases run (project ``bettersynth``, named after OUTPUT_DIR), when the
                   wandb package is installed; asking for it without the package stops the stage

Every logged window (``--logging_steps``) writes ``train/loss``, ``train/learning_rate``,
``train/grad_norm`` (the global gradient norm of the window's last step; logged only, nothing is
clipped), ``train/samples_per_second``, ``train/tokens_per_second`` and ``train/data_wait_share`` at
its optimizer step, on the main process only. Used by bettersynth.train.progress.

    sink = open_sink("tensorboard", Path("output/training_dirs/MGM-2B-Pretrain-x"), "pretrain")
    sink.write(step=12, scalars={"loss": 2.3, "learning_rate": 1e-3}); sink.close()
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Protocol

REPORT_TO = ("none", "tensorboard", "wandb")
TENSORBOARD_FOLDER = "runs"


class ReportToError(ValueError):
    """--report_to names a sink whose package is not installed."""


class ScalarSink(Protocol):
    def write(self, step: int, scalars: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class NoSink:
    def write(self, step: int, scalars: dict[str, float]) -> None:
        return None

    def close(self) -> None:
        return None


class TensorBoardSink:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, step: int, scalars: dict[str, float]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    def __init__(self, output_dir: Path, stage: str):
        # optional, not a dependency of the toolkit: imported by name once check_report_to found it
        wandb = importlib.import_module("wandb")
        self.run = wandb.init(project="bettersynth", name=output_dir.name, group=stage, dir=str(output_dir),
                              resume="allow")

    def write(self, step: int, scalars: dict[str, float]) -> None:
        self.run.log({f"train/{name}": value for name, value in scalars.items()}, step=step)

    def close(self) -> None:
        self.run.finish()


def check_report_to(report_to: str) -> None:
    """ReportToError when ``report_to`` is unknown or its package is not installed (checked before training)."""
    if report_to not in REPORT_TO:
        raise ReportToError(f"--report_to {report_to!r}: allowed values are {', '.join(REPORT_TO)}")
    needed = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(report_to)
    if needed and importlib.util.find_spec(needed) is None:
        raise ReportToError(f"--report_to {report_to}: the {needed} package is not installed (pip install {needed})")


def open_sink(report_to: str, output_dir: Path, stage: str) -> ScalarSink:
    check_report_to(report_to)
    if report_to == "tensorboard":
        return TensorBoardSink(output_dir / TENSORBOARD_FOLDER)
    if report_to == "wandb":
        return WandbSink(output_dir, stage)
    return NoSink()
