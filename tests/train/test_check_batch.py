"""``bsynth check-batch``: exit 1 on a mismatch (the official check exits 0), suggestions, GPU count.

    HF_HUB_OFFLINE=1 python -m pytest tests/data/test_check_batch.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bettersynth.cli import main as bsynth
from bettersynth.train.batch import BatchCheck, GpuCount, count_gpus, visible_devices_from_env


def _check(per_gpu: int, accumulation: int, target: int, gpus: int) -> BatchCheck:
    return BatchCheck(per_gpu, accumulation, target, GpuCount(gpus, "test"))


def test_match_and_mismatch_exit_codes(capsys):
    assert bsynth(["check-batch", "8", "4", "256", "--num-gpus", "8"]) == 0
    assert "OK" in capsys.readouterr().out
    assert bsynth(["check-batch", "8", "4", "256", "--num-gpus", "4"]) == 1
    err = capsys.readouterr().err
    assert "MISMATCH" in err and "= 128 != target 256" in err
    assert "keep 8 per GPU: use accumulation 8" in err and "keep accumulation 4: use 16 per GPU" in err
    assert "1 x 64, 2 x 32, 4 x 16, 8 x 8, 16 x 4, 32 x 2, 64 x 1" in err


def test_official_defaults_pass():
    assert _check(8, 4, 256, 8).ok and _check(8, 2, 128, 8).ok  # 8-GPU script
    assert _check(4, 64, 256, 1).ok and _check(4, 32, 128, 1).ok  # 1-GPU 10k script


def test_suggestions_when_the_target_does_not_divide():
    check = _check(4, 4, 256, 3)
    assert check.valid_pairs() == []
    assert "256 is not a multiple of 3" in check.message() and "[1, 2, 4, 8, 16, 32, 64, 128, 256]" in check.message()
    assert _check(5, 3, 128, 2).valid_pairs() == [(1, 64), (2, 32), (4, 16), (8, 8), (16, 4), (32, 2), (64, 1)]


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as exc:
        bsynth(["check-batch", "0", "4", "256"])
    assert exc.value.code == 2
    with pytest.raises(ValueError):
        _check(1, 1, 0, 1)


@pytest.mark.parametrize("value, expected", [
    ("", 0), ("-1", 0), ("-1,0", 0), ("none", 0),
    ("0", None), ("0,1", None), ("1,-1,0", None), ("GPU-8f1c2a3b-aaaa", None), ("MIG-GPU-1/2/0", None),
])
def test_cuda_visible_devices_parsing(value, expected):
    assert visible_devices_from_env(value) == expected


def test_gpu_count_order():
    assert count_gpus(4, {"WORLD_SIZE": "16"}) == GpuCount(4, "--num-gpus")
    assert count_gpus(None, {"WORLD_SIZE": "16", "CUDA_VISIBLE_DEVICES": ""}).count == 16
    assert count_gpus(None, {"CUDA_VISIBLE_DEVICES": "-1"}).count == 1
    with pytest.raises(ValueError):
        count_gpus(None, {"WORLD_SIZE": "two"})


def test_gpu_count_from_torch_respects_cuda_visible_devices():
    import torch

    with_all = count_gpus(None, {})
    assert with_all.count == max(1, torch.cuda.device_count())
    if torch.cuda.device_count() >= 2:  # on a multi-GPU machine, hiding all but one counts one
        code = "from bettersynth.train.batch import count_gpus; print(count_gpus().count)"
        env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"} | {"CUDA_VISIBLE_DEVICES": "0"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "1"


def test_hidden_devices_are_read_without_importing_torch():
    code = ("import sys; from bettersynth.train.batch import count_gpus; "
            "n = count_gpus(environ={'CUDA_VISIBLE_DEVICES': ''}).count; print(n, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"]
