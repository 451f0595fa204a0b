"""Training throughput of MGM-2B on one GPU: our default settings against the official ones.

Builds the real-size model (random weights) in the real on-disk layouts and real-format data
(JPEGs decoded by the real data loader; captions sized so a pretrain sample is ~614 tokens and a
finetune sample ~700, image tokens included), then runs the real trainer (`bettersynth.train`
under torchrun + DeepSpeed) for a few optimizer steps at the official global batch of each stage,
once with our defaults and once with the official settings (ZeRO-2 with the optimizer on the CPU,
small micro-batches, gradient checkpointing). Prints samples/s and tokens/s (median over the timed
steps, data loading included), model TFLOP/s and MFU against a bf16 matmul ceiling measured here,
peak GPU memory and the GPU's kernel-busy share (nvidia-smi), the share of the time the trainer
waited for its data loader, and the ratio ours/official. Our
setting compiles the model's blocks (``--torch_compile``); the "eager" setting is ours without it.
A per-part profile of one micro-batch of our setting (CLIP tower, ConvNeXt tower, mining +
projector with its backward, the whole step), eager and compiled, and a table of the compiled
step's GPU time per kernel say where a training step's time goes (``--profile``).

    python bench/train_throughput.py --work /tmp/bench --runs pretrain:ours pretrain:official \
        finetune:ours finetune:official --steps 5 --warmup 2 --out results.json

The first steps of a compiled run include compiling: leave them out with --warmup.

Model FLOPs per sample are counted once per stage with torch's FlopCounterMode on one real
micro-batch (forward + backward of exactly what the stage computes; no recomputation counted).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_size_assets import write_finetune_json, write_images, write_models, write_pretrain_json  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEEPSPEED_DIR = REPO_ROOT / "toolkit" / "configs" / "deepspeed"


@dataclass(frozen=True)
class Setting:
    micro_batch: int
    accumulation: int
    deepspeed_config: str | None  # None: the plain torch backend
    gradient_checkpointing: bool
    workers: int
    loss_normalization: str
    torch_compile: bool


# Global batch 256 (pretrain) and 128 (finetune) on one GPU in every setting. "eager" is ours
# without torch.compile, to measure what compiling gives on its own; "micro32" is ours with twice
# the micro-batch and half the accumulation (the same global batch); "no_ckpt" and "no_ckpt16" are
# finetune without gradient checkpointing at micro-batch 8 and 16.
SETTINGS = {
    ("pretrain", "ours"): Setting(16, 16, "zero2.json", False, 12, "global_tokens", True),
    ("pretrain", "micro32"): Setting(32, 8, "zero2.json", False, 12, "global_tokens", True),
    ("pretrain", "eager"): Setting(16, 16, "zero2.json", False, 12, "global_tokens", False),
    ("pretrain", "official"): Setting(4, 64, "zero2_offload.json", True, 4, "micro_batch_mean", False),
    ("finetune", "ours"): Setting(16, 8, "zero2.json", True, 12, "global_tokens", True),
    ("finetune", "eager"): Setting(16, 8, "zero2.json", True, 12, "global_tokens", False),
    ("finetune", "no_ckpt"): Setting(8, 16, "zero2.json", False, 12, "global_tokens", True),
    ("finetune", "no_ckpt16"): Setting(16, 8, "zero2.json", False, 12, "global_tokens", True),
    ("finetune", "official"): Setting(4, 32, "zero2_offload.json", True, 4, "micro_batch_mean", False),
}
STAGE_ARGS = {
    "pretrain": ["--tune_mm_mlp_adapter", "True", "--learning_rate", "1e-3"],
    "finetune": ["--image_aspect_ratio", "pad", "--group_by_modality_length", "True", "--learning_rate", "2e-5"],
}


def matmul_ceiling_tflops(size: int = 8192, repeats: int = 20) -> float:
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return 2 * size ** 3 / statistics.median(times) / 1e12


def stage_data(work: Path, stage: str, samples: int, images: list[str], words: int) -> Path:
    path = work / "data" / f"{stage}.json"
    if stage == "pretrain":
        write_pretrain_json(path, images, samples, caption_words=words)
    else:
        write_finetune_json(path, images, samples, answer_words=words)
    return path


def mean_tokens(data_path: Path, tokenizer, image_tokens: int) -> float:
    from bettersynth.template import encode_conversation

    records = json.loads(data_path.read_text())[:64]
    lengths = [len(encode_conversation(r["conversations"], tokenizer, has_image=True).input_ids) - 1 + image_tokens
               for r in records]
    return statistics.mean(lengths)


def calibrate_words(work: Path, stage: str, images: list[str], tokenizer, target: int) -> int:
    """The caption/answer length in words whose samples come closest to ``target`` tokens."""
    best = (float("inf"), 1)
    for words in range(1, 160, 2):
        path = stage_data(work, stage, 64, images, words)
        gap = abs(mean_tokens(path, tokenizer, 576) - target)
        best = min(best, (gap, words))
    return best[1]


def trainer_command(stage: str, setting: Setting, folders: dict, data: Path, image_root: Path, out: Path,
                    steps: int) -> list[str]:
    engine = ["--deepspeed", str(DEEPSPEED_DIR / setting.deepspeed_config)] if setting.deepspeed_config else []
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
            "-m", "bettersynth.train", *engine, "--bf16", "True", "--tf32", "True",
            "--model_name_or_path", str(folders["llm"]), "--vision_tower", str(folders["clip"]),
            "--vision_tower_aux", str(folders["aux"]), "--version", "gemma", "--mm_projector_type", "mlp2x_gelu",
            "--mm_vision_select_layer", "-2", "--image_size_aux", "768", "--data_path", str(data),
            "--image_folder", str(image_root), "--output_dir", str(out), "--overwrite_output_dir", "True",
            "--per_device_train_batch_size", str(setting.micro_batch),
            "--gradient_accumulation_steps", str(setting.accumulation),
            "--gradient_checkpointing", str(setting.gradient_checkpointing),
            "--torch_compile", str(setting.torch_compile),
            "--dataloader_num_workers", str(setting.workers), "--loss_normalization", setting.loss_normalization,
            "--max_steps", str(steps), "--save_strategy", "no", "--logging_steps", "1",
            "--model_max_length", "2048", "--report_to", "none", *STAGE_ARGS[stage]]


class GpuMonitor:
    """Polls nvidia-smi while a run is going: the largest memory.used seen (``peak_gib``) and the
    kernel-busy percentage (utilization.gpu) twice a second. Well under 100 while the model computes
    means the GPU waits for the host between kernels."""

    def __init__(self) -> None:
        self.peak_mib = 0
        self.busy: list[tuple[float, int]] = []
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,utilization.gpu",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
            fields = out.split("\n")[0].split(",")
            if len(fields) == 2:
                self.peak_mib = max(self.peak_mib, int(fields[0]))
                self.busy.append((round(time.monotonic() - self._start, 1), int(fields[1])))

    def __enter__(self) -> GpuMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_gib(self) -> float:
        return self.peak_mib / 1024

    def busy_median(self, last_seconds: float) -> float:
        """Median busy share over the ``last_seconds`` before the GPU's last active sample (the
        timed steps: compiling and loading, earlier, leave it partly idle)."""
        active = [(at, percent) for at, percent in self.busy if percent > 0]
        if not active:
            return 0.0
        end = active[-1][0]
        return statistics.median(percent for at, percent in active if at >= end - last_seconds)


def build_on_gpu(stage: str, folders: dict, data: Path, image_root: Path, setting: Setting):
    """The stage's model (bf16, on the GPU, trainable parts as the trainer sets them, not compiled)
    and its data set."""
    from bettersynth.train.args import parse_args
    from bettersynth.train.run import build

    eager = dataclasses.replace(setting, torch_compile=False)
    command = trainer_command(stage, eager, folders, data, image_root, Path("/tmp/unused"), 1)
    args = parse_args(command[command.index("bettersynth.train") + 1:])
    model, tokenizer, _, dataset = build(args)
    return model.to("cuda", torch.bfloat16), tokenizer, dataset


def gpu_batch(tokenizer, dataset, size: int) -> dict:
    from bettersynth.train.collate import Collator

    batch, _ = Collator(tokenizer.pad_token_id, 768)([dataset[i] for i in range(size)])
    return {k: v.to("cuda", torch.bfloat16) if v.is_floating_point() else v.to("cuda") for k, v in batch.items()}


def count_flops_per_sample(model, batch: dict) -> float:
    """Forward + backward FLOPs of one real micro-batch, divided by its size."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(**batch).loss_sum.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(batch["input_ids"])


