"""The shape a run record (``run.json``, bettersynth.experiments.record) must have to be read.

``bsynth runs`` and ``bsynth report`` index into a record without further checks, so a record that is
truncated by hand, written by another tool or another schema is refused here, naming the first field
that is wrong (``stages.pretrain.log[3].loss``), instead of failing later with a traceback. Only
``exp_name`` is required; every other field may be absent or null (what has not run yet, or a record
written by hand), and a field that is there must have its type:

    schema 1 · exp_name text · editable {text: text} · seed, proxy_pretrain_samples integer
    recipe {path, file_sha256, operators: text} · seed_pool text · export, capped {path, sha256: text,
    samples: integer} · stages {<stage>: {log: [{step: integer >= 0, loss: number, ...}]}}
    artefacts {text: text}
    steps {text: seconds} · wall_time_s seconds (a finite number >= 0) · notes [text]
    scores.textvqa {accuracy: fraction, per_question {ids, accuracy: fractions}}
    scores.mmbench {strict_circular_accuracy, extracted_circular_accuracy: fraction,
                    per_question {ids, strict, extracted: booleans or fractions}}

A loss may be NaN or infinite (a diverged training is recorded as it was logged); a score may not: a
fraction is a number from 0 to 1 (an accuracy, a question's soft score). Question ids are text or
integers, each once, one per value.

    from bettersynth.experiments.record_schema import record_problem
    record_problem(json.loads(text))   # None, or "`stages.pretrain.log[3].loss` is 'x', not a number"
"""

from __future__ import annotations

import math
from typing import Any, Callable

SCHEMA_VERSION = 1
PER_QUESTION_VALUES = {"textvqa": ("accuracy",), "mmbench": ("strict", "extracted")}
TOTALS = {"textvqa": ("accuracy",), "mmbench": ("strict_circular_accuracy", "extracted_circular_accuracy")}


class SchemaProblem(ValueError):
    """The first field of a record that is not what the schema says (the message names it)."""


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_step(value: Any) -> bool:
    """A training step number: an integer >= 0 (the x of the loss curves)."""
    return is_integer(value) and value >= 0


def is_seconds(value: Any) -> bool:
    """A duration: a finite number, not negative (a table cannot show NaN, infinite or negative times)."""
    return is_number(value) and math.isfinite(value) and value >= 0


def is_fraction(value: Any) -> bool:
    """A number from 0 to 1 (an accuracy or a question's score; NaN is not one)."""
    return is_number(value) and 0 <= value <= 1


def is_question_value(value: Any) -> bool:
    """A per-question value: a score from 0 to 1, or MMBench's correctness (true or false)."""
    return isinstance(value, bool) or is_fraction(value)


def is_question_id(value: Any) -> bool:
    return is_text(value) or is_integer(value)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expect(value: Any, where: str, test: Callable[[Any], bool], kind: str) -> bool:
    """False for a value that is absent (None); SchemaProblem for one that fails ``test``."""
    if value is None:
        return False
    if not test(value):
        raise SchemaProblem(f"`{where}` is {short(value)}, not {kind}")
    return True


