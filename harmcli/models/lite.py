"""The ``lite`` preset: EfficientNet-Lite0 encoder, masked-pooling curves head, light shading decoder.

Built to be cheap on a laptop CPU: about 75 ms at its 256 x 256 input on one core here (see ``harmcli bench``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from harmcli.models.base import HarmonizationNet, ModelConfig, curve_corrected, normalise_inputs
from harmcli.models.efficientnet_lite import EfficientNetLite0Features, load_imagenet_lite0
from harmcli.models.heads import CurvesHead, ShadingRefine


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class LiteShadingDecoder(nn.Module):
    """Decodes the coarse log-gain map at stride 8 from encoder features and the curve-corrected image."""

    def __init__(self, feature_channels: tuple[int, ...], width: int):
        super().__init__()
        c4, c8, c16, c32 = feature_channels
        self.reduce32 = conv_bn_relu(c32, width, 1)
        self.fuse16 = conv_bn_relu(width + c16, width)
        # The corrected image, composite, background and mask, average-pooled to stride 8.
        self.image_branch = conv_bn_relu(3 + 3 + 3 + 1, width // 2)
        self.fuse8 = nn.Sequential(conv_bn_relu(width + c8 + width // 2, width), conv_bn_relu(width, width))
        self.out = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, feats: list[torch.Tensor], image_stack: torch.Tensor, stride8_size: tuple[int, int]) -> torch.Tensor:
        _, f8, f16, f32 = feats
        x = self.reduce32(f32)
        x = F.interpolate(x, size=f16.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse16(torch.cat([x, f16], 1))
        x = F.interpolate(x, size=stride8_size, mode="bilinear", align_corners=False)
        f8 = F.interpolate(f8, size=stride8_size, mode="bilinear", align_corners=False) if f8.shape[-2:] != stride8_size else f8
        img = self.image_branch(F.adaptive_avg_pool2d(image_stack, stride8_size))
        return self.out(self.fuse8(torch.cat([x, f8, img], 1)))


class LiteHarmonizer(HarmonizationNet):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        width = int(config.options.get("decoder_width", 64))
        self.encoder = EfficientNetLite0Features(in_channels=7)
        ch = self.encoder.feature_channels
        self.curves_head = CurvesHead(ch[2] + ch[3], config.n_points, hidden=int(config.options.get("head_width", 256)))
        self.shading_decoder = LiteShadingDecoder(ch, width)
        self.shading_refine = ShadingRefine()

    def load_pretrained_backbone(self) -> None:
        self.encoder.load_imagenet(load_imagenet_lite0())

    def forward(self, composite: torch.Tensor, background: torch.Tensor, mask: torch.Tensor):
        feats = self.encoder(normalise_inputs(composite, background, mask))
        curve_y = self.curves_head(feats[2:], mask)
        corrected = curve_corrected(composite, mask, curve_y)
        size = composite.shape[-2:]
        coarse_size = (max(1, size[0] // self.config.shading_stride), max(1, size[1] // self.config.shading_stride))
        stack = torch.cat([corrected, composite, background, mask], 1)
        coarse = self.shading_decoder(feats, stack, coarse_size)
        return curve_y, self.shading_refine(coarse, size)

    def freeze_backbone_norm(self) -> None:
        """Keep the encoder's ImageNet batch-norm statistics while fine-tuning with small batches.

        Called after ``train()``; ``train()`` itself is overridden below to keep it frozen.
        """
        self._frozen_norm = True
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "_frozen_norm", False):
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self
