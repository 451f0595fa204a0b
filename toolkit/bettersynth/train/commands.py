"""``bsynth train``: one MGM-2B training stage with the official kit's flag names.

    bsynth train --deepspeed toolkit/configs/deepspeed/zero2.json --model_name_or_path ... \\
        --tune_mm_mlp_adapter True ... --output_dir output/training_dirs/MGM-2B-Pretrain-x

Same as ``python -m bettersynth.train ...``; under several GPUs launch the module with torchrun or
``deepspeed --module bettersynth.train``. Heavy imports happen in the handler only.
"""

from __future__ import annotations

import argparse

from bettersynth.train.args import STAGES_HELP, args_from_namespace, build_parser


def handle_train(namespace: argparse.Namespace) -> int:
    from bettersynth.train.run import run

    return run(args_from_namespace(namespace))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train MGM-2B (pretrain or finetune stage)", description="Train one MGM-2B stage.",
        epilog=STAGES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    build_parser(parser)
    parser.set_defaults(func=handle_train)
