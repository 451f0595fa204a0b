"""The runs of a sweep on GPU slots: one after another on every GPU, or several at once on disjoint GPU sets.

    slots = plan_slots(2, "0,1,2,3", os.environ)   # [Slot(0, ("0", "1"), 29500), Slot(1, ("2", "3"), 29501)]
    run_jobs([Job(name, command, env, log), ...], slots, cwd, state, say=print)

With ``gpus_per_run`` k and N GPUs there are floor(N / k) slots; slot i gets GPUs i*k .. i*k+k-1 as
``CUDA_VISIBLE_DEVICES`` and ``INFER_CUDA_IDX`` (the eval shards pin themselves to these same ids) and
its own ``MASTER_PORT`` (base + i), so two trainings on one host never share a GPU or a rendezvous
port. Without ``gpus_per_run`` there is one slot that changes nothing: each run sees every GPU.
The GPUs are ``--gpus`` when given (any id list; the tests give ids on a CPU machine), else
``CUDA_VISIBLE_DEVICES`` when set, else every CUDA device torch sees.

Each job runs in its own process group, its output appended to its log (``run_in_group`` runs one
command so, for the sweep's recipe runs). A job that ends is
``finished`` (exit status 0 and nothing missing from its outputs, ``Job.missing_output``) or ``failed``
and the others go on. SIGINT, SIGTERM or SIGHUP reaching
the sweep is passed on to every running job's group; they are recorded as ``interrupted`` and the
sweep stops with Interrupted (the caller exits 128 + N). Every change is written to the state file
(``SweepState``, atomically): a later sweep starts again every run that is not ``finished``. A running
job's process group is in the state too: runs left running by a sweep killed outright
(``left_running``) are found by the next one, which refuses to start beside them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bettersynth.files import write_json_atomic
from bettersynth.recipes.run import Interrupted, stop_signals_raise

POLL_SECONDS = 0.5
DEFAULT_MASTER_PORT = 29500  # deepspeed's
MAX_PORT = 65535


class SlotError(ValueError):
    """GPUs that cannot be split into the asked slots (the message says what is visible)."""


@dataclass(frozen=True)
class Slot:
    index: int
    gpus: tuple[str, ...] | None   # None: every GPU the job sees
    master_port: int | None

    def environment(self) -> dict[str, str]:
        if self.gpus is None:
            return {}
        ids = ",".join(self.gpus)
        return {"CUDA_VISIBLE_DEVICES": ids, "INFER_CUDA_IDX": ids, "MASTER_PORT": str(self.master_port)}

    def describe(self) -> str:
        if self.gpus is None:
            return "every GPU it sees"
        return f"GPUs {','.join(self.gpus)} (MASTER_PORT {self.master_port})"


def visible_gpus(given: str | None, environ: Mapping[str, str]) -> tuple[list[str], str]:
    """(GPU ids, where they come from): ``given`` (--gpus), else CUDA_VISIBLE_DEVICES, else torch's count."""
    if given is not None:
        return [gpu.strip() for gpu in given.split(",") if gpu.strip()], f"--gpus {given!r}"
    if environ.get("CUDA_VISIBLE_DEVICES") is not None:
        visible = environ["CUDA_VISIBLE_DEVICES"]
        return [gpu.strip() for gpu in visible.split(",") if gpu.strip()], f"CUDA_VISIBLE_DEVICES={visible!r}"
    import torch  # only here: the count needs the driver

    return [str(index) for index in range(torch.cuda.device_count())], "torch.cuda.device_count()"


def gpu_slots(gpus_per_run: int, gpus: list[str], source: str, base_port: int) -> list[Slot]:
    """floor(len(gpus) / gpus_per_run) slots of disjoint GPUs; SlotError when not even one run gets its GPUs."""
    if len(set(gpus)) != len(gpus):
        raise SlotError(f"the GPU list from {source} names a GPU twice: {gpus}")
    count = len(gpus) // gpus_per_run
    if count == 0:
        raise SlotError(f"gpus_per_run is {gpus_per_run} but {len(gpus)} GPU(s) are visible ({source}): leave "
                        "gpus_per_run out to run one run after another, or list the GPUs with --gpus")
    return [Slot(index, tuple(gpus[index * gpus_per_run:(index + 1) * gpus_per_run]), base_port + index)
            for index in range(count)]


