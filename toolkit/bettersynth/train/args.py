"""The training command's arguments: the official kit's flag names, typed and validated.

``TrainArgs`` is the one typed record of a run; it is saved next to every output (train_args.json).
Each flag is declared once, as a field: its type, default, help and choices (``flag(...)``);
``build_parser()`` makes the command line from the fields and ``__post_init__`` validates them
(choices included), once. The parser accepts the official flags (``--bf16 True`` style booleans,
also bare ``--bf16``), the ``--local_rank`` the deepspeed launcher appends, and this toolkit's own
options (loss normalisation, bad-data policy, resume control).

``--stage pretrain|finetune`` takes the stage's official values from its spec
(bettersynth.train.stages: learning rate, schedule, what trains, image aspect handling); a flag
given beside it must agree with the spec or the command stops naming it. Without ``--stage`` the
stage follows ``--tune_mm_mlp_adapter`` as in the official kit, and the trainer warns about every
value that differs from the spec. Parsed by ``bsynth train`` and ``python -m bettersynth.train``;
see ``bsynth train --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field

from bettersynth.arguments import optional_str, parse_bool
from bettersynth.constants import SEED
from bettersynth.train.stages import STAGES

STAGES_HELP = """\
Stage: --tune_mm_mlp_adapter True trains the projector + mining only (pretrain) and writes
mm_projector.bin, config.json and trainer_state.json; otherwise the LLM trains too (finetune,
normally with --pretrain_mm_mlp_adapter) and a complete checkpoint folder is written.

Resume and re-runs: every --save_steps optimizer steps a checkpoint goes to
OUTPUT_DIR/checkpoint-<step>/ (trainable weights, optimizer, schedule, RNG, data position;
--save_total_limit keeps the newest). A run whose OUTPUT_DIR holds a complete checkpoint resumes
from the latest one automatically and says so. A finished stage (OUTPUT_DIR/training_complete.json
present) is not redone: the command prints so and exits 0. --overwrite_output_dir deletes the
checkpoints and the completion marker and trains from scratch.

