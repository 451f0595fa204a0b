"""``bsynth train``: one MGM-2B training stage with the official kit's flag names; ``bsynth
check-batch`` and ``bsynth plan-batch``: a stage's global batch over the GPUs (bettersynth.train.batch).

    bsynth train --deepspeed toolkit/configs/deepspeed/zero2.json --model_name_or_path ... \\
        --tune_mm_mlp_adapter True ... --output_dir output/training_dirs/MGM-2B-Pretrain-x
    bsynth check-batch 8 4 256                   # exit 1 unless 8 x 4 x GPUs == 256
    bsynth plan-batch pretrain auto auto 256     # prints "MICRO ACCUM", e.g. "16 16"

``bsynth train`` is the same as ``python -m bettersynth.train ...``; under several GPUs launch the
module with torchrun or ``deepspeed --module bettersynth.train``. Heavy imports happen in the
handlers only.
"""

from __future__ import annotations

import argparse
import sys

from bettersynth.arguments import parse_bool, positive_int, positive_number
from bettersynth.train.args import STAGES_HELP, args_from_namespace, build_parser

AUTO = "auto"


def handle_train(namespace: argparse.Namespace) -> int:
    from bettersynth.train.run import run

    try:
        args = args_from_namespace(namespace)
    except ValueError as error:
        print(f"bsynth train: error: {error}", file=sys.stderr)
        return 2
    return run(args)


def auto_or_positive(value: str) -> int | None:
    """"auto" (None) or a positive integer."""
    if value == AUTO:
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {value!r}")
    return int(value)


def gpu_memory_gib() -> float | None:
    """The smallest total memory of the visible GPUs, in GiB; None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return min(torch.cuda.get_device_properties(index).total_memory
               for index in range(torch.cuda.device_count())) / 2 ** 30


def optimizer_offload(deepspeed_config: str | None) -> bool:
    """Whether a DeepSpeed config puts the optimizer on the CPU; ValueError naming an unreadable file."""
    from bettersynth.train.ds_config import offloads_optimizer, read_config

    if not deepspeed_config:
        return False
    return offloads_optimizer(read_config(deepspeed_config))


def handle_plan_batch(namespace: argparse.Namespace) -> int:
    from bettersynth.train.batch import count_gpus, plan_batch
    from bettersynth.train.stages import stage_spec

    try:
        offload = optimizer_offload(namespace.deepspeed)
    except ValueError as error:
        print(f"bsynth plan-batch: {error}", file=sys.stderr)
        return 1
    memory = namespace.gpu_memory_gib if namespace.gpu_memory_gib is not None else gpu_memory_gib()
    model = stage_spec(namespace.stage).memory_model(namespace.torch_compile, namespace.gradient_checkpointing,
                                                     offload)
    try:
        gpus = count_gpus(namespace.num_gpus)  # raises on a malformed WORLD_SIZE
        plan = plan_batch(namespace.per_gpu, namespace.accumulation, namespace.target, gpus.count, memory, model)
    except ValueError as error:
        print(f"bsynth plan-batch {namespace.stage}: {error}", file=sys.stderr)
        return 1
    card = f"{memory:.0f} GiB GPUs" if memory is not None else "no GPU"
    predicted = f", predicted peak {plan.predicted_gib:.0f} GiB" if plan.predicted_gib is not None else ""
    print(f"{namespace.stage}: {plan.micro_batch} per GPU x {plan.accumulation} accumulation x {gpus.count} "
          f"process(es) [{gpus.source}] on {card}{predicted}", file=sys.stderr)
    print(plan.micro_batch, plan.accumulation)
    return 0


def handle_check_batch(namespace: argparse.Namespace) -> int:
    from bettersynth.train.batch import BatchCheck, count_gpus

    try:
        check = BatchCheck(namespace.per_gpu, namespace.accumulation, namespace.target, count_gpus(namespace.num_gpus))
    except ValueError as error:
        print(f"bsynth check-batch: invalid arguments: {error}", file=sys.stderr)
        return 2
    print(check.message(), file=sys.stdout if check.ok else sys.stderr)
    return 0 if check.ok else 1


def register(subparsers) -> None:
    check = subparsers.add_parser(
        "check-batch", help="exit 1 unless PER_GPU x ACCUM x GPUs == TARGET",
        description="Check the global batch: exit 0 when PER_GPU x ACCUM x GPUs == TARGET, else exit 1 and list "
                    "the (per-GPU, accumulation) pairs that would match (the official check exits 0 either way, and "
                    "counts 0 GPUs on a CPU machine). GPUs: --num-gpus; else WORLD_SIZE (set by torchrun/deepspeed "
                    "launchers); else the CUDA devices this process sees; else 1 (a CPU run). See "
                    "bettersynth/train/batch.py.")
    check.add_argument("per_gpu", type=positive_int, metavar="PER_GPU", help="batch size per GPU")
    check.add_argument("accumulation", type=positive_int, metavar="ACCUM", help="gradient accumulation steps")
    check.add_argument("target", type=positive_int, metavar="TARGET", help="required global batch (256 / 128)")
    check.add_argument("--num-gpus", type=positive_int, metavar="N", help="GPUs of all nodes (default: here)")
    check.set_defaults(func=handle_check_batch)

    plan = subparsers.add_parser(
        "plan-batch", help="micro-batch and accumulation for 'auto' values, from the GPU memory",
        description="Print 'MICRO ACCUM' for a stage's global batch: values given as 'auto' are chosen "
                    "(the largest micro-batch of 16, 8, 4, 2, 1 whose predicted peak memory fits 90%% of "
                    "the card; see bettersynth/train/stages.py for the measured models), given values "
                    "are kept. Exit 1 when nothing fits or the numbers do not divide.")
    plan.add_argument("stage", choices=["pretrain", "finetune"])
    plan.add_argument("per_gpu", type=auto_or_positive, metavar="PER_GPU", help="micro-batch per GPU, or auto")
    plan.add_argument("accumulation", type=auto_or_positive, metavar="ACCUM", help="accumulation steps, or auto")
    plan.add_argument("target", type=positive_int, metavar="TARGET", help="the stage's global batch (256 / 128)")
    plan.add_argument("--num-gpus", type=positive_int, metavar="N", help="GPUs of all nodes (default: here)")
    plan.add_argument("--gpu-memory-gib", type=positive_number, metavar="GIB",
                      help="memory of one GPU (default: the smallest visible GPU's; none: the largest micro-batch)")
    plan.add_argument("--torch-compile", type=parse_bool, default=True, metavar="BOOL")
    plan.add_argument("--gradient-checkpointing", type=parse_bool, default=False, metavar="BOOL")
    plan.add_argument("--deepspeed", metavar="JSON", help="the DeepSpeed config (optimizer offload needs less)")
    plan.set_defaults(func=handle_plan_batch)

    parser = subparsers.add_parser(
        "train", help="train MGM-2B (pretrain or finetune stage)", description="Train one MGM-2B stage.",
        epilog=STAGES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    build_parser(parser)
    parser.set_defaults(func=handle_train)
