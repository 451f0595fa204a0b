"""Argument types shared by every ``bsynth`` command: one boolean parser, positive counts, optional text.

Booleans are spelled as the official kit's command lines spell them (``--restore_questions True``,
``--tune_mm_mlp_adapter True``); ``true/false``, ``1/0`` and ``yes/no`` are accepted too, in any case.

    parser.add_argument("--flag", type=parse_bool, nargs="?", const=True, default=False)
    parser.add_argument("--workers", type=positive_int)
    parser.add_argument("--split", type=folder_name)                                  # a name, not a path
    parser.add_argument("--setting", type=key_value, action="append", default=[])   # [(KEY, VALUE), ...]
"""

from __future__ import annotations

import argparse
import math

from bettersynth.paths import name_problem

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "y"), ("false", "0", "no", "n")


def parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {value!r}")


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def positive_number(value: str) -> float:
    """A finite number above 0 (a memory size): nan, inf, 0 and negatives are refused."""
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return number


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as (KEY, VALUE); the value may be empty or hold "=" (``--input "seed pool=a=b"``)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def folder_name(value: str) -> str:
    """One folder or file name, which a command puts into paths (``--split mmbench_dev_20230712``):
    not empty, not . or .., no / (``../x`` would reach outside the folder it names a part of)."""
    problem = name_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{value!r} cannot be used: {problem}")
    return value


def optional_str(value: str) -> str | None:
    """Text, with "" and "none" (any case) meaning no value."""
    return None if value.strip().lower() in ("", "none") else value
