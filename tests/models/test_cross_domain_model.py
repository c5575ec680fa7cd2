import pytest
import torch

from harmcli.errors import UsageError
from harmcli.models import PRESETS, create_model
from harmcli.models.cross_domain import N_STYLES, DomainDiscriminator, StyleClassifier
from harmcli.models.lite import LiteHarmonizer
from harmcli.ops.curves import uniform_knots
from harmcli.weights import load_weights, save_weights
from tests.models.test_models import _inputs


def _cross(**extra):
    return create_model("lite", options={**PRESETS["lite"].options, "cross_domain": True, **extra})


def test_cross_domain_shapes_and_identity_start_in_both_branches():
    model = _cross().eval()
    composite, background, mask = _inputs(64, 2)
    with torch.no_grad():
        for domain in ("photo", "rendered"):
            y, shading, features = model(composite, background, mask, domain=domain, return_features=True)
            assert y.shape == (2, 3, 32) and shading.shape == (2, 1, 64, 64)
            assert torch.allclose(y, uniform_knots(32).expand(2, 3, 32), atol=1e-6)
            assert torch.equal(shading, torch.ones_like(shading))
            # f_in: stem + 3 blocks = stride 4, 24 channels; f_out: inside/outside pools of 112 + 320 channels.
            assert features["f_in"].shape == (2, 24, 16, 16) and model.domain_channels == 24
            assert features["f_out"].shape == (2, 864) and model.pooled_channels == 864
    assert StyleClassifier(48)(features["f_in"], mask).shape == (2, N_STYLES)
    assert StyleClassifier(864)(features["f_out"]).shape == (2, N_STYLES)
    assert DomainDiscriminator(24)(features["f_in"]).shape == (2, 1, 4, 4)


def test_branches_share_the_middle_and_differ_in_their_own_layers():
    model = _cross()
    names = dict(model.named_parameters())
    rendered = {k for k in names if k.startswith("rendered.")}
    # The rendered branch: stem, bn, 3 blocks, the curves output layer, shading output conv and refinement.
    assert any(k.startswith("rendered.blocks.2.") for k in rendered) and not any(k.startswith("rendered.blocks.3.") for k in rendered)
    assert {"rendered.curves_last.weight", "rendered.shading_out.weight", "rendered.shading_refine.conv.weight"} <= rendered
    # Starting values are the photo branch's.
    assert torch.equal(names["rendered.conv_stem.weight"], names["encoder._conv_stem.weight"])
    with torch.no_grad():
        model.rendered.conv_stem.weight.add_(0.5)
        model.rendered.curves_last.bias.add_(0.3)
    model.eval()
    inputs = _inputs(64, 1)
    with torch.no_grad():
        y_photo, _ = model(*inputs, domain="photo")
        y_rendered, _ = model(*inputs, domain="rendered")
        plain = LiteHarmonizer(model.inference_config())
        plain.load_state_dict(model.inference_state_dict())
        y_plain, _ = plain.eval()(*inputs)
    assert not torch.allclose(y_photo, y_rendered)
    assert torch.equal(y_photo, y_plain)  # the photo branch is exactly the plain model


def test_saved_weights_hold_only_the_photo_branch_and_load_as_plain_lite(tmp_path):
    torch.manual_seed(0)
    model = _cross()
    with torch.no_grad():
        model.curves_head.mlp[-1].weight.normal_(0, 0.01)
        model.rendered.curves_last.weight.normal_(0, 0.5)
    path = save_weights(model, tmp_path / "w.safetensors", half=False)
    loaded = load_weights(path)
    assert type(loaded) is LiteHarmonizer and not loaded.cross_domain and not hasattr(loaded, "rendered")
    assert "cross_domain" not in loaded.config.options and loaded.config.options == PRESETS["lite"].options
    assert set(loaded.state_dict()) == set(create_model("lite").state_dict())
    inputs = _inputs(64, 1)
    with torch.no_grad():
        assert torch.equal(loaded(*inputs)[0], model.eval()(*inputs, domain="photo")[0])


def test_rendered_branch_needs_a_cross_domain_model():
    with pytest.raises(ValueError, match="cross_domain"):
        create_model("lite")(*_inputs(32), domain="rendered")
    with pytest.raises(UsageError, match="lite"):
        create_model("paper", options={"cross_domain": True})