def median_ms(work, repeats: int = 5) -> float:
    work()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        work()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def profile_parts(model, batch: dict) -> dict[str, float]:
    """Milliseconds per micro-batch: each tower's forward, mining + projector forward and backward,
    and the whole forward + backward; the LLM's share is the remainder."""
    import torch.nn.functional as F

    images = batch["images_aux"]
    side = model.vision_tower.image_size
    low_res = F.interpolate(images.float(), size=(side, side), mode="bilinear", align_corners=False)
    with torch.no_grad():
        clip_features, aux_map = model.vision_tower(low_res), model.aux_tower(images)

    def image_path():
        features = model.mining(clip_features.to(model.dtype), aux_map.to(model.dtype))
        model.projector(features).float().square().mean().backward()

    def whole_step():
        model(**batch).loss_sum.backward()

    parts = {"clip_tower": median_ms(lambda: model.vision_tower(low_res)),
             "aux_tower": median_ms(lambda: model.aux_tower(images)),
             "mining_and_projector": median_ms(image_path),
             "whole_step": median_ms(whole_step)}
    model.zero_grad(set_to_none=True)
    parts["llm_and_rest"] = (parts["whole_step"] - parts["clip_tower"] - parts["aux_tower"]
                             - parts["mining_and_projector"])
    return parts


