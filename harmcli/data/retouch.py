"""Random retouches: the kinds of differences an artist's edit (or a different camera and light) makes.

Used to build supervised pairs: applying a retouch to the foreground only (target: the original photo) or to
the background only (target: the retouched photo) gives two composites whose correct answer is known.
All functions take and return float32 RGB (H, W, 3) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class RetouchStrength:
    """Ranges of the random edits; the defaults are strong enough that a mismatch is plainly visible."""

    exposure_stops: float = 1.0
    white_balance: float = 0.15  # std of log channel gains
    gamma_stops: float = 0.6
    contrast: tuple[float, float] = (0.7, 1.4)
    saturation: tuple[float, float] = (0.5, 1.5)
    dodge_burn: float = 0.5  # max |log gain| of the local map
    local_probability: float = 0.6


def smooth_gain_map(shape: tuple[int, int], rng: np.random.Generator, amount: float) -> np.ndarray:
    """A smooth multiplicative map like dodge-and-burn: soft brush dabs along a stroke plus a gradient.

    Returns (H, W) float32 gains around 1, at most ``exp(amount)`` either way.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    log_gain = np.zeros(shape, np.float32)
    # A linear gradient, like a graduated filter.
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * 2.0
    log_gain += rng.uniform(-1, 1) * ramp
    # Soft strokes: a few dabs along a random line.
    for _ in range(rng.integers(1, 4)):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        x1, y1 = rng.uniform(0, w), rng.uniform(0, h)
        radius = rng.uniform(0.1, 0.35) * max(h, w)
        sign = rng.choice([-1.0, 1.0])
        for t in np.linspace(0, 1, 5):
            cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            log_gain += sign * 0.4 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))
    peak = np.abs(log_gain).max()
    if peak > 0:
        log_gain *= amount * rng.uniform(0.3, 1.0) / peak
    return np.exp(log_gain).astype(np.float32)


def random_tone_curve(rng: np.random.Generator, gamma_stops: float) -> np.ndarray:
    """A monotone tone curve as a 256-entry LUT: a gamma mixed with an S (or inverse-S) curve."""
    x = np.linspace(0, 1, 256, dtype=np.float32)
    gamma = 2.0 ** rng.uniform(-gamma_stops, gamma_stops)
    y = x**gamma
    s = rng.uniform(-0.5, 0.5)  # >0: more contrast in midtones; <0: flatter
    smooth = x * x * (3 - 2 * x)
    y = np.clip(y + s * (smooth - x), 0, 1)
    return np.maximum.accumulate(y)


def random_retouch(image: np.ndarray, rng: np.random.Generator, strength: RetouchStrength = RetouchStrength()) -> np.ndarray:
    """Apply a random global edit (white balance, exposure, tone curve, contrast, saturation) and, with some
    probability, a local dodge-and-burn map. ``image``: float32 RGB (H, W, 3) in [0, 1]."""
    out = image.astype(np.float32, copy=True)
    gains = np.exp(rng.normal(0, strength.white_balance, 3)).astype(np.float32)
    gains /= float(gains @ LUMA)  # white balance should not also change brightness
    out *= gains
    out *= 2.0 ** rng.uniform(-strength.exposure_stops, strength.exposure_stops)
    np.clip(out, 0, 1, out=out)
    curve = random_tone_curve(rng, strength.gamma_stops)
    out = np.interp(out, np.linspace(0, 1, 256), curve).astype(np.float32)
    luma = out @ LUMA
    mean = float(luma.mean())
    out = (out - mean) * rng.uniform(*strength.contrast) + mean
    luma = (out @ LUMA)[..., None]
    out = luma + (out - luma) * rng.uniform(*strength.saturation)
    if rng.random() < strength.local_probability:
        out *= smooth_gain_map(image.shape[:2], rng, strength.dodge_burn)[..., None]
    return np.clip(out, 0, 1).astype(np.float32)


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Binary dilation of a (H, W) mask (any dtype, >0.5 = inside) by ``pixels``; returns uint8 0/255."""
    binary = (mask > (0.5 if mask.dtype.kind == "f" else 127)).astype(np.uint8) * 255
    if pixels <= 0:
        return binary
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(binary, kernel)
