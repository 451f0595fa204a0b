"""MGMForCausalLM: loss against a plain full-logits reference, graph connectivity, the drop-path
quirk, gradient checkpointing, the Gemma activation option, and generation (batched = one-by-one,
images encoded a few at a time = all at once, cached = uncached, stops at eos).

Run: ``HF_HUB_OFFLINE=1 python -m pytest tests/model/test_mgm.py -q``
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bettersynth.constants import IGNORE_INDEX as X
from bettersynth.constants import IMAGE_TOKEN_INDEX as IMG
from bettersynth.model.io import build_mgm
from bettersynth.model.splice import pad_sequences
from bettersynth.train.stages import set_trainable

from model_helpers import TINY_AUX_SIZE, tiny_options


def make_batch(rows: list[tuple[list[int], list[int]]], has_image: list[bool], seed: int = 0) -> dict:
    """Right-padded training batch from (ids, labels) rows; images random where has_image, else zeros."""
    ids, mask = pad_sequences([r[0] for r in rows], 0, "right")
    labels, _ = pad_sequences([r[1] for r in rows], X, "right")
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(len(rows), 3, TINY_AUX_SIZE, TINY_AUX_SIZE, generator=generator)
    images[~torch.tensor(has_image)] = 0.0
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "images_aux": images,
            "has_image": torch.tensor(has_image)}


def training_batch() -> dict:
    long_text = [10 + (i % 40) for i in range(60)]  # 60 text + 16 image tokens > model_max_length 64
    rows = [([2, 4, IMG, 6, 8, 9, 10, 5, 6, 11, 12, 5, 6, 1], [X, X, X, X, X, X, X, X, X, 11, 12, 5, 6, 1]),
            ([2, 4, 15, 16, 5, 6, 17, 5, 6, 1], [X, X, X, X, X, X, 17, 5, 6, 1]),
            ([2, IMG] + long_text, [X, X] + long_text)]
    return make_batch(rows, [True, False, True])


def reference_loss(model, batch) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Spec semantics (transformers 4.38): raw token embeddings and image embeddings, spliced, ALL
    multiplied by sqrt(hidden), truncated, right-padded; full logits; mean cross-entropy."""
    llm = model.llm
    table = llm.get_input_embeddings().weight
    normalizer = llm.config.hidden_size ** 0.5  # a Python float, as in 4.38
    images = model.encode_images(batch["images_aux"])
    max_len = model.options.model_max_length
    rows, row_labels = [], []
    for b in range(len(batch["input_ids"])):
        keep = batch["attention_mask"][b]
        parts, labels = [], []
        for token, label in zip(batch["input_ids"][b][keep].tolist(), batch["labels"][b][keep].tolist()):
            if token == IMG:
                parts.append(images[b])
                labels += [X] * images.shape[1]
            else:
                parts.append(table[token][None])
                labels.append(label)
        rows.append((torch.cat(parts) * normalizer)[:max_len])
        row_labels.append(labels[:max_len])
    width = max(len(r) for r in rows)
    embeds = torch.zeros(len(rows), width, table.shape[1])
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    labels = torch.full((len(rows), width), X)
    for b, row in enumerate(rows):
        embeds[b, :len(row)], mask[b, :len(row)] = row, 1
        labels[b, :len(row)] = torch.tensor(row_labels[b])
    logits = llm(inputs_embeds=embeds, attention_mask=mask).logits
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=X)
    return loss, int((labels[:, 1:] != X).sum()), logits


def test_loss_equals_full_logits_reference(tiny_mgm):
    model = tiny_mgm[0].eval()
    batch = training_batch()
    out = model(**batch, return_logits=True)
    expected_loss, expected_tokens, expected_logits = reference_loss(model, batch)
    assert int(out.num_tokens) == expected_tokens == 5 + 4 + 47  # third row: 64 - 1 (BOS) - 16 (image) answer tokens
    torch.testing.assert_close(out.loss_sum / out.num_tokens, expected_loss, rtol=1e-5, atol=1e-6)
    real = torch.zeros_like(expected_logits[..., 0], dtype=torch.bool)
    for b, length in enumerate([14 - 1 + 16, 10, 64]):
        real[b, :length] = True
    torch.testing.assert_close(out.logits[real], expected_logits[real], rtol=1e-5, atol=1e-5)


