"""Real-size random-weight folders of the recipe palette's models, for bench/data_throughput.py.

Each folder has the real model's architecture and sizes and the on-disk layout its Data-Juicer
built-in and our fast operator load (weights random, float32 as the real checkpoints are stored;
tokenizers are the demo's, trained on the bench's captions, with the real vocabulary sizes in the
configs):
  - ``blip-itm-base-coco``: Salesforce/blip-itm-base-coco, ViT-B/16 at 384 px + BERT-base text encoder;
  - ``owlvit-base-patch32``: google/owlvit-base-patch32, ViT-B/32 at 768 px (576 boxes) + text 512/12;
  - ``aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE``: CLIP ViT-L/14 at 224 px, projection 768,
    LAION's v2 linear head (the folder name is what the built-in picks its class by);
  - ``watermark_detector``: amrul-hzz/watermark_detector, ViT-B/16 at 224 px, two classes;
  - ``stable-diffusion-v1-4``: CompVis/stable-diffusion-v1-4's UNet (860M), VAE and CLIP ViT-L/14 text
    encoder with its PNDM scheduler, 512 px; no safety checker (a random one flags at random, and
    the built-in redraws a flagged image forever), so neither operator runs one;
  - ``nltk_data``: the demo's punkt_tab and tagger, which tag the bench's scene captions.
Built on the GPU when there is one. Not run on its own: ``data_throughput.py`` calls ``write_recipe_models``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from bettersynth.constants import CLIP_MEAN, CLIP_STD
from bettersynth.demo import tokenizer as tok
from bettersynth.demo.recipe_models_extra import OWLVIT_HEAD_STD, build_recipe_nltk_data

CLIP_VOCAB = 49408
VIT_B = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
VIT_L = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
AESTHETICS_HEAD = ((0, 768, 1024), (2, 1024, 128), (4, 128, 64), (6, 64, 16), (7, 16, 1))  # (index, in, out)
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
NAMES = dict(itm="blip-itm-base-coco", grounding="owlvit-base-patch32",
             aesthetics="aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE", watermark="watermark_detector",
             regeneration="stable-diffusion-v1-4", nltk="nltk_data")


def _vit(tiny: bool, real: dict) -> dict:
    return dict(real, **TINY) if tiny else dict(real)


def write_blip_itm(folder: Path, texts: list[str], tiny: bool) -> None:
    from transformers import BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor, BlipProcessor

    tokenizer = tok.bert_tokenizer(texts)
    vision = dict(_vit(tiny, VIT_B), image_size=384, patch_size=16)
    text = dict(_vit(tiny, VIT_B), vocab_size=30524, encoder_hidden_size=vision["hidden_size"],
                bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
                sep_token_id=tokenizer.sep_token_id, eos_token_id=tokenizer.sep_token_id)
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=256, image_text_hidden_size=256)
    BlipForImageTextRetrieval(config).save_pretrained(folder)
    image_processor = BlipImageProcessor(size={"height": 384, "width": 384}, image_mean=list(CLIP_MEAN),
                                         image_std=list(CLIP_STD))
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def write_owlvit(folder: Path, texts: list[str], tiny: bool) -> None:
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor, OwlViTProcessor

    tokenizer = tok.clip_tokenizer(texts)
    tokenizer.model_max_length = 16  # OWL-ViT's queries are at most 16 tokens
    text = dict(_vit(tiny, dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8)),
                vocab_size=CLIP_VOCAB, max_position_embeddings=16, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(_vit(tiny, VIT_B), image_size=768, patch_size=32)
    # the class head maps image features to the text width, which the query projection must match
    model = OwlViTForObjectDetection(OwlViTConfig(text_config=text, vision_config=vision,
                                                  projection_dim=text["hidden_size"]))
    with torch.no_grad():  # as the demo does: at std 1 the random heads saturate (every box the whole image)
        for weight in [*model.box_head.parameters(), *model.class_head.parameters()]:
            weight.normal_(0.0, OWLVIT_HEAD_STD)
    model.save_pretrained(folder)
    size = {"height": 768, "width": 768}
    image_processor = OwlViTImageProcessor(size=size, crop_size=size, do_center_crop=False,
                                           image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def write_aesthetics(folder: Path, texts: list[str], tiny: bool) -> None:
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(**_vit(tiny, VIT_L), image_size=224, patch_size=14, projection_dim=768)
    state = CLIPVisionModelWithProjection(config).state_dict()
    for index, n_in, n_out in AESTHETICS_HEAD:
        layer = torch.nn.Linear(n_in, n_out)
        state[f"layers.{index}.weight"], state[f"layers.{index}.bias"] = layer.weight, layer.bias
    config.architectures = ["AestheticsPredictorV2Linear"]
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    save_file({name: value.detach().cpu().contiguous() for name, value in state.items()},
              folder / "model.safetensors", metadata={"format": "pt"})
    image_processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                         image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    CLIPProcessor(image_processor=image_processor, tokenizer=tok.clip_tokenizer(texts)).save_pretrained(folder)
    image_processor.save_pretrained(folder)


def write_watermark(folder: Path, tiny: bool) -> None:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    ViTForImageClassification(ViTConfig(num_labels=2, image_size=224, patch_size=16,
                                        **_vit(tiny, VIT_B))).save_pretrained(folder)
    ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3,
                      image_std=[0.5] * 3).save_pretrained(folder)


def write_stable_diffusion(folder: Path, texts: list[str], tiny: bool) -> None:
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tok.clip_tokenizer(texts)
    text = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        **(dict(text, **TINY) if tiny else text), vocab_size=CLIP_VOCAB, max_position_embeddings=77,
        hidden_act="quick_gelu", bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    width = text_encoder.config.hidden_size
    if tiny:
        unet = UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1,
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=width)
        vae = AutoencoderKL(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            sample_size=64)
    else:  # SD v1-4's unet/config.json and vae/config.json (the rest are diffusers' defaults)
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=width, attention_head_dim=8)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            sample_size=512)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder)


def write_recipe_models(root: Path, texts: list[str], families: list[str], tiny: bool,
                        seed: int = 0) -> dict[str, Path]:
    """The folders the ``families`` need (skipping those already written), by family name and 'nltk'."""
    folders = {family: root / NAMES[family] for family in NAMES}
    writers = dict(itm=lambda f: write_blip_itm(f, texts, tiny), grounding=lambda f: write_owlvit(f, texts, tiny),
                   aesthetics=lambda f: write_aesthetics(f, texts, tiny), watermark=lambda f: write_watermark(f, tiny),
                   regeneration=lambda f: write_stable_diffusion(f, texts, tiny))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for family in families:
        if family in writers and not (folders[family] / ("model_index.json" if family == "regeneration"
                                                          else "config.json")).exists():
            torch.manual_seed(seed)
            with torch.device(device):
                writers[family](folders[family])
    if "grounding" in families and not (folders["nltk"] / "taggers").exists():
        build_recipe_nltk_data(folders["nltk"], texts)
    if device == "cuda":
        torch.cuda.empty_cache()
    return folders
