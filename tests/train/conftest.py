"""Shared fixtures of the training tests: a tiny word-level Gemma-style tokenizer whose ids can be
written out by hand.

Run with ``HF_HUB_OFFLINE=1 python -m pytest tests/train -q``.

Vocabulary: ``<pad>``=0 ``<eos>``=1 ``<bos>``=2 ``<unk>``=3 ``<start_of_turn>``=4
``<end_of_turn>``=5, then ``\\n``=6 ``user``=7 ``model``=8 and the words of WORDS from 9 on.
Text splits on spaces (dropped) and newlines (kept as the token ``\\n``); the special tokens are
recognised anywhere in the text; a post-processor prepends ``<bos>``, as Gemma's tokenizer does.
"""

from __future__ import annotations

import pytest

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
WORDS = ["\n", "user", "model", "what", "is", "this", "a", "cat", "dog", "and", "now", "hello",
         "world", "red", "blue", "the", "sky", "sea", "one", "two", "three", "four", "five"]
VOCAB = {token: index for index, token in enumerate(SPECIALS + WORDS)}


def build_tiny_tokenizer():
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(" +"), behavior="removed"),
        pre_tokenizers.Split("\n", behavior="isolated"),
    ])
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIALS])
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", VOCAB["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        model_max_length=2048, padding_side="right")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def vocab() -> dict[str, int]:
    return dict(VOCAB)


# --- demo assets and short training runs ------------------------------------------------------

DEMO_ITEMS = ("llm", "vision_tower", "vision_tower_aux", "seed_pool", "finetune_set")
# The demo towers take 256-px input; 64 px keeps the ConvNeXt cheap on CPU (8x8 CLIP patches over a
# 16x16 high-resolution map: 2x2 cells per patch) without changing any code path.
TEST_IMAGE_SIZE_AUX = 64


@pytest.fixture(scope="session")
def demo_layout_for_tests(tmp_path_factory):
    """The repository's demo_assets/ when complete, else the needed demo items built into a temp root."""
    from bettersynth.demo.build import build_item, demo_items, is_complete
    from bettersynth.paths import AssetLayout, demo_layout

    layout = demo_layout()
    items = [item for item in demo_items(layout) if item.name in DEMO_ITEMS]
    if all(is_complete(item.folder, 0) for item in items):
        return layout
    layout = AssetLayout(tmp_path_factory.mktemp("train_demo"))
    for item in demo_items(layout):
        if item.name in DEMO_ITEMS:
            build_item(item, 0, force=False)
    return layout


def write_subset(records: list[dict], path) -> str:
    import json

    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def pretrain_records(demo_layout_for_tests) -> list[dict]:
    import json

    return json.loads(demo_layout_for_tests.stage1_json.read_text())


@pytest.fixture(scope="session")
def finetune_records(demo_layout_for_tests) -> list[dict]:
    import json

    return json.loads(demo_layout_for_tests.finetune_json.read_text())


def stage_argv(layout, data_path: str, output_dir, stage: str, *extra: str, adapter: str | None = None,
               per_device: int = 2, accumulation: int = 2) -> list[str]:
    """The official flags of one stage on the demo models (tiny, CPU), plus ``extra``."""
    image_folder = layout.seed_dir if stage == "pretrain" else layout.finetune_dir
    argv = ["--model_name_or_path", str(layout.llm_dir), "--version", "gemma", "--data_path", data_path,
            "--image_folder", str(image_folder), "--vision_tower", str(layout.vision_tower_dir),
            "--vision_tower_aux", str(layout.vision_tower_aux_dir), "--mm_projector_type", "mlp2x_gelu",
            "--mm_vision_select_layer", "-2", "--mm_use_im_start_end", "False", "--mm_use_im_patch_token", "False",
            "--image_size_aux", str(TEST_IMAGE_SIZE_AUX), "--bf16", "True", "--tf32", "True",
            "--output_dir", str(output_dir), "--num_train_epochs", "1",
            "--per_device_train_batch_size", str(per_device), "--per_device_eval_batch_size", "4",
            "--gradient_accumulation_steps", str(accumulation), "--evaluation_strategy", "no",
            "--save_strategy", "steps", "--save_steps", "100", "--weight_decay", "0.", "--warmup_ratio", "0.03",
            "--lr_scheduler_type", "cosine", "--logging_steps", "1", "--model_max_length", "2048",
            "--dataloader_num_workers", "0", "--lazy_preprocess", "True", "--report_to", "none"]
    if stage == "pretrain":
        argv += ["--tune_mm_mlp_adapter", "True", "--learning_rate", "1e-3"]
    else:
        argv += ["--image_aspect_ratio", "pad", "--group_by_modality_length", "True", "--learning_rate", "2e-5"]
        if adapter:
            argv += ["--pretrain_mm_mlp_adapter", adapter]
    return argv + list(extra)


def run_in_process(argv: list[str]):
    """Runs one stage in this process; returns its StageOutcome."""
    from bettersynth.train.args import parse_args
    from bettersynth.train.distributed import init_distributed
    from bettersynth.train.progress import setup_logging
    from bettersynth.train.run import run_stage

    args = parse_args(argv)
    dist = init_distributed()
    setup_logging(dist.is_main, None)
    return run_stage(args, dist)
