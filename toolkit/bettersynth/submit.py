"""``bsynth pack``: build and check ``submit.zip`` in the organisers' layout (baseline.md, "Submission").

    bsynth pack [--round online|offline] [--out submit.zip] [--exp NAME] [--data-root DIR] [--include PATH ...]
    bsynth pack --check submit.zip [--round offline]

The zip holds exactly two top-level folders::

    solution/readme*, solution/requirements.txt      the write-up and the recipe's requirements
    solution/recipes/, solution/ops/                 the recipes and the operators' code
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
  plus each file named with ``--include`` (under solution/ or the output folder; repeatable).

Everything else under solution/ is left out and listed as such. Refused (a problem, nothing written):
a file that looks like a secret (``.env``, ``*.pem``, ``*.key``, ``id_rsa*`` and the like, even with
``--include``; a name with the word token, credentials, secret, password or api_key unless named with
``--include``); a solution/ file over ``MAX_SOLUTION_FILE_BYTES`` (10 MB) unless named with
``--include``. Zip archives are never packed (so neither is an earlier submit.zip written into the tree).

Checks before anything is written: every file to pack exists, is a regular file and is not empty;
the answer files hold exactly the questions of the eval data (same ids, same order); the upload
.xlsx opens, has the upload columns, one row per TSV row and, in each, the answers jsonl's
prediction; every other jsonl and every json packed parses, and each sample of processed_data.jsonl has an id;
(offline) every weight file the finetuned model.safetensors.index.json names is there (``--check`` too);
both training stages finished (``training_complete.json``), the finetune stage was trained from this
pretrain's ``mm_projector.bin`` and the answers were made by this finetuned checkpoint, as their
records say (bettersynth.lineage); no symlink and no path leaving its folder. Problems are listed
and the exit status is 1. The zip is written beside ``--out``, re-read and checked (top level exactly
solution/ and output/, no symlink, secret-looking or zip entries, no absolute or ``..`` names,
required files non-empty), then renamed into place. ``--out`` must end in ``.zip`` and be neither a
folder nor one of the files packed; when packing fails, a zip already there is left as it was (and
said not to be this submission). ``--check`` runs that last check on an existing zip (a file that
is not a readable zip is a problem).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bettersynth import paths
from bettersynth.arguments import folder_name
from bettersynth.train.stages import STAGES

ROUNDS = ("online", "offline")
TOP_LEVEL = ("output", "solution")
PRETRAIN_PREFIX, FINETUNE_PREFIX = "MGM-2B-Pretrain-", "MGM-2B-Finetune-"
STORED_SUFFIXES = frozenset({".safetensors", ".bin", ".jpg", ".jpeg", ".png", ".webp", ".xlsx", ".zip"})
TREE_FOLD = 20
SOLUTION_FOLDERS = ("recipes", "ops")   # packed whole, beside solution/'s readme* and requirements.txt
ALLOW_LIST = "solution/'s readme*, requirements.txt, recipes/ and ops/, and files named with --include"
# Recipes, operators and a write-up are text: a bigger file under solution/ is usually data or a
# model left there, so it is packed only when named with --include.
MAX_SOLUTION_FILE_BYTES = 10_000_000
# Never packed: environment files, private keys and certificates, login files.
SECRET_FILE = re.compile(r"\.env(\..*)?|\.netrc|\.git-credentials|id_(rsa|dsa|ecdsa|ed25519)(\..*)?"
                         r"|.*\.(pem|key|p12|pfx)",
                         re.IGNORECASE)
# Packed only when named with --include (an operator may well be called token_num_filter.py).
SECRET_WORD = re.compile(r"(^|[^a-z])(tokens?|credentials?|secrets?|passwords?|api[_-]?keys?)([^a-z]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    arcname: str   # path inside the zip
    source: Path
    root: Path     # the folder the source must stay inside


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


def refusal(path: Path, strict: bool) -> str | None:
    """Why a file must not be packed, or None. Always refused: secret-looking files and zips.
    ``strict`` (solution/ files the user did not name with --include): also names like a secret's
    and files over MAX_SOLUTION_FILE_BYTES."""
    if SECRET_FILE.fullmatch(path.name):
        return f"{path}: looks like a secret (key, certificate or .env file); never packed, not even with --include"
    if path.suffix.lower() == ".zip":
        return f"{path}: zip archives are never packed"
    if not strict:
        return None
    if SECRET_WORD.search(path.name):
        return f"{path}: named like a secret; rename it, or name it with --include if it holds none"
    size = path.stat().st_size
    if size > MAX_SOLUTION_FILE_BYTES:
        return (f"{path}: {size:,} bytes, over the {MAX_SOLUTION_FILE_BYTES:,}-byte limit for solution/ files; "
                f"name it with --include to pack it")
    return None


def solution_allowed(relative: PurePosixPath) -> bool:
    """The allow-list of solution/: readme* and requirements.txt at its top, everything under SOLUTION_FOLDERS."""
    if len(relative.parts) == 1:
        name = relative.name.lower()
        return name.startswith("readme") or name == "requirements.txt"
    return relative.parts[0] in SOLUTION_FOLDERS


def _walk(folder: Path) -> Iterator[Path]:
    """Files and symlinks under ``folder`` in name order, ``__pycache__`` skipped."""
    for path in sorted(folder.rglob("*")):
        if "__pycache__" not in path.relative_to(folder).parts and (path.is_symlink() or path.is_file()):
            yield path


@dataclass
class Plan:
    """What goes into the zip, every problem found, and the files left out (each with why)."""
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add_tree(self, folder: Path, arc_folder: str, root: Path, allowed: Callable[[PurePosixPath], bool],
                 strict: bool, named: frozenset[Path]) -> None:
        """The files under ``folder`` that ``allowed`` keeps and ``refusal`` passes: symlinks are
        problems, zips and files not allowed are left out, files in ``named`` come from add_named."""
        for path in _walk(folder):
            relative = PurePosixPath(path.relative_to(folder).as_posix())
            arcname = f"{arc_folder}/{relative}"
            if path in named:
                continue
            if not allowed(relative):
                self.left_out.append(f"{arcname} (not on the allow-list)")
            elif path.suffix.lower() == ".zip":
                self.left_out.append(f"{arcname} (zip archives are never packed)")
            elif path.is_symlink():
                self.problems.append(f"{path}: symlinks are not packed")
            else:
                self._add_screened(Entry(arcname, path, root), strict)

    def add_named(self, given: Path, path: Path, solution: Path, output: Path) -> None:
        """A file named with --include (``given``, absolute ``path``), packed at its place under
        solution/ or the output folder."""
        for folder, top, root in ((solution, "solution", solution.parent), (output, "output", output)):
            if path.is_relative_to(folder):
                entry = Entry(f"{top}/{path.relative_to(folder).as_posix()}", path, root)
                break
        else:
            self.problems.append(f"{given}: --include names files under {solution} or {output} only")
            return
        if path.is_dir():
            self.problems.append(f"{given}: a folder; --include names files")
        elif path.is_file() and not path.is_symlink():
            self._add_screened(entry, strict=False)
        else:
            self.entries.append(entry)  # _file_problem reports it missing or a symlink

    def _add_screened(self, entry: Entry, strict: bool) -> None:
        problem = refusal(entry.source, strict)
        if problem:
            self.problems.append(problem)
        else:
            self.entries.append(entry)


def _order_problem(answers: Path, got: list, want: list, source: Path, unit: str) -> str | None:
    """Why the answer ids are not exactly the ids of ``source``'s questions in their order, or None."""
    from bettersynth.eval.files import coverage_problem

    if got == want:
        return None
    problem = coverage_problem(answers, want, got, unit)
    if problem:
        return problem
    first = next(n for n, (a, b) in enumerate(zip(got, want)) if a != b)  # same ids, so same length
    return f"{answers}: the questions of {source}, not in their order (first difference at answer {first})"


