"""Layered Photoshop files (.psd, and the large-document .psb) as a composite: the only module that imports
``psd_tools`` (the optional ``psd`` extra; ``pip install -e '.[psd]'`` from a checkout).

What the rest of harmcli sees: :data:`PSD_EXTENSIONS`, :func:`read_psd` (a file's subject layer, the picture below
it and what lies above it, as arrays at the document's size and bit depth) and :func:`write_psd` (the input's
layers with the subject's pixels harmonized). Nothing here imports psd-tools until a PSD is read or written.

How a PSD becomes harmcli's inputs:

* **The subject** is the top visible pixel layer (a smart object counts: Photoshop stores its rendered pixels), or
  the layer ``--layer NAME`` names. Its mask is what shows of it: its transparency, times its layer mask (when one
  is enabled), times its opacity and fill opacity, rounded to the document's bit depth, so that the same pixels
  exported as a cutout PNG/TIFF with that alpha give the same result. Its position on the canvas is the layer's.
* **The background** is the visible layers below the subject, composited here (normal blend mode, opacity, fill
  opacity, layer masks, groups of such layers); **the layers above** it, composited the same way, are drawn over
  the harmonized picture (:class:`Overlay`), so the output is the flattened document at the canvas size.
* **What is not composited here** is an error naming the layer (blend modes other than normal, Blend If
  sliders, adjustment and fill layers, shapes and vector masks, layer effects, clipping masks, artboards): harmcli
  does not depend on psd-tools' optional compositing extra, and a background that silently differs from what
  Photoshop shows would harmonize against the wrong picture. The message says what to do in Photoshop.
* **Checked before decoding**: the header's canvas size against ``--max-pixels``, the colour mode (RGB and
  grayscale; 8 or 16 bits) and, before each layer is decoded, its size. A channel psd-tools cannot decompress
  (it would hand out black and a warning) makes the file an error, as any other damage does.
* **Metadata** comes from the file's image resources, read from the bytes here (not through psd-tools): the ICC
  profile (1039), EXIF (1058), XMP (1060), IPTC (1028, with its digest 1061) and resolution (1005).

Writing a PSD (:func:`write_psd`): the input file is opened again, the subject layer's colour channels are replaced
by its own pixels with the adjustment applied (transparency, layer mask, name, position and every other layer and
setting are left as they were), and the merged preview image (what viewers and non-Photoshop tools show) is patched
where the picture changed; the embedded JPEG thumbnail is redrawn. psd-tools' public API can add layers but not
replace an existing layer's pixels, and its ``save()`` of an edited document recomposites the whole merged image
with its own renderer (parts of which need its optional extra), replacing Photoshop's pixels everywhere; so both
are done here on psd-tools' low-level records (``_record``, which psd-tools documents for advanced use, and a
layer's ``_channels``), and the records are written as they are.
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from harmcli.errors import HarmcliError, ImageReadError, ImageWriteError, InputMismatchError
from harmcli.io import iptc as iim
from harmcli.io.metadata import NO_METADATA, ImageMetadata, metadata_from_parts

PSD_EXTENSIONS = (".psd", ".psb")
INSTALL_HINT = "pip install 'psd-tools>=1.26,<2' (harmcli's psd extra)"

# The header's colour modes (the PSD specification's numbers) and what to do with the ones not read here.
_GRAYSCALE, _RGB = 1, 3
_MODE_NAMES = {0: "bitmap", 1: "grayscale", 2: "indexed-colour", 3: "RGB", 4: "CMYK", 7: "multichannel",
               8: "duotone", 9: "Lab"}
# Image resources carrying what an output inherits (see harmcli.io.metadata).
_RESOLUTION_INFO, _ICC_PROFILE, _EXIF, _XMP = 1005, 1039, 1058, 1060
_THUMBNAIL, _THUMBNAIL_PS4 = 1036, 1033
# psd-tools refuses to decode anything wider or taller than this (the PSD format's own limit; also for PSB files,
# which could be larger): said up front, not as a damaged file.
_MAX_SIDE = 30_000
_METADATA_RESOURCES = (_RESOLUTION_INFO, _ICC_PROFILE, _EXIF, _XMP, iim.IPTC_RESOURCE, iim.DIGEST_RESOURCE)
# Layer kinds (psd-tools' names) whose stored pixels are what Photoshop shows: a pixel layer, a smart object (its
# rendered copy) and a type layer (its rasterized text). Only the first two can be the subject.
_SUBJECT_KINDS = ("pixel", "smartobject")
_PAINTED_KINDS = ("pixel", "smartobject", "type")

# What _guard swaps while psd-tools runs (the warnings filters, the psd_tools logger's handlers) is process-wide, and
# a folder run reads the next item while it writes the last: one psd-tools call at a time.
_LOCK = threading.RLock()


class PsdSupportMissing(HarmcliError):
    """psd-tools (the ``psd`` extra) is not installed."""


class PsdLayerError(InputMismatchError):
    """The file's layers cannot be used as asked: no subject, a layer harmcli cannot composite, no such layer."""


# Said as HEIF, AVIF and ONNX Runtime say it: what is missing and the one command that installs it.
_MISSING = f".psd files need psd-tools (Python 3.11 or newer), which is not installed: {INSTALL_HINT}"


def _psd_tools():
    try:
        import psd_tools
    except ImportError:
        raise PsdSupportMissing(_MISSING) from None
    return psd_tools


