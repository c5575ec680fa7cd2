"""Evaluate harmonization methods side by side on a dataset: each item is loaded once, every method runs on it.

Methods: ``harmcli`` (the network, through :func:`harmcli.pipeline.load_harmonizer`), ``identity`` (the composite itself:
the "do nothing" reference every paper reports), ``reinhard`` and ``hist`` (:mod:`harmcli.ops.baselines`).

Resolution: native by default (the image as stored). ``size=S`` resizes composite, mask, ground truth (and
background) to S x S first, ignoring the aspect ratio, as the iHarmony4 protocol does at 256 x 256, and runs
the methods at that size. Images are shrunk with ``cv2.INTER_AREA`` (area averaging, free of aliasing) and
enlarged with ``cv2.INTER_LINEAR``; they keep their bit depth. DoveNet resized with PIL's antialiased bilinear
filter and iDIH with OpenCV's plain bilinear one, so numbers at 256 can differ slightly from published ones.
The mask is resized the same way and kept soft (not re-binarised): fMSE then weights the pixels on the
object's outline by how much of them the object covers.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from harmcli.errors import InputMismatchError, UsageError
from harmcli.data.layouts import EvalItem
from harmcli.eval.metrics import METRICS, PSNR_CAP, compute_metrics, summarize
from harmcli.io.images import atomic_write, read_image, read_mask, write_image
from harmcli.ops.drawing import draw_outline, put_text, thumbnail

METHODS = ("harmcli", "identity", "reinhard", "hist")
DEFAULT_METHODS = METHODS

Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``method(composite, background, mask) -> harmonized`` (same dtype and size as ``composite``)."""


# ---------------------------------------------------------------------------------------------- loading


def _read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) RGB uint8/uint16 in sRGB (a file with another profile is converted, so that a pair's files and
    every dataset are scored in one space), upright; alpha is ignored (the mask file says what the foreground is)."""
    from harmcli.io.colour import as_srgb

    loaded = read_image(path)
    return as_srgb(loaded.rgb, loaded.metadata.icc, str(path))


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size`` (area when shrinking, bilinear when enlarging), keeping the dtype."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    interp = cv2.INTER_AREA if size <= min(height, width) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


@dataclass
class LoadedItem:
    """One item's arrays: composite/target/background (H, W, 3) uint8|uint16, mask (H, W) float32 in [0, 1]."""

    composite: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    background: np.ndarray


def load_item(item: EvalItem, size: int | None = None) -> LoadedItem:
    """Read an item (and resize it to ``size`` x ``size`` when given)."""
    composite = _read_rgb(item.composite_path)
    target = _read_rgb(item.target_path)
    shape = composite.shape[:2]
    if target.shape[:2] != shape:
        raise InputMismatchError(
            f"{item.target_path}: ground truth is {target.shape[1]}x{target.shape[0]}, "
            f"composite {item.composite_path.name} is {shape[1]}x{shape[0]}"
        )
    mask = read_mask(item.mask_path, size=shape)
    background = composite
    if item.background_path is not None:
        background = _read_rgb(item.background_path)
        if background.shape[:2] != shape:
            raise InputMismatchError(
                f"{item.background_path}: background is {background.shape[1]}x{background.shape[0]}, "
                f"composite {item.composite_path.name} is {shape[1]}x{shape[0]}"
            )
    if size is not None:
        composite, target, mask = resize_square(composite, size), resize_square(target, size), resize_square(mask, size)
        background = composite if item.background_path is None else resize_square(background, size)
    return LoadedItem(composite, np.clip(mask, 0.0, 1.0), target, background)


# ---------------------------------------------------------------------------------------------- methods


