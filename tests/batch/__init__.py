"""Tests of :mod:`harmcli.batch`, one file per module; tiny images made here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def touch_image(path: Path, value: int = 128, size=(12, 16), dtype=np.uint8, channels: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if channels == 1 else (*size, channels)
    data = np.full(shape, value, dtype)
    assert cv2.imwrite(str(path), data)
    return path
