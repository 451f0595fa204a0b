"""MMBench (dev 20230712): the TSV, prompts, answer lines, the upload .xlsx, circular scoring.

The TSV (columns ``index, question, hint, A, B, C, D, answer, category, l2-category, source, split,
comment, image``) is read with pandas' defaults, as the official kit does (so a cell reading "None"
or "NA" is a missing option). Rows with ``index >= 1e6`` are circular copies of question
``index % 1e6`` with rotated options. See eval-spec.md for the prompt and file formats.

Answers are read from the answers jsonl or from the upload .xlsx (by its suffix); either must hold
each TSV row's ``index`` exactly once (missing, duplicate and unknown ones are an error). An empty
prediction is scored as wrong, with a warning. ``check_upload`` (run by ``bsynth pack``) also
requires the upload's predictions to equal the answers jsonl's.

    from bettersynth.eval.mmbench import check_upload, circular_results, read_items, score_answers, write_upload
    items = read_items(tsv_path)                 # one MMBenchItem per row, TSV order
    result = score_answers(answers_path, tsv_path)          # answers: .jsonl or the upload .xlsx
    per_question = circular_results(answers_path, tsv_path) # one CircularResult per base question
    result.strict_circular_accuracy, result.extracted_circular_accuracy, result.per_category
    check_upload(upload_xlsx, answers_jsonl, tsv_path)      # EvalDataError naming what differs
"""

from __future__ import annotations

import math
import re
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bettersynth.template import MMBENCH_OPTION_CHARS, mmbench_message, mmbench_prompt
from bettersynth.eval.files import EvalDataError, counted, coverage_problem, listed, read_numbered_jsonl
from bettersynth.files import atomic_path

OPTION_CHARS = MMBENCH_OPTION_CHARS
CIRCULAR_BASE = 1_000_000
MAX_NEW_TOKENS = 1024
REQUIRED_COLUMNS = ("index", "question", "hint", *OPTION_CHARS, "image")
DROPPED_FOR_UPLOAD = ("hint", "category", "source", "image", "comment", "l2-category")
UPLOAD_COLUMNS = ("index", "question", "A", "B", "C", "D", "prediction", "answer", "split")
INTEGER_TEXT = re.compile(r"[+-]?\d+")
INDEX_RANGE = (-2**63, 2**63 - 1)  # the TSV's indices are read as int64
LEADING_LETTER = re.compile(r"^\s*\(?([A-Z])(?![A-Za-z0-9])")
XML_NON_CHARACTERS = re.compile("[\ufffe\uffff\ud800-\udfff]")  # not allowed in XML 1.0 text


def is_missing(value: Any) -> bool:
    """The official kit's test for an absent hint or option: None, NaN, or the text nan / none."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.lower() in ("nan", "none")


@dataclass(frozen=True)
class MMBenchItem:
    index: int
    prompt: str               # hint, question and options (the answer line's "prompt")
    options: tuple[str, ...]
    image_b64: str

    @property
    def option_chars(self) -> tuple[str, ...]:
        return OPTION_CHARS[:len(self.options)]

    @property
    def user_message(self) -> str:
        """The message sent to the model (the template wraps it)."""
        return mmbench_message(self.prompt)


def read_tsv(path: Path):
    """The TSV as a pandas DataFrame (official read defaults), with its required columns, rows and
    integer (int64), distinct ``index`` values checked."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise EvalDataError(f"{path}: MMBench TSV not found")
    try:
        frame = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise EvalDataError(f"{path}: not a readable TSV ({type(error).__name__}: {str(error).strip()})") from error
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise EvalDataError(f"{path}: missing columns {missing}")
    if frame.empty:
        raise EvalDataError(f"{path}: no rows")
    for row, index in enumerate(frame["index"], start=1):
        if not _is_integral(index):
            raise EvalDataError(f"{path}: data row {row}: index {index!r} is not an integer")
        if not INDEX_RANGE[0] <= int(index) <= INDEX_RANGE[1]:  # int64 would wrap it, or fail
            raise EvalDataError(f"{path}: data row {row}: index {index!r} is out of range "
                                f"({INDEX_RANGE[0]} to {INDEX_RANGE[1]})")
    frame["index"] = frame["index"].astype("int64")
    if frame["index"].duplicated().any():
        raise EvalDataError(f"{path}: duplicate index values "
                            f"{frame['index'][frame['index'].duplicated()].tolist()[:5]}")
    return frame


