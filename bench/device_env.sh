# Sourced at the start of every call on the lent GPU machine (bash, from the repository root, with
# .whl carried: bench/device_wheels.sh fills it): installs the carried wheels and ray into /tmp/site
# once per machine (a warm machine keeps /tmp), puts them, toolkit/ and solution/ on PYTHONPATH, and
# a `bsynth` command on PATH (a --target install writes no console script for the package itself).
#
#     source bench/device_env.sh && python3 bench/data_throughput.py ...
# Sourced, so it sets no shell options in the caller (a `set -e` here once ended a call's later
# commands when the first one failed); a failed install stops here, loudly.
if [ ! -f /tmp/site/.complete ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && tar -xJf .whl/ray.tar.xz -C /tmp/site && touch /tmp/site/.complete \
        || { echo "bench/device_env.sh: installing the carried wheels failed" >&2; return 1; }
fi
mkdir -p /tmp/bin
printf '#!/usr/bin/env bash\nexec python3 -m bettersynth "$@"\n' > /tmp/bin/bsynth
chmod +x /tmp/bin/bsynth
export PATH=/tmp/bin:$PATH PYTHONPATH=/tmp/site:$PWD/toolkit:$PWD/solution PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
