"""Mismatch kinds beyond the random retouch: another photo's colour and tone, and another illuminant.

- **transfer** (as iHarmony4 built HCOCO): the colour statistics of a region of this photo are moved to those of
  another photo's object or whole frame, either by Lab mean/std (Reinhard et al. 2001) or by per-channel
  histogram matching. This is the mismatch of a real composite, where the object was shot elsewhere.
- **illuminant**: the photo as it would look under light of another colour temperature and intensity (another
  time of day): a von Kries gain in linear RGB from the blackbody colour at the new temperature relative to a
  daylight white point, and an exposure change.

All functions take and return float32 RGB (H, W, 3) in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from harmcli.data.retouch import LUMA

# Linear sRGB from CIE XYZ (D65), IEC 61966-2-1.
_XYZ_TO_RGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)
# The white a photo is assumed to be balanced for: the blackbody at D65's correlated colour temperature.
REFERENCE_CCT = 6504.0
# Colour temperatures of daylight, from candle-like sunset light to blue shade, drawn uniformly in mired (1e6/K):
# equal steps in mired are about equally visible, and in kelvin most draws would land in the bluish end.
CCT_RANGE = (2500.0, 12000.0)
INTENSITY_STOPS = (-1.5, 1.0)  # dusk is much darker than the photo; noon sun a little brighter
# Transfer amounts: a full transfer from a sky to a car is a mismatch no photographer would make; the transfer is
# mixed with the original by this much, and Lab contrast changes are limited to [1/2, 2].
TRANSFER_AMOUNT = (0.6, 1.0)
MAX_STD_GAIN = 2.0


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    rgb = np.clip(rgb, 0.0, 1.0)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055).astype(np.float32)


def planckian_xy(cct: float) -> tuple[float, float]:
    """CIE 1931 chromaticity of a blackbody at ``cct`` kelvin (1667-25000 K), from the cubic fits of
    Kim et al. (2002) to the Planckian locus."""
    t = float(np.clip(cct, 1667.0, 25000.0))
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def blackbody_rgb(cct: float) -> np.ndarray:
    """Linear sRGB of a blackbody at ``cct`` kelvin, at luminance Y = 1."""
    x, y = planckian_xy(cct)
    xyz = np.array([x / y, 1.0, (1.0 - x - y) / y])
    return _XYZ_TO_RGB @ xyz


def illuminant_gains(cct: float, stops: float = 0.0) -> np.ndarray:
    """Per-channel linear gains that move a photo balanced for daylight to light of ``cct`` kelvin, ``stops``
    brighter. The colour part keeps luma: only the exposure term changes brightness."""
    gains = blackbody_rgb(cct) / blackbody_rgb(REFERENCE_CCT)
    gains = gains / float(gains @ LUMA)
    return (gains * 2.0**stops).astype(np.float32)


def change_illuminant(image: np.ndarray, cct: float, stops: float) -> np.ndarray:
    """``image`` (sRGB) re-lit by light of ``cct`` kelvin and ``stops`` of exposure (von Kries in linear RGB)."""
    return linear_to_srgb(srgb_to_linear(image) * illuminant_gains(cct, stops))


def random_illuminant(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A random other time of day: colour temperature (uniform in mired over CCT_RANGE) and intensity."""
    lo, hi = 1e6 / CCT_RANGE[1], 1e6 / CCT_RANGE[0]
    cct = 1e6 / rng.uniform(lo, hi)
    stops = rng.uniform(*INTENSITY_STOPS)
    return change_illuminant(image, cct, stops), {"cct": round(cct, 1), "stops": round(stops, 3)}


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image, dtype=np.float32), cv2.COLOR_RGB2Lab)


def lab_statistics_transfer(image: np.ndarray, source: np.ndarray, reference: np.ndarray, ref_region: np.ndarray) -> np.ndarray:
    """The whole of ``image`` mapped by the Lab mean/std transfer that takes the pixels ``source`` (bool (H, W)
    of ``image``) to the pixels ``ref_region`` of ``reference`` (Reinhard et al. 2001, in OpenCV's CIE Lab)."""
    lab = _lab(image)
    src = lab[source].astype(np.float64)
    ref = _lab(reference)[ref_region].astype(np.float64)
    gain = np.clip(ref.std(0) / np.maximum(src.std(0), 1e-3), 1 / MAX_STD_GAIN, MAX_STD_GAIN)
    moved = ((lab - src.mean(0)) * gain + ref.mean(0)).astype(np.float32)
    moved[..., 0] = np.clip(moved[..., 0], 0, 100)
    return np.clip(cv2.cvtColor(moved, cv2.COLOR_Lab2RGB), 0, 1).astype(np.float32)


def histogram_transfer(image: np.ndarray, source: np.ndarray, reference: np.ndarray, ref_region: np.ndarray) -> np.ndarray:
    """The whole of ``image`` mapped, per RGB channel, by the monotone curve that gives the pixels ``source`` the
    histogram of ``reference``'s pixels ``ref_region`` (CDF matching on a 256-level grid)."""
    levels = np.linspace(0.0, 1.0, 256)
    out = np.empty_like(image, dtype=np.float32)
    for c in range(3):
        src = np.sort(image[..., c][source].ravel())
        ref = np.sort(reference[..., c][ref_region].ravel())
        # CDF of the source at each level, then the reference's value at that quantile.
        quantile = np.searchsorted(src, levels, side="right") / src.size
        curve = np.quantile(ref, np.clip(quantile, 0.0, 1.0))
        out[..., c] = np.interp(image[..., c], levels, np.maximum.accumulate(curve))
    return np.clip(out, 0, 1)


TRANSFER_METHODS = {"lab": lab_statistics_transfer, "hist": histogram_transfer}


def random_transfer(
    image: np.ndarray, source: np.ndarray, reference: np.ndarray, ref_mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """``image`` given the colour and tone of ``reference``: a random method (Lab statistics or histogram) and a
    random reference region (its object, ``ref_mask`` > 0.5, or its whole frame), partly mixed with the original.
    ``source`` picks the pixels of ``image`` whose statistics are moved. Returns the image and what was done."""
    method = "lab" if rng.random() < 0.5 else "hist"
    region = "object" if rng.random() < 0.5 else "frame"
    ref_region = ref_mask > 0.5 if region == "object" else np.ones(ref_mask.shape, bool)
    if not ref_region.any() or not source.any():
        ref_region, region = np.ones(ref_mask.shape, bool), "frame"
    moved = TRANSFER_METHODS[method](image, source, reference, ref_region)
    amount = rng.uniform(*TRANSFER_AMOUNT)
    out = np.clip(image + amount * (moved - image), 0, 1).astype(np.float32)
    return out, {"method": method, "reference": region, "amount": round(amount, 3)}