def _is_integral(value: Any) -> bool:
    """An integer as pandas may read one: an int, a float holding one (a column with an empty cell is
    read as floats) or its digits as text (a column with a text cell is read as text)."""
    if isinstance(value, str):
        return INTEGER_TEXT.fullmatch(value.strip()) is not None
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return hasattr(value, "__index__") and not isinstance(value, bool)


def item_from_row(row: dict[str, Any]) -> MMBenchItem:
    """The item of a TSV row; a row without a question or without option A is an error naming its index."""
    options = []
    for char in OPTION_CHARS:
        if is_missing(row[char]):
            break
        options.append(str(row[char]))
    if is_missing(row["question"]):
        raise EvalDataError(f"index {row['index']}: no question")
    if not options:
        raise EvalDataError(f"index {row['index']}: no options (column A is empty)")
    hint = None if is_missing(row["hint"]) else str(row["hint"])
    prompt = mmbench_prompt(str(row["question"]), hint, options)
    return MMBenchItem(index=int(row["index"]), prompt=prompt, options=tuple(options), image_b64=str(row["image"]))


def read_items(path: Path) -> list[MMBenchItem]:
    """One item per TSV row, in TSV order; a row without a question, options or image is an error."""
    items = []
    for row in read_tsv(path).to_dict("records"):
        if not isinstance(row["image"], str) or not row["image"].strip():
            raise EvalDataError(f"{path}: index {row['index']}: empty image cell")
        try:
            items.append(item_from_row(row))
        except EvalDataError as error:
            raise EvalDataError(f"{path}: {error}") from error
    return items


def answer_record(item: MMBenchItem, answer: str, model_id: str) -> dict[str, Any]:
    return {"question_id": item.index, "round_id": 0, "prompt": item.prompt, "text": answer,
            "options": list(item.options), "option_char": list(item.option_chars),
            "answer_id": uuid.uuid4().hex, "model_id": model_id, "metadata": {}}


def _jsonl_predictions(path: Path) -> list[tuple[int, str]]:
    """(question_id, text) of every line of an answers jsonl, in file order."""
    pairs = []
    for lineno, record in read_numbered_jsonl(path):
        missing = [field for field in ("question_id", "text") if field not in record]
        if missing:
            raise EvalDataError(f"{path}:{lineno}: answer lacks {', '.join(missing)}")
        question_id, text = record["question_id"], record["text"]
        if not isinstance(question_id, int) or isinstance(question_id, bool):
            raise EvalDataError(f"{path}:{lineno}: question_id must be an integer (the TSV index), got {question_id!r}")
        if not isinstance(text, str):
            raise EvalDataError(f"{path}:{lineno}: text must be a string, got {text!r}")
        pairs.append((question_id, text))
    return pairs


