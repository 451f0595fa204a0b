"""Check a Data-Juicer jsonl before training: ``bsynth validate DJ_JSONL --image-root DIR ...``.

Per line (errors unless noted):
  * the line is valid JSON (UTF-8, not blank) holding an object;
  * ``id`` is a string, ``text`` a string, ``images`` a list of exactly one non-empty path string
    (without a NUL byte);
  * ``text`` holds exactly one image token, at its start or end, and the end-of-chunk token only
    at its end, so that dj2llava's cleaning leaves a caption free of special tokens; that caption
    is not empty; a missing end-of-chunk token is a warning (the converter accepts it);
  * with ``--original``, the id is one of that LLaVA file's ids (dj2llava --restore_questions
    needs it);
  * the image is relative to the image root without climbing out of it with ``..``, or absolute
    under it (a warning: dj2llava --image-root makes it relative), not absolute elsewhere; a synthetic sample's
    (``"synthetic_images": true``) is relative to the jsonl file's folder instead
    (bettersynth.data.image_roots); training can use it: it passes
    ``image_check.load_rgb``, the very function the training loader reads images with (it exists,
    its header's size is within the side and aspect-ratio limits and its mode converts correctly
    to RGB, and it decodes fully), each distinct image once, in ``workers`` processes.
Repeated ids and repeated images are counted (allowed: synthetic samples reuse seed ids).

    bsynth validate processed.jsonl --image-root input/pretrain_stage_1_10k \\
        --original input/pretrain_stage_1_10k/stage_1.json --workers 16 --report report.json
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN
from bettersynth.data.dj_llava import NUL_IN_PATH, DjToLlavaOptions, clean_sentence, relative_to_root
from bettersynth.data.image_check import check_images
from bettersynth.data.image_roots import ImageRootError, image_path, is_synthetic
from bettersynth.data.jsonl import InputError, iter_json_lines, load_json
from bettersynth.data.problems import Problem
from bettersynth.data.validate_report import Duplicates, ValidationReport


@dataclass(frozen=True)
class ValidateOptions:
    image_root: Path
    original: Path | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    image_token: str = DJ_IMAGE_TOKEN
    eoc_token: str = DJ_EOC_TOKEN
    sent_separator: str = "\n"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        for name in ("image_token", "eoc_token", "sent_separator"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")

    @property
    def cleaning(self) -> DjToLlavaOptions:
        """The converter settings whose caption cleaning the text must survive."""
        return DjToLlavaOptions(eoc_special_token=self.eoc_token, image_special_token=self.image_token,
                                sent_separator=self.sent_separator)


def load_known_ids(path: Path) -> set[str]:
    """The ids of a LLaVA json array, as dj2llava --restore_questions looks them up (``str(id)``)."""
    records = load_json(path)
    if not isinstance(records, list):
        raise InputError(f"{path} must hold a JSON array of LLaVA records")
    return {str(r["id"]) for r in records if isinstance(r, dict) and "id" in r}


def check_text(text: str, options: ValidateOptions) -> list[tuple[str, str, str]]:
    """(severity, kind, message) for every token-placement problem of a caption text."""
    found = []
    count = text.count(options.image_token)
    if count != 1:
        found.append(("error", "image_token_count", f"{count} {options.image_token!r} tokens, expected 1"))
    caption = clean_sentence(text, 1, options.cleaning)
    if count == 1 and options.image_token in caption:
        found.append(("error", "image_token_position",
                      f"{options.image_token!r} must be at the start or the end of the text"))
    if options.eoc_token in caption:
        found.append(("error", "eoc_position", f"{options.eoc_token!r} may only end the text"))
    if not caption.replace(options.image_token, "").replace(options.eoc_token, "").strip():
        found.append(("error", "empty_caption", "no caption text besides the special tokens"))
    tail = text.strip()
    if tail.endswith(options.sent_separator):
        tail = tail[: -len(options.sent_separator)].strip()
    if not tail.endswith(options.eoc_token):
        found.append(("warning", "eoc_missing", f"text does not end with {options.eoc_token!r}"))
    return found


class _LineChecker:
    """Checks lines one by one; gathers problems, id/image counts and the images to decode."""

    def __init__(self, options: ValidateOptions, known_ids: set[str] | None, data_file: Path) -> None:
        self.options = options
        self.data_file = data_file
        self.known_ids = known_ids
        self.problems: list[Problem] = []
        self.ids: Counter = Counter()
        self.images: Counter = Counter()
        self.synthetic = 0
        self.image_lines: dict[str, list[tuple[int, Any]]] = {}

    def add(self, severity: str, kind: str, message: str, line: int | None, sid: Any = None) -> None:
        self.problems.append(Problem(kind, message, line, sid, severity))

    def check(self, lineno: int, sample: Any) -> None:
        if not isinstance(sample, dict):
            self.add("error", "not_an_object", f"expected a JSON object, got {type(sample).__name__}", lineno)
            return
        sid, text, images = sample.get("id"), sample.get("text"), sample.get("images")
        if not isinstance(sid, str):
            self.add("error", "bad_id", f"'id' must be a string, got {type(sid).__name__}", lineno, sid)
        else:
            self.ids[sid] += 1
            if self.known_ids is not None and sid not in self.known_ids:
                self.add("error", "unknown_id", f"id not in {self.options.original}", lineno, sid)
        if not isinstance(text, str):
            self.add("error", "bad_text", f"'text' must be a string, got {type(text).__name__}", lineno, sid)
        else:
            for severity, kind, message in check_text(text, self.options):
                self.add(severity, kind, message, lineno, sid)
        if not (isinstance(images, list) and all(isinstance(i, str) and i for i in images)):
            self.add("error", "bad_images", "'images' must be a list of non-empty path strings", lineno, sid)
        elif any("\0" in image for image in images):
            self.add("error", "bad_images", NUL_IN_PATH, lineno, sid)
        elif len(images) != 1:
            self.add("error", "image_count", f"{len(images)} images, expected exactly 1", lineno, sid)
        else:
            self._check_path(sample, images[0], lineno, sid)

    def _check_path(self, sample: dict, image: str, lineno: int, sid: Any) -> None:
        try:
            if is_synthetic(sample):
                self.synthetic += 1
                self._count_image(image_path(sample, image, self.data_file, self.options.image_root), lineno, sid)
                return
        except ImageRootError as error:
            self.add("error", "bad_synthetic_image", str(error), lineno, sid)
            return
        root = self.options.image_root
        relative = relative_to_root(image, root)
        if relative is None:
            self.add("error", "image_outside_root", f"image path {image} is not under the image root {root}",
                     lineno, sid)
            return
        if relative != image:
            self.add("warning", "absolute_image_path", f"{image} is absolute (dj2llava --image-root "
                     "makes it relative)", lineno, sid)
        self._count_image(os.path.normpath(os.path.join(root, relative)), lineno, sid)

    def _count_image(self, full: str, lineno: int, sid: Any) -> None:
        self.images[full] += 1
        self.image_lines.setdefault(full, []).append((lineno, sid))


def validate(dj_path: Path, options: ValidateOptions) -> ValidationReport:
    """Check every line of ``dj_path``; InputError when the file, root or original is missing."""
    start = time.perf_counter()
    dj_path = Path(dj_path)
    if not Path(options.image_root).is_dir():
        raise InputError(f"image root is not a folder: {options.image_root}")
    known = load_known_ids(options.original) if options.original is not None else None
    checker = _LineChecker(options, known, dj_path)
    report = ValidationReport(dj_path, Path(options.image_root), options.original, options.workers)
    for line in iter_json_lines(dj_path):
        report.num_lines = line.lineno
        if line.error is not None:
            checker.add("error", "invalid_line", line.error, line.lineno)
        else:
            checker.check(line.lineno, line.value)
    if report.num_lines == 0:
        # A recipe whose ops all failed exports an empty file and still exits 0: catch it here.
        checker.add("error", "empty_file", "the file holds no samples", None)
    decode_start = time.perf_counter()
    failures = check_images(list(checker.image_lines), options.workers)
    report.decode_seconds = time.perf_counter() - decode_start
    for path, failure in failures.items():
        for lineno, sid in checker.image_lines[path]:
            checker.add("error", failure.kind, failure.message, lineno, sid)
    report.problems = checker.problems
    report.images_checked = len(checker.image_lines)
    report.synthetic_samples = checker.synthetic
    report.duplicate_ids = Duplicates.from_counter(checker.ids)
    report.duplicate_images = Duplicates.from_counter(checker.images)
    report.total_seconds = time.perf_counter() - start
    return report
