"""Random crops in training: one cut per sample, shared by composite, background, mask and target, foreground kept in."""

import torch

from harmcli.train.data import Batch, _keep_inside, augment, random_crops
from harmcli.train.loop import train
from tests.train.test_training import _config, tiny_data  # noqa: F401  (fixture)


def _ramp(b: int, s: int) -> torch.Tensor:
    # Every pixel's value encodes its position, so a crop can be read back from the values.
    ys, xs = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
    return torch.stack([ys / s, xs / s, torch.zeros(s, s)]).expand(b, 3, s, s).clone()


def test_keep_inside_ranges():
    assert _keep_inside(10, 20, 30, 64) == (0, 10)  # starts 0..10 keep rows 10..19 in a 30-row crop
    assert _keep_inside(50, 60, 30, 64) == (30, 34)  # clamped to the frame
    assert _keep_inside(0, 40, 30, 64) == (5, 5)  # foreground bigger than the crop: cut evenly
    assert _keep_inside(0, 64, 30, 64) == (17, 17)


def test_scale_one_is_the_identity():
    image = _ramp(4, 16)
    mask = torch.zeros(4, 1, 16, 16)
    mask[:, :, 4:8, 4:8] = 1
    out = random_crops([image, mask], mask, torch.Generator().manual_seed(0), 1.0)
    assert torch.equal(out[0], image) and torch.equal(out[1], mask)


def test_crop_is_shared_and_keeps_the_foreground():
    b, s = 32, 64
    image = _ramp(b, s)
    mask = torch.zeros(b, 1, s, s)
    mask[:, :, 40:52, 8:20] = 1  # off centre, near the left edge
    out_a, out_b, out_mask = random_crops([image, image.clone(), mask], mask, torch.Generator().manual_seed(1), 0.5)
    assert torch.equal(out_a, out_b)  # the same cut for every image of a sample
    assert out_a.shape == image.shape and out_mask.shape == mask.shape
    # Every sample still holds the whole foreground: its area grows by 1/scale^2 (scale 0.5..1), never shrinks.
    area = out_mask.sum((1, 2, 3))
    assert torch.all(area >= 144 * 0.95) and torch.all(area <= 144 * 4 * 1.05)
    assert area.std() > 10  # scales differ between samples
    # The crop is a zoom: the ramp's span across the output is the crop's side (0.5..1 of the frame), and the
    # values map back to pixels that hold the foreground where the mask says so.
    span = out_a[:, 1, 0, -1] - out_a[:, 1, 0, 0]
    assert torch.all(span > 0.45) and torch.all(span < 1.0)
    inside = out_mask[:, 0] > 0.99
    rows = (out_a[:, 0][inside] * s).round()
    cols = (out_a[:, 1][inside] * s).round()
    assert rows.min() >= 39 and rows.max() <= 52 and cols.min() >= 7 and cols.max() <= 20


def test_augment_crops_every_tensor_alike():
    b, s = 8, 32
    image = _ramp(b, s)
    mask = torch.zeros(b, 1, s, s)
    mask[:, :, 10:20, 10:20] = 1
    batch = Batch(image.clone(), image.clone(), mask, image.clone())
    out = augment(batch, torch.Generator().manual_seed(2), brightness_stops=0.0, background_is_composite=0.0, crop_min_scale=0.6)
    assert torch.equal(out.composite, out.target) and torch.equal(out.composite, out.background)
    assert not torch.allclose(out.composite, image) and not torch.allclose(out.composite, image.flip(-1))


def test_training_with_crops_runs_and_resumes(tiny_data, tmp_path):  # noqa: F811
    result = train([tiny_data], tmp_path / "run", _config(crop_min_scale=0.7))
    assert result["step"] == 4
    again = train([tiny_data], tmp_path / "run", _config(crop_min_scale=0.7, max_steps=6))
    assert again["step"] == 6
