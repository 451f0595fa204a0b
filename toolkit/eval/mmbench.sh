#!/usr/bin/env bash
set -euo pipefail
# MMBench inference of a finetuned checkpoint, one shard per GPU, and the upload .xlsx (the
# official kit's arguments).
#
#   bash toolkit/eval/mmbench.sh [--data-root DIR] CKPT SPLIT GPU_LIST [extra bsynth eval mmbench options]
#   bash toolkit/eval/mmbench.sh MGM-2B-Finetune-default mmbench_dev_20230712 0,1
#
# CKPT is the finetune run name (checkpoint output/training_dirs/CKPT); SPLIT names the TSV
# (<eval data>/mmbench/SPLIT.tsv). Shard k of len(GPU_LIST) runs in its own background process with
# CUDA_VISIBLE_DEVICES exported to the k-th GPU and writes
# output/eval_results/CKPT/mmbench/shards/SPLIT/{CHUNKS}_{k}.jsonl atomically. Only when every shard
# succeeded are they merged (checked against the TSV, atomically) into
# output/eval_results/CKPT/mmbench/answers/SPLIT/CKPT.jsonl and converted to
# output/eval_results/CKPT/mmbench/answers_upload/SPLIT/CKPT.xlsx; otherwise the script exits
# non-zero and neither file exists. With no GPU the shards run on CPU.
# Eval data: --data-root, else $BSYNTH_EVAL_DATA_ROOT, else the real layout when its eval files
# exist, else the demo layout; the choice is printed. $PYTHON picks the interpreter.

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BSYNTH_ROOT="${BSYNTH_ROOT:-$(dirname "$(dirname "$SCRIPT_DIR")")}"  # this checkout, from any folder
export PYTHONPATH="$(dirname "$SCRIPT_DIR")${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python}
bsynth() { "$PYTHON" -m bettersynth "$@"; }
source "$SCRIPT_DIR/shards.sh"
usage() { echo "usage: $0 [--data-root DIR] CKPT SPLIT GPU_LIST [extra options]" >&2; exit 2; }

DATA_ROOT=${BSYNTH_EVAL_DATA_ROOT:-}
if [ "${1:-}" = "--data-root" ]; then
    [ $# -ge 2 ] || usage
    DATA_ROOT=$2; shift 2
fi
[ $# -ge 3 ] || usage
CKPT=$1; SPLIT=$2; GPU_LIST=$3; shift 3
EXTRA_ARGS=("$@")
check_gpu_list "$GPU_LIST"

located=$(bsynth eval locate "$CKPT" ${DATA_ROOT:+--data-root "$DATA_ROOT"} --split "$SPLIT" \
    --field checkpoint --field mmbench-tsv --field mmbench-shard-dir --field mmbench-answers --field mmbench-upload)
{ read -r CKPT_DIR; read -r TSV; read -r SHARD_DIR; read -r MERGED; read -r UPLOAD; } <<< "$located"

rm -f "$MERGED" "$UPLOAD"
if ! run_shards mmbench "$SHARD_DIR" "$GPU_LIST" -- "$PYTHON" -m bettersynth eval mmbench --checkpoint "$CKPT_DIR" \
        --tsv "$TSV" "${EXTRA_ARGS[@]}"; then
    echo "error: not merging $MERGED: at least one shard failed" >&2
    exit 1
fi
bsynth eval merge --out "$MERGED" --mmbench-tsv "$TSV" "${SHARD_FILES[@]}"
bsynth eval mmbench-upload --tsv "$TSV" --answers "$MERGED" --out "$UPLOAD"
echo "MMBench answers: $MERGED"
echo "MMBench upload file: $UPLOAD"
