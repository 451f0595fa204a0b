"""What a training stage folder says about its run so far: status, logged steps, seed (no torch import).

Read by ``bsynth runs record`` (bettersynth.experiments.record) after every step of the main job,
so it must be cheap and must accept a stage that has not started, is running or is finished:

    absent    no folder, or nothing in it yet
    running   a record of what the stage is made from (``made-from.json``, written when a run
              starts) or a complete checkpoint, but no ``training_complete.json``
    finished  ``training_complete.json`` is there

The log is the trainer state's ``log_history`` (one entry per logged window: step, epoch, loss,
learning_rate, grad_norm, samples_per_second, tokens_per_second, data_wait_share): from the stage folder's
``trainer_state.json`` when finished, else from the latest complete checkpoint's (what a resumed
run continues from), else empty. The file names come from bettersynth.train.folders (no torch).

    from bettersynth.experiments.stages import read_stage
    read_stage(Path("output/training_dirs/MGM-2B-Pretrain-demo")).to_dict()
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bettersynth.experiments.record_schema import is_integer, is_number, is_step
from bettersynth.provenance import read_record, record_path
from bettersynth.train.folders import CHECKPOINT_MARKER, CHECKPOINT_PATTERN, FINAL_MARKER, STATE_FILE



class StageReadError(ValueError):
    """A trainer state file that exists but cannot be read, or a stage record with a seed that is not an
    integer (the message names the file)."""


@dataclass(frozen=True)
class StageProgress:
    folder: str
    status: str                       # "absent", "running" or "finished"
    global_step: int | None           # steps done, as the trainer state read says
    max_steps: int | None
    seed: int | None                  # the training seed in the stage's made-from record
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_complete_checkpoint(folder: Path) -> Path | None:
    """The complete ``checkpoint-<step>`` folder with the highest step, None when there is none."""
    found = []
    if folder.is_dir():
        for child in folder.iterdir():
            match = CHECKPOINT_PATTERN.match(child.name)
            if match and (child / CHECKPOINT_MARKER).is_file():
                found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def state_problem(state: Any) -> str | None:
    """What keeps ``state`` from being a trainer state the record can use (None when nothing does)."""
    if not isinstance(state, dict):
        return f"it holds {type(state).__name__}, not a JSON object"
    for key in ("global_step", "max_steps"):
        if state.get(key) is not None and not is_integer(state[key]):
            return f"`{key}` is {state[key]!r}, not an integer"
    log = state.get("log_history", [])
    if not isinstance(log, list):
        return f"`log_history` is {type(log).__name__}, not a list"
    for index, entry in enumerate(log):
        if not isinstance(entry, dict):
            return f"`log_history[{index}]` is {type(entry).__name__}, not an object"
        if not is_step(entry.get("step")):
            return f"`log_history[{index}].step` is {entry.get('step')!r}, not a step number (an integer >= 0)"
        if not is_number(entry.get("loss")):
            return f"`log_history[{index}].loss` is {entry.get('loss')!r}, not a number"
    return None


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not JSON, or bytes that are not UTF-8
        raise StageReadError(f"{path}: cannot read the trainer state ({error})") from error
    problem = state_problem(state)
    if problem is not None:
        raise StageReadError(f"{path}: not a usable trainer state: {problem}")
    return state


def recorded_seed(folder: Path, made_from: dict[str, Any] | None) -> int | None:
    """The training seed of the stage's made-from record, None when it names none."""
    settings = (made_from or {}).get("settings")
    seed = settings.get("seed") if isinstance(settings, dict) else None
    if seed is not None and not is_integer(seed):
        raise StageReadError(f"{record_path(folder)}: `settings.seed` is {seed!r}, not an integer")
    return seed


def read_stage(folder: Path) -> StageProgress:
    """The progress of the stage in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    made_from = read_record(folder) if folder.is_dir() else None
    seed = recorded_seed(folder, made_from)
    checkpoint = latest_complete_checkpoint(folder)
    if (folder / FINAL_MARKER).is_file():
        status, state_file = "finished", folder / STATE_FILE
    elif made_from is not None or checkpoint is not None:
        status, state_file = "running", checkpoint / STATE_FILE if checkpoint else None
    else:
        status, state_file = "absent", None
    state = read_state(state_file) if state_file is not None and state_file.is_file() else {}
    return StageProgress(folder=str(folder), status=status, global_step=state.get("global_step"),
                         max_steps=state.get("max_steps"), seed=seed,
                         log=list(state.get("log_history", [])))
