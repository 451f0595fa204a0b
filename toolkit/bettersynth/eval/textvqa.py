"""TextVQA (val, 0.5.1): question file, prompts, answer lines and local accuracy (eval-spec.md).

Questions come one JSON object a line (``question_id``, ``image``, ``text``); the prompt is
``<image>\\n`` + ``text``. Answer lines are ``{"question_id", "prompt", "text", "answer_id",
"model_id", "metadata"}``. Scoring matches each answer to its annotation by (image id, lower-cased
question) and averages the VQA soft score of the normalised prediction. The question id is the image
id, so an image's questions share it: a question is identified by that pair, and the answers must
hold every annotated question exactly once (missing, duplicate and unknown ones are an error).

    from bettersynth.eval.textvqa import question_scores, read_questions, score_answers
    questions = read_questions(layout.textvqa_questions)
    result = score_answers(Path("bm1.jsonl"), layout.textvqa_annotations)  # result.accuracy
    per_question = question_scores(Path("bm1.jsonl"), layout.textvqa_annotations)  # [(key, score), ...]
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bettersynth.template import textvqa_message
from bettersynth.eval.files import EvalDataError, coverage_problem, read_numbered_jsonl
from bettersynth.eval.normalize import normalize_answer

OCR_LINE_PREFIX = "Reference OCR token:"
ANSWERS_PER_QUESTION = 10
MAX_NEW_TOKENS = 128


@dataclass(frozen=True)
class TextVQAQuestion:
    question_id: str
    image: str
    text: str

    @property
    def prompt(self) -> str:
        """The user message sent to the model (the template wraps it)."""
        return textvqa_message(self.text)


def _is_question_id(value: Any) -> bool:
    """A question id is the image id: a non-empty string (an integer is taken as its text)."""
    return (isinstance(value, str) and value != "") or (isinstance(value, int) and not isinstance(value, bool))


def read_questions(path: Path) -> list[TextVQAQuestion]:
    """The questions in file order; a line missing a field or holding one of the wrong type is an
    error naming the file and line, and a file without questions is an error."""
    questions = []
    for lineno, record in read_numbered_jsonl(path):
        missing = [key for key in ("question_id", "image", "text") if key not in record]
        if missing:
            raise EvalDataError(f"{path}:{lineno}: question lacks {', '.join(missing)}")
        if not _is_question_id(record["question_id"]):
            raise EvalDataError(f"{path}:{lineno}: question_id must be a non-empty string, "
                                f"got {record['question_id']!r}")
        for key in ("image", "text"):
            if not isinstance(record[key], str) or not record[key]:
                raise EvalDataError(f"{path}:{lineno}: {key} must be a non-empty string, got {record[key]!r}")
        questions.append(TextVQAQuestion(str(record["question_id"]), record["image"], record["text"]))
    if not questions:
        raise EvalDataError(f"{path}: no questions")
    return questions


def answer_record(question: TextVQAQuestion, answer: str, model_id: str) -> dict[str, Any]:
    return {"question_id": question.question_id, "prompt": question.text, "text": answer,
            "answer_id": uuid.uuid4().hex, "model_id": model_id, "metadata": {}}


def question_of_prompt(prompt: str) -> str:
    """The lower-cased question of a TextVQA prompt: with three lines and a "Reference OCR token:"
    line, the first line that is not the OCR line; with two lines (no OCR), the first; one line, it."""
    lines = prompt.split("\n")
    if len(lines) == 3 and any(line.startswith(OCR_LINE_PREFIX) for line in lines):
        question = lines[1] if lines[0].startswith(OCR_LINE_PREFIX) else lines[0]
    elif len(lines) in (1, 2):
        question = lines[0]
    else:
        raise EvalDataError(f"unrecognised TextVQA prompt ({len(lines)} lines): {prompt!r}")
    return question.lower()


def soft_score(prediction: str, ground_truths: list[str]) -> float:
    """VQA accuracy of one prediction: for each of the ten answers left out in turn, min(1, matches
    among the other nine / 3), averaged. Both sides are normalised first."""
    if len(ground_truths) != ANSWERS_PER_QUESTION:
        raise EvalDataError(f"expected {ANSWERS_PER_QUESTION} ground-truth answers, got {len(ground_truths)}")
    predicted = normalize_answer(prediction)
    truths = [normalize_answer(answer) for answer in ground_truths]
    total = 0.0
    for left_out in range(len(truths)):
        matches = sum(1 for index, truth in enumerate(truths) if index != left_out and truth == predicted)
        total += min(1.0, matches / 3)
    return total / len(truths)


QuestionKey = tuple[str, str]  # (image id, lower-cased question)


def read_annotations(path: Path) -> list[tuple[QuestionKey, list[str]]]:
    """(image id, lower-cased question) and the ten answers of each entry of ``{"data": [...]}``, in file order."""
    path = Path(path)
    if not path.is_file():
        raise EvalDataError(f"{path}: TextVQA annotation file not found")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EvalDataError(f"{path}: not valid JSON ({error})") from error
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise EvalDataError(f"{path}: not a TextVQA annotation file (expected an object with a 'data' list)")
    if not data:
        raise EvalDataError(f"{path}: no annotated questions")
    entries = []
    for position, entry in enumerate(data):
        if not isinstance(entry, dict) or any(key not in entry for key in ("image_id", "question", "answers")):
            raise EvalDataError(f"{path}: data[{position}] lacks image_id/question/answers")
        answers = entry["answers"]
        if not isinstance(answers, list) or len(answers) != ANSWERS_PER_QUESTION \
                or not all(isinstance(answer, str) for answer in answers):
            raise EvalDataError(f"{path}: data[{position}] (image {entry['image_id']!r}): answers must be a list of "
                                f"{ANSWERS_PER_QUESTION} strings, got {answers!r}")
        if not isinstance(entry["question"], str):
            raise EvalDataError(f"{path}: data[{position}] (image {entry['image_id']!r}): question must be a string, "
                                f"got {entry['question']!r}")
        entries.append(((str(entry["image_id"]), entry["question"].lower()), answers))
    return entries


def read_answer(path: Path, lineno: int, record: dict[str, Any]) -> tuple[QuestionKey, str]:
    """(question key, prediction) of the answer on line ``lineno``."""
    missing = [field for field in ("question_id", "prompt", "text") if field not in record]
    if missing:
        raise EvalDataError(f"{path}:{lineno}: answer lacks {', '.join(missing)}")
    if not _is_question_id(record["question_id"]):
        raise EvalDataError(f"{path}:{lineno}: question_id must be a non-empty string, got {record['question_id']!r}")
    for field in ("prompt", "text"):
        if not isinstance(record[field], str):
            raise EvalDataError(f"{path}:{lineno}: {field} must be a string, got {record[field]!r}")
    try:
        question = question_of_prompt(record["prompt"])
    except EvalDataError as error:
        raise EvalDataError(f"{path}:{lineno}: {error}") from error
    return (str(record["question_id"]), question), record["text"]


def key_label(key: QuestionKey) -> str:
    return f"{key[0]} {key[1]!r}"


@dataclass(frozen=True)
class TextVQAScore:
    accuracy: float
    num_questions: int

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "num_questions": self.num_questions}


def question_scores(answers_path: Path, annotations_path: Path) -> list[tuple[QuestionKey, float]]:
    """(question key, VQA soft score) of every answer, in answer order; the answers must answer every
    annotated question exactly once. ``score_answers``' accuracy is the mean of these scores."""
    entries = read_annotations(annotations_path)
    answers = [read_answer(answers_path, lineno, record) for lineno, record in read_numbered_jsonl(answers_path)]
    problem = coverage_problem(answers_path, [key for key, _ in entries], [key for key, _ in answers],
                               "questions", key_label)
    if problem:
        raise EvalDataError(problem)
    annotations = dict(entries)
    return [(key, soft_score(prediction, annotations[key])) for key, prediction in answers]


def score_answers(answers_path: Path, annotations_path: Path) -> TextVQAScore:
    """Mean soft score of the answers, which must answer every annotated question exactly once."""
    scores = [score for _, score in question_scores(answers_path, annotations_path)]
    return TextVQAScore(accuracy=sum(scores) / len(scores), num_questions=len(scores))
