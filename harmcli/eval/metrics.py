"""Image harmonization metrics, as the field reports them.

All metrics work on (H, W, 3) RGB images on the **0-255 scale**: uint8 as is, uint16 divided by 257 (so
65535 -> 255), float images assumed in [0, 1] and multiplied by 255. Everything is computed in float64.
Masks are (H, W), 1 = foreground (uint8/uint16 full scale or float in [0, 1]).

Definitions (iHarmony4 / DoveNet, Cong et al. CVPR 2020, and the evaluation code of iDIH, Sofiiuk et al. WACV
2021, which Harmonizer, Ke et al. ECCV 2022, and later papers reuse):

- **MSE**: mean of the squared error over all pixels and the three channels.
- **fMSE** (foreground MSE): ``sum_p m_p * sum_c (x - y)^2 / (3 * sum_p m_p)``: the squared error over the
  foreground pixels only, divided by the number of foreground pixels times 3. For a binary mask this is the
  mean over the foreground; a soft mask weights each pixel by its mask value (as iDIH does). An empty
  foreground has no fMSE: it is NaN, and averages skip it (:func:`summarize` counts how many were skipped).
- **PSNR**: ``10 * log10(255^2 / MSE)``, per image, then averaged over images (as in DoveNet/iDIH).
  Identical images have an infinite PSNR; :func:`summarize` caps every per-image PSNR at :data:`PSNR_CAP`
  (100 dB) so an average stays finite, and so do the per-image rows the runner records.
- **fPSNR**: ``10 * log10(255^2 / fMSE)``, same conventions.
- **SSIM**: Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004, with the standard settings: Gaussian window of
  11 x 11 (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, L = 255, population (not sample)
  covariances; computed per RGB channel and averaged. Matches scikit-image's
  ``structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)``: same symmetric ('reflect') borders and the same 5-pixel border crop
  before the mean. Images smaller than the window are averaged without the crop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import cv2
import numpy as np

PSNR_CAP = 100.0
"""Per-image PSNR / fPSNR ceiling in dB: the value recorded for identical images (infinite PSNR)."""

METRICS = ("MSE", "fMSE", "PSNR", "fPSNR", "SSIM")
HIGHER_IS_BETTER = {"MSE": False, "fMSE": False, "PSNR": True, "fPSNR": True, "SSIM": True}

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5), scikit-image's (scipy's) truncation
_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_PEAK = 255.0


def to_255(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float-in-[0, 1] image -> float64 on the 0-255 scale."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 257.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64) * 255.0
    raise ValueError(f"unsupported image dtype {image.dtype} (use uint8, uint16 or float in [0, 1])")


def mask_weight(mask: np.ndarray) -> np.ndarray:
    """(H, W) mask -> float64 weight in [0, 1]."""
    if mask.dtype == np.uint8:
        return mask.astype(np.float64) / 255.0
    if mask.dtype == np.uint16:
        return mask.astype(np.float64) / 65535.0
    if mask.dtype == bool:
        return mask.astype(np.float64)
    return np.clip(mask.astype(np.float64), 0.0, 1.0)


def _pair(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if prediction.shape != target.shape or prediction.ndim != 3 or prediction.shape[2] != 3:
        raise ValueError(f"prediction and target must both be (H, W, 3), got {prediction.shape} and {target.shape}")
    return to_255(prediction), to_255(target)


def mse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, 0-255 scale."""
    x, y = _pair(prediction, target)
    return float(np.mean((x - y) ** 2))


