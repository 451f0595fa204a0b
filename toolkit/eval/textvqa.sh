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
export PYTHONPATH="$(dirname "$SCRIPT_DIR")${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python}
bsynth() { "$PYTHON" -m bettersynth "$@"; }
usage() { echo "usage: $0 [--data-root DIR] CKPT GPU_LIST [extra options]" >&2; exit 2; }

DATA_ROOT=${BSYNTH_EVAL_DATA_ROOT:-}
if [ "${1:-}" = "--data-root" ]; then
    [ $# -ge 2 ] || usage
    DATA_ROOT=$2; shift 2
fi
[ $# -ge 2 ] || usage
CKPT=$1; GPU_LIST=$2; shift 2
EXTRA_ARGS=("$@")
IFS=',' read -r -a GPUS <<< "$GPU_LIST"
CHUNKS=${#GPUS[@]}
[ "$CHUNKS" -ge 1 ] || usage

located=$(bsynth eval locate "$CKPT" ${DATA_ROOT:+--data-root "$DATA_ROOT"} \
    --field checkpoint --field textvqa-questions --field textvqa-images --field textvqa-dir --field textvqa-answers)
{ read -r CKPT_DIR; read -r QUESTIONS; read -r IMAGES; read -r OUT_DIR; read -r MERGED; } <<< "$located"

NUM_GPUS=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')
if [ "$NUM_GPUS" -gt 0 ]; then
    DEVICE=cuda
else
    DEVICE=cpu
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / CHUNKS > 0 ? $(nproc) / CHUNKS : 1 ))}
    echo "no GPU visible: running $CHUNKS shard(s) on CPU ($OMP_NUM_THREADS threads each)"
fi

mkdir -p "$OUT_DIR"
rm -f "$MERGED"
pids=()
shards=()
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
for IDX in "${!GPUS[@]}"; do
    shard="$OUT_DIR/${CHUNKS}_${IDX}.jsonl"
    rm -f "$shard"
    shards+=("$shard")
    (
        export CUDA_VISIBLE_DEVICES="${GPUS[$IDX]}"
        exec "$PYTHON" -m bettersynth eval textvqa --checkpoint "$CKPT_DIR" \
            --questions "$QUESTIONS" --image-folder "$IMAGES" --answers-file "$shard" \
            --num-chunks "$CHUNKS" --chunk-idx "$IDX" --device "$DEVICE" "${EXTRA_ARGS[@]}"
    ) &
    pids+=("$!")
    echo "textvqa shard $IDX/$CHUNKS: pid ${pids[$IDX]}, CUDA_VISIBLE_DEVICES=${GPUS[$IDX]}"
done

failed=0
for IDX in "${!pids[@]}"; do
    if wait "${pids[$IDX]}"; then
        echo "textvqa shard $IDX/$CHUNKS: done"
    else
        status=$?
        echo "error: textvqa shard $IDX/$CHUNKS (GPU ${GPUS[$IDX]}) failed with exit status $status" >&2
        failed=1
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "error: not merging $MERGED: at least one shard failed" >&2
    exit 1
fi
bsynth eval merge --out "$MERGED" --textvqa-questions "$QUESTIONS" "${shards[@]}"
echo "TextVQA answers: $MERGED"
