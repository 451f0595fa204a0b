#!/usr/bin/env bash
# Fills .whl/ (git-ignored) with the wheels the lent GPU machine lacks, for the data bench, the demo
# main job and the proxy experiment: Data-Juicer 1.6.1 and its import-time needs, ray 2.60.0 (as
# .whl/ray.tar.xz: its unpacked wheel without the Java jars, since the wheel alone is over one call's
# 64 MiB), pydantic, deepspeed, diffusers, nltk, simple-aesthetics-predictor, open-clip-torch and openpyxl
# (the MMBench upload sheet: without it the demo main job stopped at its MMBench step there).
# The machine's image already has torch 2.11, transformers 5.17, timm, pyarrow, tensorboard (see
# /work/.library/device/KINDS.md); versions here are the ones pyproject.toml pins or install.sh resolved.
#
#     bash bench/device_wheels.sh          # here, once; then every device call carries .whl
#
# On the device (first thing in each call):
#     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#         && tar -xJf .whl/ray.tar.xz -C /tmp/site && export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."
out=.whl
mkdir -p "$out"
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
download() {
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d "$out" "$@"
}
download py-data-juicer==1.6.1 datasets==5.2.0 dill==0.3.8 multiprocess==0.70.16 loguru==0.7.3 \
    jsonargparse==4.53.0 typeshed_client==2.15.0 docstring_parser==0.18.0 lz4==4.4.5 zstandard==0.25.0 \
    tomli==2.5.0 beautifulsoup4==4.15.0 soupsieve==4.1.4 jsonlines==4.0.0 jsonschema==4.26.0 \
    jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==0.30.0 \
    pydantic==2.13.4 pydantic_core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2 \
    diffusers==0.42.1 nltk==3.10.3 simple-aesthetics-predictor==0.1.2 hjson==3.1.0 \
    open-clip-torch==3.3.0 ftfy==6.3.1 wcwidth==0.7.0 openpyxl==3.1.5 et-xmlfile==2.0.0
# sdist-only releases: built here (pure Python)
for spec in emoji==2.2.0 wget==3.2 deepspeed==0.19.8; do
    name=${spec%%==*}
    ls "$out"/"${name}"-*.whl >/dev/null 2>&1 || python3 -m pip wheel -q --no-deps --no-build-isolation -w "$out" "$spec"
done
if [ ! -f "$out/ray.tar.xz" ]; then
    tmp=$(mktemp -d)
    download ray==2.60.0 -d "$tmp"
    (cd "$tmp" && python3 -m zipfile -e ray-*.whl unpacked && find unpacked -name '*.jar' -delete \
        && tar -C unpacked -cJf ray.tar.xz .)
    mv "$tmp/ray.tar.xz" "$out/ray.tar.xz"
    rm -rf "$tmp"
fi
du -sh "$out"
