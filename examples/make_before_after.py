"""Draw ``before_after.png`` for the README: the example composite, harmcli's result, and the adjustment.

Runs the same code as ``harmcli harmonize examples/fg.png examples/bg.jpg examples/mask.png`` with the shipped
default weights (or ``--weights FILE``) on the example and on two variants of it whose foreground is scaled
per channel (darker, warmer); each row shows the composite, the result and the predicted curves and shading
map (the plot ``harmcli curves ... -o plot.png`` writes)::

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


# The example as rendered (too blue and dark for the evening light), then the same ball with other mismatches,
# so the picture shows how the correction grows with the mismatch (and where it stays short of it).
VARIANTS = (
    ("as rendered", (1.0, 1.0, 1.0)),
    ("foreground underexposed (x0.6)", (0.6, 0.6, 0.6)),
    ("foreground with a warm cast", (1.3, 1.0, 0.6)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    fg = read_image(HERE / "fg.png").rgb
    bg = read_image(HERE / "bg.jpg").rgb
    mask = read_mask(HERE / "mask.png", size=fg.shape[:2])
    harmonizer = Harmonizer.load(args.weights, device="cpu")
    rows = []
    for name, gains in VARIANTS:
        shifted = np.clip(fg.astype(np.float32) * np.float32(gains), 0, 255).astype(np.uint8)
        composite = make_composite(shifted, bg, mask)
        harmonized, adjustment = harmonizer.harmonize(composite, bg, mask)
        inside = mask > 0.5
        before, after = (np.round(img[inside].mean(0)).astype(int).tolist() for img in (composite, harmonized))
        print(f"{name}: mean foreground RGB {before} -> {after}")  # the numbers the README's caption quotes
        height = composite.shape[0]
        plot = render_curves_plot(adjustment)
        plot = cv2.resize(plot, (round(plot.shape[1] * height / plot.shape[0]), height), interpolation=cv2.INTER_AREA)
        gap = np.full((height, 8, 3), 255, np.uint8)
        rows.append(np.hstack([label(composite, f"composite: {name}"), gap, label(harmonized, "harmcli harmonize"), gap, plot]))
        rows.append(np.full((8, rows[-1].shape[1], 3), 255, np.uint8))
    picture = np.vstack(rows[:-1])
    picture = cv2.resize(picture, (picture.shape[1] * 2 // 3, picture.shape[0] * 2 // 3), interpolation=cv2.INTER_AREA)
    write_image(HERE / "before_after.png", picture)


if __name__ == "__main__":
    main()
