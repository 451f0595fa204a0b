"""Turns a recipe YAML into the exact config Data-Juicer runs (``recipe.resolved.yaml``).

- ``${NAME}`` and ``${NAME:-default}`` in any string are replaced from the environment, so model
  names are chosen in one place: a recipe writes ``hf_clip: ${BSYNTH_CLIP:-openai/clip-vit-base-patch32}``
  and the name resolves under DATA_JUICER_EXTERNAL_MODELS_HOME (the demo's tiny models or the real
  ones, same name); exporting BSYNTH_CLIP picks another model without editing the file. A value
  that is exactly one reference is read as YAML (``min_score: ${BSYNTH_CLIP_MIN:-0.2}`` is a number).
- ``custom_operator_paths`` are relative to the recipe file.
- The run's own settings win over the file: the input (as ``dataset``, one local file, with
  ``dataset_path`` emptied: Data-Juicer splits dataset_path at spaces, a weighted mixture, so a
  folder with a space in its name would break every recipe), export_path, work_dir, executor_type,
  np (when given), ray_address (``--ray-address``, else RAY_ADDRESS, else ``local``: a Ray instance of
  the run's own) and ``skip_op_error: false``
  (Data-Juicer's default true would turn a failing op into an empty, successful run).

Used by ``bettersynth.recipes.run``; ``resolve_recipe`` returns the config and a line per override.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from bettersynth.recipes.config import RecipeRun

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RecipeError(ValueError):
    """A recipe file that cannot be run; the message names the file."""


def expand_variables(value, environ: Mapping[str, str], where: str):
    """``value`` with every ``${NAME}`` / ``${NAME:-default}`` in its strings replaced."""
    if isinstance(value, dict):
        return {key: expand_variables(item, environ, where) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_variables(item, environ, where) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is None:
            raise RecipeError(f"{where}: uses ${{{name}}}, which is not set (and has no :-default)")
        return default

    whole = VARIABLE.fullmatch(value)
    if whole:
        # a value that is one reference takes the type its text has in YAML: 0.2 is a number
        text = substitute(whole)
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise RecipeError(f"{where}: ${{{whole.group(1)}}} gives {text!r}, which is not a YAML value "
                              f"({getattr(error, 'problem', None) or error})") from error
    return VARIABLE.sub(substitute, value)


def load_recipe(path: Path) -> dict:
    """The YAML mapping (UTF-8), checked to hold a non-empty ``process`` list of one-op mappings and
    ``custom_operator_paths`` (when given) as a list of paths."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise RecipeError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    except yaml.YAMLError as error:
        raise RecipeError(yaml_error_message(path, error)) from error
    if config is None:
        raise RecipeError(f"{path}: the recipe is empty; a recipe is a mapping with a `process` list")
    if not isinstance(config, dict):
        raise RecipeError(f"{path}: a recipe is a mapping with a `process` list, not a {type(config).__name__}")
    process = config.get("process")
    if not isinstance(process, list) or not process:
        raise RecipeError(f"{path}: `process` must be a non-empty list of operators")
    for number, op in enumerate(process, start=1):
        if not isinstance(op, dict) or len(op) != 1:
            raise RecipeError(f"{path}: process item {number} must be a mapping of one operator name to its "
                              f"arguments, got {op!r}")
        (name, arguments), = op.items()
        if arguments is not None and not isinstance(arguments, dict):
            raise RecipeError(f"{path}: process item {number} ({name}): the arguments must be a mapping of "
                              f"parameter names to values (or empty), got {arguments!r}")
    operator_paths = config.get("custom_operator_paths")
    if operator_paths is not None and not (isinstance(operator_paths, list)
                                           and all(isinstance(item, str) and item for item in operator_paths)):
        raise RecipeError(f"{path}: `custom_operator_paths` must be a list of paths (relative to the recipe), "
                          f"got {operator_paths!r}")
    return config


def yaml_error_message(path: Path, error: yaml.YAMLError) -> str:
    """"FILE:LINE:COLUMN: not valid YAML: what" (1-based, where the parser stopped), or without the
    position when the parser gave none."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"{path}: not valid YAML: {problem}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None:
        context += f" started at line {context_mark.line + 1}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def resolve_recipe(run: RecipeRun, environ: Mapping[str, str]) -> tuple[dict, list[str]]:
    """(Data-Juicer config for this run, one note per setting of the file that the run replaced)."""
    config = expand_variables(load_recipe(run.recipe), environ, str(run.recipe))
    config["custom_operator_paths"] = [str((run.recipe.parent / path).resolve())
                                       for path in config.get("custom_operator_paths") or []]
    forced = {"dataset_path": "", "dataset": {"configs": [{"type": "local", "path": str(run.staged_dataset)}]},
              "export_path": str(run.dj_export), "work_dir": str(run.work_dir), "executor_type": run.executor,
              "skip_op_error": False}
    if run.np is not None:
        forced["np"] = run.np
    if run.executor == "ray":
        forced["ray_address"] = run.ray_address or environ.get("RAY_ADDRESS") or "local"
    notes = [f"{key}: {config[key]!r} in the recipe replaced by {value!r}"
             for key, value in forced.items() if key in config and config[key] != value]
    config.update(forced)
    return config, notes


def write_resolved(config: dict, path: Path) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
