import numpy as np
import pytest
import torch

from harmcli.models.heads import curves_from_raw, gain_from_raw
from harmcli.ops.compose import apply_adjustment_torch
from harmcli.ops.curves import apply_curves, blend_curves_toward_identity, identity_curves, uniform_knots


def test_identity_curves_return_input():
    image = torch.rand(2, 3, 17, 23)
    out = apply_curves(image, identity_curves(2, 32))
    assert torch.allclose(out, image, atol=1e-6)


def test_known_values_uniform_grid():
    # y = 1 - x as a 2-point curve: a negative image.
    y = torch.tensor([[1.0, 0.0]]).expand(1, 3, 2)
    image = torch.tensor([0.0, 0.25, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    out = apply_curves(image, y)
    assert torch.allclose(out[0, 0, 0], torch.tensor([1.0, 0.75, 0.0]))


def test_non_uniform_knots_match_numpy_interp():
    torch.manual_seed(0)
    x = torch.tensor([0.0, 0.1, 0.5, 0.55, 1.0]).expand(1, 3, 5)
    y = torch.rand(1, 3, 5).sort(dim=-1).values
    image = torch.rand(1, 3, 8, 8)
    out = apply_curves(image, y, x)
    for c in range(3):
        expected = np.interp(image[0, c].numpy(), x[0, c].numpy(), y[0, c].numpy())
        assert np.allclose(out[0, c].numpy(), expected, atol=1e-6)


def test_curves_from_raw_zero_is_identity_and_always_monotone():
    assert torch.allclose(curves_from_raw(torch.zeros(1, 3, 32)), uniform_knots(32).expand(1, 3, 32), atol=1e-6)
    torch.manual_seed(1)
    y = curves_from_raw(torch.randn(64, 3, 32) * 5)
    assert (y.diff(dim=-1) >= 0).all()
    assert y.min() >= 0 and y.max() <= 1


def test_gain_from_raw_range():
    g = gain_from_raw(torch.tensor([-100.0, 0.0, 100.0]))
    assert g[1] == 1.0
    assert g[0] >= 0.25 - 1e-6 and g[2] <= 4.0 + 1e-6


def test_blend_toward_identity():
    y = torch.rand(1, 3, 32)
    assert torch.allclose(blend_curves_toward_identity(y, 0.0), uniform_knots(32).expand(1, 3, 32))
    assert torch.allclose(blend_curves_toward_identity(y, 1.0), y)


def test_compose_keeps_background_exactly():
    torch.manual_seed(2)
    composite = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:10, 3:12] = 1.0
    mask[:, :, 10, 3:12] = 0.5
    y = torch.rand(2, 3, 32).sort(dim=-1).values
    shading = torch.rand(2, 1, 4, 4) + 0.5
    out = apply_adjustment_torch(composite, mask, y, shading)
    background = (mask == 0).expand_as(out)
    assert torch.equal(out[background], composite[background])
    assert not torch.allclose(out[~background], composite[~background])


def test_gradients_flow_to_curves_and_shading():
    composite = torch.rand(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    y = identity_curves(1, 32).requires_grad_(True)
    shading = torch.ones(1, 1, 2, 2, requires_grad=True)
    target = composite * 0.5
    loss = (apply_adjustment_torch(composite, mask, y, shading) - target).abs().mean()
    loss.backward()
    assert y.grad.abs().sum() > 0 and shading.grad.abs().sum() > 0


def test_gradcheck_curves():
    image = torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.9 + 0.05
    y = torch.rand(1, 3, 5, dtype=torch.float64).sort(dim=-1).values.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda yy: apply_curves(image, yy), (y,))


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        apply_curves(torch.rand(1, 4, 2, 2), identity_curves())
    with pytest.raises(ValueError):
        apply_curves(torch.rand(1, 3, 2, 2), torch.rand(3, 32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_cpu():
    composite = torch.rand(1, 3, 32, 32)
    mask = (torch.rand(1, 1, 32, 32) > 0.5).float()
    y = torch.rand(1, 3, 32).sort(dim=-1).values
    shading = torch.rand(1, 1, 8, 8) + 0.5
    cpu = apply_adjustment_torch(composite, mask, y, shading)
    gpu = apply_adjustment_torch(composite.cuda(), mask.cuda(), y.cuda(), shading.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)
