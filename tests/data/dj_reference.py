"""Data-Juicer's own format-conversion tools, loaded from the installed wheel, to compare against
(test and benchmark code: it is not part of the bettersynth package).

py-data-juicer ships its ``tools/`` folder in the wheel (1.6.1 does). Parity tests and the data
benchmark load ``dj_to_llava.py`` / ``llava_to_dj.py`` from there by file path and call their
``main`` functions with the same inputs as ours.

Those scripts import ``fire`` for their command line; it is in the dev dependencies.

    from dj_reference import load_tool        # tests/data/ (and bench/data_formats.py) put it on sys.path
    tool = load_tool("dj_to_llava")          # ReferenceUnavailable (with the reason) if absent
    tool.main("in.jsonl", "out.json", restore_questions=True, original_llava_ds_path=...)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import types
from pathlib import Path

DISTRIBUTION = "py-data-juicer"
TOOL_FILES = {
    "dj_to_llava": "tools/fmt_conversion/multimodal/data_juicer_format_to_target_format/dj_to_llava.py",
    "llava_to_dj": "tools/fmt_conversion/multimodal/source_format_to_data_juicer_format/llava_to_dj.py",
}


class ReferenceUnavailable(Exception):
    """The installed Data-Juicer does not provide the tool (the message says why)."""


def tool_path(name: str) -> Path:
    """Absolute path of one of Data-Juicer's tool scripts in the installed distribution."""
    if name not in TOOL_FILES:
        raise ValueError(f"unknown tool {name!r}; known: {sorted(TOOL_FILES)}")
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ReferenceUnavailable(f"{DISTRIBUTION} is not installed") from exc
    wanted = TOOL_FILES[name]
    for file in dist.files or []:
        if file.as_posix() == wanted:
            return Path(file.locate()).resolve()
    raise ReferenceUnavailable(f"{DISTRIBUTION} {dist.version} does not ship {wanted}")


def load_tool(name: str) -> types.ModuleType:
    """Import the tool script as a module (under a private name, not as ``__main__``)."""
    path = tool_path(name)
    spec = importlib.util.spec_from_file_location(f"_data_juicer_reference_{name}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise ReferenceUnavailable(f"{path} cannot be imported: {exc}") from exc
    return module
