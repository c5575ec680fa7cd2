"""Pasting a foreground over a background: the composite ``C = M * F + (1 - M) * B`` (NumPy), and placing a
cutout smaller than its background (or not aligned with it) on the background's canvas first (OpenCV resizes).
"""

from __future__ import annotations

import math

import numpy as np

from harmcli.errors import InputMismatchError
from harmcli.ops.apply import mask_to_float

_INTEGER_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def make_composite(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``C = M * F + (1 - M) * B`` in the inputs' dtype (F and B must share dtype and size)."""
    if foreground.shape != background.shape or foreground.dtype != background.dtype:
        raise InputMismatchError(
            f"foreground ({foreground.shape[1]}x{foreground.shape[0]}, {foreground.dtype}) and background "
            f"({background.shape[1]}x{background.shape[0]}, {background.dtype}) must have the same size and bit depth"
        )
    m = mask_to_float(mask)
    if m.min() >= 1.0 - 1e-6:
        return foreground.copy()
    if m.max() <= 1e-6:
        return background.copy()
    out = background.astype(np.float32)
    out += m[..., None] * (foreground.astype(np.float32) - out)
    if foreground.dtype in _INTEGER_TYPES:
        np.rint(out, out=out)
        return out.astype(foreground.dtype)
    return out


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(H, W) of a ``height`` x ``width`` image resized by ``scale``, rounded half up (0 when under half a pixel)."""
    return int(math.floor(height * scale + 0.5)), int(math.floor(width * scale + 0.5))


def resize_cutout(foreground: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``foreground`` (H, W, C) uint8/uint16/float32 and its (H, W) float32 ``mask`` resized to ``size`` (H, W),
    dtypes kept.

    The colours are resized premultiplied by the mask and divided by the resized mask afterwards: a cutout's
    transparent pixels hold arbitrary colours (often black), and averaging them into the edge pixels would give the
    pasted subject a dark fringe. Shrinking uses INTER_AREA (each output pixel the mean of what it covers: no
    aliasing, no ringing); enlarging uses INTER_LINEAR for both (a cubic kernel overshoots at a hard mask edge and
    would put a faint halo just outside it).
    """
    import cv2

    height, width = mask.shape[:2]
    new_height, new_width = size
    if (new_height, new_width) == (height, width):
        return foreground, mask
    interpolation = cv2.INTER_AREA if new_height * new_width < height * width else cv2.INTER_LINEAR

    def resized(image: np.ndarray) -> np.ndarray:
        out = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
        return out[..., None] if out.ndim == 2 and image.ndim == 3 else out  # OpenCV drops a single channel's axis

    m = mask.astype(np.float32)
    premultiplied = resized(foreground.astype(np.float32) * m[..., None])
    placed_mask = np.clip(resized(m), 0.0, 1.0)
    straight = resized(foreground.astype(np.float32))  # only where the resized mask is 0 (the colour is unused)
    covered = placed_mask[..., None] > 1e-6
    colour = np.where(covered, premultiplied / np.maximum(placed_mask[..., None], 1e-6), straight)
    if foreground.dtype in _INTEGER_TYPES:
        colour = np.clip(np.rint(colour), 0, np.iinfo(foreground.dtype).max)
    return colour.astype(foreground.dtype), placed_mask.astype(mask.dtype)


def centred_origin(size: tuple[int, int], canvas: tuple[int, int]) -> tuple[int, int]:
    """(x, y) that centres an image of ``size`` (H, W) on a ``canvas`` (H, W); rounded down (up and left) when the
    difference is odd, negative when the image is the larger."""
    return (canvas[1] - size[1]) // 2, (canvas[0] - size[0]) // 2


def covered_window(size: tuple[int, int], canvas: tuple[int, int], x: int, y: int) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the part of a ``canvas`` (H, W) that an image of ``size`` (H, W) with its
    top-left corner at (``x``, ``y``) covers; None when it covers none of it."""
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + size[1], canvas[1]), min(y + size[0], canvas[0])
    if left >= right or top >= bottom:
        return None
    return top, bottom, left, right


def place_cutout(
    foreground: np.ndarray, mask: np.ndarray, background: np.ndarray, x: int, y: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The foreground and its mask moved onto the background's canvas, top-left corner at pixel (``x``, ``y``).

    Returns the background-sized foreground (the background's own pixels where the cutout does not reach) and mask
    (0 there), ready for :func:`make_composite`; what hangs over an edge is cut off. None when no pixel of the
    cutout lands on the background. ``foreground`` must have the background's dtype and channels.
    """
    canvas_height, canvas_width = background.shape[:2]
    window = covered_window(mask.shape[:2], (canvas_height, canvas_width), x, y)
    if window is None:
        return None
    top, bottom, left, right = window
    placed = background.copy()
    placed[top:bottom, left:right] = foreground[top - y : bottom - y, left - x : right - x]
    placed_mask = np.zeros((canvas_height, canvas_width), mask.dtype)
    placed_mask[top:bottom, left:right] = mask[top - y : bottom - y, left - x : right - x]
    return placed, placed_mask
