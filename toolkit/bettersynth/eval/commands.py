"""``bsynth eval ...`` (inference, shard merge, upload file, paths) and ``bsynth score ...``.

    bsynth eval textvqa --checkpoint DIR --questions Q.jsonl --image-folder IMGS --answers-file OUT.jsonl \\
        [--num-chunks N --chunk-idx K --batch-size B --max-new-tokens 128 --device cuda --workers 8]
    bsynth eval mmbench --checkpoint DIR --tsv SPLIT.tsv --answers-file OUT.jsonl [same options]
    bsynth eval merge --out bm1.jsonl (--textvqa-questions Q.jsonl | --mmbench-tsv T.tsv) SHARD...
    bsynth eval mmbench-upload --tsv T.tsv --answers A.jsonl --out U.xlsx
    bsynth eval locate CKPT --field checkpoint --field results ... [--data-root DIR] [--split S]
    bsynth score textvqa --answers bm1.jsonl --annotations TextVQA_0.5.1_val.json
    bsynth score mmbench --answers A.jsonl|U.xlsx --tsv T.tsv
    bsynth score run output/eval_results/CKPT [--reference output/eval_results/BASE] [--data-root DIR]

Every handler returns 0 on success and 1 with an ``error:`` line naming the file on bad input. The
scorers refuse an answers file that misses a question, answers one twice or answers an unknown one
(the line gives the counts and the first ids).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bettersynth.arguments import folder_name
from bettersynth.paths import MMBENCH_SPLIT

LOCATE_FIELDS = ("checkpoint", "results", "textvqa-questions", "textvqa-images", "textvqa-annotations",
                 "textvqa-dir", "textvqa-answers", "mmbench-tsv", "mmbench-shard-dir", "mmbench-answers",
                 "mmbench-upload")


def _fail(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 1


def _checked_device(name: str) -> str:
    """``name`` when torch can place a model there (``cpu``, ``cuda``, ``cuda:1``), else ValueError."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"--device {name!r} is not a device name such as cpu, cuda or cuda:0") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA GPU is visible")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    return name


def _settings(args, default_tokens: int, label: str):
    from bettersynth.eval.generate import GenerationSettings, default_device, default_workers

    device = default_device() if args.device is None else _checked_device(args.device)
    # an explicit 0 must reach GenerationSettings' check, not fall back to the default
    batch = (32 if device.startswith("cuda") else 4) if args.batch_size is None else args.batch_size
    tokens = default_tokens if args.max_new_tokens is None else args.max_new_tokens
    workers = default_workers(device) if args.workers is None else args.workers
    return device, GenerationSettings(batch_size=batch, max_new_tokens=tokens, num_workers=workers,
                                      progress_label=f"{label} {args.chunk_idx}/{args.num_chunks}")


def _inference_errors():
    """Bad input (files, images, arguments such as a chunk index out of range) -> an error line."""
    from bettersynth.model.preprocess import ImageLoadError

    return ValueError, ImageLoadError


def run_textvqa(args) -> int:
    from bettersynth.eval.files import check_output_path
    from bettersynth.eval.inference import run_textvqa_shard
    from bettersynth.eval.textvqa import MAX_NEW_TOKENS

    try:
        check_output_path(args.answers_file, [args.questions])
        device, settings = _settings(args, MAX_NEW_TOKENS, "textvqa")
        count = run_textvqa_shard(args.checkpoint, args.questions, args.image_folder, args.answers_file,
                                  args.num_chunks, args.chunk_idx, settings, device)
    except _inference_errors() as error:
        return _fail(error)
    print(f"wrote {count} answers to {args.answers_file}", file=sys.stderr)
    return 0


def run_mmbench(args) -> int:
    from bettersynth.eval.files import check_output_path
    from bettersynth.eval.inference import run_mmbench_shard
    from bettersynth.eval.mmbench import MAX_NEW_TOKENS

    try:
        check_output_path(args.answers_file, [args.tsv])
        device, settings = _settings(args, MAX_NEW_TOKENS, "mmbench")
        count = run_mmbench_shard(args.checkpoint, args.tsv, args.answers_file, args.num_chunks, args.chunk_idx,
                                  settings, device)
    except _inference_errors() as error:
        return _fail(error)
    print(f"wrote {count} answers to {args.answers_file}", file=sys.stderr)
    return 0


def run_merge(args) -> int:
    from bettersynth.eval.files import EvalDataError, check_output_path
    from bettersynth.eval.inference import expected_question_ids, merge_shards

    try:
        check_output_path(args.out, [args.textvqa_questions, args.mmbench_tsv, *args.shards])
        expected = expected_question_ids(args.textvqa_questions, args.mmbench_tsv)
        count = merge_shards(args.shards, args.out, expected)
    except EvalDataError as error:
        return _fail(error)
    print(f"merged {len(args.shards)} shard(s), {count} answers -> {args.out}", file=sys.stderr)
    return 0


def run_upload(args) -> int:
    from bettersynth.eval.files import EvalDataError, check_output_path
    from bettersynth.eval.mmbench import write_upload

    try:
        check_output_path(args.out, [args.tsv, args.answers])
        rows = write_upload(args.tsv, args.answers, args.out)
    except EvalDataError as error:
        return _fail(error)
    print(f"wrote {rows} rows -> {args.out}", file=sys.stderr)
    return 0