def test_gradients_match_reference(tiny_mgm):
    model = tiny_mgm[0].eval()
    set_trainable(model, "finetune")
    batch = training_batch()
    out = model(**batch)
    grads = torch.autograd.grad(out.loss_sum / out.num_tokens, [model.projector[0].weight, model.llm.model.norm.weight])
    expected = reference_loss(model, batch)[0]
    expected_grads = torch.autograd.grad(expected, [model.projector[0].weight, model.llm.model.norm.weight])
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_text_only_batch_keeps_the_image_path_in_the_graph(tiny_mgm):
    model = tiny_mgm[0].eval()
    set_trainable(model, "pretrain")
    batch = make_batch([([2, 4, 15, 5, 6, 17, 1], [X, X, X, X, X, 17, 1])], [False])
    out = model(**batch)
    out.loss_sum.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
            assert torch.count_nonzero(param.grad) == 0, name


def test_batch_without_supervised_tokens_gives_zero(tiny_mgm):
    model = tiny_mgm[0].eval()
    out = model(**make_batch([([2, IMG, 7, 8], [X, X, X, X])], [True]))
    assert int(out.num_tokens) == 0 and float(out.loss_sum.detach()) == 0.0
    out.loss_sum.backward()


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_dirs):
    torch.manual_seed(1024)
    model, _, _ = build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], tiny_dirs["aux"],
                            tiny_options(aux_drop_path_in_training=False))
    set_trainable(model, "finetune")
    model.train()
    batch = training_batch()
    plain = model(**batch)
    plain.loss_sum.backward()
    plain_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    model.enable_gradient_checkpointing()
    checked = model(**batch)
    checked.loss_sum.backward()
    torch.testing.assert_close(checked.loss_sum, plain.loss_sum)
    for name, param in model.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param.grad, plain_grads[name], rtol=1e-5, atol=1e-7, msg=name)


def test_drop_path_quirk_follows_training_mode(tiny_mgm):
    model = tiny_mgm[0]
    images = torch.randn(8, 3, TINY_AUX_SIZE, TINY_AUX_SIZE)  # ~5 dropped (sample, block) pairs a call
    model.train()
    assert model.aux_tower.training
    torch.manual_seed(0)
    first = model.encode_images(images)
    assert not torch.allclose(first, model.encode_images(images))
    model.eval()
    torch.testing.assert_close(model.encode_images(images), model.encode_images(images))


def test_drop_path_off_keeps_the_aux_tower_in_eval(tiny_dirs):
    model, _, _ = build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], tiny_dirs["aux"],
                            tiny_options(aux_drop_path_in_training=False))
    images = torch.randn(2, 3, TINY_AUX_SIZE, TINY_AUX_SIZE)
    model.eval()
    expected = model.encode_images(images)
    model.train()
    assert not model.aux_tower.training and model.llm.training
    torch.testing.assert_close(model.encode_images(images), expected)


@pytest.mark.parametrize("activation, value", [("exact", 0.8413447460685429), ("tanh", 0.8411919906082768)])
def test_gemma_activation_option(tiny_dirs, activation, value):
    model, _, _ = build_mgm(tiny_dirs["llm"], tiny_dirs["clip"], tiny_dirs["aux"],
                            tiny_options(gemma_activation=activation))
    for layer in model.llm.model.layers:
        torch.testing.assert_close(layer.mlp.act_fn(torch.tensor(1.0, dtype=torch.float64)),
                                   torch.tensor(value, dtype=torch.float64), rtol=0, atol=1e-12)


# --- generation -----------------------------------------------------------------------------

PROMPTS = [([2, 4, IMG, 7, 8, 5, 6, 4], True), ([2, 4, 9, 10, 11, 12, 13, 14, 5, 6], False),
           ([2, IMG, 3, 4], True), ([2, 4, 20, 5, 6], False), ([2, 4, IMG, 21, 22, 23, 24, 25, 5, 6, 4], True)]


def prompt_images(seed: int = 3) -> torch.Tensor:
    images = torch.randn(len(PROMPTS), 3, TINY_AUX_SIZE, TINY_AUX_SIZE, generator=torch.Generator().manual_seed(seed))
    images[~torch.tensor([has for _, has in PROMPTS])] = 0.0
    return images


def until_eos(tokens: list[int], eos: int) -> list[int]:
    return tokens[:tokens.index(eos) + 1] if eos in tokens else tokens


