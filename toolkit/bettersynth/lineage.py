"""Whether the parts of one experiment belong together: finished stages, the finetune made from this
pretrain's projector, the answers made by this finetuned checkpoint, the scores made from these
answers (bettersynth.provenance).

``bsynth pack`` refuses a submission whose parts disagree, so new data can never be shipped with a
model trained on the old data, with an earlier checkpoint's answers, or with the scores of earlier
answers (a ``bsynth score run`` that failed leaves the last scores.json in place):

    problems, notes = lineage_problems(pretrain_dir, finetune_dir, [bm1_jsonl, mmbench_xlsx],
                                       scores_json, {"textvqa answers": bm1_jsonl, "mmbench answers": mmbench_xlsx})

A stage is finished when its folder holds ``training_complete.json`` (written last by the trainer).
The finetune stage's record names the fingerprint of the ``mm_projector.bin`` it started from, each
eval output's record the fingerprint of the checkpoint that answered, and the scores' record those
of the answer files (the main job's labels); a mismatch is a problem. An answers or scores file
without a record (made outside the main job) is a note, not a problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bettersynth.provenance import fingerprint, read_record, short
from bettersynth.train.folders import FINAL_MARKER


def stage_problem(stage_dir: Path, stage: str) -> str | None:
    if (stage_dir / FINAL_MARKER).is_file():
        return None
    return f"{stage_dir}: the {stage} stage has not finished (no {FINAL_MARKER}; rerun the main job to resume it)"


def made_from_problem(artefact: Path, label: str, source: Path, what: str) -> str | None:
    """A problem when ``artefact``'s record names another ``label`` input than ``source`` is now."""
    record = read_record(artefact)
    if record is None or label not in record["inputs"]:
        return None
    recorded, current = record["inputs"][label], fingerprint(source)
    if recorded == current:
        return None
    return (f"{artefact}: {what} another {label} ({short(recorded)}) than {source} ({short(current)}); "
            "rerun the main job so that they match")


def lineage_problems(pretrain_dir: Path, finetune_dir: Path, answers: Sequence[Path], scores: Path | None = None,
                     scored_answers: Mapping[str, Path] | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of one experiment's stage folders, eval outputs and scores (when there)."""
    problems = [problem for problem in (stage_problem(pretrain_dir, "pretrain"),
                                        stage_problem(finetune_dir, "finetune"))
                if problem]
    projector = made_from_problem(finetune_dir, "projector", pretrain_dir / "mm_projector.bin", "was finetuned from")
    if projector:
        problems.append(projector)
    notes = []
    for path in answers:
        if not path.is_file():
            continue
        if read_record(path) is None:
            notes.append(f"{path}: no record of the checkpoint that made it (made outside the main job?)")
            continue
        problem = made_from_problem(path, "checkpoint", finetune_dir, "holds the answers of")
        if problem:
            problems.append(problem)
    if scores is not None and scores.is_file():
        if read_record(scores) is None:
            notes.append(f"{scores}: no record of the answers it scores (made outside the main job?)")
        for label, source in (scored_answers or {}).items():
            problem = made_from_problem(scores, label, source, "holds the scores of")
            if problem:
                problems.append(problem)
    return problems, notes
