"""The floor a harmcli run is measured against: a plain Python + OpenCV script doing the same file work.

It reads the composite JPEG and its mask, shrinks both to the network's size (the result is discarded: it
stands for the network's input), applies one fixed lookup table inside the mask with a soft blend, and writes a
JPEG at quality 95. No network and nothing harmcli-specific: what any curve tool must at least spend.

Run as a script, it is the one-shot floor (``harmcli bench`` starts it in a fresh process, and so can you)::

    python harmcli/bench/plain_opencv.py COMPOSITE.jpg MASK.png OUT.jpg [LOW_RES]

It imports only NumPy and OpenCV, on purpose: the start-up of a plain script is part of what is compared.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

JPEG_QUALITY = 95
TABLE = np.clip(np.arange(256) * 1.1 - 10, 0, 255).astype(np.uint8)  # a fixed brightening curve
RAMP = np.linspace(0.0, 1.0, 256, dtype=np.float32)  # mask code value -> blend weight


def process(composite_path: str, mask_path: str, output_path: str, low_res: int = 256) -> None:
    """Read, shrink (discarded), LUT + blend with the mask, write JPEG q95."""
    image = cv2.imread(str(composite_path), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    cv2.resize(image, (low_res, low_res), interpolation=cv2.INTER_AREA)
    cv2.resize(mask, (low_res, low_res), interpolation=cv2.INTER_AREA)
    weight = cv2.LUT(mask, RAMP)
    blended = cv2.blendLinear(cv2.LUT(image, TABLE), image, weight, 1.0 - weight)
    cv2.imwrite(str(output_path), blended, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: python plain_opencv.py COMPOSITE MASK OUT.jpg [LOW_RES]")
    process(*sys.argv[1:4], *(int(v) for v in sys.argv[4:]))
