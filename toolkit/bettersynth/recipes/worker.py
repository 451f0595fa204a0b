"""The Data-Juicer process of ``bsynth recipe run``; started by bettersynth.recipes.run, not by hand:

    python -m bettersynth.recipes.worker RESOLVED.yaml PROGRESS.json

Runs the resolved recipe with the executor its ``executor_type`` names (as ``dj-process`` does; on
Ray after joining the cluster as bettersynth.recipes.ray_cluster says) and
writes PROGRESS.json: per op, the samples left and the seconds taken (read from Data-Juicer's own
progress lines through a log sink), and on failure the operator that failed and the error. Exit
status 0 on success, 1 on failure. Running Data-Juicer in its own process keeps its global state
(logger, multiprocessing start method, Ray) out of the caller and makes any crash a non-zero exit.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Optional

import yaml

OP_DONE = re.compile(r"OP \[(?P<op>[^\]]+)\] Done in (?P<seconds>[\d.]+)s\. Left (?P<left>\d+) samples")
OP_FAILED = re.compile(r"An error occurred during Op \[(?P<op>[^\]]+)\]")
LOADED = re.compile(r"(?P<count>\d+) samples left after filtering empty text")


class ProgressRecorder:
    """A loguru sink that keeps Data-Juicer's per-op progress and the op it reports as failing."""

    def __init__(self) -> None:
        self.ops: list[dict] = []
        self.failed_op: Optional[str] = None
        self.loaded: Optional[int] = None

    def __call__(self, message) -> None:
        text = message.record["message"]
        done = OP_DONE.search(text)
        if done:
            self.ops.append({"op": done["op"], "seconds": float(done["seconds"]), "left": int(done["left"])})
        loaded = LOADED.search(text)
        if loaded:
            self.loaded = int(loaded["count"])
        failed = OP_FAILED.search(text)
        if failed:
            self.failed_op = failed["op"]


def op_in_traceback(error: BaseException) -> Optional[str]:
    """Name of the innermost Data-Juicer operator whose method was running when ``error`` was raised
    (e.g. an operator's constructor, which runs before Data-Juicer logs anything about it)."""
    from data_juicer.ops.base_op import OP

    name = None
    while error is not None:
        frame = error.__traceback__
        while frame is not None:
            owner = frame.tb_frame.f_locals.get("self")
            if isinstance(owner, OP):
                name = owner._name
            frame = frame.tb_next
        if name:
            return name
        error = error.__cause__ or error.__context__
    return None


def build_executor(cfg):
    if cfg.executor_type == "default":
        from data_juicer.core import DefaultExecutor

        return DefaultExecutor(cfg)
    if cfg.executor_type == "ray":
        from data_juicer.core.executor.ray_executor import RayExecutor

        from bettersynth.recipes.ray_cluster import check_gpus

        check_gpus(cfg)
        return RayExecutor(cfg)
    raise ValueError(f"unsupported executor_type {cfg.executor_type!r} (bsynth runs 'default' and 'ray')")


def main(argv: list[str]) -> int:
    config_path, progress_path = argv
    from loguru import logger

    recorder = ProgressRecorder()
    progress: dict = {"ops": recorder.ops}
    start = time.time()
    try:
        from data_juicer.config import init_configs

        resolved = yaml.safe_load(Path(config_path).read_text())
        if resolved["executor_type"] == "ray":
            from bettersynth.recipes.ray_cluster import connect

            # before init_configs, whose resource checks join Ray without the run's environment
            connect(resolved["ray_address"], resolved["custom_operator_paths"])
        cfg = init_configs(["--config", config_path])
        logger.add(recorder, level="INFO")  # after init_configs, which resets loguru's handlers
        build_executor(cfg).run()
        status = 0
    except Exception as error:
        progress["failed_op"] = recorder.failed_op or op_in_traceback(error)
        progress["error"] = f"{type(error).__name__}: {error}"
        where = f"operator {progress['failed_op']}" if progress["failed_op"] else "Data-Juicer (no operator running)"
        print(f"bsynth recipe: FAILED in {where}: {progress['error']}", file=sys.stderr, flush=True)
        logger.exception("recipe failed")
        status = 1
    progress["loaded_samples"] = recorder.loaded
    progress["seconds"] = round(time.time() - start, 3)
    Path(progress_path).write_text(json.dumps(progress, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
