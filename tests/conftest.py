"""Shared fixtures: small generated images, never photos from elsewhere."""

import numpy as np
import pytest


def synthetic_photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth colour gradient with a few soft blobs and noise: uint8 RGB (H, W, 3)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, 0.5 + 0.3 * np.sin(xx / 7.0)], axis=-1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(4, max(5, width / 3))
        base += rng.uniform(-0.3, 0.3, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    base += rng.normal(0, 0.02, base.shape)
    return (np.clip(base, 0, 1) * 255 + 0.5).astype(np.uint8)


def object_mask(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """An ellipse filling ``box`` (y0, y1, x0, x1): uint8 0/255 (H, W)."""
    y0, y1, x0, x1 = box
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx, ry, rx = (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2, (x1 - x0) / 2
    return ((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1).astype(np.uint8) * 255


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