def available() -> bool:
    """Whether psd-tools can be imported, without importing it (0.3 s)."""
    import importlib.util

    try:
        return importlib.util.find_spec("psd_tools") is not None
    except ValueError:  # a module entry of None (how tests hide it) has no spec
        return False


def require() -> None:
    """Raise PsdSupportMissing when psd-tools is not installed: once, before a command reads anything."""
    if not available():
        raise PsdSupportMissing(_MISSING)


# --------------------------------------------------------------------------------------------------- the header


@dataclass(frozen=True)
class PsdHeader:
    """The 26-byte file header (what is known before anything is decoded)."""

    version: int  # 1: PSD, 2: PSB
    channels: int
    height: int
    width: int
    depth: int
    mode: int


def read_header(path: Path, data: bytes) -> PsdHeader:
    """The header of ``data``; ImageReadError when it is not a PSD or is cut short."""
    if data[:4] != b"8BPS":
        raise ImageReadError(f"cannot read image '{path}': it is not a Photoshop file (no 8BPS signature)")
    if len(data) < 26:
        raise ImageReadError(f"cannot read image '{path}': the file is truncated (it ends inside the PSD header)")
    version, channels, height, width, depth, mode = struct.unpack_from(">H6xHIIHH", data, 4)
    if version not in (1, 2) or not 1 <= channels <= 56 or not height or not width:
        raise ImageReadError(f"cannot read image '{path}': the PSD header is damaged")
    return PsdHeader(version, channels, height, width, depth, mode)


def _check_header(path: Path, header: PsdHeader, max_pixels: int) -> None:
    if header.mode not in (_RGB, _GRAYSCALE):
        name = _MODE_NAMES.get(header.mode, f"colour mode {header.mode}")
        raise ImageReadError(
            f"cannot read image '{path}': it is a {name} document; harmcli reads RGB and grayscale PSDs "
            "(Image > Mode > RGB Color in Photoshop)"
        )
    if header.depth not in (8, 16):
        raise ImageReadError(
            f"cannot read image '{path}': it is a {header.depth}-bit document; harmcli reads 8- and 16-bit PSDs "
            "(Image > Mode > 16 Bits/Channel in Photoshop)"
        )
    if max(header.width, header.height) > _MAX_SIDE:
        raise ImageReadError(
            f"cannot read image '{path}': it is {header.width}x{header.height}; psd-tools reads documents up to "
            f"{_MAX_SIDE:,} pixels a side"
        )
    pixels = header.width * header.height
    if pixels > max_pixels:
        raise ImageReadError(
            f"image '{path}' is {header.width}x{header.height} ({pixels / 1e6:.3g} megapixels), more than the limit of "
            f"{max_pixels:,} pixels; raise it with --max-pixels if you trust the file"
        )


# --------------------------------------------------------------------------------------------------- reading