Launch: plain `python -m bettersynth.train ...` (CPU or one GPU); `torchrun --nproc_per_node N -m
bettersynth.train ...` or `deepspeed --module bettersynth.train --deepspeed zero2.json ...` on GPUs.
The deepspeed engine is used where --deepspeed is given and CUDA is available; elsewhere a plain
torch optimizer (DDP when several processes) does the same math.
"""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def flag(help_text: str, default=dataclasses.MISSING, choices: tuple | None = None):
    """One TrainArgs field: its default, help text and (optionally) allowed values."""
    metadata = {"help": help_text, "choices": choices}
    if default is dataclasses.MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainArgs:
    """All settings of one training stage (official names)."""

    model_name_or_path: str = flag("the LLM folder (gemma-2b-it)")
    data_path: str = flag("the LLaVA-format json (a list of {id, image?, conversations})")
    vision_tower: str = flag("the CLIP ViT folder")
    vision_tower_aux: str = flag("the OpenCLIP ConvNeXt folder")
    output_dir: str = flag("where checkpoints and outputs go")
    image_folder: str | None = flag("image root; the json's image paths are relative to it", None)
    version: str = flag("conversation template", "gemma", ("gemma",))
    mm_projector_type: str = flag("projector", "mlp2x_gelu", ("mlp2x_gelu",))
    tune_mm_mlp_adapter: bool = flag("pretrain: train only projector + mining", False)
    pretrain_mm_mlp_adapter: str | None = flag("mm_projector.bin from pretrain, loaded strictly (finetune)", None)
    mm_vision_select_layer: int = flag("CLIP hidden state used", -2)
    mm_use_im_start_end: bool = flag("accepted for compatibility; must be False", False, (False,))
    mm_use_im_patch_token: bool = flag("accepted for compatibility; must be False", False, (False,))
    image_aspect_ratio: str = flag("square (shortest-edge resize + centre crop) or pad (pad to square)", "square",
                                   ("square", "pad"))
    group_by_modality_length: bool = flag("modality + length grouped sampler (finetune)", False)
    image_size_aux: int = flag("high-resolution input size", 768)
    lazy_preprocess: bool = flag("accepted for compatibility; images are always loaded lazily", True, (True,))
    model_max_length: int = flag("sequence limit, image tokens included", 2048)
    gemma_activation: str = flag("Gemma MLP GELU: exact (official, transformers 4.38) or tanh", "exact",
                                 ("exact", "tanh"))
    aux_drop_path_in_training: bool = flag("official quirk: stochastic depth stays on in the frozen ConvNeXt", True)
    attn_implementation: str = flag("LLM attention kernel", "sdpa", ("sdpa", "eager", "flash_attention_2"))
    bf16: bool = flag("bf16 on GPU (ignored on CPU, which trains in fp32)", False)
    tf32: bool = flag("allow TF32 matmuls on GPU", False)
    num_train_epochs: int = flag("epochs", 1)
    max_steps: int = flag("if > 0: train this many optimizer steps (schedule too)", -1)
    per_device_train_batch_size: int = flag("micro-batch per process", 8)
    per_device_eval_batch_size: int = flag("accepted for compatibility (no evaluation during training)", 8)
    gradient_accumulation_steps: int = flag("micro-batches per optimizer step", 1)
    learning_rate: float = flag("peak learning rate", 5e-5)
    weight_decay: float = flag("AdamW weight decay", 0.0)
    adam_beta1: float = flag("AdamW beta1", 0.9)
    adam_beta2: float = flag("AdamW beta2", 0.999)
    adam_epsilon: float = flag("AdamW epsilon", 1e-8)
    warmup_ratio: float = flag("linear warmup over ceil(ratio * steps) steps", 0.03)
    lr_scheduler_type: str = flag("transformers schedule name", "cosine")
    gradient_checkpointing: bool = flag("recompute LLM activations in backward (LLM only)", False)
    torch_compile: bool = flag("torch.compile the LLM decoder layers and the ConvNeXt stages (same math, faster "
                               "on GPU; compiling takes a minute or two at the start of the stage)", False)
    dataloader_num_workers: int = flag("data loader processes", 0)
    evaluation_strategy: str = flag("accepted for compatibility (no evaluation during training)", "no", ("no",))
    save_strategy: str = flag("steps (checkpoint every --save_steps) or no", "steps", ("steps", "no"))
    save_steps: int = flag("optimizer steps between checkpoints", 500)
    save_total_limit: int | None = flag("keep at most this many checkpoints", None)
    logging_steps: int = flag("optimizer steps between log lines", 1)
    deepspeed: str | None = flag("DeepSpeed JSON (ZeRO-2); 'auto' values are filled from these arguments", None)
    report_to: str = flag("where the logged scalars also go (bettersynth/train/report_to.py)", "none",
                          ("none", "tensorboard", "wandb"))
    local_rank: int = flag("set by the deepspeed launcher", -1)
    seed: int = flag("random seed", SEED)
    loss_normalization: str = flag("global_tokens: mean over every supervised token of the global batch "
                                   "(micro-batch split does not change the update); micro_batch_mean: the "
                                   "official per-micro-batch mean averaged over accumulation steps and processes",
                                   "global_tokens", ("global_tokens", "micro_batch_mean"))
    skip_bad_samples: bool = flag("skip (and count) samples with a missing/undecodable image, unknown role or "
                                  "over-long text instead of stopping", False)
    truncate_long_samples: bool = flag("truncate over-long samples to --model_max_length (the official behaviour) "
                                       "instead of treating them as bad data", False)
    overwrite_output_dir: bool = flag("discard checkpoints and the completion marker in OUTPUT_DIR and train "
                                      "from scratch", False)
    stop_after_steps: int | None = flag("save a checkpoint and stop after this many optimizer steps (as if "
                                        "interrupted)", None)
    shared_output_wait: float = flag("seconds every process waits to see a file the first one writes in "
                                     "OUTPUT_DIR when several processes train (bettersynth/train/preflight.py)",
                                     60.0)

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            allowed = item.metadata["choices"]
            value = getattr(self, item.name)
            _require(allowed is None or value in allowed,
                     f"--{item.name} {value!r}: allowed values are {', '.join(map(str, allowed or ()))}")
        for name in ("image_size_aux", "model_max_length", "num_train_epochs", "per_device_train_batch_size",
                     "per_device_eval_batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps"):
            _require(getattr(self, name) >= 1, f"--{name} must be >= 1, got {getattr(self, name)}")
        _require(self.dataloader_num_workers >= 0, "--dataloader_num_workers must be >= 0")
        _require(self.learning_rate > 0, "--learning_rate must be > 0")
        _require(self.weight_decay >= 0, "--weight_decay must be >= 0")
        _require(0 <= self.warmup_ratio < 1, "--warmup_ratio must be in [0, 1)")
        _require(self.save_total_limit is None or self.save_total_limit >= 1, "--save_total_limit must be >= 1")
        _require(self.stop_after_steps is None or self.stop_after_steps >= 1, "--stop_after_steps must be >= 1")
        _require(self.shared_output_wait >= 0, "--shared_output_wait must be >= 0")

    @property
    def stage(self) -> str:
        """pretrain (projector + mining train) when --tune_mm_mlp_adapter, else finetune."""
        return "pretrain" if self.tune_mm_mlp_adapter else "finetune"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def argument_type(annotation):
    """The command-line parser of a field's annotation (bool, int, float, str, optional str)."""
    kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)] or [annotation]
    kind = kinds[0]
    if kind is bool:
        return parse_bool
    if kind in (int, float):
        return kind
    return optional_str if type(None) in typing.get_args(annotation) else str


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The command line of TrainArgs: one option per field, plus ``--stage``. Values not given are
    None here and filled in by ``args_from_namespace`` (from the stage spec or the field's default)."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m bettersynth.train", description="Train MGM-2B (one stage).", epilog=STAGES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=sorted(STAGES), default=None,
                        help="take the stage's official values from its spec (bettersynth/train/stages.py); "
                             "flags given beside it must agree")
    hints = typing.get_type_hints(TrainArgs)
    for item in dataclasses.fields(TrainArgs):
        required = item.default is dataclasses.MISSING
        kind = argument_type(hints[item.name])
        extra = {"nargs": "?", "const": True} if kind is parse_bool else {}
        choices = item.metadata["choices"]
        shown = f" (choices: {', '.join(map(str, choices))})" if choices and len(choices) > 1 else ""
        default = "" if required else f" (default: {item.default})"
        parser.add_argument(f"--{item.name}", type=kind, required=required, default=None,
                            help=item.metadata["help"] + shown + default, **extra)
    return parser


def args_from_namespace(namespace: argparse.Namespace) -> TrainArgs:
    """TrainArgs from parsed flags: the stage spec's values under ``--stage`` (a different value given
    for one of them is an error), else each field's default, for the flags not given."""
    given = {item.name: getattr(namespace, item.name) for item in dataclasses.fields(TrainArgs)
             if getattr(namespace, item.name) is not None}
    stage = getattr(namespace, "stage", None)
    if stage is not None:
        official = STAGES[stage].official_flags()
        conflicts = [f"--{name} {given[name]} (the {stage} stage uses {value})"
                     for name, value in official.items() if name in given and given[name] != value]
        _require(not conflicts, f"--stage {stage}: " + "; ".join(conflicts))
        given = {**official, **given}
    return TrainArgs(**given)


def parse_args(argv: list[str] | None = None) -> TrainArgs:
    """TrainArgs from a command line; a bad value stops with the parser's usage and exit 2."""
    parser = build_parser()
    namespace = parser.parse_args(argv)
    try:
        return args_from_namespace(namespace)
    except ValueError as error:
        parser.error(str(error))
