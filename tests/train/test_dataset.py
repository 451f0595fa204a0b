"""The lazy data set and the collator on the demo tokenizer and images: encoding, lazy image
loading, the bad-data policy (stop naming the sample / skip and count / truncate; images that
``bsynth validate`` refuses stop with its reason), padding.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train/test_dataset.py -q`` (seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bettersynth.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from bettersynth.data.image_check import check_images
from bettersynth.train.collate import Collator
from bettersynth.train.dataset import BadSampleError, DataOptions, Example, LazySupervisedDataset, SkippedSample
from bettersynth.template import encode_conversation

from train_helpers import TEST_IMAGE_SIZE_AUX

IMAGE_TOKENS = 64  # demo CLIP: 112 px / 14 = 8x8 patches


@pytest.fixture(scope="module")
def demo_text_tools(demo_layout_for_tests):
    from transformers import AutoTokenizer

    from bettersynth.model.preprocess import ImagePreprocessor

    tokenizer = AutoTokenizer.from_pretrained(demo_layout_for_tests.llm_dir)
    preprocessor = ImagePreprocessor.from_vision_tower(demo_layout_for_tests.vision_tower_dir, TEST_IMAGE_SIZE_AUX)
    return tokenizer, preprocessor


@pytest.fixture()
def image_dir(tmp_path, demo_layout_for_tests, finetune_records) -> Path:
    """A private image folder holding copies of two demo images (tests may break them)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name, record in zip(("a.jpg", "b.jpg"), [r for r in finetune_records if "image" in r][:2]):
        (folder / name).write_bytes((demo_layout_for_tests.finetune_dir / record["image"]).read_bytes())
    return folder


def human(text):
    return {"from": "human", "value": text}


def gpt(text):
    return {"from": "gpt", "value": text}


def records():
    return [{"id": "img-1", "image": "a.jpg", "conversations": [human("<image>\nWhat is shown?"), gpt("a red circle")]},
            {"id": "txt-1", "conversations": [human("Name a colour."), gpt("blue")]},
            {"id": "img-2", "image": "b.jpg", "conversations": [human("Describe it.\n<image>"), gpt("two squares")]}]


def make_dataset(tmp_path, image_dir, tools, data, aspect="pad", **options):
    tokenizer, preprocessor = tools
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    settings = {"model_max_length": 2048, **options}
    return LazySupervisedDataset(DataOptions(data_path=path, image_folder=image_dir, aspect=aspect,
                                             num_image_tokens=IMAGE_TOKENS, **settings), tokenizer, preprocessor)


def test_items_are_encoded_and_images_preprocessed(tmp_path, image_dir, demo_text_tools):
    tokenizer, preprocessor = demo_text_tools
    dataset = make_dataset(tmp_path, image_dir, demo_text_tools, records())
    assert len(dataset) == 3 and dataset.has_image == [True, False, True]
    assert dataset.word_counts == [4 + 3, 3 + 1, 3 + 2]  # whitespace words of all turns, "<image>" included
    item = dataset[0]
    expected = encode_conversation(records()[0]["conversations"], tokenizer, has_image=True)
    assert item.input_ids.tolist() == expected.input_ids and item.labels.tolist() == expected.labels
    assert item.num_tokens == sum(label != IGNORE_INDEX for label in expected.labels)
    assert item.num_input_tokens == len(expected.input_ids) - 1 + IMAGE_TOKENS
    reference = preprocessor(preprocessor.load(image_dir / "a.jpg"), aspect="pad")
    assert item.image.shape == (3, TEST_IMAGE_SIZE_AUX, TEST_IMAGE_SIZE_AUX) and torch.equal(item.image, reference)
    assert dataset[1].image is None and IMAGE_TOKEN_INDEX not in dataset[1].input_ids.tolist()


