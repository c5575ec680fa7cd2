"""The network's low-res input: how the full-resolution image is shrunk."""

import cv2
import numpy as np
import pytest

from harmcli.pipeline import downsample


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255), (np.uint16, 65535)])
@pytest.mark.parametrize("shape", [(1100, 1957), (1024, 1031), (600, 1067), (200, 230)])  # 2 steps, 2, 1, 1
def test_downsample_is_a_box_average_within_one_code_value(dtype, scale, shape):
    rng = np.random.default_rng(shape[0])
    # Smooth content plus noise: like a photo, not a constant that any resize gets right.
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 0.5 + 0.4 * np.sin(xx / 97.0)[..., None] * np.cos(yy / 61.0)[..., None] * np.array([1.0, 0.7, -0.5])
    image = np.clip(base + rng.normal(0, 0.05, (*shape, 3)), 0, 1)
    image = np.round(image * scale).astype(dtype)
    small = downsample(image, 64)
    assert small.shape == (64, 64, 3) and small.dtype == np.float32
    reference = cv2.resize(image.astype(np.float64), (64, 64), interpolation=cv2.INTER_AREA) / scale
    assert np.abs(small - reference).max() <= 1.0 / scale


def test_downsample_enlarges_small_images_and_keeps_exact_sizes():
    image = np.full((32, 48, 3), 200, np.uint8)
    assert np.allclose(downsample(image, 64), 200 / 255)
    exact = np.arange(64 * 64 * 3, dtype=np.uint16).reshape(64, 64, 3)
    assert np.allclose(downsample(exact, 64), exact / 65535, rtol=0, atol=1e-7)
