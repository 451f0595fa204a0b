#!/usr/bin/env bash
set -euo pipefail
# One eval shard per listed GPU, each pinned to its GPU, every exit status checked. Sourced by
# textvqa.sh and mmbench.sh (not run on its own):
#
#   source "$SCRIPT_DIR/shards.sh"
#   run_shards textvqa "$OUT_DIR" "$GPU_LIST" -- "$PYTHON" -m bettersynth eval textvqa --checkpoint ...
#
# Shard k of len(GPU_LIST) runs in its own background process with CUDA_VISIBLE_DEVICES exported
# to the k-th GPU; the command gets `--answers-file DIR/{CHUNKS}_{k}.jsonl --num-chunks CHUNKS
# --chunk-idx k --device cuda|cpu` appended. With no GPU the shards run on CPU, sharing its cores.
# On return SHARD_FILES holds the shard files in order; the status is non-zero if any shard failed.
# check_gpu_list "$GPU_LIST" (run before anything is removed) exits 2 unless the list is GPU indices
# separated by commas ("0", "0,1,2,3"): "", "0,,1", "1," or "a" would give a shard an empty or
# unknown CUDA_VISIBLE_DEVICES.

check_gpu_list() {
    if ! [[ "$1" =~ ^[0-9]+(,[0-9]+)*$ ]]; then
        echo "error: GPU_LIST '$1' must be GPU indices separated by commas, e.g. 0 or 0,1,2,3" >&2
        exit 2
    fi
}

run_shards() {
    local label=$1 shard_dir=$2 gpu_list=$3
    shift 3
    [ "${1:-}" = "--" ] && shift
    local -a gpus pids=()
    IFS=',' read -r -a gpus <<< "$gpu_list"
    local chunks=${#gpus[@]} device=cuda
    if [ "$("${PYTHON:-python}" -c 'import torch; print(torch.cuda.device_count())')" -eq 0 ]; then
        device=cpu
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / chunks > 0 ? $(nproc) / chunks : 1 ))}
        echo "no GPU visible: running $chunks shard(s) on CPU ($OMP_NUM_THREADS threads each)"
    fi
    mkdir -p "$shard_dir"
    SHARD_FILES=()
    trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
    local idx shard
    for idx in "${!gpus[@]}"; do
        shard="$shard_dir/${chunks}_${idx}.jsonl"
        rm -f "$shard"
        SHARD_FILES+=("$shard")
        (
            export CUDA_VISIBLE_DEVICES="${gpus[$idx]}"
            exec "$@" --answers-file "$shard" --num-chunks "$chunks" --chunk-idx "$idx" --device "$device"
        ) &
        pids+=("$!")
        echo "$label shard $idx/$chunks: pid ${pids[$idx]}, CUDA_VISIBLE_DEVICES=${gpus[$idx]}"
    done
    local failed=0 status
    for idx in "${!pids[@]}"; do
        if wait "${pids[$idx]}"; then
            echo "$label shard $idx/$chunks: done"
        else
            status=$?
            echo "error: $label shard $idx/$chunks (GPU ${gpus[$idx]}) failed with exit status $status" >&2
            failed=1
        fi
    done
    trap - INT TERM
    return "$failed"
}
