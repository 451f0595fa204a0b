"""Shared fixtures of the training tests: a tiny word-level Gemma-style tokenizer whose ids can be
written out by hand.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train -q``.

Vocabulary: ``<pad>``=0 ``<eos>``=1 ``<bos>``=2 ``<unk>``=3 ``<start_of_turn>``=4
``<end_of_turn>``=5, then ``\\n``=6 ``user``=7 ``model``=8 and the words of WORDS from 9 on.
Text splits on spaces (dropped) and newlines (kept as the token ``\\n``); the special tokens are
recognised anywhere in the text; a post-processor prepends ``<bos>``, as Gemma's tokenizer does.
"""

from __future__ import annotations

import pytest

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
WORDS = ["\n", "user", "model", "what", "is", "this", "a", "cat", "dog", "and", "now", "hello",
         "world", "red", "blue", "the", "sky", "sea", "one", "two", "three", "four", "five"]
VOCAB = {token: index for index, token in enumerate(SPECIALS + WORDS)}


def build_tiny_tokenizer():
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(" +"), behavior="removed"),
        pre_tokenizers.Split("\n", behavior="isolated"),
    ])
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIALS])
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", VOCAB["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        model_max_length=2048, padding_side="right")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def vocab() -> dict[str, int]:
    return dict(VOCAB)
