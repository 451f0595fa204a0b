"""The parts of ``bsynth recipe run --executor ray`` that need no Ray: where each operator runs
(bettersynth.recipes.placement, against hand-written operator lists and Data-Juicer's real registry),
the variables the Ray job carries to the workers (bettersynth.recipes.ray_cluster), the
``--ray-address`` setting and the check that a head answers there. The runs themselves:
tests/recipes/test_run_ray.py (a local Ray) and tests/scale/test_ray_cluster.py (a two-node cluster).

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_ray_parts.py -q      (~20 s)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml
from recipe_helpers import OPS_DIR

from bettersynth.recipes.config import RecipeRun
from bettersynth.recipes.placement import OperatorInfo, PlacementError, place
from bettersynth.recipes.ray_cluster import check_reachable
from bettersynth.recipes.recipe import resolve_recipe

FILTER = OperatorInfo("Filter", ("default", "ray", "ray_partitioned"), "cpu")
CUDA_FILTER = OperatorInfo("Filter", ("default", "ray", "ray_partitioned"), "cuda")
SELECTOR = OperatorInfo("Selector", ("default",), "cpu")
DEDUPLICATOR = OperatorInfo("Deduplicator", ("default",), "cpu")
RAY_DEDUPLICATOR = OperatorInfo("Filter", ("ray", "ray_partitioned"), "cpu")


def test_the_leading_ray_operators_run_on_ray_and_everything_from_the_first_other_one_after_them():
    process = [{"words_num_filter": {"min_num": 4}}, {"fast_image_text_similarity_filter": {}},
               {"stats_quantile_tagger": {}}, {"words_num_filter": {"max_num": 24}}]
    operators = {"words_num_filter": FILTER, "fast_image_text_similarity_filter": CUDA_FILTER,
                 "stats_quantile_tagger": SELECTOR}
    on_gpu = place(process, operators, gpu_here=True)
    # the second words_num_filter could run on Ray, but it must see the selector's output
    assert on_gpu.on_ray == process[:2] and on_gpu.on_default == process[2:] and on_gpu.split
    assert on_gpu.lines == [
        "on Ray: words_num_filter, fast_image_text_similarity_filter (GPU actors)",
        "on the default executor after Ray: stats_quantile_tagger, words_num_filter (Data-Juicer 1.6.1's Ray "
        "executor does not run stats_quantile_tagger, a Selector, and what follows it stays after it)"]
    on_cpu = place(process, operators, gpu_here=False)
    assert on_cpu.lines[0] == ("on Ray: words_num_filter, fast_image_text_similarity_filter (CUDA operator, "
                               "on CPU: this node sees no GPU)")
    everything = place(process[:2], operators, gpu_here=True)
    assert everything.on_ray == process[:2] and everything.on_default == [] and not everything.split


def test_image_deduplicator_stays_on_the_default_executor_and_says_why():
    process = [{"image_deduplicator": {"method": "phash"}}, {"words_num_filter": {}}]
    placement = place(process, {"image_deduplicator": DEDUPLICATOR, "words_num_filter": FILTER}, gpu_here=False)
    assert placement.on_ray == [] and placement.on_default == process
    assert placement.lines[0].startswith("on the default executor: image_deduplicator, words_num_filter ")
    assert placement.lines[1].startswith("image_deduplicator stays on the default executor: ray_image_deduplicator "
                                         "keeps whichever copy of an image reaches its shared set first")


def test_an_operator_that_runs_only_on_ray_is_refused_after_the_cut():
    process = [{"topk_specified_field_selector": {}}, {"ray_image_deduplicator": {}}]
    with pytest.raises(PlacementError, match="ray_image_deduplicator runs only on Ray, but it comes after "
                                             "topk_specified_field_selector \\(Selector\\)"):
        place(process, {"topk_specified_field_selector": SELECTOR, "ray_image_deduplicator": RAY_DEDUPLICATOR},
              gpu_here=False)
    before = place(list(reversed(process)), {"topk_specified_field_selector": SELECTOR,
                                             "ray_image_deduplicator": RAY_DEDUPLICATOR}, gpu_here=False)
    assert before.on_ray == [{"ray_image_deduplicator": {}}]


def test_operator_kinds_and_modes_come_from_data_juicers_registry(tmp_path):
    names = ["words_num_filter", "fast_image_text_similarity_filter", "fast_image_captioning_mapper",
             "stats_quantile_tagger", "topk_specified_field_selector", "image_deduplicator", "ray_image_deduplicator"]
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump({"custom_operator_paths": [str(OPS_DIR)],
                                      "process": [{name: {}} for name in names]}))
    output = tmp_path / "operators.json"
    command = [sys.executable, "-m", "bettersynth.recipes.placement", str(config), str(output)]
    subprocess.run(command, check=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    payload = json.loads(output.read_text())
    assert payload["gpu_here"] is False
    found = {name: (info["kind"], info["modes"], info["accelerator"]) for name, info in payload["operators"].items()}
    ray_modes = ["default", "ray", "ray_partitioned"]
    assert found == {"words_num_filter": ("Filter", ray_modes, "cpu"),
                     "fast_image_text_similarity_filter": ("Filter", ray_modes, "cuda"),
                     "fast_image_captioning_mapper": ("Mapper", ray_modes, "cuda"),
                     "stats_quantile_tagger": ("Selector", ["default"], "cpu"),
                     "topk_specified_field_selector": ("Selector", ["default"], "cpu"),
                     "image_deduplicator": ("Deduplicator", ["default"], "cpu"),
                     "ray_image_deduplicator": ("Filter", ["ray", "ray_partitioned"], "cpu")}
    config.write_text(yaml.safe_dump({"process": [{"no_such_filter": {}}]}))
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1 and "operator 'no_such_filter' is not a Data-Juicer operator" in done.stderr


def small_run(tmp_path, **settings) -> RecipeRun:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"process": [{"words_num_filter": {}}], "custom_operator_paths": [str(OPS_DIR)]}))
    dataset = tmp_path / "pool.jsonl"
    dataset.write_text('{"id": "1", "text": "a caption", "images": []}\n')
    return RecipeRun.create(recipe, dataset=dataset, export=tmp_path / "out" / "pool.jsonl",
                            models_root=tmp_path, **settings)


def test_every_variable_the_run_sets_reaches_the_ray_workers(tmp_path):
    from bettersynth.recipes.ray_cluster import forwarded_environment
    from bettersynth.recipes.run import worker_environment

    run = small_run(tmp_path, executor="ray")
    config, _ = resolve_recipe(run, {})
    env = worker_environment(run, config)
    set_by_run = {key for key, value in env.items() if os.environ.get(key) != value} - {"PYTHONPATH"}
    forwarded = forwarded_environment(env)
    assert set_by_run and set_by_run <= set(forwarded)
    assert forwarded["DATA_JUICER_EXTERNAL_MODELS_HOME"] == str(tmp_path) and forwarded["RAY_JOB"] == "1"
    assert "PYTHONPATH" not in forwarded and "PATH" not in forwarded


def test_a_ray_address_needs_the_ray_executor_and_wins_over_RAY_ADDRESS(tmp_path):
    with pytest.raises(ValueError, match="needs the ray executor"):
        small_run(tmp_path, ray_address="10.0.0.1:6379")
    run = small_run(tmp_path, executor="ray", ray_address="10.0.0.1:6379")
    assert resolve_recipe(run, {"RAY_ADDRESS": "10.0.0.2:6379"})[0]["ray_address"] == "10.0.0.1:6379"
    unset = small_run(tmp_path, executor="ray")
    assert resolve_recipe(unset, {"RAY_ADDRESS": "10.0.0.2:6379"})[0]["ray_address"] == "10.0.0.2:6379"
    assert resolve_recipe(unset, {})[0]["ray_address"] == "local"


def test_a_ray_address_nothing_answers_stops_at_once_naming_it():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        check_reachable(address)                      # a listening head passes
        check_reachable("ray://" + address)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"no Ray head answers at {address}"):
        check_reachable(address)                      # the same port, closed
    assert time.monotonic() - start < 5
    with pytest.raises(ConnectionError, match="is not HOST:PORT"):
        check_reachable("headnode")
    check_reachable("local")
