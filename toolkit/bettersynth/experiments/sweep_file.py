"""Reading a sweep file (its format: bettersynth.experiments.sweep) into a ``Sweep``, refusing what cannot run.

    from bettersynth.experiments.sweep_file import load_sweep
    sweep = load_sweep(Path("sweep.yaml"), root=Path("."))    # SweepError naming the file, line or field

Everything a sweep would only find out about hours later is refused here, before anything runs
(``bsynth sweep`` exits 2): bytes that are not UTF-8 and YAML errors (with the line), a key given
twice, a key that is not one of ``KEYS`` (a typo such as ``seed:`` or ``proxy_pretrain_sample:``
would otherwise be ignored and run the official budget), a value of the wrong type (``true`` is not
an integer), a seed outside numpy's 0 .. 2**32 - 1 (what ``bsynth runs record`` accepts), a proxy
budget below 1, a seed or budget listed twice (two runs of one name would share a tree), a recipe
that is not a file, two recipes of one file name, names the pipeline cannot carry (a newline, ``{``),
``env`` names that are not environment variable names and ``env`` values that are not scalars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bettersynth.experiments.record import INT_RANGES
from bettersynth.paths import path_problem

KEYS = ("name", "recipes", "seeds", "proxy_pretrain_samples", "gpus_per_run", "env")
SET_BY_THE_SWEEP = ("EXP_NAME", "DEMO_EXP_NAME", "RECIPE", "SEED", "PROXY_PRETRAIN_SAMPLES", "PRETRAIN_DATASET",
                    "BSYNTH_OUTPUT")
SET_PER_SLOT = ("CUDA_VISIBLE_DEVICES", "INFER_CUDA_IDX", "MASTER_PORT")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SweepError(ValueError):
    """A sweep file that cannot be run (the message names the file and the field)."""


@dataclass(frozen=True)
class SweepRun:
    name: str
    recipe: Path
    seed: int
    proxy: int | None

    def environment(self, export: Path) -> dict[str, str]:
        return {"EXP_NAME": self.name, "DEMO_EXP_NAME": self.name, "RECIPE": str(self.recipe),
                "SEED": str(self.seed), "PROXY_PRETRAIN_SAMPLES": "" if self.proxy is None else str(self.proxy),
                "PRETRAIN_DATASET": str(export)}


@dataclass(frozen=True)
class Sweep:
    name: str
    recipes: tuple[Path, ...]
    seeds: tuple[int, ...]
    proxies: tuple[int | None, ...]
    env: dict[str, str] = field(default_factory=dict)
    gpus_per_run: int | None = None

    def runs(self) -> list[SweepRun]:
        """Recipe-major: the runs of one recipe follow each other."""
        return [SweepRun(f"{self.name}-{recipe.stem}-s{seed}" + ("" if proxy is None else f"-p{proxy}"),
                         recipe, seed, proxy)
                for recipe in self.recipes for proxy in self.proxies for seed in self.seeds]


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives one key twice (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)):  # the base class refuses unhashable keys itself
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    """The YAML document of ``path``; SweepError naming the line of a byte that is not UTF-8 or of a YAML error."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SweepError(f"{path}: cannot read the sweep file ({error})") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise SweepError(f"{path}, line {line}: byte 0x{data[error.start]:02x} is not UTF-8 text") from error
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        context = f" ({error.context})" if error.context else ""
        raise SweepError(f"{path}{where}: not valid YAML: {error.problem}{context}") from error
    except yaml.YAMLError as error:
        raise SweepError(f"{path}: not valid YAML: {error}") from error


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def listed(payload: dict, key: str, source: Path, default: list | None = None) -> list:
    """A non-empty list (its items' types are the caller's to check, then ``without_repeats``)."""
    value = payload.get(key, default)
    if not isinstance(value, list) or not value:
        raise SweepError(f"{source}: `{key}` must be a non-empty list, got {value!r}")
    return value


def without_repeats(values: list, key: str, source: Path) -> tuple:
    """``values`` (checked for their type: 1 and 1.0 are equal, so a repeat is only told after that)."""
    repeated = sorted({repr(item) for item in values if values.count(item) > 1})
    if repeated:
        raise SweepError(f"{source}: `{key}` lists {', '.join(repeated)} more than once (each value is one run)")
    return tuple(values)