def parse_methods(values: Sequence[str] | None) -> list[str]:
    """``["harmcli", "reinhard,hist"]`` -> ``["harmcli", "reinhard", "hist"]``, validated, duplicates dropped."""
    if not values:
        return list(DEFAULT_METHODS)
    names = [part.strip().lower() for value in values for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise UsageError(f"unknown method '{unknown[0]}'; choose from: {', '.join(METHODS)}")
    if not names:
        raise UsageError(f"no method given; choose from: {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def build_methods(
    names: Sequence[str], *, weights: str | Path | None = None, device: str = "auto", backend: str = "auto",
    flip_average: bool = True,
) -> dict[str, Method]:
    """Callables for ``names``; the network is loaded once, and only when ``harmcli`` is asked for, on the engine
    ``backend`` picks (:func:`harmcli.pipeline.load_harmonizer`)."""
    from harmcli.ops.baselines import histogram_match, reinhard_transfer

    methods: dict[str, Method] = {}
    for name in names:
        if name == "harmcli":
            from harmcli.pipeline import load_harmonizer

            harmonizer = load_harmonizer(weights, device, backend, flip_average=flip_average)
            methods[name] = lambda c, b, m, h=harmonizer: h.harmonize(c, b, m)[0]
        elif name == "identity":
            methods[name] = lambda c, b, m: c
        elif name == "reinhard":
            methods[name] = lambda c, b, m: reinhard_transfer(c, m)
        elif name == "hist":
            methods[name] = lambda c, b, m: histogram_match(c, m)
        else:
            raise UsageError(f"unknown method '{name}'; choose from: {', '.join(METHODS)}")
    return methods


# ---------------------------------------------------------------------------------------------- running


@dataclass
class EvalResult:
    """Per-image metrics (``images``: ``{"name": ..., method: {metric: value}}``) and per-method means."""

    dataset: str
    size: int | None
    methods: list[str]
    images: list[dict] = field(default_factory=list)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def empty_foreground(self) -> int:
        """Images with an empty mask: no fMSE / fPSNR, left out of those means."""
        return sum(1 for row in self.images if math.isnan(row[self.methods[0]]["fMSE"])) if self.methods else 0

    def to_dict(self) -> dict:
        """JSON-ready: NaN becomes null."""
        return _nan_to_none(
            {
                "dataset": self.dataset,
                "size": self.size,
                "count": len(self.images),
                "methods": list(self.methods),
                "empty_foreground": self.empty_foreground,
                "psnr_cap_db": PSNR_CAP,
                "summary": self.summary,
                "images": self.images,
            }
        )


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


OnItem = Callable[[EvalItem, LoadedItem, dict[str, np.ndarray], dict], None]


def evaluate(
    items: Sequence[EvalItem],
    methods: dict[str, Method],
    *,
    size: int | None = None,
    dataset: str = "",
    progress: Callable[[int, int, str], None] | None = None,
    on_item: OnItem | None = None,
) -> EvalResult:
    """Run every method on every item and score it against the ground truth.

    ``progress(done, total, name)`` is called after each item; ``on_item(item, loaded, outputs, row)`` gets the
    arrays (for a picture of the results) without the runner keeping them.
    """
    result = EvalResult(dataset=dataset, size=size, methods=list(methods))
    for index, item in enumerate(items):
        loaded = load_item(item, size)
        row: dict = {"name": item.name}
        outputs: dict[str, np.ndarray] = {}
        for name, method in methods.items():
            output = method(loaded.composite, loaded.background, loaded.mask)
            outputs[name] = output
            row[name] = compute_metrics(output, loaded.target, loaded.mask)
        result.images.append(row)
        if on_item is not None:
            on_item(item, loaded, outputs, row)
        if progress is not None:
            progress(index + 1, len(items), item.name)
    for name in methods:
        result.summary[name], result.counts[name] = summarize(row[name] for row in result.images)
    return result


# ---------------------------------------------------------------------------------------------- outputs


def save_json(result: EvalResult, path: str | Path) -> Path:
    """The summary and per-image metrics; NaN (undefined fMSE/fPSNR) is written as null. Atomic."""
    data = (json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n").encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


def save_csv(result: EvalResult, path: str | Path) -> Path:
    """One row per image per method; an empty cell where a metric is undefined (empty foreground)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "method", *METRICS])
    for row in result.images:
        for method in result.methods:
            values = row[method]
            writer.writerow([row["name"], method, *("" if math.isnan(values[m]) else repr(values[m]) for m in METRICS)])
    data = buffer.getvalue().encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


# ---------------------------------------------------------------------------------------------- picture

THUMB_HEIGHT = 192
_GAP = 4
_LABEL = 18
_TITLE = 22
_CANVAS = (24, 24, 24)


class GridCollector:
    """Keeps thumbnails of the ``k`` worst and ``k`` best items by one method's fMSE while the run goes on."""

    def __init__(self, method: str, k: int = 3):
        self.method = method
        self.k = k
        self.worst: list[tuple[float, str, list[tuple[str, np.ndarray]]]] = []
        self.best: list[tuple[float, str, list[tuple[str, np.ndarray]]]] = []

    def __call__(self, item: EvalItem, loaded: LoadedItem, outputs: dict[str, np.ndarray], row: dict) -> None:
        score = row[self.method]["fMSE"]
        if math.isnan(score):
            return
        admits_worst = len(self.worst) < self.k or score > self.worst[-1][0]
        admits_best = len(self.best) < self.k or score < self.best[-1][0]
        if not (admits_worst or admits_best):
            return
        tiles = self._tiles(loaded, outputs, row)
        if admits_worst:
            self.worst = sorted(self.worst + [(score, item.name, tiles)], key=lambda t: -t[0])[: self.k]
        if admits_best:
            self.best = sorted(self.best + [(score, item.name, tiles)], key=lambda t: t[0])[: self.k]

    def _tiles(self, loaded: LoadedItem, outputs: dict[str, np.ndarray], row: dict) -> list[tuple[str, np.ndarray]]:
        composite = draw_outline(thumbnail(loaded.composite, THUMB_HEIGHT), loaded.mask)
        tiles = [("composite", composite)]
        tiles += [(f"{name}  fMSE {row[name]['fMSE']:.1f}", thumbnail(image, THUMB_HEIGHT)) for name, image in outputs.items()]
        tiles.append(("ground truth", thumbnail(loaded.target, THUMB_HEIGHT)))
        return tiles

    def render(self) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB: worst first, then best (an item in both shows once); None when nothing was kept."""
        rows, seen = [], set()
        for label, kept in (("worst", self.worst), ("best", self.best)):
            for rank, (score, name, tiles) in enumerate(kept, 1):
                if name in seen:
                    continue
                seen.add(name)
                rows.append((f"{label} {rank} by {self.method} fMSE: {name}", tiles))
        if not rows:
            return None
        widths = [sum(t.shape[1] for _, t in tiles) + _GAP * (len(tiles) + 1) for _, tiles in rows]
        row_height = _TITLE + _LABEL + THUMB_HEIGHT + _GAP
        canvas = np.empty((row_height * len(rows) + _GAP, max(widths), 3), np.uint8)
        canvas[:] = _CANVAS
        for r, (title, tiles) in enumerate(rows):
            top = r * row_height + _GAP
            put_text(canvas, title, _GAP, top + 15, canvas.shape[1] - 2 * _GAP, color=(255, 220, 0))
            x = _GAP
            for label, tile in tiles:
                put_text(canvas, label, x + 2, top + _TITLE + 13, tile.shape[1] - 4)
                y = top + _TITLE + _LABEL
                canvas[y : y + THUMB_HEIGHT, x : x + tile.shape[1]] = tile
                x += tile.shape[1] + _GAP
        return canvas


def save_grid(picture: np.ndarray, path: str | Path) -> Path:
    """Write the RGB picture from :meth:`GridCollector.render` (PNG or JPEG by extension), atomically."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"{path}: --grid must end in .png or .jpg")
    return write_image(path, picture)
