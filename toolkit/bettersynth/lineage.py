"""Whether the parts of one experiment belong together: finished stages, the finetune made from this
pretrain's projector, the answers made by this finetuned checkpoint (bettersynth.provenance).

``bsynth pack`` refuses a submission whose parts disagree, so new data can never be shipped with a
model trained on the old data or with an earlier checkpoint's answers:

    problems, notes = lineage_problems(pretrain_dir, finetune_dir, [bm1_jsonl, mmbench_xlsx])

A stage is finished when its folder holds ``training_complete.json`` (written last by the trainer).
The finetune stage's record names the fingerprint of the ``mm_projector.bin`` it started from, and
each eval output's record the fingerprint of the checkpoint that answered; a mismatch is a
problem. An answers file without a record (made outside the main job) is a note, not a problem.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def lineage_problems(pretrain_dir: Path, finetune_dir: Path, answers: Sequence[Path]) -> tuple[list[str], list[str]]:
    """(problems, notes) of one experiment's stage folders and eval outputs."""
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
    return problems, notes
