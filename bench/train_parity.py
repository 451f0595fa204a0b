"""Plain PyTorch against DeepSpeed ZeRO-2 (optimizer on the GPU, and on the CPU) at real size.

Runs the real trainer (`bettersynth.train`) on the real-size MGM-2B with random weights (the
folders of `real_size_assets.py`) for a few optimizer steps of each stage with each engine, on the
same data in the same order with the ConvNeXt drop path off, and prints every step's loss side by
side with the largest gap to plain PyTorch. The finetune runs start from the plain pretrain run's
`mm_projector.bin` and end with the full Hugging Face save; each saved folder is reloaded with the
toolkit's loader and its loss on a fixed batch compared with the plain run's.

    python bench/train_parity.py --work /tmp/bench --out parity.json --log-dir logs

Global batch 32 (pretrain, 16 x 2) and 16 (finetune, 4 x 4, with gradient checkpointing so the
plain run's fp32 AdamW state fits next to the activations); accumulation above 1 on purpose, since
that is where ZeRO-2 with the optimizer on the CPU once went wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_size_assets import write_images, write_models  # noqa: E402
from train_throughput import PeakMemory, Setting, calibrate_words, gpu_batch, stage_data, trainer_command  # noqa: E402

ENGINES = {"plain": None, "zero2": "zero2.json", "zero2_offload": "zero2_offload.json"}
STAGES = {  # micro-batch, accumulation, gradient checkpointing, optimizer steps, tokens per sample
    "pretrain": (16, 2, False, 3, 614),
    "finetune": (4, 4, True, 2, 700),
}


def train(stage: str, engine: str, folders: dict, data: Path, image_root: Path, work: Path, log_dir: Path,
          extra: list[str]) -> dict:
    micro, accumulation, checkpointing, steps, _ = STAGES[stage]
    setting = Setting(micro, accumulation, ENGINES[engine], checkpointing, 8, "global_tokens")
    out = work / "parity" / f"{stage}-{engine}"
    command = trainer_command(stage, setting, folders, data, image_root, out, steps)
    command += ["--aux_drop_path_in_training", "False", *extra]
    start = time.monotonic()
    log_path = log_dir / f"parity-{stage}-{engine}.log"
    with PeakMemory() as memory, open(log_path, "w") as log:
        result = subprocess.run(command, env=dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1"),
                                stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"{stage}:{engine} failed (exit {result.returncode}); see {log_path}")
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return {"stage": stage, "engine": engine, "losses": losses, "peak_gib": memory.peak_gib,
            "wall_s": time.monotonic() - start, "output_dir": str(out)}


def reloaded_loss(folder: str, data: Path, image_root: Path) -> tuple[float, int]:
    """Loss of a saved finetune folder, reopened by the toolkit's loader, on the data's first 8 samples."""
    from bettersynth.model.io import load_checkpoint
    from bettersynth.train.dataset import DataOptions, LazySupervisedDataset

    model, tokenizer, preprocessor = load_checkpoint(folder, device="cuda", dtype=torch.bfloat16)
    dataset = LazySupervisedDataset(DataOptions(data_path=data, image_folder=image_root, aspect="pad",
                                                model_max_length=2048, num_image_tokens=model.num_image_tokens),
                                    tokenizer, preprocessor)
    with torch.no_grad():
        out = model.eval()(**gpu_batch(tokenizer, dataset, 8))
    loss, count = float(out.loss_sum / out.num_tokens), sum(param.numel() for param in model.parameters())
    del model
    torch.cuda.empty_cache()
    return loss, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--runs", nargs="+", default=[f"{s}:{e}" for s in STAGES for e in ENGINES],
                        help="stage:engine pairs; finetune needs pretrain:plain (its projector) run first")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("train_parity.json"))
    parser.add_argument("--log-dir", type=Path, default=Path("."))
    args = parser.parse_args()

    from transformers import AutoTokenizer

    args.log_dir.mkdir(parents=True, exist_ok=True)
    folders = write_models(args.work / "models")
    image_root = args.work / "data"
    images = write_images(image_root, args.images)
    tokenizer = AutoTokenizer.from_pretrained(folders["llm"])
    runs = []
    for stage, (micro, accumulation, _, steps, tokens) in STAGES.items():
        words = calibrate_words(args.work, stage, images, tokenizer, tokens)
        data = stage_data(args.work, stage, micro * accumulation * steps, images, words)
        extra = []
        if stage == "finetune":
            extra = ["--pretrain_mm_mlp_adapter", str(args.work / "parity" / "pretrain-plain" / "mm_projector.bin")]
        for engine in (e for e in ENGINES if f"{stage}:{e}" in args.runs):
            row = train(stage, engine, folders, data, image_root, args.work, args.log_dir, extra)
            runs.append(row)
            print(json.dumps(row), flush=True)
        if stage == "finetune":
            for row in (r for r in runs if r["stage"] == "finetune"):
                row["reloaded_loss"], row["reloaded_parameters"] = reloaded_loss(row["output_dir"], data, image_root)
                print(f"finetune {row['engine']}: reloaded folder loss {row['reloaded_loss']:.4f}, "
                      f"{row['reloaded_parameters']:,} parameters", flush=True)
    args.out.write_text(json.dumps({"card": torch.cuda.get_device_name(), "runs": runs}, indent=1))
    for stage in STAGES:
        rows = {r["engine"]: r for r in runs if r["stage"] == stage}
        if "plain" not in rows:
            continue
        print(f"\n{stage}: loss per step")
        print(f"{'step':>4} " + " ".join(f"{engine:>14}" for engine in rows))
        for step in range(len(rows["plain"]["losses"])):
            print(f"{step + 1:>4} " + " ".join(f"{rows[e]['losses'][step]:>14.4f}" for e in rows))
        for engine, row in rows.items():
            gap = max(abs(a - b) for a, b in zip(row["losses"], rows["plain"]["losses"]))
            print(f"{engine:>14}: largest gap to plain {gap:.4f}, "
                  f"peak {row['peak_gib']:.1f} GiB, {row['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
