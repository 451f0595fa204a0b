"""Which asset layout the evaluation reads its questions, images and annotations from.

Order: an explicit ``--data-root`` (a folder with the official layout), else the environment
variable ``BSYNTH_EVAL_DATA_ROOT``, else the real layout when its TextVQA question file and MMBench
TSV exist, else the embedded demo layout (``bettersynth.paths.demo_layout()``). The choice is
always reported, so a demo run is never mistaken for a real one.

    from bettersynth.eval.assets import eval_layout
    choice = eval_layout(None)      # EvalLayout(kind="real" | "demo" | "given", layout=AssetLayout)
    print(choice.describe())
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bettersynth import paths
from bettersynth.paths import MMBENCH_SPLIT, AssetLayout

DATA_ROOT_ENV = "BSYNTH_EVAL_DATA_ROOT"


@dataclass(frozen=True)
class EvalLayout:
    kind: str  # "given" (flag or environment), "real" or "demo"
    layout: AssetLayout

    def __post_init__(self) -> None:
        if self.kind not in ("given", "real", "demo"):
            raise ValueError(f"unknown eval layout kind {self.kind!r}")

    def mmbench_tsv(self, split: str = MMBENCH_SPLIT) -> Path:
        """The TSV of an MMBench split (``<eval_dir>/mmbench/<split>.tsv``)."""
        return self.layout.eval_dir / "mmbench" / f"{split}.tsv"

    def describe(self) -> str:
        names = {"given": "the layout given by --data-root / " + DATA_ROOT_ENV,
                 "real": "the real layout", "demo": "the demo layout (synthetic data, tiny models)"}
        return f"eval data: {names[self.kind]} at {self.layout.root}"


def eval_layout(data_root: str | os.PathLike | None = None) -> EvalLayout:
    root = data_root or os.environ.get(DATA_ROOT_ENV)
    if root:
        return EvalLayout("given", AssetLayout(Path(root).resolve()))
    real = paths.real_layout()
    if real.textvqa_questions.is_file() and real.mmbench_tsv.is_file():
        return EvalLayout("real", real)
    return EvalLayout("demo", paths.demo_layout())
