"""The global photometric jitter: one look per sample, shared by composite, background and target."""

import torch

from harmcli.train.data import Batch, augment, global_jitter
from tests.train.test_training import _config, tiny_data  # noqa: F401  (fixture)
from harmcli.train.loop import train


def _images(b=4, s=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, 3, s, s, generator=g) * 0.8 + 0.1 for _ in range(3)]


def test_same_look_for_every_image_of_a_sample():
    a, _, _ = _images()
    out = global_jitter([a, a.clone(), a.clone()], torch.Generator().manual_seed(1), 1.0)
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    assert not torch.allclose(out[0], a)  # it did change the look


def test_look_is_gain_times_power_within_the_stops():
    # A flat grey 0.25 through x ** gamma * gain: with at most 1 stop, gamma in [2**-0.5, 2**0.5] and each
    # channel's gain in [2**-1.5, 2**1.5]; the three channels share the gamma and the exposure part of the gain.
    flat = torch.full((64, 3, 2, 2), 0.25)
    (out,) = global_jitter([flat], torch.Generator().manual_seed(2), 1.0)
    lo = 0.25 ** (2 ** 0.5) * 2 ** -1.5
    hi = min(1.0, 0.25 ** (2 ** -0.5) * 2 ** 1.5)
    assert out.min() >= lo - 1e-6 and out.max() <= hi + 1e-6
    assert torch.all(out == out[:, :, :1, :1])  # global: one value per channel of a sample
    assert out[:, 0].std() > 0.05  # and the samples differ
    # 0 stops: the identity
    (same,) = global_jitter([flat], torch.Generator().manual_seed(2), 0.0)
    assert torch.equal(same, flat)


def test_identity_samples_stay_their_jittered_target():
    c, b, t = _images(b=16)
    mask = torch.ones(16, 1, 8, 8)
    batch = Batch(c, b, mask, t)
    out = augment(batch, torch.Generator().manual_seed(3), brightness_stops=0.0, background_is_composite=0.0,
                  identity_fraction=1.0, global_stops=0.5)
    assert torch.equal(out.composite, out.target)  # the answer is still "leave it"
    assert not torch.allclose(out.target, t) and not torch.allclose(out.target, t.flip(-1))


def test_training_with_global_jitter_runs(tiny_data, tmp_path):  # noqa: F811
    result = train([tiny_data], tmp_path / "run", _config(global_jitter=0.5))
    assert result["step"] == 4
