"""Typed options of the MGM-2B model (the settings that are not part of the component configs).

Every deviation from the official kit is a named option here, with the official behaviour as the
default. The options are saved inside every checkpoint's ``config.json`` (``mgm_options``) and
validated when constructed, so a bad value fails before anything is built::

    from bettersynth.model.config import MGMOptions
    options = MGMOptions(image_size_aux=768, attn_implementation="sdpa")
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import Any

from bettersynth.model.projector import PROJECTORS

# Gemma MLP activation: the official run (transformers 4.38) used exact GELU; the model was trained
# with the tanh approximation. Maps our option value to transformers' activation name.
GEMMA_ACTIVATIONS = {"exact": "gelu", "tanh": "gelu_pytorch_tanh"}
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


@dataclass(frozen=True)
class MGMOptions:
    """MGM model options (names follow the official kit's flags where one exists).

    mm_projector_type: registry name of the projector (``projector.PROJECTORS``).
    mm_vision_select_layer: CLIP hidden-state index whose patch tokens are used (-2: output of
        the second-to-last layer, before the post layer norm).
    image_size_aux: side of the high-resolution input of the ConvNeXt tower (real 768).
    gemma_activation: "exact" (official, transformers 4.38 behaviour) or "tanh".
    aux_drop_path_in_training: official quirk: the frozen ConvNeXt keeps stochastic depth active
        while the model is in training mode. False keeps the tower in eval mode always.
    aux_channels_last: run the ConvNeXt in channels-last memory format (same math, faster on GPU).
    model_max_length: spliced sequences (image tokens included) are truncated to this length.
    attn_implementation: LLM and CLIP attention kernel ("flash_attention_2" needs flash_attn).
    """

    mm_projector_type: str = "mlp2x_gelu"
    mm_vision_select_layer: int = -2
    image_size_aux: int = 768
    gemma_activation: str = "exact"
    aux_drop_path_in_training: bool = True
    aux_channels_last: bool = True
    model_max_length: int = 2048
    attn_implementation: str = "sdpa"

    def __post_init__(self) -> None:
        if self.mm_projector_type not in PROJECTORS:
            raise ValueError(f"unknown mm_projector_type {self.mm_projector_type!r}; known: {sorted(PROJECTORS)}")
        if self.gemma_activation not in GEMMA_ACTIVATIONS:
            raise ValueError(f"gemma_activation must be one of {sorted(GEMMA_ACTIVATIONS)}, "
                             f"got {self.gemma_activation!r}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, "
                             f"got {self.attn_implementation!r}")
        if self.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
            raise ValueError("attn_implementation='flash_attention_2' needs the flash_attn package, "
                             "which is not importable here; use 'sdpa'")
        if self.image_size_aux <= 0 or self.model_max_length <= 0:
            raise ValueError(f"image_size_aux and model_max_length must be positive, got "
                             f"{self.image_size_aux} and {self.model_max_length}")
        if self.mm_vision_select_layer == 0:
            raise ValueError("mm_vision_select_layer 0 selects the patch embeddings, not a CLIP layer")

    @property
    def gemma_hidden_act(self) -> str:
        """transformers' name of the Gemma MLP activation these options ask for."""
        return GEMMA_ACTIVATIONS[self.gemma_activation]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MGMOptions:
        """Builds options from a saved dict; unknown keys are an error (not silently dropped)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown MGM option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)