def test_collator_pads_right_and_fills_text_only_images_with_zeros(tmp_path, image_dir, demo_text_tools):
    tokenizer, _ = demo_text_tools
    dataset = make_dataset(tmp_path, image_dir, demo_text_tools, records())
    items = [dataset[0], dataset[1]]
    batch, info = Collator(tokenizer.pad_token_id, TEST_IMAGE_SIZE_AUX)(items)
    lengths = [len(item.input_ids) for item in items]
    width = max(lengths)
    assert batch["input_ids"].shape == (2, width)
    for row, item in enumerate(items):
        count = lengths[row]
        assert batch["input_ids"][row, :count].tolist() == item.input_ids.tolist()
        assert batch["input_ids"][row, count:].tolist() == [tokenizer.pad_token_id] * (width - count)
        assert batch["labels"][row, count:].tolist() == [IGNORE_INDEX] * (width - count)
        assert batch["attention_mask"][row].tolist() == [True] * count + [False] * (width - count)
    assert batch["attention_mask"].dtype == torch.bool and batch["has_image"].tolist() == [True, False]
    assert torch.equal(batch["images_aux"][0], items[0].image)
    assert not batch["images_aux"][1].any()
    assert info.num_samples == 2 and info.num_tokens == items[0].num_tokens + items[1].num_tokens
    assert info.num_input_tokens == items[0].num_input_tokens + items[1].num_input_tokens


def test_missing_image_stops_with_id_and_path_or_is_skipped(tmp_path, image_dir, demo_text_tools):
    (image_dir / "b.jpg").unlink()
    with pytest.raises(BadSampleError, match=r"img-2.*b\.jpg.*image file not found"):
        make_dataset(tmp_path, image_dir, demo_text_tools, records())
    dataset = make_dataset(tmp_path, image_dir, demo_text_tools, records(), skip_bad_samples=True)
    assert len(dataset) == 2 and [p.sample_id for p in dataset.problems] == ["img-2"]


def test_training_data_that_is_not_utf8_is_named(tmp_path, image_dir, demo_text_tools):
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps(records(), ensure_ascii=False).replace("img-2", "img-\u00e9").encode("latin-1"))
    tokenizer, preprocessor = demo_text_tools
    options = DataOptions(data_path=path, image_folder=image_dir, aspect="pad", model_max_length=2048,
                          num_image_tokens=IMAGE_TOKENS)
    with pytest.raises(BadSampleError, match=rf"cannot read the training data {path}: 'utf-8' codec can't decode"):
        LazySupervisedDataset(options, tokenizer, preprocessor)


@pytest.mark.parametrize("skip_bad_samples", [False, True])
def test_an_image_folder_that_is_not_there_stops_the_run(tmp_path, demo_text_tools, skip_bad_samples):
    """Not one bad sample per image (which --skip_bad_samples would leave out, training on the text alone)."""
    path = tmp_path / "data.json"
    path.write_text(json.dumps(records()))
    tokenizer, preprocessor = demo_text_tools
    for folder in (tmp_path / "absent", path):
        options = DataOptions(data_path=path, image_folder=folder, aspect="pad", model_max_length=2048,
                              num_image_tokens=IMAGE_TOKENS, skip_bad_samples=skip_bad_samples)
        with pytest.raises(FileNotFoundError, match=rf"the image folder {folder} \(--image_folder\) is not a folder"):
            LazySupervisedDataset(options, tokenizer, preprocessor)


def test_unknown_role_stops_or_is_skipped(tmp_path, image_dir, demo_text_tools):
    data = records()
    data[1]["conversations"][1]["from"] = "assistant"
    with pytest.raises(BadSampleError, match=r"txt-1.*unknown role 'assistant'"):
        make_dataset(tmp_path, image_dir, demo_text_tools, data)
    assert len(make_dataset(tmp_path, image_dir, demo_text_tools, data, skip_bad_samples=True)) == 2


def test_undecodable_image_is_found_on_use(tmp_path, image_dir, demo_text_tools):
    (image_dir / "a.jpg").write_bytes(b"not a jpeg at all")
    dataset = make_dataset(tmp_path, image_dir, demo_text_tools, records())  # lazy: the check is cheap
    with pytest.raises(BadSampleError, match=r"img-1.*a\.jpg.*cannot be loaded"):
        dataset[0]
    skipping = make_dataset(tmp_path, image_dir, demo_text_tools, records(), skip_bad_samples=True)
    skipped = skipping[0]
    assert isinstance(skipped, SkippedSample) and skipped.sample_id == "img-1"
    batch, info = Collator(0, TEST_IMAGE_SIZE_AUX)([skipped, skipping[1]])
    assert batch["input_ids"].shape[0] == 1 and info.num_samples == 1
    assert [sample_id for sample_id, _ in info.skipped] == ["img-1"]
    assert Collator(0, TEST_IMAGE_SIZE_AUX)([skipped]) [0] is None



