"""The DeepSpeed backend (ZeRO-2 engine with the trainer's own AdamW and schedule; with and without
the optimizer offloaded to the CPU) gives the same updates as the plain torch backend over two
accumulated micro-batches, its checkpoints restore weights and schedule, and its final model has
parameters of their own (savable by safetensors). DeepSpeed runs here on the CPU in one gloo
process (fp32); on GPUs the trainer uses it with bf16. The offload case caught a DeepSpeed 0.19.8
gradient-accumulation bug (see ds_config.py).

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_deepspeed_backend.py -q`` (seconds,
plus a one-off ~1 min JIT build of a DeepSpeed C++ op on a fresh machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bettersynth.train.args import parse_args
from bettersynth.train.backend import DeepSpeedBackend, PlainBackend
from bettersynth.train.checkpoint import TrainerState, resume, save_checkpoint
from bettersynth.train.collate import Collator
from bettersynth.train.dataset import DataOptions, LazySupervisedDataset
from bettersynth.train.distributed import init_distributed
from bettersynth.train.ds_config import deepspeed_config
from bettersynth.train.loop import FitContext, train_step
from bettersynth.train.sampler import BatchLayout, StepBatchSampler

from train_helpers import TEST_IMAGE_SIZE_AUX, stage_argv

CONFIGS = Path(__file__).resolve().parents[2] / "toolkit" / "configs" / "deepspeed"


@pytest.fixture(scope="module")
def process_group():
    """One gloo group for the module: DeepSpeed caches the groups it derives from it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                            ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29517")):
            patch.setenv(name, value)
        yield init_distributed(single_process_group=True)
        torch.distributed.destroy_process_group()


def build(layout):
    from bettersynth.model.config import MGMOptions
    from bettersynth.model.io import build_mgm
    from bettersynth.train.stages import set_trainable

    torch.manual_seed(1024)
    model, tokenizer, preprocessor = build_mgm(
        layout.llm_dir, layout.vision_tower_dir, layout.vision_tower_aux_dir,
        MGMOptions(image_size_aux=TEST_IMAGE_SIZE_AUX, aux_drop_path_in_training=False))
    set_trainable(model, "finetune")
    return model.train(), tokenizer, preprocessor


def train_two_steps(backend, args, dist, dataset, collator, state):
    layout = BatchLayout(1, 2, 2)
    context = FitContext(args=args, dist=dist, backend=backend, dataset=dataset, collator=collator, layout=layout,
                         state=state, epoch_order=None, output_dir=None)
    losses = []
    for step in range(2):
        sampler = StepBatchSampler(list(range(8)), layout, 0, step, step + 1)
        losses.append(train_step(context, [collator([dataset[i] for i in indices]) for indices in sampler]).loss)
        state.global_step += 1
    return losses


@pytest.mark.parametrize("config_name", ["zero2.json", "zero2_offload.json"])
def test_deepspeed_engine_matches_plain_and_resumes(process_group, demo_layout_for_tests, tmp_path, config_name):
    layout = demo_layout_for_tests
    config_path = CONFIGS / config_name
    args = parse_args(stage_argv(layout, str(layout.finetune_json), tmp_path, "finetune", "--bf16", "False",
                                 "--warmup_ratio", "0", "--learning_rate", "1e-3", "--deepspeed", str(config_path)))
    model, tokenizer, preprocessor = build(layout)
    dataset = LazySupervisedDataset(DataOptions(layout.finetune_json, layout.finetune_dir, "pad", 2048,
                                                model.num_image_tokens), tokenizer, preprocessor)
    collator = Collator(tokenizer.pad_token_id, TEST_IMAGE_SIZE_AUX)

    def fresh_state():
        return TrainerState("finetune", 10, 30, 4, "global_tokens")

    plain = PlainBackend(build(layout)[0], args, process_group, total_steps=10)
    plain_losses = train_two_steps(plain, args, process_group, dataset, collator, fresh_state())
    trainable = sum(param.numel() for param in model.parameters() if param.requires_grad)
    config = deepspeed_config(config_path, args, world_size=1, hidden_size=model.llm.config.hidden_size,
                              trainable_parameters=trainable)
    engine = DeepSpeedBackend(model, args, process_group, total_steps=10, config=config)
    state = fresh_state()
    engine_losses = train_two_steps(engine, args, process_group, dataset, collator, state)
    assert engine_losses == pytest.approx(plain_losses, rel=1e-5)
    expected = dict(plain.model.named_parameters())
    trained = {name: param.detach().clone() for name, param in engine.model.named_parameters() if param.requires_grad}
    for name, param in trained.items():
        torch.testing.assert_close(param, expected[name], rtol=1e-5, atol=1e-6, msg=name)

    folder = save_checkpoint(tmp_path, state, engine, process_group, save_total_limit=None)
    assert (folder / "deepspeed").is_dir()
    learning_rate = engine.learning_rate()
    with torch.no_grad():
        for param in engine.model.parameters():
            if param.requires_grad:
                param.add_(1.0)
    restored = resume(folder, engine, process_group, fresh_state())
    assert restored.global_step == 2 and engine.learning_rate() == learning_rate
    for name, param in engine.model.named_parameters():
        if param.requires_grad:
            assert torch.equal(param, trained[name]), name
    from bettersynth.model import io as model_io

    final = engine.model  # trainable parameters are views into DeepSpeed's flat buffers
    model_io.save_checkpoint(final, tokenizer, tmp_path / "final")
    reloaded = dict(model_io.load_checkpoint(tmp_path / "final")[0].named_parameters())
    for name, param in final.named_parameters():
        assert torch.equal(param, reloaded[name]), name
