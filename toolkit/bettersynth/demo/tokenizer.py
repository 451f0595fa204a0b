"""Small tokenizers for the tiny demo models, trained offline on the demo text with `tokenizers`.

Each one keeps the behaviour of the real model's tokenizer that the toolkit relies on:
- `gemma_tokenizer`: SentencePiece-style BPE ("▁" for spaces) with byte fallback, so any text
  encodes; Gemma's special ids <pad>=0 <eos>=1 <bos>=2 <unk>=3, then <start_of_turn>,
  <end_of_turn>; BOS added automatically. Loads back as transformers' `GemmaTokenizer`.
- `clip_tokenizer`: CLIP's lower-cased byte-level BPE with "</w>" word ends and
  <|startoftext|>/<|endoftext|>. Built from a vocab dict + merges (transformers 5 ignores
  vocab_file/merges_file arguments of `CLIPTokenizer`).
- `bert_tokenizer`: lower-cased WordPiece with [PAD]=0 [UNK] [CLS] [SEP] [MASK] and [DEC] (BLIP's text side).
- `opt_tokenizer`: GPT-2-style byte-level BPE with OPT's <s>=0 <pad>=1 </s>=2 <unk>=3 and OPT's
  vocab size, so BLIP-2's `<image>` gets OPT's id 50265 (BLIP-2 OPT).

Used by `bettersynth.demo.models`; not run on its own.
"""

from __future__ import annotations

import json
import string
from collections import Counter

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertTokenizer, CLIPTokenizer, GemmaTokenizer, GPT2Tokenizer

OPT_FILLER_PREFIX = "madeupword"
GEMMA_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>")
CLIP_SPLIT = Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")


def _trained_bpe(texts: list[str], normalizer, pre_tokenizer, trainer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a BPE model on `texts`; return its vocab (token -> id) and merges in rank order."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.train_from_iterator(texts, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    return model["vocab"], [tuple(pair) for pair in model["merges"]]


def _append(vocab: dict[str, int], tokens) -> None:
    for token in tokens:
        vocab.setdefault(token, len(vocab))


def gemma_tokenizer(texts: list[str], vocab_size: int = 1024) -> GemmaTokenizer:
    """Gemma-style tokenizer: specials, the 256 byte-fallback tokens <0x00>..<0xFF>, then trained pieces."""
    learned_size = vocab_size - len(GEMMA_SPECIALS) - 256
    trained, merges = _trained_bpe(
        texts, normalizers.Replace(" ", "▁"), pre_tokenizers.Split("▁", "merged_with_next"),
        trainers.BpeTrainer(vocab_size=learned_size, show_progress=False))
    vocab: dict[str, int] = {}
    _append(vocab, GEMMA_SPECIALS)
    _append(vocab, (f"<0x{b:02X}>" for b in range(256)))
    _append(vocab, sorted(trained, key=trained.__getitem__))
    # add_bos_token makes transformers write the "<bos> $A" post-processor into tokenizer.json
    return GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False,
                          mask_token=None, additional_special_tokens=list(GEMMA_SPECIALS[4:]))


def clip_tokenizer(texts: list[str], vocab_size: int = 1024) -> CLIPTokenizer:
    """CLIP-style tokenizer: 256 byte symbols, the same with "</w>", trained merges, then the two specials."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    trained, merges = _trained_bpe(
        texts,
        normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]),
        pre_tokenizers.Sequence([pre_tokenizers.Split(CLIP_SPLIT, behavior="removed", invert=True),
                                 pre_tokenizers.ByteLevel(add_prefix_space=False)]),
        trainers.BpeTrainer(vocab_size=vocab_size - 2 * len(alphabet) - 2, end_of_word_suffix="</w>",
                            initial_alphabet=alphabet, show_progress=False))
    vocab: dict[str, int] = {}
    _append(vocab, alphabet)
    _append(vocab, (f"{symbol}</w>" for symbol in alphabet))
    _append(vocab, sorted(trained, key=trained.__getitem__))
    _append(vocab, ("<|startoftext|>", "<|endoftext|>"))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def bert_tokenizer(texts: list[str], vocab_size: int = 1024) -> BertTokenizer:
    """BERT-style lower-cased WordPiece tokenizer (BLIP uses one, with an extra [DEC] BOS token).

    Vocab: the specials, every printable ASCII character and every character of the texts (also as
    "##" continuation pieces, so any word splits into known pieces), then the most frequent words.
    The `tokenizers` WordPiece trainer is not used because its vocab order changes from run to run.
    """
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(word for text in texts
                    for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted(set(string.printable.strip()) | {c for word in words for c in word})
    vocab: dict[str, int] = {}
    _append(vocab, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    _append(vocab, chars)
    _append(vocab, (f"##{c}" for c in chars))
    frequent = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    _append(vocab, frequent[: max(0, vocab_size - 1 - len(vocab))])
    bert = BertTokenizer(vocab=vocab, model_max_length=512)
    bert.add_special_tokens({"bos_token": "[DEC]"})
    return bert


def opt_tokenizer(texts: list[str], vocab_size: int = 1024, padded_size: int = 50265) -> GPT2Tokenizer:
    """OPT-style byte-level BPE: <s>=0 <pad>=1 </s>=2 <unk>=3, the byte alphabet, trained merges.

    The vocab is padded with never-produced "madeupwordNNNNN" entries (real OPT has a few too) to
    `padded_size` ids, OPT's own vocab size, so a token added afterwards gets OPT's id for it:
    Data-Juicer's captioning op hard-codes BLIP-2 OPT's `<image>` id, 50265.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ("<s>", "<pad>", "</s>", "<unk>")
    trained, merges = _trained_bpe(
        texts, normalizers.Sequence([]), pre_tokenizers.ByteLevel(add_prefix_space=False),
        trainers.BpeTrainer(vocab_size=vocab_size - len(specials), initial_alphabet=alphabet,
                            show_progress=False))
    vocab: dict[str, int] = {}
    _append(vocab, specials)
    _append(vocab, alphabet)
    _append(vocab, sorted(trained, key=trained.__getitem__))
    _append(vocab, (f"{OPT_FILLER_PREFIX}{i:05d}" for i in range(padded_size - len(vocab))))
    return GPT2Tokenizer(vocab=vocab, merges=merges, bos_token="</s>", eos_token="</s>", unk_token="<unk>",
                         pad_token="<pad>", add_bos_token=True, model_max_length=512)