def plan_slots(gpus_per_run: int | None, gpus: str | None, environ: Mapping[str, str]) -> list[Slot]:
    """The sweep's slots: one that changes nothing without ``gpus_per_run``, else ``gpu_slots`` of the
    visible GPUs with MASTER_PORT (else 29500) as the base port; every slot's port must be a port number."""
    if gpus_per_run is None:
        return [Slot(0, None, None)]
    port = environ.get("MASTER_PORT") or str(DEFAULT_MASTER_PORT)
    if not port.isdigit():
        raise SlotError(f"MASTER_PORT must be a port number, got {port!r}")
    slots = gpu_slots(gpus_per_run, *visible_gpus(gpus, environ), int(port))
    if not 1 <= slots[0].master_port <= slots[-1].master_port <= MAX_PORT:
        raise SlotError(f"MASTER_PORT={port!r} gives the runs at once the ports {slots[0].master_port} "
                        f"to {slots[-1].master_port}; they must lie from 1 to {MAX_PORT}")
    return slots


class StateError(ValueError):
    """A sweep's state file that exists but cannot be read (the message names it)."""


def read_state(path: Path) -> dict[str, Any]:
    """The state in ``path``: an object whose ``runs`` and ``recipes`` map names to objects; StateError otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not JSON, or bytes that are not UTF-8
        raise StateError(f"{path}: cannot read the sweep's state ({error}); repair it, or move it away to start "
                         "every run again (each resumes in its own tree)") from error
    shape_ok = isinstance(data, dict) and all(
        isinstance(data.get(key, {}), dict) and all(isinstance(entry, dict) for entry in data.get(key, {}).values())
        for key in ("runs", "recipes"))
    if not shape_ok:
        raise StateError(f"{path}: not a sweep's state (an object whose runs and recipes map names to objects); "
                         "repair it, or move it away to start every run again (each resumes in its own tree)")
    return data


class SweepState:
    """``sweep.json``: the status of every run (and recipe) of a sweep, rewritten atomically on every change."""

    def __init__(self, path: Path, name: str):
        self.path = Path(path)
        self.data: dict[str, Any] = {"name": name, "recipes": {}, "runs": {}}
        if self.path.exists():  # a folder or a broken file: a StateError
            self.data = {"recipes": {}, "runs": {}, **read_state(self.path)}

    def status(self, run: str) -> str | None:
        return self.data["runs"].get(run, {}).get("status")

    def set_run(self, run: str, **entry: Any) -> None:
        self.data["runs"][run] = entry
        write_json_atomic(self.path, self.data)

    def set_recipe(self, stem: str, **entry: Any) -> None:
        self.data["recipes"][stem] = entry
        write_json_atomic(self.path, self.data)

    def unfinished(self, runs: list[str]) -> list[str]:
        return [run for run in runs if self.status(run) != "finished"]

    def left_running(self) -> dict[str, int]:
        """Runs recorded as running whose process group is still alive, by name: left by a sweep that was
        killed outright (SIGKILL, no chance to stop them), still writing into their trees."""
        alive = {}
        for run, entry in self.data["runs"].items():
            group = entry.get("process_group")
            if entry.get("status") == "running" and isinstance(group, int) and group > 1:
                try:
                    os.killpg(group, 0)
                except (ProcessLookupError, OverflowError):  # OverflowError: a number no process group has
                    continue
                except PermissionError:  # alive, another user's
                    pass
                alive[run] = group
        return alive


@dataclass(frozen=True)
class Job:
    name: str
    command: list[str]
    env: dict[str, str]      # the whole environment, before the slot's GPUs and port
    log: Path
    tree: Path               # the run's output tree (recorded in the state)
    # after exit status 0: what its outputs lack (a run that exits 0 but left no complete result), or None
    missing_output: Callable[[], str | None] = lambda: None


@dataclass
class Running:
    job: Job
    slot: Slot
    process: subprocess.Popen
    started: float


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def start(job: Job, slot: Slot, cwd: Path, state: SweepState, say: Callable[[str], None]) -> Running:
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "a", encoding="utf-8") as handle:
        process = subprocess.Popen(job.command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                                   env={**job.env, **slot.environment()}, process_group=0)
    running = Running(job, slot, process, time.monotonic())
    state.set_run(job.name, status="running", log=str(job.log), tree=str(job.tree),
                  gpus=None if slot.gpus is None else list(slot.gpus), started=now(), process_group=process.pid)
    say(f"[sweep] {job.name}: started on {slot.describe()} (log {job.log})")
    return running


def record_end(running: Running, status: str, exit_status: int | None, state: SweepState,
               say: Callable[[str], None], reason: str | None = None) -> None:
    job, slot = running.job, running.slot
    seconds = round(time.monotonic() - running.started, 1)
    state.set_run(job.name, status=status, exit_status=exit_status, log=str(job.log), tree=str(job.tree),
                  gpus=None if slot.gpus is None else list(slot.gpus), ended=now(), seconds=seconds,
                  reason=reason)
    if status == "finished":
        say(f"[sweep] {job.name}: finished in {seconds:.0f} s")
    else:
        say(f"[sweep] {job.name}: {status.upper()} with exit status {exit_status} after {seconds:.0f} s"
            + (f": {reason}" if reason else "") + f" (see {job.log})")


def end_of(running: Running, exit_status: int, state: SweepState, say: Callable[[str], None]) -> None:
    """Records a job that ended by itself: finished only with exit status 0 and nothing missing from its outputs."""
    if exit_status != 0:
        record_end(running, "failed", exit_status, state, say)
        return
    missing = running.job.missing_output()
    record_end(running, "failed" if missing else "finished", exit_status, state, say, reason=missing)


def run_in_group(command: list[str], log: Path, cwd: Path, env: dict[str, str]) -> int:
    """Runs one command to its end in a process group of its own, its output appended to ``log``; a stop
    signal reaching the sweep meanwhile is passed on to it, then Interrupted is raised."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with stop_signals_raise(), open(log, "a", encoding="utf-8") as handle:
        process = subprocess.Popen(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                   process_group=0)
        try:
            return process.wait()
        except Interrupted as stop:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, stop.signum)
            process.wait()
            raise


