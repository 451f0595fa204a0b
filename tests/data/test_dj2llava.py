"""dj2llava against Data-Juicer's own dj_to_llava tool: byte-identical output, plus our additions.

Parity runs the tool shipped in the installed py-data-juicer wheel and ours on the same generated
inputs (every option; image token at start/end, eoc present/absent, Chinese text, trailing
newlines, odd spacing, duplicates, int/str ids) and on the 1,000 real seed samples.

    HF_HUB_OFFLINE=1 python -m pytest tests/data/test_dj2llava.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import write_json, write_jsonl

from bettersynth.cli import main as bsynth
from bettersynth.data.dj_llava import DjToLlavaOptions, dj_to_llava, relative_to_root
from bettersynth.data.problems import DataError

DJ_IMAGE, DJ_EOC = "<__dj__image>", "<|__dj__eoc|>"

# Caption texts with {img} {eoc} {sep} placeholders for the option set under test.
CAPTIONS = [
    "{img}{sep}a photo of a cat {eoc}",
    "a photo of a dog {img} {eoc}",
    "{img}no separator and no eoc",
    "{img}{sep}一只猫坐在窗台上，阳光明媚。 {eoc}",
    "{img}{sep}trailing newline {eoc}\n",
    "{img}{sep}trailing newlines, no eoc\n\n",
    "  {img}{sep}  spaced caption  {eoc}  \n",
    "caption then image{sep}{img}",
    "{img}{sep}caption {eoc}{sep}",
    '{img}{sep}quote " backslash \\ tab \t emoji \U0001f431 line-sep \u2028 end {eoc}',
    "{img}{sep}{img} twice {eoc}",
    "{img}{sep}{eoc}",
    "{eoc} eoc first {img}",
    "{img}{sep}caption {eoc} {eoc}",
]
# Multi-turn texts for the mode without restore_questions.
DIALOGUES = [
    "[[human]]: {img}{sep}What is this?{sep}[[gpt]]: A cat. {eoc}",
    "[[human]]: What is this?{sep}{img}{sep}[[gpt]]: A cat.{sep}[[human]]: {img}{sep}And now?{sep}"
    "[[gpt]]: 还是一只猫。 {eoc}\n",
    "[[human]]: Q{sep}[[gpt]]: {img} answer with the image first {eoc}",
    "[[user]]: Q1{sep}[[assistant]]: A1{sep}[[user]]: Q2 {img}{sep}[[assistant]]: A2 {img}",
]

OPTION_SETS = {
    "challenge": dict(image_special_token=DJ_IMAGE, restore_questions=True),
    "keep_all_images": dict(image_special_token=DJ_IMAGE, restore_questions=True, keep_only_first_image=False),
    "default_tokens": dict(restore_questions=True),
    "custom_tokens": dict(restore_questions=True, eoc_special_token="[EOC]", sent_separator=" || "),
    "crlf_separator": dict(image_special_token=DJ_IMAGE, restore_questions=True, sent_separator="\r\n"),
    "dialogue": dict(),
    "dialogue_keep_all": dict(image_special_token=DJ_IMAGE, keep_only_first_image=False),
    "dialogue_custom": dict(eoc_special_token="[EOC]", sent_separator=" || "),
}


def _fill(template: str, opts: dict) -> str:
    return template.format(img=opts.get("image_special_token", "<image>"),
                           eoc=opts.get("eoc_special_token", DJ_EOC), sep=opts.get("sent_separator", "\n"))


def _original(ids: list) -> list[dict]:
    records = []
    for n, sid in enumerate(ids):
        human = {"from": "human", "value": f"<image>\nQuestion {n}?"}
        if n == 1:
            human["extra"] = [1, "两"]  # extra keys of the question survive
        records.append({"id": sid, "image": f"orig/{n}.jpg",
                        "conversations": [human, {"from": "assistant" if n == 2 else "gpt", "value": f"old {n}"}]})
    return records


def _generated(opts: dict) -> tuple[list[dict], list[dict] | None]:
    """DJ records for one option set (and the original LLaVA records when restoring)."""
    texts = CAPTIONS if opts.get("restore_questions") else DIALOGUES
    records = [{"id": f"s{n}", "text": _fill(t, opts), "images": [f"images/{n:03d}.jpg"]}
               for n, t in enumerate(texts)]
    records[0]["images"] = []  # no image: no "image" key
    records[1]["images"] = ["images/dup.jpg", "images/dup.jpg"]  # one distinct image
    del records[2]["images"]
    records.append(dict(records[3], extra_field={"kept": False}))  # a duplicate id, extra field
    if not opts.get("restore_questions"):
        return records, None
    records.append({"id": 7, "text": _fill(CAPTIONS[0], opts), "images": ["images/int.jpg"]})
    records.append({"id": "8", "text": _fill(CAPTIONS[1], opts), "images": ["/abs/images/8.jpg"]})
    ids = [f"s{n}" for n in range(len(texts))] + ["7", 8, "unused"]
    return records, _original(ids)


def _run_both(tmp_path: Path, reference, records: list[dict], original: list[dict] | None, opts: dict):
    dj = write_jsonl(tmp_path / "in.jsonl", records)
    kwargs = dict(opts)
    if original is not None:
        kwargs["original_llava_ds_path"] = str(write_json(tmp_path / "original.json", original))
    reference.main(str(dj), str(tmp_path / "reference.json"), **kwargs)
    result = dj_to_llava(dj, tmp_path / "ours.json", DjToLlavaOptions(**kwargs))
    return (tmp_path / "reference.json").read_bytes(), (tmp_path / "ours.json").read_bytes(), result


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_generated_inputs_match_the_tool_byte_for_byte(tmp_path, dj_to_llava_reference, name):
    opts = OPTION_SETS[name]
    records, original = _generated(opts)
    reference, ours, result = _run_both(tmp_path, dj_to_llava_reference, records, original, opts)
    assert ours == reference
    assert result.num_samples == len(records) == len(json.loads(ours))


def test_challenge_record_written_out_by_hand(tmp_path):
    dj = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "001", "text": f"{DJ_IMAGE}\na red 猫 {DJ_EOC}", "images": ["images/001.jpg"]}])
    original = write_json(tmp_path / "stage_1.json", [{"id": "001", "image": "old.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "old caption"}]}])
    dj_to_llava(dj, tmp_path / "out.json", DjToLlavaOptions(
        image_special_token=DJ_IMAGE, restore_questions=True, original_llava_ds_path=original))
    assert (tmp_path / "out.json").read_text() == (
        '[{"id": "001", "conversations": [{"from": "human", "value": "<image>\\nWhat is it?"}, '
        '{"from": "gpt", "value": "a red \\u732b"}], "image": "images/001.jpg"}]')


def test_real_sample_matches_the_tool_and_restores_the_originals(tmp_path, dj_to_llava_reference, real_sample_dir):
    opts = dict(image_special_token=DJ_IMAGE, restore_questions=True,
                original_llava_ds_path=str(real_sample_dir / "stage_1_sample_1k.json"))
    dj = real_sample_dir / "seed_sample_1k.jsonl"
    dj_to_llava_reference.main(str(dj), str(tmp_path / "reference.json"), **opts)
    result = dj_to_llava(dj, tmp_path / "ours.json", DjToLlavaOptions(**opts))
    ours = (tmp_path / "ours.json").read_bytes()
    assert result.num_samples == 1000
    assert ours == (tmp_path / "reference.json").read_bytes()
    # The seed texts are the original captions: converting back gives stage_1's records.
    originals = json.loads((real_sample_dir / "stage_1_sample_1k.json").read_text(encoding="utf-8"))
    by_id = {r["id"]: r for r in originals}
    converted = json.loads(ours)
    assert all(r["conversations"] == by_id[r["id"]]["conversations"] and r["image"] == by_id[r["id"]]["image"]
               for r in converted)


def _restore_options(original: Path, **extra) -> DjToLlavaOptions:
    return DjToLlavaOptions(image_special_token=DJ_IMAGE, restore_questions=True,
                            original_llava_ds_path=original, **extra)


def test_every_problem_is_reported_at_once_and_nothing_is_written(tmp_path, dj_to_llava_reference):
    original = write_json(tmp_path / "stage_1.json", _original([f"k{n}" for n in range(30)]))
    records = [{"id": f"k{n}", "text": f"{DJ_IMAGE}\ncap {n} {DJ_EOC}", "images": [f"i/{n}.jpg"]} for n in range(30)]
    for n in (3, 11, 27):
        records[n]["id"] = f"unknown{n}"
    records[5]["images"] = ["i/a.jpg", "i/b.jpg"]
    dj = write_jsonl(tmp_path / "in.jsonl", records)
    with dj.open("a", encoding="utf-8") as f:
        f.write('{"id": "k1", "text": "trunc\n')
    target = tmp_path / "out.json"
    target.write_text("previous complete output")
    with pytest.raises(DataError) as caught:
        dj_to_llava(dj, target, _restore_options(original))
    kinds = sorted((p.kind, p.line, p.sample_id) for p in caught.value.problems)
    assert kinds == [("invalid_line", 31, None), ("multiple_images", 6, "k5"), ("unknown_id", 4, "unknown3"),
                     ("unknown_id", 12, "unknown11"), ("unknown_id", 28, "unknown27")]
    assert "unknown_id: 3" in str(caught.value) and "in.jsonl:line 12 (id 'unknown11')" in str(caught.value)
    assert target.read_text() == "previous complete output"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ValueError, match="unknown3"):  # the tool stops at the first problem
        dj_to_llava_reference.main(str(dj), str(tmp_path / "ref.json"), image_special_token=DJ_IMAGE,
                                   restore_questions=True, original_llava_ds_path=str(original))


def test_unknown_ids_are_counted_with_first_examples(tmp_path):
    original = write_json(tmp_path / "stage_1.json", _original(["known"]))
    dj = write_jsonl(tmp_path / "in.jsonl", [{"id": f"x{n}", "text": "t", "images": ["a.jpg"]} for n in range(25)])
    with pytest.raises(DataError) as caught:
        dj_to_llava(dj, tmp_path / "out.json", _restore_options(original, max_examples=4))
    message = str(caught.value)
    assert "unknown_id: 25, first 4" in message
    assert "'x3'" in message and "'x4'" not in message
    assert not (tmp_path / "out.json").exists()


def test_absolute_paths_under_the_root_become_relative_and_outside_ones_are_errors(tmp_path):
    root = tmp_path / "seed"
    original = write_json(tmp_path / "stage_1.json", _original(["a", "b", "c"]))
    rows = [{"id": "a", "text": "t", "images": [str(root / "images" / "a.jpg")]},
            {"id": "b", "text": "t", "images": ["images/b.jpg"]}]
    dj = write_jsonl(tmp_path / "in.jsonl", rows)
    result = dj_to_llava(dj, tmp_path / "out.json", _restore_options(original, image_root=root))
    assert [r["image"] for r in json.loads((tmp_path / "out.json").read_text())] == ["images/a.jpg", "images/b.jpg"]
    assert result.num_relativised == 1
    rows.append({"id": "c", "text": "t", "images": ["/elsewhere/c.jpg"]})
    write_jsonl(dj, rows)
    with pytest.raises(DataError, match="image_outside_root: 1"):
        dj_to_llava(dj, tmp_path / "out2.json", _restore_options(original, image_root=root))
    assert relative_to_root(str(root / ".." / "seed" / "x.jpg"), root) == "x.jpg"
    assert relative_to_root(str(tmp_path / "seedling" / "x.jpg"), root) is None


def test_options_are_checked():
    with pytest.raises(ValueError, match="original_llava_ds_path"):
        DjToLlavaOptions(restore_questions=True)
    with pytest.raises(ValueError, match="sent_separator"):
        DjToLlavaOptions(sent_separator="")


def test_cli_matches_the_library_and_fails_loudly(tmp_path, capsys, real_sample_dir):
    dj, original = real_sample_dir / "seed_sample_1k.jsonl", real_sample_dir / "stage_1_sample_1k.json"
    args = [str(dj), "--image_special_token", DJ_IMAGE, "--original_llava_ds_path", str(original)]
    assert bsynth(["dj2llava", *args, str(tmp_path / "cli.json"), "--restore_questions", "True"]) == 0
    assert bsynth(["dj2llava", *args, str(tmp_path / "bare.json"), "--restore-questions"]) == 0
    dj_to_llava(dj, tmp_path / "lib.json", _restore_options(original))
    assert (tmp_path / "cli.json").read_bytes() == (tmp_path / "lib.json").read_bytes()
    assert (tmp_path / "bare.json").read_bytes() == (tmp_path / "lib.json").read_bytes()
    assert bsynth(["dj2llava", *args, str(tmp_path / "out.txt"), "--restore_questions", "True"]) == 2
    stranger = write_json(tmp_path / "other.json", _original(["zzz"]))
    capsys.readouterr()
    assert bsynth(["dj2llava", str(dj), str(tmp_path / "x.json"), "--image_special_token", DJ_IMAGE,
                   "--restore_questions", "True", "--original_llava_ds_path", str(stranger)]) == 1
    assert "unknown_id: 1000, first 10" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