def read_upload(path: Path):
    """The upload .xlsx as a DataFrame with empty cells as "" (not NaN: a prediction "None" stays
    text), its columns checked; a file that is not a readable workbook is an error naming it."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise EvalDataError(f"{path}: file not found")
    try:
        frame = pd.read_excel(path, engine="openpyxl", na_filter=False)
    except Exception as error:  # a damaged workbook raises BadZipFile, KeyError, an XML ParseError, ...
        raise EvalDataError(f"{path}: not a readable .xlsx workbook ({type(error).__name__}: {error})") from error
    missing = [column for column in UPLOAD_COLUMNS if column not in frame.columns]
    if missing:
        raise EvalDataError(f"{path}: missing columns {missing} (an upload file has {list(UPLOAD_COLUMNS)})")
    return frame


def _upload_predictions(path: Path) -> list[tuple[int, str]]:
    """(index, prediction) of every row of an upload .xlsx, in sheet order; an index must be an integer
    (``_is_integral``: 0.4 is not index 0, and the organisers' scorer would not match it to that row)."""
    pairs = []
    frame = read_upload(path)
    for row, (index, prediction) in enumerate(zip(frame["index"], frame["prediction"]), start=2):
        if not _is_integral(index):
            raise EvalDataError(f"{path}: row {row}: index {index!r} is not an integer")
        pairs.append((int(index), str(prediction)))
    return pairs


def read_predictions(path: Path, indices: list[int]) -> dict[int, str]:
    """index -> prediction of an answers jsonl or (by its suffix) an upload .xlsx, which must hold
    every TSV row (``indices``) exactly once and nothing else."""
    pairs = _upload_predictions(path) if Path(path).suffix.lower() == ".xlsx" else _jsonl_predictions(path)
    problem = coverage_problem(path, indices, [index for index, _ in pairs], "TSV rows")
    if problem:
        raise EvalDataError(problem)
    return dict(pairs)


def worksheet_text(prediction: str) -> str:
    """A prediction without the characters a worksheet cannot hold: control characters (openpyxl
    refuses them) and the XML non-characters (openpyxl writes them, and the workbook cannot be read)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("", XML_NON_CHARACTERS.sub("", str(prediction)))


def upload_text(prediction: str) -> str:
    """A prediction as the upload .xlsx reads back: worksheet text with line ends as "\\n" (XML reads
    them so); empty when it starts with "=" (openpyxl writes such text as a formula, which has no value)."""
    text = worksheet_text(prediction).replace("\r\n", "\n").replace("\r", "\n")
    return "" if len(text) > 1 and text.startswith("=") else text


def check_upload(upload_path: Path, answers_path: Path, tsv_path: Path) -> None:
    """The upload .xlsx holds every TSV row once, each with the answers jsonl's prediction."""
    indices = [int(index) for index in read_tsv(tsv_path)["index"]]
    upload = read_predictions(upload_path, indices)
    answers = read_predictions(answers_path, indices)
    blank = [index for index in indices if upload[index] == "" and upload_text(answers[index]) != ""]
    differ = [index for index in indices if upload[index] != "" and upload[index] != upload_text(answers[index])]
    parts = []
    if blank:
        parts.append(f"{len(blank)} of {len(indices)} rows without a prediction (index {listed(blank)})")
    if differ:
        parts.append(f"prediction differs from {answers_path} in {counted(len(differ), 'row')} "
                     f"(index {listed(differ)})")
    if parts:
        raise EvalDataError(f"{upload_path}: " + "; ".join(parts))


def write_upload(tsv_path: Path, answers_path: Path, out_path: Path) -> int:
    """The upload .xlsx: the TSV minus hint/category/source/image/comment/l2-category, with the raw
    answer text as ``prediction`` in column 6. Returns the number of rows.

    Characters that a worksheet cannot hold (``worksheet_text``; the official converter crashes on
    control characters) are removed from predictions, with a warning; the answers jsonl keeps the raw text."""
    frame = read_tsv(tsv_path)
    answers = read_predictions(answers_path, [int(index) for index in frame["index"]])
    upload = frame.drop(columns=[column for column in DROPPED_FOR_UPLOAD if column in frame.columns])
    predictions = [answers[int(index)] for index in frame["index"]]
    cleaned = [worksheet_text(text) for text in predictions]
    changed = sum(a != b for a, b in zip(predictions, cleaned))
    if changed:
        print(f"warning: removed characters a worksheet cannot hold from {changed} prediction(s) in {out_path}",
              file=sys.stderr)
    upload.insert(6, "prediction", cleaned)
    if tuple(upload.columns) != UPLOAD_COLUMNS:
        raise EvalDataError(f"{tsv_path}: upload columns would be {list(upload.columns)}, "
                            f"expected {list(UPLOAD_COLUMNS)}")
    with atomic_path(out_path) as temporary:
        upload.to_excel(temporary, index=False, engine="openpyxl")
    return len(upload)


def extract_letter(text: str, option_chars: tuple[str, ...]) -> str | None:
    """The option letter an answer starts with ("B", "B.", "(B) red", "B: red"), else None."""
    match = LEADING_LETTER.match(str(text))
    if match and match.group(1) in option_chars:
        return match.group(1)
    return None


@dataclass(frozen=True)
class MMBenchScore:
    strict_circular_accuracy: float      # the official exact match: str(prediction) == answer
    extracted_circular_accuracy: float   # the leading option letter compared instead
    per_category: dict[str, dict[str, float]]
    num_questions: int                   # circular groups
    num_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"strict_circular_accuracy": self.strict_circular_accuracy,
                "extracted_circular_accuracy": self.extracted_circular_accuracy,
                "per_category": self.per_category, "num_questions": self.num_questions,
                "num_rows": self.num_rows}


