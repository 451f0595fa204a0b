"""Training across nodes with the real launchers on this machine's loopback: two "nodes" on
127.0.0.1, each a ``bsynth launch`` (the main job's launch: deepspeed's launcher with ``--no_ssh
--node_rank R``) of one CPU process, joined over gloo.

- Two nodes give the finetune weights of one process with the same global batch (2 nodes x 2 per
  device x 1 accumulation == 1 x 2 x 2), with global-token loss normalisation (drop path off: each
  process has its own RNG stream).
- A node killed mid-run (its launcher and trainer, after the first checkpoint) fails the job on the
  other node with a message naming the lost process and the checkpoint a rerun resumes from; the
  rerun on both nodes resumes from it and ends with the uninterrupted run's weights.
- Nodes that do not share the output folder, or were given other arguments, stop before training,
  both naming what differs.

    HF_HUB_OFFLINE=1 python -m pytest tests/scale/test_multinode.py -q      (67 s on 2 cores; up to 3 min on busy ones)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bettersynth.train.nodes import node_settings
from train_helpers import stage_argv, write_subset

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
EXTRA = ["--aux_drop_path_in_training", "False", "--learning_rate", "1e-3", "--save_steps", "1"]
TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(rank: int, port: int, argv: list[str], log: Path) -> subprocess.Popen:
    """One node's launch, as the main job makes it (its own session, so the whole node can be killed)."""
    nodes = node_settings({"NNODES": "2", "NODE_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": str(port)}, gpus_per_node=0, processes_per_node=1)
    with log.open("w") as handle:
        return subprocess.Popen([sys.executable, "-m", "bettersynth", "launch", "--nodes", nodes.to_json(), "--",
                                 *argv], stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**ENV, "TMPDIR": str(log.parent)})  # the per-node hostfile goes there


def stop_left_over(nodes: list[subprocess.Popen]) -> None:
    """Kills the nodes still running (a test that failed half-way leaves no process behind)."""
    for node in nodes:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


def run_nodes(argvs: list[list[str]], logs: list[Path]) -> list[int]:
    port = free_port()
    nodes = [start_node(rank, port, argv, log) for rank, (argv, log) in enumerate(zip(argvs, logs))]
    try:
        return [node.wait(timeout=TIMEOUT_S) for node in nodes]
    finally:
        stop_left_over(nodes)


def finetune_argv(layout, data: str, output: Path, *extra: str) -> list[str]:
    return stage_argv(layout, data, output, "finetune", *EXTRA, *extra, per_device=2, accumulation=1)


@pytest.fixture(scope="module")
def data(finetune_records, tmp_path_factory) -> str:
    return write_subset(finetune_records[:32], tmp_path_factory.mktemp("multinode") / "finetune.json")


@pytest.fixture(scope="module")
def two_nodes(demo_layout_for_tests, data, tmp_path_factory) -> Path:
    """An uninterrupted run on two nodes: its output folder."""
    root = tmp_path_factory.mktemp("two_nodes")
    argv = finetune_argv(demo_layout_for_tests, data, root / "out")
    codes = run_nodes([argv, argv], [root / "node0.log", root / "node1.log"])
    assert codes == [0, 0], (root / "node0.log").read_text()[-4000:] + (root / "node1.log").read_text()[-4000:]
    return root / "out"


def assert_same_weights(first_dir: Path, second_dir: Path) -> None:
    first, second = load_file(first_dir / "model.safetensors"), load_file(second_dir / "model.safetensors")
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=1e-5, atol=1e-6, msg=key)


def test_two_nodes_equal_one_process(demo_layout_for_tests, data, two_nodes, tmp_path):
    one = stage_argv(demo_layout_for_tests, data, tmp_path / "one", "finetune", *EXTRA, per_device=2, accumulation=2)
    done = subprocess.run([sys.executable, "-m", "bettersynth.train", *one], capture_output=True, text=True, env=ENV,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    log = (two_nodes / "train.log").read_text()
    assert "global batch 4 (2 processes x 1 accumulation x 2 per device)" in log
    assert "engine: plain torch AdamW, DDP" in log
    assert_same_weights(tmp_path / "one", two_nodes)
    start = load_file(demo_layout_for_tests.llm_dir / "model.safetensors")
    trained = load_file(two_nodes / "model.safetensors")
    assert any(not torch.equal(start[key.removeprefix("llm.")], value) for key, value in trained.items()
               if key.removeprefix("llm.") in start)  # the LLM did train


def test_a_killed_node_fails_the_job_and_a_rerun_resumes(demo_layout_for_tests, data, two_nodes, tmp_path):
    out = tmp_path / "out"
    argv = finetune_argv(demo_layout_for_tests, data, out)
    logs = [tmp_path / "node0.log", tmp_path / "node1.log"]
    port = free_port()
    node0, node1 = nodes = [start_node(rank, port, argv, log) for rank, log in enumerate(logs)]
    marker = out / "checkpoint-1" / "checkpoint_complete.json"
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not marker.is_file():
            assert node0.poll() is None and node1.poll() is None, logs[0].read_text()[-4000:]
            assert time.monotonic() < deadline, "no checkpoint-1 in time"
            time.sleep(0.05)
        os.killpg(node1.pid, signal.SIGKILL)  # node 1 dies, 7 steps before the end: its launcher and its trainer
        assert node1.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
        assert node0.wait(timeout=TIMEOUT_S) != 0
    finally:
        stop_left_over(nodes)
    said = logs[0].read_text()
    assert "training process rank 0 of 2 on" in said and "by peer" in said  # gloo: connection closed or reset
    assert f"start it again on every node and it resumes from {out}/checkpoint-" in said
    assert not (out / "training_complete.json").exists(), "the job finished before node 1 was killed"

    codes = run_nodes([argv, argv], logs)
    assert codes == [0, 0], logs[0].read_text()[-4000:] + logs[1].read_text()[-4000:]
    assert "resuming automatically from" in (out / "train.log").read_text()
    assert_same_weights(two_nodes, out)


def test_nodes_that_disagree_stop_before_training(demo_layout_for_tests, data, tmp_path):
    """Node 1's OUTPUT_DIR path names another folder than node 0's, as on a node without the shared
    mount, and it was given another seed: both nodes stop, naming both problems."""
    logs = [tmp_path / "node0.log", tmp_path / "node1.log"]
    argvs = [finetune_argv(demo_layout_for_tests, data, tmp_path / f"seen_by_node{rank}", "--shared_output_wait", "1",
                           "--seed", str(seed)) for rank, seed in ((0, 1024), (1, 7))]
    assert run_nodes(argvs, logs) == [1, 1]
    for log in logs:
        said = log.read_text()
        assert "started with different arguments: rank 1 on" in said and "has --seed 7 (rank 0: 1024)." in said
        assert f"the output folder {tmp_path / 'seen_by_node'}" in said and "is not shared by every node" in said
        assert "rank 1 on" in said and "did not see it within 1 s" in said
    assert not list((tmp_path / "seen_by_node0").glob(".bsynth-shared-check-*"))
    assert not list((tmp_path / "seen_by_node0").glob("checkpoint-*"))
