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


# ------------------------------------------------------------------------------------------------------------
# Cross-domain terms (Cao et al., BMVC 2022, §4, eqs. 1 and 3-5). "Photo" is the paper's real domain (rl).


class DomainAdversarialLoss:
    """Eq. 1, the hinge loss of a domain discriminator on f_in, the domain-specific stage's features:
    ``L_D = E[max(0, 1 - D(f_photo))] + E[max(0, 1 + D(f_rendered))]`` and ``L_G = -E[D(f_rendered)]``.
    Only the rendered branch is pulled towards the photo features: photos are the domain we ship for.

    ``generator_loss`` and ``discriminator_loss`` return ``(loss, metrics)``.
    """

    def __init__(self, discriminator: torch.nn.Module):
        self.discriminator = discriminator

    def generator_loss(self, rendered_features: torch.Tensor) -> tuple[torch.Tensor, dict]:
        loss = -self.discriminator(rendered_features).mean()
        return loss, {"loss_domain_g": float(loss.detach())}

    def discriminator_loss(self, photo_features: torch.Tensor, rendered_features: torch.Tensor) -> tuple[torch.Tensor, dict]:
        loss_photo = F.relu(1.0 - self.discriminator(photo_features.detach())).mean()
        loss_rendered = F.relu(1.0 + self.discriminator(rendered_features.detach())).mean()
        loss = loss_photo + loss_rendered
        return loss, {"loss_domain_d": float(loss.detach())}


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``-sum_k y_k log P_k`` averaged over the batch; ``target`` (B, K) may be soft (a composite's label
    mixes its two styles by area) or one-hot (a target render's)."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def weighted_classification(logits_in: torch.Tensor, logits_out: torch.Tensor) -> torch.Tensor:
    """Eq. 4, ``L_W = -sum_k P_k^in log P_k^out`` averaged over the batch: an output style is only likely if
    the input had it. ``P^in`` is a fixed teacher here (detached): it learns styles from rendered labels
    only; letting photos move it would let the network satisfy the loss by blurring P^in instead of
    sharpening P^out."""
    p_in = F.softmax(logits_in.detach(), dim=1)
    return -(p_in * F.log_softmax(logits_out, dim=1)).sum(1).mean()


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample entropy ``-sum_k P_k log P_k`` (nats) of the softmax of ``logits`` (B, K)."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(1)


def entropy_reduction(logits_in: torch.Tensor, logits_out: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 5, ``max(0, m + sum P^in log P^in - sum P^out log P^out) = max(0, m - H(P^in) + H(P^out))`` averaged
    over the batch: after harmonization the style distribution must be at least ``m`` nats more concentrated
    than before. ``P^in`` is detached, as in :func:`weighted_classification`."""
    return F.relu(margin - entropy(logits_in.detach()) + entropy(logits_out)).mean()
