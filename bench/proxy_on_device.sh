#!/usr/bin/env bash
# Runs bench/proxy_experiment.py on the lent GPU machine, where one call may last at most 10 minutes
# and the experiment about 20: starts it in the background (its own session, so it outlives the call
# while the machine stays warm) unless it is running or has finished, waits up to WAIT seconds while it
# runs, prints the job's step lines, and copies job.log, driver.log, proxy.json and the run record to
# $OUT (each minute while waiting too, so a call cut short still brings them back). Call it again to
# keep waiting; a driver that is gone before finishing is started again (the job resumes step by
# step). Extra arguments go to proxy_experiment.py.
#
#     source bench/device_env.sh && bash bench/proxy_on_device.sh /tmp/proxy 540
set -euo pipefail
work=$1
wait_s=${2:-540}
shift $(( $# < 2 ? $# : 2 ))
mkdir -p "$work"
pid_file=$work/driver.pid
running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }
if ! running && [ ! -f "$work/proxy.json" ]; then
    setsid nohup python3 bench/proxy_experiment.py --work "$work" "$@" >> "$work/driver.log" 2>&1 < /dev/null &
    echo $! > "$pid_file"
    echo "started the proxy experiment (pid $!)"
fi
copy_outputs() {  # into $OUT, what the call brings back (also while waiting: a call cut short keeps them)
    [ -n "${OUT:-}" ] || return 0
    for file in "$work/job.log" "$work/driver.log" "$work/proxy.json" "$work/output/experiments/proxy/run.json"; do
        if [ -f "$file" ]; then cp "$file" "$OUT/"; fi
    done
}
end=$((SECONDS + wait_s))
while running && [ $SECONDS -lt $end ]; do
    sleep 5
    if [ $((SECONDS % 60)) -lt 5 ]; then copy_outputs; fi
done
grep '==> \[' "$work/job.log" 2>/dev/null | tail -n 30 || true
tail -n 8 "$work/driver.log" || true
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader || true
copy_outputs
if running; then echo "still running: call again"; else echo "the driver is not running"; fi
