"""What a training stage is made from, and what a run does with the stage folder it finds.

A stage's provenance (bettersynth.provenance) is the fingerprints of what it reads — the training
data, the image folder, the pretrained projector (finetune), the LLM and the two vision towers —
and every flag that changes the trained weights, with the global batch in place of its per-device
split. Flags that only change how the run goes (where it writes, logging and checkpoint cadence,
data-loader workers, compiling, gradient checkpointing, the deepspeed config, the split of the
global batch) are left out, so changing them resumes or reuses the stage. The record is
``OUTPUT_DIR/made-from.json``: written when a run starts (it describes the checkpoints it will
save) and rewritten with the finishing time when the stage completes, so the folder's fingerprint
changes with every completed run and an eval of a retrained checkpoint reruns.

Decisions (``reconcile``), on the folder a run is pointed at:
- finished and made from the same inputs and settings: nothing to do;
- finished from other inputs: said why (``pretrain: training data changed (sha … → …) since it was
  made: training again``), then trained again;
- checkpoints from other inputs: said why, then started over; from the same: resumed;
- ``--overwrite_output_dir True``: started over.
Used by bettersynth.train.run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bettersynth.provenance import Provenance, judge, write_record
from bettersynth.train.args import TrainArgs
from bettersynth.train.checkpoint import FINAL_MARKER, discard_previous_run, latest_checkpoint

log = logging.getLogger(__name__)

# Flags that do not change the weights a stage ends with (same math: see README "Real runs").
OPERATIONAL_FLAGS = frozenset({
    "output_dir", "logging_steps", "save_steps", "save_strategy", "save_total_limit", "report_to",
    "dataloader_num_workers", "local_rank", "overwrite_output_dir", "stop_after_steps", "torch_compile",
    "gradient_checkpointing", "deepspeed", "per_device_train_batch_size", "gradient_accumulation_steps",
    "per_device_eval_batch_size", "evaluation_strategy", "lazy_preprocess", "shared_output_wait",
})
# Flags naming what the stage reads: recorded by content (fingerprint), not by path.
INPUT_FLAGS = {"data_path": "training data", "image_folder": "image folder",
               "pretrain_mm_mlp_adapter": "projector", "model_name_or_path": "LLM",
               "vision_tower": "vision tower", "vision_tower_aux": "aux vision tower"}


def stage_provenance(args: TrainArgs, global_batch: int) -> Provenance:
    """What a run of ``args`` with this global batch makes its stage from."""
    flags = args.to_dict()
    inputs = {label: Path(flags[flag]) if flags[flag] else None for flag, label in INPUT_FLAGS.items()}
    settings = {name: value for name, value in flags.items() if name not in OPERATIONAL_FLAGS | set(INPUT_FLAGS)}
    settings["global_batch"] = global_batch
    return Provenance.of(args.stage, inputs, settings)


def judge_stage(output_dir: Path, current: Provenance, overwrite: bool) -> str:
    """What to do with ``output_dir``: "reuse", "resume", "fresh" (nothing there) or "restart"
    (train from scratch after clearing it); says why when it is not what the user may expect."""
    stage = current.step
    if overwrite:
        return "restart"
    finished = (output_dir / FINAL_MARKER).is_file()
    if not finished and latest_checkpoint(output_dir) is None:
        return "fresh"
    verdict = judge(output_dir, current)
    if finished:
        if verdict.fresh:
            log.info("%s already holds a finished %s stage made from the same inputs and settings; nothing to do "
                     "(pass --overwrite_output_dir True to train it again)", output_dir, stage)
            return "reuse"
        log.warning("%s: %s: training again", stage, verdict.reason)
        return "restart"
    if verdict.fresh:
        return "resume"
    log.warning("%s: the checkpoints in %s cannot be resumed: %s: starting over", stage, output_dir, verdict.reason)
    return "restart"


def prepare_stage_dir(output_dir: Path, current: Provenance, decision: str) -> None:
    """Main process only: clears the folder for a restart and records what this run is made from."""
    if decision == "restart":
        discard_previous_run(output_dir)
    if decision in ("restart", "fresh"):
        output_dir.mkdir(parents=True, exist_ok=True)
        write_record(output_dir, current)


def record_finished(output_dir: Path, current: Provenance, finished_at: str, made_during: list[list[float]]) -> None:
    """Rewrites the record with the finishing time and when the runs that trained it ran (before the
    completion marker is written)."""
    write_record(output_dir, current, finished=finished_at, made_during=made_during)

