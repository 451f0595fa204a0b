#!/usr/bin/env bash
set -euo pipefail
# Two commands at once, each in its own session, both waited for; sourced by the main job to answer
# TextVQA and MMBench side by side on GPUs with room for two evals (not run on its own):
#
#   source toolkit/eval/side_by_side.sh
#   first=(bsynth step --name textvqa ...); second=(bsynth step --name mmbench ...)
#   side_by_side first second      # 0 when both succeeded, else 1 (each failure named)
#
# Why: an eval's process start, model load and its token-by-token decoding leave the GPU idle part of
# the time; a second eval fills those gaps. Each command runs under `setsid`, so an INT or TERM to
# the caller stops both and every process they started (their whole sessions), not just the two
# commands: background jobs of a script would otherwise ignore Ctrl-C and run on.

side_by_side() {
    local -n first_command=$1 second_command=$2
    local -a names=("$1" "$2") pids=()
    setsid "${first_command[@]}" &
    pids+=("$!")
    setsid "${second_command[@]}" &
    pids+=("$!")
    trap 'kill -TERM -- "-${pids[0]}" "-${pids[1]}" 2>/dev/null || true' INT TERM
    local failed=0 status idx
    for idx in 0 1; do
        wait "${pids[$idx]}" && status=0 || status=$?
        if [ "$status" -ne 0 ]; then
            echo "error: ${names[$idx]} failed with exit status $status" >&2
            failed=1
        fi
    done
    trap - INT TERM
    return "$failed"
}
