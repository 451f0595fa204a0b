"""bench/data_throughput.py runs end to end on tiny models (CPU): our two model operators and the
two Data-Juicer built-ins, through Data-Juicer, with a JSON report.

    HF_HUB_OFFLINE=1 python -m pytest tests/recipes/test_data_throughput_bench.py -q      (~20 s)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from recipe_helpers import REPO_ROOT


def test_quick_bench_measures_all_four_operators(tmp_path):
    out = tmp_path / "quick.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "toolkit"), str(REPO_ROOT)]))
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "data_throughput.py"), "--quick",
                           "--work", str(tmp_path / "work"), "--out", str(out), "--sample-dir", str(tmp_path / "none"),
                           "--builtin-np-clip", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    by_op = {r["op"]: r for r in report["results"]}
    assert set(by_op) == {"fast_image_text_similarity_filter", "image_text_similarity_filter",
                          "fast_image_captioning_mapper", "image_captioning_mapper"}
    assert all(r["steady_per_s"] > 0 for r in report["results"])
    for op in ("fast_image_captioning_mapper", "image_captioning_mapper"):
        assert by_op[op]["rows_out_large"] == 2 * by_op[op]["large"]  # source kept next to its caption
    clip = by_op["fast_image_text_similarity_filter"]
    assert clip["rows_out_large"] == clip["large"]  # min_score -1 keeps every pair
    assert set(report["ratios_ours_over_best_builtin"]) == {"clip_pairs_per_s", "captions_per_s", "new_tokens_per_s"}
    parts = report["clip_parts"]  # our CLIP filter's decoding and forward, each alone
    assert parts["decode_images_per_s"] > 0 and parts["forward_images_per_s"] > 0 and parts["workers"] == 2
