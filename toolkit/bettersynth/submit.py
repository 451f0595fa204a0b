"""``bsynth pack``: build and check ``submit.zip`` in the organisers' layout (baseline.md, "Submission").

    bsynth pack [--round online|offline] [--out submit.zip] [--exp NAME] [--data-root DIR]
    bsynth pack --check submit.zip [--round offline]

The zip holds exactly two top-level folders::

    solution/                                        the repository's solution/ (readme, requirements.txt, recipes)
    output/train.sh
    output/training_dirs/MGM-2B-Pretrain-<EXP>/pretrain.log
    output/training_dirs/MGM-2B-Finetune-<EXP>/finetune.log        (the job writes finetuning.log)
    output/eval_results/MGM-2B-Finetune-<EXP>/textvqa/bm1.jsonl
    output/eval_results/MGM-2B-Finetune-<EXP>/mmbench/answers/<SPLIT>/MGM-2B-Finetune-<EXP>.jsonl
    output/eval_results/MGM-2B-Finetune-<EXP>/mmbench/answers_upload/<SPLIT>/MGM-2B-Finetune-<EXP>.xlsx
    output/eval_results/MGM-2B-Finetune-<EXP>/scores.json          (when present)
  offline round adds
    output/processed_data/processed_data.jsonl (+ output/processed_data/synthetic_images/ when present)
    output/training_dirs/MGM-2B-Pretrain-<EXP>/mm_projector.bin
    output/training_dirs/MGM-2B-Finetune-<EXP>/model*.safetensors (+ model.safetensors.index.json)

Checks before anything is written: every required file exists, is a regular file and is not empty;
the answer files hold exactly the questions of the eval data (same ids, same order); both training
logs are complete; no symlink and no path leaving its folder. A log is complete when one of its
last 50 lines carries a completion line (``LOG_DONE_MARKERS``: our trainer's "<stage> finished:
outputs in ...", its "already holds a finished ..." on a re-run, or the Hugging Face trainer's
``train_runtime`` summary) and no ``Traceback`` follows that line (the job appends to its logs on
resume, so an earlier crash followed by a finished run passes). Problems are listed and the exit
status is 1. The zip is written beside ``--out``, re-read and checked (top level exactly solution/
and output/, no symlink entries, no absolute or ``..`` names, required files non-empty), then
renamed into place. ``--check`` runs that last check on an existing zip.
"""

from __future__ import annotations

import stat
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bettersynth import paths

ROUNDS = ("online", "offline")
TOP_LEVEL = ("output", "solution")
PRETRAIN_PREFIX, FINETUNE_PREFIX = "MGM-2B-Pretrain-", "MGM-2B-Finetune-"
LOG_TAIL_LINES = 50
# Lines that end a finished stage: our trainer's "<stage> finished: outputs in <dir>" (and, on a
# re-run of a finished stage, "... already holds a finished <stage> stage"), the Hugging Face
# trainer's final summary (official-kit logs).
LOG_DONE_MARKERS = (" finished: outputs in ", "already holds a finished", "train_runtime")
STORED_SUFFIXES = frozenset({".safetensors", ".bin", ".jpg", ".jpeg", ".png", ".webp", ".xlsx", ".zip"})
TREE_FOLD = 20


@dataclass(frozen=True)
class Entry:
    arcname: str   # path inside the zip
    source: Path
    root: Path     # the folder the source must stay inside


def log_problem(path: Path) -> str | None:
    """Why a training log is not complete, or None when it is."""
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    tail = lines[-LOG_TAIL_LINES:]
    done = [n for n, line in enumerate(tail) if any(marker in line for marker in LOG_DONE_MARKERS)]
    if not done:
        return f"{path}: incomplete log: none of its last {LOG_TAIL_LINES} lines shows a finished run {LOG_DONE_MARKERS}"
    if any("Traceback" in line for line in tail[done[-1]:]):
        return f"{path}: incomplete log: a Traceback follows the last completion line"
    return None


def _file_problem(entry: Entry) -> str | None:
    source = entry.source
    try:
        relative = source.relative_to(entry.root)
    except ValueError:
        return f"{source}: outside {entry.root}"
    probe = entry.root
    for part in relative.parts:
        probe = probe / part
        if probe.is_symlink():
            return f"{probe}: symlinks are not packed"
    if not source.is_file():
        return f"{source}: missing (needed as {entry.arcname})"
    if not source.resolve().is_relative_to(entry.root.resolve()):
        return f"{source}: resolves outside {entry.root}"
    if source.stat().st_size == 0:
        return f"{source}: empty (needed as {entry.arcname})"
    return None


