# Sourced at the start of every call on the lent GPU machine (bash, from the repository root, with
# .whl carried: bench/device_wheels.sh fills it): installs the carried wheels and ray into /tmp/site
# once per machine (a warm machine keeps /tmp), puts them, toolkit/ and solution/ on PYTHONPATH, and
# a `bsynth` command on PATH (a --target install writes no console script for the package itself).
# The install runs fail-fast in a subshell, so the caller's shell options stay as they were (a
# `set -e` left in the caller once ended a call's later commands when its first one failed).
#
#     source bench/device_env.sh && python3 bench/data_throughput.py ...
(
set -euo pipefail
if [ ! -f /tmp/site/.complete ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    tar -xJf .whl/ray.tar.xz -C /tmp/site
    touch /tmp/site/.complete
fi
mkdir -p /tmp/bin
printf '#!/usr/bin/env bash\nexec python3 -m bettersynth "$@"\n' > /tmp/bin/bsynth
chmod +x /tmp/bin/bsynth
)
# (not `( ... ) || ...`: bash ignores set -e inside a command whose status is tested)
device_env_status=$?
if [ "$device_env_status" -ne 0 ]; then
    echo "bench/device_env.sh: installing the carried wheels failed (exit $device_env_status)" >&2
    return 1
fi
export PATH=/tmp/bin:$PATH PYTHONPATH=/tmp/site:$PWD/toolkit:$PWD/solution PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
