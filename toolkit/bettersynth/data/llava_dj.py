"""LLaVA json -> Data-Juicer jsonl: ``bsynth llava2dj``, with the semantics of Data-Juicer's llava_to_dj.

Same arguments, defaults and records as ``tools/fmt_conversion/multimodal/
source_format_to_data_juicer_format/llava_to_dj.py`` of py-data-juicer 1.6.1 (jsonl written as
``jsonlines`` does: ``ensure_ascii=False``, one object a line, ``\\n`` after each). With
``only_keep_caption`` each sample becomes ``image_token + sent_separator + answer`` plus
`` <|__dj__eoc|>``, the seed pool's format when ``image_special_token`` is ``<__dj__image>``.
What differs, on purpose:

* every bad record is reported at once (count per kind + first examples), nothing is written
  then, and the output appears under its name only when complete; a target that is a folder or
  the input itself is refused before any work;
* ``image_broadcast_pos: random`` draws from ``random.Random(seed)`` (default 1024) instead of the
  unseeded global generator, so a run is reproducible (the same draws as ``random.seed(seed)``);
* empty special tokens or separators are rejected, and so is an empty array (the tool writes an
  empty file);
* a record holding a lone surrogate escape (``"\\ud800"``: valid JSON, but not writable as UTF-8)
  is a bad record (the tool stops with a UnicodeEncodeError).

    bsynth llava2dj stage_1.json seed.jsonl --image_special_token "<__dj__image>" \\
        --only_keep_caption True
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bettersynth.constants import DJ_EOC_TOKEN, IMAGE_TOKEN, SEED
from bettersynth.data.jsonl import encodable, load_json
from bettersynth.data.output_path import check_output
from bettersynth.files import atomic_output
from bettersynth.data.problems import DataError, Problem

BROADCAST_POSITIONS = ("random", "before", "after", "follow")


@dataclass(frozen=True)
class LlavaToDjOptions:
    """The llava_to_dj tool's options (same names and defaults) plus ``seed``."""

    str_id: bool = True
    split_chunk: bool = False
    image_broadcast: bool = False
    image_broadcast_pos: str = "random"
    eoc_special_token: str = DJ_EOC_TOKEN
    image_special_token: str = IMAGE_TOKEN
    add_eoc_at_last: bool = True
    sent_separator: str = "\n"
    only_keep_caption: bool = False
    seed: int | None = SEED
    max_examples: int = 10

    def __post_init__(self) -> None:
        for name in ("eoc_special_token", "image_special_token", "sent_separator"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        if self.image_broadcast and not self.split_chunk:
            raise ValueError("image_broadcast needs split_chunk")
        if self.image_broadcast_pos not in BROADCAST_POSITIONS:
            raise ValueError(f"image_broadcast_pos must be one of {BROADCAST_POSITIONS}, "
                             f"got {self.image_broadcast_pos!r}")
        if self.max_examples < 1:
            raise ValueError(f"max_examples must be >= 1, got {self.max_examples}")


@dataclass(frozen=True)
class LlavaToDjResult:
    output: Path
    num_samples: int
    num_without_image: int  # samples with no image (the tool warns: not multimodal)
    num_multi_turn: int  # multi-turn samples seen with only_keep_caption (the tool warns)


class _Converter:
    def __init__(self, options: LlavaToDjOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.problems: list[Problem] = []
        self.num_without_image = 0
        self.num_multi_turn = 0

    def _problem(self, kind: str, message: str, record: int, sample_id: Any) -> None:
        self.problems.append(Problem(kind, message, record, sample_id))

    def convert(self, sample: Any, record: int) -> dict[str, Any] | None:
        opts = self.options
        if not isinstance(sample, dict) or "id" not in sample:
            self._problem("bad_record", "expected an object with an 'id'", record, None)
            return None
        sid = str(sample["id"]) if opts.str_id else sample["id"]
        if not encodable(sample):
            self._problem("unencodable", "a lone surrogate escape (\\ud800-\\udfff) that UTF-8 cannot encode",
                          record, sid)
            return None
        image = sample.get("image", "")
        turns = sample.get("conversations")
        if not isinstance(image, str):
            self._problem("bad_image", "'image' must be a path string", record, sid)
            return None
        if not (isinstance(turns, list) and all(
                isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str)
                for t in turns)):
            self._problem("bad_conversations", "'conversations' must be a list of "
                          "{'from': str, 'value': str}", record, sid)
            return None
        if len(turns) % 2 != 0:
            self._problem("unbalanced_conversation",
                          f"{len(turns)} turns: not (human, gpt) pairs", record, sid)
            return None
        self.num_without_image += image == ""
        self.num_multi_turn += len(turns) > 2 and opts.only_keep_caption
        token, sep = opts.image_special_token, opts.sent_separator
        images: list[str] = []
        first_position = ""
        chunks = []
        for i in range(len(turns) // 2):
            human, robot = turns[2 * i], turns[2 * i + 1]
            question = human["value"]
            if image and i == 0:
                if question.startswith(token):
                    first_position = "before"
                elif question.endswith(token):
                    first_position = "after"
                else:
                    self._problem("image_token_position", f"the first question neither starts nor "
                                  f"ends with {token!r}", record, sid)
                    return None
                images.append(image)
            elif image and opts.image_broadcast:
                position = opts.image_broadcast_pos
                if position == "random":
                    position = "before" if self.rng.random() < 0.5 else "after"
                elif position == "follow":
                    position = "before" if first_position == "before" else "after"
                question = token + sep + question if position == "before" else question + sep + token
                images.append(image)
            if opts.only_keep_caption:
                chunks.append(token + sep + robot["value"])
            else:
                chunks.append(f"[[{human['from']}]]: {question}{sep}[[{robot['from']}]]: {robot['value']}")
        join = f" {opts.eoc_special_token}{sep}" if opts.split_chunk else sep
        text = join.join(chunks)
        if opts.add_eoc_at_last:
            text += f" {opts.eoc_special_token}"
        return {"id": sid, "text": text, "images": images}


def llava_to_dj(llava_path: Path, target_path: Path, options: LlavaToDjOptions) -> LlavaToDjResult:
    """Convert ``llava_path`` (LLaVA json array) into ``target_path`` (Data-Juicer jsonl).

    Raises :class:`DataError` with every problem found or for an empty array (nothing is written
    then), ``InputError``
    for a missing or invalid input, ``ValueError`` when the target does not end in ``.jsonl``,
    ``OutputPathError`` when it is a folder or the input itself.
    """
    llava_path, target_path = Path(llava_path), Path(target_path)
    if not str(target_path).endswith(".jsonl"):
        raise ValueError(f'only a ".jsonl" target is supported for Data-Juicer, got {target_path}')
    check_output(target_path, {"input": llava_path})
    records = load_json(llava_path)
    if not isinstance(records, list):
        raise DataError(llava_path, [Problem("not_a_list", "a LLaVA file must hold a JSON array")])
    if not records:
        raise DataError(llava_path, [Problem("empty_file", "the array holds no records: nothing to convert")])
    converter = _Converter(options)
    count = 0
    with atomic_output(target_path) as out:
        for number, sample in enumerate(records, start=1):
            converted = converter.convert(sample, number)
            if converted is not None and not converter.problems:
                out.write(json.dumps(converted, ensure_ascii=False) + "\n")
                count += 1
        if converter.problems:
            raise DataError(llava_path, converter.problems, options.max_examples, unit="record")
    return LlavaToDjResult(target_path, count, converter.num_without_image, converter.num_multi_turn)
