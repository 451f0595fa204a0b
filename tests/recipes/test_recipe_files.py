"""Every shipped recipe parses, documents itself, names registered operators and demo-available
models; the recipe resolution (variables, operator paths, forced settings) does what it says.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_recipe_files.py -q      (~10 s)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bettersynth.recipes.config import RecipeRun
from bettersynth.recipes.recipe import RecipeError, expand_variables, load_recipe, resolve_recipe

from recipe_helpers import RECIPES_DIR

RECIPES = sorted(RECIPES_DIR.glob("*.yaml"))
REQUIRED = {"baseline_recaption", "clip_rank_recaption", "dj_refine", "clip_top_repeat", "cpu_prefilter"}
HEADER_FIELDS = ("Purpose:", "Source:", "Reported effect:", "Models:", "Expected run time:", "Ray executor:")


def test_the_required_recipes_are_shipped():
    assert REQUIRED <= {path.stem for path in RECIPES}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_opens_with_its_comment_block(path: Path):
    lines = path.read_text().splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert header and header[0].startswith(f"# {path.name} -- ")
    for field in HEADER_FIELDS:
        assert f"# {field}" in text, f"{path.name}: comment block lacks {field!r}"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_ops_are_registered_and_models_exist_in_the_demo(path: Path, custom_ops, recipe_demo):
    from data_juicer.ops.base_op import OPERATORS

    config = expand_variables(load_recipe(path), {}, str(path))
    assert "skip_op_error" not in config or config["skip_op_error"] is False
    for folder in config.get("custom_operator_paths", []):
        assert (path.parent / folder).resolve() == Path(custom_ops.__path__[0]).resolve()
    for op in config["process"]:
        (name, args), = op.items()
        assert name in OPERATORS.modules, f"{path.name}: unknown operator {name}"
        for key, value in (args or {}).items():
            if key.startswith("hf_"):
                # a transformers folder has config.json, a diffusers pipeline folder model_index.json
                folder = recipe_demo.recipe_models_dir / value
                assert (folder / "config.json").is_file() or (folder / "model_index.json").is_file(), \
                    f"{path.name}: {name}.{key}={value} is not a demo recipe model"


def test_variables_are_expanded_with_defaults_types_and_environment():
    environ = {"MODEL": "org/model", "EMPTY": ""}
    value = {"a": "${MODEL}", "b": ["x-${MISSING:-y}-z"], "c": "${BAR:-0.25}", "d": "${EMPTY:-7}", "e": 3}
    assert expand_variables(value, environ, "r.yaml") == {"a": "org/model", "b": ["x-y-z"], "c": 0.25,
                                                          "d": 7, "e": 3}
    with pytest.raises(RecipeError, match=r"r.yaml: uses \$\{MISSING\}"):
        expand_variables("${MISSING}", environ, "r.yaml")


def test_bad_recipes_are_refused_with_the_file_name(tmp_path):
    for text, message in (("process: []", "non-empty list"), ("- a\n- b", "mapping"),
                          ("process:\n  - {a: 1, b: 2}", "process item 1"), ("a: [", "not valid YAML")):
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        with pytest.raises(RecipeError, match=message) as error:
            load_recipe(path)
        assert str(path) in str(error.value)


def test_run_settings_override_the_file_and_say_so(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "ops").mkdir()
    recipe = tmp_path / "recipes" / "r.yaml"
    recipe.write_text("np: 8\nskip_op_error: true\ncustom_operator_paths: ['../ops']\n"
                      "process:\n  - words_num_filter:\n      min_num: ${MIN:-3}\n")
    dataset = tmp_path / "pool.jsonl"
    dataset.write_text("")
    run = RecipeRun.create(recipe, dataset=dataset, export=tmp_path / "out" / "x.jsonl", models_root=tmp_path,
                           np=2, executor="ray")
    config, notes = resolve_recipe(run, {"MIN": "5"})
    assert config["skip_op_error"] is False and config["np"] == 2 and config["executor_type"] == "ray"
    assert config["ray_address"] == "local"
    assert config["custom_operator_paths"] == [str(tmp_path / "ops")]
    assert config["dataset"] == {"configs": [{"type": "local", "path": str(run.staged_dataset)}]}
    assert config["dataset_path"] == "" and config["export_path"] == str(run.dj_export)
    assert config["process"] == [{"words_num_filter": {"min_num": 5}}]
    assert sorted(note.split(":")[0] for note in notes) == ["np", "skip_op_error"]


def test_run_settings_are_validated(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("process:\n  - words_num_filter: {}\n")
    dataset = tmp_path / "pool.jsonl"
    dataset.write_text("")
    for kwargs, message in (({"export": tmp_path / "x.json"}, "must end in .jsonl"),
                            ({"export": dataset.with_suffix(".jsonl")}, "overwrite the input"),
                            ({"np": 0}, "np must be"), ({"executor": "spark"}, "executor must be"),
                            ({"image_root": tmp_path / "nowhere"}, "not a folder")):
        arguments = dict(dataset=dataset, export=tmp_path / "out.jsonl", models_root=tmp_path) | kwargs
        with pytest.raises(ValueError, match=message):
            RecipeRun.create(recipe, **arguments)
    with pytest.raises(ValueError, match="does not exist"):
        RecipeRun.create(recipe, dataset=tmp_path / "missing.jsonl", models_root=tmp_path)


def test_models_follow_the_data(tmp_path, monkeypatch):
    """Demo models only for demo data while the real ones are absent; real data gets the real folder."""
    from bettersynth.recipes.config import default_models_root

    real, demo = tmp_path / "real", tmp_path / "demo"
    monkeypatch.setenv("BSYNTH_ASSETS_ROOT", str(real))
    monkeypatch.setenv("BSYNTH_DEMO_ROOT", str(demo))
    real_models = real / "toolkit" / "training" / "model_zoo" / "recipe_models"
    demo_models = demo / "toolkit" / "training" / "model_zoo" / "recipe_models"
    demo_pool, real_pool = demo / "input" / "pool.jsonl", real / "input" / "pool.jsonl"
    assert default_models_root(demo_pool) == demo_models
    assert default_models_root(real_pool) == real_models
    real_models.mkdir(parents=True)
    assert default_models_root(demo_pool) == real_models


def test_solution_requirements_pin_the_toolkit_versions():
    import re
    import tomllib

    pin = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)$")
    toolkit = {}
    for spec in tomllib.loads((RECIPES_DIR.parents[1] / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = pin.match(spec.replace(" ", ""))
        toolkit[match.group(1).lower()] = match.group(3)
    lines = [line.strip() for line in (RECIPES_DIR.parent / "requirements.txt").read_text().splitlines()]
    pins = [pin.match(line) for line in lines if line and not line.startswith("#")]
    assert pins and all(pins)
    for match in pins:
        assert toolkit.get(match.group(1).lower()) == match.group(3), match.group(0)
