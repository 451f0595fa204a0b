"""llava2dj against Data-Juicer's own llava_to_dj tool (byte-identical jsonl), and the round trip.

    HF_HUB_OFFLINE=1 python -m pytest tests/data/test_llava2dj.py -q
"""

from __future__ import annotations

import json
import random

import pytest
from data_helpers import write_json

from bettersynth.cli import main as bsynth
from bettersynth.data.dj_llava import DjToLlavaOptions, dj_to_llava
from bettersynth.data.llava_dj import LlavaToDjOptions, llava_to_dj
from bettersynth.data.problems import DataError


def _turn(role: str, value: str) -> dict:
    return {"from": role, "value": value}


RECORDS = [
    {"id": 1, "image": "a.jpg",
     "conversations": [_turn("human", "<image>\nWhat is it?"), _turn("gpt", "A cat.")]},
    {"id": "2", "image": "b.jpg", "conversations": [_turn("human", "Describe.\n<image>"), _turn("gpt", "一只狗。\n")]},
    {"id": "3", "image": "c.jpg", "conversations": [
        _turn("human", "<image>\nQ1"), _turn("gpt", "A1"), _turn("human", "Q2"), _turn("gpt", "A2"),
        _turn("human", "Q3"), _turn("gpt", "A3")]},
    {"id": "4", "image": "d.jpg", "conversations": [
        _turn("human", "Q1 <image>"), _turn("gpt", "A1"), _turn("human", "Q2"), _turn("gpt", "A2")]},
    {"id": "5", "conversations": [_turn("human", "text only"), _turn("gpt", "no image")]},
    {"id": 6.5, "image": "e.jpg", "conversations": [_turn("user", "<image>"), _turn("assistant", 'quote " \\ \t')]},
]

OPTION_SETS = {
    "defaults": dict(),
    "captions": dict(only_keep_caption=True),
    "split": dict(split_chunk=True),
    "broadcast_before": dict(split_chunk=True, image_broadcast=True, image_broadcast_pos="before"),
    "broadcast_after": dict(split_chunk=True, image_broadcast=True, image_broadcast_pos="after"),
    "broadcast_follow": dict(split_chunk=True, image_broadcast=True, image_broadcast_pos="follow"),
    "broadcast_random": dict(split_chunk=True, image_broadcast=True, image_broadcast_pos="random"),
    "no_eoc_int_ids": dict(add_eoc_at_last=False, str_id=False),
    "custom": dict(eoc_special_token="[EOC]", sent_separator=" || ", split_chunk=True),
}


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_generated_inputs_match_the_tool_byte_for_byte(tmp_path, llava_to_dj_reference, name):
    opts = OPTION_SETS[name]
    llava = write_json(tmp_path / "in.json", RECORDS)
    seed = 7
    state = random.getstate()
    try:
        random.seed(seed)  # the tool draws "random" positions from the global generator
        llava_to_dj_reference.main(str(llava), str(tmp_path / "reference.jsonl"), **opts)
    finally:
        random.setstate(state)
    result = llava_to_dj(llava, tmp_path / "ours.jsonl", LlavaToDjOptions(seed=seed, **opts))
    ours = (tmp_path / "ours.jsonl").read_bytes()
    assert ours == (tmp_path / "reference.jsonl").read_bytes()
    assert result.num_samples == len(RECORDS) and result.num_without_image == 1


def test_caption_format_written_out_by_hand(tmp_path):
    llava = write_json(tmp_path / "in.json", RECORDS[:1])
    llava_to_dj(llava, tmp_path / "out.jsonl", LlavaToDjOptions(only_keep_caption=True))
    assert (tmp_path / "out.jsonl").read_text() == (
        '{"id": "1", "text": "<image>\\nA cat. <|__dj__eoc|>", "images": ["a.jpg"]}\n')


def test_round_trip_of_the_real_sample(tmp_path, real_sample_dir):
    """stage_1 -> DJ captions -> LLaVA with restored questions gives stage_1 back."""
    stage1 = real_sample_dir / "stage_1_sample_1k.json"
    llava_to_dj(stage1, tmp_path / "seed.jsonl", LlavaToDjOptions(only_keep_caption=True))
    dj_to_llava(tmp_path / "seed.jsonl", tmp_path / "back.json",
                DjToLlavaOptions(restore_questions=True, original_llava_ds_path=stage1))
    assert json.loads((tmp_path / "back.json").read_text()) == json.loads(stage1.read_text(encoding="utf-8"))


def test_bad_records_are_all_reported(tmp_path):
    bad = [RECORDS[0],
           {"id": "x", "image": "x.jpg", "conversations": [_turn("human", "no token"), _turn("gpt", "a")]},
           {"id": "y", "image": "y.jpg", "conversations": [_turn("human", "<image>")]},
           {"image": "z.jpg", "conversations": []}]
    llava = write_json(tmp_path / "in.json", bad)
    with pytest.raises(DataError) as caught:
        llava_to_dj(llava, tmp_path / "out.jsonl", LlavaToDjOptions())
    assert sorted((p.kind, p.line) for p in caught.value.problems) == [
        ("bad_record", 4), ("image_token_position", 2), ("unbalanced_conversation", 3)]
    assert "in.json:record 2 (id 'x')" in str(caught.value)
    assert not (tmp_path / "out.jsonl").exists()


def test_cli(tmp_path, capsys):
    llava = write_json(tmp_path / "in.json", RECORDS)
    assert bsynth(["llava2dj", str(llava), str(tmp_path / "cli.jsonl"), "--only_keep_caption", "True"]) == 0
    llava_to_dj(llava, tmp_path / "lib.jsonl", LlavaToDjOptions(only_keep_caption=True))
    assert (tmp_path / "cli.jsonl").read_bytes() == (tmp_path / "lib.jsonl").read_bytes()
    assert "1 samples have no image" in capsys.readouterr().err
    assert bsynth(["llava2dj", str(llava), str(tmp_path / "x.jsonl"), "--image_broadcast", "True"]) == 2


def test_a_lone_surrogate_escape_is_a_bad_record(tmp_path, capsys):
    llava = tmp_path / "in.json"
    llava.write_text('[{"id": "1", "image": "a.jpg", "conversations": [{"from": "human", "value": "<image>"}, '
                     '{"from": "gpt", "value": "cut \\ud800"}]}]')
    out = tmp_path / "out.jsonl"
    assert bsynth(["llava2dj", str(llava), str(out)]) == 1  # was exit 2, "invalid arguments: 'utf-8' codec ..."
    assert capsys.readouterr().err == (
        f"bsynth llava2dj: 1 problem(s) in {llava}:\n  unencodable: 1\n"
        f"    {llava}:record 1 (id '1'): a lone surrogate escape (\\ud800-\\udfff) that UTF-8 cannot encode\n")
    assert not out.exists()


def test_nan_in_a_json_file_is_not_json(tmp_path, capsys):
    """Python's json reads NaN and Infinity; they are not JSON (the jsonl reader refuses them too)."""
    llava = tmp_path / "in.json"
    llava.write_text('[{"id": NaN, "image": "a.jpg", "conversations": []}]')
    out = tmp_path / "out.jsonl"
    assert bsynth(["llava2dj", str(llava), str(out)]) == 1  # was exit 0, the id written as "nan"
    assert capsys.readouterr().err == f"bsynth llava2dj: {llava} is not valid JSON: NaN is not valid JSON\n"
    assert not out.exists()
