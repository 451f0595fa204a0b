#!/usr/bin/env bash
set -euo pipefail
# Installs the toolkit and its pinned dependency set into the current Python environment.
#
#   bash install.sh            # runtime: torch, Data-Juicer, transformers, deepspeed, ... + bsynth
#   bash install.sh --dev      # + test tools (pytest, hadolint, fire)
#
# Use a virtual environment or conda env of your own first if you do not want the packages in the
# system Python:  python3.11 -m venv .venv && . .venv/bin/activate && bash install.sh
#
# Order matters: torch is installed first, so Data-Juicer never pulls a torch of its own, and every
# dependency of the Data-Juicer ops our recipes use is installed up front, so a recipe run never
# installs anything. flash-attn is tried only where a CUDA toolchain (nvcc) is present; without it
# the model uses PyTorch SDPA. A second run checks the pins and changes nothing.
#
# Environment: BSYNTH_TORCH_INDEX_URL  extra index for torch wheels of another CUDA build
#              BSYNTH_FLASH_ATTN=1|0    build flash-attn or not (default: when a GPU is visible)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

DEV=0
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        -h|--help) sed -n '3,17p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-python3}
fail() { echo "install.sh: ERROR: $*" >&2; exit 1; }

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "Python >= 3.11 is needed; found $("$PYTHON" --version 2>&1). Activate a newer environment."

check_args=()
extra=""
if [ "$DEV" = 1 ]; then check_args+=(--dev); extra="[dev]"; fi

if "$PYTHON" toolkit/bettersynth/install_check.py "${check_args[@]}" >/dev/null; then
    echo "install.sh: every pinned dependency is already installed; nothing to do."
else
    "$PYTHON" toolkit/bettersynth/install_check.py "${check_args[@]}" || true
    pip_install() { "$PYTHON" -m pip install --disable-pip-version-check "$@"; }
    torch_pins=$("$PYTHON" - <<'EOF'
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(" ".join(d for d in deps if d.split("==")[0] in ("torch", "torchvision")))
EOF
)
    echo "install.sh: [1/2] installing $torch_pins first"
    index_args=()
    if [ -n "${BSYNTH_TORCH_INDEX_URL:-}" ]; then index_args=(--extra-index-url "$BSYNTH_TORCH_INDEX_URL"); fi
    # shellcheck disable=SC2086  # torch_pins is a list of requirement words
    pip_install "${index_args[@]}" $torch_pins || fail "could not install $torch_pins"
    echo "install.sh: [2/2] installing the pinned dependency set and the bettersynth package (editable)"
    pip_install "${index_args[@]}" -e ".${extra}" || fail "pip could not install the pinned dependency set"
    # pins whose declared requirements conflict with the set (they run on it: tested), without their deps
    no_deps_pins=$("$PYTHON" - <<'EOF'
import tomllib
print(" ".join(tomllib.load(open("pyproject.toml", "rb")).get("tool", {}).get("bettersynth", {}).get("no-deps", [])))
EOF
)
    if [ -n "$no_deps_pins" ]; then
        # shellcheck disable=SC2086  # a list of requirement words
        pip_install --no-deps $no_deps_pins || fail "could not install $no_deps_pins"
    fi
    "$PYTHON" toolkit/bettersynth/install_check.py "${check_args[@]}" ||
        fail "pins still unmet after pip install (see the lines above)"
fi

# flash-attn: optional, built only for a GPU (one visible now, or BSYNTH_FLASH_ATTN=1 as in the
# Dockerfile, whose build sees no GPU) with a CUDA toolchain; its absence is never fatal.
gpu_visible=$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
if "$PYTHON" -c 'import flash_attn' 2>/dev/null; then
    echo "install.sh: flash-attn is installed."
elif [ "${BSYNTH_FLASH_ATTN:-$gpu_visible}" != 1 ]; then
    echo "install.sh: no GPU visible: flash-attn skipped (BSYNTH_FLASH_ATTN=1 builds it anyway); PyTorch SDPA is used."
elif ! command -v nvcc >/dev/null 2>&1; then
    echo "install.sh: no CUDA toolchain (nvcc): flash-attn skipped; PyTorch SDPA is used."
else
    echo "install.sh: building flash-attn (optional) with $(nvcc --version | tail -n 1)"
    if ! "$PYTHON" -m pip install --disable-pip-version-check --no-build-isolation flash-attn==2.8.3; then
        echo "install.sh: WARNING: flash-attn did not build; PyTorch SDPA is used instead." >&2
    fi
fi

"$PYTHON" -c 'import data_juicer, transformers, deepspeed, torch, bettersynth' 2>/dev/null ||
    fail "the installed packages do not import; run: $PYTHON -c 'import data_juicer, transformers, deepspeed, torch'"
command -v bsynth >/dev/null || fail "the bsynth command is not on PATH (is the environment's bin folder on PATH?)"
echo "install.sh: done. Try: bsynth --help"
