"""The LAION aesthetics predictors of ``shunk031/aesthetics-predictor-*`` folders, with transformers alone.

Not an operator; imported by ``fast_image_aesthetics_filter`` when it loads a model (importing
transformers' CLIP takes seconds, so ``import ops`` does not). Data-Juicer's
``image_aesthetics_filter`` loads these folders with the simple-aesthetics-predictor package, whose
every release declares transformers < 5; this module reads the same folders (config.json, weights,
processor) without it, in the package's parameter layout: a ``CLIPVisionModelWithProjection``, then
the LAION head on the L2-normalised image embedding, under ``predictor.*`` (v1: one linear layer) or
``layers.*`` (v2: linear 1024-128-64-16-1, with ReLUs in the ReLU variant; the dropout layers, idle
at inference, keep the saved layer indices). The head is chosen by the class name the folder's
config.json records under ``architectures``.

    model = AestheticsPredictor.from_pretrained(folder)   # folder of AestheticsPredictorV2Linear
    scores = model(pixel_values)                          # [B], LAION's 0-10 scale
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

V2_WIDTHS = (1024, 128, 64, 16, 1)
V2_DROPOUTS = (0.2, 0.2, 0.1)  # after the first three linear layers


def _v2_head(width: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for number, (n_in, n_out) in enumerate(zip((width,) + V2_WIDTHS[:-1], V2_WIDTHS)):
        layers.append(nn.Linear(n_in, n_out))
        if relu and number < len(V2_WIDTHS) - 1:
            layers.append(nn.ReLU())
        if number < len(V2_DROPOUTS):
            layers.append(nn.Dropout(V2_DROPOUTS[number]))
    return nn.Sequential(*layers)


# architecture name in config.json -> (attribute holding the head, head for a projection width)
HEADS = {
    "AestheticsPredictorV1": ("predictor", lambda width: nn.Linear(width, 1)),
    "AestheticsPredictorV2Linear": ("layers", lambda width: _v2_head(width, relu=False)),
    "AestheticsPredictorV2ReLU": ("layers", lambda width: _v2_head(width, relu=True)),
}


class AestheticsPredictor(CLIPVisionModelWithProjection):
    """CLIP vision tower with projection and the LAION aesthetics head the folder's config names."""

    def __init__(self, config: CLIPVisionConfig):
        super().__init__(config)
        architecture = (config.architectures or ["<none>"])[0]
        if architecture not in HEADS:
            raise ValueError(f"config.json names architecture {architecture!r}; an aesthetics predictor folder "
                             f"names one of {sorted(HEADS)}")
        self.head_attribute, make_head = HEADS[architecture]
        self.add_module(self.head_attribute, make_head(config.projection_dim))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeds = super().forward(pixel_values=pixel_values).image_embeds
        embeds = embeds / embeds.norm(dim=-1, keepdim=True)
        return getattr(self, self.head_attribute)(embeds).squeeze(-1)
