"""Fast full-resolution application of an :class:`Adjustment` to an image array (NumPy / OpenCV).

Matches :func:`harmcli.ops.compose.apply_adjustment_torch` within one code value. Pixels where the mask is 0
are copied, never recomputed, so the background is bit-exact; work is limited to the mask's bounding box.
"""

from __future__ import annotations

import cv2
import numpy as np

from harmcli.ops.adjustment import Adjustment

_MAXVAL = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def mask_to_float(mask: np.ndarray) -> np.ndarray:
    """(H, W) uint8/uint16/float mask -> float32 in [0, 1]."""
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) * (1.0 / 255.0)
    if mask.dtype == np.uint16:
        return mask.astype(np.float32) * (1.0 / 65535.0)
    return np.clip(mask.astype(np.float32, copy=False), 0.0, 1.0)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (y0, y1, x0, x1) of the mask's non-zero pixels, or None if it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def shading_region(shading: np.ndarray, full_size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of ``shading``, bilinearly upsampled to ``full_size`` (H, W), that covers ``box``.

    Only the box is computed: an affine warp maps each output pixel centre to the gain map with the same
    half-pixel convention as ``torch.nn.functional.interpolate(..., align_corners=False)``.
    """
    height, width = full_size
    y0, y1, x0, x1 = box
    sh, sw = shading.shape
    sx, sy = sw / width, sh / height
    # src = (dst + offset + 0.5) * scale - 0.5, clamped at the borders like torch.
    matrix = np.array([[sx, 0.0, (x0 + 0.5) * sx - 0.5], [0.0, sy, (y0 + 0.5) * sy - 0.5]], dtype=np.float64)
    return cv2.warpAffine(
        shading, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def _curves_float(region: np.ndarray, adjustment: Adjustment, maxval: float) -> np.ndarray:
    """Curves applied to an integer or float region, returned as float32 on the 0..maxval scale."""
    if region.dtype == np.uint8:
        lut = (adjustment.lut(256) * maxval).reshape(256, 1, 3)
        return cv2.LUT(region, lut)
    if region.dtype == np.uint16:
        lut = adjustment.lut(65536) * maxval
        out = np.empty(region.shape, np.float32)
        for c in range(3):
            np.take(lut[:, c], region[..., c], out=out[..., c])
        return out
    out = np.empty(region.shape, np.float32)
    for c in range(3):
        out[..., c] = np.interp(np.clip(region[..., c], 0, 1), adjustment.curve_x[c], adjustment.curve_y[c])
    return out


def apply_adjustment(image: np.ndarray, mask: np.ndarray, adjustment: Adjustment) -> np.ndarray:
    """Apply ``adjustment`` inside ``mask``.

    Args:
        image: (H, W, 3) RGB, uint8, uint16 or float32 in [0, 1].
        mask: (H, W) soft mask (uint8/uint16 full scale, or float in [0, 1]).
        adjustment: curves and optional shading map (covering the whole image).

    Returns:
        A new (H, W, 3) array of the same dtype. Pixels where ``mask`` is 0 equal the input bit for bit.
    """
    if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
        raise ValueError(f"image (H, W, 3) and mask (H, W) must match, got {image.shape} and {mask.shape}")
    out = image.copy()
    box = mask_bbox(mask)
    if box is None or adjustment.is_identity:
        return out
    y0, y1, x0, x1 = box
    region = image[y0:y1, x0:x1]
    maxval = _MAXVAL.get(image.dtype, 1.0)
    weight = mask_to_float(mask[y0:y1, x0:x1])
    adjusted = _curves_float(region, adjustment, maxval)
    if adjustment.shading is not None:
        gain = shading_region(adjustment.shading, image.shape[:2], box)
        adjusted *= gain[..., None]
        np.minimum(adjusted, maxval, out=adjusted)
    base = region.astype(np.float32)
    # base + w * (adjusted - base): where w == 0 this is exactly base, which is an integer, so rounding keeps it.
    adjusted -= base
    adjusted *= weight[..., None]
    adjusted += base
    if image.dtype in _MAXVAL:
        np.rint(adjusted, out=adjusted)
        np.clip(adjusted, 0, maxval, out=adjusted)
    out[y0:y1, x0:x1] = adjusted.astype(image.dtype)
    return out
