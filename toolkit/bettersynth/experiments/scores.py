"""Per-question eval results of one run, for its run record (bettersynth.experiments.record).

For ``output/eval_results/<CKPT>/`` and the eval data it was scored against:

    textvqa: {"accuracy", "num_questions", "inputs": {"answers", "eval data": fingerprints},
              "per_question": {"ids": [...], "accuracy": [VQA soft score, ...]}}
    mmbench: {"split", "strict_circular_accuracy", "extracted_circular_accuracy", "num_questions",
              "num_rows", "inputs": {"answers", "eval data": fingerprints},
              "per_question": {"ids": [base index, ...], "category": [...], "strict": [bool, ...],
                               "extracted": [bool, ...]}}

The per-question values come from the scorers themselves (``textvqa.question_scores``,
``mmbench.circular_results``) and the totals are their means, so they equal ``bsynth score run``'s.
A TextVQA question's id is ``<image id>/<lower-cased question>`` (``#2``, ``#3``... appended to a
pair the annotations hold more than once). A section is recomputed only when the fingerprint of
its answers or eval data changed (else the previous record's section is kept), so recording after
every step stays cheap; when the eval data cannot be read (moved, or another ``--data-root``), the
previous section of the same answers is kept too, with a note, rather than dropped. A section is
left out while its answers are absent, and when their record names a checkpoint other than the
current finetune folder (an eval of an earlier training).

    from bettersynth.experiments.scores import eval_sections
    sections, notes = eval_sections(eval_dir, finetune_dir, data_root, previous={})
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bettersynth.eval import mmbench, textvqa
from bettersynth.eval.files import EvalDataError
from bettersynth.eval.results import ResultFiles
from bettersynth.paths import MMBENCH_SPLIT
from bettersynth.provenance import fingerprint, read_record


def textvqa_id(key: tuple[str, str], seen: Counter) -> str:
    """``image/question``, with ``#n`` for the n-th answer to a pair asked more than once."""
    seen[key] += 1
    base = f"{key[0]}/{key[1]}"
    return base if seen[key] == 1 else f"{base}#{seen[key]}"


def textvqa_section(answers: Path, annotations: Path) -> dict[str, Any]:
    scored = textvqa.question_scores(answers, annotations)
    seen: Counter = Counter()
    values = [score for _, score in scored]
    return {"accuracy": sum(values) / len(values), "num_questions": len(values),
            "per_question": {"ids": [textvqa_id(key, seen) for key, _ in scored], "accuracy": values}}


def mmbench_section(answers: Path, tsv: Path, split: str) -> dict[str, Any]:
    results = mmbench.circular_results(answers, tsv)
    return {"split": split,
            "strict_circular_accuracy": sum(r.strict for r in results) / len(results),
            "extracted_circular_accuracy": sum(r.extracted for r in results) / len(results),
            "num_questions": len(results), "num_rows": sum(r.rows for r in results),
            "per_question": {"ids": [r.question for r in results], "category": [r.category for r in results],
                             "strict": [r.strict for r in results], "extracted": [r.extracted for r in results]}}


def made_from_other_checkpoint(artefact: Path, checkpoint: Path) -> bool:
    """True when ``artefact``'s record names a checkpoint whose fingerprint is not ``checkpoint``'s now."""
    recorded = ((read_record(artefact) or {}).get("inputs") or {}).get("checkpoint")
    return recorded is not None and recorded != fingerprint(checkpoint)


def eval_sections(eval_dir: Path, finetune_dir: Path, data_root: Path | None,
                  previous: dict[str, Any], split: str = MMBENCH_SPLIT) -> tuple[dict[str, Any], list[str]]:
    """The textvqa and mmbench sections present now, and notes on those left out or failing.

    ``data_root``: the eval data's asset root (None: ``bettersynth.eval.assets.eval_layout``'s choice),
    looked up only when there are answers to score. ``previous``: the sections of the last record."""
    from bettersynth.eval.assets import eval_layout

    files = ResultFiles(Path(eval_dir))
    # (name, answers file, the artefact whose record names the checkpoint: the eval step's output)
    wanted = [("textvqa", files.textvqa_answers, files.textvqa_answers),
              ("mmbench", files.mmbench_answers(split), files.mmbench_upload(split))]
    sections: dict[str, Any] = {}
    notes: list[str] = []
    for name, answers, recorded in wanted:
        if not answers.is_file():
            continue
        if made_from_other_checkpoint(recorded, finetune_dir):
            notes.append(f"{name}: {answers} was made from an earlier checkpoint than {finetune_dir}; not scored")
            continue
        data = eval_layout(data_root)
        truth = data.layout.textvqa_annotations if name == "textvqa" else data.mmbench_tsv(split)
        inputs = {"answers": fingerprint(answers), "eval data": fingerprint(truth)}
        if (previous.get(name) or {}).get("inputs") == inputs:
            sections[name] = previous[name]
            continue
        try:
            section = textvqa_section(answers, truth) if name == "textvqa" else mmbench_section(answers, truth, split)
        except EvalDataError as error:
            earlier = previous.get(name) or {}
            if (earlier.get("inputs") or {}).get("answers") == inputs["answers"]:
                sections[name] = earlier
                notes.append(f"{name}: not scored again: {error}; the earlier scores of the same answers are kept")
            else:
                notes.append(f"{name}: not scored: {error}")
            continue
        sections[name] = {**section, "inputs": inputs}
    return sections, notes
