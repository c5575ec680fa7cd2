"""Output heads shared by every preset: they turn raw network outputs into a valid adjustment.

Both heads start as the identity: their last layer is zero-initialised, and the parameterisations below map
zero to "no change" exactly, so an untrained model leaves images untouched.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Largest slope change per segment (in log space) and largest black-point shift: wide enough for strong
# exposure and colour casts, bounded so that early adversarial steps cannot blow curves up.
MAX_LOG_SLOPE = 2.5
MAX_OFFSET = 0.5
# Shading gains are limited to [1/4, 4] (two stops either way).
MAX_LOG_GAIN = 1.3862943611198906


def curves_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """Map raw outputs (B, 3, K) to monotone curves (B, 3, K) in [0, 1] on the uniform grid.

    ``raw[..., 0]`` shifts the black point; ``raw[..., 1:]`` are log slopes of the K-1 segments. Zero gives
    the identity. Monotone by construction (positive increments, then a clamp that keeps order).
    """
    k = raw.shape[-1]
    offset = MAX_OFFSET * torch.tanh(raw[..., :1])
    slopes = torch.exp(MAX_LOG_SLOPE * torch.tanh(raw[..., 1:] / MAX_LOG_SLOPE))
    increments = slopes / (k - 1)
    y = torch.cat([offset, offset + torch.cumsum(increments, dim=-1)], dim=-1)
    return y.clamp(0.0, 1.0)


def gain_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """Map raw log-gain maps to positive gains in [1/4, 4]; zero gives exactly 1."""
    return torch.exp(MAX_LOG_GAIN * torch.tanh(raw / MAX_LOG_GAIN))


def masked_pool(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``features`` (B, C, h, w) inside and outside ``mask`` (B, 1, H, W): two (B, C) vectors.

    Harmonisation is about how the foreground differs from the background, so the curves head sees their
    statistics separately rather than one global average.
    """
    # Plain ints: the ONNX export traces a fixed low-res, and "area" resizing exports only with a constant size.
    m = F.interpolate(mask, size=tuple(int(s) for s in features.shape[-2:]), mode="area")
    eps = 1e-4
    inside = (features * m).sum((2, 3)) / (m.sum((2, 3)) + eps)
    outside = (features * (1 - m)).sum((2, 3)) / ((1 - m).sum((2, 3)) + eps)
    return inside, outside


class CurvesHead(nn.Module):
    """Masked pooling of the deepest feature maps -> MLP -> 3 x K curve parameters."""

    def __init__(self, in_channels: int, n_points: int = 32, hidden: int = 256):
        super().__init__()
        self.n_points = n_points
        self.mlp = nn.Sequential(nn.Linear(2 * in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 3 * n_points))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.from_pooled(self.pool(features, mask))

    @staticmethod
    def pool(features: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """The vector the head reads: inside and outside averages of every feature map, (B, 2 * sum(C))."""
        pooled = []
        for f in features:
            inside, outside = masked_pool(f, mask)
            pooled += [inside, outside]
        return torch.cat(pooled, dim=1)

    def from_pooled(self, pooled: torch.Tensor, last: nn.Module | None = None) -> torch.Tensor:
        """Curves from the pooled vector; ``last`` replaces the final layer (a per-domain copy)."""
        raw = (self.mlp[-1] if last is None else last)(self.mlp[:-1](pooled))
        return curves_from_raw(raw.view(-1, 3, self.n_points))


class ShadingRefine(nn.Module):
    """Upsample a coarse log-gain map to the low-res size and correct it with one 3x3 conv (paper §3.1)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode="replicate")
        with torch.no_grad():  # start as the identity filter
            self.conv.weight.zero_()
            self.conv.weight[0, 0, 1, 1] = 1.0
            self.conv.bias.zero_()

    def forward(self, coarse: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        up = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
        return gain_from_raw(self.conv(up))
