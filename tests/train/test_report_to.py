"""``--report_to tensorboard`` writes the logged scalars (the losses and the gradient norms among them)
as TensorBoard event files under OUTPUT_DIR/runs/, equal to the trainer state's log; ``none`` writes none.

    HF_HUB_OFFLINE=1 python -m pytest tests/train/test_report_to.py -q      (~30 s)
"""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bettersynth.train.report_to import ReportToError, check_report_to
from train_helpers import run_in_process, stage_argv, write_subset


def test_tensorboard_holds_the_logged_losses(demo_layout_for_tests, pretrain_records, tmp_path):
    data = write_subset(pretrain_records[:16], tmp_path / "pretrain.json")
    out = tmp_path / "stage"
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, out, "pretrain", "--report_to", "tensorboard"))
    events = EventAccumulator(str(out / "runs"))
    events.Reload()
    losses = [(event.step, event.value) for event in events.Scalars("train/loss")]
    logged = [(entry["step"], entry["loss"]) for entry in outcome.state.log_history]
    assert [step for step, _ in losses] == [step for step, _ in logged] == [1, 2, 3, 4]
    assert [value for _, value in losses] == pytest.approx([value for _, value in logged], rel=1e-6)
    assert {"train/learning_rate", "train/samples_per_second", "train/tokens_per_second"} <= \
        set(events.Tags()["scalars"])
    norms = [event.value for event in events.Scalars("train/grad_norm")]
    assert norms == pytest.approx([entry["grad_norm"] for entry in outcome.state.log_history], rel=1e-6)
    assert all(norm > 0 for norm in norms)
    plain = run_in_process(stage_argv(demo_layout_for_tests, data, tmp_path / "plain", "pretrain"))
    assert plain.status == "finished" and not (tmp_path / "plain" / "runs").exists()


def test_a_sink_without_its_package_is_refused():
    try:
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(ReportToError, match=r"--report_to wandb: the wandb package is not installed"):
            check_report_to("wandb")
    with pytest.raises(ReportToError, match="allowed values are none, tensorboard, wandb"):
        check_report_to("mlflow")
