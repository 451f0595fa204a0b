# The toolkit in a CUDA image: Python 3.11, the system libraries Data-Juicer's ops need, the pinned
# dependency set (install.sh, with flash-attn), and the repository at /workspace/bettersynth.
#
#   docker build -t bettersynth .
#   docker run --gpus all --shm-size 32g -it \
#       -v "$PWD/input:/workspace/bettersynth/input" \
#       -v "$PWD/toolkit/training/model_zoo:/workspace/bettersynth/toolkit/training/model_zoo" \
#       -v "$PWD/toolkit/training/data:/workspace/bettersynth/toolkit/training/data" \
#       -v "$PWD/output:/workspace/bettersynth/output" \
#       bettersynth bash train_mgm_2b_stage_1.sh
#
# Downloads (download.sh) and results live in the mounted folders, outside the image.
FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu22.04

# Torch wheels built for the image's CUDA major version, so flash-attn compiles against them.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BSYNTH_TORCH_INDEX_URL=${TORCH_INDEX_URL} \
    BSYNTH_FLASH_ATTN=1 \
    MAX_JOBS=8

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 from the deadsnakes archive; libgl/glib/ffmpeg for image and video ops; a JDK for
# Data-Juicer's quality classifier; axel/wget/curl for download.sh. Versions follow the base image's
# archive snapshot, so they are not pinned one by one.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa && apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.11 python3.11-dev python3.11-venv \
        build-essential git ninja-build libgl1 libglib2.0-0 ffmpeg default-jdk-headless \
        axel wget curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A virtual environment that is first on PATH: `python`, `pip` and `bsynth` are the toolkit's.
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /workspace/bettersynth
COPY . .
RUN bash install.sh

CMD ["bash"]