@dataclass(frozen=True)
class CircularResult:
    """One base question's circular outcome: right only when every row of its group is right."""

    question: int     # the base index (``index % 1e6``)
    category: str     # the base row's category
    strict: bool      # every row: str(prediction) == answer
    extracted: bool   # every row: the leading option letter == answer
    rows: int         # rows in the group (the base row and its circular copies)


def circular_results(answers_path: Path, tsv_path: Path) -> list[CircularResult]:
    """The circular outcome of every base question, by base index; the answers must hold every TSV
    row exactly once. ``score_answers``' accuracies are the means of ``strict`` and ``extracted``."""
    frame = read_tsv(tsv_path)
    for column in ("answer", "category"):
        if column not in frame.columns:
            raise EvalDataError(f"{tsv_path}: no '{column}' column; local scoring needs the dev split")
    rows = frame.to_dict("records")
    answers = read_predictions(answers_path, [int(row["index"]) for row in rows])
    empty = [index for index, prediction in answers.items() if str(prediction) == ""]
    if empty:
        print(f"warning: {answers_path}: {counted(len(empty), 'empty prediction')}, "
              f"scored as wrong (index {listed(empty)})",
              file=sys.stderr)
    strict: dict[int, bool] = defaultdict(lambda: True)
    extracted: dict[int, bool] = defaultdict(lambda: True)
    size: dict[int, int] = defaultdict(int)
    category: dict[int, str] = {}
    for row in rows:
        index = int(row["index"])
        group = index % CIRCULAR_BASE
        prediction, truth = answers[index], str(row["answer"])
        try:
            chars = item_from_row(row).option_chars
        except EvalDataError as error:
            raise EvalDataError(f"{tsv_path}: {error}") from error
        if truth not in chars:
            raise EvalDataError(f"{tsv_path}: index {index}: answer {truth!r} is not one of its options "
                                f"{', '.join(chars)}")
        strict[group] &= str(prediction) == truth
        extracted[group] &= extract_letter(prediction, chars) == truth
        size[group] += 1
        if index < CIRCULAR_BASE or group not in category:
            category[group] = str(row["category"])
    return [CircularResult(question=group, category=category[group], strict=strict[group],
                           extracted=extracted[group], rows=size[group]) for group in sorted(strict)]


def score_answers(answers_path: Path, tsv_path: Path) -> MMBenchScore:
    """Circular accuracy: a question counts only when every row of its group is right."""
    results = circular_results(answers_path, tsv_path)
    per_category: dict[str, dict[str, float]] = {}
    for name in sorted({result.category for result in results}):
        members = [result for result in results if result.category == name]
        per_category[name] = {"strict": sum(r.strict for r in members) / len(members),
                              "extracted": sum(r.extracted for r in members) / len(members),
                              "num_questions": len(members)}
    return MMBenchScore(strict_circular_accuracy=sum(r.strict for r in results) / len(results),
                        extracted_circular_accuracy=sum(r.extracted for r in results) / len(results),
                        per_category=per_category, num_questions=len(results),
                        num_rows=sum(r.rows for r in results))
