"""The lazy supervised data set: a LLaVA json read once, images decoded only when a sample is used.

Records look like ``{"id": ..., "image": "rel/path.jpg" (optional), "conversations": [...]}``.
On construction every record is checked cheaply (structure, roles and turn order, one ``<image>``
marker per image sample, the image file exists); a sample is tokenised and its image decoded when
the loader asks for it (``__getitem__``).

Bad data never turns into another sample. By default the first bad record stops the run with a
``BadSampleError`` naming the sample id, record number, file and reason. With ``skip_bad_samples``
the records failing the up-front check are left out (and counted), and a sample found bad on use
(an image that ``bettersynth.data.image_check`` refuses, as ``bsynth validate`` does:
undecodable, too large or too elongated, a mode that converts wrongly; or over-long after
tokenisation) comes back as a ``SkippedSample`` that the collator drops and counts. Over-long
means longer than ``model_max_length`` once the image placeholder is expanded to its
``num_image_tokens`` embeddings; ``truncate_long_samples`` instead lets the model truncate it
(the official behaviour) and counts it. Used by the training loop.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from bettersynth.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from bettersynth.model.preprocess import ImageLoadError
from bettersynth.template import ConversationError, encode_conversation, format_conversation

log = logging.getLogger(__name__)


class BadSampleError(RuntimeError):
    """A sample that cannot be trained on; the message names the sample, its file and the reason."""


@dataclass(frozen=True)
class DataOptions:
    data_path: Path
    image_folder: Path | None
    aspect: str
    model_max_length: int
    num_image_tokens: int
    skip_bad_samples: bool = False
    truncate_long_samples: bool = False

    def __post_init__(self) -> None:
        if self.aspect not in ("square", "pad"):
            raise ValueError(f"aspect must be square or pad, got {self.aspect!r}")
        if self.model_max_length < 2 or self.num_image_tokens < 1:
            raise ValueError(f"bad lengths in {self}")


@dataclass(frozen=True)
class Problem:
    record: int
    sample_id: str
    path: str
    reason: str

    def describe(self, data_path: Path) -> str:
        return f"sample id {self.sample_id!r} (record {self.record} of {data_path}; file {self.path}): {self.reason}"


@dataclass(frozen=True)
class Example:
    """One encoded sample; ``image`` is None for text-only samples."""

    position: int
    sample_id: str
    input_ids: torch.Tensor
    labels: torch.Tensor
    image: torch.Tensor | None
    num_tokens: int          # supervised tokens that survive truncation (what the loss sums over)
    num_input_tokens: int    # sequence length once the image is spliced in (after truncation)
    mismatch: bool
    truncated: bool


@dataclass(frozen=True)
class SkippedSample:
    position: int
    sample_id: str
    reason: str


def _check_record(record: Any, image_folder: Path | None) -> tuple[str, str | None]:
    """("", path) when the record is usable, else (reason, path)."""
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        return "not an object with a 'conversations' list", None
    image = record.get("image")
    path = None
    if image is not None:
        if not isinstance(image, str) or not image:
            return f"'image' must be a path string, got {image!r}", None
        if image_folder is None:
            return "an image sample but no --image_folder was given", image
        path = str(image_folder / image)
    try:
        format_conversation(record["conversations"], has_image=image is not None)
    except ConversationError as error:
        return str(error), path
    if path is not None and not os.path.isfile(path):
        return "image file not found", path
    return "", path


class LazySupervisedDataset(Dataset):
    """Positions 0..len-1 over the usable records of ``options.data_path``."""

    def __init__(self, options: DataOptions, tokenizer, preprocessor):
        self.options = options
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        if options.image_folder is not None and not options.image_folder.is_dir():
            # not a bad sample to skip: every image sample would be, leaving a text-only run that exits 0
            raise FileNotFoundError(f"the image folder {options.image_folder} (--image_folder) is not a folder")
        try:
            records = json.loads(Path(options.data_path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BadSampleError(f"cannot read the training data {options.data_path}: {error}") from error
        if not isinstance(records, list):
            raise BadSampleError(f"{options.data_path}: expected a JSON list of samples")
        self.records = records
        self.problems: list[Problem] = []
        self.usable: list[int] = []
        for index, record in enumerate(records):
            reason, path = _check_record(record, options.image_folder)
            if reason:
                self.problems.append(Problem(index, self._sample_id(record, index), str(path), reason))
            else:
                self.usable.append(index)
        if self.problems and not options.skip_bad_samples:
            first = self.problems[0].describe(options.data_path)
            raise BadSampleError(f"{len(self.problems)} bad sample(s) in {options.data_path}; the first: {first}. "
                                 "Fix the data or pass --skip_bad_samples True to leave such samples out.")
        for problem in self.problems:
            log.warning("skipping %s", problem.describe(options.data_path))
        self.has_image = [self.records[index].get("image") is not None for index in self.usable]
        self.word_counts = [sum(len(turn["value"].split()) for turn in self.records[index]["conversations"])
                            for index in self.usable]

    @staticmethod
    def _sample_id(record: Any, index: int) -> str:
        return str(record.get("id", f"#{index}")) if isinstance(record, dict) else f"#{index}"

    def __len__(self) -> int:
        return len(self.usable)

    def _bad(self, position: int, path: str | None, reason: str) -> SkippedSample:
        index = self.usable[position]
        problem = Problem(index, self._sample_id(self.records[index], index), str(path), reason)
        if not self.options.skip_bad_samples:
            raise BadSampleError(problem.describe(self.options.data_path)
                                 + ". Pass --skip_bad_samples True to leave such samples out.")
        log.warning("skipping %s", problem.describe(self.options.data_path))
        return SkippedSample(position, problem.sample_id, reason)

    def __getitem__(self, position: int) -> Example | SkippedSample:
        index = self.usable[position]
        record = self.records[index]
        sample_id = self._sample_id(record, index)
        has_image = record.get("image") is not None
        path = str(self.options.image_folder / record["image"]) if has_image else None
        encoded = encode_conversation(record["conversations"], self.tokenizer, has_image,
                                      model_max_length=self.options.model_max_length)
        if encoded.mismatch:
            log.warning("tokenization mismatch in sample id %r (record %d of %s): the whole sample is masked, "
                        "as the official kit does", sample_id, index, self.options.data_path)
        extra = encoded.num_images * (self.options.num_image_tokens - 1)
        spliced = len(encoded.input_ids) + extra
        limit = self.options.model_max_length
        if spliced > limit and not self.options.truncate_long_samples:
            return self._bad(position, path, f"over-long: {spliced} tokens with the image expanded, more than "
                                             f"--model_max_length {limit} (or pass --truncate_long_samples True)")
        image = None
        if has_image:
            try:
                image = self.preprocessor(self.preprocessor.load(path), aspect=self.options.aspect)
            except ImageLoadError as error:
                return self._bad(position, path, f"image cannot be loaded: {error.reason}")
        return Example(
            position=position, sample_id=sample_id,
            input_ids=torch.tensor(encoded.input_ids, dtype=torch.long),
            labels=torch.tensor(encoded.labels, dtype=torch.long), image=image,
            num_tokens=self._kept_supervised(encoded.input_ids, encoded.labels, extra),
            num_input_tokens=min(spliced, limit), mismatch=encoded.mismatch, truncated=spliced > limit)

    def _kept_supervised(self, input_ids: list[int], labels: list[int], extra: int) -> int:
        """Supervised labels whose position in the spliced sequence is below model_max_length."""
        limit = self.options.model_max_length
        image_at = input_ids.index(IMAGE_TOKEN_INDEX) if extra else len(input_ids)
        count = 0
        for position, label in enumerate(labels):
            spliced_position = position + (extra if position > image_at else 0)
            if label != IGNORE_INDEX and spliced_position < limit:
                count += 1
        return count
