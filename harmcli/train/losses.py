"""Losses of the dual-stream training (paper §3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 over the foreground, normalised by its area: a small object counts as much as a large one.

    (The background is copied from the input, so outside the mask output and target agree by construction.)
    """
    weight = mask.expand_as(output)
    return (weight * (output - target).abs()).sum() / weight.sum().clamp_min(1.0)


class AdversarialLoss:
    """Per-pixel GAN loss with the paper's labels: real images are 1 everywhere; a harmonized image is 1 on
    the background and 0 on the foreground (``1 - M``), because the data model assumes the background is right.

    ``generator_loss`` and ``discriminator_loss`` return ``(loss, metrics)``.
    """

    def __init__(self, discriminator: torch.nn.Module):
        self.discriminator = discriminator

    @staticmethod
    def _fit(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return F.interpolate(mask, size=logits.shape[-2:], mode="area")

    def generator_loss(self, fake: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """-log D(fake) (eq. 4), averaged over the foreground, where the generator can change anything."""
        logits = self.discriminator(fake)
        m = self._fit(mask, logits)
        per_pixel = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
        loss = (per_pixel * m).sum() / m.sum().clamp_min(1e-3)
        return loss, {"loss_g_adv": float(loss.detach())}

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, fake_mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Eq. 3 as binary cross-entropy: target 1 on real images, ``1 - M`` on harmonized ones."""
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake.detach())
        target_fake = 1.0 - self._fit(fake_mask, fake_logits)
        loss_real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        loss_fake = F.binary_cross_entropy_with_logits(fake_logits, target_fake)
        loss = loss_real + loss_fake
        return loss, {"loss_d_real": float(loss_real.detach()), "loss_d_fake": float(loss_fake.detach())}
