"""Batched answers equal one-by-one answers on the demo checkpoint (left padding, sorted batches).

    python -m pytest tests/eval/test_generate.py -q
"""


import pytest

from bettersynth.eval.files import EvalDataError
from bettersynth.eval.generate import AnswerEngine, GenerationSettings, ImageSource
from bettersynth.eval.mmbench import read_items
from bettersynth.eval.textvqa import read_questions


@pytest.fixture(scope="module")
def engine(demo_checkpoint):
    return AnswerEngine.load(demo_checkpoint, device="cpu")


def _textvqa_requests(layout, count):
    questions = read_questions(layout.textvqa_questions)[:count]
    return [(q.prompt, ImageSource(path=layout.textvqa_images / q.image)) for q in questions]


def test_batched_equals_one_by_one(engine, demo_eval_assets):
    requests = _textvqa_requests(demo_eval_assets, 10)
    requests += [(item.user_message, ImageSource(base64_data=item.image_b64, label=str(item.index)))
                 for item in read_items(demo_eval_assets.mmbench_tsv)[:6]]
    single = engine.answer(requests, GenerationSettings(batch_size=1, max_new_tokens=6))
    batched = engine.answer(requests, GenerationSettings(batch_size=5, max_new_tokens=6))
    assert batched == single
    assert len(set(single)) > len(single) // 2  # the answers really depend on the inputs
    assert all(answer == answer.strip() for answer in single)


def test_requests_of_one_image_and_length_share_a_batch_and_its_encoding(engine, demo_eval_assets):
    """MMBench's circular copies: the same image (base64 text) and prompt length, other labels."""
    items = read_items(demo_eval_assets.mmbench_tsv)[:3]
    requests = [(item.user_message, ImageSource(base64_data=item.image_b64, label=f"copy {copy} of {item.index}"))
                for copy in range(3) for item in items]
    before = engine.images_encoded
    single = engine.answer(requests, GenerationSettings(batch_size=1, max_new_tokens=6))
    assert engine.images_encoded - before == 9
    before = engine.images_encoded
    batched = engine.answer(requests, GenerationSettings(batch_size=3, max_new_tokens=6))
    assert engine.images_encoded - before == 3  # each batch holds one question's three copies
    assert batched == single and single[:3] * 3 == single


def test_answers_come_back_in_request_order(engine, demo_eval_assets):
    requests = _textvqa_requests(demo_eval_assets, 6)
    forward = engine.answer(requests, GenerationSettings(batch_size=4, max_new_tokens=4))
    backward = engine.answer(requests[::-1], GenerationSettings(batch_size=4, max_new_tokens=4))
    assert backward == forward[::-1]


@pytest.mark.parametrize("workers", [0, 1])
def test_undecodable_image_is_an_error(engine, demo_eval_assets, tmp_path, workers):
    """The image's own message, also from a data-loader worker (not the worker's traceback)."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    requests = _textvqa_requests(demo_eval_assets, 2) + [("<image>\nWhat?", ImageSource(path=broken))]
    with pytest.raises(EvalDataError) as raised:
        engine.answer(requests, GenerationSettings(batch_size=2, max_new_tokens=2, num_workers=workers))
    assert str(raised.value) == f"{broken}: UnidentifiedImageError: cannot identify image file '{broken}'"


def test_prompt_ids_follow_the_template(engine):
    ids = engine.prompt_ids("<image>\nWhat is it?")
    tokenizer = engine.tokenizer
    assert ids[0] == tokenizer.bos_token_id and ids.count(-200) == 1
    text = tokenizer.decode([i for i in ids if i >= 0])
    assert text.endswith("<start_of_turn>model\n") and "<start_of_turn>user\n" in text


@pytest.mark.gpu
@pytest.mark.xfail(strict=False, reason="bf16 on GPU: batch-shape-dependent (and run-to-run varying) kernel "
                   "rounding flips a late greedy token now and then; measured on an H100 with the demo model: "
                   "0, 0, 1 and 2 of 24 answers differed in four runs, while fp32 (CPU test above) is exact")
def test_batched_equals_one_by_one_bf16_on_gpu(demo_checkpoint, demo_eval_assets):
    """The eval's GPU setting (bf16, image workers): batching should not change the answers."""
    engine = AnswerEngine.load(demo_checkpoint, device="cuda")
    requests = _textvqa_requests(demo_eval_assets, 24)
    single = engine.answer(requests, GenerationSettings(batch_size=1, max_new_tokens=8, num_workers=2))
    batched = engine.answer(requests, GenerationSettings(batch_size=8, max_new_tokens=8, num_workers=2))
    differing = [(n, one, many) for n, (one, many) in enumerate(zip(single, batched)) if one != many]
    assert not differing, f"{len(differing)} of {len(single)} answers differ (request, single, batched): {differing}"
