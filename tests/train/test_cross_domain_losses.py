import math

import pytest
import torch

from harmcli.train.data import target_style
from harmcli.train.losses import (
    DomainAdversarialLoss,
    entropy,
    entropy_reduction,
    soft_cross_entropy,
    weighted_classification,
)


def test_domain_hinge_loss_by_hand():
    # An identity "discriminator": the scores are the features themselves.
    loss = DomainAdversarialLoss(torch.nn.Identity())
    photo = torch.tensor([0.5, 2.0])  # max(0, 1 - 0.5) = 0.5, max(0, 1 - 2) = 0 -> mean 0.25
    rendered = torch.tensor([-3.0, 0.0])  # max(0, 1 - 3) = 0, max(0, 1 + 0) = 1 -> mean 0.5
    d_loss, metrics = loss.discriminator_loss(photo, rendered)
    assert d_loss.item() == pytest.approx(0.75) and metrics["loss_domain_d"] == pytest.approx(0.75)
    g_loss, _ = loss.generator_loss(rendered)
    assert g_loss.item() == pytest.approx(1.5)  # -mean(-3, 0)


def test_style_cross_entropy_with_a_soft_label_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax (0.25, 0.75)
    target = torch.tensor([[0.5, 0.5]])
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))  # 0.836988
    assert soft_cross_entropy(logits, target).item() == pytest.approx(expected, abs=1e-6)
    assert soft_cross_entropy(logits, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(-math.log(0.75), abs=1e-6)


def test_weighted_classification_by_hand_and_p_in_is_a_fixed_teacher():
    logits_in = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)  # P_in (0.25, 0.75)
    logits_out = torch.tensor([[math.log(2.0), 0.0]], requires_grad=True)  # P_out (2/3, 1/3)
    loss = weighted_classification(logits_in, logits_out)
    assert loss.item() == pytest.approx(-(0.25 * math.log(2 / 3) + 0.75 * math.log(1 / 3)), abs=1e-6)  # 0.925329
    loss.backward()
    assert logits_in.grad is None and logits_out.grad.abs().sum() > 0


def test_entropy_reduction_by_hand():
    logits_in = torch.tensor([[0.0, math.log(3.0)]])  # H = 0.562335 nats
    flat = torch.tensor([[0.0, 0.0]])  # H = ln 2 = 0.693147
    assert entropy(logits_in).item() == pytest.approx(0.562335, abs=1e-6)
    # Output flatter than input: max(0, 0.1 - 0.562335 + 0.693147) = 0.230812.
    assert entropy_reduction(logits_in, flat, 0.1).item() == pytest.approx(0.230812, abs=1e-6)
    # Output much sharper than input by more than the margin: no loss.
    sharp = torch.tensor([[10.0, 0.0]])  # H = 0.000499
    assert entropy_reduction(logits_in, sharp, 0.1).item() == 0.0
    # Batch mean: (0.230812 + 0) / 2.
    both = entropy_reduction(torch.cat([logits_in, logits_in]), torch.cat([flat, sharp]), 0.1)
    assert both.item() == pytest.approx(0.115406, abs=1e-6)


def test_target_style_from_a_soft_composite_label():
    label = torch.zeros(10)
    label[2], label[7] = 0.3, 0.7  # foreground 30% of the frame in style 2, background style 7
    assert torch.equal(target_style(label, 0.3), torch.eye(10)[7])
    label = torch.zeros(10)
    label[4], label[1] = 0.6, 0.4  # a foreground larger than its background: style 1 is the background's
    assert torch.equal(target_style(label, 0.6), torch.eye(10)[1])
    assert torch.equal(target_style(torch.eye(10)[5], 0.2), torch.eye(10)[5])  # both sides in one style