def stop_all(running: dict[int, Running], signum: int, state: SweepState, say: Callable[[str], None]) -> None:
    """Passes ``signum`` to every running job's process group, waits for them, records them interrupted."""
    for entry in running.values():
        with suppress(ProcessLookupError):
            os.killpg(entry.process.pid, signum)
    for entry in running.values():
        record_end(entry, "interrupted", entry.process.wait(), state, say)


def run_jobs(jobs: list[Job], slots: list[Slot], cwd: Path, state: SweepState, say: Callable[[str], None]) -> None:
    """Runs ``jobs`` in order on the first free slot until all have ended (module docstring)."""
    pending = deque(jobs)
    running: dict[int, Running] = {}
    with stop_signals_raise():
        try:
            while pending or running:
                for slot in slots:
                    if slot.index not in running and pending:
                        running[slot.index] = start(pending.popleft(), slot, cwd, state, say)
                time.sleep(POLL_SECONDS)
                for index, entry in list(running.items()):
                    exit_status = entry.process.poll()
                    if exit_status is not None:
                        del running[index]
                        end_of(entry, exit_status, state, say)
        except Interrupted as stop:
            stop_all(running, stop.signum, state, say)
            raise
        except Exception:  # the sweep itself failed (say, its state could not be written): no orphans
            stop_all(running, signal.SIGTERM, state, say)
            raise
