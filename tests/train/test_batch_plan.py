"""``bettersynth.train.batch`` and ``bsynth plan-batch``: "auto" micro-batch and accumulation
from the card's memory, checked against predictions worked out by hand from the fitted model.

Run: ``python -m pytest tests/train/test_batch_plan.py -q``
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bettersynth.cli import main
from bettersynth.train.batch import BatchPlan, plan_batch
from bettersynth.train.stages import STAGES

PRETRAIN = STAGES["pretrain"].memory_model(torch_compile=True, gradient_checkpointing=False, optimizer_offload=False)
FINETUNE = STAGES["finetune"].memory_model(torch_compile=True, gradient_checkpointing=True, optimizer_offload=False)
FINETUNE_OFFLOAD = STAGES["finetune"].memory_model(torch_compile=True, gradient_checkpointing=True,
                                                   optimizer_offload=True)
H100_GIB = 79.6  # 81,559 MiB
DEEPSPEED_DIR = Path(__file__).resolve().parents[2] / "toolkit" / "configs" / "deepspeed"


def test_one_80gb_gpu_gets_the_measured_defaults():
    pretrain = plan_batch(None, None, 256, 1, H100_GIB, PRETRAIN)
    assert (pretrain.micro_batch, pretrain.accumulation) == (16, 16)
    assert pretrain.predicted_gib == pytest.approx(5.2 + 16 * 1.86)  # 34.96, measured 34.9
    finetune = plan_batch(None, None, 128, 1, H100_GIB, FINETUNE)
    assert (finetune.micro_batch, finetune.accumulation) == (16, 8)
    assert finetune.predicted_gib == pytest.approx(5.6 + 33.0 + 16 * 1.6)  # 64.2, measured 64.6


def test_smaller_cards_get_smaller_micro_batches():
    # 24 GiB: 90% is 21.6; 16 needs 34.96, 8 needs 5.2 + 8 * 1.86 = 20.08
    assert plan_batch(None, None, 256, 1, 24.0, PRETRAIN) == BatchPlan(8, 32, pytest.approx(20.08))
    # eager pretraining keeps more activations: 5.2 + 8 * 2.33 = 23.84 > 21.6, so 4
    eager = STAGES["pretrain"].memory_model(torch_compile=False, gradient_checkpointing=False, optimizer_offload=False)
    assert plan_batch(None, None, 256, 1, 24.0, eager).micro_batch == 4
    # finetune on 40 GiB with the optimizer offloaded: 24.9 + 4 * 1.6 = 31.3 fits 36, 8 (37.7) does not
    assert plan_batch(None, None, 128, 1, 40.0, FINETUNE_OFFLOAD) == BatchPlan(4, 32, pytest.approx(31.3))


def test_more_gpus_share_the_optimizer_state():
    # 8 x 40 GiB: 5.6 + 33 / 8 + 16 * 1.6 = 35.325 <= 36
    assert plan_batch(None, None, 128, 8, 40.0, FINETUNE) == BatchPlan(16, 1, pytest.approx(35.325))


def test_nothing_fits_names_the_ways_out():
    with pytest.raises(ValueError, match="no micro-batch fits 40 GiB.*zero2_offload.json"):
        plan_batch(None, None, 128, 1, 40.0, FINETUNE)  # 1 per GPU already needs 40.2


def test_given_values_are_kept_and_one_given_value_sets_the_other():
    assert plan_batch(None, 4, 256, 2, H100_GIB, PRETRAIN) == BatchPlan(32, 4, None)
    assert plan_batch(8, None, 256, 4, H100_GIB, PRETRAIN) == BatchPlan(8, 8, None)
    # both given: returned as they are, even a wrong product (check-batch reports that one)
    assert plan_batch(8, 8, 256, 1, H100_GIB, PRETRAIN) == BatchPlan(8, 8, None)
    with pytest.raises(ValueError, match="micro-batch 24 does not divide the 256 samples per GPU"):
        plan_batch(24, None, 256, 1, H100_GIB, PRETRAIN)
    with pytest.raises(ValueError, match="does not divide over 3 GPUs"):
        plan_batch(None, None, 256, 3, H100_GIB, PRETRAIN)


def test_without_a_gpu_the_largest_micro_batch_is_taken():
    assert plan_batch(None, None, 256, 1, None, PRETRAIN).micro_batch == 16


def test_plan_batch_command_prints_micro_and_accumulation(capsys):
    assert main(["plan-batch", "finetune", "auto", "auto", "128", "--num-gpus", "1", "--gpu-memory-gib", "40",
                 "--gradient-checkpointing", "True", "--deepspeed", str(DEEPSPEED_DIR / "zero2_offload.json")]) == 0
    out = capsys.readouterr()
    assert out.out == "4 32\n"
    assert "predicted peak 31 GiB" in out.err
    assert main(["plan-batch", "finetune", "auto", "auto", "128", "--num-gpus", "1", "--gpu-memory-gib", "40",
                 "--gradient-checkpointing", "True", "--deepspeed", str(DEEPSPEED_DIR / "zero2.json")]) == 1
    assert "no micro-batch fits" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan-batch", "pretrain", "sixteen", "auto", "256"])


def test_plan_batch_command_names_bad_inputs(capsys, monkeypatch, tmp_path):
    assert main(["plan-batch", "pretrain", "auto", "auto", "256", "--deepspeed", str(tmp_path / "missing.json")]) == 1
    assert f"cannot read the DeepSpeed config {tmp_path / 'missing.json'}" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["plan-batch", "pretrain", "auto", "auto", "256"]) == 1
    assert "WORLD_SIZE must be a positive integer, got 'two'" in capsys.readouterr().err


@pytest.mark.parametrize("memory", ["nan", "inf", "0", "-5"])
def test_plan_batch_refuses_a_gpu_memory_that_is_not_a_size(capsys, memory):
    with pytest.raises(SystemExit) as stopped:
        main(["plan-batch", "pretrain", "auto", "auto", "256", "--gpu-memory-gib", memory])
    assert stopped.value.code == 2
    assert f"--gpu-memory-gib: must be a finite number > 0, got {memory}" in capsys.readouterr().err


def test_finetune_checkpointing_auto_is_off_only_where_16_fits_without_it():
    """Without checkpointing finetune needs 5.6 + 33.0 / GPUs + 3.8 a sample (the fitted model)."""
    from bettersynth.job_settings import StageBatch, planned

    def decided(gib: float | None, processes: int = 1, micro: str = "auto", accumulation: str = "auto",
                mode: str = "auto") -> tuple[str, str, str]:
        batch, _ = planned("finetune", StageBatch(128, micro, accumulation, mode), processes, gib,
                           True, False)
        return batch.per_gpu, batch.accumulation, batch.checkpointing

    # one H200 (139.8 GiB, 90% = 125.8): 5.6 + 33.0 + 16 * 3.8 = 99.4 fits, so 16 x 8 without it
    assert decided(139.8) == ("16", "8", "False")
    # one 80 GB card: 99.4 > 71.6, so checkpointing and the measured 16 x 8 (not 8 x 16 without it)
    assert decided(H100_GIB) == ("16", "8", "True")
    # eight 80 GB cards share the optimizer state: 5.6 + 33.0 / 8 + 60.8 = 70.5 <= 71.6
    assert decided(H100_GIB, processes=8) == ("16", "1", "False")
    # a micro-batch given by hand is judged as given: 5.6 + 33.0 + 8 * 3.8 = 69.2 fits 80 GB
    assert decided(H100_GIB, micro="8", accumulation="16") == ("8", "16", "False")
    # no GPU, and values given as True / False, are kept
    assert decided(None) == ("16", "8", "True")
    assert decided(139.8, mode="True") == ("16", "8", "True")
    assert decided(H100_GIB, mode="False") == ("8", "16", "False")


def test_eval_gpus_must_be_reachable_by_the_shards():
    """Each eval shard gets one INFER_CUDA_IDX id as its CUDA_VISIBLE_DEVICES (a physical index)."""
    from bettersynth.job_settings import eval_gpus_problem

    assert eval_gpus_problem("0", 1, {}) is None
    assert eval_gpus_problem("0,1", 1, {}) == (
        "INFER_CUDA_IDX=0,1 names GPU 1, which no eval shard could reach (this machine has GPUs 0 to 0); "
        "list physical GPU indices that are visible")
    # a sweep's slot: the job sees GPUs 2 and 3, its shards pin themselves to 2 and 3
    assert eval_gpus_problem("2,3", 2, {"CUDA_VISIBLE_DEVICES": "2,3"}) is None
    assert "names GPU 0, which no eval shard could reach (CUDA_VISIBLE_DEVICES=2,3)" in eval_gpus_problem(
        "0", 2, {"CUDA_VISIBLE_DEVICES": "2,3"})
    # no GPU: the ids only number the CPU shards; GPU UUIDs cannot be checked
    assert eval_gpus_problem("0,1,2", 0, {}) is None
    assert eval_gpus_problem("5", 1, {"CUDA_VISIBLE_DEVICES": "GPU-8a2c"}) is None


def test_a_world_size_that_is_not_this_machines_gpus_stops_the_job():
    """The main job starts one process per GPU; a WORLD_SIZE left by a scheduler (a PyTorchJob's, counting
    pods) would have it plan for 2 processes on a node of 8 GPUs."""
    from bettersynth.job_settings import foreign_world_size_problem
    from bettersynth.train.batch import count_gpus

    assert foreign_world_size_problem(count_gpus(environ={"WORLD_SIZE": "2"}), 8) == (
        "WORLD_SIZE=2 is set, but this machine sees 8 GPU(s): the main job starts one training process per GPU "
        "itself (NNODES and NODE_RANK say the machines); unset WORLD_SIZE, or show the GPUs to use with "
        "CUDA_VISIBLE_DEVICES")
    assert foreign_world_size_problem(count_gpus(environ={"WORLD_SIZE": "8"}), 8) is None
    # no GPU: WORLD_SIZE stands for the GPUs (the CPU checks of a multi-GPU layout); no WORLD_SIZE: the GPUs
    assert foreign_world_size_problem(count_gpus(environ={"WORLD_SIZE": "8", "CUDA_VISIBLE_DEVICES": ""}), 0) is None
    assert foreign_world_size_problem(count_gpus(4), 8) is None
