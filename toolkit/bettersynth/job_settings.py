"""The main job's settings that depend on the layout, decided once: real or demo, the stages' global
batches, the split of each into micro-batch x accumulation, and what the demo scales down.

``bsynth layout --job ...`` prints them with the asset paths (the one shell format the main job
reads); nothing else in the job decides "real or demo?" again: eval and scoring get the layout's
root.

Real: the stage specs' global batches (bettersynth.train.stages: 256, 128), high-resolution input
768 px, the Editable Part's values as given ("auto" batch values planned from the GPUs' memory by
bettersynth.train.batch). Gradient checkpointing "auto": off when the stage's largest micro-batch
fits the GPUs without it (recomputing the forward costs a quarter of the LLM's work: a 141 GB H200
finetunes 16 per GPU without it), else on (one 80 GB GPU: 16 with checkpointing, measured faster
than 8 without); on in the demo and without a GPU (the official value).
Both: the machines (bettersynth.train.nodes: HOSTFILE, or NNODES / NODE_RANK / MASTER_ADDR /
MASTER_PORT); every batch is planned and checked over the whole world (all nodes' processes).
Demo (tiny random models, a 300-sample pool): global batches 8 and 4 per training process (one
per GPU, one on CPU) with 4 x 2 and 2 x 2 per process (``DEMO_*_BATCH_SIZE_PER_GPU`` /
``DEMO_*_GRADIENT_ACCUMULATION_STEPS`` override them), 256-px high-resolution input, one data
loader worker, a checkpoint every 10 steps (``DEMO_CKPT_SAVE_STEPS``), EXP_NAME ``demo`` in place of
the Editable Part's default (an EXP_NAME given is kept; ``DEMO_EXP_NAME`` overrides both), the demo
seed pool's images, no ``torch.compile`` (compiling the tiny models costs minutes on a GPU and gains
nothing), and eval answers of at most 16 new tokens (random weights never stop by themselves: a real
run keeps the benchmarks' 128 / 1024).

    settings = job_settings("demo", editable, os.environ, seed_dir, gpu_memory_gib=None,
                            optimizer_offload=False, say=print)                        # JobSettings
    settings.shell_variables()                                          # {"PRETRAIN_GLOBAL_BATCH": "8", ...}
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bettersynth.arguments import parse_bool
from bettersynth.train.batch import HEADROOM, MICRO_BATCHES, GpuCount, count_gpus, plan_batch
from bettersynth.train.nodes import NodeSettings, node_settings
from bettersynth.train.stages import STAGES

AUTO = "auto"
DEMO_GLOBAL_BATCH_PER_PROCESS = {"pretrain": 8, "finetune": 4}
DEMO_SPLIT = {"pretrain": (4, 2), "finetune": (2, 2)}
DEMO_AUX_SIZE, REAL_AUX_SIZE = 256, 768
DEMO_EVAL_MAX_NEW_TOKENS = 16
EDITABLE_DEFAULT_EXP_NAME = "default"  # train_mgm_2b_stage_1.sh's EXP_NAME when none is given
EVAL_PEAK_GIB = 15.0  # one real-size eval process at batch 32, 8 images a pass: 13.4 GiB reserved, 14.0 held (H100)
PREFIX = {"pretrain": "PRETRAIN", "finetune": "FINETUNE"}


@dataclass(frozen=True)
class StageBatch:
    global_batch: int
    per_gpu: str        # a number, or "auto" until planned
    accumulation: str
    checkpointing: str  # "True" / "False" (as the Editable Part spells them), or "auto" until planned


@dataclass(frozen=True)
class JobSettings:
    mode: str
    num_gpus: int               # CUDA devices this job sees (the deepspeed launcher's --num_gpus)
    nodes: NodeSettings         # the machines; nodes.world_size: processes the global batch is spread over
    batches: dict[str, StageBatch]
    aux_size: int
    overrides: dict[str, str]   # Editable Part values the layout replaces (the demo's)
    eval_max_new_tokens: str    # "" keeps each benchmark's own limit
    eval_side_by_side: bool     # TextVQA and MMBench answered at once (GPUs with room for two evals)

    def shell_variables(self) -> dict[str, str]:
        variables = {"AUX_SIZE": str(self.aux_size), "NUM_GPUS": str(self.num_gpus), **self.nodes.shell_variables(),
                     "EVAL_MAX_NEW_TOKENS": self.eval_max_new_tokens,
                     "EVAL_SIDE_BY_SIDE": str(self.eval_side_by_side)}
        for stage, batch in self.batches.items():
            variables[f"{PREFIX[stage]}_GLOBAL_BATCH"] = str(batch.global_batch)
            variables[f"{PREFIX[stage]}_BATCH_SIZE_PER_GPU"] = batch.per_gpu
            variables[f"{PREFIX[stage]}_GRADIENT_ACCUMULATION_STEPS"] = batch.accumulation
            variables[f"{PREFIX[stage]}_GRADIENT_CHECKPOINTING"] = batch.checkpointing
        return {**variables, **self.overrides}


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def demo_exp_name(environ: Mapping[str, str], exp_name: str | None) -> str:
    """The demo run's name: ``DEMO_EXP_NAME`` when set, else the EXP_NAME asked for, else ``demo`` (for
    the Editable Part's default, the real run's name), so two demo runs under two names stay two runs."""
    if environ.get("DEMO_EXP_NAME"):
        return environ["DEMO_EXP_NAME"]
    return exp_name if exp_name and exp_name != EDITABLE_DEFAULT_EXP_NAME else "demo"


def demo_overrides(environ: Mapping[str, str], seed_dir: str, exp_name: str | None) -> dict[str, str]:
    return {"PRETRAIN_DATALOADER_NUM_WORKERS": "1", "FINETUNE_DATALOADER_NUM_WORKERS": "1",
            "CKPT_SAVE_STEPS": environ.get("DEMO_CKPT_SAVE_STEPS") or "10",
            "EXP_NAME": demo_exp_name(environ, exp_name), "PRETRAIN_DATASET_IMAGE_PATH": seed_dir,
            "TORCH_COMPILE": "False"}


def stage_batches(mode: str, processes: int, editable: Mapping[str, str], environ: Mapping[str, str]
                  ) -> dict[str, StageBatch]:
    batches = {}
    for stage, prefix in PREFIX.items():
        checkpointing = editable[f"{prefix}_GRADIENT_CHECKPOINTING"]
        if mode == "demo":
            micro, accumulation = DEMO_SPLIT[stage]
            batches[stage] = StageBatch(DEMO_GLOBAL_BATCH_PER_PROCESS[stage] * processes,
                                        environ.get(f"DEMO_{prefix}_BATCH_SIZE_PER_GPU") or str(micro),
                                        environ.get(f"DEMO_{prefix}_GRADIENT_ACCUMULATION_STEPS") or str(accumulation),
                                        "True" if checkpointing == AUTO else checkpointing)
        else:
            batches[stage] = StageBatch(STAGES[stage].global_batch, editable[f"{prefix}_BATCH_SIZE_PER_GPU"],
                                        editable[f"{prefix}_GRADIENT_ACCUMULATION_STEPS"], checkpointing)
    return batches


def parse_count(value: str, what: str) -> int | None:
    if value == AUTO:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{what} must be a positive integer or 'auto', got {value!r}")
    return int(value)


def planned(stage: str, batch: StageBatch, processes: int, gpu_memory_gib: float | None, torch_compile: bool,
            optimizer_offload: bool) -> tuple[StageBatch, str | None]:
    """``batch`` with "auto" values chosen (and a line saying what was chosen), or as given."""
    prefix = PREFIX[stage]
    micro = parse_count(batch.per_gpu, f"{prefix}_BATCH_SIZE_PER_GPU")
    accumulation = parse_count(batch.accumulation, f"{prefix}_GRADIENT_ACCUMULATION_STEPS")
    if batch.checkpointing == AUTO:
        checkpointing = checkpointing_needed(stage, batch.global_batch, micro, accumulation, processes,
                                             gpu_memory_gib, torch_compile, optimizer_offload)
    else:
        checkpointing = parse_bool(batch.checkpointing)
    batch = dataclasses.replace(batch, checkpointing=str(checkpointing))
    if micro is not None and accumulation is not None:
        return batch, None
    model = STAGES[stage].memory_model(torch_compile, checkpointing, optimizer_offload)
    try:
        plan = plan_batch(micro, accumulation, batch.global_batch, processes, gpu_memory_gib, model)
    except ValueError as error:
        raise ValueError(f"bsynth plan-batch {stage}: {error}") from error
    card = f"{gpu_memory_gib:.0f} GiB GPUs" if gpu_memory_gib is not None else "no GPU"
    predicted = f", predicted peak {plan.predicted_gib:.0f} GiB" if plan.predicted_gib is not None else ""
    said = (f"{stage}: {plan.micro_batch} per GPU x {plan.accumulation} accumulation x {processes} process(es) "
            f"{'with' if checkpointing else 'without'} gradient checkpointing on {card}{predicted}")
    return StageBatch(batch.global_batch, str(plan.micro_batch), str(plan.accumulation), str(checkpointing)), said


def checkpointing_needed(stage: str, global_batch: int, micro: int | None, accumulation: int | None, processes: int,
                         gpu_memory_gib: float | None, torch_compile: bool, optimizer_offload: bool) -> bool:
    """Gradient checkpointing "auto": off only when the micro-batch (given, implied by the given
    accumulation, or else the largest that divides the per-GPU batch) fits the GPUs without it."""
    if gpu_memory_gib is None:
        return True
    per_gpu = max(1, global_batch // processes)
    if micro is None and accumulation:
        micro = max(1, per_gpu // accumulation)
    if micro is None:
        micro = next(size for size in MICRO_BATCHES if per_gpu % size == 0)
    without = STAGES[stage].memory_model(torch_compile, False, optimizer_offload)
    return without.peak_gib(micro, processes) > HEADROOM * gpu_memory_gib


# Editable Part values the trainer or the evals read, checked here, before any work, rather than
# minutes later where they are used: counts (key -> least value), booleans, the eval GPU list
COUNT_RULES = {"LOGGING_STEP": 1, "CKPT_SAVE_STEPS": 1, "TOTAL_SAVE_CKPT_LIMIT": 1,
               "PRETRAIN_DATALOADER_NUM_WORKERS": 0, "FINETUNE_DATALOADER_NUM_WORKERS": 0}
BOOLEANS = ("PRETRAIN_GRADIENT_CHECKPOINTING", "FINETUNE_GRADIENT_CHECKPOINTING")
# the values the batches are planned from: with any --editable value, `bsynth layout` needs them all
REQUIRED = tuple(f"{prefix}_{name}" for prefix in PREFIX.values()
                 for name in ("BATCH_SIZE_PER_GPU", "GRADIENT_ACCUMULATION_STEPS", "GRADIENT_CHECKPOINTING")
                 ) + ("TORCH_COMPILE",)
GPU_LIST = re.compile(r"^[0-9]+(,[0-9]+)*$")


def editable_problems(editable: Mapping[str, str]) -> list[str]:
    """What is wrong with the Editable Part values given (absent keys are not checked)."""
    problems = []
    for key, least in COUNT_RULES.items():
        value = editable.get(key)
        if value is not None and not (value.isdigit() and int(value) >= least):
            problems.append(f"{key} must be an integer of at least {least}, got {value!r}")
    for key in BOOLEANS:
        if key in editable and editable[key] != AUTO:
            try:
                parse_bool(editable[key])
            except argparse.ArgumentTypeError:
                problems.append(f"{key} must be True, False or auto, got {editable[key]!r}")
    gpus = editable.get("INFER_CUDA_IDX")
    if gpus is not None and not GPU_LIST.match(gpus):
        problems.append(f"INFER_CUDA_IDX must be GPU indices separated by commas (0 or 0,1,2,3), got {gpus!r}")
    return problems


def job_settings(mode: str, editable: Mapping[str, str], environ: Mapping[str, str], seed_dir: str,
                 gpu_memory_gib: float | None, optimizer_offload: bool, say: Callable[[str], None]) -> JobSettings:
    """The job's settings for the layout ``mode``; ``say`` gets a line for each "auto" value planned.
    ValueError (naming the stage) when a batch cannot be split or fit, or naming every bad value."""
    problems = editable_problems(editable)
    if problems:
        raise ValueError("; ".join(problems))
    num_gpus = visible_gpus()
    unreachable = eval_gpus_problem(editable.get("INFER_CUDA_IDX"), num_gpus, environ)
    if unreachable:
        raise ValueError(unreachable)
    processes_here = count_gpus(environ=environ)
    foreign = foreign_world_size_problem(processes_here, num_gpus)
    if foreign:
        raise ValueError(foreign)
    nodes = node_settings(editable, num_gpus, processes_here.count)
    processes = nodes.world_size
    batches = stage_batches(mode, processes, editable, environ)
    overrides = demo_overrides(environ, seed_dir, editable.get("EXP_NAME")) if mode == "demo" else {}
    torch_compile = (overrides.get("TORCH_COMPILE") or editable["TORCH_COMPILE"]) == "True"
    for stage, batch in batches.items():
        batches[stage], line = planned(stage, batch, processes, gpu_memory_gib, torch_compile, optimizer_offload)
        if line:
            say(line)
    aux_size = DEMO_AUX_SIZE if mode == "demo" else REAL_AUX_SIZE
    return JobSettings(mode, num_gpus, nodes, batches, aux_size, overrides, eval_answer_cap(mode, environ),
                       evals_fit_side_by_side(num_gpus, gpu_memory_gib))


def foreign_world_size_problem(processes: GpuCount, num_gpus: int) -> str | None:
    """Why the training processes counted on this machine cannot be right, or None: the main job starts
    one per GPU itself, so a WORLD_SIZE in its environment that is not the GPUs it sees was set by
    something else (a scheduler: a Kubernetes PyTorchJob counts machines) and would leave GPUs idle or
    start more processes than there are GPUs. Without a GPU, WORLD_SIZE stands for the GPU count (the
    CPU checks of a multi-GPU layout)."""
    if processes.source != "WORLD_SIZE" or num_gpus == 0 or processes.count == num_gpus:
        return None
    return (f"WORLD_SIZE={processes.count} is set, but this machine sees {num_gpus} GPU(s): the main job starts "
            "one training process per GPU itself (NNODES and NODE_RANK say the machines); unset WORLD_SIZE, "
            "or show the GPUs to use with CUDA_VISIBLE_DEVICES")


def eval_gpus_problem(infer_ids: str | None, num_gpus: int, environ: Mapping[str, str]) -> str | None:
    """Why an eval shard would find no GPU, or None: each shard's CUDA_VISIBLE_DEVICES is one id of
    INFER_CUDA_IDX, a physical index, so it must be one of CUDA_VISIBLE_DEVICES when that is set (by
    index; a list of GPU UUIDs is not checked), else below the GPU count. Without a GPU the ids only
    number the CPU shards. Checked here so a bad id stops the job before training, not after it."""
    if not infer_ids or num_gpus == 0:
        return None
    ids = infer_ids.split(",")
    visible = [item.strip() for item in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if item.strip()]
    if visible and not all(item.isdigit() for item in visible):
        return None
    reachable = visible or [str(index) for index in range(num_gpus)]
    missing = [item for item in ids if str(int(item)) not in reachable]
    if not missing:
        return None
    where = (f"CUDA_VISIBLE_DEVICES={','.join(visible)}" if visible else f"this machine has GPUs 0 to {num_gpus - 1}")
    return (f"INFER_CUDA_IDX={infer_ids} names GPU {', '.join(missing)}, which no eval shard could reach ({where}); "
            "list physical GPU indices that are visible")


def evals_fit_side_by_side(num_gpus: int, gpu_memory_gib: float | None) -> bool:
    """Whether each GPU holds two evals at once (both benchmarks side by side, toolkit/eval/side_by_side.sh):
    an eval at real size holds 14 GiB (batch 32, 8 images a pass; 13.4 GiB reserved by torch, the rest
    CUDA's own; measured on an H100, bench/RESULTS.md), counted as 15, so GPUs of 34 GiB and more.
    Never on CPU, where the two would share the cores, nor without ``setsid`` (util-linux), which the
    side-by-side runner needs to stop both evals together."""
    return (num_gpus > 0 and gpu_memory_gib is not None and 2 * EVAL_PEAK_GIB <= HEADROOM * gpu_memory_gib
            and shutil.which("setsid") is not None)


def eval_answer_cap(mode: str, environ: Mapping[str, str]) -> str:
    """The eval answers' new-token cap: the demo's 16; in the real layout ``BSYNTH_EVAL_MAX_NEW_TOKENS``
    when set (timing random-weight models), else "" (the benchmarks' own 128 / 1024)."""
    if mode == "demo":
        return str(DEMO_EVAL_MAX_NEW_TOKENS)
    given = environ.get("BSYNTH_EVAL_MAX_NEW_TOKENS", "")
    if given and (not given.isdigit() or int(given) < 1):
        raise ValueError(f"BSYNTH_EVAL_MAX_NEW_TOKENS must be a positive integer, got {given!r}")
    return given
