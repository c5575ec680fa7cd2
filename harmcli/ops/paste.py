"""Pasting a foreground over a background: the composite ``C = M * F + (1 - M) * B`` (NumPy only)."""

from __future__ import annotations

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
