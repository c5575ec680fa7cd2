"""harmcli.batch.reading: reading one item (bit depths, alpha, shared files, mask rules)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harmcli import batch
from harmcli.batch.reading import _over, _promote
from harmcli.errors import InputMismatchError

from . import touch_image


def test_promote_and_over():
    rgb8 = np.array([[[0, 128, 255]]], np.uint8)
    np.testing.assert_array_equal(_promote(rgb8, np.dtype(np.uint16)), [[[0, 32896, 65535]]])
    alpha = np.array([[0, 255, 100]], np.uint8)
    mask = np.array([[1.0, 0.0, 0.5]], np.float32)
    np.testing.assert_array_equal(_over(mask, alpha), [[255, 255, 178]])


def test_reader_mixed_depths_alpha_and_shared_mask(tmp_path):
    fg16 = tmp_path / "fg.png"
    fga = np.dstack([np.full((12, 16, 3), 40000, np.uint16), np.full((12, 16), 65535, np.uint16)])
    fga[:, :8, 3] = 0
    assert cv2.imwrite(str(fg16), fga)
    bg = touch_image(tmp_path / "bg.png", value=10)
    reader = batch.InputReader(max_pixels=10_000)
    loaded = reader.load(batch.Item("fg", "alpha", fg16, bg))
    assert loaded.composite.dtype == np.uint16 and loaded.bit_depth == 16
    assert (loaded.composite[:, :8] == 10 * 257).all() and (loaded.composite[:, 8:] == 40000).all()
    assert loaded.mask_name.endswith("(alpha channel)") and loaded.alpha is None
    # one mask file for many composites: read once, size checked per item
    mask = touch_image(tmp_path / "mask.png", value=0, channels=1)
    spec = batch.InputSpec.from_args([tmp_path], mask=mask)
    reader.preload(spec)
    small = touch_image(tmp_path / "small.png", size=(6, 8))
    with pytest.raises(InputMismatchError, match="mask.png"):
        reader.load(batch.Item("small", "composite", small, None, mask))
    assert reader.load(batch.Item("bg", "composite", bg, None, mask)).mask_is_empty


def test_reader_refuses_all_foreground(tmp_path):
    comp = touch_image(tmp_path / "c.png")
    mask = touch_image(tmp_path / "m.png", value=255, channels=1)
    with pytest.raises(InputMismatchError, match="foreground everywhere"):
        batch.InputReader(max_pixels=10_000).load(batch.Item("c", "composite", comp, None, mask))
