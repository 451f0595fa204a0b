"""The machines decision (bettersynth.train.nodes) and what follows from it: world sizes, the
launcher's command line for each form, hostfile and value errors that name what is wrong, and the
main job's batches planned and checked over every node's processes (``bsynth layout``,
``bsynth check-batch``).

    HF_HUB_OFFLINE=1 python -m pytest tests/train/test_nodes.py -q      (seconds)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from bettersynth.train.nodes import NodeSettings, NodeSettingsError, launcher_argv, node_settings, read_hostfile

DEEPSPEED = [sys.executable, "-m", "deepspeed.launcher.runner"]


def test_one_node_launches_its_gpus_with_torchrun_or_one_process_itself(tmp_path):
    gpus = node_settings({"MASTER_PORT": "29501"}, gpus_per_node=8, processes_per_node=8)
    assert (gpus.form, gpus.nnodes, gpus.world_size, gpus.master_addr) == ("one", 1, 8, "127.0.0.1")
    assert launcher_argv(gpus, tmp_path) == [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
                                             "--nproc_per_node", "8", "--master_addr", "127.0.0.1",
                                             "--master_port", "29501", "--module", "bettersynth.train"]
    # one GPU or none: no launcher process at all (the trainer makes its own one-process group)
    one_gpu = node_settings({"MASTER_PORT": "29501"}, gpus_per_node=1, processes_per_node=1)
    assert launcher_argv(one_gpu, tmp_path) == [sys.executable, "-m", "bettersynth.train"]
    cpu = node_settings({}, gpus_per_node=0, processes_per_node=1)
    assert (cpu.world_size, cpu.master_port) == (1, 29500)
    assert launcher_argv(cpu, tmp_path) == [sys.executable, "-m", "bettersynth.train"]


def test_torchrun_takes_the_one_node_command_line():
    """The torchrun of this Python parses the one-node form's options (no process is started)."""
    from torch.distributed.run import parse_args

    gpus = node_settings({"MASTER_PORT": "29501"}, gpus_per_node=2, processes_per_node=2)
    argv = launcher_argv(gpus, None)
    parsed = parse_args([*argv[3:], "--stage", "pretrain"])
    assert (parsed.nnodes, parsed.nproc_per_node, parsed.master_port, parsed.module) == ("1", "2", 29501, True)
    assert (parsed.training_script, parsed.training_script_args) == ("bettersynth.train", ["--stage", "pretrain"])


def test_a_hostfile_counts_its_slots_and_launches_over_ssh(tmp_path):
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("# two 8-GPU nodes\nworker-0 slots=8\n\nworker-1 slots=8  # the second\n")
    assert read_hostfile(hostfile) == {"worker-0": 8, "worker-1": 8}
    nodes = node_settings({"HOSTFILE": str(hostfile), "MASTER_PORT": "29502"}, 8, 8)
    assert (nodes.form, nodes.nnodes, nodes.node_rank, nodes.world_size) == ("hostfile", 2, 0, 16)
    assert launcher_argv(nodes, tmp_path) == [*DEEPSPEED, "--hostfile", str(hostfile), "--master_port", "29502",
                                              "--module", "bettersynth.train"]
    with_addr = node_settings({"HOSTFILE": str(hostfile), "MASTER_ADDR": "10.0.0.1"}, 8, 8)
    assert launcher_argv(with_addr, tmp_path)[-4:] == ["--master_addr", "10.0.0.1", "--module", "bettersynth.train"]


