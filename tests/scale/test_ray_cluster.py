"""Data-Juicer on a Ray cluster started with ``ray start`` on this machine's loopback: a head and one
worker node (one CPU each, token authentication, as Ray 2.60 sets up a cluster), joined by
``bsynth recipe run --executor ray --ray-address 127.0.0.1:PORT``.

- cpu_prefilter.yaml (filters only) runs wholly on the cluster, and its export is the default
  executor's, byte for byte (same samples in the same order, same stats).
- clip_rank_recaption.yaml (a selector after its first operator) runs its CLIP filter on the cluster
  and the rest on the default executor, in one run that commits once, and its export is the default
  executor's, byte for byte. Its CLIP model and custom operators reach the cluster's workers only
  through the run's Ray job (the nodes were started without the run's environment).

The default executor's runs are the session's ``recipe_runs`` (tests/conftest.py), shared with tests/recipes.
The cluster's processes are stopped by process group, never by ``ray stop`` (which stops every Ray on the machine).

    HF_HUB_OFFLINE=1 python -m pytest tests/scale/test_ray_cluster.py -q      (about 5 min alone on 2 shared cores)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from recipe_helpers import RECIPES_DIR, check_complete_run, run_cli

START_TIMEOUT_S = 120
STARTED = "Ray runtime started"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Cluster:
    address: str
    env: dict[str, str]   # what a client needs to join (the auth token)


def start_node(arguments: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """``ray start ... --block`` in a process group of its own; returns once the node is up."""
    node = subprocess.Popen(["ray", "start", *arguments, "--block", "--disable-usage-stats"], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while STARTED not in log.read_text(errors="replace"):
        if node.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start {arguments[0]} did not come up:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    return node


def stop_node(node: subprocess.Popen) -> None:
    """Stop a node's process group: SIGTERM, then SIGKILL if it is still there after 3 s."""
    for signum, wait_s in ((signal.SIGTERM, 3), (signal.SIGKILL, 30)):
        try:
            os.killpg(node.pid, signum)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def ray_cluster():
    # a short temporary folder: Ray's socket paths inside it must stay under the 107-byte limit
    root = Path(tempfile.mkdtemp(prefix="bsray"))
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    port = free_port()
    nodes = []
    try:
        nodes.append(start_node(["--head", "--port", str(port), "--num-cpus", "1", "--temp-dir", str(root / "h"),
                                 "--include-dashboard=false", "--ray-client-server-port", str(free_port()),
                                 "--dashboard-agent-listen-port", str(free_port())], root / "head.log", env))
        nodes.append(start_node([f"--address=127.0.0.1:{port}", "--num-cpus", "1",
                                 "--dashboard-agent-listen-port", str(free_port())], root / "worker.log", env))
        yield Cluster(f"127.0.0.1:{port}", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": env["RAY_AUTH_TOKEN"]})
    finally:
        for node in reversed(nodes):
            stop_node(node)
        shutil.rmtree(root, ignore_errors=True)


def run_on_cluster(name: str, cluster: Cluster, layout, tmp_path: Path):
    export = tmp_path / name / "processed_data.jsonl"
    return run_cli(RECIPES_DIR / f"{name}.yaml", layout, export, "--np", "1", "--executor", "ray",
                   "--ray-address", cluster.address, env=cluster.env)


def summary_of(result) -> dict:
    return json.loads((result.work_dir / "run.json").read_text())


def test_filters_run_wholly_on_the_cluster_with_the_default_executors_export(ray_cluster, recipe_runs,
                                                                               recipe_demo, tmp_path):
    default = recipe_runs.get("cpu_prefilter")
    result = run_on_cluster("cpu_prefilter", ray_cluster, recipe_demo, tmp_path)
    check_complete_run(result, recipe_demo)
    # Ray names the head by this machine's address, not 127.0.0.1: the port identifies it
    port = ray_cluster.address.rsplit(":", 1)[1]
    assert re.search(f"Connecting to existing Ray cluster at address: \\S+:{port}\\b",
                     (result.work_dir / "run.log").read_text())
    summary = summary_of(result)
    filters = ["image_aspect_ratio_filter", "image_shape_filter", "image_size_filter", "words_num_filter",
               "word_repetition_filter"]
    assert summary["placement"] == {"ray": filters}
    assert f"[recipe] on Ray: {', '.join(filters)}" in result.output
    assert result.export.read_bytes() == default.export.read_bytes()


def test_a_recipe_with_a_selector_splits_between_the_cluster_and_the_default_executor(ray_cluster, recipe_runs,
                                                                                      recipe_demo, tmp_path):
    default = recipe_runs.get("clip_rank_recaption")
    result = run_on_cluster("clip_rank_recaption", ray_cluster, recipe_demo, tmp_path)
    check_complete_run(result, recipe_demo)
    summary = summary_of(result)
    rest = ["stats_quantile_tagger", "fast_image_captioning_mapper", "fast_image_text_similarity_filter",
            "topk_specified_field_selector"]
    assert summary["placement"] == {"ray": ["fast_image_text_similarity_filter"], "default": rest}
    assert "[recipe] on the default executor after Ray: " + ", ".join(rest) in result.output
    # one row for the Ray part (every sample kept: the first CLIP pass only scores), then the default part's
    assert summary["ops"][0] == {"op": "on Ray: fast_image_text_similarity_filter", "left": 300,
                                 "seconds": summary["ops"][0]["seconds"]}
    assert [row["op"] for row in summary["ops"][1:]] == rest
    assert summary["ops"][-1]["left"] == summary["output_samples"]
    # one run, committed once: the attempt folder is gone and the work folder holds both parts
    assert not result.export.with_name("processed_data_attempt").exists()
    assert (result.work_dir / "recipe.ray.yaml").is_file() and (result.work_dir / "recipe.default.yaml").is_file()
    assert result.export.read_bytes() == default.export.read_bytes()
