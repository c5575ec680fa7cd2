"""Draw ``before_after.png`` for the README: the example composite, harmcli's result, and the adjustment.

Runs the same code as ``harmcli harmonize examples/fg.png examples/bg.jpg examples/mask.png`` with the shipped
default weights (or ``--weights FILE``), labels the two images and puts the predicted curves and shading map
(the plot ``harmcli curves ... -o plot.png`` writes) on the right::

    python examples/make_before_after.py [--weights FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from harmcli.io.adjustment_files import render_curves_plot
from harmcli.io.images import read_image, read_mask, write_image
from harmcli.ops.paste import make_composite
from harmcli.pipeline import Harmonizer

HERE = Path(__file__).resolve().parent


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (0, 0), (20 + 11 * len(text), 30), (0, 0, 0), thickness=-1)
    cv2.putText(out, text, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    fg = read_image(HERE / "fg.png").rgb
    bg = read_image(HERE / "bg.jpg").rgb
    mask = read_mask(HERE / "mask.png", size=fg.shape[:2])
    composite = make_composite(fg, bg, mask)
    harmonized, adjustment = Harmonizer.load(args.weights, device="cpu").harmonize(composite, bg, mask)
    height = composite.shape[0]
    plot = render_curves_plot(adjustment)
    plot = cv2.resize(plot, (round(plot.shape[1] * height / plot.shape[0]), height), interpolation=cv2.INTER_AREA)
    gap = np.full((height, 8, 3), 255, np.uint8)
    picture = np.hstack([label(composite, "composite"), gap, label(harmonized, "harmcli harmonize"), gap, plot])
    write_image(HERE / "before_after.png", picture)


if __name__ == "__main__":
    main()