def _answers_problem(answers: Path, expected: dict[str, Path], unit: str) -> str | None:
    """An answer file against its questions (None when it holds them, in order, or is missing:
    the file checks report that)."""
    from bettersynth.eval.files import EvalDataError, read_jsonl
    from bettersynth.eval.inference import expected_question_ids

    if not answers.is_file():
        return None
    try:
        want = expected_question_ids(**expected)
        got = [record.get("question_id") for record in read_jsonl(answers)]
    except EvalDataError as error:
        return str(error)
    return _order_problem(answers, got, want, next(iter(expected.values())), unit)


def _answer_problems(eval_dir: Path, split: str, data_root: str | None) -> list[str]:
    """Both answer files against the eval data, then the upload .xlsx against the MMBench answers."""
    from bettersynth.eval.assets import eval_layout
    from bettersynth.eval.files import EvalDataError
    from bettersynth.eval.mmbench import check_upload
    from bettersynth.eval.results import ResultFiles

    data = eval_layout(data_root)
    print(data.describe(), file=sys.stderr)
    files = ResultFiles(eval_dir)
    answers, upload, tsv = files.mmbench_answers(split), files.mmbench_upload(split), data.mmbench_tsv(split)
    problems = [p for p in [_answers_problem(files.textvqa_answers,
                                             {"textvqa_questions": data.layout.textvqa_questions},
                                             "questions")] if p]
    mmbench_problem = _answers_problem(answers, {"mmbench_tsv": tsv}, "TSV rows")
    if mmbench_problem:
        return problems + [mmbench_problem]
    if upload.is_file() and answers.is_file():
        try:
            check_upload(upload, answers, tsv)
        except EvalDataError as error:
            problems.append(str(error))
    return problems


