"""Shared fixtures of the data-format tests: Data-Juicer's own conversion tools and file writers.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/data -q``.

The reference tools are loaded from the installed py-data-juicer wheel by file path
(``tests/data/dj_reference.py``, test-only: not part of the package); tests that need them
skip, naming the reason, where the installed wheel does not ship them.
"""

from __future__ import annotations

import pytest

from dj_reference import ReferenceUnavailable, load_tool


def _reference(name: str):
    try:
        return load_tool(name)
    except ReferenceUnavailable as exc:
        pytest.skip(f"Data-Juicer's {name} tool is not available: {exc}")


@pytest.fixture(scope="session")
def dj_to_llava_reference():
    """The ``dj_to_llava`` module of the installed Data-Juicer (call ``.main``)."""
    return _reference("dj_to_llava")


@pytest.fixture(scope="session")
def llava_to_dj_reference():
    """The ``llava_to_dj`` module of the installed Data-Juicer (call ``.main``)."""
    return _reference("llava_to_dj")