@pytest.mark.parametrize("name, write, kind, reason_start", [
    ("wide.jpg", lambda path: Image.new("RGB", (20000, 20)).save(path), "image_size",
     "20000x20 pixels: the long side 20000 is over 6144 px and the aspect ratio 1000.0 is over 20"),
    ("grey16.png", lambda path: Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16)).save(path),
     "image_mode", "mode I;16 (16/32-bit greyscale or float): convert('RGB') clips it to 0..255"),
])
def test_images_validate_refuses_stop_training_with_the_same_reason(tmp_path, image_dir, demo_text_tools,
                                                                      name, write, kind, reason_start):
    """A 20000x20 JPEG (gigabytes to preprocess) and a 16-bit PNG (white through convert('RGB'))
    decode, but stop the run naming the sample, with the reason ``bsynth validate`` gives."""
    write(image_dir / name)
    data = records()
    data[0]["image"] = name
    path = str(image_dir / name)
    failure = check_images([path])[path]
    assert failure.kind == kind and failure.message.startswith(f"{path}: {reason_start}")
    reason = failure.message.removeprefix(f"{path}: ")
    dataset = make_dataset(tmp_path, image_dir, demo_text_tools, data)
    with pytest.raises(BadSampleError) as caught:
        dataset[0]
    assert str(caught.value) == (f"sample id 'img-1' (record 0 of {tmp_path / 'data.json'}; file {path}): image "
                                 f"cannot be loaded: {reason}. Pass --skip_bad_samples True to leave such "
                                 "samples out.")
    skipped = make_dataset(tmp_path, image_dir, demo_text_tools, data, skip_bad_samples=True)[0]
    assert isinstance(skipped, SkippedSample)
    assert (skipped.sample_id, skipped.reason) == ("img-1", f"image cannot be loaded: {reason}")

def test_over_long_samples_stop_skip_or_truncate(tmp_path, image_dir, demo_text_tools):
    tokenizer, _ = demo_text_tools
    encoded = encode_conversation(records()[0]["conversations"], tokenizer, has_image=True)
    spliced = len(encoded.input_ids) - 1 + IMAGE_TOKENS
    limit = spliced - 3  # cuts the last three tokens: "\n" and <eos> are supervised, and one more
    with pytest.raises(BadSampleError, match=rf"img-1.*over-long: {spliced} tokens"):
        make_dataset(tmp_path, image_dir, demo_text_tools, records(), model_max_length=limit)[0]
    skipping = make_dataset(tmp_path, image_dir, demo_text_tools, records(), model_max_length=limit,
                            skip_bad_samples=True)
    assert isinstance(skipping[0], SkippedSample)
    truncating = make_dataset(tmp_path, image_dir, demo_text_tools, records(), model_max_length=limit,
                              truncate_long_samples=True)
    item = truncating[0]
    assert isinstance(item, Example) and item.truncated and item.num_input_tokens == limit
    supervised = sum(label != IGNORE_INDEX for label in encoded.labels)
    assert encoded.labels[-3:] != [IGNORE_INDEX] * 3
    assert item.num_tokens == supervised - 3


def test_tokenization_mismatch_masks_and_is_counted(tmp_path, image_dir, demo_text_tools):
    data = records()
    data[1]["conversations"][0]["value"] = "Name a colour. <eos> Now."
    dataset = make_dataset(tmp_path, image_dir, demo_text_tools, data)
    item = dataset[1]
    assert item.mismatch and item.num_tokens == 0 and set(item.labels.tolist()) == {IGNORE_INDEX}
    _, info = Collator(0, TEST_IMAGE_SIZE_AUX)([item])
    assert info.mismatched == ["txt-1"]