def _json_problem(path: Path) -> str | None:
    """Why a packed .json file is unusable (not valid JSON), or None."""
    from bettersynth.data.jsonl import InputError, load_json

    try:
        load_json(path)
    except InputError as error:
        return str(error)
    return None


def _jsonl_problem(path: Path, needs_id: bool) -> str | None:
    """Why a packed jsonl is unusable (a line that is not a JSON object; with ``needs_id``, samples
    without a string id), or None."""
    from bettersynth.data.jsonl import InputError, JsonLinesError, iter_json_objects
    from bettersynth.eval.files import counted, listed

    try:
        lacking = [number for number, record in iter_json_objects(path)
                   if needs_id and not (isinstance(record.get("id"), str) and record["id"])]
    except (InputError, JsonLinesError) as error:
        return str(error)
    if lacking:
        return f"{path}: {counted(len(lacking), 'sample')} without a string id (line {listed(lacking)})"
    return None


def _other_json_problems(entries: Sequence[Entry], answer_files: Sequence[Path], processed_data: Path) -> list[str]:
    """Every regular .json and .jsonl among ``entries`` but the answer files (checked against their questions)."""
    problems = []
    for source in (entry.source for entry in entries):
        if source in answer_files or not source.is_file() or source.is_symlink():
            continue
        if source.suffix == ".jsonl":
            problems += [p for p in [_jsonl_problem(source, needs_id=source == processed_data)] if p]
        elif source.suffix == ".json":
            problems += [p for p in [_json_problem(source)] if p]
    return problems


def proxy_problem(output: Path, exp: str) -> str | None:
    """A proxy run (PROXY_PRETRAIN_SAMPLES: pretrained on a subset) is not a submission."""
    from bettersynth.experiments.record import RecordError, read_run_record, record_file

    path = record_file(output, exp)
    if not path.is_file():
        return None
    try:
        samples = read_run_record(path).get("proxy_pretrain_samples")
    except RecordError as error:
        return f"{error}: cannot tell whether {exp} is a proxy run"
    if samples is None:
        return None
    return (f"{exp} is a proxy run (PROXY_PRETRAIN_SAMPLES={samples}: pretrained on a subset of the capped data, "
            f"{path}); only an official run can be submitted: rerun with PROXY_PRETRAIN_SAMPLES empty")


