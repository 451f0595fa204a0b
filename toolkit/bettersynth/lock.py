"""One writer at a time per output tree (``output/`` or ``$BSYNTH_OUTPUT``).

The main job holds the lock for its whole run; every command that writes under the tree
(``recipe run``, ``train``, ``eval``, ``score run``, ``pack``, ``sample``, ``dj2llava``, ...) takes it
too unless its parent already holds it. A second job in the same tree stops at once, naming the
holder::

    output/ is in use by PID 4242 (bash train_mgm_2b_stage_1.sh, started 2026-12-02 10:15:03 on host a1):
    wait for it to finish or stop it, or give this run another output tree (BSYNTH_OUTPUT=...)

The lock is ``flock(2)`` on ``<tree>/.bsynth.lock``: the kernel releases it when the holder dies, so a
crashed job never blocks the next one; the file keeps the holder's PID, command and start time,
and the next taker says it takes over from a holder that is no longer running. The lock belongs
to the open file, so the main job (bash) opens the file on a descriptor, lets ``bsynth lock take
--fd N`` lock it, and keeps it held by keeping the descriptor open; its children inherit
``BSYNTH_LOCK_HELD=<tree>`` and do not lock again.

    with output_lock(paths.output_dir(), "bsynth recipe run ..."):   # raises OutputLockError
        ...
    exec 9<>"$OUTPUT_DIR/.bsynth.lock"; bsynth lock take --fd 9 --pid $$ --holder "..."   # the main job
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".bsynth.lock"
HELD_ENV = "BSYNTH_LOCK_HELD"


class OutputLockError(RuntimeError):
    """The output tree is held by another live process (the message names it)."""


def lock_file(tree: Path) -> Path:
    return Path(tree) / LOCK_NAME


def held_by_parent(tree: Path) -> bool:
    """True when this process runs under the holder of ``tree``'s lock (the main job)."""
    held = os.environ.get(HELD_ENV)
    return bool(held) and Path(held).resolve() == Path(tree).resolve()


def describe(holder: dict) -> str:
    return (f"PID {holder.get('pid', '?')} ({holder.get('command', '?')}, started {holder.get('started', '?')} "
            f"on host {holder.get('host', '?')})")


def read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode("utf-8", errors="replace").strip()
    try:
        holder = json.loads(text) if text else {}
    except ValueError:
        return {"command": f"unreadable lock file content {text[:80]!r}"}
    return holder if isinstance(holder, dict) else {}


def write_holder(fd: int, pid: int, command: str) -> None:
    holder = {"pid": pid, "command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "host": socket.gethostname()}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(holder) + "\n").encode())
    os.fsync(fd)


def lock_descriptor(fd: int, tree: Path, pid: int, command: str) -> str | None:
    """Locks the open lock file ``fd`` for ``pid``; returns a take-over message for a dead holder's
    lock, None otherwise. Raises OutputLockError when a live process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputLockError(f"{tree} is in use by {describe(read_holder(fd))}: wait for it to finish or stop "
                              "it, or give this run another output tree (BSYNTH_OUTPUT=...)") from None
    previous = read_holder(fd)
    write_holder(fd, pid, command)
    if previous:
        return f"taking over the lock of {tree} from {describe(previous)}, which is no longer running"
    return None


@contextmanager
def output_lock(tree: Path, command: str) -> Iterator[None]:
    """Holds ``tree``'s lock for the block (nothing to do under a parent that holds it)."""
    tree = Path(tree).resolve()
    if held_by_parent(tree):
        yield
        return
    tree.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file(tree), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        note = lock_descriptor(fd, tree, os.getpid(), command)
        if note:
            print(f"bsynth: {note}", flush=True)
        previous_env = os.environ.get(HELD_ENV)
        os.environ[HELD_ENV] = str(tree)  # for the processes this command starts
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean release leaves nothing to take over
            if previous_env is None:
                os.environ.pop(HELD_ENV, None)
            else:
                os.environ[HELD_ENV] = previous_env
    finally:
        os.close(fd)


def writes_under(tree: Path, outputs: Sequence[Path | None]) -> bool:
    """True when any of ``outputs`` lies inside ``tree``."""
    tree = Path(tree).resolve()
    return any(output is not None and Path(output).resolve().is_relative_to(tree) for output in outputs)


def take_handler(args) -> int:
    """``bsynth lock take --fd N``: lock the descriptor the calling shell keeps open (the main job)."""
    tree = Path(args.tree).resolve() if args.tree else None
    if tree is None:
        from bettersynth import paths

        tree = paths.output_dir()
    try:
        note = lock_descriptor(args.fd, tree, args.pid, args.holder)
    except OutputLockError as error:
        print(f"bsynth lock: {error}", flush=True)
        return 1
    if note:
        print(f"bsynth lock: {note}", flush=True)
    return 0


def register(subparsers) -> None:
    lock = subparsers.add_parser("lock", help="the output tree's lock (for the main job)")
    commands = lock.add_subparsers(dest="lock_command", metavar="COMMAND", required=True)
    take = commands.add_parser("take", help="lock an open descriptor of <tree>/.bsynth.lock for the calling shell",
                               description=__doc__)
    take.add_argument("--fd", type=int, required=True, help="descriptor of the lock file, opened by the shell")
    take.add_argument("--pid", type=int, required=True, help="the holder's PID (the shell's $$)")
    take.add_argument("--holder", required=True, help="what holds it, as shown to a second job")
    take.add_argument("--tree", help="the output tree (default: the toolkit's output folder)")
    take.set_defaults(func=take_handler)
