"""``bsynth`` data subcommands: dj2llava, llava2dj, sample, validate (thin wrappers).

Each parses its arguments and calls one library function of ``bettersynth.data``; run
``bsynth <command> --help`` for the details. Exit status: 0 success, 1 bad data, a failed check
(every problem is printed, the output file is not written), an output path (validate's --report
too) that is a folder or one of the inputs (``bettersynth.data.output_path``) or a file the system
refuses to read or write (the OS error, naming the file), 2 bad arguments.

    bsynth validate in.jsonl --image-root DIR --original stage_1.json
    bsynth sample in.jsonl in-200k.jsonl 200000
    bsynth dj2llava in-200k.jsonl in-200k.json --image_special_token "<__dj__image>" \\
        --restore_questions True --original_llava_ds_path stage_1.json --image-root DIR
    bsynth llava2dj stage_1.json seed.jsonl --only_keep_caption True
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from bettersynth.arguments import parse_bool, positive_int
from bettersynth.constants import DJ_EOC_TOKEN, DJ_IMAGE_TOKEN, IMAGE_TOKEN, MAX_PRETRAIN_SAMPLES, SEED
from bettersynth.data.image_check import MAX_ASPECT_RATIO, MAX_IMAGE_SIDE

_LITERAL = ("Values are taken literally: in bash write a newline separator as $'\\n'.")


def _describe(*paragraphs: str) -> str:
    """Help text: prose paragraphs wrapped, paragraphs starting with spaces (lists, commands) kept."""
    return "\n\n".join(p if p.startswith(" ") else textwrap.fill(p, 92, break_on_hyphens=False) for p in paragraphs)


def _flag(parser: argparse.ArgumentParser, name: str, default: bool, help_text: str) -> None:
    """A boolean option spelled like the official tool's (``--name True``), with a dashed alias."""
    parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, type=parse_bool,
                        nargs="?", const=True, default=default, metavar="BOOL",
                        help=f"{help_text} (default: {default})")


def _option(parser: argparse.ArgumentParser, name: str, default, help_text: str, **kw) -> None:
    parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, default=default,
                        help=f"{help_text} (default: {default!r})", **kw)


