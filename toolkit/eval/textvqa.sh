#!/usr/bin/env bash
set -euo pipefail
# TextVQA inference of a finetuned checkpoint, one shard per GPU (the official kit's arguments).
#
#   bash toolkit/eval/textvqa.sh [--data-root DIR] CKPT GPU_LIST [extra bsynth eval textvqa options]
#   bash toolkit/eval/textvqa.sh MGM-2B-Finetune-default 0,1,2,3 --batch-size 32
#
# CKPT is the finetune run name: the checkpoint is output/training_dirs/CKPT, the answers go to
# output/eval_results/CKPT/textvqa/ (paths from bettersynth.paths, not the current directory).
# GPU_LIST "0,1,2,3" gives 4 contiguous shards; shard k runs in its own background process with
# CUDA_VISIBLE_DEVICES exported to the k-th GPU and writes {CHUNKS}_{k}.jsonl atomically. Every
# shard's exit status is checked; bm1.jsonl is merged (checked against the question file, written
# atomically) only when all succeeded; otherwise the script exits non-zero and bm1.jsonl is absent.
# With no GPU the shards run on CPU (GPU_LIST still sets the shard count).
# Eval data: --data-root, else $BSYNTH_EVAL_DATA_ROOT, else the real layout when its eval files
# exist, else the demo layout; the choice is printed. $PYTHON picks the interpreter.

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BSYNTH_ROOT="${BSYNTH_ROOT:-$(dirname "$(dirname "$SCRIPT_DIR")")}"  # this checkout, from any folder
export PYTHONPATH="$(dirname "$SCRIPT_DIR")${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python}
bsynth() { "$PYTHON" -m bettersynth "$@"; }
source "$SCRIPT_DIR/shards.sh"
usage() { echo "usage: $0 [--data-root DIR] CKPT GPU_LIST [extra options]" >&2; exit 2; }

DATA_ROOT=${BSYNTH_EVAL_DATA_ROOT:-}
if [ "${1:-}" = "--data-root" ]; then
    [ $# -ge 2 ] || usage
    DATA_ROOT=$2; shift 2
fi
[ $# -ge 2 ] || usage
CKPT=$1; GPU_LIST=$2; shift 2
EXTRA_ARGS=("$@")
check_gpu_list "$GPU_LIST"

located=$(bsynth eval locate "$CKPT" ${DATA_ROOT:+--data-root "$DATA_ROOT"} \
    --field checkpoint --field textvqa-questions --field textvqa-images --field textvqa-dir --field textvqa-answers)
{ read -r CKPT_DIR; read -r QUESTIONS; read -r IMAGES; read -r OUT_DIR; read -r MERGED; } <<< "$located"

mkdir -p "$OUT_DIR"
rm -f "$MERGED"
if ! run_shards textvqa "$OUT_DIR" "$GPU_LIST" -- "$PYTHON" -m bettersynth eval textvqa --checkpoint "$CKPT_DIR" \
        --questions "$QUESTIONS" --image-folder "$IMAGES" "${EXTRA_ARGS[@]}"; then
    echo "error: not merging $MERGED: at least one shard failed" >&2
    exit 1
fi
bsynth eval merge --out "$MERGED" --textvqa-questions "$QUESTIONS" "${SHARD_FILES[@]}"
echo "TextVQA answers: $MERGED"
