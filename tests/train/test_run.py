"""Whole stages on the demo models (CPU, tiny): pretrain then finetune write their files, the
finetune checkpoint reloads to identical logits, 8 samples are over-fitted, a finished stage is not
redone, bad data stops the run naming the sample.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_run.py -q`` (about a minute or two).
"""

from __future__ import annotations

import json

import pytest
import torch

from bettersynth.train.checkpoint import FINAL_MARKER

from train_helpers import run_in_process, stage_argv, write_subset


@pytest.fixture(scope="module")
def pretrained(demo_layout_for_tests, pretrain_records, tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    data = write_subset(pretrain_records[:8], root / "pretrain.json")
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, root / "out", "pretrain"))
    return root / "out", outcome


def test_pretrain_writes_its_outputs(pretrained):
    out, outcome = pretrained
    assert outcome.status == "finished" and outcome.state.global_step == 2  # 8 samples, global batch 4
    for name in ("mm_projector.bin", "config.json", "train_args.json", "trainer_state.json", FINAL_MARKER):
        assert (out / name).is_file(), name
    projector = torch.load(out / "mm_projector.bin", weights_only=True)
    assert {key.split(".")[1] for key in projector} == {"mm_projector", "vlm_uni_query_projector",
                                                        "vlm_uni_aux_projector", "vlm_uni_val_projector"}
    trained = dict(outcome.model.named_parameters())
    assert torch.equal(projector["model.mm_projector.0.weight"], trained["projector.0.weight"].detach())
    config = json.loads((out / "config.json").read_text())
    assert config["stage"] == "pretrain" and config["train_args"]["tune_mm_mlp_adapter"] is True
    state = json.loads((out / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"]] == [1, 2]
    assert all({"loss", "learning_rate", "samples_per_second", "tokens_per_second", "data_wait_share"} <= set(e)
               for e in state["log_history"])
    assert all(0.0 <= e["data_wait_share"] <= 1.0 for e in state["log_history"])
    assert state["totals"]["samples"] == 8


def test_compiled_pretrain_follows_the_eager_one(pretrained, demo_layout_for_tests, pretrain_records, tmp_path):
    """--torch_compile True: same seed, data and drop-path draws, so the same losses and projector."""
    data = write_subset(pretrain_records[:8], tmp_path / "pretrain.json")
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, tmp_path / "out", "pretrain",
                                        "--torch_compile", "True"))
    assert outcome.status == "finished" and outcome.state.global_step == 2
    eager_log = json.loads((pretrained[0] / "trainer_state.json").read_text())["log_history"]
    compiled_log = json.loads((tmp_path / "out" / "trainer_state.json").read_text())["log_history"]
    assert [e["loss"] for e in compiled_log] == pytest.approx([e["loss"] for e in eager_log], rel=1e-5)
    eager = torch.load(pretrained[0] / "mm_projector.bin", weights_only=True)
    compiled = torch.load(tmp_path / "out" / "mm_projector.bin", weights_only=True)
    assert list(compiled) == list(eager)
    for key, value in eager.items():
        torch.testing.assert_close(compiled[key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_finetune_checkpoint_reloads_to_identical_logits(pretrained, demo_layout_for_tests, finetune_records,
                                                         tmp_path):
    from bettersynth.model.io import load_checkpoint
    from bettersynth.train.collate import Collator
    from bettersynth.template import encode_conversation

    adapter = str(pretrained[0] / "mm_projector.bin")
    data = write_subset(finetune_records[:8], tmp_path / "finetune.json")
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, tmp_path / "out", "finetune", adapter=adapter))
    out = tmp_path / "out"
    assert outcome.status == "finished"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
                 "preprocessor_config.json", "trainer_state.json", "train_args.json", FINAL_MARKER):
        assert (out / name).is_file(), name
    assert str(demo_layout_for_tests.root) not in (out / "config.json").read_text()  # relocatable
    reloaded, tokenizer, preprocessor = load_checkpoint(out)
    trained = outcome.model.eval()
    record = next(r for r in finetune_records[:8] if "image" in r)
    encoded = encode_conversation(record["conversations"], tokenizer, has_image=True)
    image = preprocessor(preprocessor.load(demo_layout_for_tests.finetune_dir / record["image"]), aspect="pad")
    from bettersynth.train.dataset import Example
    example = Example(0, "x", torch.tensor(encoded.input_ids), torch.tensor(encoded.labels), image, 0, 0, False, False)
    batch, _ = Collator(tokenizer.pad_token_id, image.shape[-1])([example])
    with torch.no_grad():
        expected = trained(**batch, return_logits=True)
        got = reloaded(**batch, return_logits=True)
    assert torch.equal(expected.logits, got.logits) and torch.equal(expected.loss_sum, got.loss_sum)


