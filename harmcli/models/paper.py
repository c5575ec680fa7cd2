"""The ``paper`` preset: a ResNet-50 curves network and a large-receptive-field U-Net for shading (§3.1),
about 23M + 70M parameters. Meant for a GPU; it has no ImageNet initialisation here (no torchvision)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from harmcli.models.base import HarmonizationNet, ModelConfig, curve_corrected, normalise_inputs
from harmcli.models.heads import CurvesHead, ShadingRefine


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, mid: int, stride: int = 1):
        super().__init__()
        out = mid * self.expansion
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = None
        if stride != 1 or in_ch != out:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)), inplace=True)
        h = F.relu(self.bn2(self.conv2(h)), inplace=True)
        h = self.bn3(self.conv3(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)), inplace=True)


class ResNet50Features(nn.Module):
    """ResNet-50 trunk (3-4-6-3 bottlenecks) on 7 input channels; returns the stride-16 and -32 maps."""

    def __init__(self, in_channels: int = 7):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        layers, in_ch = [], 64
        for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(in_ch, mid, stride if i == 0 else 1))
                in_ch = mid * Bottleneck.expansion
            layers.append(nn.Sequential(*stage))
        self.layers = nn.ModuleList(layers)
        self.feature_channels = (1024, 2048)

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats[2:]


def double_conv(in_ch: int, out_ch: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ShadingUNet(nn.Module):
    """U-Net from full low-res size down to stride 64 and back up to stride 8, with dilated convolutions at
    the bottom so that every output sees the whole image (a shadow depends on distant light)."""

    def __init__(self, in_channels: int, widths=(32, 64, 128, 256, 512, 768, 896)):
        super().__init__()
        self.down = nn.ModuleList()
        prev = in_channels
        for w in widths:
            self.down.append(double_conv(prev, w))
            prev = w
        self.bottom = double_conv(prev, prev, dilation=2)
        # Up from stride 64 to stride 8: three decoder stages.
        self.up = nn.ModuleList()
        for skip in (widths[5], widths[4], widths[3]):
            self.up.append(double_conv(prev + skip, skip))
            prev = skip
        self.out = nn.Conv2d(prev, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = self.bottom(x)
        for block, skip in zip(self.up, (skips[5], skips[4], skips[3])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.out(x)


class PaperHarmonizer(HarmonizationNet):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.curves_encoder = ResNet50Features(7)
        self.curves_head = CurvesHead(sum(self.curves_encoder.feature_channels), config.n_points, hidden=512)
        self.shading_net = ShadingUNet(10)
        self.shading_refine = ShadingRefine()

    def forward(self, composite, background, mask):
        x = normalise_inputs(composite, background, mask)
        curve_y = self.curves_head(self.curves_encoder(x), mask)
        corrected = curve_corrected(composite, mask, curve_y)
        coarse = self.shading_net(torch.cat([x, corrected * 2 - 1], 1))
        return curve_y, self.shading_refine(coarse, composite.shape[-2:])
