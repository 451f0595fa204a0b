"""Shards (contiguous, near-equal), the checked merge, and atomic writes.

    python -m pytest tests/eval/test_files.py -q
"""

import json

import pytest

from bettersynth.cli import main
from bettersynth.eval.files import EvalDataError, read_jsonl, shard_range
from bettersynth.files import atomic_path
from bettersynth.eval.inference import expected_question_ids, merge_shards


def test_shard_range_is_contiguous_and_near_equal():
    assert [list(shard_range(10, 4, k)) for k in range(4)] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert [len(shard_range(5000, 8, k)) for k in range(8)] == [625] * 8
    assert [len(shard_range(4377, 3, k)) for k in range(3)] == [1459, 1459, 1459]
    assert [len(shard_range(2, 3, k)) for k in range(3)] == [1, 1, 0]
    with pytest.raises(ValueError):
        shard_range(10, 2, 2)


def test_read_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(EvalDataError, match=r"a.jsonl:3: invalid JSON"):
        read_jsonl(path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("partial")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def _shards(tmp_path, ids, cuts, models=None):
    files = []
    for number, (start, stop) in enumerate(cuts):
        path = tmp_path / f"{len(cuts)}_{number}.jsonl"
        model = (models or {}).get(number, "MGM-2B-Finetune-a")
        path.write_text("".join(json.dumps({"question_id": i, "text": "x", "model_id": model}) + "\n"
                                for i in ids[start:stop]))
        files.append(path)
    return files


def test_merge_checks_order_and_count(eval_data, tmp_path):
    ids = expected_question_ids(textvqa_questions=eval_data.textvqa_questions)
    assert ids == ["img0", "img1", "img1", "img2", "img3"]
    out = tmp_path / "bm1.jsonl"
    assert merge_shards(_shards(tmp_path, ids, [(0, 3), (3, 5)]), out, ids) == 5
    assert [r["question_id"] for r in read_jsonl(out)] == ids
    out.unlink()
    with pytest.raises(EvalDataError, match="4 answers for 5 questions"):
        merge_shards(_shards(tmp_path, ids, [(0, 3), (3, 4)]), out, ids)
    with pytest.raises(EvalDataError, match="missing shard"):
        merge_shards([tmp_path / "2_0.jsonl", tmp_path / "9_9.jsonl"], out, ids)
    shards = _shards(tmp_path, ids, [(0, 3), (3, 5)], models={1: "MGM-2B-Finetune-b"})
    with pytest.raises(EvalDataError, match=rf"answers of different models \({shards[0]}: MGM-2B-Finetune-a; "
                                            rf"{shards[1]}: MGM-2B-Finetune-b\)"):
        merge_shards(shards, out, ids)
    shards = _shards(tmp_path, ids, [(0, 3), (3, 5)])
    lines = shards[1].read_text().splitlines()
    shards[1].write_text(lines[0] + "\n" + json.dumps({"question_id": ids[4], "model_id": "MGM-2B-Finetune-a"}) + "\n")
    with pytest.raises(EvalDataError, match=rf"{shards[1]}: line 2: `text` is None, not an answer; not merging"):
        merge_shards(shards, out, ids)  # was merged, to fail only when scored
    assert not out.exists()


def test_merge_command(eval_data, tmp_path, capsys):
    ids = expected_question_ids(mmbench_tsv=eval_data.mmbench_tsv)
    assert ids == [0, 1, 2, 1000000, 2000000, 1000001]
    shards = _shards(tmp_path, ids[::-1], [(0, 3), (3, 6)])  # wrong order
    out = tmp_path / "merged.jsonl"
    assert main(["eval", "merge", "--out", str(out), "--mmbench-tsv", str(eval_data.mmbench_tsv),
                 *map(str, shards)]) == 1
    assert "first difference at answer 0" in capsys.readouterr().err and not out.exists()