def test_overfitting_eight_samples_cuts_the_loss_by_ninety_percent(demo_layout_for_tests, finetune_records,
                                                                    tmp_path):
    data = write_subset(finetune_records[:8], tmp_path / "eight.json")
    # 30 full-batch steps at a constant 1e-2 after warmup: enough for the tiny LLM to memorise
    # its 101 supervised tokens (the official cosine decay would stop it half-way in 30 steps).
    argv = stage_argv(demo_layout_for_tests, data, tmp_path / "out", "finetune", "--num_train_epochs", "30",
                      "--learning_rate", "1e-2", "--lr_scheduler_type", "constant_with_warmup",
                      "--aux_drop_path_in_training", "False", per_device=4, accumulation=2)
    outcome = run_in_process(argv)
    losses = [entry["loss"] for entry in outcome.state.log_history]
    assert len(losses) == 30
    assert losses[-1] < 0.1 * losses[0], losses


def test_finished_stage_is_not_redone_unless_overwritten(pretrained, demo_layout_for_tests, pretrain_records,
                                                         tmp_path):
    out, _ = pretrained
    data = write_subset(pretrain_records[:8], tmp_path / "pretrain.json")
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, out, "pretrain"))
    assert outcome.status == "already_finished"
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in out.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    (copy / "checkpoint-1").mkdir()  # a stale checkpoint: overwrite must not resume from it
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, copy, "pretrain",
                                        "--overwrite_output_dir", "True"))
    assert outcome.status == "finished" and outcome.state.global_step == 2
    assert not (copy / "checkpoint-1").exists()


def test_bad_data_stops_naming_the_sample_or_is_skipped(demo_layout_for_tests, pretrain_records, tmp_path):
    from bettersynth.train.args import parse_args
    from bettersynth.train.run import run

    records = [dict(record) for record in pretrain_records[:9]]
    records[3]["image"] = "images/missing/nowhere.jpg"
    data = write_subset(records, tmp_path / "bad.json")
    out = tmp_path / "out"
    assert run(parse_args(stage_argv(demo_layout_for_tests, data, out, "pretrain"))) == 1
    log = (out / "train.log").read_text()
    assert records[3]["id"] in log and "nowhere.jpg" in log and "--skip_bad_samples" in log
    assert not (out / FINAL_MARKER).exists()
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, out, "pretrain", "--skip_bad_samples", "True"))
    assert outcome.status == "finished" and outcome.state.totals["samples"] == 8


def test_undecodable_image_in_a_loader_worker(demo_layout_for_tests, pretrain_records, tmp_path):
    from bettersynth.train.args import parse_args
    from bettersynth.train.run import run

    images = tmp_path / "images"
    records = [dict(record) for record in pretrain_records[:8]]
    for record in records:
        target = images / record["image"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((demo_layout_for_tests.seed_dir / record["image"]).read_bytes())
    (images / records[5]["image"]).write_bytes(b"\xff\xd8 truncated")
    data = write_subset(records, tmp_path / "data.json")
    extra = ["--image_folder", str(images), "--dataloader_num_workers", "1"]
    out = tmp_path / "out"
    assert run(parse_args(stage_argv(demo_layout_for_tests, data, out, "pretrain", *extra))) == 1
    log = (out / "train.log").read_text()
    assert records[5]["id"] in log and records[5]["image"] in log and "cannot be loaded" in log
    outcome = run_in_process(stage_argv(demo_layout_for_tests, data, out, "pretrain", *extra,
                                        "--skip_bad_samples", "True"))
    assert outcome.status == "finished"  # 2 steps of 4: every record is used once, the broken one skipped
    assert outcome.state.totals["samples"] == 7 and outcome.state.totals["skipped_samples"] == 1
    assert outcome.state.skipped_ids == [records[5]["id"]]


def test_fewer_samples_than_one_global_batch_stop_with_one_line(demo_layout_for_tests, pretrain_records, tmp_path):
    from bettersynth.train.args import parse_args
    from bettersynth.train.run import run

    data = write_subset(pretrain_records[:3], tmp_path / "three.json")  # global batch 4
    out = tmp_path / "out"
    assert run(parse_args(stage_argv(demo_layout_for_tests, data, out, "pretrain"))) == 1
    log = (out / "train.log").read_text()
    assert "the data set has 3 usable samples, fewer than one global batch" in log and "Traceback" not in log
    assert not (out / FINAL_MARKER).exists()
