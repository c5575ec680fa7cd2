"""Differentiable application of a whole adjustment: the training path and the reference for the fast path."""

from __future__ import annotations

import torch

from harmcli.ops.curves import apply_curves
from harmcli.ops.shading import apply_shading


def apply_adjustment_torch(
    composite: torch.Tensor,
    mask: torch.Tensor,
    curve_y: torch.Tensor,
    shading: torch.Tensor | None = None,
    curve_x: torch.Tensor | None = None,
) -> torch.Tensor:
    """``O = M * clamp(curves(C) * S) + (1 - M) * C``.

    Args:
        composite: (B, 3, H, W) in [0, 1].
        mask: (B, 1, H, W) soft mask in [0, 1]; 1 = foreground to adjust.
        curve_y: (B, 3, K) curve values; ``curve_x`` (B, 3, K) or None for the uniform grid.
        shading: (B, 1, h, w) positive gain map (any resolution), or None for flat.

    Returns:
        (B, 3, H, W) in [0, 1]; equal to ``composite`` wherever ``mask`` is 0.
    """
    adjusted = apply_curves(composite, curve_y, curve_x)
    if shading is not None:
        adjusted = apply_shading(adjusted, shading)
    adjusted = adjusted.clamp(0.0, 1.0)
    return composite + mask * (adjusted - composite)
