"""Gemma's input-embedding scale with the official kit's numerics (transformers 4.38).

Gemma multiplies its input embeddings by sqrt(hidden_size). transformers 4.38 (the official kit)
did it in GemmaModel on the whole input, image embeddings included, as ``inputs_embeds *
hidden_size**0.5``: a Python float, so the kernel multiplies in float32 and rounds once to the
model dtype. transformers 5 does it in the token embedding module (``GemmaTextScaledWordEmbedding``)
with the factor first cast to the weight dtype: 45.25 instead of 45.254834 in bf16 and fp16 at
hidden 2048, which moves about 2.6% of the first layer's bf16 inputs by one unit. In float32 the
two are the same product.

``use_official_input_scale(llm)`` puts an ``OfficialScaledEmbedding`` in place of the LLM's token
embedding, so every token embedding the LLM computes (training, the prompt, each generated token)
carries the official scale; ``official_input_scale`` gives the image embeddings the same. In
transformers 5 GemmaModel.forward does not scale ``inputs_embeds``, so the spliced sequence enters
the first decoder layer as it is. Called once when the model is composed (``mgm.py``)::

    use_official_input_scale(llm)
    image_embeds = official_input_scale(image_embeds, llm.config.hidden_size)
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.models.gemma.modeling_gemma import GemmaTextScaledWordEmbedding


def official_input_scale(embeds: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """``embeds * sqrt(hidden_size)`` as transformers 4.38 computed it: one product in (at least)
    float32 with the Python float factor, rounded once to the dtype of ``embeds``."""
    # Spelled out instead of ``embeds * python_float`` so the single rounding does not rest on how a
    # device's kernel treats a scalar operand. For float32 (and float64) the casts are no-ops.
    compute = torch.promote_types(embeds.dtype, torch.float32)
    return (embeds.to(compute) * hidden_size ** 0.5).to(embeds.dtype)


class OfficialScaledEmbedding(nn.Embedding):
    """A Gemma token embedding whose output carries ``official_input_scale``.

    It holds the very ``weight`` Parameter of the module it replaces, so the tied LM head, the
    state-dict keys (``model.embed_tokens.weight``) and the optimizer's parameters are unchanged.
    """

    def __init__(self, table: nn.Embedding, hidden_size: int) -> None:
        super().__init__(table.num_embeddings, table.embedding_dim, table.padding_idx, max_norm=table.max_norm,
                         norm_type=table.norm_type, scale_grad_by_freq=table.scale_grad_by_freq,
                         sparse=table.sparse, _weight=table.weight)
        # nn.Embedding wrapped _weight in a new Parameter (same storage): put the original back, or
        # the LM head would be tied to an object the model no longer holds.
        self.weight = table.weight
        self.hidden_size = hidden_size

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return official_input_scale(super().forward(input_ids), self.hidden_size)


def use_official_input_scale(llm: PreTrainedModel) -> None:
    """Replaces a Gemma LLM's token embedding by an ``OfficialScaledEmbedding`` (once; idempotent)."""
    table = llm.get_input_embeddings()
    if isinstance(table, OfficialScaledEmbedding):
        return
    if not isinstance(table, GemmaTextScaledWordEmbedding):
        raise TypeError(f"expected Gemma's GemmaTextScaledWordEmbedding as the LLM's input embedding, "
                        f"got {type(table).__name__}")
    llm.set_input_embeddings(OfficialScaledEmbedding(table, llm.config.hidden_size))
