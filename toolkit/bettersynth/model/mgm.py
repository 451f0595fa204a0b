"""MGMForCausalLM: the MGM-2B vision-language model, composed from built parts (no file or CLI access).

    model = MGMForCausalLM(llm, vision_tower, aux_tower, mining, projector, options)
    out = model(**batch)                 # MGMOutput(loss_sum, num_tokens)
    loss = out.loss_sum / out.num_tokens
    new_ids = model.eval().generate(input_ids, attention_mask, images_aux, has_image, max_new_tokens=128)

Image path: ``images_aux`` [B, 3, A, A] (normalised) → bilinear resize to the CLIP size → CLIP patch
features; ConvNeXt fused map of ``images_aux``; patch info mining; projector → [B, N, H] image
embeddings, spliced at the image placeholder (``splice.py``).

Gemma scales its input embeddings by sqrt(hidden). transformers 4.38 (official) applied that
factor inside the model to every input embedding, image ones included, with float32 math on the
Python float; transformers 5 applies it in the token embedding module only (with the factor rounded
to the weight dtype), so embeddings passed as ``inputs_embeds`` arrive unscaled. The constructor
therefore gives the LLM a token embedding with the official scale, and ``embed`` scales the image
embeddings the same way (``input_scale.py``): the decoder's input equals the official one in bf16
too.

Training runs the LLM without a padding mask (right padding under the causal mask makes it
unnecessary; see ``forward``). The loss runs the LM head only at supervised positions
(labels shifted by one != IGNORE_INDEX) and
returns the SUM of token cross-entropies with the token count; the trainer chooses the divisor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig, PreTrainedModel

from bettersynth.constants import IGNORE_INDEX
from bettersynth.model.aux_tower import ConvNeXtAuxTower
from bettersynth.model.config import MGMOptions
from bettersynth.model.input_scale import official_input_scale, use_official_input_scale
from bettersynth.model.mining import PatchInfoMining
from bettersynth.model.projector import projector_dims
from bettersynth.model.splice import SplicedBatch, splice_image_embeddings
from bettersynth.model.vision_tower import CLIPVisionTower


@dataclass
class MGMOutput:
    loss_sum: torch.Tensor           # scalar: sum of token cross-entropies over supervised positions
    num_tokens: torch.Tensor         # scalar long: number of supervised positions
    logits: torch.Tensor | None = None  # [B, T, V] over the spliced sequence, only when asked for


class MGMForCausalLM(nn.Module):
    """LLM + frozen CLIP and ConvNeXt towers + patch info mining + projector."""

    def __init__(self, llm: PreTrainedModel, vision_tower: CLIPVisionTower, aux_tower: ConvNeXtAuxTower,
                 mining: PatchInfoMining, projector: nn.Module, options: MGMOptions) -> None:
        super().__init__()
        if vision_tower.hidden_size != mining.clip_dim or aux_tower.hidden_size != mining.aux_dim:
            raise ValueError(f"mining sizes ({mining.clip_dim}, {mining.aux_dim}) do not match the towers "
                             f"({vision_tower.hidden_size}, {aux_tower.hidden_size})")
        if projector_dims(projector) != (mining.clip_dim, llm.config.hidden_size):
            raise ValueError(f"projector maps {projector_dims(projector)}, need "
                             f"({mining.clip_dim}, {llm.config.hidden_size})")
        PatchInfoMining.patch_grid(vision_tower.num_patches, options.image_size_aux // aux_tower.reduction)
        use_official_input_scale(llm)
        self.llm = llm
        self.vision_tower = vision_tower
        self.aux_tower = aux_tower
        self.mining = mining
        self.projector = projector
        self.options = options

    @property
    def num_image_tokens(self) -> int:
        return self.vision_tower.num_patches

    @property
    def device(self) -> torch.device:
        return next(self.projector.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the trainable image path (mining and projector)."""
        return next(self.projector.parameters()).dtype

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the LLM's decoder layers in the backward pass (non-reentrant checkpointing)."""
        self.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def compile_blocks(self) -> None:
        """``torch.compile`` the LLM's decoder layers and the ConvNeXt stages (compiled on first use).

        Same math: inductor fuses the elementwise work (norms, activations, rotary embeddings,
        residuals, layer scale) around the same matrix products. The LLM layers share one graph for
        any sequence length (micro-batches are padded to their longest sample). Each ConvNeXt stage
        is one graph: its blocks differ in drop-path rate, which a per-block graph would recompile
        for. The drop path keeps PyTorch's own random draws (``fallback_random``), so a seed drops
        the same samples as without compiling. The CLIP tower stays eager: compiled, it measured
        slower (bench/RESULTS.md).
        """
        for layer in self.llm.get_decoder().layers:
            layer.compile(dynamic=True)
        for stage in self.aux_tower.stages:
            stage.compile(dynamic=False, options={"fallback_random": True})

    def encode_images(self, images_aux: torch.Tensor, images_per_pass: int | None = None) -> torch.Tensor:
        """[B, 3, A, A] normalised high-res images → [B, N, H] image embeddings (before Gemma's scale).

        ``images_per_pass`` runs the image path over that many images at a time (None: all at once).
        Every image is encoded on its own either way, so only the memory changes: the fused ConvNeXt
        map of a real-size image is [2880, 192, 192], 0.4 GiB in float32, which at an eval batch of
        32 was most of the eval's 29 GiB (bench/RESULTS.md).
        """
        expected = (3, self.options.image_size_aux, self.options.image_size_aux)
        if tuple(images_aux.shape[1:]) != expected:
            raise ValueError(f"images_aux must be [B, {expected}], got {tuple(images_aux.shape)}")
        if images_per_pass is not None and images_per_pass < 1:
            raise ValueError(f"images_per_pass must be >= 1, got {images_per_pass}")
        if images_per_pass is not None and images_per_pass < len(images_aux):
            return torch.cat([self._encode_pass(part) for part in images_aux.split(images_per_pass)])
        return self._encode_pass(images_aux)

    def _encode_pass(self, images_aux: torch.Tensor) -> torch.Tensor:
        side = self.vision_tower.image_size
        low_res = F.interpolate(images_aux.float(), size=(side, side), mode="bilinear", align_corners=False)
        clip_features = self.vision_tower(low_res)
        aux_map = self.aux_tower(images_aux)
        features = self.mining(clip_features.to(self.dtype), aux_map.to(self.dtype))
        return self.projector(features)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images_aux: torch.Tensor,
              has_image: torch.Tensor, padding_side: str, labels: torch.Tensor | None = None,
              images_per_pass: int | None = None, image_rows: torch.Tensor | None = None) -> SplicedBatch:
        """Runs the image path and splices the image embeddings into the token embeddings, both with
        Gemma's input scale (the official numerics). ``image_rows`` [B] names each row's image in
        ``images_aux`` (rows that share an image, MMBench's circular copies, have it encoded once);
        None: row i has image i."""
        embedding = self.llm.get_input_embeddings()
        encoded = self.encode_images(images_aux, images_per_pass)
        if image_rows is not None:
            if image_rows.shape != (input_ids.shape[0],):
                raise ValueError(f"image_rows must name one image per row ({input_ids.shape[0]}), "
                                 f"got shape {tuple(image_rows.shape)}")
            encoded = encoded[image_rows]
        image_embeds = official_input_scale(encoded.to(embedding.weight.dtype), self.llm.config.hidden_size)
        return splice_image_embeddings(input_ids, attention_mask, has_image, image_embeds, embedding,
                                       self.options.model_max_length, padding_side, labels=labels)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor,
                images_aux: torch.Tensor, has_image: torch.Tensor, return_logits: bool = False) -> MGMOutput:
        """Right-padded batch → summed supervised cross-entropy and the number of supervised tokens."""
        spliced = self.embed(input_ids, attention_mask, images_aux, has_image, "right", labels=labels)
        # Right padding puts every pad after its row's real tokens, so under the causal mask no real
        # token ever attends to a pad: the padding mask would change only the pads' own outputs,
        # which carry no label. Leaving it out gives the same loss and gradients and lets SDPA use
        # its flash kernel (a mask forces the slower memory-efficient one).
        hidden = self.llm.get_decoder()(inputs_embeds=spliced.inputs_embeds, attention_mask=None,
                                        position_ids=spliced.position_ids, use_cache=False).last_hidden_state
        head = self.llm.get_output_embeddings()
        targets = spliced.labels[:, 1:]
        supervised = targets != IGNORE_INDEX
        logits = head(hidden[:, :-1][supervised]).float()
        loss_sum = F.cross_entropy(logits, targets[supervised], reduction="sum")
        return MGMOutput(loss_sum=loss_sum, num_tokens=supervised.sum(),
                         logits=head(hidden) if return_logits else None)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images_aux: torch.Tensor,
                 has_image: torch.Tensor, max_new_tokens: int, eos_token_id: int | None = None,
                 pad_token_id: int | None = None, images_per_pass: int | None = None,
                 image_rows: torch.Tensor | None = None) -> torch.LongTensor:
        """Greedy decoding with KV cache → new token ids [B, T] (``pad_token_id`` after each eos).

        The prompt's real tokens are taken from ``attention_mask`` (left padding expected, any
        padding works); the spliced prompts are left-padded so batched answers equal one-by-one ones.
        ``images_per_pass`` bounds the image path's memory (``encode_images``); ``image_rows`` lets
        rows share images (``embed``).
        """
        if self.training:
            raise RuntimeError("generate() needs eval mode (call model.eval()): the aux tower's drop path "
                               "is active in training mode")
        config = self.llm.config
        eos = config.eos_token_id if eos_token_id is None else eos_token_id
        pad = config.pad_token_id if pad_token_id is None else pad_token_id
        spliced = self.embed(input_ids, attention_mask, images_aux, has_image, "left", images_per_pass=images_per_pass,
                             image_rows=image_rows)
        generation_config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                             eos_token_id=eos, pad_token_id=pad, bos_token_id=config.bos_token_id)
        return self.llm.generate(inputs_embeds=spliced.inputs_embeds, attention_mask=spliced.attention_mask.long(),
                                 generation_config=generation_config)
