"""Generated photo-like scenes (textured background, soft object mask) and a typical predicted adjustment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from harmcli.bench.config import JPEG_QUALITY, MASK_COVERAGE, BenchSize
from harmcli.ops.adjustment import Adjustment


def _smooth_field(rng: np.random.Generator, width: int, height: int, cells: int, scale: float, channels: int = 3) -> np.ndarray:
    """Random values on a coarse grid, bicubically enlarged: smooth variation at about 1/cells of the frame."""
    grid = rng.normal(0.0, scale, (max(2, cells * height // max(width, height) + 2), cells + 2, channels)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, channels)


def _photo(rng: np.random.Generator, width: int, height: int, tint: tuple[float, float, float]) -> np.ndarray:
    """A photo-like uint8 RGB image: a colour gradient, blotchy texture at two scales and sensor noise."""
    image = _smooth_field(rng, width, height, 2, 45.0)
    image += np.asarray(tint, np.float32) * 255.0
    image += _smooth_field(rng, width, height, 24, 14.0)
    image += _smooth_field(rng, width, height, max(2, width // 12), 6.0)
    noise = np.empty((height, width, 3), np.float32)
    cv2.randn(noise, 0.0, 3.0)
    image += noise
    return np.clip(image, 0, 255).astype(np.uint8)


def object_mask(width: int, height: int, coverage: float = MASK_COVERAGE) -> np.ndarray:
    """A person-like silhouette (body, head, an arm) with a soft edge, about ``coverage`` of the frame: uint8."""
    # Drawn at a quarter of the size and enlarged bilinearly: the enlargement itself softens the edge.
    w, h = max(8, width // 4), max(8, height // 4)
    small = np.zeros((h, w), np.uint8)
    k = np.sqrt(coverage / 0.35)  # the proportions below cover about 35 % of the frame
    cx, base = w * 0.5, h * 0.62
    cv2.ellipse(small, (int(cx), int(base)), (max(1, int(w * 0.21 * k)), max(1, int(h * 0.40 * k))), 0, 0, 360, 255, -1)
    cv2.circle(small, (int(cx), int(base - h * 0.44 * k)), max(1, int(min(w, h) * 0.13 * k)), 255, -1)
    arm = (max(1, int(w * 0.13 * k)), max(1, int(h * 0.06 * k)))
    cv2.ellipse(small, (int(cx + w * 0.2 * k), int(base - h * 0.05)), arm, -25, 0, 360, 255, -1)
    blur = max(3, (min(w, h) // 60) * 2 + 1)
    small = cv2.GaussianBlur(small, (blur, blur), 0)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def make_scene(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(composite, background, mask): a warm, darker subject pasted into a cool background. uint8."""
    from harmcli.ops.paste import make_composite

    rng = np.random.default_rng(seed)
    background = _photo(rng, width, height, (0.35, 0.45, 0.55))
    foreground = _photo(rng, width, height, (0.55, 0.40, 0.30))
    mask = object_mask(width, height)
    return make_composite(foreground, background, mask), background, mask


def synthetic_adjustment(low_res: int, seed: int = 0) -> Adjustment:
    """What a trained network typically predicts: gentle per-channel curves and a smooth shading map."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, 32, dtype=np.float32)
    gamma = rng.uniform(0.8, 1.25, (3, 1)).astype(np.float32)
    curves = np.clip(x[None] ** gamma * rng.uniform(0.9, 1.05, (3, 1)) + rng.uniform(0.0, 0.04, (3, 1)), 0.0, 1.0)
    shading = np.exp(_smooth_field(rng, low_res, low_res, 4, 0.25, 1)[..., 0])
    return Adjustment.from_uniform(curves.astype(np.float32), np.clip(shading, 0.25, 4.0).astype(np.float32))


@dataclass
class Scene:
    size: BenchSize
    composite: np.ndarray  # as decoded from the JPEG, RGB uint8
    background: np.ndarray
    mask: np.ndarray  # as harmcli reads it: float32 in [0, 1]
    composite_path: Path
    background_path: Path
    mask_path: Path
    coverage: float
    jpeg_bytes: int


def write_scene(size: BenchSize, folder: Path, seed: int, stem: str | None = None) -> Scene:
    """Generate a scene, write composite/background JPEGs (q95) and the mask PNG, read them back as harmcli does."""
    from harmcli.io.images import read_image, read_mask, write_image

    composite, background, mask = make_scene(size.width, size.height, seed)
    stem = stem or size.name
    paths = (folder / f"{stem}.jpg", folder / f"{stem}.background.jpg", folder / f"{stem}.mask.png")
    write_image(paths[0], composite, jpeg_quality=JPEG_QUALITY)
    write_image(paths[1], background, jpeg_quality=JPEG_QUALITY)
    write_image(paths[2], mask)
    decoded = read_mask(paths[2])
    return Scene(
        size, read_image(paths[0]).rgb, read_image(paths[1]).rgb, decoded, *paths,
        coverage=float(decoded.mean()), jpeg_bytes=paths[0].stat().st_size,
    )
