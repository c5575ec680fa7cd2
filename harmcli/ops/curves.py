"""Piecewise-linear RGB curves as differentiable torch functions.

A curve set is ``y`` of shape (B, 3, K) with values in [0, 1], evaluated at control points ``x`` of the same
shape (strictly increasing, ``x[..., 0] == 0`` and ``x[..., -1] == 1``). ``x=None`` means the uniform grid
``k / (K - 1)``, which is what the networks predict; edited curves (JSON, ACV) may use any ``x``.
"""

from __future__ import annotations

import torch


def uniform_knots(n_points: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Return the ``n_points`` uniform control-point positions ``k / (n_points - 1)`` as a 1-D tensor."""
    return torch.linspace(0.0, 1.0, n_points, device=device, dtype=dtype)


def identity_curves(batch: int = 1, n_points: int = 32, *, device=None) -> torch.Tensor:
    """Return ``y`` of shape (batch, 3, n_points) for the identity curves on the uniform grid."""
    return uniform_knots(n_points, device=device).expand(batch, 3, n_points).clone()


def apply_curves(image: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    """Apply one curve per channel.

    Args:
        image: (B, 3, H, W), values in [0, 1] (clamped before lookup).
        y: (B, 3, K) curve values at the control points, in [0, 1].
        x: (B, 3, K) control-point positions, or None for the uniform grid.

    Returns:
        (B, 3, H, W) in [0, 1]. Differentiable with respect to ``image`` and ``y``.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
    if y.dim() != 3 or y.shape[1] != 3 or y.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"y must be (B, 3, K), got {tuple(y.shape)}")
    b, _, h, w = image.shape
    k = y.shape[-1]
    y = y.expand(b, 3, k)
    v = image.clamp(0.0, 1.0).reshape(b, 3, h * w)
    if x is None:
        t = v * (k - 1)
        idx = t.detach().floor().clamp(0, k - 2).long()
        frac = t - idx.to(t.dtype)
    else:
        x = x.expand(b, 3, k).contiguous()
        # searchsorted finds the segment; the last point belongs to the last segment.
        idx = (torch.searchsorted(x, v.detach().contiguous(), right=True) - 1).clamp(0, k - 2)
        x0 = torch.gather(x, 2, idx)
        x1 = torch.gather(x, 2, idx + 1)
        frac = (v - x0) / (x1 - x0)
    y0 = torch.gather(y, 2, idx)
    y1 = torch.gather(y, 2, idx + 1)
    return (y0 + frac * (y1 - y0)).reshape(b, 3, h, w)


def blend_curves_toward_identity(y: torch.Tensor, strength: float, x: torch.Tensor | None = None) -> torch.Tensor:
    """Scale a curve's effect: 0 gives the identity, 1 the curve itself (linear in the output)."""
    if x is None:
        x = uniform_knots(y.shape[-1], device=y.device, dtype=y.dtype)
    return (x + strength * (y - x)).clamp(0.0, 1.0)