def run_locate(args) -> int:
    """Print one path a line, in the order of --field (for shell scripts)."""
    from bettersynth import paths
    from bettersynth.eval.assets import eval_layout
    from bettersynth.eval.results import ResultFiles

    data = eval_layout(args.data_root)
    print(data.describe(), file=sys.stderr)
    results = ResultFiles(paths.eval_results_dir(args.name))
    values = {"checkpoint": paths.training_dir(args.name), "results": results.root,
              "textvqa-questions": data.layout.textvqa_questions, "textvqa-images": data.layout.textvqa_images,
              "textvqa-annotations": data.layout.textvqa_annotations, "textvqa-dir": results.textvqa_dir,
              "textvqa-answers": results.textvqa_answers, "mmbench-tsv": data.mmbench_tsv(args.split),
              "mmbench-shard-dir": results.mmbench_shard(args.split, 1, 0).parent,
              "mmbench-answers": results.mmbench_answers(args.split),
              "mmbench-upload": results.mmbench_upload(args.split)}
    for field in args.field:
        print(values[field])
    return 0


def score_textvqa(args) -> int:
    from bettersynth.eval.files import EvalDataError
    from bettersynth.eval.textvqa import score_answers

    try:
        result = score_answers(args.answers, args.annotations)
    except EvalDataError as error:
        return _fail(error)
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def score_mmbench(args) -> int:
    from bettersynth.eval.files import EvalDataError
    from bettersynth.eval.mmbench import score_answers

    try:
        result = score_answers(args.answers, args.tsv)
    except EvalDataError as error:
        return _fail(error)
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def score_run_command(args) -> int:
    from bettersynth.eval.assets import eval_layout
    from bettersynth.eval.files import EvalDataError
    from bettersynth.files import write_json_atomic
    from bettersynth.eval.results import ResultFiles
    from bettersynth.eval.score import benchmark_values, challenge_score, format_report, reference_scores, score_run

    data = eval_layout(args.data_root)
    print(data.describe(), file=sys.stderr)
    try:
        scores = score_run(args.run_dir, data, args.split)
        if args.reference:
            reference = reference_scores(args.reference, data, args.split)
            text, bench = benchmark_values(reference, str(args.reference))
            scores["reference"] = {"path": str(Path(args.reference).resolve()), "textvqa_accuracy": text,
                                   "mmbench_strict_circular_accuracy": bench}
            scores["challenge"] = challenge_score(scores, reference)
    except EvalDataError as error:
        return _fail(error)
    out = ResultFiles(Path(args.run_dir).resolve()).scores
    write_json_atomic(out, scores)
    print(format_report(scores))
    print(f"scores written to {out}", file=sys.stderr)
    return 0


def _add_shard_options(parser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="finetuned checkpoint folder")
    parser.add_argument("--answers-file", type=Path, required=True, help="answer jsonl to write (atomically)")
    parser.add_argument("--num-chunks", type=int, default=1)
    parser.add_argument("--chunk-idx", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default 32 on GPU (the aux tower fails above 37 images), 4 on CPU")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the benchmark's (128 / 1024)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--workers", type=int, default=None, help="image workers (default up to 8 on GPU, 0 on CPU)")


def register(subparsers) -> None:
    evaluate = subparsers.add_parser("eval", help="TextVQA / MMBench inference and answer files")
    commands = evaluate.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", required=True)

    parser = commands.add_parser("textvqa", help="answer (a shard of) the TextVQA questions")
    _add_shard_options(parser)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--image-folder", type=Path, required=True)
    parser.set_defaults(func=run_textvqa)

    parser = commands.add_parser("mmbench", help="answer (a shard of) the MMBench TSV")
    _add_shard_options(parser)
    parser.add_argument("--tsv", type=Path, required=True)
    parser.set_defaults(func=run_mmbench)

    parser = commands.add_parser("merge", help="merge shard answer files (checked, atomic)")
    parser.add_argument("--out", type=Path, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--textvqa-questions", type=Path)
    source.add_argument("--mmbench-tsv", type=Path)
    parser.add_argument("shards", type=Path, nargs="+")
    parser.set_defaults(func=run_merge, outputs=lambda args: [args.out])

    parser = commands.add_parser("mmbench-upload", help="MMBench answers -> the upload .xlsx")
    parser.add_argument("--tsv", type=Path, required=True)
    parser.add_argument("--answers", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.set_defaults(func=run_upload, outputs=lambda args: [args.out])

    parser = commands.add_parser("locate", help="print eval paths of a checkpoint name (for scripts)")
    parser.add_argument("name", help="checkpoint (finetune run) name, e.g. MGM-2B-Finetune-default")
    parser.add_argument("--field", action="append", choices=LOCATE_FIELDS, required=True)
    parser.add_argument("--data-root", default=None, help="asset layout root holding the eval data")
    parser.add_argument("--split", type=folder_name, default=MMBENCH_SPLIT)
    parser.set_defaults(func=run_locate)

    score = subparsers.add_parser("score", help="local TextVQA / MMBench scores and the challenge score")
    scorers = score.add_subparsers(dest="score_command", metavar="SCORE_COMMAND", required=True)

    parser = scorers.add_parser("textvqa", help="TextVQA accuracy (EvalAI normalisation)")
    parser.add_argument("--answers", type=Path, required=True)
    parser.add_argument("--annotations", type=Path, required=True)
    parser.set_defaults(func=score_textvqa)

    parser = scorers.add_parser("mmbench", help="MMBench circular accuracy (strict, letter-extracted, per category)")
    parser.add_argument("--answers", type=Path, required=True, help="answers jsonl, or the upload .xlsx")
    parser.add_argument("--tsv", type=Path, required=True)
    parser.set_defaults(func=score_mmbench)

    parser = scorers.add_parser("run", help="score output/eval_results/<CKPT>, write scores.json")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--reference", type=Path, default=None, help="reference run folder (or one with scores.json)")
    parser.add_argument("--data-root", default=None, help="asset layout root holding the eval data")
    parser.add_argument("--split", type=folder_name, default=MMBENCH_SPLIT)
    parser.set_defaults(func=score_run_command, outputs=lambda args: [args.run_dir])
