"""Classical harmonization baselines: colour statistics of the foreground moved to the background's.

Both functions take an (H, W, 3) RGB image (uint8, uint16, or float in [0, 1]) and an (H, W) soft mask
(1 = pasted foreground), and return a new image of the same dtype. Statistics are taken from the hard split
``mask > 0.5`` (foreground) and ``mask <= 0.5`` (background); the result is blended in with the soft mask, so
pixels where the mask is 0 are copied bit for bit. With an empty mask, or no background left, the input is
returned unchanged (as a copy).

- :func:`reinhard_transfer`: Reinhard, Ashikhmin, Gooch & Shirley, "Color Transfer between Images", IEEE CG&A
  2001. Per channel mean and standard deviation matching in a decorrelated colour space; we use OpenCV's
  CIE L*a*b* (float32, L in [0, 100]) instead of the paper's l-alpha-beta, as most re-implementations do.
- :func:`histogram_match`: per RGB channel, map each foreground value through the foreground's CDF and the
  inverse of the background's CDF (the same mapping as ``skimage.exposure.match_histograms``).
"""

from __future__ import annotations

import cv2
import numpy as np

from harmcli.ops.apply import mask_to_float

_MAXVAL = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_EPS = 1e-6


def _check(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
        raise ValueError(f"image (H, W, 3) and mask (H, W) must match, got {image.shape} and {mask.shape}")


def _split(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(soft weight, hard foreground, hard background), or None when either side is empty."""
    weight = mask_to_float(mask)
    foreground = weight > 0.5
    background = ~foreground
    if not foreground.any() or not background.any():
        return None
    return weight, foreground, background


def _blend(image: np.ndarray, adjusted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``image + w * (adjusted - image)`` where w > 0, on the image's own scale; elsewhere the input, copied."""
    out = image.copy()
    inside = weight > 0
    base = image[inside].astype(np.float32)
    w = weight[inside][:, None]
    blended = base + w * (adjusted[inside] - base)
    maxval = _MAXVAL.get(image.dtype)
    if maxval is not None:
        np.rint(blended, out=blended)
        np.clip(blended, 0.0, maxval, out=blended)
    out[inside] = blended.astype(image.dtype)
    return out


def reinhard_transfer(composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer of the foreground to the background's Lab mean and std.

    Args:
        composite: (H, W, 3) RGB, uint8 / uint16 / float in [0, 1].
        mask: (H, W) soft mask (uint8/uint16 full scale, or float in [0, 1]); 1 = foreground.

    Returns:
        (H, W, 3) of ``composite``'s dtype; pixels where ``mask`` is 0 are the input's, bit for bit.
    """
    _check(composite, mask)
    split = _split(mask)
    if split is None:
        return composite.copy()
    weight, foreground, background = split
    maxval = _MAXVAL.get(composite.dtype, 1.0)
    rgb = np.clip(composite.astype(np.float32) / np.float32(maxval), 0.0, 1.0)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    fg, bg = lab[foreground].astype(np.float64), lab[background].astype(np.float64)
    mean_fg, std_fg = fg.mean(axis=0), fg.std(axis=0)
    mean_bg, std_bg = bg.mean(axis=0), bg.std(axis=0)
    # A flat foreground channel has no spread to rescale: only its mean moves.
    gain = np.where(std_fg > _EPS, std_bg / np.maximum(std_fg, _EPS), 1.0)
    moved = ((lab - mean_fg) * gain + mean_bg).astype(np.float32)
    out_rgb = np.clip(cv2.cvtColor(moved, cv2.COLOR_Lab2RGB), 0.0, 1.0) * np.float32(maxval)
    return _blend(composite, out_rgb, weight)


def _cdf(values: np.ndarray, levels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their cumulative fraction (inclusive), from bincount for integer images."""
    if levels is not None:
        counts = np.bincount(values, minlength=levels)
        present = np.flatnonzero(counts)
        return present.astype(np.float64), np.cumsum(counts[present], dtype=np.float64) / values.size
    distinct, counts = np.unique(values, return_counts=True)
    return distinct.astype(np.float64), np.cumsum(counts, dtype=np.float64) / values.size


def histogram_match(composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match each RGB channel's foreground histogram to the background's (CDF matching).

    Args:
        composite: (H, W, 3) RGB, uint8 / uint16 / float in [0, 1].
        mask: (H, W) soft mask (uint8/uint16 full scale, or float in [0, 1]); 1 = foreground.

    Returns:
        (H, W, 3) of ``composite``'s dtype; pixels where ``mask`` is 0 are the input's, bit for bit.
    """
    _check(composite, mask)
    split = _split(mask)
    if split is None:
        return composite.copy()
    weight, foreground, background = split
    integer = composite.dtype in _MAXVAL
    levels = int(_MAXVAL[composite.dtype]) + 1 if integer else None
    adjusted = np.empty(composite.shape, np.float32)
    for c in range(3):
        channel = composite[..., c]
        src_values, src_cdf = _cdf(channel[foreground], levels)
        ref_values, ref_cdf = _cdf(channel[background], levels)
        if integer:
            # A lookup table over every code value also covers soft-edge pixels absent from the foreground.
            lut = np.interp(np.interp(np.arange(levels), src_values, src_cdf), ref_cdf, ref_values)
            adjusted[..., c] = lut.astype(np.float32)[channel]
        else:
            quantile = np.interp(channel.astype(np.float64), src_values, src_cdf)
            adjusted[..., c] = np.interp(quantile, ref_cdf, ref_values)
    return _blend(composite, adjusted, weight)
