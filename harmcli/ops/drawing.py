"""Small pictures made from images: thumbnails, mask outlines and one-line labels.

Shared by the pictures harmcli draws for people to look at: ``eval --grid`` (:mod:`harmcli.eval.runner`) and
``harmonize --sheet`` (:mod:`harmcli.batch.sheet`), so that a thumbnail means the same thing in both.
"""

from __future__ import annotations

import cv2
import numpy as np

OUTLINE_COLOUR = (255, 220, 0)  # yellow: visible on skin, sky and foliage alike, and not a colour harmonization makes
TEXT_COLOUR = (235, 235, 235)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_SCALE = 0.45


def to_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit copy of an image: uint16 by /257 rounded to nearest (what 8-bit file formats store), float in [0, 1]."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.rint(image / 257.0).astype(np.uint8)
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def thumb_size(shape, height: int, max_width: int | None = None) -> tuple[int, int]:
    """(H, W) of a thumbnail of an image of ``shape`` (H, W, ...): ``height`` tall with the aspect ratio kept, or,
    when that would be wider than ``max_width`` (a panorama), ``max_width`` wide and less tall."""
    h, w = int(shape[0]), int(shape[1])
    width = max(1, round(w * height / h))
    if max_width is not None and width > max_width:
        return max(1, round(h * max_width / w)), max_width
    return height, width


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A new array: ``image`` resized to ``size`` (H, W), keeping its dtype; area averaging when shrinking (no
    aliasing), bilinear when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image.copy()  # a copy even so: callers draw on the result, never on the caller's image
    interp = cv2.INTER_AREA if size[0] <= h and size[1] <= w else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, (size[1], size[0]), interpolation=interp))


def thumbnail(image: np.ndarray, height: int, max_width: int | None = None) -> np.ndarray:
    """An 8-bit thumbnail (see :func:`thumb_size`). Resized at the image's own depth first and rounded to 8 bits
    after, so a 100-megapixel 16-bit image never gets a full-size 8-bit copy."""
    return to_uint8(resize_to(image, thumb_size(image.shape, height, max_width)))


def draw_outline(tile: np.ndarray, mask: np.ndarray, colour=OUTLINE_COLOUR) -> np.ndarray:
    """Draw the outline of ``mask`` (H, W) float in [0, 1], any size) on ``tile`` in place, one pixel wide.

    The mask is shrunk to the tile and cut at 0.5 (a soft edge's middle). Holes are outlined too. Not anti-aliased:
    the pixels drawn are exactly the outline's, and the rest of the tile is the picture untouched.
    """
    small = resize_to(np.asarray(mask, np.float32), tile.shape[:2])
    contours, _ = cv2.findContours((small > 0.5).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(tile, contours, -1, colour, 1, cv2.LINE_8)
    return tile


def fit_text(text: str, max_width: int, scale: float = TEXT_SCALE) -> str:
    """``text`` cut (ending in "..") so that it is at most ``max_width`` pixels wide."""
    fitted = text
    while fitted and cv2.getTextSize(fitted, _FONT, scale, 1)[0][0] > max_width:
        fitted = fitted[:-1]
    if fitted != text and len(fitted) > 2:
        fitted = fitted[:-2] + ".."
    return fitted


def put_text(canvas: np.ndarray, text: str, x: int, y: int, max_width: int, color=TEXT_COLOUR, scale: float = TEXT_SCALE) -> None:
    """One line of text with its baseline at (x, y), cut to ``max_width`` pixels."""
    cv2.putText(canvas, fit_text(text, max_width, scale), (x, y), _FONT, scale, color, 1, cv2.LINE_AA)


def put_wrapped(
    canvas: np.ndarray, text: str, x: int, y: int, max_width: int, max_lines: int, line_height: int, color=TEXT_COLOUR
) -> None:
    """``text`` broken into lines at spaces to fit ``max_width``, at most ``max_lines`` (the last one cut)."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and cv2.getTextSize(f"{line} {words[0]}", _FONT, TEXT_SCALE, 1)[0][0] <= max_width:
            line += " " + words.pop(0)
        lines.append(line)
    if words:  # what did not fit goes on the last line, which put_text cuts with ".."
        lines[-1] = " ".join([lines[-1], *words])
    for i, line in enumerate(lines):
        put_text(canvas, line, x, y + i * line_height, max_width, color)
