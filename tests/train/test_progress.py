"""The progress reporter's log entries: windows of --logging_steps steps, losses averaged, and the
share of the window's wall time spent waiting for the data loader (hand-computed bounds; capped
at 1).

Run: ``python -m pytest tests/train/test_progress.py -q``
"""

from __future__ import annotations

import time

import pytest

from bettersynth.train.checkpoint import TrainerState
from bettersynth.train.progress import ProgressReporter, StepResult


def step(loss: float, grad_norm: float | None = None) -> StepResult:
    return StepResult(loss=loss, learning_rate=1e-3, grad_norm=grad_norm, samples=8, supervised_tokens=40,
                      input_tokens=800, skipped_samples=0, mismatched_samples=0, truncated_samples=0)


def test_a_window_reports_its_losses_and_data_wait_share():
    state = TrainerState("pretrain", 4, 4, 8, "global_tokens")
    reporter = ProgressReporter(state, logging_steps=2, is_main=False)
    started = time.perf_counter()
    time.sleep(0.2)
    for loss, waited, norm in ((2.0, 0.10, 0.7), (1.0, 0.05, 0.25)):
        state.global_step += 1
        reporter.on_step(step(loss, norm), waited)
    elapsed = time.perf_counter() - started
    (entry,) = state.log_history
    assert entry["step"] == 2 and entry["loss"] == pytest.approx(1.5)
    assert entry["grad_norm"] == 0.25  # the window's last step
    assert entry["samples_per_second"] == pytest.approx(16 / elapsed, rel=0.2)
    assert 0.15 / elapsed <= entry["data_wait_share"] <= 0.15 / 0.2  # 0.15 s waited in a window of >= 0.2 s
    state.global_step += 1
    reporter.on_step(step(3.0), 1e6)  # a wait longer than the window (clock skew) is capped
    state.global_step += 1
    reporter.on_step(step(3.0), 0.0)
    assert state.log_history[-1]["data_wait_share"] == 1.0
    assert "grad_norm" not in state.log_history[-1]  # a backend without the norm logs none
    reporter.close()
