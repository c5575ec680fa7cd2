import pytest
import torch

from harmcli.errors import UsageError
from harmcli.models import PRESETS, create_model
from harmcli.models.discriminator import UNetDiscriminator
from harmcli.ops.curves import uniform_knots


def _inputs(size, batch=1):
    torch.manual_seed(0)
    composite = torch.rand(batch, 3, size, size)
    background = torch.rand(batch, 3, size, size)
    mask = torch.zeros(batch, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1
    return composite, background, mask


def test_lite_untrained_is_identity_and_shapes():
    model = create_model("lite").eval()
    with torch.no_grad():
        y, shading = model(*_inputs(64, 2))
    assert y.shape == (2, 3, 32)
    assert shading.shape == (2, 1, 64, 64)
    assert torch.allclose(y, uniform_knots(32).expand(2, 3, 32), atol=1e-6)
    assert torch.equal(shading, torch.ones_like(shading))


def test_lite_gradients_reach_every_trainable_part():
    model = create_model("lite").train()
    composite, background, mask = _inputs(64, 2)
    y, shading = model(composite, background, mask)
    # With zero-initialised last layers, only those layers get gradients on the first step; that is enough.
    (y.sum() + shading.sum()).backward()
    assert model.curves_head.mlp[-1].weight.grad.abs().sum() > 0
    assert model.shading_decoder.out.weight.grad.abs().sum() > 0


def test_create_model_rejects_unknown_name():
    with pytest.raises(UsageError):
        create_model("nope")


def test_presets_declare_low_res():
    assert PRESETS["paper"].low_res == 512
    assert PRESETS["lite"].low_res in (256, 512)


def test_paper_parameter_counts_match_the_paper():
    model = create_model("paper")
    curves = sum(p.numel() for p in model.curves_encoder.parameters()) + sum(p.numel() for p in model.curves_head.parameters())
    shading = sum(p.numel() for p in model.shading_net.parameters())
    assert 20e6 < curves < 30e6  # ResNet-50 trunk, ~23M in the paper
    assert 60e6 < shading < 80e6  # ~70M in the paper


def test_paper_untrained_is_identity():
    model = create_model("paper").eval()
    with torch.no_grad():
        y, shading = model(*_inputs(64))
    assert torch.allclose(y, uniform_knots(32).expand(1, 3, 32), atol=1e-6)
    assert torch.equal(shading, torch.ones_like(shading))


def test_discriminator_outputs_per_pixel_logits():
    d = UNetDiscriminator()
    out = d(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 1, 16, 16)