def kernel_table(work, top: int = 25) -> dict:
    """GPU time of one call of ``work`` per kernel (torch.profiler), the ``top`` largest, in ms."""
    from torch.profiler import ProfilerActivity, profile

    work()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as trace:
        work()
        torch.cuda.synchronize()
    kernels = sorted(((event.key, event.self_device_time_total / 1000, event.count) for event in trace.key_averages()
                      if event.self_device_time_total > 0), key=lambda row: -row[1])
    return {"total_ms": sum(ms for _, ms, _ in kernels),
            "top": [{"kernel": name[:160], "ms": round(ms, 3), "calls": calls} for name, ms, calls in kernels[:top]]}


def run_one(stage: str, name: str, folders: dict, data: Path, image_root: Path, work: Path, steps: int,
            warmup: int, log_dir: Path) -> dict:
    setting = SETTINGS[(stage, name)]
    out = work / "runs" / f"{stage}-{name}"
    command = trainer_command(stage, setting, folders, data, image_root, out, steps)
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    start = time.monotonic()
    with GpuMonitor() as monitor, open(log_dir / f"{stage}-{name}.log", "w") as log:
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"{stage}:{name} failed (exit {result.returncode}); see {log_dir / f'{stage}-{name}.log'}")
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    timed = [entry for entry in history if "samples_per_second" in entry][warmup:]
    samples_per_s = statistics.median(e["samples_per_second"] for e in timed)
    tokens_per_s = statistics.median(e["tokens_per_second"] for e in timed)
    data_wait = statistics.median(e["data_wait_share"] for e in timed)
    global_batch = setting.micro_batch * setting.accumulation
    timed_seconds = sum(global_batch / e["samples_per_second"] for e in timed)
    return {"stage": stage, "setting": name, **setting.__dict__, "samples_per_s": samples_per_s,
            "tokens_per_s": tokens_per_s, "tokens_per_sample": tokens_per_s / samples_per_s,
            "data_wait_share": data_wait,
            "timed_steps": len(timed), "peak_gib": monitor.peak_gib,
            "gpu_busy_median": monitor.busy_median(timed_seconds),
            "gpu_busy_series": monitor.busy, "wall_s": time.monotonic() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--runs", nargs="+", default=["pretrain:ours", "pretrain:official"])
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per run (global batches)")
    parser.add_argument("--warmup", type=int, default=1, help="first steps left out of the median")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=Path("train_throughput.json"))
    parser.add_argument("--log-dir", type=Path, default=Path("."))
    parser.add_argument("--profile", choices=["both", "compiled", "none"], default="both",
                        help="per-part profiles of the eager and the compiled model, of the compiled one only "
                             "(plus its kernel table), or none (saves minutes)")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    args.log_dir.mkdir(parents=True, exist_ok=True)
    ceiling = matmul_ceiling_tflops()
    print(f"bf16 matmul ceiling: {ceiling:.0f} TFLOP/s on {torch.cuda.get_device_name()}", flush=True)
    folders = write_models(args.work / "models")
    image_root = args.work / "data"
    images = write_images(image_root, args.images)
    tokenizer = AutoTokenizer.from_pretrained(folders["llm"])
    results, profiles = [], {}

    def write_report() -> None:  # after each run, so a run cut off by a time limit keeps the earlier ones
        args.out.write_text(json.dumps({"card": torch.cuda.get_device_name(), "matmul_tflops": ceiling,
                                        "results": results, "profiles": profiles}, indent=1))

    for stage in dict.fromkeys(run.split(":")[0] for run in args.runs):
        target = 614 if stage == "pretrain" else 700
        words = calibrate_words(args.work, stage, images, tokenizer, target)
        global_batch = 256 if stage == "pretrain" else 128
        data = stage_data(args.work, stage, global_batch * args.steps, images, words)
        print(f"{stage}: {mean_tokens(data, tokenizer, 576):.0f} tokens/sample ({words} words)", flush=True)
        setting = SETTINGS[(stage, "ours")]
        model, _, dataset = build_on_gpu(stage, folders, data, image_root, setting)
        flops = count_flops_per_sample(model, gpu_batch(tokenizer, dataset, 2))
        print(f"{stage}: {flops / 1e12:.2f} TFLOP per sample (forward + backward)", flush=True)
        if args.profile != "none":
            batch = gpu_batch(tokenizer, dataset, setting.micro_batch)
            profiles[stage] = profile = {"micro_batch": setting.micro_batch}
            if args.profile == "both":
                profile["ms_eager"] = profile_parts(model, batch)
            model.compile_blocks()
            profile["ms_compiled"] = profile_parts(model, batch)
            profile["kernels_whole_step_compiled"] = kernel_table(
                lambda model=model, batch=batch: model(**batch).loss_sum.backward())
            model.zero_grad(set_to_none=True)
            for variant in ("eager", "compiled"):
                if f"ms_{variant}" in profile:
                    print(f"{stage}: ms per micro-batch of {setting.micro_batch}, {variant}: "
                          + ", ".join(f"{name} {ms:.0f}" for name, ms in profile[f"ms_{variant}"].items()),
                          flush=True)
            table = profile["kernels_whole_step_compiled"]
            print(f"{stage}: kernels of one compiled micro-batch, forward + backward ({table['total_ms']:.0f} ms "
                  "of GPU time in all):", flush=True)
            for row in table["top"]:
                print(f"  {row['ms']:8.2f} ms {row['calls']:6d}x  {row['kernel']}", flush=True)
            del batch
            write_report()
        del model, dataset
        torch._dynamo.reset()
        torch.cuda.empty_cache()
        for run in args.runs:
            run_stage, name = run.split(":")
            if run_stage != stage:
                continue
            row = run_one(stage, name, folders, data, image_root, args.work, args.steps, args.warmup, args.log_dir)
            row["tflops"] = flops * row["samples_per_s"] / 1e12
            row["mfu"] = row["tflops"] / ceiling
            results.append(row)
            print(json.dumps({key: value for key, value in row.items() if key != "gpu_busy_series"}), flush=True)
            write_report()
    print(f"\n{'stage':9} {'setting':9} {'micro x acc':>11} {'samples/s':>10} {'tokens/s':>10} "
          f"{'TFLOP/s':>8} {'MFU':>6} {'peak GiB':>9} {'GPU busy':>9} {'data wait':>10}")
    for row in results:
        print(f"{row['stage']:9} {row['setting']:9} {row['micro_batch']:>4} x {row['accumulation']:<4} "
              f"{row['samples_per_s']:>10.1f} {row['tokens_per_s']:>10.0f} {row['tflops']:>8.0f} "
              f"{row['mfu']:>6.1%} {row['peak_gib']:>9.1f} {row['gpu_busy_median']:>8.0f}% "
              f"{row['data_wait_share']:>10.1%}")
    for stage in ("pretrain", "finetune"):
        rows = {r["setting"]: r for r in results if r["stage"] == stage}
        if {"ours", "official"} <= set(rows):
            print(f"{stage}: ours / official = "
                  f"{rows['ours']['samples_per_s'] / rows['official']['samples_per_s']:.2f}x")


if __name__ == "__main__":
    main()