def _guarded(command: str, run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the library's input and file-system errors into a message on stderr and exit status 1 (2 for
    usage)."""
    def handler(args: argparse.Namespace) -> int:
        from bettersynth.data.jsonl import InputError
        from bettersynth.data.output_path import OutputPathError
        from bettersynth.data.problems import DataError

        try:
            return run(args)
        # OSError: a name too long, a read-only folder, a full disk ...: no partial file is left
        except (DataError, InputError, OutputPathError, OSError) as exc:
            print(f"bsynth {command}: {exc}", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"bsynth {command}: invalid arguments: {exc}", file=sys.stderr)
            return 2
    return handler


# --- dj2llava ---------------------------------------------------------------------------------
def _run_dj2llava(args: argparse.Namespace) -> int:
    from bettersynth.data.dj_llava import DjToLlavaOptions, dj_to_llava

    options = DjToLlavaOptions(
        keep_only_first_image=args.keep_only_first_image, eoc_special_token=args.eoc_special_token,
        image_special_token=args.image_special_token, sent_separator=args.sent_separator,
        restore_questions=args.restore_questions, original_llava_ds_path=args.original_llava_ds_path,
        image_root=args.image_root, max_examples=args.max_examples)
    result = dj_to_llava(args.dj_ds_path, args.target_llava_ds_path, options)
    note = f" ({result.num_relativised:,} absolute image paths made relative)" if result.num_relativised else ""
    if result.num_synthetic:
        note += f" ({result.num_synthetic:,} synthetic samples: their images as absolute paths)"
    print(f"wrote {result.num_samples:,} samples to {result.output}{note}")
    return 0


def _register_dj2llava(subparsers) -> None:
    p = subparsers.add_parser(
        "dj2llava", help="Data-Juicer jsonl -> LLaVA json (Data-Juicer's dj_to_llava, exactly)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_describe(
            "Convert a Data-Juicer jsonl into the LLaVA json that training reads. Same arguments, "
            "defaults and output bytes as Data-Juicer's dj_to_llava tool (tools/fmt_conversion/"
            "multimodal/data_juicer_format_to_target_format/dj_to_llava.py). In addition: every bad "
            "sample is reported at once (count per kind + first examples) and nothing is written "
            "then (an input without samples is an error too); the input is streamed and the "
            "output appears only when complete; --image-root makes absolute image paths under it "
            "relative and refuses paths outside it (absolute elsewhere, or climbing out with '..'); "
            "an empty image path is an error; a synthetic sample's image (\"synthetic_images\": "
            "true, relative to the input file's folder) is written as an absolute path.",
            "With --restore_questions True every sample's id must be in --original_llava_ds_path "
            "(synthetic samples reuse seed ids): the question and the answer's role come from "
            "there; the answer is the sample's text stripped of a trailing separator, a trailing "
            "end-of-chunk token and a leading/trailing image token; the image is the sample's own. "
            "Without it the text is split on '[[role]]: ' markers.",
            "Challenge use:",
            "  bsynth dj2llava in.jsonl in.json --image_special_token '<__dj__image>' \\\n"
            "      --restore_questions True --original_llava_ds_path input/pretrain_stage_1_10k/stage_1.json \\\n"
            "      --image-root input/pretrain_stage_1_10k",
            _LITERAL))
    p.add_argument("dj_ds_path", type=Path, help="input Data-Juicer jsonl")
    p.add_argument("target_llava_ds_path", type=Path,
                   help="output LLaVA json (must end in .json; not an input, not a folder)")
    _flag(p, "keep_only_first_image", True, "drop image tokens from every turn after the first")
    _option(p, "eoc_special_token", DJ_EOC_TOKEN, "end-of-chunk token removed from the end")
    _option(p, "image_special_token", IMAGE_TOKEN, "image token of the input text; the challenge "
            f"data uses {DJ_IMAGE_TOKEN!r}")
    _option(p, "sent_separator", "\n", "sentence separator")
    _flag(p, "restore_questions", False, "take each question from the original LLaVA file")
    _option(p, "original_llava_ds_path", None, "original LLaVA json (stage_1.json) for "
            "--restore_questions", type=Path, metavar="JSON")
    p.add_argument("--image-root", "--image_root", dest="image_root", type=Path, metavar="DIR",
                   help="make absolute image paths under DIR relative to it; paths outside DIR "
                   "(absolute elsewhere, or climbing out with '..') are errors (default: keep paths as "
                   "they are, as the tool does)")
    p.add_argument("--max-examples", type=positive_int, default=10, metavar="N",
                   help="examples printed per kind of problem (default: 10)")
    p.set_defaults(func=_guarded("dj2llava", _run_dj2llava), outputs=lambda args: [args.target_llava_ds_path])


# --- llava2dj ---------------------------------------------------------------------------------
def _run_llava2dj(args: argparse.Namespace) -> int:
    from bettersynth.data.llava_dj import LlavaToDjOptions, llava_to_dj

    options = LlavaToDjOptions(
        str_id=args.str_id, split_chunk=args.split_chunk, image_broadcast=args.image_broadcast,
        image_broadcast_pos=args.image_broadcast_pos, eoc_special_token=args.eoc_special_token,
        image_special_token=args.image_special_token, add_eoc_at_last=args.add_eoc_at_last,
        sent_separator=args.sent_separator, only_keep_caption=args.only_keep_caption,
        seed=args.seed, max_examples=args.max_examples)
    result = llava_to_dj(args.llava_ds_path, args.target_ds_path, options)
    print(f"wrote {result.num_samples:,} samples to {result.output}")
    if result.num_without_image:
        print(f"warning: {result.num_without_image:,} samples have no image", file=sys.stderr)
    if result.num_multi_turn:
        print(f"warning: {result.num_multi_turn:,} multi-turn samples reduced to their captions "
              "(--only_keep_caption)", file=sys.stderr)
    return 0


def _register_llava2dj(subparsers) -> None:
    p = subparsers.add_parser(
        "llava2dj", help="LLaVA json -> Data-Juicer jsonl (Data-Juicer's llava_to_dj, exactly)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_describe(
            "Convert a LLaVA json into a Data-Juicer jsonl. Same arguments, defaults and records as "
            "Data-Juicer's llava_to_dj tool (tools/fmt_conversion/multimodal/source_format_to_data_"
            "juicer_format/llava_to_dj.py), except that every bad record is reported at once "
            "(nothing is written then) and --image_broadcast_pos random is seeded (--seed).",
            "With --only_keep_caption True each sample's text becomes IMAGE_TOKEN + separator + "
            f"answer + ' {DJ_EOC_TOKEN}' (the seed pool's format when IMAGE_TOKEN is "
            f"'{DJ_IMAGE_TOKEN}'). As in the tool, the first question of a sample with an image "
            "must start or end with --image_special_token.",
            _LITERAL))
    p.add_argument("llava_ds_path", type=Path, help="input LLaVA json (array)")
    p.add_argument("target_ds_path", type=Path,
                   help="output Data-Juicer jsonl (must end in .jsonl; not the input, not a folder)")
    _flag(p, "str_id", True, "write ids as strings")
    _flag(p, "split_chunk", False, "one chunk (ended by the end-of-chunk token) per round")
    _flag(p, "image_broadcast", False, "add the image token to every round's question (needs "
          "--split_chunk)")
    _option(p, "image_broadcast_pos", "random", "where the broadcast token goes",
            choices=("random", "before", "after", "follow"))
    _option(p, "eoc_special_token", DJ_EOC_TOKEN, "end-of-chunk token")
    _option(p, "image_special_token", IMAGE_TOKEN, "image token")
    _flag(p, "add_eoc_at_last", True, "end the text with ' ' + the end-of-chunk token")
    _option(p, "sent_separator", "\n", "sentence separator")
    _flag(p, "only_keep_caption", False, "keep only the answers (captions), for pretraining data")
    p.add_argument("--seed", type=int, default=SEED,
                   help=f"seed of --image_broadcast_pos random (default: {SEED}; the tool is unseeded)")
    p.add_argument("--max-examples", type=positive_int, default=10, metavar="N",
                   help="examples printed per kind of problem (default: 10)")
    p.set_defaults(func=_guarded("llava2dj", _run_llava2dj), outputs=lambda args: [args.target_ds_path])


# --- sample -----------------------------------------------------------------------------------
def _run_sample(args: argparse.Namespace) -> int:
    from bettersynth.data.sample_cap import sample_cap

    result = sample_cap(args.input, args.output, args.n, seed=args.seed)
    how = "random sample" if result.sampled else "all samples, original order"
    print(f"{result.num_input:,} samples in, {result.num_output:,} written to {result.output} ({how})")
    return 0


def _register_sample(subparsers) -> None:
    p = subparsers.add_parser(
        "sample", help="the official sample cap (check_sample_number.py), exactly",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_describe(
            "Cap a Data-Juicer jsonl at N samples exactly as the official check_sample_number.py does:",
            f"  * more than N lines: random.Random({SEED}).sample(lines, N), the same draws as\n"
            f"    random.seed({SEED}) then random.sample; the output is in that random order;\n"
            "  * N or fewer lines: every line, in the original order (no shuffle);\n"
            "  * duplicate lines are kept (no deduplication).",
            "Each output line is the input line's JSON object re-serialised as the script's "
            "jsonlines writer does: json.dumps(obj, ensure_ascii=False) + newline (same content, "
            "UTF-8 kept, whitespace normalised). Every line must be a JSON object; all bad lines "
            "are reported and nothing is written then. An input without samples is refused too "
            "(the official script would write an empty file)."))
    p.add_argument("input", type=Path, help="input jsonl")
    p.add_argument("output", type=Path,
                   help="output jsonl (written only when complete; not the input, not a folder)")
    p.add_argument("n", type=positive_int, nargs="?", default=MAX_PRETRAIN_SAMPLES, metavar="N",
                   help=f"the cap, at least 1 (default: {MAX_PRETRAIN_SAMPLES}, the challenge's limit)")
    p.add_argument("--seed", type=int, default=SEED,
                   help="seed of the random sample (default: %(default)s, the official cap's; the main job's "
                        "proxy budget samples its pretraining subset with SEED)")
    p.set_defaults(func=_guarded("sample", _run_sample), outputs=lambda args: [args.output])


# --- validate ---------------------------------------------------------------------------------
def _run_validate(args: argparse.Namespace) -> int:
    from bettersynth.data.output_path import check_output
    from bettersynth.data.validate import ValidateOptions, validate

    if args.report is not None:
        check_output(args.report, {"input": args.dj_jsonl, "original LLaVA file (--original)": args.original})
    options = ValidateOptions(image_root=args.image_root, original=args.original, workers=args.workers,
                              image_token=args.image_token, eoc_token=args.eoc_token)
    report = validate(args.dj_jsonl, options)
    print(report.summary(max_listed=args.max_listed))
    if args.report is not None:
        report.write_json(args.report)
        print(f"report: {args.report}")
    return 0 if report.ok else 1


def _register_validate(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="check a Data-Juicer jsonl and its images before training",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_describe(
            "Check every line of a Data-Juicer jsonl before converting and training on it:",
            "  * a JSON object (line number on error); 'id' a string, 'text' a string, 'images' a\n"
            "    list of exactly one non-empty path;\n"
            "  * exactly one image token, at the start or end of the text; the end-of-chunk token\n"
            "    only at the end (missing: a warning); a non-empty caption once dj2llava strips them;\n"
            "  * with --original, every id is in that file (dj2llava --restore_questions needs it);\n"
            "  * every image is relative to --image-root, not climbing out of it with '..' (or\n"
            "    absolute under it: a warning), exists as a file (not a folder, not empty)\n"
            "    and passes the training loader's own image check (each distinct image once, in\n"
            f"    --workers processes): long side <= {MAX_IMAGE_SIDE} px and aspect ratio <= {MAX_ASPECT_RATIO}\n"
            "    (from the header, before decoding), a mode that convert('RGB') converts correctly\n"
            "    (16-bit greyscale is refused: it turns white), and a complete decode;\n"
            "  * repeated ids and images are counted (allowed: synthetic samples reuse seed ids);\n"
            "  * an empty file is an error (a recipe whose ops all failed exports one, exit 0).",
            "Prints a summary table and the first errors as file:line (id); --report writes all of "
            "them as JSON. Exit 1 on any error (warnings do not fail)."))
    p.add_argument("dj_jsonl", type=Path, metavar="DJ_JSONL", help="Data-Juicer jsonl to check")
    p.add_argument("--image-root", required=True, type=Path, metavar="DIR",
                   help="folder the image paths are relative to")
    p.add_argument("--original", type=Path, metavar="STAGE1_JSON",
                   help="original LLaVA json; every id must be in it (default: not checked)")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="image decoding processes (default: the CPU count, %(default)s here)")
    p.add_argument("--report", type=Path, metavar="OUT.json",
                   help="write the full report as JSON (not an input, not a folder; checked before any work)")
    p.add_argument("--max-listed", type=positive_int, default=20, metavar="N",
                   help="errors printed (default: 20; the report holds all)")
    p.add_argument("--image-token", default=DJ_IMAGE_TOKEN, help="image token (default: %(default)s)")
    p.add_argument("--eoc-token", default=DJ_EOC_TOKEN, help="end-of-chunk token (default: %(default)s)")
    p.set_defaults(func=_guarded("validate", _run_validate), outputs=lambda args: [args.report])


def register(subparsers) -> None:
    _register_dj2llava(subparsers)
    _register_llava2dj(subparsers)
    _register_sample(subparsers)
    _register_validate(subparsers)
