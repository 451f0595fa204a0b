"""A stage is reused or resumed only when it was made from the same inputs and settings
(bettersynth.train.made_from): new training data, a new projector or a new learning rate train
again, and say why; flags that do not change the weights (logging, workers, the batch split) do not.

    HF_HUB_OFFLINE=1 python -m pytest tests/train/test_made_from.py -q      (~1 min)
"""

from __future__ import annotations

import json

import torch

from bettersynth.train.checkpoint import CHECKPOINT_MARKER
from bettersynth.train.made_from import stage_provenance
from bettersynth.train.args import parse_args

from train_helpers import run_in_process, stage_argv, write_subset


def test_a_finished_pretrain_is_reused_only_for_the_same_data(demo_layout_for_tests, pretrain_records, tmp_path,
                                                              capsys):
    data = tmp_path / "pretrain.json"
    write_subset(pretrain_records[:8], data)
    out = tmp_path / "pretrain"
    argv = stage_argv(demo_layout_for_tests, str(data), out, "pretrain")
    assert run_in_process(argv).status == "finished"
    first_record = json.loads((out / "made-from.json").read_text())
    assert first_record["step"] == "pretrain" and first_record["settings"]["learning_rate"] == 1e-3
    assert first_record["settings"]["global_batch"] == 4 and "finished" in first_record

    capsys.readouterr()
    assert run_in_process(argv + ["--logging_steps", "5", "--dataloader_num_workers", "1"]).status == \
        "already_finished"
    assert "made from the same inputs and settings; nothing to do" in capsys.readouterr().out

    old_sha = first_record["inputs"]["training data"][7:15]
    write_subset(pretrain_records[8:16], data)
    capsys.readouterr()
    again = run_in_process(argv)
    assert again.status == "finished"
    said = capsys.readouterr().out
    assert f"pretrain: training data changed (sha {old_sha}… → sha " in said
    assert "since it was made: training again" in said
    second_record = json.loads((out / "made-from.json").read_text())
    assert second_record["inputs"]["training data"] != first_record["inputs"]["training data"]

    capsys.readouterr()
    assert run_in_process(argv[:-2] + ["--learning_rate", "2e-3"]).status == "finished"
    assert "setting learning_rate changed (0.001 → 0.002)" in capsys.readouterr().out


def test_finetune_retrains_when_the_projector_changes(demo_layout_for_tests, finetune_records, tmp_path):
    data = write_subset(finetune_records[:4], tmp_path / "finetune.json")
    projector = tmp_path / "mm_projector.bin"
    torch.save({"model.mm_projector.0.weight": torch.zeros(1)}, projector)
    argv = stage_argv(demo_layout_for_tests, data, tmp_path / "finetune", "finetune", adapter=str(projector))
    args = parse_args(argv)
    before = stage_provenance(args, 4)
    torch.save({"model.mm_projector.0.weight": torch.ones(1)}, projector)
    after = stage_provenance(args, 4)
    assert before.changes_since(after) == [
        f"projector changed (sha {after.inputs['projector'][7:15]}… → sha {before.inputs['projector'][7:15]}…)"]
    # the per-device split of the same global batch is the same stage; another global batch is not
    split = stage_provenance(parse_args(stage_argv(demo_layout_for_tests, data, tmp_path / "finetune", "finetune",
                                                   adapter=str(projector), per_device=1, accumulation=4)), 4)
    assert split.changes_since(after) == []
    assert stage_provenance(args, 8).changes_since(after) == ["setting global_batch changed (4 → 8)"]


def test_checkpoints_made_from_other_data_are_not_resumed(demo_layout_for_tests, pretrain_records, tmp_path,
                                                          capsys):
    data = tmp_path / "pretrain.json"
    write_subset(pretrain_records[:16], data)
    out = tmp_path / "pretrain"
    argv = stage_argv(demo_layout_for_tests, str(data), out, "pretrain", "--save_steps", "1")
    assert run_in_process(argv + ["--stop_after_steps", "2"]).status == "stopped"
    assert (out / "checkpoint-2" / CHECKPOINT_MARKER).is_file()
    write_subset(pretrain_records[16:32], data)
    capsys.readouterr()
    outcome = run_in_process(argv + ["--stop_after_steps", "1"])
    said = capsys.readouterr().out
    assert f"the checkpoints in {out} cannot be resumed: training data changed" in said
    assert "resuming automatically" not in said
    assert outcome.status == "stopped" and outcome.state.global_step == 1
