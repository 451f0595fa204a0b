"""``bsynth step``: run a command that makes one artefact, unless the artefact is already made from
the same inputs and settings (bettersynth.provenance); record what made it when the command succeeds.

    bsynth step --name cap --output output/processed_data/processed_data.jsonl-200k.jsonl \
        --input "curated data=output/processed_data/processed_data.jsonl" --setting "max samples=200000" \
        -- bsynth sample output/processed_data/processed_data.jsonl \
           output/processed_data/processed_data.jsonl-200k.jsonl 200000

Prints ``[skip] cap: ... was made from the same inputs and settings`` and exits 0 without running the
command, or says why it runs (``curated data changed (sha 1a2b3c4d… → 5e6f7a8b…) since it was made``)
and exits with the command's status (127 when it is not found, 126 when it cannot be run, as a
shell). The record (with when the command ran: ``made_during``) is written only after the command
exited 0 and the output exists; the old record is removed before the
command starts, so an output the command leaves half rewritten is never taken for a finished one.
The main job runs its validation, cap, conversion, eval and scoring steps through this; the recipe
and the training stages keep their own records (same module) because they also resume or keep the
last good output.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from bettersynth.arguments import key_value
from bettersynth.provenance import Provenance, judge, record_path, write_record


def run_step(name: str, output: Path, inputs: dict[str, Path], settings: dict[str, str], command: list[str]) -> int:
    current = Provenance.of(name, inputs, settings)
    verdict = judge(output, current)
    if verdict.fresh:
        print(f"==> [skip] {name}: {verdict.reason}", flush=True)
        return 0
    print(f"==> {name}: {verdict.reason}: running it", flush=True)
    record_path(output).unlink(missing_ok=True)
    started = time.time()
    try:
        status = subprocess.run(command).returncode
    except OSError as error:  # not found, not executable: the status a shell gives (127 / 126)
        print(f"==> {name}: FAILED: cannot run {command[0]!r}: {error.strerror}", flush=True)
        return 127 if isinstance(error, FileNotFoundError) else 126
    if status != 0:
        print(f"==> {name}: FAILED with exit status {status}", flush=True)
        return status
    if not output.exists():
        print(f"==> {name}: FAILED: the command exited 0 but {output} does not exist", flush=True)
        return 1
    write_record(output, current, made_during=[[started, time.time()]])
    return 0


def handler(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("bsynth step: no command given after --")
        return 2
    inputs = {label: Path(value) for label, value in args.input}
    return run_step(args.name, args.output.resolve(), inputs, dict(args.setting), command)


def register(subparsers) -> None:
    parser = subparsers.add_parser("step", help="run a command unless its output is already made from the same "
                                   "inputs and settings", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the step's name, recorded and shown (e.g. cap, textvqa)")
    parser.add_argument("--output", type=Path, required=True, help="the file or folder the command makes")
    parser.add_argument("--input", type=key_value, action="append", default=[], metavar="LABEL=PATH",
                        help="a file or folder the output is made from (repeatable)")
    parser.add_argument("--setting", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="a setting the output depends on (repeatable)")
    # options first, then "--" and the command (argparse's REMAINDER starts at the first positional)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    parser.set_defaults(func=handler)