def _tree_entries(folder: Path, arc_folder: str, root: Path, problems: list[str]) -> list[Entry]:
    """Every file under ``folder`` (``__pycache__`` skipped); symlinks are reported as problems."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.relative_to(folder).parts:
            continue
        if path.is_symlink():
            problems.append(f"{path}: symlinks are not packed")
        elif path.is_file():
            entries.append(Entry(f"{arc_folder}/{path.relative_to(folder).as_posix()}", path, root))
    return entries


def _answer_problems(eval_dir: Path, name: str, split: str, data_root: str | None) -> list[str]:
    from bettersynth.eval.assets import eval_layout
    from bettersynth.eval.files import EvalDataError, read_jsonl
    from bettersynth.eval.inference import expected_question_ids
    from bettersynth.eval.results import ResultFiles

    data = eval_layout(data_root)
    print(data.describe(), file=sys.stderr)
    files = ResultFiles(eval_dir)
    problems = []
    for answers, expected in ((files.textvqa_answers, {"textvqa_questions": data.layout.textvqa_questions}),
                              (files.mmbench_answers(split), {"mmbench_tsv": data.mmbench_tsv(split)})):
        if not answers.is_file():
            continue  # reported as missing by the file checks
        try:
            want = expected_question_ids(**expected)
            got = [record.get("question_id") for record in read_jsonl(answers)]
        except EvalDataError as error:
            problems.append(str(error))
            continue
        if got != want:
            problems.append(f"{answers}: {len(got)} answers for {len(want)} questions of "
                            f"{next(iter(expected.values()))} (or not in question order)")
    return problems


def find_experiment(output: Path) -> str:
    """The EXP of the only MGM-2B-Finetune-<EXP> folder under output/training_dirs."""
    found = sorted(p.name[len(FINETUNE_PREFIX):] for p in (output / "training_dirs").glob(f"{FINETUNE_PREFIX}*") if p.is_dir())
    if len(found) != 1:
        raise ValueError(f"{output / 'training_dirs'}: {len(found)} finetune runs {found}; choose one with --exp")
    return found[0]


def plan(round_name: str, exp: str, split: str, data_root: str | None, solution: Path,
         output: Path) -> tuple[list[Entry], list[str]]:
    """The zip's entries and every problem found (empty when the submission is complete)."""
    pretrain, finetune = f"{PRETRAIN_PREFIX}{exp}", f"{FINETUNE_PREFIX}{exp}"
    pre_dir, fin_dir = output / "training_dirs" / pretrain, output / "training_dirs" / finetune
    eval_dir = output / "eval_results" / finetune
    problems: list[str] = []
    entries = _tree_entries(solution, "solution", solution.parent, problems)
    names = {PurePosixPath(e.arcname).name.lower() for e in entries if e.arcname.count("/") == 1}
    if not any(name.startswith("readme") for name in names) or "requirements.txt" not in names:
        problems.append(f"{solution}: needs a readme and requirements.txt")
    finetune_log = fin_dir / "finetuning.log" if (fin_dir / "finetuning.log").exists() else fin_dir / "finetune.log"
    arc_eval = f"output/eval_results/{finetune}"
    required = [("output/train.sh", output / "train.sh"),
                (f"output/training_dirs/{pretrain}/pretrain.log", pre_dir / "pretrain.log"),
                (f"output/training_dirs/{finetune}/finetune.log", finetune_log),
                (f"{arc_eval}/textvqa/bm1.jsonl", eval_dir / "textvqa" / "bm1.jsonl"),
                (f"{arc_eval}/mmbench/answers/{split}/{finetune}.jsonl", eval_dir / "mmbench" / "answers" / split / f"{finetune}.jsonl"),
                (f"{arc_eval}/mmbench/answers_upload/{split}/{finetune}.xlsx",
                 eval_dir / "mmbench" / "answers_upload" / split / f"{finetune}.xlsx")]
    if (eval_dir / "scores.json").is_file():
        required.append((f"{arc_eval}/scores.json", eval_dir / "scores.json"))
    if round_name == "offline":
        required += [("output/processed_data/processed_data.jsonl", output / "processed_data" / "processed_data.jsonl"),
                     (f"output/training_dirs/{pretrain}/mm_projector.bin", pre_dir / "mm_projector.bin")]
        weights = sorted(fin_dir.glob("model*.safetensors")) + sorted(fin_dir.glob("model.safetensors.index.json"))
        if not any(w.suffix == ".safetensors" for w in weights):
            problems.append(f"{fin_dir}: no model*.safetensors (the offline round needs the finetuned weights)")
        required += [(f"output/training_dirs/{finetune}/{w.name}", w) for w in weights]
        images = output / "processed_data" / "synthetic_images"
        if images.is_dir():
            entries += _tree_entries(images, "output/processed_data/synthetic_images", output, problems)
    entries += [Entry(arcname, source, output) for arcname, source in required]
    problems += [p for p in map(_file_problem, entries) if p]
    for log in (pre_dir / "pretrain.log", finetune_log):
        if log.is_file() and not log.is_symlink():
            problems += [p for p in [log_problem(log)] if p]
    problems += _answer_problems(eval_dir, finetune, split, data_root)
    return entries, problems