@dataclass
class Overlay:
    """The visible layers above the subject, composited: drawn over the harmonized picture.

    ``colour`` is (H, W, 3) float32 in [0, 1], premultiplied by ``alpha`` (H, W) float32 in [0, 1].
    """

    colour: np.ndarray
    alpha: np.ndarray

    def draw(self, rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``rgb`` (H, W, 3) uint8/uint16 with its ``alpha`` (None: opaque) under these layers (normal blending)."""
        top = float(np.iinfo(rgb.dtype).max)
        a = self.alpha[..., None]
        below = 1.0 if alpha is None else alpha.astype(np.float32)[..., None] / top
        colour = self.colour * top + rgb.astype(np.float32) * below * (1.0 - a)
        if alpha is None:
            return np.rint(np.clip(colour, 0, top)).astype(rgb.dtype), None
        out_alpha = a + below * (1.0 - a)
        with np.errstate(divide="ignore", invalid="ignore"):
            colour = np.where(out_alpha > 0, colour / out_alpha, 0.0)
        return (
            np.rint(np.clip(colour, 0, top)).astype(rgb.dtype),
            np.rint(out_alpha[..., 0] * top).astype(alpha.dtype),
        )


@dataclass
class PsdComposite:
    """A PSD read as harmcli's inputs, at the canvas size and the document's bit depth (uint8 or uint16).

    ``foreground`` is the subject's colour where it lies (0 elsewhere); ``coverage`` how much of it shows there
    (its transparency x layer mask x opacity, in the document's integer scale); ``background`` the visible layers
    below it composited, with ``background_alpha`` (None where they cover the canvas). ``overlay``: the visible
    layers above it (None when there are none). ``present`` is 255 where the subject layer has any pixel (its
    transparency alone, not its mask). ``data`` holds the file's bytes for :func:`write_psd`, and
    ``subject_path`` finds the subject again there (child indices from the top of the layer tree).
    """

    path: Path
    subject: str
    foreground: np.ndarray
    coverage: np.ndarray
    background: np.ndarray
    background_alpha: np.ndarray | None
    overlay: Overlay | None
    bit_depth: int
    gray: bool
    metadata: ImageMetadata
    present: np.ndarray | None = field(repr=False, default=None)  # (H, W) uint8: 255 where the layer has pixels
    data: bytes = field(repr=False, default=b"")
    subject_path: tuple[int, ...] = ()
    smart_object: bool = False

    @property
    def describe(self) -> str:
        """The subject as messages name it."""
        return f"{self.path} (layer '{self.subject}')"


def read_psd(path: Path, *, max_pixels: int, layer: str | None = None) -> PsdComposite:
    """Read ``path`` as a subject layer over the layers below it (see the module's docstring).

    Raises:
        ImageReadError: missing, not a PSD, damaged or truncated, a colour mode or bit depth not read here, more
            than ``max_pixels`` pixels (the canvas, or a layer about to be decoded).
        PsdLayerError: no subject (one layer, nothing visible below it), ``layer`` not found or not a pixel
            layer, a visible layer that cannot be composited here.
        PsdSupportMissing: psd-tools is not installed.
    """
    path = Path(path)
    header = read_header(path, _read_bytes(path, 26))
    _check_header(path, header, max_pixels)  # before the file is read, let alone parsed
    data = _read_bytes(path)
    header = read_header(path, data)  # the same file still?
    _check_header(path, header, max_pixels)
    metadata = _read_metadata(data, gray=header.mode == _GRAYSCALE)
    _psd_tools()
    with _guard(path):
        psd = _open(data, max_pixels)
        subject, route = _find_subject(psd, path, layer)
        reader = _Reader(psd, path, header, max_pixels)
        # The layers above first: one that cannot be composited (a shape or adjustment layer over a flattened
        # picture) is what the user has to hear about, not that nothing lies below the layer found under it.
        above = reader.paint(_above(psd, route), reader.canvas())
        overlay = Overlay(above[0], above[1]) if above[1].any() else None
        reader.painted = False
        background = reader.paint(_below(psd, route), reader.canvas())
        if not reader.painted:
            raise PsdLayerError(
                f"{path}: no visible layer lies below the subject '{subject.name}'; harmcli needs the subject on its own "
                "layer above the background (a flattened picture needs a mask instead: harmcli harmonize IMAGE --mask MASK)"
            )
        colour, alpha = reader.finish(background)
        foreground, coverage, present = reader.subject(subject)
    return PsdComposite(
        path=path, subject=subject.name, foreground=foreground, coverage=coverage, background=colour,
        background_alpha=alpha, overlay=overlay, bit_depth=header.depth, gray=header.mode == _GRAYSCALE,
        metadata=metadata, present=present, data=data, subject_path=route, smart_object=subject.kind == "smartobject",
    )


def _read_bytes(path: Path, size: int = -1) -> bytes:
    """The file's first ``size`` bytes (all of them: -1)."""
    try:
        if path.is_dir():
            raise ImageReadError(f"cannot read image '{path}': it is a folder, not a file")
        with open(path, "rb") as fh:
            data = fh.read(size)
    except FileNotFoundError:
        raise ImageReadError(f"cannot read image '{path}': the file does not exist") from None
    except PermissionError:
        raise ImageReadError(f"cannot read image '{path}': permission denied") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exc}") from None
    if not data:
        raise ImageReadError(f"cannot read image '{path}': the file is empty (0 bytes)")
    return data


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _guard(path: Path, *, writing: bool = False):
    """Run psd-tools calls: one at a time, its log lines and warnings kept off the terminal, and any failure of
    its own (damaged data: a struct, value or EOF error deep in the parser) turned into one ImageReadError (or
    ImageWriteError) naming the file. A channel it could not decompress, which it replaces by black with a
    warning, is an error too: the picture would be wrong."""
    logger = logging.getLogger("psd_tools")
    collect = _Collect()
    with _LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        propagate = logger.propagate
        logger.addHandler(collect)
        logger.propagate = False
        try:
            yield
        except HarmcliError:
            raise
        except MemoryError:
            raise ImageReadError(f"cannot read image '{path}': not enough memory to decode it") from None
        except Exception as exc:  # noqa: BLE001 - psd-tools raises many kinds on damaged input; each means "damaged"
            if writing:
                raise ImageWriteError(f"cannot write '{path}': psd-tools failed ({_first_line(exc)})") from None
            raise ImageReadError(
                f"cannot read image '{path}': the PSD file is damaged or truncated ({_first_line(exc)})"
            ) from None
        finally:
            logger.removeHandler(collect)
            logger.propagate = propagate
        failed = [str(w.message) for w in caught if type(w.message).__name__ == "PSDDecompressionWarning"]
        failed += [m for m in collect.messages if "replaced" in m and "black" in m]
        if failed:
            raise ImageReadError(
                f"cannot read image '{path}': the PSD file is damaged (a channel cannot be decompressed: "
                f"{failed[0].split(';')[0]})"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__


def _open(data: bytes, max_pixels: int):
    from psd_tools import PSDImage

    # psd-tools' own allocation ceiling (4 GiB by default) would refuse some documents that --max-pixels allows;
    # --max-pixels is harmcli's guard, checked on the canvas and on every layer before it is decoded. A layer is
    # decoded as up to 4 float32 planes, with copies: 64 bytes a pixel bounds it.
    psd = PSDImage.open(io.BytesIO(data), max_alloc_bytes=max(4 << 30, max_pixels * 64))
    _check_merged_image(psd)
    return psd


def _check_merged_image(psd) -> None:
    """Raise ValueError when the merged image (the last section, which psd-tools reads to the end of the file
    without a length) is cut short: a file truncated there would otherwise read without complaint, its layers
    intact, and a .psd written from it would carry the damage."""
    header, image = psd._record.header, psd._record.image_data
    rows = header.channels * header.height
    row_bytes = (header.width * header.depth + 7) // 8
    data, compression = image.data, int(image.compression)
    if compression == 0:  # raw
        complete = len(data) >= rows * row_bytes
    elif compression == 1:  # PackBits: a table of each row's byte count (2 bytes each, 4 in a PSB), then the rows
        size = 2 if header.version == 1 else 4
        table = rows * size
        if len(data) < table:
            complete = False
        else:
            counts = np.frombuffer(data, ">u2" if size == 2 else ">u4", count=rows)
            complete = len(data) >= table + int(counts.sum(dtype=np.int64))
    else:  # zip, with or without prediction: the deflate stream must reach its end
        import zlib

        stream = zlib.decompressobj()
        for start in range(0, len(data), 1 << 20):
            stream.decompress(data[start : start + (1 << 20)], 1 << 16)
            while stream.unconsumed_tail:
                stream.decompress(stream.unconsumed_tail, 1 << 16)
            if stream.eof:
                break
        complete = stream.eof
    if not complete:
        raise ValueError("the merged image at the end of the file is cut short")


# ------------------------------------------------------------------------------------------------- the layer tree


def _children(group) -> list:
    return list(group)


def _layer_names(psd) -> list[str]:
    """Every layer that is not a group, top to bottom."""
    return [layer.name for layer in reversed(list(psd.descendants())) if not layer.is_group()]


def _find_subject(psd, path: Path, name: str | None):
    """The subject layer and its route (child indices from the top of the tree)."""
    if name is not None:
        found = [layer for layer in psd.descendants() if layer.name == name]
        if not found:
            names = ", ".join(f"'{n}'" for n in _layer_names(psd)) or "none"
            raise PsdLayerError(f"{path}: no layer named '{name}'; its layers, top to bottom: {names}")
        if len(found) > 1:
            raise PsdLayerError(
                f"{path}: {len(found)} layers are named '{name}'; rename them in Photoshop so that one is, and pass that name"
            )
        subject = found[0]
        if subject.is_group() or subject.kind not in _SUBJECT_KINDS:
            raise PsdLayerError(
                f"{path}: layer '{name}' is {_kind_text(subject)}; the subject must be a pixel layer (or a smart object)"
            )
        if not subject.is_visible():
            raise PsdLayerError(
                f"{path}: layer '{name}' is hidden (or in a hidden group); show it in Photoshop, or pick a visible layer"
            )
        if not _has_content(subject):
            raise PsdLayerError(f"{path}: layer '{name}' is empty (it holds no pixels)")
    else:
        subject = _top_pixel_layer(psd)
        if subject is None:
            raise PsdLayerError(
                f"{path}: no visible pixel layer; harmcli needs the subject on its own layer above the background"
            )
    route = _route(psd, subject)
    _check_subject(path, subject)
    return subject, route


def _top_pixel_layer(group):
    for layer in reversed(_children(group)):
        if not layer.visible:
            continue
        if layer.is_group():
            found = _top_pixel_layer(layer)
            if found is not None:
                return found
        elif layer.kind in _SUBJECT_KINDS and _has_content(layer):
            return layer
    return None


def _has_content(layer) -> bool:
    return layer.has_pixels() and layer.width > 0 and layer.height > 0


def _route(psd, layer) -> tuple[int, ...]:
    route = []
    node = layer
    while node is not psd:
        parent = node.parent
        route.append(next(i for i, child in enumerate(parent) if child is node))
        node = parent
    return tuple(reversed(route))


def _at(psd, route: tuple[int, ...]):
    node = psd
    for index in route:
        node = _children(node)[index]
    return node


def _below(psd, route: tuple[int, ...]) -> list:
    """The layers painted before the subject, bottom first: in each group on the way down, the children before."""
    layers, node = [], psd
    for index in route:
        children = _children(node)
        layers.extend(children[:index])
        node = children[index]
    return layers


def _above(psd, route: tuple[int, ...]) -> list:
    """The layers painted after the subject, bottom first: its later siblings, then its group's, and so on up."""
    parts, node = [], psd
    for index in route:
        children = _children(node)
        parts.append(children[index + 1 :])
        node = children[index]
    return [layer for part in reversed(parts) for layer in part]


def _kind_text(layer) -> str:
    kind = "group" if layer.is_group() else layer.kind
    return {
        "pixel": "a pixel layer", "smartobject": "a smart object", "type": "a type layer", "shape": "a shape layer",
        "group": "a group", "artboard": "an artboard",
    }.get(kind, f"a {kind} layer (an adjustment or fill layer)")


def _blend_name(layer) -> str:
    return layer.blend_mode.name.replace("_", " ").lower()


def _check_subject(path: Path, subject) -> None:
    """What would make the subject look different from its pixels times its mask."""
    name = subject.name
    if subject.clipping:
        raise PsdLayerError(
            f"{path}: the subject '{name}' is clipped to the layer below it; release the clipping mask or merge the two "
            "layers in Photoshop"
        )
    if subject.blend_mode.name != "NORMAL":
        raise PsdLayerError(
            f"{path}: the subject '{name}' uses the {_blend_name(subject)} blend mode; harmcli composites normal "
            "layers only: set it to Normal, or export the foreground and background separately"
        )
    if _blend_if(subject):
        raise PsdLayerError(
            f"{path}: the subject '{name}' uses Blend If (Blending Options), which hides parts of it by brightness; "
            "harmcli composites normal layers only: reset its Blend If sliders in Photoshop (Layer > Layer Style > "
            "Blending Options), or export the foreground and background separately"
        )
    _check_effects_and_vectors(path, subject)
    node = subject.parent
    while node is not None and node.parent is not None:  # the groups holding the subject, up to the document
        problem = None
        if node.kind == "artboard":
            problem = "is an artboard"
        elif node.blend_mode.name not in ("NORMAL", "PASS_THROUGH"):
            problem = f"uses the {_blend_name(node)} blend mode"
        elif _blend_if(node):
            problem = "uses Blend If (Blending Options)"
        elif node.opacity != 255:
            problem = f"has {round(node.opacity / 2.55)} % opacity"
        elif _enabled_mask(node) or _enabled_vector_mask(node):
            problem = "has a mask"
        elif node.has_effects():
            problem = "has layer effects"
        if problem:
            raise PsdLayerError(
                f"{path}: the subject '{name}' lies in group '{node.name}', which {problem}; move the subject out of "
                "the group in Photoshop (or pick another layer with --layer)"
            )
        node = node.parent


def _enabled_mask(layer) -> bool:
    return layer.has_mask() and not layer.mask.disabled


# A layer record's blending ranges (Blend If) as psd-tools holds them: each range packs two black values and then two
# white values (one byte each, per Adobe's spec) into a (black, white) pair of 16-bit ints; this one passes every
# pixel. Some non-Adobe writers store zeros instead, which Photoshop's sliders cannot express: read as not set.
_BLEND_IF_OFF = ((0, 65535), (0, 0))


def _blend_if(layer) -> bool:
    """Whether the layer's (or group's) Blend If sliders are set: any composite (gray) or channel range, for this
    layer or the underlying one, other than the pass-everything default. Such a layer shows, and lets show through,
    depending on brightness, which the compositing here does not do."""
    ranges = getattr(layer._record, "blending_ranges", None)
    if ranges is None:  # a record without the block (psd-tools reads an empty one as None ranges)
        return False
    pairs = list(ranges.composite_ranges or [])
    for channel in ranges.channel_ranges or []:
        pairs.extend(channel or [])
    return any(tuple(pair) not in _BLEND_IF_OFF for pair in pairs)


def _enabled_vector_mask(layer) -> bool:
    if not layer.has_vector_mask():
        return False
    vector = layer.vector_mask
    if vector is None or vector.disabled:
        return False
    # Photoshop stores the pixel and vector masks combined (the "real" mask) when a layer has both; that one is read.
    return not (layer.has_mask() and layer.mask.has_real())


def _check_effects_and_vectors(path: Path, layer) -> None:
    if layer.has_effects():
        raise PsdLayerError(
            f"{path}: layer '{layer.name}' has layer effects (drop shadow, stroke, ...), which harmcli does not draw; "
            "rasterize them in Photoshop (Layer > Rasterize > Layer Style) or turn them off"
        )
    if _enabled_vector_mask(layer):
        raise PsdLayerError(
            f"{path}: layer '{layer.name}' has a vector mask, which harmcli does not draw; rasterize it in Photoshop "
            "(Layer > Rasterize > Vector Mask)"
        )


# ------------------------------------------------------------------------------------------------- compositing


class _Reader:
    """Decodes layers and composites them (normal blending) onto canvases of premultiplied float32 colour + alpha."""

    def __init__(self, psd, path: Path, header: PsdHeader, max_pixels: int):
        self.psd, self.path, self.header, self.max_pixels = psd, path, header, max_pixels
        self.height, self.width = header.height, header.width
        self.dtype = np.uint16 if header.depth == 16 else np.uint8
        self.top = float(np.iinfo(self.dtype).max)
        self.painted = False  # a visible layer with pixels was composited

    def canvas(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((self.height, self.width, 3), np.float32), np.zeros((self.height, self.width), np.float32)

    # -- one layer's pixels

    def _check_size(self, layer, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise ImageReadError(
                f"image '{self.path}': layer '{layer.name}' is {width}x{height} ({width * height / 1e6:.3g} megapixels), "
                f"more than the limit of {self.max_pixels:,} pixels; raise it with --max-pixels if you trust the file"
            )

    def _colour(self, layer) -> np.ndarray:
        """(h, w, 3) float32 in [0, 1] over the layer's box."""
        self._check_size(layer, layer.width, layer.height)
        colour = layer.numpy("color")
        if colour is None:  # pragma: no cover - callers ask only layers with pixels
            colour = np.zeros((layer.height, layer.width, 1), np.float32)
        if colour.shape[2] == 1:
            colour = np.repeat(colour, 3, axis=2)
        return colour[..., :3]

    def _coverage(self, layer) -> np.ndarray:
        """(h, w) float32: the layer's transparency x its layer mask x opacity x fill opacity, over its box."""
        shape = layer.numpy("shape")
        cover = np.ones((layer.height, layer.width), np.float32) if shape is None else shape[..., 0].astype(np.float32)
        mask = self._mask(layer, layer.left, layer.top, layer.height, layer.width)
        if mask is not None:
            cover *= mask
        cover *= np.float32(layer.opacity / 255.0) * np.float32(layer.fill_opacity / 255.0)
        return cover

    def _mask(self, layer, left: int, top: int, height: int, width: int) -> np.ndarray | None:
        """The layer's enabled layer mask over the box (left, top, width, height), float32 in [0, 1]; None if none.

        Outside the mask's own rectangle the mask has its stored background value (0 or 255), as Photoshop says."""
        if not _enabled_mask(layer):
            return None
        mask = layer.mask
        self._check_size(layer, mask.width, mask.height)
        out = np.full((height, width), mask.background_color / 255.0, np.float32)
        values = layer.numpy("mask")
        if values is not None and values.size:
            _paste(out, values[..., 0], mask.left - left, mask.top - top)
        return out

    # -- the subject

    def subject(self, layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The subject at the canvas size: its colour (dtype), its coverage (dtype, the document's scale) and where
        the layer has pixels at all (uint8 0/255)."""
        colour = np.rint(self._colour(layer) * self.top).astype(self.dtype)
        shape = layer.numpy("shape")  # None: a layer without transparency (Photoshop's Background), opaque
        has_pixels = np.full((layer.height, layer.width), 255, np.uint8)
        if shape is not None:
            has_pixels[shape[..., 0] == 0] = 0
        coverage = np.rint(self._coverage(layer) * self.top).astype(self.dtype)
        foreground = np.zeros((self.height, self.width, 3), self.dtype)
        cover = np.zeros((self.height, self.width), self.dtype)
        present = np.zeros((self.height, self.width), np.uint8)
        _paste(foreground, colour, layer.left, layer.top)
        _paste(cover, coverage, layer.left, layer.top)
        _paste(present, has_pixels, layer.left, layer.top)
        return foreground, cover, present

    # -- everything else

    def paint(self, layers: Iterable, canvas: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Composite ``layers`` (bottom first) onto ``canvas``; errors for what cannot be composited here."""
        for layer in layers:
            if not layer.visible:
                continue
            if layer.is_group():
                self._group(layer, canvas)
            else:
                self._leaf(layer, canvas)
        return canvas

    def _refuse(self, layer, what: str) -> None:
        raise PsdLayerError(
            f"{self.path}: layer '{layer.name}' {what}, which harmcli does not composite; flatten the layers other than "
            "the subject in Photoshop (or rasterize that layer), or export the foreground and background separately"
        )

    def _group(self, group, canvas) -> None:
        if group.kind == "artboard":
            self._refuse(group, "is an artboard")
        if group.clipping:
            self._refuse(group, "is a clipping mask")
        if group.blend_mode.name not in ("NORMAL", "PASS_THROUGH"):
            self._refuse(group, f"is a group with the {_blend_name(group)} blend mode")
        if _blend_if(group):
            self._refuse(group, "is a group that uses Blend If (Blending Options)")
        _check_effects_and_vectors(self.path, group)
        # With normal blending inside, a pass-through group composites like an isolated one: painting its children
        # straight onto the backdrop and painting them onto a clear layer that is then laid over it with the
        # group's opacity and mask give the same picture.
        inner = self.paint(_children(group), self.canvas())
        weight = np.full((self.height, self.width), np.float32(group.opacity / 255.0), np.float32)
        mask = self._mask(group, 0, 0, self.height, self.width)
        if mask is not None:
            weight *= mask
        colour, alpha = canvas
        colour *= (1.0 - inner[1] * weight)[..., None]
        colour += inner[0] * weight[..., None]
        alpha *= 1.0 - inner[1] * weight
        alpha += inner[1] * weight

    def _leaf(self, layer, canvas) -> None:
        if layer.clipping:
            self._refuse(layer, "is a clipping mask")
        kind = layer.kind
        if kind not in _PAINTED_KINDS:
            if kind == "shape":
                self._refuse(layer, "is a shape layer")
            self._refuse(layer, f"is {_kind_text(layer)}")
        if not _has_content(layer):
            return  # an empty layer shows nothing
        if layer.blend_mode.name != "NORMAL":
            self._refuse(layer, f"uses the {_blend_name(layer)} blend mode")
        if _blend_if(layer):
            self._refuse(layer, "uses Blend If (Blending Options)")
        _check_effects_and_vectors(self.path, layer)
        cover = self._coverage(layer)
        colour = self._colour(layer) * cover[..., None]
        window = _window(layer.left, layer.top, layer.width, layer.height, self.width, self.height)
        if window is None:
            return
        (y0, y1, x0, x1), (v0, v1, u0, u1) = window
        target_colour, target_alpha = canvas[0][y0:y1, x0:x1], canvas[1][y0:y1, x0:x1]
        c, a = colour[v0:v1, u0:u1], cover[v0:v1, u0:u1]
        target_colour *= (1.0 - a)[..., None]
        target_colour += c
        target_alpha *= 1.0 - a
        target_alpha += a
        self.painted = self.painted or bool(a.any())

    def finish(self, canvas) -> tuple[np.ndarray, np.ndarray | None]:
        """A composited canvas as straight colour (dtype) and alpha (dtype; None when opaque everywhere)."""
        colour, alpha = canvas
        with np.errstate(divide="ignore", invalid="ignore"):
            straight = np.where(alpha[..., None] > 0, colour / alpha[..., None], 0.0)
        rgb = np.rint(np.clip(straight, 0.0, 1.0) * self.top).astype(self.dtype)
        stored = np.rint(np.clip(alpha, 0.0, 1.0) * self.top).astype(self.dtype)
        return rgb, (None if stored.min() == self.top else stored)


def _window(left: int, top: int, width: int, height: int, canvas_width: int, canvas_height: int):
    """Where a (width x height) block at (left, top) meets the canvas: (canvas slice, block slice) bounds as
    (y0, y1, x0, x1) each, or None when it lies outside."""
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + width, canvas_width), min(top + height, canvas_height)
    if x0 >= x1 or y0 >= y1:
        return None
    return (y0, y1, x0, x1), (y0 - top, y1 - top, x0 - left, x1 - left)


def _paste(target: np.ndarray, block: np.ndarray, left: int, top: int) -> None:
    """Copy ``block`` into ``target`` with its top-left corner at (left, top), cut to ``target``."""
    window = _window(left, top, block.shape[1], block.shape[0], target.shape[1], target.shape[0])
    if window is not None:
        (y0, y1, x0, x1), (v0, v1, u0, u1) = window
        target[y0:y1, x0:x1] = block[v0:v1, u0:u1]


# --------------------------------------------------------------------------------------------------- metadata


def _image_resources(data: bytes) -> bytes:
    """The image resources section (a run of 8BIM blocks), read from the file's layout: header (26 bytes), colour
    mode data (length + data), image resources (length + data)."""
    try:
        (colour_mode_length,) = struct.unpack_from(">I", data, 26)
        start = 30 + colour_mode_length
        (length,) = struct.unpack_from(">I", data, start)
    except struct.error:
        return b""
    return data[start + 4 : start + 4 + length]


def _read_metadata(data: bytes, *, gray: bool) -> ImageMetadata:
    """ICC profile, EXIF, XMP, IPTC and resolution from the image resources; damaged parts are dropped."""
    resources = iim.read_resources(_image_resources(data))
    if not resources:
        return NO_METADATA
    metadata = metadata_from_parts(resources.get(_ICC_PROFILE), resources.get(_EXIF), resources.get(_XMP))
    if gray and metadata.icc is not None or not gray and metadata.gray_icc is not None:
        metadata = replace(metadata, icc=None, gray_icc=None)  # a profile of the other kind describes nothing here
    record, digest = iim.checked_iptc(resources.get(iim.IPTC_RESOURCE), resources.get(iim.DIGEST_RESOURCE))
    if record is not None:
        metadata = replace(metadata, iptc=record, iptc_digest=digest)
    info = resources.get(_RESOLUTION_INFO)
    if info is not None and len(info) >= 12:
        # hRes and vRes: 16.16 fixed-point pixels per inch, whatever unit Photoshop displays them in.
        horizontal, vertical = struct.unpack_from(">I", info, 0)[0] / 65536.0, struct.unpack_from(">I", info, 8)[0] / 65536.0
        if all(1.0 <= v <= 100_000.0 for v in (horizontal, vertical)):
            metadata = replace(metadata, dpi=(horizontal, vertical))
    return metadata


# --------------------------------------------------------------------------------------------------- writing


def write_psd(
    path: Path,
    source: PsdComposite,
    adjustment,
    *,
    composite: np.ndarray,
    alpha: np.ndarray | None,
    protect=(),
    overwrite: bool = False,
    strip_metadata: bool = False,
) -> Path:
    """Write ``source``'s file, atomically, with the subject layer's colour harmonized by ``adjustment``.

    The adjustment is applied to the layer's own pixels (wherever it has any on the canvas, also where its layer
    mask hides them, so that editing the mask later shows harmonized pixels), not to the pasted picture: where the
    subject is partly transparent the flattened result is the harmonized layer over the background, which differs
    from a flat output by the blend at the edge only.

    Args:
        adjustment: a :class:`~harmcli.ops.adjustment.Adjustment`, or None to leave the layer as it is (an empty mask).
        composite: the picture the adjustment was predicted on (the subject over the background, (H, W, 3) in the
            document's dtype), with ``alpha`` (None: opaque): the merged preview is patched by the change from it.
        strip_metadata: drop the colour profile, EXIF, XMP, IPTC and resolution resources.
    """
    from harmcli.io.images import gray_from_rgb
    from harmcli.io.safe_write import atomic_write, check_not_protected
    from harmcli.ops.apply import apply_adjustment, mask_to_float
    from harmcli.ops.paste import make_composite

    path = Path(path)
    check_not_protected(path, protect)
    layer_rgb = before = after = None
    if adjustment is not None:
        if source.smart_object:
            raise ImageWriteError(
                f"cannot write '{path}': the subject '{source.subject}' is a smart object, whose pixels Photoshop redraws "
                "from its contents; rasterize it in Photoshop (Layer > Rasterize > Smart Object), or write .png or .tif"
            )
        layer_rgb = apply_adjustment(source.foreground, source.present, adjustment)
        after = make_composite(layer_rgb, source.background, mask_to_float(source.coverage))
        before = composite
        if source.overlay is not None:
            before, flattened_alpha = source.overlay.draw(before, alpha)
            after, _ = source.overlay.draw(after, alpha)
            alpha = flattened_alpha
        if source.gray:
            layer_rgb, before, after = gray_from_rgb(layer_rgb), gray_from_rgb(before), gray_from_rgb(after)
    with _guard(path, writing=True):
        psd = _open(source.data, 1 << 62)
        header = psd._record.header
        if layer_rgb is not None:
            _replace_layer_colour(_at(psd, source.subject_path), layer_rgb, header)
            if psd.has_preview():
                _patch_preview(psd, before, after, alpha)
            _redraw_thumbnail(psd, after, alpha)
        if strip_metadata:
            for key in list(psd.image_resources.keys()):
                if int(key) in _METADATA_RESOURCES:
                    del psd.image_resources[key]
        buffer = io.BytesIO()
        # The records as they now are: not psd.save(), which would recomposite the merged image (see the module's
        # docstring) once anything is marked as edited.
        psd._record.write(buffer)
    encoded = buffer.getvalue()
    return atomic_write(path, lambda fh: fh.write(encoded), protect=protect, overwrite=overwrite)


def _replace_layer_colour(layer, rgb: np.ndarray, header) -> None:
    """Re-encode the layer's colour channels (same compression) with ``rgb`` where the layer meets the canvas."""
    depth, version = header.depth, header.version
    dtype = np.uint16 if depth == 16 else np.uint8
    top = float(np.iinfo(dtype).max)
    planes = 1 if rgb.ndim == 2 else 3
    current = np.rint(layer.numpy("color") * top).astype(dtype)
    new = current.copy()
    block = rgb if rgb.ndim == 3 else rgb[..., None]
    window = _window(layer.left, layer.top, layer.width, layer.height, header.width, header.height)
    if window is not None:
        (y0, y1, x0, x1), (v0, v1, u0, u1) = window
        new[v0:v1, u0:u1, :planes] = block[y0:y1, x0:x1]
    stored = np.dtype(">u2") if depth == 16 else np.dtype("u1")
    for info, channel in zip(layer._record.channel_info, layer._channels):
        if 0 <= int(info.id) < planes:
            plane = np.ascontiguousarray(new[..., int(info.id)]).astype(stored)
            channel.set_data(plane.tobytes(), layer.width, layer.height, depth, version)
    # The writer recomputes every channel's length from its data (psd-tools' LayerInfo._update_channel_length).


def _planes(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image


def _patch_preview(psd, before: np.ndarray, after: np.ndarray, alpha: np.ndarray | None) -> None:
    """Add the change of the flattened picture to the stored merged image's colour planes.

    Photoshop stores an RGB or grayscale document's merged image matted over white where it is transparent
    (colour x alpha + white x (1 - alpha), the alpha in the next plane; psd-tools reads it so), so the stored value
    changes by the change of colour x alpha; the alpha itself does not change (nor does the subject's coverage).
    Patching the stored planes, rather than writing new ones, keeps every pixel that did not change exactly as
    Photoshop wrote it, and any saved selections (extra planes) as they were."""
    header = psd._record.header
    image_data = psd._record.image_data
    depth = header.depth
    dtype = np.dtype(">u2") if depth == 16 else np.dtype("u1")
    top = float(np.iinfo(np.uint16 if depth == 16 else np.uint8).max)
    planes = image_data.get_data(header, split=True)
    before, after = _planes(before).astype(np.float32), _planes(after).astype(np.float32)
    weight = 1.0 if alpha is None else (alpha.astype(np.float32) / top)[..., None]
    delta = (after - before) * weight
    changed = np.flatnonzero(np.abs(delta).reshape(-1, delta.shape[2]).max(axis=1) > 0)
    if changed.size == 0:
        return
    out = list(planes)
    for c in range(min(delta.shape[2], len(planes))):
        stored = np.frombuffer(planes[c], dtype).astype(np.float32).reshape(header.height, header.width)
        flat = stored.reshape(-1)
        flat[changed] = np.clip(np.rint(flat[changed] + delta[..., c].reshape(-1)[changed]), 0, top)
        out[c] = stored.astype(dtype).tobytes()
    image_data.set_data(out, header)


def _redraw_thumbnail(psd, after: np.ndarray, alpha: np.ndarray | None) -> None:
    """The JPEG thumbnail Photoshop keeps in the image resources (what file browsers show), redrawn from the new
    picture at its old size, matted over white where transparent; other thumbnail formats are left alone."""
    import cv2

    top = float(np.iinfo(after.dtype).max)
    for key, bgr in ((_THUMBNAIL, False), (_THUMBNAIL_PS4, True)):
        if key not in psd.image_resources:
            continue
        thumbnail = psd.image_resources[key].data
        if getattr(thumbnail, "fmt", None) != 1 or not thumbnail.width or not thumbnail.height:
            continue
        picture = _planes(after).astype(np.float32) / top
        if picture.shape[2] == 1:
            picture = np.repeat(picture, 3, axis=2)
        if alpha is not None:
            a = (alpha.astype(np.float32) / top)[..., None]
            picture = picture * a + (1.0 - a)
        small = cv2.resize(picture, (thumbnail.width, thumbnail.height), interpolation=cv2.INTER_AREA)
        pixels = np.rint(np.clip(small, 0, 1) * 255).astype(np.uint8)
        # Photoshop 5+ thumbnails are RGB JPEGs; cv2 encodes BGR input, so RGB data is handed over reversed, and the
        # old Photoshop 4 resource, whose JPEG holds BGR, gets the pixels as they are.
        ok, encoded = cv2.imencode(".jpg", pixels if bgr else pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            thumbnail.data = encoded.tobytes()