def mapping(record: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``record[key]`` when it is a JSON object, {} when absent; SchemaProblem otherwise."""
    value = record.get(key)
    return value if expect(value, where, lambda v: isinstance(v, dict), "an object") else {}


def items(record: dict[str, Any], key: str, where: str) -> list[Any]:
    """``record[key]`` when it is a list, [] when absent; SchemaProblem otherwise."""
    value = record.get(key)
    return value if expect(value, where, lambda v: isinstance(v, list), "a list") else []


def fields(record: dict[str, Any], where: str, test: Callable[[Any], bool], kind: str, *keys: str) -> None:
    for key in keys:
        expect(record.get(key), f"{where}{key}", test, kind)


def check_log(stage: str, entries: list[Any]) -> None:
    for index, entry in enumerate(entries):
        where = f"stages.{stage}.log[{index}]"
        expect(entry, where, lambda v: isinstance(v, dict), "an object")
        if not is_step(entry.get("step")):
            raise SchemaProblem(f"`{where}.step` is {short(entry.get('step'))}, not a step number (an integer >= 0)")
        if not is_number(entry.get("loss")):
            raise SchemaProblem(f"`{where}.loss` is {short(entry.get('loss'))}, not a number")


def check_scores(scores: dict[str, Any]) -> None:
    for benchmark, values in PER_QUESTION_VALUES.items():
        section = mapping(scores, benchmark, f"scores.{benchmark}")
        fields(section, f"scores.{benchmark}.", is_fraction, "a number from 0 to 1", *TOTALS[benchmark])
        questions = mapping(section, "per_question", f"scores.{benchmark}.per_question")
        if not questions:
            continue
        where = f"scores.{benchmark}.per_question"
        ids = questions.get("ids")
        if not isinstance(ids, list) or not all(is_question_id(item) for item in ids):
            raise SchemaProblem(f"`{where}.ids` is {short(ids)}, not a list of question ids")
        if len(set(ids)) != len(ids):
            twice = next(item for n, item in enumerate(ids) if item in ids[:n])
            raise SchemaProblem(f"`{where}.ids` holds the id {short(twice)} more than once")
        for key in values:
            column = questions.get(key)
            if not isinstance(column, list) or not all(is_question_value(item) for item in column):
                raise SchemaProblem(f"`{where}.{key}` is {short(column)}, not a list of numbers from 0 to 1 or "
                                    "booleans")
            if len(column) != len(ids):
                raise SchemaProblem(f"`{where}.{key}` holds {len(column)} values for {len(ids)} question ids")


def check_record(record: Any) -> None:
    """SchemaProblem naming the first field of ``record`` that does not match the module docstring."""
    if not isinstance(record, dict):
        raise SchemaProblem(f"it holds {type(record).__name__}, not a JSON object")
    if not is_text(record.get("exp_name")) or not record["exp_name"]:
        raise SchemaProblem(f"`exp_name` is {short(record.get('exp_name'))}, not a run's name")
    if record.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise SchemaProblem(f"`schema` is {short(record.get('schema'))}; this toolkit reads schema {SCHEMA_VERSION}")
    editable = mapping(record, "editable", "editable")
    fields(editable, "editable.", is_text, "text", *editable)
    fields(record, "", is_integer, "an integer", "seed", "proxy_pretrain_samples")
    fields(record, "", is_seconds, "a number of seconds (finite, >= 0)", "wall_time_s")
    fields(record, "", is_text, "text", "seed_pool")
    fields(mapping(record, "recipe", "recipe"), "recipe.", is_text, "text", "path", "file_sha256", "operators")
    for part in ("export", "capped"):
        data = mapping(record, part, part)
        fields(data, f"{part}.", is_text, "text", "path", "sha256")
        fields(data, f"{part}.", is_integer, "an integer", "samples")
    stages = mapping(record, "stages", "stages")
    for stage in stages:
        check_log(stage, items(mapping(stages, stage, f"stages.{stage}"), "log", f"stages.{stage}.log"))
    artefacts = mapping(record, "artefacts", "artefacts")
    fields(artefacts, "artefacts.", is_text, "a path", *artefacts)
    steps = mapping(record, "steps", "steps")
    fields(steps, "steps.", is_seconds, "a number of seconds (finite, >= 0)", *steps)
    for index, note in enumerate(items(record, "notes", "notes")):
        expect(note, f"notes[{index}]", is_text, "text")
    check_scores(mapping(record, "scores", "scores"))


def record_problem(record: Any) -> str | None:
    """What is wrong with ``record`` (the first problem), None when it is a usable run record."""
    try:
        check_record(record)
    except SchemaProblem as problem:
        return str(problem)
    return None
