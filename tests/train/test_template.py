"""The gemma template: ids and labels of hand-written conversations against hand-computed lists.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_template.py -q``. Ids come from the
word-level tokenizer of conftest.py: <pad>0 <eos>1 <bos>2 <unk>3 <start_of_turn>4 <end_of_turn>5
\\n6 user7 model8 what9 is10 this11 a12 cat13 dog14 and15 now16 hello17 world18 red19 blue20.
"""

from __future__ import annotations

import pytest

from bettersynth.constants import IGNORE_INDEX as X
from bettersynth.constants import IMAGE_TOKEN_INDEX as IMG
from bettersynth.template import (ConversationError, encode_conversation, format_conversation,
                                        generation_prompt_ids)

BOS, EOS, SOT, EOT, NL, USER, MODEL = 2, 1, 4, 5, 6, 7, 8
WHAT, IS, THIS, A, CAT, DOG, AND, NOW, HELLO, WORLD, RED, BLUE = range(9, 21)


def human(text):
    return {"from": "human", "value": text}


def gpt(text):
    return {"from": "gpt", "value": text}


def test_one_round_with_image_moves_marker_to_front(tiny_tokenizer):
    conv = [human("what is this <image>"), gpt("a cat")]
    assert format_conversation(conv, has_image=True) == (
        "<start_of_turn>user\n<image>\nwhat is this<end_of_turn>\n"
        "<start_of_turn>model\na cat<end_of_turn>\n<eos>")
    enc = encode_conversation(conv, tiny_tokenizer, has_image=True)
    assert enc.input_ids == [BOS, SOT, USER, NL, IMG, NL, WHAT, IS, THIS, EOT, NL,
                             SOT, MODEL, NL, A, CAT, EOT, NL, EOS]
    assert enc.labels == [X, X, X, X, X, X, X, X, X, X, X,
                          X, X, X, A, CAT, EOT, NL, EOS]
    assert not enc.mismatch
    assert enc.num_images == 1


def test_one_round_text_only(tiny_tokenizer):
    enc = encode_conversation([human("hello world"), gpt("red")], tiny_tokenizer, has_image=False)
    assert enc.input_ids == [BOS, SOT, USER, NL, HELLO, WORLD, EOT, NL, SOT, MODEL, NL, RED, EOT, NL, EOS]
    assert enc.labels == [X, X, X, X, X, X, X, X, X, X, X, RED, EOT, NL, EOS]
    assert not enc.mismatch and enc.num_images == 0


def test_two_rounds_with_image(tiny_tokenizer):
    conv = [human("<image>\nwhat is this"), gpt("a dog"), human("and now"), gpt("blue")]
    enc = encode_conversation(conv, tiny_tokenizer, has_image=True)
    assert enc.input_ids == [BOS, SOT, USER, NL, IMG, NL, WHAT, IS, THIS, EOT, NL, SOT, MODEL, NL,
                             A, DOG, EOT, NL, EOS,
                             SOT, USER, NL, AND, NOW, EOT, NL, SOT, MODEL, NL, BLUE, EOT, NL, EOS]
    assert enc.labels == [X, X, X, X, X, X, X, X, X, X, X, X, X, X,
                          A, DOG, EOT, NL, EOS,
                          X, X, X, X, X, X, X, X, X, X, BLUE, EOT, NL, EOS]
    assert not enc.mismatch


def test_two_rounds_text_only(tiny_tokenizer):
    conv = [human("hello"), gpt("world"), human("what is this"), gpt("a cat and a dog")]
    enc = encode_conversation(conv, tiny_tokenizer, has_image=False)
    assert enc.input_ids == [BOS, SOT, USER, NL, HELLO, EOT, NL, SOT, MODEL, NL, WORLD, EOT, NL, EOS,
                             SOT, USER, NL, WHAT, IS, THIS, EOT, NL, SOT, MODEL, NL,
                             A, CAT, AND, A, DOG, EOT, NL, EOS]
    assert enc.labels == [X, X, X, X, X, X, X, X, X, X, WORLD, EOT, NL, EOS,
                          X, X, X, X, X, X, X, X, X, X, X,
                          A, CAT, AND, A, DOG, EOT, NL, EOS]


def test_leading_gpt_message_is_dropped(tiny_tokenizer):
    with_lead = encode_conversation([gpt("red"), human("hello"), gpt("world")], tiny_tokenizer, False)
    without = encode_conversation([human("hello"), gpt("world")], tiny_tokenizer, False)
    assert with_lead == without


def test_eos_inside_a_message_masks_the_whole_sample(tiny_tokenizer):
    # "<eos>" written in a human message is a special token: the per-round count breaks off at it,
    # disagrees with the real length, and the official rule masks everything.
    enc = encode_conversation([human("hello <eos> world"), gpt("red")], tiny_tokenizer, False)
    assert enc.mismatch
    assert enc.input_ids == [BOS, SOT, USER, NL, HELLO, EOS, WORLD, EOT, NL, SOT, MODEL, NL, RED, EOT, NL, EOS]
    assert enc.labels == [X] * len(enc.input_ids)


