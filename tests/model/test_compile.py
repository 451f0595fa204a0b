"""``MGMForCausalLM.compile_blocks``: the compiled model computes what the eager one does.

Loss and every trainable gradient of the finetune stage (LLM, mining, projector) match the eager
model's on batches of two different sequence lengths (the LLM layers compile for any length), with
the ConvNeXt drop path active: the same seed drops the same samples compiled or not. Compiling
keeps the state-dict keys. Tiny demo-layout models on the CPU (inductor's C++ backend; about a
minute, most of it compiling).

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_compile.py -q``
"""

from __future__ import annotations

import copy

import torch

from bettersynth.constants import IGNORE_INDEX as X
from bettersynth.constants import IMAGE_TOKEN_INDEX as IMG
from bettersynth.model.io import build_mgm
from bettersynth.train.stages import set_trainable

from model_helpers import tiny_options
from test_mgm import make_batch, training_batch


def shorter_batch() -> dict:
    rows = [([2, IMG, 6, 8, 9, 1], [X, X, X, 8, 9, 1]), ([2, 4, IMG, 7, 1], [X, X, X, 7, 1])]
    return make_batch(rows, [True, True], seed=3)


def loss_and_gradients(model, batch: dict, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = model(**batch)
    out.loss_sum.backward()
    return out.loss_sum.detach(), {name: param.grad.clone() for name, param in model.named_parameters()
                                   if param.requires_grad}


def test_compiled_blocks_give_the_eager_loss_and_gradients(tiny_dirs):
    torch.manual_seed(1024)
    eager, _, _ = build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], tiny_dirs["aux"], tiny_options())
    set_trainable(eager, "finetune")
    eager.train()
    assert eager.aux_tower.training  # the drop path is on
    compiled = copy.deepcopy(eager)
    compiled.compile_blocks()
    assert list(compiled.state_dict()) == list(eager.state_dict())

    for batch, seed in ((training_batch(), 5), (shorter_batch(), 6), (training_batch(), 7)):
        eager_loss, eager_grads = loss_and_gradients(eager, batch, seed)
        compiled_loss, compiled_grads = loss_and_gradients(compiled, batch, seed)
        torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-6)
        assert set(compiled_grads) == set(eager_grads)
        for name, grad in eager_grads.items():
            # float32 summed in another order: equal to 1e-5 of the largest entry (1e-6 for ~zero grads)
            scale = float(grad.abs().max())
            torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-4, atol=max(1e-5 * scale, 1e-6),
                                       msg=lambda text, name=name: f"{name}: {text}")

    # The comparison above saw dropped samples: without the drop path the loss is another one.
    eager.aux_tower.eval()
    no_drop_loss, _ = loss_and_gradients(eager, training_batch(), 5)
    eager.aux_tower.train()
    drop_loss, _ = loss_and_gradients(eager, training_batch(), 5)
    assert not torch.allclose(no_drop_loss, drop_loss)