def zip_problems(zip_path: Path, round_name: str) -> list[str]:
    """Layout checks of a finished zip (also ``bsynth pack --check``)."""
    problems = []
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    tops = sorted({name.split("/", 1)[0] for name in names})
    if tops != list(TOP_LEVEL):
        problems.append(f"{zip_path}: top level must be exactly {list(TOP_LEVEL)}, found {tops}")
    for info in infos:
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
            problems.append(f"{zip_path}: unsafe entry name {info.filename!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"{zip_path}: symlink entry {info.filename!r}")
    sizes = {info.filename: info.file_size for info in infos}
    finetunes = sorted({PurePosixPath(n).parts[2] for n in names
                        if n.startswith("output/training_dirs/") and n.count("/") >= 3 and PurePosixPath(n).parts[2].startswith(FINETUNE_PREFIX)})
    if len(finetunes) != 1:
        return problems + [f"{zip_path}: expected one output/training_dirs/{FINETUNE_PREFIX}*/ folder, found {finetunes}"]
    finetune = finetunes[0]
    pretrain = PRETRAIN_PREFIX + finetune[len(FINETUNE_PREFIX):]
    needed = ["output/train.sh", f"output/training_dirs/{pretrain}/pretrain.log",
              f"output/training_dirs/{finetune}/finetune.log", f"output/eval_results/{finetune}/textvqa/bm1.jsonl"]
    if round_name == "offline":
        needed += ["output/processed_data/processed_data.jsonl", f"output/training_dirs/{pretrain}/mm_projector.bin"]
    problems += [f"{zip_path}: missing or empty {name}" for name in needed if not sizes.get(name)]
    for kind in ("answers", "answers_upload"):
        if not any(n.startswith(f"output/eval_results/{finetune}/mmbench/{kind}/") and sizes[n] for n in names):
            problems.append(f"{zip_path}: no MMBench {kind} file")
    if round_name == "offline" and not any(n.startswith(f"output/training_dirs/{finetune}/model") and n.endswith(".safetensors") for n in names):
        problems.append(f"{zip_path}: no finetuned model*.safetensors")
    return problems


def write_zip(entries: list[Entry], out: Path, round_name: str) -> None:
    """Write the zip beside ``out``, check it, then rename it into place."""
    from bettersynth.files import atomic_path

    with atomic_path(out) as temporary:
        with zipfile.ZipFile(temporary, "w", allowZip64=True) as archive:
            for entry in sorted(entries, key=lambda e: e.arcname):
                method = zipfile.ZIP_STORED if entry.source.suffix.lower() in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                archive.write(entry.source, entry.arcname, compress_type=method)
        problems = zip_problems(temporary, round_name)
        if problems:
            raise ValueError("the written zip fails its checks:\n  " + "\n  ".join(problems))


def tree_lines(entries: list[Entry]) -> list[str]:
    """One line per file, folding folders of more than TREE_FOLD files into one line."""
    per_folder = Counter(str(PurePosixPath(e.arcname).parent) for e in entries)
    folded: dict[str, list[int]] = {}
    lines = []
    for entry in sorted(entries, key=lambda e: e.arcname):
        folder, size = str(PurePosixPath(entry.arcname).parent), entry.source.stat().st_size
        if per_folder[folder] > TREE_FOLD:
            folded.setdefault(folder, []).append(size)
        else:
            lines.append(f"{size:>14,}  {entry.arcname}")
    lines += [f"{sum(sizes):>14,}  {folder}/ ({len(sizes)} files)" for folder, sizes in folded.items()]
    return sorted(lines, key=lambda line: line.split("  ", 1)[1])


def run(args) -> int:
    if args.check:
        problems = zip_problems(args.check, args.round)
        print("\n".join(f"problem: {p}" for p in problems) or f"{args.check}: layout ok ({args.round} round)")
        return 1 if problems else 0
    try:
        exp = args.exp or find_experiment(paths.output_dir())
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    entries, problems = plan(args.round, exp, args.split, args.data_root, paths.REPO_ROOT / "solution",
                             paths.output_dir())
    if problems:
        print(f"error: the {args.round} submission of {exp} is not complete:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    out = Path(args.out).resolve() if args.out else paths.REPO_ROOT / "submit.zip"
    try:
        write_zip(entries, out, args.round)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(tree_lines(entries)))
    total = sum(e.source.stat().st_size for e in entries)
    print(f"{len(entries)} files, {total:,} bytes -> {out} ({out.stat().st_size:,} bytes, {args.round} round)")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("pack", help="build and check submit.zip (solution/ + output/)")
    parser.add_argument("--round", choices=ROUNDS, default="online")
    parser.add_argument("--out", default=None, help="zip to write (default: submit.zip at the repository root)")
    parser.add_argument("--exp", default=None, help="EXP_NAME of MGM-2B-{Pretrain,Finetune}-EXP (default: the only one)")
    parser.add_argument("--split", default=paths.MMBENCH_SPLIT)
    parser.add_argument("--data-root", default=None, help="asset layout root with the eval questions (answer counts)")
    parser.add_argument("--check", type=Path, default=None, help="only check the layout of an existing zip")
    parser.set_defaults(func=run)
