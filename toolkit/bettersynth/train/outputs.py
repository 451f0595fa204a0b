"""The files a finished stage leaves in OUTPUT_DIR, written by the main process.

pretrain: ``mm_projector.bin`` (projector + mining under the official key names),
``config.json`` ({"stage", "mgm_options", "train_args"}), ``train_args.json``, ``trainer_state.json``.
finetune: the complete checkpoint folder of ``bettersynth.model.io.save_checkpoint`` (config.json,
safetensors shards, tokenizer, generation and preprocessor configs), ``train_args.json``,
``trainer_state.json``.
Then the stage's record of what it was made from (``made-from.json``, with the finishing time:
bettersynth.train.made_from), and last of all ``training_complete.json``: without it the outputs are
not to be trusted (a re-run
resumes and rewrites them). Called by run.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from bettersynth.model.io import save_checkpoint, save_projector
from bettersynth.files import write_json_atomic
from bettersynth.provenance import Provenance
from bettersynth.train.checkpoint import FINAL_MARKER, STATE_FILE, TrainerState
from bettersynth.train.made_from import record_finished

log = logging.getLogger(__name__)


def write_final_outputs(model, tokenizer, preprocessor, args, state: TrainerState, output_dir: Path,
                        made_from: Provenance) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.stage == "pretrain":
        save_projector(model, output_dir / "mm_projector.bin")
        write_json_atomic(output_dir / "config.json", {"stage": args.stage, "mgm_options": model.options.to_dict(),
                                                       "train_args": args.to_dict()})
    else:
        save_checkpoint(model, tokenizer, output_dir, preprocessor=preprocessor)
    write_json_atomic(output_dir / "train_args.json", args.to_dict())
    state.save(output_dir / STATE_FILE)
    finished_at = time.strftime("%Y-%m-%d %H:%M:%S")
    record_finished(output_dir, made_from, finished_at, state.made_during)
    write_json_atomic(output_dir / FINAL_MARKER, {"stage": args.stage, "global_step": state.global_step,
                                                  "time": finished_at})
    log.info("%s finished: outputs in %s", args.stage, output_dir)
