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
from bettersynth.eval.files import EvalDataError, coverage_problem, read_jsonl
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


def read_questions(path: Path) -> list[TextVQAQuestion]:
    """The questions in file order; a line missing a field is an error naming the line."""
    questions = []
    for number, record in enumerate(read_jsonl(path), start=1):
        missing = [key for key in ("question_id", "image", "text") if key not in record]
        if missing:
            raise EvalDataError(f"{path}: question {number} lacks {', '.join(missing)}")
        questions.append(TextVQAQuestion(str(record["question_id"]), str(record["image"]), str(record["text"])))
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
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise EvalDataError(f"{path}: not a TextVQA annotation file with a 'data' list ({error})") from error
    if not data:
        raise EvalDataError(f"{path}: no annotated questions")
    entries = []
    for position, entry in enumerate(data):
        try:
            entries.append(((str(entry["image_id"]), str(entry["question"]).lower()), list(entry["answers"])))
        except (KeyError, TypeError) as error:
            raise EvalDataError(f"{path}: data[{position}] lacks image_id/question/answers") from error
    return entries


def read_answer(path: Path, number: int, record: dict[str, Any]) -> tuple[QuestionKey, str]:
    """(question key, prediction) of answer line ``number``."""
    missing = [field for field in ("question_id", "prompt", "text") if field not in record]
    if missing:
        raise EvalDataError(f"{path}:{number}: answer lacks {', '.join(missing)}")
    try:
        question = question_of_prompt(str(record["prompt"]))
    except EvalDataError as error:
        raise EvalDataError(f"{path}:{number}: {error}") from error
    return (str(record["question_id"]), question), str(record["text"])


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
    answers = [read_answer(answers_path, number, record)
               for number, record in enumerate(read_jsonl(answers_path), start=1)]
    problem = coverage_problem(answers_path, [key for key, _ in entries], [key for key, _ in answers],
                               "questions", key_label)
    if problem:
        raise EvalDataError(problem)
    annotations = dict(entries)
    scores = []
    for key, prediction in answers:
        try:
            scores.append((key, soft_score(prediction, annotations[key])))
        except EvalDataError as error:
            raise EvalDataError(f"{annotations_path}: image {key[0]!r}: {error}") from error
    return scores


def score_answers(answers_path: Path, annotations_path: Path) -> TextVQAScore:
    """Mean soft score of the answers, which must answer every annotated question exactly once."""
    scores = [score for _, score in question_scores(answers_path, annotations_path)]
    return TextVQAScore(accuracy=sum(scores) / len(scores), num_questions=len(scores))