def test_one_launch_per_node_writes_the_nodes_hostfile_and_skips_ssh(tmp_path):
    nodes = node_settings({"NNODES": "3", "NODE_RANK": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29503"}, 8, 8)
    assert (nodes.form, nodes.world_size, nodes.evaluates) == ("per-node", 24, False)
    hostfile = tmp_path / "bsynth-hostfile-3x8"
    assert launcher_argv(nodes, tmp_path) == [*DEEPSPEED, "--hostfile", str(hostfile), "--no_ssh", "--node_rank",
                                              "2", "--master_addr", "10.0.0.1", "--master_port", "29503",
                                              "--module", "bettersynth.train"]
    assert hostfile.read_text() == "node-0 slots=8\nnode-1 slots=8\nnode-2 slots=8\n"
    cpu = node_settings({"NNODES": "2", "MASTER_ADDR": "127.0.0.1"}, 0, 1)
    assert (cpu.world_size, cpu.evaluates) == (2, True)
    launcher_argv(cpu, tmp_path)
    assert (tmp_path / "bsynth-hostfile-2x1").read_text() == "node-0 slots=1\nnode-1 slots=1\n"
    assert NodeSettings.from_json(nodes.to_json()) == nodes


@pytest.mark.parametrize(("editable", "message"), [
    ({"NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "a"}, "NODE_RANK must be in 0..NNODES-1 = 0..1, got 2"),
    ({"NNODES": "2", "NODE_RANK": "1"}, "NNODES > 1 needs MASTER_ADDR"),
    ({"NNODES": "two"}, "NNODES must be an integer >= 1, got 'two'"),
    ({"NODE_RANK": "1"}, "NODE_RANK=1 with NNODES=1"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT must be a TCP port (1..65535), got 70000"),
    ({"HOSTFILE": "hosts", "NNODES": "2"}, "give HOSTFILE (one launch over ssh) or NNODES/NODE_RANK"),
])
def test_values_that_cannot_describe_the_machines_are_named(editable, message):
    with pytest.raises(NodeSettingsError) as error:
        node_settings(editable, 8, 8)
    assert message in str(error.value)


def test_a_bad_hostfile_line_is_named_with_its_number(tmp_path):
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("worker-0 slots=8\nworker-1 8\n")
    with pytest.raises(NodeSettingsError, match=rf"HOSTFILE {hostfile}, line 2: 'worker-1 8' is not 'HOST slots=N'"):
        node_settings({"HOSTFILE": str(hostfile)}, 8, 8)
    hostfile.write_text("worker-0 slots=8\nworker-0 slots=8\n")
    with pytest.raises(NodeSettingsError, match="line 2: host 'worker-0' is listed twice"):
        read_hostfile(hostfile)
    with pytest.raises(NodeSettingsError, match="cannot be read"):
        read_hostfile(tmp_path / "absent")
    hostfile.write_bytes(b"w\xf6rker-0 slots=8\n")  # Latin-1: was a UnicodeDecodeError traceback
    with pytest.raises(NodeSettingsError, match=rf"HOSTFILE {hostfile}: cannot be read: 'utf-8' codec can't decode"):
        read_hostfile(hostfile)


def test_the_jobs_batches_count_every_nodes_processes(tmp_path):
    """4 nodes x 8 GPUs (WORLD_SIZE=8 stands for this node's 8 GPUs): 256 / 32 = 8 samples per GPU and
    step, so "auto" takes micro-batch 8 and accumulation 1; the demo's 8 per process becomes 8 x 32."""
    editable = {"PRETRAIN_BATCH_SIZE_PER_GPU": "auto", "PRETRAIN_GRADIENT_ACCUMULATION_STEPS": "auto",
                "PRETRAIN_GRADIENT_CHECKPOINTING": "False", "FINETUNE_BATCH_SIZE_PER_GPU": "auto",
                "FINETUNE_GRADIENT_ACCUMULATION_STEPS": "auto", "FINETUNE_GRADIENT_CHECKPOINTING": "True",
                "TORCH_COMPILE": "True", "DEEPSPEED_CONFIG": "", "NNODES": "4", "NODE_RANK": "3",
                "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29504", "HOSTFILE": ""}
    environ = dict(os.environ, BSYNTH_ASSETS_ROOT=str(tmp_path / "real"), BSYNTH_DEMO_ROOT=str(tmp_path / "demo"),
                   CUDA_VISIBLE_DEVICES="", WORLD_SIZE="8")
    found = {}
    for which in ("real", "demo"):
        done = subprocess.run([sys.executable, "-m", "bettersynth", "layout", "--which", which, "--format", "shell",
                               *[f"--editable={key}={value}" for key, value in editable.items()]],
                              capture_output=True, text=True, env=environ)
        assert done.returncode == 0, done.stderr
        found[which] = dict(line.split("=", 1) for line in shlex.split(done.stdout) if "=" in line)
    real, demo = found["real"], found["demo"]
    assert {key: real[key] for key in ("TRAINING_PROCESSES", "NNODES", "NODE_RANK", "LAUNCH_FORM",
                                       "PRETRAIN_BATCH_SIZE_PER_GPU", "PRETRAIN_GRADIENT_ACCUMULATION_STEPS",
                                       "FINETUNE_BATCH_SIZE_PER_GPU", "FINETUNE_GRADIENT_ACCUMULATION_STEPS")} == {
        "TRAINING_PROCESSES": "32", "NNODES": "4", "NODE_RANK": "3", "LAUNCH_FORM": "per-node",
        "PRETRAIN_BATCH_SIZE_PER_GPU": "8", "PRETRAIN_GRADIENT_ACCUMULATION_STEPS": "1",
        "FINETUNE_BATCH_SIZE_PER_GPU": "4", "FINETUNE_GRADIENT_ACCUMULATION_STEPS": "1"}
    assert NodeSettings.from_json(real["NODES"]).world_size == 32
    assert (demo["PRETRAIN_GLOBAL_BATCH"], demo["FINETUNE_GLOBAL_BATCH"]) == ("256", "128")
    check = [sys.executable, "-m", "bettersynth", "check-batch", "--num-gpus", real["TRAINING_PROCESSES"]]
    assert subprocess.run([*check, "8", "1", "256"], capture_output=True, env=environ).returncode == 0
    assert subprocess.run([*check, "8", "4", "256"], capture_output=True, env=environ).returncode == 1


def test_launch_refuses_settings_that_layout_did_not_print():
    done = subprocess.run([sys.executable, "-m", "bettersynth", "launch", "--nodes", '{"form": "two"}', "--",
                           "--output_dir", "x"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "bsynth launch: not the node settings that `bsynth layout` prints as NODES" in done.stderr
