"""What a run tells the user: log lines (stdout and OUTPUT_DIR/train.log), a progress bar, and
the log history kept in the trainer state.

Every ``--logging_steps`` optimizer steps the main process writes one line::

    step 12/781 | epoch 0.015 | loss 2.3456 | lr 1.00e-03 | grad norm 0.812 | 45.2 samples/s | 27,900 tokens/s
        | data wait 1%

(loss: mean of the window's step losses; grad norm: the global gradient norm of the window's last
step, before its update, over all trainable parameters; samples/s and tokens/s over the window's wall time,
data loading included; tokens are spliced sequence tokens, image tokens included; data wait: the
share of that time the main process spent waiting for the data loader's micro-batches, where
more loader workers help). Other processes log warnings and errors only. The same values also go
to ``--report_to`` (TensorBoard, wandb: bettersynth.train.report_to). Used by run.py and the loop.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bettersynth.train.checkpoint import TrainerState
from bettersynth.train.report_to import NoSink, ScalarSink

LOGGER_NAME = "bettersynth"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TqdmStdoutHandler(logging.Handler):
    """Writes records to stdout without breaking the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stdout)


def setup_logging(is_main: bool, log_file: Path | None) -> None:
    """The package logger: INFO on the main process (WARNING elsewhere), to stdout and ``log_file``."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [TqdmStdoutHandler()]
    if is_main and log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)


@dataclass
class StepResult:
    """One optimizer step, summed over all processes."""

    loss: float
    learning_rate: float
    grad_norm: float | None           # None where the backend does not compute it
    samples: int
    supervised_tokens: int
    input_tokens: int
    skipped_samples: int
    mismatched_samples: int
    truncated_samples: int


class ProgressReporter:
    """Progress bar + periodic log lines; appends each logged window to ``state.log_history``."""

    def __init__(self, state: TrainerState, logging_steps: int, is_main: bool, sink: ScalarSink | None = None):
        self.state = state
        self.logging_steps = logging_steps
        self.is_main = is_main
        self.sink = sink if sink is not None and is_main else NoSink()
        self.log = logging.getLogger(f"{LOGGER_NAME}.train")
        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=f"{state.stage}", unit="step",
                        disable=not is_main, dynamic_ncols=True, mininterval=1.0)
        self._reset_window()

    def _reset_window(self) -> None:
        self.window_start = time.perf_counter()
        self.window_losses: list[float] = []
        self.window_samples = 0
        self.window_tokens = 0
        self.window_data_wait = 0.0

    def on_step(self, result: StepResult, data_wait_seconds: float) -> None:
        """After an optimizer step; ``data_wait_seconds``: how long its micro-batches were waited for."""
        state = self.state
        for key in ("samples", "supervised_tokens", "input_tokens", "skipped_samples", "mismatched_samples",
                    "truncated_samples"):
            state.totals[key] += getattr(result, key)
        self.window_losses.append(result.loss)
        self.window_samples += result.samples
        self.window_tokens += result.input_tokens
        self.window_data_wait += data_wait_seconds
        self.bar.update(1)
        if state.global_step % self.logging_steps and state.global_step != state.max_steps:
            return
        elapsed = max(time.perf_counter() - self.window_start, 1e-9)
        entry = {"step": state.global_step, "epoch": round(state.epoch, 4),
                 "loss": sum(self.window_losses) / len(self.window_losses),
                 "learning_rate": result.learning_rate,
                 **({} if result.grad_norm is None else {"grad_norm": result.grad_norm}),
                 "samples_per_second": self.window_samples / elapsed,
                 "tokens_per_second": self.window_tokens / elapsed,
                 "data_wait_share": min(self.window_data_wait / elapsed, 1.0)}
        state.log_history.append(entry)
        self.sink.write(state.global_step,
                        {name: value for name, value in entry.items() if name not in ("step", "epoch")})
        self.bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['learning_rate']:.2e}", refresh=False)
        norm = f" | grad norm {result.grad_norm:.4g}" if result.grad_norm is not None else ""
        self.log.info("step %d/%d | epoch %.3f | loss %.4f | lr %.2e%s | %.1f samples/s | %s tokens/s | "
                      "data wait %.0f%%", state.global_step, state.max_steps, entry["epoch"], entry["loss"],
                      entry["learning_rate"], norm,
                      entry["samples_per_second"], f"{entry['tokens_per_second']:,.0f}",
                      100 * entry["data_wait_share"])
        self._reset_window()

    def close(self) -> None:
        self.bar.close()
        self.sink.close()
