"""``bsynth runs`` (the table of run records), ``bsynth runs record``, ``bsynth report`` and ``bsynth sweep``.

    bsynth runs [--json | --csv] [--reference EXP]
    bsynth runs record EXP_NAME --editable KEY=VALUE ... [--made STEP=PATH ...] [--data-root DIR]
    bsynth report RUN... [--group-by settings|recipe] [--reference EXP] [--draws N] [--bootstrap-seed S]
        --out report.html
    bsynth sweep SWEEP.yaml [--gpus ID,...]   (bettersynth.experiments.sweep; exit status: the number of
                                              failed runs; 2: a bad sweep file, state file or job;
                                              128 + N: stopped by signal N)

``runs record`` is what the main job calls after each step (bettersynth.experiments.record): it
rebuilds ``output/experiments/<EXP_NAME>/run.json`` from the files there now and exits 0 whatever
has not run yet; it exits 2 on a malformed argument and 1 on a record it cannot read or write. The
output tree is ``$BSYNTH_OUTPUT`` or ``<checkout>/output`` (bettersynth.paths.output_dir).
``runs`` and ``report`` exit 1 on a record they cannot read (bettersynth.experiments.record_schema), a
run they cannot find, and, for ``report``, a request it refuses or a page it cannot write; 2 on a
malformed argument. ``runs`` still prints the table of the records it can read, and names each one
it left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bettersynth.arguments import key_value, non_negative_int, positive_int


def draw_count(value: str) -> int:
    """``--draws``: from 1 to MAX_DRAWS (more would not fit in memory, or would run for hours)."""
    from bettersynth.experiments.defaults import MAX_DRAWS

    number = positive_int(value)
    if number > MAX_DRAWS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DRAWS}, got {value}")
    return number


def record_handler(args) -> int:
    from bettersynth import paths
    from bettersynth.experiments.record import RecordError, record_file, write_record

    output = paths.output_dir()
    made = {name: Path(path) for name, path in args.made}
    try:
        record = write_record(output, args.exp_name, dict(args.editable), made=made, data_root=args.data_root)
    except RecordError as error:
        print(f"bsynth runs record: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the record is written atomically: an earlier one is left as it was
        print(f"bsynth runs record: cannot make the run record of {args.exp_name} ({error})", file=sys.stderr)
        return 1
    for note in record["notes"]:
        print(f"bsynth runs record: warning: {note}", file=sys.stderr)
    print(f"run record: {record_file(output, args.exp_name)}", file=sys.stderr)
    return 0


def runs_handler(args) -> int:
    from bettersynth import paths
    from bettersynth.experiments.record import RecordError, all_records, load_run
    from bettersynth.experiments.runs import (
        format_csv,
        format_json,
        format_text,
        table_rows,
    )

    try:
        output = paths.output_dir()
        reference = load_run(output, args.reference) if args.reference else None
        records, unreadable = all_records(output)
        rows = table_rows(records, reference)
    except RecordError as error:
        print(f"bsynth runs: {error}", file=sys.stderr)
        return 1
    if rows or args.json or args.csv:
        print(format_json(rows) if args.json else format_csv(rows) if args.csv else format_text(rows),
              end="" if args.csv else "\n")
    elif not unreadable:
        print(f"no run records under {output / 'experiments'}", file=sys.stderr)
    for problem in unreadable:
        print(f"bsynth runs: {problem} (left out of the table)", file=sys.stderr)
    return 1 if unreadable else 0


def report_handler(args) -> int:
    from bettersynth import paths
    from bettersynth.eval.files import EvalDataError
    from bettersynth.experiments.groups import GroupError
    from bettersynth.experiments.record import RecordError, load_run
    from bettersynth.experiments.report import ReportError, build_report

    try:
        output = paths.output_dir()
        records = [load_run(output, run) for run in args.runs]
        reference = load_run(output, args.reference) if args.reference else None
        out = build_report(records, args.out, by=args.group_by, reference=reference, draws=args.draws,
                           seed=args.bootstrap_seed)
    except (RecordError, GroupError, EvalDataError, ReportError) as error:
        print(f"bsynth report: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the page or its figures could not be written: no page is left at --out
        print(f"bsynth report: cannot write the report {args.out} ({error})", file=sys.stderr)
        return 1
    print(f"report written to {out} (figures in {out.with_name(out.stem + '_files')})", file=sys.stderr)
    return 0


def sweep_handler(args) -> int:
    from bettersynth import paths
    from bettersynth.eval.files import EvalDataError
    from bettersynth.experiments.groups import GroupError
    from bettersynth.experiments.record import RecordError
    from bettersynth.experiments.report import ReportError
    from bettersynth.experiments.scheduler import SlotError, StateError
    from bettersynth.experiments.sweep import run_sweep, summary_line, write_sweep_report
    from bettersynth.experiments.sweep_file import SweepError, load_sweep
    from bettersynth.layout import IncompleteLayoutError
    from bettersynth.recipes.run import Interrupted

    root, output = paths.repo_root(), paths.output_dir()
    try:
        sweep = load_sweep(args.sweep, root)
    except SweepError as error:
        print(f"bsynth sweep: {error}", file=sys.stderr)
        return 2
    try:
        state = run_sweep(sweep, root, output, args.job or root / "train_mgm_2b_stage_1.sh", args.gpus)
    except (SweepError, SlotError, StateError, IncompleteLayoutError) as error:
        print(f"bsynth sweep: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"bsynth sweep: INTERRUPTED by {stop}: the running runs were stopped; run the same command again "
              "to resume them", file=sys.stderr)
        return 128 + stop.signum
    try:
        report = write_sweep_report(sweep, state, output)
    except (RecordError, GroupError, EvalDataError, ReportError, OSError) as error:
        print(f"bsynth sweep: no report: {error}", file=sys.stderr)
        report = None
    print(summary_line(sweep, state, report))
    return min(len(state.unfinished([run.name for run in sweep.runs()])), 125)


def register(subparsers) -> None:
    from bettersynth.experiments.defaults import BOOTSTRAP_SEED, DRAWS, GROUP_BY, MAX_DRAWS

    runs = subparsers.add_parser("runs", help="the table of every run record under output/experiments/",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shape = runs.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the rows as JSON (raw numbers)")
    shape.add_argument("--csv", action="store_true", help="print the rows as CSV (raw numbers)")
    runs.add_argument("--reference", default=None, metavar="EXP", help="the run the ratios are taken to")
    runs.set_defaults(func=runs_handler)
    commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND")
    record = commands.add_parser("record",
                                 help="rebuild output/experiments/EXP_NAME/run.json (the main job, after each step)")
    record.add_argument("exp_name", metavar="EXP_NAME")
    record.add_argument("--editable", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="an Editable Part value (repeatable; merged into the record's)")
    record.add_argument("--made", type=key_value, action="append", default=[], metavar="STEP=PATH",
                        help="the artefact a step of the job makes (repeatable: the job names all; its made-from "
                             "record says when it was made: the record's step times and wall time; none given "
                             "keeps the record's)")
    record.add_argument("--data-root", type=Path, default=None,
                        help="asset root of the eval data the answers are scored against (as for `bsynth score run`)")
    record.set_defaults(func=record_handler, outputs=lambda args: [_experiments_dir()])

    report = subparsers.add_parser("report", help="an HTML report comparing runs (losses, scores, seeds, bootstrap)")
    report.add_argument("runs", nargs="+", metavar="RUN", help="experiment names or run.json paths")
    report.add_argument("--group-by", choices=GROUP_BY, default="settings",
                        help="settings: runs that differ only by seed (default); recipe: same recipe")
    report.add_argument("--reference", default=None, metavar="EXP", help="the run the challenge score is taken to")
    report.add_argument("--draws", type=draw_count, default=DRAWS,
                        help=f"bootstrap draws (default {DRAWS}, at most {MAX_DRAWS})")
    report.add_argument("--bootstrap-seed", type=non_negative_int, default=BOOTSTRAP_SEED,
                        help=f"seed of the bootstrap's numpy Generator (default {BOOTSTRAP_SEED})")
    report.add_argument("--out", type=Path, required=True, help="the HTML page; figures go to <stem>_files/ beside it")
    report.set_defaults(func=report_handler, outputs=lambda args: [args.out])

    sweep = subparsers.add_parser("sweep", help="recipes x seeds (x proxy budgets) through the main job, resumable",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("sweep", type=Path, metavar="SWEEP.yaml", help="see bettersynth/experiments/sweep.py")
    sweep.add_argument("--job", type=Path, default=None,
                       help="the job each run is (default: the checkout's train_mgm_2b_stage_1.sh)")
    sweep.add_argument("--gpus", default=None, metavar="ID,ID,...",
                       help="the GPUs gpus_per_run splits (default: CUDA_VISIBLE_DEVICES, else every CUDA device)")
    # the sweep holds the output tree's lock: it writes the recipes' exports and its folder there (each run's
    # job locks the run's own tree)
    sweep.set_defaults(func=sweep_handler, outputs=lambda args: [_experiments_dir()])


def _experiments_dir() -> Path:
    from bettersynth import paths
    from bettersynth.experiments.record import experiments_dir

    return experiments_dir(paths.output_dir())
