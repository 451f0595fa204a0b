"""Where each operator of a recipe runs under ``--executor ray``: on Ray, or on the default executor after it.

Data-Juicer 1.6.1's Ray executor runs an operator only when its class lists "ray" among its
``_supported_exec_modes``: filters, mappers and Data-Juicer's own ``ray_*`` deduplicators. It
refuses selectors (``topk_specified_field_selector``, our ``stats_quantile_tagger`` and
``repeat_to_cap_selector``), the default executor's deduplicators, groupers and aggregators. So a
recipe runs in two parts: its leading run of Ray operators on Ray, then everything from the first
other operator on, in recipe order, on the default executor (bettersynth.recipes.stages). No
operator moves past another: a filter after a selector sees the selector's output, so it stays after it.

``image_deduplicator`` is not swapped for Data-Juicer's ``ray_image_deduplicator`` (which needs no
Redis: its default backend is a set of Ray actors): the Ray one keeps whichever copy of an image
reaches its shared set first, which under parallel tasks is not the first in dataset order, and it
keeps one sample without images where ``image_deduplicator`` keeps them all; its export would
differ from the default executor's. A recipe that wants it names ``ray_image_deduplicator`` itself
(it runs only on Ray, so it must come before the first operator Ray refuses).

The operator classes (custom ones included) are read in a child process, which imports
Data-Juicer and the recipe's operator folders as the Data-Juicer run will; started by
bettersynth.recipes.stages:

    python -m bettersynth.recipes.placement RESOLVED.yaml OPERATORS.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

RAY, DEFAULT = "ray", "default"
# Data-Juicer's operator kinds (base classes in data_juicer.ops.base_op), named in the log
KINDS = ("Filter", "Mapper", "Deduplicator", "Selector", "Grouper", "Aggregator", "Pipeline")
NOT_SWAPPED = {"image_deduplicator": "ray_image_deduplicator"}


class PlacementError(ValueError):
    """A recipe that cannot be split between Ray and the default executor; the message says why."""


@dataclass(frozen=True)
class OperatorInfo:
    """What placement needs of one operator class."""

    kind: str                 # one of KINDS
    modes: tuple[str, ...]    # Data-Juicer's _supported_exec_modes
    accelerator: str          # "cpu" or "cuda" (the class's, or the recipe's ``accelerator`` argument)

    @classmethod
    def from_json(cls, payload: Mapping) -> "OperatorInfo":
        return cls(payload["kind"], tuple(payload["modes"]), payload["accelerator"])


def op_name(item: Mapping) -> str:
    return next(iter(item))


@dataclass(frozen=True)
class Placement:
    """The recipe's process list cut in two: the leading Ray operators and the rest."""

    on_ray: list[dict]
    on_default: list[dict]
    lines: list[str]          # what runs where and why, for the log

    @property
    def split(self) -> bool:
        return bool(self.on_ray) and bool(self.on_default)


def place(process: list[dict], operators: Mapping[str, OperatorInfo], gpu_here: bool) -> Placement:
    """Cut ``process`` after its leading Ray operators. ``gpu_here``: this node sees a CUDA device
    (Data-Juicer then runs the CUDA operators as Ray actors holding GPUs; else as CPU tasks)."""
    names = [op_name(item) for item in process]
    cut = next((index for index, name in enumerate(names) if RAY not in operators[name].modes), len(names))
    on_ray, on_default = names[:cut], names[cut:]
    ray_only = [name for name in on_default if DEFAULT not in operators[name].modes]
    if ray_only:
        raise PlacementError(f"{ray_only[0]} runs only on Ray, but it comes after {on_default[0]} "
                             f"({operators[on_default[0]].kind}), which Data-Juicer 1.6.1's Ray executor does not "
                             f"run: move it before {on_default[0]}, or use the default executor's equivalent")
    lines = []
    if on_ray:
        def where(name: str) -> str:
            if operators[name].accelerator != "cuda":
                return name
            return f"{name} (GPU actors)" if gpu_here else f"{name} (CUDA operator, on CPU: this node sees no GPU)"
        lines.append(f"on Ray: {', '.join(where(name) for name in on_ray)}")
    if on_default:
        first = on_default[0]
        lines.append(f"on the default executor{' after Ray' if on_ray else ''}: {', '.join(on_default)} "
                     f"(Data-Juicer 1.6.1's Ray executor does not run {first}, a {operators[first].kind}, "
                     f"and what follows it stays after it)")
    for name in on_default:
        if name in NOT_SWAPPED:
            lines.append(f"{name} stays on the default executor: {NOT_SWAPPED[name]} keeps whichever copy of an "
                         f"image reaches its shared set first, not the first in dataset order, so its export "
                         f"would differ")
    return Placement([dict(item) for item in process[:cut]], [dict(item) for item in process[cut:]], lines)


def read_operators(config: Mapping) -> tuple[dict[str, OperatorInfo], bool]:
    """Each operator of ``config['process']`` as Data-Juicer registers it (custom operators loaded from
    ``config['custom_operator_paths']``), and whether this node sees a CUDA device. Imports Data-Juicer."""
    from data_juicer.config.config import load_custom_operators
    from data_juicer.ops import OPERATORS, base_op
    from data_juicer.utils.resource_utils import is_cuda_available

    if config.get("custom_operator_paths"):
        load_custom_operators(config["custom_operator_paths"])
    operators = {}
    for item in config["process"]:
        name = op_name(item)
        cls = OPERATORS.modules.get(name)
        if cls is None:
            raise PlacementError(f"operator {name!r} is not a Data-Juicer operator (nor one of the recipe's "
                                 f"custom_operator_paths {config.get('custom_operator_paths') or []})")
        kind = next(kind for kind in KINDS if issubclass(cls, getattr(base_op, kind)))
        arguments = item[name] or {}
        operators[name] = OperatorInfo(kind, tuple(cls._supported_exec_modes),
                                       arguments.get("accelerator") or cls._accelerator)
    return operators, is_cuda_available()


def main(argv: list[str]) -> int:
    config_path, output_path = argv
    config = yaml.safe_load(Path(config_path).read_text())
    try:
        operators, gpu_here = read_operators(config)
    except PlacementError as error:
        print(f"bsynth recipe: {config_path}: {error}", file=sys.stderr, flush=True)
        return 1
    payload = {"gpu_here": gpu_here,
               "operators": {name: {"kind": info.kind, "modes": list(info.modes), "accelerator": info.accelerator}
                             for name, info in operators.items()}}
    Path(output_path).write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
