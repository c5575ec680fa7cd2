"""Classical baselines: statistics move to the background's, the background stays bit-exact."""

import cv2
import numpy as np
import pytest

from harmcli.ops.baselines import histogram_match, reinhard_transfer


def _scene(dtype=np.uint8, seed=0):
    """A warm, bright background with a dark, cold pasted rectangle (no clipping after the transfer)."""
    rng = np.random.default_rng(seed)
    image = np.empty((48, 64, 3), np.float64)
    image[:] = rng.normal((0.62, 0.55, 0.45), 0.06, image.shape)
    mask = np.zeros((48, 64), np.float32)
    mask[12:36, 16:44] = 1.0
    inside = mask > 0
    image[inside] = rng.normal((0.25, 0.3, 0.4), 0.03, (int(inside.sum()), 3))
    image = np.clip(image, 0, 1)
    if dtype == np.float32:
        return image.astype(np.float32), mask
    maxval = np.iinfo(dtype).max
    return np.rint(image * maxval).astype(dtype), mask


def _lab(image):
    maxval = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype, 1.0)
    return cv2.cvtColor((image / maxval).astype(np.float32), cv2.COLOR_RGB2Lab).astype(np.float64)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_reinhard_moves_foreground_statistics_to_background(dtype):
    image, mask = _scene(dtype)
    out = reinhard_transfer(image, mask)
    assert out.dtype == image.dtype and out.shape == image.shape
    fg, bg = mask > 0.5, mask <= 0.5
    lab_in, lab_out = _lab(image), _lab(out)
    before = np.abs(lab_in[fg].mean(0) - lab_in[bg].mean(0)).max()
    after = np.abs(lab_out[fg].mean(0) - lab_in[bg].mean(0))
    assert before > 10
    np.testing.assert_allclose(after, 0, atol=0.5)
    np.testing.assert_allclose(lab_out[fg].std(0), lab_in[bg].std(0), rtol=0.1)
    assert np.array_equal(out[bg], image[bg])


@pytest.mark.parametrize("function", [reinhard_transfer, histogram_match])
def test_background_untouched_and_soft_edge_blended(function):
    image, mask = _scene()
    mask[12:36, 15] = 0.25  # a soft column left of the rectangle
    out = function(image, mask)
    outside = mask == 0
    assert np.array_equal(out[outside], image[outside])
    # At 0.5 the column still is not foreground for the statistics, so both runs use the same mapping:
    # a quarter-strength move is half of a half-strength one, within rounding.
    half_mask = mask.copy()
    half_mask[12:36, 15] = 0.5
    half = function(image, half_mask)[12:36, 15].astype(np.float64)
    quarter = out[12:36, 15].astype(np.float64)
    edge = image[12:36, 15].astype(np.float64)
    assert np.abs(half - edge).mean() > 5
    assert np.abs((quarter - edge) - 0.5 * (half - edge)).max() <= 1.0


@pytest.mark.parametrize("function", [reinhard_transfer, histogram_match])
@pytest.mark.parametrize("fill", [0.0, 1.0, 0.4])
def test_empty_or_full_mask_returns_input(function, fill):
    image, _ = _scene()
    mask = np.full(image.shape[:2], fill, np.float32)  # 0.4: soft but no pixel counts as foreground
    out = function(image, mask)
    assert np.array_equal(out, image) and out is not image


def test_histogram_match_takes_the_background_distribution():
    rng = np.random.default_rng(1)
    image = rng.integers(100, 256, (40, 50, 3)).astype(np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    mask[5:25, 10:40] = 255
    fg = mask > 0
    image[fg] = rng.integers(0, 100, (int(fg.sum()), 3))
    out = histogram_match(image, mask)
    assert out[fg].min() >= 100
    for c in range(3):
        quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
        np.testing.assert_allclose(
            np.quantile(out[fg][:, c], quantiles), np.quantile(image[~fg][:, c], quantiles), atol=3
        )
    # order is kept: brighter input stays brighter
    src, dst = image[fg][:, 0].astype(int), out[fg][:, 0].astype(int)
    order = np.argsort(src, kind="stable")
    assert np.all(np.diff(dst[order]) >= 0)


def test_histogram_match_float_and_uint16_agree_with_uint8():
    image, mask = _scene(np.uint8, seed=5)
    out8 = histogram_match(image, mask).astype(np.float64) / 255
    out16 = histogram_match(image.astype(np.uint16) * 257, mask).astype(np.float64) / 65535
    outf = histogram_match(image.astype(np.float32) / 255, mask).astype(np.float64)
    np.testing.assert_allclose(out16, out8, atol=1 / 255)
    np.testing.assert_allclose(outf, out8, atol=1 / 255)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        reinhard_transfer(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.float32))
