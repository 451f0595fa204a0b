"""Projectors from the mined vision features to the LLM's embedding space, chosen by explicit name.

``build_projector("mlp2x_gelu", 1024, 2048)`` gives Linear(1024→2048), exact GELU,
Linear(2048→2048) (the official MGM-2B projector, 6,295,552 parameters). Module indices follow the
official ``mm_projector`` so that ``mm_projector.bin`` keys map one to one.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def _linear(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Linear(in_dim, out_dim)


def _mlp2x_gelu(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


PROJECTORS: dict[str, Callable[[int, int], nn.Module]] = {
    "linear": _linear,
    "mlp2x_gelu": _mlp2x_gelu,
}


def build_projector(name: str, in_dim: int, out_dim: int) -> nn.Module:
    """A freshly initialised projector (PyTorch default init, from the global RNG)."""
    if name not in PROJECTORS:
        raise ValueError(f"unknown projector {name!r}; known: {sorted(PROJECTORS)}")
    return PROJECTORS[name](in_dim, out_dim)


def projector_dims(projector: nn.Module) -> tuple[int, int]:
    """(input, output) feature sizes of a projector built by ``build_projector``."""
    linears = [m for m in projector.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"projector has no Linear layer: {projector}")
    return linears[0].in_features, linears[-1].out_features
