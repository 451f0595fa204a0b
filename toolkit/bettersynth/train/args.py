"""The training command's arguments: the official kit's flag names, typed and validated.

``TrainArgs`` is the one typed record of a run; it is saved next to every output (train_args.json).
``build_parser()`` accepts the official flags (``--bf16 True`` style booleans, also bare ``--bf16``),
the ``--local_rank`` the deepspeed launcher appends, and this toolkit's own options (loss
normalisation, bad-data policy, resume control). Parsed by ``bsynth train`` and
``python -m bettersynth.train``; see ``bsynth train --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from bettersynth.constants import SEED

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


def str2bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "y"):
        return True
    if lowered in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {value!r}")


def optional_str(value: str) -> str | None:
    return None if value.strip().lower() in ("", "none") else value


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class TrainArgs:
    """All settings of one training stage (official names; help text in build_parser)."""

    model_name_or_path: str
    data_path: str
    vision_tower: str
    vision_tower_aux: str
    output_dir: str
    image_folder: str | None = None
    version: str = "gemma"
    mm_projector_type: str = "mlp2x_gelu"
    tune_mm_mlp_adapter: bool = False
    pretrain_mm_mlp_adapter: str | None = None
    mm_vision_select_layer: int = -2
    mm_use_im_start_end: bool = False
    mm_use_im_patch_token: bool = False
    image_aspect_ratio: str = "square"
    group_by_modality_length: bool = False
    image_size_aux: int = 768
    lazy_preprocess: bool = True
    model_max_length: int = 2048
    gemma_activation: str = "exact"
    aux_drop_path_in_training: bool = True
    attn_implementation: str = "sdpa"
    bf16: bool = False
    tf32: bool = False
    num_train_epochs: int = 1
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    gradient_checkpointing: bool = False
    torch_compile: bool = False
    dataloader_num_workers: int = 0
    evaluation_strategy: str = "no"
    save_strategy: str = "steps"
    save_steps: int = 500
    save_total_limit: int | None = None
    logging_steps: int = 1
    deepspeed: str | None = None
    report_to: str = "none"
    local_rank: int = -1
    seed: int = SEED
    loss_normalization: str = "global_tokens"
    skip_bad_samples: bool = False
    truncate_long_samples: bool = False
    overwrite_output_dir: bool = False
    stop_after_steps: int | None = None

    def __post_init__(self) -> None:
        _require(self.version == "gemma", f"--version {self.version!r}: only the gemma template is implemented")
        _require(self.mm_projector_type == "mlp2x_gelu",
                 f"--mm_projector_type {self.mm_projector_type!r}: only mlp2x_gelu is implemented")
        _require(not self.mm_use_im_start_end and not self.mm_use_im_patch_token,
                 "--mm_use_im_start_end / --mm_use_im_patch_token True are not supported (MGM-2B uses False)")
        _require(self.image_aspect_ratio in ("square", "pad"),
                 f"--image_aspect_ratio {self.image_aspect_ratio!r}: use square (crop) or pad")
        _require(self.gemma_activation in ("exact", "tanh"), "--gemma_activation: exact or tanh")
        _require(self.loss_normalization in ("global_tokens", "micro_batch_mean"),
                 "--loss_normalization: global_tokens or micro_batch_mean")
        _require(self.evaluation_strategy == "no", "--evaluation_strategy: only 'no' (no evaluation during training)")
        _require(self.save_strategy in ("steps", "no"), "--save_strategy: steps or no")
        _require(self.report_to in ("none",), f"--report_to {self.report_to!r}: only 'none' is supported")
        _require(self.lazy_preprocess, "--lazy_preprocess False is not supported (images are always loaded lazily)")
        for name in ("image_size_aux", "model_max_length", "num_train_epochs", "per_device_train_batch_size",
                     "per_device_eval_batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps"):
            _require(getattr(self, name) >= 1, f"--{name} must be >= 1, got {getattr(self, name)}")
        _require(self.dataloader_num_workers >= 0, "--dataloader_num_workers must be >= 0")
        _require(self.learning_rate > 0, "--learning_rate must be > 0")
        _require(self.weight_decay >= 0, "--weight_decay must be >= 0")
        _require(0 <= self.warmup_ratio < 1, "--warmup_ratio must be in [0, 1)")
        _require(self.save_total_limit is None or self.save_total_limit >= 1, "--save_total_limit must be >= 1")
        _require(self.stop_after_steps is None or self.stop_after_steps >= 1, "--stop_after_steps must be >= 1")

    @property
    def stage(self) -> str:
        """pretrain (projector + mining train) when --tune_mm_mlp_adapter, else finetune."""
        return "pretrain" if self.tune_mm_mlp_adapter else "finetune"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="python -m bettersynth.train", description="Train MGM-2B (one stage).", epilog=STAGES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)

    def flag(name: str, kind, help_text: str, **kw):
        if kind is bool:
            parser.add_argument(f"--{name}", type=str2bool, nargs="?", const=True, help=help_text, **kw)
        else:
            parser.add_argument(f"--{name}", type=kind, help=help_text, **kw)

    required = {"model_name_or_path": "the LLM folder (gemma-2b-it)",
                "data_path": "the LLaVA-format json (a list of {id, image?, conversations})",
                "vision_tower": "the CLIP ViT folder", "vision_tower_aux": "the OpenCLIP ConvNeXt folder",
                "output_dir": "where checkpoints and outputs go"}
    for name, help_text in required.items():
        flag(name, str, help_text, required=True)
    defaults = TrainArgs(**{name: "" for name in required})
    helps = {
        "image_folder": "image root; the json's image paths are relative to it",
        "version": "conversation template (gemma)",
        "mm_projector_type": "projector (mlp2x_gelu)",
        "tune_mm_mlp_adapter": "pretrain: train only projector + mining",
        "pretrain_mm_mlp_adapter": "mm_projector.bin from pretrain, loaded strictly (finetune)",
        "mm_vision_select_layer": "CLIP hidden state used (-2)",
        "mm_use_im_start_end": "accepted for compatibility; must be False",
        "mm_use_im_patch_token": "accepted for compatibility; must be False",
        "image_aspect_ratio": "square (shortest-edge resize + centre crop) or pad (pad to square)",
        "group_by_modality_length": "modality + length grouped sampler (finetune)",
        "image_size_aux": "high-resolution input size (768)",
        "lazy_preprocess": "accepted for compatibility; images are always loaded lazily",
        "model_max_length": "sequence limit, image tokens included (2048)",
        "gemma_activation": "Gemma MLP GELU: exact (official, transformers 4.38) or tanh",
        "aux_drop_path_in_training": "official quirk: stochastic depth stays on in the frozen ConvNeXt",
        "attn_implementation": "LLM attention kernel (sdpa, eager, flash_attention_2)",
        "bf16": "bf16 on GPU (ignored on CPU, which trains in fp32)", "tf32": "allow TF32 matmuls on GPU",
        "num_train_epochs": "epochs", "max_steps": "if > 0: train this many optimizer steps (schedule too)",
        "per_device_train_batch_size": "micro-batch per process",
        "per_device_eval_batch_size": "accepted for compatibility (no evaluation during training)",
        "gradient_accumulation_steps": "micro-batches per optimizer step",
        "learning_rate": "peak learning rate", "weight_decay": "AdamW weight decay",
        "adam_beta1": "AdamW beta1", "adam_beta2": "AdamW beta2", "adam_epsilon": "AdamW epsilon",
        "warmup_ratio": "linear warmup over ceil(ratio * steps) steps",
        "lr_scheduler_type": "transformers schedule name (cosine)",
        "gradient_checkpointing": "recompute LLM activations in backward (LLM only)",
        "torch_compile": "torch.compile the LLM decoder layers and the ConvNeXt stages (same math, faster on GPU; "
                         "compiling takes a minute or two at the start of the stage)",
        "dataloader_num_workers": "data loader processes",
        "evaluation_strategy": "accepted for compatibility; must be 'no'",
        "save_strategy": "steps (checkpoint every --save_steps) or no",
        "save_steps": "optimizer steps between checkpoints", "save_total_limit": "keep at most this many checkpoints",
        "logging_steps": "optimizer steps between log lines",
        "deepspeed": "DeepSpeed JSON (ZeRO-2); 'auto' values are filled from these arguments",
        "report_to": "only 'none'", "local_rank": "set by the deepspeed launcher", "seed": "random seed (1024)",
        "loss_normalization": "global_tokens: mean over every supervised token of the global batch (micro-batch "
                              "split does not change the update); micro_batch_mean: the official per-micro-batch "
                              "mean averaged over accumulation steps and processes",
        "skip_bad_samples": "skip (and count) samples with a missing/undecodable image, unknown role or over-long "
                            "text instead of stopping",
        "truncate_long_samples": "truncate over-long samples to --model_max_length (the official behaviour) "
                                 "instead of treating them as bad data",
        "overwrite_output_dir": "discard checkpoints and the completion marker in OUTPUT_DIR and train from scratch",
        "stop_after_steps": "save a checkpoint and stop after this many optimizer steps (as if interrupted)",
    }
    choices = {"image_aspect_ratio": ["square", "pad"], "gemma_activation": ["exact", "tanh"],
               "loss_normalization": ["global_tokens", "micro_batch_mean"]}
    for item in dataclasses.fields(TrainArgs):
        if item.name in required:
            continue
        default = getattr(defaults, item.name)
        annotation = str(item.type)
        if "bool" in annotation:
            kind = bool
        elif annotation.startswith("int"):
            kind = int
        elif annotation.startswith("float"):
            kind = float
        else:
            kind = optional_str if "None" in annotation else str
        extra = {"choices": choices[item.name]} if item.name in choices else {}
        flag(item.name, kind, f"{helps[item.name]} (default: {default})", default=default, **extra)
    return parser


def args_from_namespace(namespace: argparse.Namespace) -> TrainArgs:
    names = {item.name for item in dataclasses.fields(TrainArgs)}
    return TrainArgs(**{name: getattr(namespace, name) for name in names})


def parse_args(argv: list[str] | None = None) -> TrainArgs:
    return args_from_namespace(build_parser().parse_args(argv))
