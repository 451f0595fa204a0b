"""Data-Juicer jsonl -> LLaVA json: ``bsynth dj2llava``, with the semantics of Data-Juicer's dj_to_llava.

Same arguments, defaults and records as ``tools/fmt_conversion/multimodal/
data_juicer_format_to_target_format/dj_to_llava.py`` of py-data-juicer 1.6.1 (the file is
byte-for-byte identical for valid input: one ``json.dump`` array, ``ensure_ascii=True``, no
indent, no trailing newline; ``tests/data/test_dj_llava.py`` checks this against the tool itself).
What differs, on purpose:

* every bad sample is found before anything is written, and all are reported at once (count per
  kind + first examples with line and id) instead of the first one raising;
* the input is streamed and the output written as it goes, to a temporary file renamed into place
  only when the whole input converted (nothing is written under the target name on failure);
  a target that is a folder, the input or the original LLaVA file is refused before any work;
* with ``image_root``, absolute image paths under it (Data-Juicer exports absolute paths) are
  made relative to it; paths outside it (absolute elsewhere, or relative climbing out with ``..``)
  are errors;
* an empty image path is an error (the tool would write ``"image": ""``, the image folder itself),
  and so is one holding a NUL byte;
* a synthetic sample's image (``"synthetic_images": true``: relative to the input file's folder,
  bettersynth.data.image_roots) is written as an absolute path, which training's image folder
  leaves as it is;
* empty special tokens or separators are rejected (the tool would silently empty every caption);
* an input without samples is an error (the tool writes ``[]``, which training would fail on later).

    bsynth dj2llava in.jsonl out.json --image_special_token "<__dj__image>" \\
        --restore_questions True --original_llava_ds_path input/.../stage_1.json --image-root DIR
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bettersynth.constants import DJ_EOC_TOKEN, IMAGE_TOKEN
from bettersynth.data.image_roots import ImageRootError, image_path, is_synthetic, names_below
from bettersynth.data.jsonl import JsonLine, iter_json_lines, load_json
from bettersynth.data.output_path import check_output
from bettersynth.files import atomic_output
from bettersynth.data.problems import DataError, Problem

# The role marker of Data-Juicer's multi-turn text ("[[human]]: ...").
ROLE_PATTERN = re.compile(r"\[\[([a-zA-Z]*?)\]\]: ")
NUL_IN_PATH = "an image path holds a NUL byte, which no file system accepts"


@dataclass(frozen=True)
class DjToLlavaOptions:
    """The dj_to_llava tool's options (same names and defaults) plus ``image_root``."""

    keep_only_first_image: bool = True
    eoc_special_token: str = DJ_EOC_TOKEN
    image_special_token: str = IMAGE_TOKEN
    sent_separator: str = "\n"
    restore_questions: bool = False
    original_llava_ds_path: Path | None = None
    image_root: Path | None = None
    max_examples: int = 10

    def __post_init__(self) -> None:
        for name in ("eoc_special_token", "image_special_token", "sent_separator"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        if self.restore_questions and self.original_llava_ds_path is None:
            raise ValueError("restore_questions needs original_llava_ds_path "
                             "(the original LLaVA json, e.g. stage_1.json)")
        if self.max_examples < 1:
            raise ValueError(f"max_examples must be >= 1, got {self.max_examples}")


@dataclass(frozen=True)
class ConversionResult:
    output: Path
    num_samples: int
    num_relativised: int  # absolute image paths made relative to image_root
    num_synthetic: int = 0  # synthetic samples, their images written as absolute paths


def clean_sentence(sentence: str, round_index: int, options: DjToLlavaOptions) -> str:
    """The tool's caption cleaning: strip, drop a trailing separator, then a trailing end-of-chunk
    token, then (after the first round, with keep_only_first_image) a leading or trailing image
    token with its separator."""
    sep, eoc, image = options.sent_separator, options.eoc_special_token, options.image_special_token
    sentence = sentence.strip()
    if sentence.endswith(sep):
        sentence = sentence[: -len(sep)].strip()
    if sentence.endswith(eoc):
        sentence = sentence[: -len(eoc)].strip()
    if round_index > 0 and options.keep_only_first_image:
        if sentence.startswith(image):
            sentence = sentence[len(image):].strip()
            if sentence.startswith(sep):
                sentence = sentence[len(sep):].strip()
        if sentence.endswith(image):
            sentence = sentence[: -len(image)].strip()
            if sentence.endswith(sep):
                sentence = sentence[: -len(sep)].strip()
    return sentence


def relative_to_root(image: str, root: Path) -> str | None:
    """``image`` relative to ``root`` when it is an absolute path under it (lexically, else after
    resolving links); a relative path below ``root`` is returned unchanged; None when it lies
    outside (an absolute path elsewhere, a relative one climbing out with ``..``) or names ``root`` itself."""
    if not os.path.isabs(image):
        return image if names_below(image) else None
    for resolve in (os.path.abspath, os.path.realpath):
        root_n, image_n = resolve(root), resolve(image)
        if os.path.commonpath([root_n, image_n]) == root_n:
            relative = os.path.relpath(image_n, root_n)
            return Path(relative).as_posix() if names_below(relative) else None
    return None


def load_original_index(path: Path) -> dict[str, Any]:
    """The original LLaVA records by ``str(id)`` (a later duplicate id wins, as in the tool)."""
    records = load_json(path)
    if not isinstance(records, list):
        raise DataError(path, [Problem("not_a_list", "the original LLaVA file must hold a JSON array")])
    return {str(r["id"]): r for r in records if isinstance(r, dict) and "id" in r}


class _Converter:
    """Converts one parsed line at a time, recording problems instead of raising."""

    def __init__(self, options: DjToLlavaOptions, dj_path: Path) -> None:
        self.options = options
        self.dj_path = dj_path
        self.index = (load_original_index(options.original_llava_ds_path)
                      if options.restore_questions else None)
        self.problems: list[Problem] = []
        self.num_relativised = 0
        self.num_synthetic = 0

    def _problem(self, kind: str, message: str, line: JsonLine, sample_id: Any = None) -> None:
        self.problems.append(Problem(kind, message, line.lineno, sample_id))

    def convert(self, line: JsonLine) -> dict[str, Any] | None:
        if line.error is not None:
            self._problem("invalid_line", line.error, line)
            return None
        sample = line.value
        if not isinstance(sample, dict):
            self._problem("not_an_object", f"expected a JSON object, got {type(sample).__name__}", line)
            return None
        sid = sample.get("id")
        text = sample.get("text")
        images = sample.get("images", [])
        bad = len(self.problems)
        if "id" not in sample or isinstance(sid, (dict, list)):
            self._problem("bad_id", "missing id, or not a string/number", line, sid)
        if not isinstance(text, str):
            self._problem("bad_text", "'text' must be a string", line, sid)
        if not isinstance(images, list) or not all(isinstance(i, str) and i for i in images):
            self._problem("bad_images", "'images' must be a list of non-empty path strings", line, sid)
        elif any("\0" in image for image in images):
            self._problem("bad_images", NUL_IN_PATH, line, sid)
        elif len(set(images)) > 1:
            self._problem("multiple_images",
                          f"{len(set(images))} distinct images; LLaVA format holds one", line, sid)
        if len(self.problems) > bad:
            return None
        image = self._image(sample, images[0], line, sid) if images else None
        conversations = self._conversations(sid, text, line)
        if conversations is None or (images and image is None):
            return None
        if self.index is not None:
            sid = self.index[str(sid)]["id"]
        record: dict[str, Any] = {"id": sid, "conversations": conversations}
        if image is not None:
            record["image"] = image
        return record

    def _image(self, sample: dict[str, Any], image: str, line: JsonLine, sid: Any) -> str | None:
        root = self.options.image_root
        try:
            if is_synthetic(sample):
                self.num_synthetic += 1
                return os.path.abspath(image_path(sample, image, self.dj_path, root or self.dj_path.parent))
        except ImageRootError as error:
            self._problem("bad_synthetic_image", str(error), line, sid)
            return None
        if root is None:
            return image
        relative = relative_to_root(image, root)
        if relative is None:
            self._problem("image_outside_root", f"image path {image} is not under the image root {root}",
                          line, sid)
        elif relative != image:
            self.num_relativised += 1
        return relative

    def _conversations(self, sid: Any, text: str, line: JsonLine) -> list[Any] | None:
        if self.index is not None:
            original = self.index.get(str(sid))
            if original is None:
                self._problem("unknown_id", f"id not found in {self.options.original_llava_ds_path}",
                              line, sid)
                return None
            turns = original.get("conversations")
            if not (isinstance(turns, list) and len(turns) >= 2 and isinstance(turns[1], dict)
                    and "from" in turns[1]):
                self._problem("bad_original", "the original record has no (question, answer) "
                              "conversation to restore", line, sid)
                return None
            return [turns[0], {"from": turns[1]["from"], "value": clean_sentence(text, 1, self.options)}]
        parts = ROLE_PATTERN.split(text)
        if parts[0] == "":
            parts = parts[1:]
        if len(parts) % 4 != 0:
            self._problem("unbalanced_conversation", "text does not split into (human, gpt) rounds "
                          f"of '[[role]]: ' markers ({len(parts)} parts)", line, sid)
            return None
        return [{"from": parts[2 * i], "value": clean_sentence(parts[2 * i + 1], i, self.options)}
                for i in range(len(parts) // 2)]


def dj_to_llava(dj_path: Path, target_path: Path, options: DjToLlavaOptions) -> ConversionResult:
    """Convert ``dj_path`` (Data-Juicer jsonl) into ``target_path`` (LLaVA json array).

    Raises :class:`DataError` with every problem found or when the input holds no samples
    (nothing is written then), ``InputError``
    for a missing input, ``ValueError`` when the target does not end in ``.json``,
    ``OutputPathError`` when it is a folder, the input or the original LLaVA file.
    """
    dj_path, target_path = Path(dj_path), Path(target_path)
    if not str(target_path).endswith(".json"):
        raise ValueError(f'only a ".json" target is supported for LLaVA, got {target_path}')
    check_output(target_path, {"input": dj_path,
                               "original LLaVA file (--original_llava_ds_path)": options.original_llava_ds_path})
    converter = _Converter(options, dj_path)
    count = 0
    with atomic_output(target_path) as out:
        out.write("[")
        for line in iter_json_lines(dj_path):
            record = converter.convert(line)
            if record is not None and not converter.problems:
                out.write(", " if count else "")
                out.write(json.dumps(record))
                count += 1
        if count == 0 and not converter.problems:
            converter.problems.append(Problem("empty_file", "the file holds no samples: nothing to convert"))
        if converter.problems:
            raise DataError(dj_path, converter.problems, options.max_examples)
        out.write("]")
    return ConversionResult(target_path, count, converter.num_relativised, converter.num_synthetic)