def test_batched_left_padded_generation_equals_one_by_one(tiny_mgm):
    model = tiny_mgm[0].eval()
    images = prompt_images()
    has_image = torch.tensor([has for _, has in PROMPTS])
    ids, mask = pad_sequences([p for p, _ in PROMPTS], 0, "left")
    batched = model.generate(ids, mask, images, has_image, max_new_tokens=12)
    for row, (prompt, has) in enumerate(PROMPTS):
        single = model.generate(torch.tensor([prompt]), torch.ones(1, len(prompt), dtype=torch.bool),
                                images[row:row + 1], has_image[row:row + 1], max_new_tokens=12)
        assert until_eos(batched[row].tolist(), 1) == until_eos(single[0].tolist(), 1), row
    assert len({tuple(r) for r in batched.tolist()}) > 1  # not a degenerate model


def test_cached_generation_equals_uncached_greedy_loop(tiny_mgm):
    model = tiny_mgm[0].eval()
    prompt, _ = PROMPTS[0]
    ids, mask = torch.tensor([prompt]), torch.ones(1, len(prompt), dtype=torch.bool)
    image, has_image = prompt_images()[:1], torch.tensor([True])
    generated = model.generate(ids, mask, image, has_image, max_new_tokens=10, eos_token_id=-1)
    with torch.no_grad():
        embeds = model.embed(ids, mask, image, has_image, "left").inputs_embeds
        expected = []
        for _ in range(10):
            logits = model.llm(inputs_embeds=embeds, use_cache=False).logits[:, -1]
            token = logits.argmax(-1)
            expected.append(int(token))
            embeds = torch.cat([embeds, model.llm.get_input_embeddings()(token)[:, None]], dim=1)
    assert generated[0].tolist() == expected


def test_images_encoded_a_few_at_a_time_equal_all_at_once(tiny_mgm):
    model = tiny_mgm[0].eval()
    images = prompt_images()
    all_at_once = model.encode_images(images)
    for per_pass in (1, 2, 4, 5, 9):
        torch.testing.assert_close(model.encode_images(images, images_per_pass=per_pass), all_at_once,
                                   rtol=1e-5, atol=1e-6, msg=f"{per_pass} images a pass")
    has_image = torch.tensor([has for _, has in PROMPTS])
    ids, mask = pad_sequences([p for p, _ in PROMPTS], 0, "left")
    assert torch.equal(model.generate(ids, mask, images, has_image, max_new_tokens=8, images_per_pass=2),
                       model.generate(ids, mask, images, has_image, max_new_tokens=8))
    with pytest.raises(ValueError, match="images_per_pass must be >= 1, got 0"):
        model.encode_images(images, images_per_pass=0)


def test_rows_that_share_an_image_have_it_encoded_once_with_the_same_answers(tiny_mgm):
    # rows 0, 2 and 4 hold images: given as two distinct images, row 4 naming row 0's
    model = tiny_mgm[0].eval()
    images = prompt_images()
    images[4] = images[0]
    has_image = torch.tensor([has for _, has in PROMPTS])
    ids, mask = pad_sequences([p for p, _ in PROMPTS], 0, "left")
    distinct, image_rows = images[[0, 1, 2]], torch.tensor([0, 1, 2, 1, 0])  # rows 1, 3: the zero image
    assert torch.equal(model.generate(ids, mask, distinct, has_image, max_new_tokens=8, image_rows=image_rows),
                       model.generate(ids, mask, images, has_image, max_new_tokens=8))
    with pytest.raises(ValueError, match=r"image_rows must name one image per row \(5\), got shape \(4,\)"):
        model.generate(ids, mask, distinct, has_image, max_new_tokens=2, image_rows=image_rows[:4])


def test_generation_stops_at_eos(tiny_mgm):
    model = tiny_mgm[0].eval()
    prompt, _ = PROMPTS[1]
    args = (torch.tensor([prompt]), torch.ones(1, len(prompt), dtype=torch.bool),
            torch.zeros(1, 3, TINY_AUX_SIZE, TINY_AUX_SIZE), torch.tensor([False]))
    first = int(model.generate(*args, max_new_tokens=5)[0, 0])
    assert model.generate(*args, max_new_tokens=5, eos_token_id=first).tolist() == [[first]]


def test_generation_needs_eval_mode(tiny_mgm):
    model = tiny_mgm[0].train()
    with pytest.raises(RuntimeError, match="eval mode"):
        model.generate(torch.tensor([[2, 4]]), torch.ones(1, 2, dtype=torch.bool),
                       torch.zeros(1, 3, TINY_AUX_SIZE, TINY_AUX_SIZE), torch.tensor([False]), max_new_tokens=2)


def test_wrong_image_size_is_an_error(tiny_mgm):
    model = tiny_mgm[0].eval()
    with pytest.raises(ValueError, match="images_aux must be"):
        model.encode_images(torch.zeros(1, 3, 32, 32))
