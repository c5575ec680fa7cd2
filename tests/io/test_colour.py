"""Foreground -> background colour-space conversion, checked against a float64 conversion written from the ICC
definition here (tone curve, D50-relative colorant matrices), with CIEDE2000 differences."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageCms

from harmcli.io import colour

from .icc import ADOBE_RGB, D50, PROPHOTO_RGB, build_rgb_profile, colorants

ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
PROPHOTO = build_rgb_profile("ProPhoto RGB (test)", **PROPHOTO_RGB)


def stored(space) -> tuple[np.ndarray, float]:
    """The colorant matrix and gamma as the profile stores them (s15Fixed16 and u8Fixed8)."""
    matrix = np.round(colorants(space["primaries"], space["white"]) * 65536) / 65536
    return matrix, round(space["gamma"] * 256) / 256


def to_xyz(rgb01: np.ndarray, space) -> np.ndarray:
    matrix, gamma = stored(space)
    return (np.clip(rgb01, 0, 1) ** gamma) @ matrix.T


def reference(rgb01: np.ndarray, source, target) -> np.ndarray:
    """float64 RGB in ``target`` (0..1): relative colorimetric, clipped to the target's gamut."""
    matrix, gamma = stored(target)
    linear = np.clip(to_xyz(rgb01, source) @ np.linalg.inv(matrix).T, 0, 1)
    return linear ** (1 / gamma)


def lab(xyz: np.ndarray) -> np.ndarray:
    t = xyz / D50
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 (Sharma, Wu and Dalal 2005), kL = kC = kH = 1."""
    l1, a1, b1 = np.moveaxis(lab1, -1, 0)
    l2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(c1p * c2p == 0, 0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lp, cp = (l1 + l2) / 2, (c1p + c2p) / 2
    hp = np.where(
        c1p * c2p == 0, h1p + h2p,
        np.where(np.abs(h1p - h2p) <= 180, (h1p + h2p) / 2, np.where(h1p + h2p < 360, (h1p + h2p + 360) / 2, (h1p + h2p - 360) / 2)),
    )
    t = 1 - 0.17 * np.cos(np.radians(hp - 30)) + 0.24 * np.cos(np.radians(2 * hp)) + 0.32 * np.cos(np.radians(3 * hp + 6)) - 0.20 * np.cos(np.radians(4 * hp - 63))
    sl = 1 + 0.015 * (lp - 50) ** 2 / np.sqrt(20 + (lp - 50) ** 2)
    sc, sh = 1 + 0.045 * cp, 1 + 0.015 * cp * t
    rt = -2 * np.sqrt(cp**7 / (cp**7 + 25.0**7)) * np.sin(np.radians(60 * np.exp(-(((hp - 275) / 25) ** 2))))
    return np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dH / sh) ** 2 + rt * (dc / sc) * (dH / sh))


def test_delta_e2000_matches_published_pairs():
    """Two of Sharma et al.'s test pairs."""
    pairs = [([50, 2.6772, -79.7751], [50, 0, -82.7485], 2.0425), ([50, 2.5, 0], [73, 25, -18], 27.1492)]
    for first, second, expected in pairs:
        assert delta_e2000(np.array(first, float), np.array(second, float)) == pytest.approx(expected, abs=1e-4)


def colours(n=40_000, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, n, 3))


def test_16bit_matrix_path_matches_the_reference():
    """ProPhoto 16-bit foreground into Adobe RGB: float32 conversion, no 8-bit step."""
    rgb = np.rint(colours() * 65535).astype(np.uint16)
    out, narrowed = colour.convert(rgb, PROPHOTO, ADOBE)
    assert out.dtype == np.uint16 and not narrowed
    expected = reference(rgb / 65535.0, PROPHOTO_RGB, ADOBE_RGB)
    error = delta_e2000(lab(to_xyz(expected, ADOBE_RGB)), lab(to_xyz(out / 65535.0, ADOBE_RGB)))
    assert error.mean() < 0.005 and error.max() < 0.05
    # Precision an 8-bit step would lose: values inside the gamut are mostly not multiples of 257.
    inside = (out > 0) & (out < 65535)
    assert np.mean(out[inside] % 257 != 0) > 0.95


def test_8bit_path_is_littlecms_and_close_to_the_reference():
    rgb = np.rint(colours() * 255).astype(np.uint8)
    out, narrowed = colour.convert(rgb, ADOBE, None)  # untagged background: sRGB
    assert out.dtype == np.uint8 and not narrowed
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(__import__("io").BytesIO(ADOBE)), srgb, "RGB", "RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    from PIL import Image

    np.testing.assert_array_equal(out, np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), transform)))
    # Checked in 16-bit floats against the 8-bit result: within LittleCMS's 8-bit rounding.
    wide, _ = colour.convert(rgb.astype(np.uint16) * 257, ADOBE, None)
    assert np.abs(wide / 257.0 - out).max() <= 1.0


def test_same_space_ignores_header_only_differences():
    other_date = bytearray(ADOBE)
    other_date[24:36] = b"\x07\xe8\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05"
    assert colour.same_space(ADOBE, bytes(other_date))
    assert colour.same_space(None, None)
    assert colour.same_space(None, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert not colour.same_space(ADOBE, PROPHOTO)
    assert not colour.same_space(None, ADOBE)


def test_profile_names_for_the_note():
    assert colour.profile_name(ADOBE) == "Adobe RGB (1998) (test)"
    assert colour.profile_name(None) == "untagged, taken as sRGB"
