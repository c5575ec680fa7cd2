"""What every harmonization network shares: input normalisation and the two-stage output.

A network sees the composite, the background and the mask at its low-res size and returns an adjustment:
``curve_y`` (B, 3, K) on the uniform grid and a positive gain map ``shading`` (B, 1, S, S).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from harmcli.ops.curves import apply_curves


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; stored in every weights file."""

    name: str
    low_res: int  # side of the square copy the network sees
    n_points: int = 32
    shading_stride: int = 8  # the coarse shading map is low_res / shading_stride (64 x 64 at 512, as in the paper)
    options: dict = field(default_factory=dict)  # preset-specific widths

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**{k: data[k] for k in ("name", "low_res", "n_points", "shading_stride", "options") if k in data})


def normalise_inputs(composite: torch.Tensor, background: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Stack (B,3,H,W) composite, (B,3,H,W) background and (B,1,H,W) mask, all in [0,1], into 7 channels in
    [-1, 1] (the range EfficientNet-Lite's ImageNet weights expect)."""
    return torch.cat([composite, background, mask], dim=1) * 2.0 - 1.0


def curve_corrected(composite: torch.Tensor, mask: torch.Tensor, curve_y: torch.Tensor) -> torch.Tensor:
    """The first stage t1(C, M; theta1) at low resolution: curves applied inside the mask."""
    return composite + mask * (apply_curves(composite, curve_y) - composite)


class HarmonizationNet(nn.Module):
    """Base class. Subclasses implement :meth:`forward` returning ``(curve_y, shading)``."""

    config: ModelConfig

    def forward(self, composite: torch.Tensor, background: torch.Tensor, mask: torch.Tensor):  # pragma: no cover
        raise NotImplementedError

    def load_pretrained_backbone(self) -> None:
        """Initialise the encoder from ImageNet weights where the preset has them (training only)."""

    def inference_config(self) -> ModelConfig:
        """The config of the model that inference needs (training-only parts switched off)."""
        return self.config

    def inference_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors inference needs: what a weights file holds. Training-only parts are left out."""
        return self.state_dict()