WEIGHTS_INDEX = "model.safetensors.index.json"


def indexed_shards(index_bytes: bytes) -> list[str]:
    """The weight files a model.safetensors.index.json names; none when it is not a readable index (the
    json checks report that)."""
    try:
        return sorted({str(name) for name in json.loads(index_bytes.decode("utf-8"))["weight_map"].values()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def missing_shards(fin_dir: Path) -> list[str]:
    """The weight files that the finetuned checkpoint's index names and its folder lacks (a shard lost)."""
    index = fin_dir / WEIGHTS_INDEX
    names = indexed_shards(index.read_bytes()) if index.is_file() else []
    return [name for name in names if not (fin_dir / name).is_file()]


def find_experiment(output: Path) -> str:
    """The EXP of the only MGM-2B-Finetune-<EXP> folder under output/training_dirs."""
    found = sorted(p.name[len(FINETUNE_PREFIX):] for p in (output / "training_dirs").glob(f"{FINETUNE_PREFIX}*")
                   if p.is_dir())
    if len(found) != 1:
        raise ValueError(f"{output / 'training_dirs'}: {len(found)} finetune runs {found}; choose one with --exp")
    return found[0]


def _required(round_name: str, exp: str, split: str, output: Path, result: Plan) -> list[tuple[str, Path]]:
    """(name in the zip, file) of what the organisers require; an offline run without weights is a problem."""
    pretrain, finetune = f"{PRETRAIN_PREFIX}{exp}", f"{FINETUNE_PREFIX}{exp}"
    pre_dir, fin_dir = output / "training_dirs" / pretrain, output / "training_dirs" / finetune
    eval_dir, arc_eval = output / "eval_results" / finetune, f"output/eval_results/{finetune}"
    # the logs the job writes (the stage spec names them); the zip names the finetune log finetune.log
    job_log = fin_dir / STAGES["finetune"].log_name
    finetune_log = job_log if job_log.exists() else fin_dir / "finetune.log"
    required = [("output/train.sh", output / "train.sh"),
                (f"output/training_dirs/{pretrain}/pretrain.log", pre_dir / STAGES["pretrain"].log_name),
                (f"output/training_dirs/{finetune}/finetune.log", finetune_log),
                (f"{arc_eval}/textvqa/bm1.jsonl", eval_dir / "textvqa" / "bm1.jsonl"),
                (f"{arc_eval}/mmbench/answers/{split}/{finetune}.jsonl",
                 eval_dir / "mmbench" / "answers" / split / f"{finetune}.jsonl"),
                (f"{arc_eval}/mmbench/answers_upload/{split}/{finetune}.xlsx",
                 eval_dir / "mmbench" / "answers_upload" / split / f"{finetune}.xlsx")]
    if (eval_dir / "scores.json").is_file():
        required.append((f"{arc_eval}/scores.json", eval_dir / "scores.json"))
    if round_name == "offline":
        required += [("output/processed_data/processed_data.jsonl", output / "processed_data" / "processed_data.jsonl"),
                     (f"output/training_dirs/{pretrain}/mm_projector.bin", pre_dir / "mm_projector.bin")]
        weights = sorted(fin_dir.glob("model*.safetensors")) + sorted(fin_dir.glob(WEIGHTS_INDEX))
        if not any(w.suffix == ".safetensors" for w in weights):
            result.problems.append(f"{fin_dir}: no model*.safetensors (the offline round needs the finetuned weights)")
        lost = missing_shards(fin_dir)
        if lost:
            from bettersynth.eval.files import counted, listed

            result.problems.append(f"{fin_dir}: {counted(len(lost), 'weight file')} that {WEIGHTS_INDEX} "
                                   f"names missing ({listed(lost)}): the finetuned weights are incomplete")
        required += [(f"output/training_dirs/{finetune}/{w.name}", w) for w in weights]
    return required


def plan(round_name: str, exp: str, split: str, data_root: str | None, solution: Path,
         output: Path, include: Sequence[Path] = ()) -> Plan:
    """The zip's entries, every problem found (none when the submission is complete) and what was left out."""
    solution, output = Path(os.path.abspath(solution)), Path(os.path.abspath(output))
    result = Plan()
    named = {Path(os.path.abspath(given)): Path(given) for given in include}
    for path, given in named.items():
        result.add_named(given, path, solution, output)
    result.add_tree(solution, "solution", solution.parent, solution_allowed, strict=True, named=frozenset(named))
    names = {PurePosixPath(e.arcname).name.lower() for e in result.entries if e.arcname.count("/") == 1}
    if not any(name.startswith("readme") for name in names) or "requirements.txt" not in names:
        result.problems.append(f"{solution}: needs a readme and requirements.txt")
    required = _required(round_name, exp, split, output, result)
    images = output / "processed_data" / "synthetic_images"
    if round_name == "offline" and images.is_dir():
        result.add_tree(images, "output/processed_data/synthetic_images", output, lambda _: True, strict=False,
                        named=frozenset(named))
    packed = {entry.arcname for entry in result.entries}
    result.entries += [Entry(arcname, source, output) for arcname, source in required if arcname not in packed]
    result.problems += [p for p in map(_file_problem, result.entries) if p]
    eval_dir = output / "eval_results" / f"{FINETUNE_PREFIX}{exp}"
    from bettersynth.lineage import lineage_problems

    answers = [source for arcname, source in required if "/eval_results/" in arcname and not arcname.endswith(".json")]
    finetune = f"{FINETUNE_PREFIX}{exp}"
    scored = {"textvqa answers": eval_dir / "textvqa" / "bm1.jsonl",   # the main job's labels of its scores step
              "mmbench answers": eval_dir / "mmbench" / "answers_upload" / split / f"{finetune}.xlsx"}
    problems, result.notes = lineage_problems(output / "training_dirs" / f"{PRETRAIN_PREFIX}{exp}",
                                              output / "training_dirs" / finetune, answers,
                                              eval_dir / "scores.json", scored)
    result.problems += problems
    proxy = proxy_problem(output, exp)
    if proxy:
        result.problems.append(proxy)
    result.problems += _answer_problems(eval_dir, split, data_root)
    answer_files = [source for arcname, source in required
                    if arcname.endswith(".jsonl") and "/eval_results/" in arcname]
    result.problems += _other_json_problems(result.entries, answer_files,
                                             output / "processed_data" / "processed_data.jsonl")
    return result


def zip_problems(zip_path: Path, round_name: str) -> list[str]:
    """Layout checks of a finished zip (also ``bsynth pack --check``)."""
    problems = []
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile) as error:
        return [f"{zip_path}: not a readable zip file ({error})"]
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
        if SECRET_FILE.fullmatch(path.name) or path.suffix.lower() == ".zip":
            problems.append(f"{zip_path}: entry {info.filename!r} is a secret-looking file or a zip")
    sizes = {info.filename: info.file_size for info in infos}
    finetunes = sorted({PurePosixPath(n).parts[2] for n in names
                        if n.startswith("output/training_dirs/") and n.count("/") >= 3
                        and PurePosixPath(n).parts[2].startswith(FINETUNE_PREFIX)})
    if len(finetunes) != 1:
        return problems + [f"{zip_path}: expected one output/training_dirs/{FINETUNE_PREFIX}*/ folder, "
                           f"found {finetunes}"]
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
    if round_name == "offline" and not any(n.startswith(f"output/training_dirs/{finetune}/model")
                                           and n.endswith(".safetensors") for n in names):
        problems.append(f"{zip_path}: no finetuned model*.safetensors")
    folder = f"output/training_dirs/{finetune}"
    if round_name == "offline" and f"{folder}/{WEIGHTS_INDEX}" in sizes:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                named = indexed_shards(archive.read(f"{folder}/{WEIGHTS_INDEX}"))
        except (OSError, zipfile.BadZipFile) as error:  # a damaged entry
            return problems + [f"{zip_path}: cannot read {folder}/{WEIGHTS_INDEX} ({error})"]
        lost = [name for name in named if f"{folder}/{name}" not in sizes]
        if lost:
            problems.append(f"{zip_path}: {folder}/{WEIGHTS_INDEX} names weight files the zip lacks: {lost}")
    return problems


def out_problem(out: Path, entries: Sequence[Entry]) -> str | None:
    """Why the zip cannot be written at ``out`` (not a .zip name, a folder, below a file, or one of the
    files it packs, which the zip would replace), or None."""
    from bettersynth.data.output_path import OutputPathError, check_output

    if out.suffix.lower() != ".zip":
        return f"--out {out}: the submission is a zip: give a path ending in .zip"
    try:
        check_output(out, {f"file packed as {entry.arcname}": entry.source for entry in entries})
    except OutputPathError as error:
        return str(error)
    return None


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
    from bettersynth.experiments.record import record_file

    out = Path(args.out).resolve() if args.out else paths.repo_root() / "submit.zip"
    try:
        exp = args.exp or find_experiment(paths.output_dir())
        record_file(paths.output_dir(), exp)  # refuses a name that is not a plain folder name ("../x", "a/b")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    result = plan(args.round, exp, args.split, args.data_root, paths.repo_root() / "solution", paths.output_dir(),
                  args.include)
    result.problems += [p for p in [out_problem(out, result.entries)] if p]
    if result.left_out:
        print(f"not packed (the zip takes {ALLOW_LIST}):", file=sys.stderr)
        for line in result.left_out[:TREE_FOLD]:
            print(f"  - {line}", file=sys.stderr)
        if len(result.left_out) > TREE_FOLD:
            print(f"  ... and {len(result.left_out) - TREE_FOLD} more", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.problems:
        print(f"error: the {args.round} submission of {exp} is not complete:", file=sys.stderr)
        for problem in result.problems:
            print(f"  - {problem}", file=sys.stderr)
        if out.is_file():
            print(f"note: {out} was left as it was: it is not this submission", file=sys.stderr)
        return 1
    try:
        write_zip(result.entries, out, args.round)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(tree_lines(result.entries)))
    total = sum(e.source.stat().st_size for e in result.entries)
    print(f"{len(result.entries)} files, {total:,} bytes -> {out} ({out.stat().st_size:,} bytes, {args.round} round)")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("pack", help="build and check submit.zip (solution/ + output/)")
    parser.add_argument("--round", choices=ROUNDS, default="online")
    parser.add_argument("--out", default=None, help="zip to write (default: submit.zip at the repository root)")
    parser.add_argument("--exp", default=None,
                        help="EXP_NAME of MGM-2B-{Pretrain,Finetune}-EXP (default: the only one)")
    parser.add_argument("--split", type=folder_name, default=paths.MMBENCH_SPLIT)
    parser.add_argument("--data-root", default=None, help="asset layout root with the eval questions (answer counts)")
    parser.add_argument("--check", type=Path, default=None, help="only check the layout of an existing zip")
    parser.add_argument("--include", type=Path, action="append", default=[], metavar="PATH",
                        help="also pack this file (under solution/ or the output folder; repeatable); "
                             "lifts the size limit and the secret-like-name refusal for it")
    # it reads the output tree: holding its lock, so it never packs a run that is still writing
    parser.set_defaults(func=run, outputs=lambda args: [paths.output_dir()])
