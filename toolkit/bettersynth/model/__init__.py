"""bettersynth.model: the MGM-2B vision-language model, written from ../shared/docs/mgm-spec.md.

One file per part, composed by injection (nothing here reads CLI arguments):
- config.py        MGMOptions (typed, validated; official behaviour by default)
- preprocess.py    ImagePreprocessor: image file (the one rule of data/image_check.py) → image_aux [3, A, A]
- vision_tower.py  CLIPVisionTower: CLIP hidden_states[-2] without CLS, frozen
- aux_tower.py     ConvNeXtAuxTower: OpenCLIP ConvNeXt stem + stages → fused [B, 2880, A/4, A/4], frozen
- mining.py        PatchInfoMining: each CLIP patch attends to the high-res cells under it
- projector.py     projector registry (mlp2x_gelu, linear)
- splice.py        image embeddings spliced at the image placeholder, truncation, padding
- input_scale.py   Gemma's sqrt(hidden) input scale with the official (transformers 4.38) numerics
- mgm.py           MGMForCausalLM: forward → (loss_sum, num_tokens); greedy batched generate
- assemble.py      the model from component configs (random weights; meta/cuda/cpu)
- real_size.py     the real MGM-2B configs and builder (parameter counts, benchmarks)
- io.py            build_mgm from model folders; mm_projector.bin; relocatable checkpoint folder

What trains in each stage is bettersynth.train.stages (the stage spec). Heavy imports (torch,
transformers, timm) happen in the submodules, not here.
"""
