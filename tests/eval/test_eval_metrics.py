"""Metrics against hand-computed values and a direct (slow) SSIM reference."""

import math

import numpy as np
import pytest

from harmcli.eval.metrics import PSNR_CAP, compute_metrics, fmse, fpsnr, mse, psnr, psnr_from_mse, ssim, summarize, to_255


@pytest.fixture
def pair():
    target = np.zeros((2, 2, 3), np.uint8)
    prediction = target.copy()
    prediction[0, 0, 0] = 3  # one error of 3 code values: squared error 9 in total
    prediction[1, 1] = (1, 1, 1)  # three errors of 1: squared error 3 in total
    return prediction, target


def test_mse_by_hand(pair):
    prediction, target = pair
    assert mse(prediction, target) == pytest.approx((9 + 3) / 12)


def test_fmse_binary_mask(pair):
    prediction, target = pair
    mask = np.zeros((2, 2), np.float32)
    mask[0, 0] = mask[0, 1] = 1.0  # two foreground pixels, only (0, 0) wrong
    assert fmse(prediction, target, mask) == pytest.approx(9 / (2 * 3))
    assert fpsnr(prediction, target, mask) == pytest.approx(10 * math.log10(255**2 / 1.5))


def test_fmse_soft_mask_weights_by_coverage(pair):
    prediction, target = pair
    mask = np.array([[0.5, 1.0], [0.0, 0.25]], np.float32)
    expected = (0.5 * 9 + 0.25 * 3) / (3 * (0.5 + 1.0 + 0.25))
    assert fmse(prediction, target, mask) == pytest.approx(expected)
    # uint8 masks are on the 0..255 scale
    assert fmse(prediction, target, np.rint(mask * 255).astype(np.uint8)) == pytest.approx(expected, rel=1e-2)


def test_empty_foreground_is_nan_and_skipped(pair):
    prediction, target = pair
    empty = np.zeros((2, 2), np.float32)
    assert math.isnan(fmse(prediction, target, empty))
    assert math.isnan(fpsnr(prediction, target, empty))
    rows = [
        compute_metrics(prediction, target, empty),
        compute_metrics(prediction, target, np.ones((2, 2), np.float32)),
    ]
    means, counts = summarize(rows)
    assert counts["fMSE"] == 1 and counts["MSE"] == 2
    assert means["fMSE"] == pytest.approx(1.0)  # only the second image: 12 / (4 * 3)
    assert means["MSE"] == pytest.approx(1.0)


def test_psnr_values_and_identical_images(pair):
    prediction, target = pair
    assert psnr(prediction, target) == pytest.approx(10 * math.log10(255**2 / 1.0))
    assert psnr(target, target) == math.inf
    assert psnr_from_mse(0.0) == math.inf and math.isnan(psnr_from_mse(math.nan))
    row = compute_metrics(target, target, np.ones((2, 2), np.float32))
    assert row["PSNR"] == PSNR_CAP and row["fPSNR"] == PSNR_CAP and row["MSE"] == 0.0
    means, _ = summarize([row, compute_metrics(prediction, target, np.ones((2, 2)))])
    assert means["PSNR"] == pytest.approx((PSNR_CAP + 10 * math.log10(255**2)) / 2)


def test_bit_depths_share_the_0_255_scale(pair):
    prediction, target = pair
    expected = mse(prediction, target)
    assert mse(prediction.astype(np.uint16) * 257, target.astype(np.uint16) * 257) == pytest.approx(expected)
    assert mse(prediction / 255.0, target / 255.0) == pytest.approx(expected)
    assert to_255(np.array([[65535]], np.uint16))[0, 0] == pytest.approx(255.0)


def _ssim_reference(x, y, sigma=1.5, radius=5, data_range=255.0):
    """Pixel-by-pixel SSIM with explicit Gaussian windows, scipy 'reflect' borders, 5 px crop (skimage's)."""
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    scores = []
    for c in range(x.shape[2]):
        a = np.pad(x[..., c].astype(np.float64), radius, mode="symmetric")
        b = np.pad(y[..., c].astype(np.float64), radius, mode="symmetric")
        height, width = x.shape[:2]
        values = np.empty((height, width))
        for i in range(height):
            for j in range(width):
                wa = a[i : i + 2 * radius + 1, j : j + 2 * radius + 1]
                wb = b[i : i + 2 * radius + 1, j : j + 2 * radius + 1]
                mu_a, mu_b = (kernel * wa).sum(), (kernel * wb).sum()
                var_a = (kernel * (wa - mu_a) ** 2).sum()
                var_b = (kernel * (wb - mu_b) ** 2).sum()
                cov = (kernel * (wa - mu_a) * (wb - mu_b)).sum()
                values[i, j] = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        scores.append(values[radius:-radius, radius:-radius].mean())
    return float(np.mean(scores))


def test_ssim_matches_direct_reference():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    noise = rng.normal(0, 25, x.shape)
    y = np.clip(x * 0.8 + 30 + noise, 0, 255).astype(np.uint8)
    assert ssim(x, y) == pytest.approx(_ssim_reference(x, y), abs=1e-9)
    assert 0.5 < ssim(x, y) < 0.99


def test_ssim_of_identical_images_is_one():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 65536, (16, 17, 3), dtype=np.uint16)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        mse(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3, 3), np.uint8))


def test_compute_metrics_agrees_with_single_metrics():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 65536, (30, 26, 3), dtype=np.uint16)
    y = rng.integers(0, 65536, (30, 26, 3), dtype=np.uint16)
    mask = rng.random((30, 26)).astype(np.float32)
    row = compute_metrics(x, y, mask)
    assert row["MSE"] == pytest.approx(mse(x, y), rel=1e-12)
    assert row["fMSE"] == pytest.approx(fmse(x, y, mask), rel=1e-12)
    assert row["PSNR"] == pytest.approx(psnr(x, y), rel=1e-12)
    assert row["fPSNR"] == pytest.approx(fpsnr(x, y, mask), rel=1e-12)
    assert row["SSIM"] == pytest.approx(ssim(x, y), rel=1e-12)
