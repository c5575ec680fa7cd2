"""Layered Photoshop files for tests, built with psd-tools itself (``PSDImage.new`` + ``PixelLayer.fromarray``).

The merged preview image is written here too, from the expected flattened picture, rather than by psd-tools'
``save()``, which composites it only when its optional extra is installed: a file is then the same whether or not
the test machine has scipy. Image resources (ICC profile, EXIF, XMP, resolution) are spliced into the image
resources section as 8BIM blocks, as the PSD specification lays them out.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import sys

import numpy as np
import pytest
from PIL import Image

if sys.version_info < (3, 11):  # psd-tools 1.26 needs 3.11: there the "test" extra installs it, here nothing
    pytest.importorskip("psd_tools")

from psd_tools import PSDImage  # noqa: E402  (the "psd" extra, which the "test" extra includes)
from psd_tools.api.layers import Group, PixelLayer  # noqa: E402
from psd_tools.constants import BlendMode  # noqa: E402


@dataclass
class Layer:
    """One pixel layer: ``pixels`` (h, w, C) with C = colour channels (+ 1 for transparency), the document's dtype."""

    name: str
    pixels: np.ndarray
    left: int = 0
    top: int = 0
    mask: np.ndarray | None = None  # uint8 (mh, mw): a layer mask, 255 = shown
    mask_at: tuple[int, int] | None = None  # (left, top) of the mask; default the layer's
    mask_background: int = 0  # the mask's value outside its own rectangle
    opacity: int = 255
    fill: int = 255
    visible: bool = True
    blend: str | None = None  # a psd-tools BlendMode name, e.g. "MULTIPLY"
    clipping: bool = False
    blend_if: tuple | None = None  # (composite_ranges, channel_ranges) as psd-tools holds them; None: its default


@dataclass
class GroupSpec:
    """A group of layers (bottom first)."""

    name: str
    children: list
    opacity: int = 255
    visible: bool = True
    blend: str = "PASS_THROUGH"
    blend_if: tuple | None = None  # as Layer.blend_if


def new_document(size: tuple[int, int], layers: list, *, depth: int = 8, mode: str = "RGB") -> PSDImage:
    """A document of ``size`` (width, height) with ``layers`` (bottom first; Layer or GroupSpec)."""
    psd = PSDImage.new(mode, size, depth=depth)
    _add(psd, layers)
    return psd


def _add(parent, layers: list) -> None:
    for spec in layers:
        if isinstance(spec, GroupSpec):
            group = Group.new(parent, name=spec.name)
            _add(group, spec.children)
            group.opacity = spec.opacity
            group.visible = spec.visible
            group.blend_mode = BlendMode[spec.blend]
            _set_blend_if(group, spec.blend_if)
            continue
        layer = PixelLayer.fromarray(spec.pixels, parent, name=spec.name, top=spec.top, left=spec.left)
        if spec.mask is not None:
            left, top = spec.mask_at if spec.mask_at is not None else (spec.left, spec.top)
            layer.create_mask(Image.fromarray(spec.mask, "L"), top=top, left=left)
            layer._record.mask_data.background_color = spec.mask_background
        layer.opacity = spec.opacity
        layer.fill_opacity = spec.fill
        layer.visible = spec.visible
        if spec.blend is not None:
            layer.blend_mode = BlendMode[spec.blend]
        layer.clipping = spec.clipping
        _set_blend_if(layer, spec.blend_if)


def _set_blend_if(layer, ranges: tuple | None) -> None:
    """The layer record's blending ranges (the Blend If sliders): a (this layer, underlying layer) pair of ranges for
    the composite gray and for each channel, each range (black, white) with both halves of a (split) slider in one
    16-bit value, e.g. (0x4040, 0xFFFF): black at 64. (None, None) writes an empty block."""
    if ranges is not None:
        record = layer._record.blending_ranges
        record.composite_ranges, record.channel_ranges = ranges


def save(psd: PSDImage, path: Path, *, preview: np.ndarray | None = None, resources: dict[int, bytes] | None = None) -> Path:
    """Write ``psd`` to ``path`` with ``preview`` ((H, W, C) in the document's dtype) as its merged image, and
    ``resources`` (id -> data) added to its image resources."""
    header = psd._record.header
    if preview is not None:
        planes = preview if preview.ndim == 3 else preview[..., None]
        dtype = ">u2" if header.depth == 16 else "u1"
        data = [np.ascontiguousarray(planes[..., c]).astype(dtype).tobytes() for c in range(header.channels)]
        psd._record.image_data.set_data(data, header)
    buffer = io.BytesIO()
    psd._record.write(buffer)  # not psd.save(): see the module docstring
    data = buffer.getvalue()
    if resources:
        data = with_resources(data, resources)
    Path(path).write_bytes(data)
    return Path(path)


def resource_block(resource_id: int, payload: bytes) -> bytes:
    """One image resource: '8BIM', its id, an empty Pascal name padded to 2 bytes, the size and the data (padded
    to an even length)."""
    return b"8BIM" + struct.pack(">H", resource_id) + b"\x00\x00" + struct.pack(">I", len(payload)) + payload + (
        b"\x00" if len(payload) % 2 else b""
    )


def with_resources(data: bytes, resources: dict[int, bytes]) -> bytes:
    """``data`` (a PSD) with more image resources appended to its image resources section."""
    (colour_mode_length,) = struct.unpack_from(">I", data, 26)
    start = 30 + colour_mode_length
    (length,) = struct.unpack_from(">I", data, start)
    extra = b"".join(resource_block(k, v) for k, v in resources.items())
    section = data[start + 4 : start + 4 + length] + extra
    return data[:start] + struct.pack(">I", len(section)) + section + data[start + 4 + length :]


def resolution_info(dpi: float) -> bytes:
    """Resource 1005: horizontal and vertical resolution, 16.16 fixed pixels per inch, shown in inches."""
    fixed = int(round(dpi * 65536))
    return struct.pack(">IHHIHH", fixed, 1, 1, fixed, 1, 1)


def over(bottom: tuple[np.ndarray, np.ndarray], colour: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normal blending, straight colour: (colour, alpha) floats in [0, 1] laid over ``bottom``."""
    c0, a0 = bottom
    a = alpha + a0 * (1 - alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(a[..., None] > 0, (colour * alpha[..., None] + c0 * (a0 * (1 - alpha))[..., None]) / a[..., None], 0)
    return c, a


def on_canvas(block: np.ndarray, left: int, top: int, height: int, width: int, fill=0) -> np.ndarray:
    """``block`` placed at (left, top) on a canvas of (height, width), cut to it."""
    canvas = np.full((height, width, *block.shape[2:]), fill, block.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + block.shape[0], height), min(left + block.shape[1], width)
    canvas[y0:y1, x0:x1] = block[y0 - top : y1 - top, x0 - left : x1 - left]
    return canvas
