"""The low-frequency grayscale shading map: a per-pixel gain multiplied after the curves."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample_shading(shading: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a gain map (B, 1, h, w) to ``size`` = (H, W) (half-pixel centres, as OpenCV does)."""
    if shading.shape[-2:] == tuple(size):
        return shading
    return F.interpolate(shading, size=size, mode="bilinear", align_corners=False)


def apply_shading(image: torch.Tensor, shading: torch.Tensor) -> torch.Tensor:
    """Multiply (B, 3, H, W) by the gain map (B, 1, h, w), upsampled to (H, W). Not clamped."""
    return image * upsample_shading(shading, image.shape[-2:])
