"""install.sh is idempotent, the pinned set works together offline, and the runtime set (install.sh
without --dev) holds everything the toolkit imports.

These run after `bash install.sh --dev` (the README's test command does that first), so the
install.sh call here is a second run: it must change nothing and be quick. Because the test
environment also holds the dev extra, a package the toolkit imports but only the dev extra
installs would pass every other test: the import scan below catches that.

Run: python -m pytest tests/house/test_house_install.py
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tomllib
from packaging.requirements import Requirement
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]


def pip_freeze() -> str:
    return subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True,
                          text=True, check=True).stdout


def test_second_install_is_a_fast_no_op():
    before = pip_freeze()
    start = time.monotonic()
    result = subprocess.run(["bash", "install.sh", "--dev"], cwd=REPO_ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to do" in result.stdout
    assert elapsed < 60
    assert pip_freeze() == before


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure() -> set[str]:
    """Distributions that `bash install.sh` (no --dev) installs: pyproject's dependencies with their
    extras, and what they require in turn (markers evaluated here, as pip does)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(spec) for spec in project["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = normalized(requirement.name)
        extras = requirement.extras
        if name in seen and not extras:
            continue
        seen.add(name)
        for spec in metadata.requires(requirement.name) or []:
            needed = Requirement(spec)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(env) for env in environments):
                pending.append(needed)
    return seen


def imported_top_level_modules(*roots: Path) -> dict[str, Path]:
    """Every absolute import of the files under ``roots`` (function-level ones too), first file each."""
    modules: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    modules.setdefault(name.split(".")[0], path)
    return modules


def test_every_toolkit_import_is_installed_without_the_dev_extra():
    own = {"bettersynth", "ops"}
    runtime = runtime_closure()
    providers = metadata.packages_distributions()
    missing = []
    imports = imported_top_level_modules(REPO_ROOT / "toolkit" / "bettersynth", REPO_ROOT / "solution" / "ops")
    for module, path in sorted(imports.items()):
        if module in sys.stdlib_module_names or module in own:
            continue
        distributions = {normalized(d) for d in providers.get(module, [])}
        if not distributions & runtime:
            missing.append(f"{module} ({path.relative_to(REPO_ROOT)}; "
                           f"from {sorted(distributions) or 'nothing installed'})")
    assert not missing, "imported but not installed by `bash install.sh` without --dev: " + ", ".join(missing)
    assert "open-clip-torch" in runtime and "ray" in runtime and "aiohttp-cors" in runtime  # extras followed


def test_core_packages_import_together():
    subprocess.run([sys.executable, "-c", "import data_juicer, transformers, deepspeed, torch, timm"], check=True)


def test_bsynth_help_lists_the_subcommands():
    out = subprocess.run(["bsynth", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ["dj2llava", "llava2dj", "sample", "check-batch", "validate", "demo", "recipe",
                    "train", "eval", "score", "pack"]:
        assert command in out, f"bsynth --help does not list {command}"


def test_model_free_recipe_installs_nothing(tmp_path: Path):
    """Data-Juicer installs missing op dependencies at run time; ours must all be there already."""
    images = tmp_path / "images"
    images.mkdir()
    lines = []
    rng = np.random.default_rng(0)
    for i, (width, height) in enumerate([(64, 48), (300, 200), (500, 500)]):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)  # distinct perceptual hashes
        Image.fromarray(pixels).save(images / f"{i}.jpg")
        lines.append({"id": str(i), "text": f"<__dj__image>\na picture number {i} <|__dj__eoc|>",
                      "images": [f"images/{i}.jpg"]})
    dataset = tmp_path / "in.jsonl"
    dataset.write_text("".join(json.dumps(line) + "\n" for line in lines))
    export = tmp_path / "out.jsonl"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""
project_name: no-install-check
dataset_path: {dataset}
export_path: {export}
np: 1
skip_op_error: false
process:
  - image_shape_filter:
      min_width: 100
  - text_length_filter:
      min_len: 5
  - image_deduplicator:
      method: phash
""")
    env = dict(os.environ, HF_HUB_OFFLINE="1", DATA_JUICER_CACHE_HOME=str(tmp_path / "dj-cache"))
    before = pip_freeze()
    result = subprocess.run(["dj-process", "--config", str(recipe)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    kept = [json.loads(line)["id"] for line in export.read_text().splitlines()]
    assert kept == ["1", "2"]
    assert pip_freeze() == before, "a Data-Juicer run installed or changed packages"
