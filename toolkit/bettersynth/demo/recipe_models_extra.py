"""Tiny stand-ins for the grounding and regeneration recipe assets, in the real folder layouts.

- `build_recipe_owlvit`: google/owlvit-base-patch32 (`OwlViTForObjectDetection` + `OwlViTProcessor`),
  for phrase_grounding_recall_filter and its fast version;
- `build_recipe_nltk_data`: the two NLTK data packages the grounding filters' noun phrases need,
  in NLTK's layout (`tokenizers/punkt_tab/english/`, `taggers/averaged_perceptron_tagger_eng/`).
  NLTK's trained data is downloaded from NLTK's own server (no pip or Debian package ships it), so
  the demo makes its own: Punkt parameters trained here on the demo corpus, and a perceptron tagger
  whose tag dictionary holds the Penn Treebank tag of every word the demo writes (any other word
  is tagged NN by the model's bias weight). Both load with NLTK's own classes, as the real ones do;
- `build_recipe_stable_diffusion`: CompVis/stable-diffusion-v1-4 (`StableDiffusionPipeline`:
  model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/ with SD v1-4's PNDM
  settings; no safety checker), 64 px images from 8x8 latents (real: 512 px, 64x64).
The weights are random (seeded) and the files are written in a fixed order: same seed, same bytes.
Called by `bettersynth.demo.build`; not run on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bettersynth.constants import CLIP_MEAN, CLIP_STD
from bettersynth.demo import tokenizer as tok
from bettersynth.demo.scenes import COLOURS, NUMBER_WORDS, SHAPES, SIGN_WORDS

OWLVIT_IMAGE_SIZE = 96   # real 768
OWLVIT_PATCH_SIZE = 16   # real 32: 6x6 patches here, 24x24 there
OWLVIT_TEXT_LENGTH = 16  # as real: OWL-ViT's queries are at most 16 tokens
# The BPE trainer breaks ties between equally frequent pairs in an order that changes from process to
# process; on this corpus the first tie falls past ~650 entries, so a smaller vocabulary keeps the
# tokenizer (and the demo's bytes) the same in every build.
OWLVIT_VOCAB_SIZE = 900
OWLVIT_HEAD_STD = 0.1    # the box and class heads' random weights (see build_recipe_owlvit)
SD_LATENT_SIZE = 8       # real 64; the VAE's four blocks scale by 8 as the real one does

# Penn Treebank tags of the demo's words (scenes.caption, seed_pool's noise captions, questions).
DEMO_TAGS = {
    **{word: "DT" for word in ("a", "an", "the", "this", "these", "all")},
    **{word: "CD" for word in NUMBER_WORDS[1:]}, "zero": "CD",
    **{colour: "JJ" for colour in COLOURS},
    **{shape: "NN" for shape in SHAPES}, **{f"{shape}s": "NNS" for shape in SHAPES},
    **{word: "NN" for word in ("background", "backdrop", "picture", "image", "photo", "drawing", "sign", "word",
                               "text", "answer", "question", "option", "letter", "phrase", "shape", "colour",
                               "quality", "download", "wallpaper", "stock", "vector", "illustration",
                               "template", "design", "art", "print", "poster", "royalty", "description",
                               "summary", "interpretation", "content", "middle", "total")},
    **{word: "NNS" for word in ("pixels", "shapes", "letters", "choices", "words", "images")},
    **{word: "JJ" for word in ("simple", "short", "cheap", "high", "free", "terse", "informative", "concise",
                               "visual", "single", "graphic", "hd", "given")},
    "best": "JJS",
    **{word: "IN" for word in ("on", "of", "in", "with", "by", "from", "at")},
    "there": "EX", "that": "WDT", "what": "WP", "which": "WDT", "how": "WRB", "many": "JJ",
    "is": "VBZ", "says": "VBZ", "reads": "VBZ", "shows": "VBZ", "are": "VBP", "written": "VBN",
    "describe": "VB", "give": "VB", "summarize": "VB", "write": "VB", "share": "VB",
    "and": "CC", "but": "CC", "or": "CC", "it": "PRP", "briefly": "RB", "directly": "RB", "using": "VBG",
    ",": ",", ".": ".", "?": ".", "!": ".", ":": ":", "-": ":", "(": "(", ")": ")", "``": "``", "''": "''",
    **{word.lower(): "NNP" for word in SIGN_WORDS if word.isalpha()},
}


def build_recipe_owlvit(folder: Path, texts: list[str], seed: int) -> None:
    """google/owlvit-base-patch32 for the phrase-grounding filters: CLIP-style towers + box and class heads."""
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor, OwlViTProcessor

    tokenizer = tok.clip_tokenizer(texts, vocab_size=OWLVIT_VOCAB_SIZE)
    tokenizer.model_max_length = OWLVIT_TEXT_LENGTH
    text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=OWLVIT_TEXT_LENGTH, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=OWLVIT_IMAGE_SIZE, patch_size=OWLVIT_PATCH_SIZE)
    config = OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32)
    size = {"height": OWLVIT_IMAGE_SIZE, "width": OWLVIT_IMAGE_SIZE}
    image_processor = OwlViTImageProcessor(size=size, crop_size=size, do_center_crop=False,
                                           image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    torch.manual_seed(seed)
    model = OwlViTForObjectDetection(config)
    # At transformers' initialisation (std 1) the random heads saturate: every box covers the whole
    # image and every score is 1.0, so every recall would be 0. At std 0.1 the boxes are patch-sized
    # and the scores and phrase labels differ from box to box, as a trained model's do.
    with torch.no_grad():
        for weight in [*model.box_head.parameters(), *model.class_head.parameters()]:
            weight.normal_(0.0, OWLVIT_HEAD_STD)
    model.save_pretrained(folder)
    OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def build_recipe_nltk_data(folder: Path, texts: list[str]) -> None:
    """NLTK's punkt_tab (English) and averaged_perceptron_tagger_eng packages, demo-sized."""
    from nltk.tokenize.punkt import PunktTrainer

    params = PunktTrainer("\n".join(texts)).get_params()
    punkt = folder / "tokenizers" / "punkt_tab" / "english"
    # the files nltk's save_punkt_params writes, with each set sorted so the bytes do not depend on hash order
    _write_lines(punkt / "collocations.tab", sorted("\t".join(pair) for pair in params.collocations))
    _write_lines(punkt / "sent_starters.txt", sorted(params.sent_starters))
    _write_lines(punkt / "abbrev_types.txt", sorted(params.abbrev_types))
    _write_lines(punkt / "ortho_context.tab",
                 [f"{word}\t{flags}" for word, flags in sorted(params.ortho_context.items())])
    tagger = folder / "taggers" / "averaged_perceptron_tagger_eng"
    tagger.mkdir(parents=True)
    parts = {"weights": {"bias": {"NN": 1.0}}, "tagdict": dict(sorted(DEMO_TAGS.items())),
             "classes": sorted(set(DEMO_TAGS.values()) | {"NN"})}
    for part, value in parts.items():
        (tagger / f"averaged_perceptron_tagger_eng.{part}.json").write_text(json.dumps(value), encoding="utf-8")


def build_recipe_stable_diffusion(folder: Path, texts: list[str], seed: int) -> None:
    """CompVis/stable-diffusion-v1-4 for the regeneration mapper: UNet, VAE, CLIP text encoder, PNDM scheduler."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tok.clip_tokenizer(texts)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    unet = UNet2DConditionModel(
        sample_size=SD_LATENT_SIZE, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, sample_size=SD_LATENT_SIZE * 8)
    # the scheduler settings of stable-diffusion-v1-4's scheduler_config.json
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipeline.save_pretrained(folder)
