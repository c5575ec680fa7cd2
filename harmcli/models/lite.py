"""The ``lite`` preset: EfficientNet-Lite0 encoder, masked-pooling curves head, light shading decoder.

Built to be cheap on a laptop CPU: about 75 ms at its 256 x 256 input on one core here (see ``harmcli bench``).

With ``options["cross_domain"]`` the network is the second paper's three-stage CharmNet adapted to our heads
(Cao et al., BMVC 2022, §4.1): the encoder's first layers (the stem and ``domain_blocks`` MBConv blocks; the
paper splits off the first 4 layers) exist once per domain, photo and rendered; the rest of the encoder and of
both heads is shared, except the last layer of each head (the curves MLP's output layer, the shading decoder's
output convolution and the 3x3 refinement), which again exists per domain. The photo copies keep the plain
model's parameter names and the rendered ones live under ``rendered.``, so the photo branch *is* the plain
model: :meth:`LiteHarmonizer.inference_state_dict` drops ``rendered.*`` and the file loads into ``lite``.
"""

from __future__ import annotations

import copy
from dataclasses import replace

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

    def forward(
        self, feats: list[torch.Tensor], image_stack: torch.Tensor, stride8_size: tuple[int, int], out: nn.Module | None = None
    ) -> torch.Tensor:
        _, f8, f16, f32 = feats
        x = self.reduce32(f32)
        x = F.interpolate(x, size=f16.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse16(torch.cat([x, f16], 1))
        x = F.interpolate(x, size=stride8_size, mode="bilinear", align_corners=False)
        f8 = F.interpolate(f8, size=stride8_size, mode="bilinear", align_corners=False) if f8.shape[-2:] != stride8_size else f8
        img = self.image_branch(F.adaptive_avg_pool2d(image_stack, stride8_size))
        return (self.out if out is None else out)(self.fuse8(torch.cat([x, f8, img], 1)))


# The options that make a training-time cross-domain model; the inference model is the same config without them.
CROSS_DOMAIN_OPTIONS = ("cross_domain", "domain_blocks")
DOMAINS = ("photo", "rendered")


class RenderedBranch(nn.Module):
    """The rendered domain's own layers: a copy of the encoder's first stage and of each head's last layer."""

    def __init__(self, model: "LiteHarmonizer", blocks: int):
        super().__init__()
        encoder = model.encoder
        self.conv_stem = copy.deepcopy(encoder._conv_stem)
        self.bn0 = copy.deepcopy(encoder._bn0)
        self.blocks = nn.ModuleList(copy.deepcopy(encoder._blocks[i]) for i in range(blocks))
        self.curves_last = copy.deepcopy(model.curves_head.mlp[-1])
        self.shading_out = copy.deepcopy(model.shading_decoder.out)
        self.shading_refine = copy.deepcopy(model.shading_refine)

    def copy_from(self, model: "LiteHarmonizer") -> None:
        """Start from the photo branch's current values (after ImageNet or ``--init`` weights are loaded)."""
        encoder = model.encoder
        pairs = [(self.conv_stem, encoder._conv_stem), (self.bn0, encoder._bn0), (self.curves_last, model.curves_head.mlp[-1]),
                 (self.shading_out, model.shading_decoder.out), (self.shading_refine, model.shading_refine)]
        pairs += [(mine, encoder._blocks[i]) for i, mine in enumerate(self.blocks)]
        for mine, theirs in pairs:
            mine.load_state_dict(theirs.state_dict())

    def stage(self, x: torch.Tensor, taps: tuple[int, ...]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = F.relu6(self.bn0(self.conv_stem(x)))
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in taps:
                feats.append(x)
        return x, feats


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
        self.cross_domain = bool(config.options.get("cross_domain", False))
        # Stem + 3 blocks = the paper's "first 4 layers"; it ends at stride 4 (24 channels), where the domain
        # discriminator and the input style classifier read f_in.
        self.domain_blocks = int(config.options.get("domain_blocks", 3)) if self.cross_domain else 0
        if self.cross_domain:
            if not 1 <= self.domain_blocks < len(self.encoder._blocks):
                raise ValueError(f"domain_blocks must be 1..{len(self.encoder._blocks) - 1}, got {self.domain_blocks}")
            self.rendered = RenderedBranch(self, self.domain_blocks)

    @property
    def domain_channels(self) -> int:
        """Channels of f_in, the domain-specific stage's output."""
        block = self.encoder._blocks[self.domain_blocks - 1] if self.domain_blocks else None
        return block._bn2.num_features if block is not None else self.encoder._bn0.num_features

    @property
    def pooled_channels(self) -> int:
        """Length of f_out, the pooled vector the curves head reads."""
        return 2 * (self.encoder.feature_channels[2] + self.encoder.feature_channels[3])

    def load_pretrained_backbone(self) -> None:
        self.encoder.load_imagenet(load_imagenet_lite0())
        self.sync_rendered_branch()

    def sync_rendered_branch(self) -> None:
        """Copy the photo branch's first stage and last layers into the rendered branch (no-op without one)."""
        if self.cross_domain:
            self.rendered.copy_from(self)

    def forward(
        self, composite: torch.Tensor, background: torch.Tensor, mask: torch.Tensor, domain: str = "photo",
        return_features: bool = False,
    ):
        """``(curve_y, shading)``; with ``return_features`` also ``{"f_in": (B, C, S/4, S/4) output of the
        domain-specific stage, "f_out": (B, 864) what the curves head reads}``. ``domain="rendered"`` runs the
        rendered branch (cross-domain models only)."""
        if domain not in DOMAINS or (domain == "rendered" and not self.cross_domain):
            raise ValueError(f"domain '{domain}' needs a cross_domain model" if domain == "rendered" else f"unknown domain '{domain}'")
        x = normalise_inputs(composite, background, mask)
        branch = self.rendered if domain == "rendered" else None
        if branch is not None:
            f_in, feats = branch.stage(x, self.encoder._taps)
        else:
            f_in, feats = self.encoder.run_blocks(self.encoder.stem(x), 0, self.domain_blocks)
        _, feats = self.encoder.run_blocks(f_in, self.domain_blocks, None, feats)
        pooled = self.curves_head.pool(feats[2:], mask)
        curve_y = self.curves_head.from_pooled(pooled, None if branch is None else branch.curves_last)
        corrected = curve_corrected(composite, mask, curve_y)
        size = composite.shape[-2:]
        coarse_size = (max(1, size[0] // self.config.shading_stride), max(1, size[1] // self.config.shading_stride))
        stack = torch.cat([corrected, composite, background, mask], 1)
        coarse = self.shading_decoder(feats, stack, coarse_size, out=None if branch is None else branch.shading_out)
        shading = (self.shading_refine if branch is None else branch.shading_refine)(coarse, size)
        if return_features:
            return curve_y, shading, {"f_in": f_in, "f_out": pooled}
        return curve_y, shading

    def inference_config(self) -> ModelConfig:
        options = {k: v for k, v in self.config.options.items() if k not in CROSS_DOMAIN_OPTIONS}
        return replace(self.config, options=options)

    def inference_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("rendered.")}

    def freeze_backbone_norm(self) -> None:
        """Keep the encoder's ImageNet batch-norm statistics while fine-tuning with small batches.

        Called after ``train()``; ``train()`` itself is overridden below to keep it frozen.
        """
        self._frozen_norm = True
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "_frozen_norm", False):
            frozen = [self.encoder] + ([self.rendered.conv_stem, self.rendered.bn0, self.rendered.blocks] if self.cross_domain else [])
            for part in frozen:
                for module in part.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.eval()
        return self
