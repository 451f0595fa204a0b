"""The gemma conversation template (``--version gemma``): prompt text, token ids and loss labels, and
the eval prompts.

One place formats a LLaVA conversation, tokenises it around the ``<image>`` marker and masks the
labels, for both training stages; the two benchmarks' user messages (``textvqa_message``,
``mmbench_prompt`` / ``mmbench_message``) and the generation prompt around them
(``generation_prompt_ids``) are built here too, so training and evaluation cannot drift apart.

Per round the text is::

    <start_of_turn>user\\n{human}<end_of_turn>\\n<start_of_turn>model\\n{gpt}<end_of_turn>\\n<eos>

with no system prompt; a generation prompt ends with ``<start_of_turn>model\\n``. The tokenizer
adds BOS itself. Text is tokenised chunk by chunk around ``<image>`` (each chunk with the
tokenizer's BOS handling: the first chunk's BOS is kept, the others' dropped) and one
IMAGE_TOKEN_INDEX placeholder goes between chunks.

Labels follow the official counting rule: BOS is masked; for every round (the text between two
``<eos>``) the instruction up to and including ``<start_of_turn>model\\n`` is masked, the answer,
``<end_of_turn>``, ``\\n`` and ``<eos>`` are supervised. Round lengths are counted by tokenising each
round on its own; when their sum differs from the length of the whole tokenised conversation
(tokens merging across a boundary, an ``<eos>`` written inside a message, ...) the whole sample is
masked and ``mismatch`` is set, as the official kit does; the caller warns and counts. The official
code makes that check only while the counted length is below ``model_max_length`` (counted in
these ids, the image placeholder as one token): from there on the labels are kept as counted even
where the rounds do not add up, and so they are here.

Use::

    from bettersynth.template import encode_conversation, generation_prompt_ids
    enc = encode_conversation(record["conversations"], tokenizer, has_image=True)
    ids = generation_prompt_ids(textvqa_message("What is in the photo?"), tokenizer)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from bettersynth.constants import IGNORE_INDEX, IMAGE_TOKEN, IMAGE_TOKEN_INDEX

ROLES = {"human": "user", "gpt": "model"}
START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"
ROUND_END = "<eos>"
MODEL_PREFIX = f"{START_OF_TURN}model\n"


class ConversationError(ValueError):
    """A conversation the template cannot encode (unknown role, broken turn order, image count)."""


@dataclass(frozen=True)
class EncodedConversation:
    """Token ids (IMAGE_TOKEN_INDEX at the image placeholder), labels of equal length, and whether
    the official length check failed (then every label is IGNORE_INDEX)."""

    input_ids: list[int]
    labels: list[int]
    mismatch: bool

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError(f"{len(self.input_ids)} ids but {len(self.labels)} labels")

    @property
    def num_images(self) -> int:
        return sum(1 for token in self.input_ids if token == IMAGE_TOKEN_INDEX)


def turn_text(role: str, message: str | None) -> str:
    """One turn: a finished message, or (``message=None``) the opening of a turn to be generated."""
    if message is None:
        return f"{START_OF_TURN}{role}\n"
    closing = ROUND_END if role == "model" else ""
    return f"{START_OF_TURN}{role}\n{message}{END_OF_TURN}\n{closing}"


def _image_first(message: str) -> str:
    """Move the image marker to the front of its message as ``<image>\\n...`` (all markers become one)."""
    if IMAGE_TOKEN not in message:
        return message
    rest = message.replace(IMAGE_TOKEN, "").strip()
    return f"{IMAGE_TOKEN}\n{rest}".strip()


def format_conversation(conversations: Sequence[dict[str, Any]], has_image: bool) -> str:
    """The full prompt text of a LLaVA conversation (``[{"from": "human"|"gpt", "value": ...}, ...]``).

    Raises ConversationError on an unknown role, turns out of order, or (image samples) a number
    of ``<image>`` markers other than one. Cheap: the dataset runs it over every record up front.
    """
    turns = list(conversations)
    for position, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise ConversationError(f"turn {position} is not an object with 'from' and 'value': {turn!r}")
        if turn["from"] not in ROLES:
            raise ConversationError(f"turn {position}: unknown role {turn['from']!r} (known: {sorted(ROLES)})")
        if not isinstance(turn["value"], str):
            raise ConversationError(f"turn {position}: value is not a string: {turn['value']!r}")
    if turns and ROLES[turns[0]["from"]] != "user":
        turns = turns[1:]  # the official template drops a leading gpt message
    if not turns:
        raise ConversationError("the conversation has no human turn")
    pieces = []
    for position, turn in enumerate(turns):
        role = ROLES[turn["from"]]
        expected = "user" if position % 2 == 0 else "model"
        if role != expected:
            raise ConversationError(f"turn {position} is from {turn['from']!r}; turns must alternate human, gpt")
        message = _image_first(turn["value"]) if has_image else turn["value"]
        pieces.append(turn_text(role, message))
    text = "".join(pieces)
    if has_image and text.count(IMAGE_TOKEN) != 1:
        markers = text.count(IMAGE_TOKEN)
        raise ConversationError(
            f"an image sample needs exactly one {IMAGE_TOKEN} marker in its conversation; found {markers}"
            + (" (several images in one sample are not supported)" if markers > 1 else ""))
    return text


def tokenize_with_image(text: str, tokenizer) -> list[int]:
    """Token ids of ``text`` with one IMAGE_TOKEN_INDEX in place of each ``<image>``."""
    chunks = [tokenizer(chunk).input_ids for chunk in text.split(IMAGE_TOKEN)]
    bos = tokenizer.bos_token_id
    drop = 1 if bos is not None and chunks[0][:1] == [bos] else 0
    ids = list(chunks[0])
    for chunk in chunks[1:]:
        ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(chunk[drop:])
    return ids


def _counted_labels(text: str, ids: list[int], tokenizer, has_image: bool,
                    model_max_length: int) -> tuple[list[int], bool]:
    """Labels by the official per-round counting rule, and whether the count disagreed with ``ids``
    (checked only for a counted length below ``model_max_length``, as the official code does)."""

    def length(piece: str) -> int:
        return len(tokenize_with_image(piece, tokenizer) if has_image else tokenizer(piece).input_ids)

    labels = list(ids)
    cursor = 1  # BOS
    labels[0] = IGNORE_INDEX
    for round_text in text.split(ROUND_END):
        if round_text == "":
            break
        parts = round_text.split(MODEL_PREFIX)
        if len(parts) != 2:
            break
        # A round tokenised alone carries a BOS the whole sequence does not: it stands for the
        # round's <eos>, which split() removed. The instruction's BOS is subtracted.
        round_len = length(round_text)
        instruction_len = length(parts[0] + MODEL_PREFIX) - 1
        labels[cursor:cursor + instruction_len] = [IGNORE_INDEX] * len(labels[cursor:cursor + instruction_len])
        cursor += round_len
    labels[cursor:] = [IGNORE_INDEX] * len(labels[cursor:])
    # The official ``if cur_len < tokenizer.model_max_length`` guard. Its total is the length of the
    # ids after the text-only tokenisation's truncation to model_max_length; below the limit a
    # count differs from that total exactly when it differs from the untruncated length, so
    # ``len(ids)`` serves for both kinds of sample.
    if cursor < model_max_length and cursor != len(ids):
        return [IGNORE_INDEX] * len(ids), True
    return labels, False


def encode_conversation(conversations: Sequence[dict[str, Any]], tokenizer, has_image: bool,
                        model_max_length: int | None = None) -> EncodedConversation:
    """Ids and labels of one training sample. An image sample must hold exactly one ``<image>``.

    ``model_max_length`` bounds the length check (see the module doc); None takes the tokenizer's
    ``model_max_length``, where the official code reads it. The ids are not truncated here: the
    model truncates the spliced sequence, which keeps these labels' first positions.
    """
    text = format_conversation(conversations, has_image)
    ids = tokenize_with_image(text, tokenizer) if has_image else list(tokenizer(text).input_ids)
    if not ids or ids[0] != tokenizer.bos_token_id:
        raise ConversationError("the tokenizer did not add BOS; the gemma template needs it")
    limit = tokenizer.model_max_length if model_max_length is None else model_max_length
    labels, mismatch = _counted_labels(text, ids, tokenizer, has_image, limit)
    return EncodedConversation(input_ids=ids, labels=labels, mismatch=mismatch)


def generation_prompt_ids(question: str, tokenizer) -> list[int]:
    """Ids of one human turn holding ``question`` (which may contain ``<image>``), then the opening
    of the model's turn, ``<start_of_turn>model\\n``."""
    text = turn_text("user", question) + turn_text("model", None)
    return tokenize_with_image(text, tokenizer)


# --- the eval prompts (eval-spec.md) ------------------------------------------------------------
MMBENCH_INSTRUCTION = "Answer with the option's letter from the given choices directly."
MMBENCH_OPTION_CHARS = ("A", "B", "C", "D")


def textvqa_message(question: str) -> str:
    """The user message of a TextVQA question (its text holds the OCR reference line when given)."""
    return f"{IMAGE_TOKEN}\n{question}"


def mmbench_prompt(question: str, hint: str | None, options: Sequence[str]) -> str:
    """An MMBench row's hint, question and lettered options (the answer line's "prompt")."""
    text = question if hint is None else f"{hint}\n{question}"
    return text + "".join(f"\n{char}. {option}" for char, option in zip(MMBENCH_OPTION_CHARS, options))


def mmbench_message(prompt: str) -> str:
    """The user message of an MMBench row: image, its prompt, then the instruction."""
    return f"{IMAGE_TOKEN}\n{prompt}\n{MMBENCH_INSTRUCTION}"