def fmse(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Foreground MSE: mask-weighted squared error / (3 * mask area); NaN for an empty foreground."""
    x, y = _pair(prediction, target)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {x.shape[:2]}")
    weight = mask_weight(mask)
    area = float(weight.sum())
    if area <= 1e-12:
        return math.nan
    squared = ((x - y) ** 2).sum(axis=2)
    return float((weight * squared).sum() / (3.0 * area))


def psnr_from_mse(value: float) -> float:
    """``10 log10(255^2 / mse)``: inf for 0, NaN for NaN."""
    if math.isnan(value):
        return math.nan
    if value <= 0.0:
        return math.inf
    return 10.0 * math.log10(_PEAK * _PEAK / value)


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB with peak 255 (inf for identical images)."""
    return psnr_from_mse(mse(prediction, target))


def fpsnr(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Foreground PSNR in dB, from :func:`fmse` (inf for an identical foreground, NaN for an empty one)."""
    return psnr_from_mse(fmse(prediction, target, mask))


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    size = 2 * _SSIM_RADIUS + 1

    def blur(a: np.ndarray) -> np.ndarray:
        # BORDER_REFLECT (abc|cba) is scipy's 'reflect', the mode scikit-image's SSIM uses.
        return cv2.GaussianBlur(a, (size, size), _SSIM_SIGMA, sigmaY=_SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    c1 = (_SSIM_K1 * _PEAK) ** 2
    c2 = (_SSIM_K2 * _PEAK) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    pad = _SSIM_RADIUS
    if ssim_map.shape[0] > 2 * pad and ssim_map.shape[1] > 2 * pad:
        ssim_map = ssim_map[pad:-pad, pad:-pad]
    return float(ssim_map.mean(dtype=np.float64))


def ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5), per RGB channel then averaged; 1.0 for identical images."""
    x, y = _pair(prediction, target)
    return float(np.mean([_ssim_channel(np.ascontiguousarray(x[..., c]), np.ascontiguousarray(y[..., c])) for c in range(3)]))


def compute_metrics(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """All five metrics for one image. PSNR/fPSNR are capped at :data:`PSNR_CAP`; fMSE/fPSNR may be NaN.

    Same values as :func:`mse`, :func:`fmse`, :func:`ssim`, ..., but one channel at a time, so that a
    full-resolution photo needs a few float64 planes of memory rather than several float64 copies of it.
    """
    if prediction.shape != target.shape or prediction.ndim != 3 or prediction.shape[2] != 3:
        raise ValueError(f"prediction and target must both be (H, W, 3), got {prediction.shape} and {target.shape}")
    if mask.shape != prediction.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {prediction.shape[:2]}")
    squared = np.zeros(prediction.shape[:2], np.float64)
    ssims = []
    for c in range(3):
        x = to_255(np.ascontiguousarray(prediction[..., c]))
        y = to_255(np.ascontiguousarray(target[..., c]))
        ssims.append(_ssim_channel(x, y))
        x -= y
        x *= x
        squared += x
    whole = float(squared.mean() / 3.0)
    weight = mask_weight(mask)
    area = float(weight.sum())
    fore = float((weight * squared).sum() / (3.0 * area)) if area > 1e-12 else math.nan
    return {
        "MSE": whole,
        "fMSE": fore,
        "PSNR": cap_psnr(psnr_from_mse(whole)),
        "fPSNR": cap_psnr(psnr_from_mse(fore)),
        "SSIM": float(np.mean(ssims)),
    }


def cap_psnr(value: float) -> float:
    return min(value, PSNR_CAP) if not math.isnan(value) else value


def summarize(rows: Iterable[Mapping[str, float]]) -> tuple[dict[str, float], dict[str, int]]:
    """Mean of each metric over images, skipping NaN (empty foregrounds); PSNRs capped at :data:`PSNR_CAP`.

    Returns ``(means, counts)``: ``counts[metric]`` is how many images went into that mean. A metric with no
    finite value at all has a NaN mean.
    """
    values: dict[str, list[float]] = {name: [] for name in METRICS}
    for row in rows:
        for name in METRICS:
            value = float(row[name])
            if math.isnan(value):
                continue
            if name in ("PSNR", "fPSNR"):
                value = cap_psnr(value)
            values[name].append(value)
    means = {name: (float(np.mean(v)) if v else math.nan) for name, v in values.items()}
    counts = {name: len(v) for name, v in values.items()}
    return means, counts
