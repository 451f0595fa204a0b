"""``bsynth recipe run --skip-unchanged`` (the main job's recipe step) reuses an export only when it was
made from the same recipe operators (after ``${VARIABLE}`` expansion), seed pool and operator code,
says what changed otherwise, and a successful rerun replaces export, report and record together.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_run_provenance.py -q      (~2 min)
"""

from __future__ import annotations

import json
import time

from recipe_helpers import RECIPES_DIR, read_rows, run_cli

from bettersynth.provenance import fingerprint, made_during


def test_skip_unchanged_reuses_only_an_export_made_from_the_same_recipe_and_pool(recipe_demo, tmp_path):
    dataset = tmp_path / "pool.jsonl"
    rows = read_rows(recipe_demo.seed_jsonl)[:12]
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"np: 1\ncustom_operator_paths: ['{RECIPES_DIR.parent / 'ops'}']\nprocess:\n"
                      "  - words_num_filter:\n      min_num: ${BSYNTH_TEST_MIN_WORDS:-1}\n")
    export = tmp_path / "out" / "curated.jsonl"

    def run(**env):
        return run_cli(recipe, recipe_demo, export, "--image-root", str(recipe_demo.seed_dir), "--skip-unchanged",
                       dataset=dataset, env=env)

    before = time.time()
    first = run()
    after = time.time()
    assert first.returncode == 0, first.output[-3000:]
    assert f"[recipe] running: {export} does not exist yet" in first.output
    record = json.loads(export.with_name("curated.jsonl.made-from.json").read_text())
    assert record["step"] == "recipe" and record["output"] == fingerprint(export)
    assert record["inputs"]["seed pool"] == fingerprint(dataset)
    [(start, end)] = made_during(export)  # when the recipe ran, within its process's run
    assert before <= start < end <= after
    assert not export.with_name("curated_attempt").exists()

    again = run()
    assert again.returncode == 0 and f"[recipe] skipped: {export} was made from the same inputs" in again.output
    assert made_during(export) == [(start, end)]
    assert again.seconds < 15  # Data-Juicer did not start

    recipe.write_text(recipe.read_text() + "# a comment changes nothing Data-Juicer runs\n")
    assert "[recipe] skipped: " in run().output

    changed = run(BSYNTH_TEST_MIN_WORDS="4")
    assert changed.returncode == 0
    assert "[recipe] running: recipe operators changed (sha" in changed.output
    assert json.loads(export.with_name("curated.jsonl.made-from.json").read_text())["output"] == fingerprint(export)
    assert (export.with_name("curated_report") / "report.html").is_file()

    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows[:6]))
    pool_changed = run(BSYNTH_TEST_MIN_WORDS="4")
    assert pool_changed.returncode == 0 and "[recipe] running: seed pool changed (sha" in pool_changed.output
    assert len(read_rows(export)) <= 6
