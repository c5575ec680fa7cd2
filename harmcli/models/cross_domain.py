"""The training-only parts of the cross-domain network (Cao et al., BMVC 2022, §4): a domain discriminator on the
domain-specific stage's features and two style classifiers. None of them is needed to harmonize, so none is
saved in a weights file; the training checkpoint holds them.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from harmcli.models.heads import masked_pool

N_STYLES = 10  # the paper's 10 lighting styles (3 weathers x 3 times of day, plus night)


class StyleClassifier(nn.Module):
    """Style logits (B, 10) from features.

    ``P_in`` reads f_in, the (B, C, h, w) output of the domain-specific stage, pooled inside and outside the mask
    (a composite mixes two styles, one per side); ``P_out`` reads f_out, the (B, D) vector the curves head reads,
    which already holds both sides' averages. Both are small MLPs: their job is to shape the features, not to
    be good classifiers on their own.
    """

    def __init__(self, in_features: int, hidden: int = 128, n_styles: int = N_STYLES):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_styles))

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if features.dim() == 4:
            inside, outside = masked_pool(features, mask)
            features = torch.cat([inside, outside], 1)
        return self.mlp(features)


class DomainDiscriminator(nn.Module):
    """Patch critic on f_in (B, C, h, w) -> (B, 1, h/4, w/4) unbounded scores (hinge loss, eq. 1): positive for
    photo features, negative for rendered ones. Two strided convolutions: f_in is already at stride 4, and the
    domain gap the encoder must hide is in local statistics (noise, shading, texture), not layout."""

    def __init__(self, in_channels: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 1, 3, padding=1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)