def seeds_of(payload: dict, source: Path) -> tuple[int, ...]:
    low, high = INT_RANGES["SEED"]
    seeds = listed(payload, "seeds", source)
    for seed in seeds:
        if not is_integer(seed) or not low <= seed <= high:
            raise SweepError(f"{source}: `seeds` must be integers from {low} to {high}, got {seed!r}")
    return without_repeats(seeds, "seeds", source)


def proxies_of(payload: dict, source: Path) -> tuple[int | None, ...]:
    proxies = listed(payload, "proxy_pretrain_samples", source, [None])
    for proxy in proxies:
        if proxy is not None and (not is_integer(proxy) or proxy < 1):
            raise SweepError(f"{source}: `proxy_pretrain_samples` must be integers >= 1 or null (the official "
                             f"run), got {proxy!r}")
    return without_repeats(proxies, "proxy_pretrain_samples", source)


def recipes_of(payload: dict, source: Path, root: Path) -> tuple[Path, ...]:
    recipes = []
    for given in without_repeats(listed(payload, "recipes", source), "recipes", source):
        if not isinstance(given, str) or not given.strip():
            raise SweepError(f"{source}: `recipes` must be paths of recipe files, got {given!r}")
        problem = path_problem(given)
        if problem:
            raise SweepError(f"{source}: recipe {given!r} cannot be used: {problem}")
        if not (root / given).is_file():
            raise SweepError(f"{source}: recipe {given} is not a file under {root}")
        recipes.append(Path(given))
    by_name: dict[str, Path] = {}
    for recipe in recipes:
        if recipe.stem in by_name and (root / recipe).resolve() == (root / by_name[recipe.stem]).resolve():
            raise SweepError(f"{source}: recipe {recipe} is listed twice (its runs would be run twice)")
        if recipe.stem in by_name:
            raise SweepError(f"{source}: recipes {by_name[recipe.stem]} and {recipe} share the file name "
                             f"{recipe.stem}; their runs would share names")
        by_name[recipe.stem] = recipe
    return tuple(recipes)


def env_of(payload: dict, source: Path, gpus_per_run: int | None) -> dict[str, str]:
    env = payload.get("env") or {}
    if not isinstance(env, dict):
        raise SweepError(f"{source}: `env` must be a mapping of Editable Part names to values")
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
            raise SweepError(f"{source}: `env` key {key!r} is not an environment variable name")
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and "\0" in value):
            raise SweepError(f"{source}: `env.{key}` must be a text, number or boolean, got {value!r}")
    env = {key: str(value) for key, value in env.items()}
    for key in SET_BY_THE_SWEEP:
        if key in env:
            raise SweepError(f"{source}: `env` sets {key}, which the sweep sets for each run")
    for key in SET_PER_SLOT if gpus_per_run is not None else ():
        if key in env:
            raise SweepError(f"{source}: `env` sets {key}, which gpus_per_run sets for each run's GPUs")
    return env


def load_sweep(path: Path, root: Path) -> Sweep:
    """The sweep of ``path``; recipe paths are relative to the checkout ``root`` (as RECIPE is)."""
    payload = read_yaml(path)
    if not isinstance(payload, dict):
        raise SweepError(f"{path}: a sweep is a mapping with name, recipes and seeds, got {type(payload).__name__}")
    unknown = [str(key) for key in payload if key not in KEYS]
    if unknown:
        raise SweepError(f"{path}: unknown key(s) {', '.join(unknown)}; a sweep's keys are {', '.join(KEYS)}")
    name = payload.get("name")
    if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or path_problem(name):
        raise SweepError(f"{path}: `name` must be one folder name, got {name!r}")
    recipes = recipes_of(payload, path, root)
    seeds, proxies = seeds_of(payload, path), proxies_of(payload, path)
    gpus_per_run = payload.get("gpus_per_run")
    if gpus_per_run is not None and (not is_integer(gpus_per_run) or gpus_per_run < 1):
        raise SweepError(f"{path}: `gpus_per_run` must be a positive integer, got {gpus_per_run!r}")
    return Sweep(name, recipes, seeds, proxies, env_of(payload, path, gpus_per_run), gpus_per_run)