@pytest.mark.parametrize("conv, has_image, message", [
    ([{"from": "system", "value": "hi"}, gpt("red")], False, "unknown role 'system'"),
    ([human("hello"), human("world")], False, "must alternate"),
    ([human("<image>\nhello"), gpt("red"), human("<image>\nworld"), gpt("blue")], True, "several images"),
    ([human("hello"), gpt("red")], True, "found 0"),
    ([gpt("red")], False, "no human turn"),
    ([{"from": "human"}], False, "'from' and 'value'"),
])
def test_bad_conversations_raise(tiny_tokenizer, conv, has_image, message):
    with pytest.raises(ConversationError, match=message):
        encode_conversation(conv, tiny_tokenizer, has_image)


def test_generation_prompt(tiny_tokenizer):
    assert generation_prompt_ids("<image>\nwhat is this", tiny_tokenizer) == [
        BOS, SOT, USER, NL, IMG, NL, WHAT, IS, THIS, EOT, NL, SOT, MODEL, NL]
    assert generation_prompt_ids("hello", tiny_tokenizer) == [BOS, SOT, USER, NL, HELLO, EOT, NL, SOT, MODEL, NL]


def test_generation_prompt_is_the_training_prefix(tiny_tokenizer):
    conv = [human("<image>\nwhat is this"), gpt("a cat")]
    enc = encode_conversation(conv, tiny_tokenizer, has_image=True)
    prompt = generation_prompt_ids("<image>\nwhat is this", tiny_tokenizer)
    assert enc.input_ids[:len(prompt)] == prompt
    assert all(label == X for label in enc.labels[:len(prompt)])
    assert all(label != X for label in enc.labels[len(prompt):])


# --- the length check's limit (official: only while the counted length < model_max_length) ---------

# Round 2's human message holds "<eos>", so the per-round count stops after round 1 (14 ids with
# BOS) while the sample has 31: the rounds do not add up.
BROKEN_ROUND_2 = [human("hello"), gpt("world"), human("what <eos> is this"), gpt("a cat")]
BROKEN_IDS = [BOS, SOT, USER, NL, HELLO, EOT, NL, SOT, MODEL, NL, WORLD, EOT, NL, EOS,
              SOT, USER, NL, WHAT, EOS, IS, THIS, EOT, NL, SOT, MODEL, NL, A, CAT, EOT, NL, EOS]
BROKEN_COUNTED = [X, X, X, X, X, X, X, X, X, X, WORLD, EOT, NL, EOS,
                  X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X]


def test_counted_length_at_the_limit_keeps_the_counted_labels(tiny_tokenizer):
    # Counted 14 = model_max_length: the official code skips the check, so the over-long sample
    # (31 ids) keeps its labels even though the rounds do not add up.
    enc = encode_conversation(BROKEN_ROUND_2, tiny_tokenizer, False, model_max_length=14)
    assert enc.input_ids == BROKEN_IDS
    assert enc.labels == BROKEN_COUNTED
    assert not enc.mismatch


@pytest.mark.parametrize("model_max_length", [15, 31, 2048, None])  # None: the tokenizer's 2048
def test_counted_length_below_the_limit_masks_a_mismatched_sample(tiny_tokenizer, model_max_length):
    enc = encode_conversation(BROKEN_ROUND_2, tiny_tokenizer, False, model_max_length=model_max_length)
    assert enc.input_ids == BROKEN_IDS
    assert enc.labels == [X] * len(BROKEN_IDS)
    assert enc.mismatch


def test_the_limit_counts_the_image_placeholder_as_one_token(tiny_tokenizer):
    # Counted 16 with the placeholder as one id (the spliced length would be far longer): the
    # official check compares the former.
    conv = [human("<image>\nhello"), gpt("world"), human("what <eos> is this"), gpt("a cat")]
    ids = [BOS, SOT, USER, NL, IMG, NL, HELLO, EOT, NL, SOT, MODEL, NL, WORLD, EOT, NL, EOS,
           SOT, USER, NL, WHAT, EOS, IS, THIS, EOT, NL, SOT, MODEL, NL, A, CAT, EOT, NL, EOS]
    kept = encode_conversation(conv, tiny_tokenizer, True, model_max_length=16)
    assert kept.input_ids == ids and not kept.mismatch
    assert kept.labels == [X, X, X, X, X, X, X, X, X, X, X, X, WORLD, EOT, NL, EOS] + [X] * 17
    masked = encode_conversation(conv, tiny_tokenizer, True, model_max_length=17)
    assert masked.input_ids == ids and masked.mismatch
    assert masked.labels == [X] * len(ids)


def test_a_sample_that_adds_up_is_labelled_the_same_at_any_limit(tiny_tokenizer):
    conv = [human("hello"), gpt("world"), human("what is this"), gpt("a cat and a dog")]
    full = encode_conversation(conv, tiny_tokenizer, False)
    for limit in (2, 14, len(full.input_ids), len(full.input_ids) + 1):
        assert encode_conversation(conv, tiny_tokenizer, False, model_max_length=limit) == full
