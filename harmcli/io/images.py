"""Reading and writing images: bit depth kept, EXIF orientation applied, never a partial or overwritten file.

Formats: PNG, JPEG, TIFF, WebP (when this OpenCV build has it) and BMP. PNG and TIFF hold 8 or 16 bits per
channel; JPEG, WebP and BMP hold 8. TIFF goes through ``tifffile`` (16-bit, RGBA, grayscale, float); the other
formats through OpenCV's in-memory codecs, so paths with any characters work on every platform. HEIF/HEIC (what
phones save; 8 or 10 bits) goes through :mod:`harmcli.io.heif` (libheif), and AVIF (web exports; read and written
at 8 bits) through :mod:`harmcli.io.avif` (Pillow's libavif); each also reads its format's metadata.

Reading checks the header before decoding: the pixel count against ``max_pixels`` (a decompression-bomb guard)
and, for JPEG and PNG, that the file is complete, because OpenCV silently decodes a truncated JPEG into a
partly grey picture. Decoding is strict: what libjpeg, libpng or libtiff print about damaged data (OpenCV
decodes a JPEG with a bad Huffman code into garbage and only libjpeg's warning says so) is caught from the
terminal by :mod:`harmcli.io.native_log` and makes the file an error; OpenCV's own log is limited to errors,
which are caught the same way. Every problem is an :class:`~harmcli.errors.ImageReadError` naming
the file. What the reader leaves out (frames after the first, TIFF channels beyond RGBA) is said in
:attr:`LoadedImage.notes`.

Writing goes through :func:`harmcli.io.safe_write.atomic_write`: a temporary file in the destination folder
that gets its final name only once it is complete, so an interrupted or failed write never leaves a partial
file behind, and (``overwrite=False``) a file that appeared meanwhile is never replaced.

Colour profile, EXIF, resolution, XMP and IPTC are read from the bytes already in memory and written back by
:mod:`harmcli.io.metadata` (``LoadedImage.metadata``, ``write_image(metadata=...)``).

Grayscale files (one gray channel, with or without alpha) are read as three equal channels, since everything
downstream (the network, the curves, colour conversions) works on RGB, and say so in ``LoadedImage.gray``;
:func:`gray_from_rgb` turns a result back into one channel, and :func:`write_image` writes (H, W) data as a gray
file, with its gray colour profile, in every format that holds gray.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from harmcli.errors import HarmcliError, ImageReadError, ImageWriteError, InputMismatchError, UsageError
from harmcli.io import avif, heif
from harmcli.io.avif import AVIF_EXTENSIONS
from harmcli.io.heif import HEIF_EXTENSIONS
from harmcli.io.metadata import NO_METADATA, ImageMetadata, embed_metadata, finish_tiff, read_metadata, tiff_write_options
from harmcli.io.native_log import decoder_messages, is_corruption, python_log, readable
from harmcli.io.safe_write import atomic_write, check_not_protected

DEFAULT_MAX_PIXELS = 100_000_000

# OpenCV's warnings are noise to a user (every failure reaches us as a return value or an exception), but its
# errors are kept: during a decode they are caught (harmcli.io.native_log), and libtiff reports corrupt data
# only through them.
if hasattr(cv2, "setLogLevel"):
    cv2.setLogLevel(2)  # 2 = errors only


def _opencv_pixel_cap() -> int:
    """How many pixels OpenCV decodes in this process (OPENCV_IO_MAX_IMAGE_PIXELS, read once when cv2 loads).

    harmcli lifts the cap (harmcli/__init__.py) so that --max-pixels alone decides; when cv2 was loaded before
    harmcli could, it is OpenCV's default or what the environment said, and larger images are refused with a
    clear line instead of OpenCV's assertion text.
    """
    from harmcli import OPENCV_PIXEL_CAP_LIFTED

    if OPENCV_PIXEL_CAP_LIFTED:
        return 1 << 62
    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))
    except ValueError:  # a form OpenCV parses and we do not ("1G"): its own error is caught when decoding
        return 1 << 62


_OPENCV_MAX_PIXELS = _opencv_pixel_cap()

_HAVE_WEBP = bool(cv2.haveImageWriter("probe.webp"))
READ_EXTENSIONS: tuple[str, ...] = (
    (".png", ".jpg", ".jpeg", ".tif", ".tiff") + ((".webp",) if _HAVE_WEBP else ()) + (".bmp",) + HEIF_EXTENSIONS
    + AVIF_EXTENSIONS
)
WRITE_EXTENSIONS: tuple[str, ...] = READ_EXTENSIONS

# Formats that keep more than 8 bits: 16 in PNG and TIFF, 10 in HEIF (its uint16 data is written 10-bit). Not AVIF:
# Pillow's encoder writes 8 bits only.
_SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff") + HEIF_EXTENSIONS
_TIFF_EXTENSIONS = (".tif", ".tiff")
# Gray data is stored as one channel by PNG, TIFF, JPEG, BMP (8-bit gray palette), HEIF and AVIF (monochrome);
# WebP has no gray form (libwebp codes every picture as colour), so it gets three equal channels and no gray
# profile. Gray *with alpha* only PNG and TIFF hold: pillow-heif and Pillow's AVIF encoder turn it into RGBA
# (and BMP has no gray + alpha), so there the pixels are RGBA with three equal channels, again without the gray
# profile, which could not describe them.
_RGB_ONLY_EXTENSIONS = (".webp",)
_GRAY_ALPHA_EXTENSIONS = (".png",) + _TIFF_EXTENSIONS

# Rec. 709 luma weights (sRGB's primaries, which is what harmcli takes untagged pixels to be). Chosen over the
# plain mean because a harmonized gray picture is not quite neutral inside the mask (three curves, each predicted
# for its own channel) and, from a colour foreground pasted on a gray background, not neutral at all: luma is
# how bright each colour looks, as a black-and-white conversion should be, where the mean makes blues as
# bright as greens. The weights sum to 1, so three equal channels give their value back exactly.
_LUMA_709 = np.array([[0.2126, 0.7152, 0.0722]])

# OpenCV >= 4.10 decodes straight to RGB; older builds decode to BGR and we convert.
_IMREAD_COLOR_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_IMREAD_IGNORE_ORIENTATION = getattr(cv2, "IMREAD_IGNORE_ORIENTATION", 128)

_EXIF_ORIENTATION_TAG = 274


@dataclass
class LoadedImage:
    """A decoded image, upright (EXIF orientation applied).

    Attributes:
        path: the file it came from.
        rgb: (H, W, 3) uint8 or uint16, RGB order. Grayscale files are expanded to three equal channels.
        alpha: (H, W) of the same dtype as ``rgb``, or None when the file has no alpha channel.
        bit_depth: 8 or 16, matching ``rgb.dtype``.
        metadata: the file's RGB colour profile (or, for a gray file, its gray one in ``gray_icc``), EXIF (made
            upright), resolution, XMP and IPTC record (see harmcli.io.metadata).
        notes: what was left out or interpreted (frames after the first, extra channels), one sentence each,
            naming the file; for the caller to show as warnings.
        gray: the file stores one gray channel (plus alpha): ``rgb`` is that channel three times, and an output
            that follows this file is written gray again (:func:`gray_from_rgb`).
    """

    path: Path
    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    metadata: ImageMetadata = NO_METADATA
    notes: list[str] = field(default_factory=list)
    gray: bool = False


# --------------------------------------------------------------------------------------------------- reading


@dataclass
class _Header:
    """What the container says before any pixel is decoded."""

    kind: str  # "png", "jpeg", "tiff", "webp", "bmp", "heif", "avif"
    width: int | None = None
    height: int | None = None
    orientation: int = 1
    truncated: str | None = None  # why the file looks incomplete, or None
    frames: int = 1  # frames of an animated PNG / WebP; only the first is decoded
    gray: bool = False  # the header says one gray channel (+ alpha): PNG colour type 0 or 4, a one-component JPEG


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file as RGB (+ alpha) at its own bit depth, EXIF orientation applied.

    Args:
        path: a PNG, JPEG, TIFF, WebP, BMP, HEIF/HEIC or AVIF file (see ``READ_EXTENSIONS``). The content decides
            how it is decoded; the extension only has to be one of the supported ones.
        max_pixels: refuse images with more pixels than this (checked from the header before decoding).

    Returns:
        A :class:`LoadedImage`. Gray files become three equal channels (``gray`` True); gray + alpha and RGBA keep
        the alpha separately. Float TIFFs are clipped to [0, 1] and converted to 16-bit; 1-bit TIFFs to 8-bit.

    Raises:
        ImageReadError: missing file, a folder, empty, truncated or corrupt, not an image, unsupported
            format, or more than ``max_pixels`` pixels.
    """
    path = Path(path)
    notes: list[str] = []
    pixels, data, kind = _load_pixels(path, max_pixels, for_mask=False, notes=notes)
    if kind == "heif":
        metadata = heif.read_metadata(path, data, notes)
    elif kind == "avif":
        metadata = avif.read_metadata(path, data, notes)
    else:
        metadata = read_metadata(data, kind)  # from the bytes already read: containers only, no second decode
    gray = pixels.ndim == 2 or pixels.shape[2] == 2
    if not gray and metadata.gray_icc is not None:  # a gray profile in a colour file describes nothing here
        metadata = replace(metadata, gray_icc=None)
    alpha = None
    if pixels.ndim == 2:
        rgb = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    elif pixels.shape[2] == 2:
        rgb = cv2.cvtColor(np.ascontiguousarray(pixels[..., 0]), cv2.COLOR_GRAY2RGB)
        alpha = np.ascontiguousarray(pixels[..., 1])
    elif pixels.shape[2] == 3:
        rgb = pixels
    else:
        rgb = np.ascontiguousarray(pixels[..., :3])
        alpha = np.ascontiguousarray(pixels[..., 3])
    bit_depth = 16 if rgb.dtype == np.uint16 else 8
    return LoadedImage(path=path, rgb=rgb, alpha=alpha, bit_depth=bit_depth, metadata=metadata, notes=notes, gray=gray)


def read_mask(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    notes: list[str] | None = None,
) -> np.ndarray:
    """Read a mask as (H, W) float32 in [0, 1] (1 = the foreground to harmonize).

    Which channel is the mask: a grayscale file is used as is; for RGB files the first channel when all three
    are equal, else the luminance (0.299 R + 0.587 G + 0.114 B); for files with alpha (gray + alpha, RGBA)
    the alpha channel unless it is fully opaque everywhere, in which case the gray value as above. EXIF
    orientation is applied, as for images.

    A mask whose values are only 0 and 1 (what many segmentation tools write) is read as binary, 1 being
    the foreground: read as 1/255 it would change nothing.

    Args:
        path: any format :func:`read_image` reads.
        size: the (H, W) the mask must have (the image's); a mismatch raises InputMismatchError.
        max_pixels: as for :func:`read_image`.
        notes: when given, a sentence is appended for each interpretation worth a warning (a 0/1 mask,
            frames or channels left out).
    """
    path = Path(path)
    notes = [] if notes is None else notes
    pixels, _, _ = _load_pixels(path, max_pixels, for_mask=True, notes=notes)
    scale = 1.0 / (65535.0 if pixels.dtype == np.uint16 else 255.0)
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        alpha = pixels[..., -1]
        if alpha.min() < (65535 if pixels.dtype == np.uint16 else 255):
            pixels = alpha
        else:
            pixels = pixels[..., 0] if pixels.shape[2] == 2 else pixels[..., :3]
    if pixels.ndim == 3:
        first = pixels[..., 0]
        if np.array_equal(first, pixels[..., 1]) and np.array_equal(first, pixels[..., 2]):
            pixels = first
        else:
            pixels = cv2.cvtColor(pixels.astype(np.float32), cv2.COLOR_RGB2GRAY)
    if pixels.dtype != np.float32 and pixels.size and int(pixels.max()) == 1:
        scale = 1.0
        notes.append(f"{path}: the mask holds only the values 0 and 1; read as a binary mask (1 = foreground)")
    mask = pixels.astype(np.float32) * np.float32(scale)
    np.clip(mask, 0.0, 1.0, out=mask)
    if size is not None and tuple(mask.shape) != tuple(size):
        raise InputMismatchError(
            f"mask '{path}' is {mask.shape[1]}x{mask.shape[0]} (WxH) but the image is {size[1]}x{size[0]}; "
            f"the mask must have the image's size{swapped_size_hint(mask.shape, size)}"
        )
    return mask


def swapped_size_hint(shape: tuple[int, ...], other: tuple[int, ...]) -> str:
    """For a size mismatch message: a hint when the two sizes are each other's turned by 90 degrees, else ''.

    Every file is read upright by its own EXIF orientation; a phone photo (stored sideways, orientation 6 or 8)
    and a mask a tool saved from its stored pixels without that tag differ exactly so.
    """
    if tuple(shape[:2]) != tuple(other[:2])[::-1] or shape[0] == shape[1]:
        return ""
    return (
        " (width and height swapped: harmcli turns each file upright by its own EXIF orientation, and one of them is "
        "stored sideways without it; save both from the upright picture)"
    )


def _load_pixels(
    path: Path, max_pixels: int, *, for_mask: bool, notes: list[str]
) -> tuple[np.ndarray, bytes, str]:
    """Decode ``path`` to (H, W), (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA, uint8/uint16, upright.

    The channel layout is the file's: a gray file (with or without alpha) comes back gray even where the decoder
    hands out equal RGB(A) channels (libpng's gray + alpha), which is how :func:`read_image` knows it is gray.

    Also returns the file's bytes and its format ("png", "jpeg", "tiff", "webp", "bmp", "heif", "avif"), for the
    metadata.
    What was left out (frames, channels) is appended to ``notes``.
    """
    ext = path.suffix.lower()
    if ext not in READ_EXTENSIONS:
        shown = f"'{ext}'" if ext else "without an extension"
        raise ImageReadError(
            f"cannot read image '{path}': unsupported format {shown} (supported: {', '.join(READ_EXTENSIONS)})"
        )
    data = _read_bytes(path)
    header = _sniff(path, data)
    if header.truncated:
        raise ImageReadError(f"cannot read image '{path}': the file is truncated or corrupt ({header.truncated})")
    if header.width is not None and header.height is not None:
        _check_pixels(path, header.width, header.height, max_pixels)
    if header.kind == "tiff":
        pixels, header.orientation = _decode_tiff(path, data, max_pixels, notes)
    elif header.kind == "heif":
        width, height = heif.size(path, data)  # the container's, before decoding
        _check_pixels(path, width, height, max_pixels)
        pixels, heif_notes = heif.decode(path, data)  # upright already: libheif applies the file's rotation
        notes.extend(heif_notes)
    elif header.kind == "avif":
        width, height = avif.size(path, data)  # the container's, before decoding
        _check_pixels(path, width, height, max_pixels)
        pixels, avif_notes = avif.decode(path, data)  # upright already: the file's irot/imir boxes applied there
        notes.extend(avif_notes)
    else:
        pixels = _decode_opencv(path, data, header.kind, for_mask, gray=header.gray)
        if header.gray and pixels.ndim == 3:
            # OpenCV decodes gray + alpha PNGs (and gray ones with a tRNS transparent value) to RGBA whose three
            # colour channels libpng copied from the one gray channel: keep that one, and the alpha.
            pixels = np.ascontiguousarray(pixels[..., [0, 3]] if pixels.shape[2] == 4 else pixels[..., 0])
        if header.frames > 1:
            what = "an animated WebP" if header.kind == "webp" else "an animated PNG"
            notes.append(f"{path}: {what} ({header.frames} frames); only the first frame is used")
    _check_pixels(path, pixels.shape[1], pixels.shape[0], max_pixels)
    return _apply_orientation(pixels, header.orientation), data, header.kind


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise ImageReadError(f"cannot read image '{path}': it is a folder, not a file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"cannot read image '{path}': the file does not exist") from None
    except PermissionError:
        raise ImageReadError(f"cannot read image '{path}': permission denied") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exc}") from None
    if not data:
        raise ImageReadError(f"cannot read image '{path}': the file is empty (0 bytes)")
    return data


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageReadError(
            f"image '{path}' is {width}x{height} ({width * height / 1e6:.3g} megapixels), more than the limit of "
            f"{max_pixels:,} pixels; raise it with --max-pixels if you trust the file"
        )
    if width * height > _OPENCV_MAX_PIXELS:
        raise ImageReadError(
            f"image '{path}' is {width}x{height} ({width * height / 1e6:.4g} megapixels), more than OpenCV in "
            f"this process decodes ({_OPENCV_MAX_PIXELS:,} pixels, OPENCV_IO_MAX_IMAGE_PIXELS); set that variable "
            "before Python starts to allow more"
        )


def _sniff(path: Path, data: bytes) -> _Header:
    """Identify the format from the content and parse what the header offers."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _parse_png(data)
        if data.startswith(b"\xff\xd8\xff"):
            return _parse_jpeg(data)
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _Header("tiff")
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            if not _HAVE_WEBP:
                raise ImageReadError(f"cannot read image '{path}': this OpenCV build cannot decode WebP")
            return _parse_webp(data)
        if data.startswith(b"BM") and len(data) >= 26:
            return _parse_bmp(data)
        if avif.is_avif(data):  # before HEIF: AVIF files also list HEIF's structural brands
            return _Header("avif")
        if heif.is_heif(data):
            return _Header("heif")
    except struct.error:
        return _Header("unknown", truncated="the header ends early")
    raise ImageReadError(f"cannot read image '{path}': it is not an image (not PNG, JPEG, TIFF, WebP, BMP, HEIF or AVIF content)")


def _parse_png(data: bytes) -> _Header:
    header = _Header("png")
    pos, end = 8, len(data)
    seen_ihdr = False
    while True:
        if pos + 8 > end:
            header.truncated = "no IEND chunk: the file ends early"
            return header
        length, kind = struct.unpack_from(">I4s", data, pos)
        if pos + 12 + length > end:
            header.truncated = f"the {kind.decode('latin-1')} chunk ends early"
            return header
        if kind == b"IHDR" and length >= 8:
            header.width, header.height = struct.unpack_from(">II", data, pos + 8)
            header.gray = length >= 10 and data[pos + 17] in (0, 4)  # colour type: 0 gray, 4 gray + alpha
            seen_ihdr = True
        elif kind == b"eXIf":
            header.orientation = _exif_orientation(data[pos + 8 : pos + 8 + length])
        elif kind == b"acTL" and length >= 8:  # animated PNG: OpenCV decodes the default image only
            header.frames = max(1, struct.unpack_from(">I", data, pos + 8)[0])
        elif kind == b"IEND":
            if not seen_ihdr:
                header.truncated = "no IHDR chunk"
            return header
        pos += 12 + length


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _parse_jpeg(data: bytes) -> _Header:
    header = _Header("jpeg")
    pos, end = 2, len(data)
    found_exif = False
    while True:
        if pos + 4 > end:
            header.truncated = "the file ends inside the JPEG header"
            return header
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips them, so do we
            pos = data.find(b"\xff", pos)
            if pos < 0:
                header.truncated = "no image data after the JPEG header"
                return header
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            header.truncated = "the image ends before any image data"
            return header
        (length,) = struct.unpack_from(">H", data, pos + 2)
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end:
            header.truncated = "the file ends inside the JPEG header"
            return header
        if marker == 0xDA:  # start of scan: entropy-coded data follows, then EOI
            # 0xFFD9 cannot occur inside entropy-coded data (0xFF is always stuffed), so the first one after
            # the scan starts is the image's end; a thumbnail's EOI lives in APP1, before the scan.
            if data.find(b"\xff\xd9", segment_end) < 0:
                header.truncated = "no end-of-image marker: the file ends early"
            return header
        if marker == 0xE1 and not found_exif and data.startswith(b"Exif\x00\x00", pos + 4):
            header.orientation = _exif_orientation(data[pos + 10 : segment_end])
            found_exif = True
        elif marker in _SOF_MARKERS and length >= 7:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            if height and width:  # height 0 means "given later by a DNL marker"
                header.height, header.width = height, width
            header.gray = length >= 8 and data[pos + 9] == 1  # one component: a grayscale JPEG
        pos = segment_end


def _parse_webp(data: bytes) -> _Header:
    header = _Header("webp")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if 8 + riff_size > len(data):
        header.truncated = f"the RIFF container says {8 + riff_size} bytes but the file has {len(data)}"
        return header
    pos, end = 12, 8 + riff_size
    frames = 0
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        payload = data[pos + 8 : pos + 8 + size]
        if fourcc == b"VP8X" and size >= 10:
            header.width = 1 + int.from_bytes(payload[4:7], "little")
            header.height = 1 + int.from_bytes(payload[7:10], "little")
        elif fourcc == b"VP8 " and size >= 10 and header.width is None and payload[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack_from("<HH", payload, 6)
            header.width, header.height = width & 0x3FFF, height & 0x3FFF
        elif fourcc == b"VP8L" and size >= 5 and header.width is None and payload[0] == 0x2F:
            (bits,) = struct.unpack_from("<I", payload, 1)
            header.width, header.height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif fourcc == b"EXIF":
            header.orientation = _exif_orientation(payload)
        elif fourcc == b"ANMF":  # an animation frame; OpenCV decodes the first
            frames += 1
        pos += 8 + size + (size & 1)
    header.frames = max(1, frames)
    return header


def _parse_bmp(data: bytes) -> _Header:
    header = _Header("bmp")
    (file_size,) = struct.unpack_from("<I", data, 2)
    (dib_size,) = struct.unpack_from("<I", data, 14)
    if dib_size == 12:
        header.width, header.height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
        header.width, header.height = abs(width), abs(height)
    if file_size > len(data):
        header.truncated = f"the header says {file_size} bytes but the file has {len(data)}"
    return header


def _exif_orientation(blob: bytes) -> int:
    """The Orientation tag (274) of a TIFF-structured EXIF block, 1 when absent or unreadable."""
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    try:
        order = {b"II": "<", b"MM": ">"}[blob[:2]]
        magic, ifd = struct.unpack_from(order + "HI", blob, 2)
        if magic != 42:
            return 1
        (count,) = struct.unpack_from(order + "H", blob, ifd)
        for i in range(count):
            tag, kind = struct.unpack_from(order + "HH", blob, ifd + 2 + 12 * i)
            if tag == _EXIF_ORIENTATION_TAG:
                fmt = order + ("H" if kind == 3 else "I" if kind == 4 else "B")
                (value,) = struct.unpack_from(fmt, blob, ifd + 2 + 12 * i + 8)
                return value if 1 <= value <= 8 else 1
    except (KeyError, struct.error):
        pass
    return 1


def _decode_opencv(path: Path, data: bytes, kind: str, for_mask: bool, *, gray: bool = False) -> np.ndarray:
    buffer = np.frombuffer(data, dtype=np.uint8)
    # JPEG photos (the hot path) decode straight to 3-channel RGB; everything else unchanged so that 16-bit
    # and alpha survive, and so that a gray JPEG (``gray``: its header says one component) stays one channel.
    # Orientation is always ours to apply, never OpenCV's, so every format agrees.
    direct_rgb = kind == "jpeg" and not for_mask and not gray and _IMREAD_COLOR_RGB is not None
    flags = (_IMREAD_COLOR_RGB | _IMREAD_IGNORE_ORIENTATION) if direct_rgb else cv2.IMREAD_UNCHANGED
    try:
        with decoder_messages() as messages:
            pixels = cv2.imdecode(buffer, flags)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise ImageReadError(
                f"cannot read image '{path}': more pixels than OpenCV in this process decodes "
                "(OPENCV_IO_MAX_IMAGE_PIXELS); set that variable before Python starts to allow more"
            ) from None
        raise ImageReadError(f"cannot read image '{path}': the decoder failed ({_first_line(exc)})") from None
    damage = [readable(m) for m in messages if is_corruption(m)]
    if pixels is not None and pixels.size and damage:
        raise ImageReadError(f"cannot read image '{path}': the {kind.upper()} data is corrupt ({damage[0]})")
    if pixels is None or pixels.size == 0:
        reason = f"; {damage[0]}" if damage else ""
        raise ImageReadError(f"cannot read image '{path}': the file is corrupt or truncated ({kind} decoding failed{reason})")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"cannot read image '{path}': unsupported sample type {pixels.dtype}")
    if direct_rgb or pixels.ndim == 2:
        return pixels
    channels = pixels.shape[2]
    if channels == 1:
        return pixels[..., 0]
    if channels == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    raise ImageReadError(f"cannot read image '{path}': unsupported number of channels ({channels})")


def _decode_tiff(path: Path, data: bytes, max_pixels: int, notes: list[str]) -> tuple[np.ndarray, int]:
    """First page of a TIFF as (H, W[, C]) uint8/uint16 plus its orientation tag.

    tifffile decodes uncompressed, Deflate, LZMA and PackBits TIFFs itself; compressions it needs the optional
    ``imagecodecs`` package for (LZW, the default of many editors, JPEG) and CMYK / YCbCr files go through
    OpenCV's libtiff instead, except gray + alpha, which OpenCV has no form for: Pillow's libtiff decodes that
    (8-bit; see :func:`_decode_gray_alpha_tiff`). OpenCV's libtiff path takes at most 4 channels and 8 bits, so
    CMYK with alpha, and 16-bit CMYK (kept 16-bit), are decoded here and converted as libtiff converts plain CMYK
    (R = (max - K) (max - C) / max, no colour management). Further pages and channels beyond RGBA are left out,
    with a note.
    """
    import tifffile

    orientation_field = None
    gray_alpha = None  # for a gray + alpha page tifffile cannot decode: the fields to rewrite for Pillow
    try:
        with python_log("tifffile") as logged, tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            _check_pixels(path, width, height, max_pixels)
            for offset, count in zip(page.dataoffsets, page.databytecounts):
                if offset + count > len(data):
                    raise ImageReadError(f"cannot read image '{path}': the file is truncated (image data ends early)")
            orientation = 1
            tag = page.tags.get(_EXIF_ORIENTATION_TAG)
            if tag is not None and tag.count == 1 and tag.dtype in (3, 4) and 1 <= int(tag.value) <= 8:
                orientation = int(tag.value)
                orientation_field = (tag.valueoffset, tif.byteorder + ("H" if tag.dtype == 3 else "I"))
            photometric = int(page.photometric)
            colormap = page.colormap if photometric == 3 else None
            axes = page.axes
            extras = tuple(int(e) for e in page.extrasamples)
            # For messages: "MINISBLACK, LZW" (a value tifffile has no name for stays a number).
            kind = f"{getattr(page.photometric, 'name', page.photometric)}, {_compression_name(page)}"
            bits, samples = int(page.bitspersample), int(page.samplesperpixel)
            pages = _full_pages(tif)
            if pages > 1:
                notes.append(f"{path}: a TIFF with {pages} pages; only the first page is used")
            if photometric in _LAB:
                # libtiff's RGBA interface (OpenCV's path) converts Lab with its own fixed white point and no colour
                # management: colours came out about 12 levels off without a word. Refused, as a Lab .psd is.
                raise ImageReadError(
                    f"cannot read image '{path}': a Lab TIFF ({kind}); harmcli reads RGB, gray and CMYK: convert it "
                    "to RGB in your editor (Image > Mode > RGB Color in Photoshop)"
                )
            if photometric == _SEPARATED:
                inkset = page.tags.get(_INKSET_TAG)
                if samples < 4 or (inkset is not None and int(np.ravel(inkset.value)[0]) != 1):
                    raise ImageReadError(
                        f"cannot read image '{path}': a separated TIFF whose {samples} inks are not CMYK (a spot-colour "
                        "or multichannel file); save it as RGB or CMYK"
                    )
            cmyk_with_extras = photometric == _SEPARATED and samples > 4
            # libtiff's RGBA interface (OpenCV's path) converts 8-bit CMYK only: a 16-bit one is decoded here.
            deep_cmyk = photometric == _SEPARATED and bits > 8
            pixels = None
            if photometric in (0, 1, 2, 3) or cmyk_with_extras or deep_cmyk:
                try:
                    pixels = page.asarray()
                except ValueError as exc:
                    if "imagecodecs" not in str(exc):
                        raise
                    if cmyk_with_extras or deep_cmyk:
                        what = (
                            f"a CMYK TIFF with {samples - 4} extra channel(s) (alpha)" if cmyk_with_extras
                            else f"a {bits}-bit CMYK TIFF"
                        )
                        raise ImageReadError(
                            f"cannot read image '{path}': {what} compressed with {page.compression.name}, which harmcli "
                            "reads only uncompressed or Deflate-compressed; save it as RGB, or without compression"
                        ) from None
                    if photometric in (0, 1) and extras:
                        gray_alpha = _gray_alpha_fields(path, tif, page)
    except HarmcliError:
        raise
    except Exception as exc:  # tifffile raises many types (TiffFileError, ValueError, KeyError, ...)
        # What tifffile logged says more than what it raised after it ("index 0 out of range" for no pages).
        detail = logged[0] if logged else _first_line(exc)
        raise ImageReadError(f"cannot read image '{path}': not a readable TIFF ({detail})") from None

    if pixels is None:
        fields = list(gray_alpha or ())
        if orientation_field is not None:
            # libtiff would turn the pixels itself, and so would Pillow's TIFF reader; neutralise the tag so that
            # orientation is applied once, here.
            fields.append((*orientation_field, 1))
        if fields:
            patched = bytearray(data)
            for offset, form, value in fields:
                struct.pack_into(form, patched, offset, value)
            data = bytes(patched)
    if gray_alpha is not None:
        # OpenCV has no 2-channel images: its libtiff path hands gray + alpha back as gray alone, and the alpha (a
        # cutout's transparency, the subject's mask, kept in the output) would vanish without a word. Pillow's
        # libtiff keeps it; the result goes on below like tifffile's (MINISWHITE turned back there).
        pixels = _decode_gray_alpha_tiff(path, data, width, height)
    elif pixels is None:
        try:
            pixels = _decode_opencv(path, data, "tiff", for_mask=True)
        except ImageReadError as exc:
            if "can not handle" not in str(exc):
                raise
            # libtiff's RGBA interface refusing a layout it does not convert (16-bit YCbCr): the file is fine,
            # harmcli cannot read it. Not "corrupt or truncated".
            raise ImageReadError(
                f"cannot read image '{path}': unsupported TIFF layout ({kind}, {bits}-bit, {samples} channel(s)); "
                "save it as RGB"
            ) from None
        if photometric in (_SEPARATED, _YCBCR) and not extras and pixels.ndim == 3 and pixels.shape[2] == 4:
            # libtiff's RGBA interface (OpenCV's path for CMYK and YCbCr) adds an opaque alpha the file does not
            # have; keeping it would turn an RGB output into RGBA. (An RGB file's fourth sample stays alpha even
            # without the ExtraSamples tag: OpenCV writes RGBA TIFFs that way.)
            pixels = np.ascontiguousarray(pixels[..., :3])
        if extras and extras[0] in (1, 2) and (pixels.ndim == 2 or pixels.shape[2] in (1, 3)):
            # A safety net: the file says it has alpha and OpenCV's libtiff gave none back (a layout it reads
            # without it). Dropping it would lose a cutout's transparency silently.
            raise ImageReadError(
                f"cannot read image '{path}': OpenCV's libtiff, which harmcli reads this TIFF ({kind}) with, drops "
                "its alpha; save it as RGB + alpha with ZIP or no compression"
            )
        return pixels, orientation

    if axes == "SYX":  # planar configuration: samples first
        pixels = np.moveaxis(pixels, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise ImageReadError(f"cannot read image '{path}': unsupported TIFF layout (axes {axes}, shape {pixels.shape})")
    if colormap is not None and pixels.ndim == 2:  # palette image: expand through the color map
        pixels = colormap[:, pixels].transpose(1, 2, 0)
        pixels = (pixels // 257).astype(np.uint8) if np.all(colormap % 257 == 0) else pixels.astype(np.uint16)
    pixels = _tiff_to_integer(path, pixels)
    if photometric == _SEPARATED:
        pixels = _cmyk_to_rgb(pixels, keep_alpha=bool(extras) and extras[0] in (1, 2))
        if pixels.shape[2] == 4:
            extras = extras[1:]
        if len(extras):
            notes.append(f"{path}: {len(extras)} extra channel(s) beyond CMYK and alpha left out")
    elif photometric in (0, 1) and pixels.ndim == 3 and pixels.shape[2] > 2:
        # Gray with alpha and further extra channels (a saved selection): without this, three samples would be read
        # as red, green and blue. The first extra sample is the alpha, as for a two-sample gray file.
        notes.append(
            f"{path}: a gray TIFF with {pixels.shape[2]} channels; used gray and alpha, left out the other "
            f"{pixels.shape[2] - 2}"
        )
        pixels = pixels[..., :2]
    elif pixels.ndim == 3 and pixels.shape[2] > 4:
        notes.append(
            f"{path}: a TIFF with {pixels.shape[2]} channels; used red, green, blue and alpha, left out the other "
            f"{pixels.shape[2] - 4}"
        )
        pixels = pixels[..., :4]
    if photometric == 0:  # MINISWHITE: 0 is white; the gray channel only (an alpha channel is never inverted)
        top = np.iinfo(pixels.dtype).max
        if pixels.ndim == 2:
            pixels = top - pixels
        else:
            pixels = pixels.copy()
            pixels[..., 0] = top - pixels[..., 0]
    return np.ascontiguousarray(pixels), orientation


_SEPARATED = 5  # TIFF photometric interpretation: CMYK (ink set 1)
_LAB = (8, 9, 10)  # TIFF photometric interpretations CIELab, ICCLab, ITULab
_YCBCR = 6
_PHOTOMETRIC_TAG = 262
_EXTRASAMPLES_TAG = 338
_INKSET_TAG = 332  # 1 = CMYK; 2 = other inks, named in InkNames


def _gray_alpha_fields(path: Path, tif, page) -> list[tuple[int, str, int]]:
    """For a gray + alpha page tifffile cannot decode: the (offset, struct format, value) rewrites after which
    Pillow reads it as 'LA' with the stored values. Raises ImageReadError where Pillow cannot read it faithfully.

    Pillow knows 8-bit MINISBLACK gray + one extra sample only: MINISWHITE is declared MINISBLACK for it (and
    turned back at the end of :func:`_decode_tiff`), and an unspecified or associated extra sample is declared
    unassociated alpha, which changes nothing in how the stored values are decoded (tifffile hands all three
    back as they are stored, and the unspecified one is alpha there too). Pillow has no 16-bit gray + alpha
    mode, and its libtiff path shuffles separate planes, so those are refused with a clear line.
    """
    bits, samples = int(page.bitspersample), int(page.samplesperpixel)
    what = None
    if samples > 2:
        what = f"a gray TIFF with {samples - 1} extra channels"
    elif int(page.planarconfig) != 1:
        what = "a gray+alpha TIFF with its channels in separate planes"
    elif int(page.sampleformat) != 1 or bits != 8:
        what = f"a {bits}-bit{' floating-point' if int(page.sampleformat) == 3 else ''} gray+alpha TIFF"
    fields = []
    for code, value in ((_PHOTOMETRIC_TAG, 1), (_EXTRASAMPLES_TAG, 2)):
        tag = page.tags.get(code)
        if what is not None:
            break
        if tag is None or tag.count != 1 or tag.dtype not in (3, 4):
            what = "a gray+alpha TIFF with malformed tags"
        elif int(np.ravel(tag.value)[0]) != value:  # ExtraSamples comes as a tuple even with one value
            fields.append((tag.valueoffset, tif.byteorder + ("H" if tag.dtype == 3 else "I"), value))
    if what is not None:
        raise ImageReadError(
            f"cannot read image '{path}': {what} compressed with {_compression_name(page)}, which harmcli reads "
            "only uncompressed or Deflate (ZIP)-compressed; save it as gray + alpha with ZIP or no compression"
        )
    return fields


def _compression_name(page) -> str:
    return str(getattr(page.compression, "name", page.compression))


def _decode_gray_alpha_tiff(path: Path, data: bytes, width: int, height: int) -> np.ndarray:
    """(H, W, 2) uint8 gray + alpha, as stored, of a TIFF :func:`_gray_alpha_fields` has rewritten, by Pillow.

    Strict like :func:`_decode_opencv`: what libtiff prints about damaged data makes the file an error.
    """
    from PIL import Image, TiffImagePlugin

    detail = None
    with decoder_messages() as messages:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data" and the like: Python warnings on stderr
                # The class itself, not Image.open, and Pillow's own pixel limit lifted for the load: --max-pixels
                # alone decides (checked before decoding). decoder_messages holds a lock, so no other harmcli
                # decode changes the limit meanwhile.
                with TiffImagePlugin.TiffImageFile(io.BytesIO(data)) as image:
                    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                    try:
                        image.load()
                    finally:
                        Image.MAX_IMAGE_PIXELS = limit
                    mode, pixels = image.mode, np.asarray(image)
        except Exception as exc:  # Pillow raises many types (OSError "decoder error", SyntaxError, ValueError, ...)
            detail = _first_line(exc)
    damage = [readable(m) for m in messages if is_corruption(m)]
    if detail is not None or damage:
        # libtiff says why in its own words ("Using code not yet in table"); Pillow only "decoder error -2".
        errors = [readable(m) for m in messages if "warning" not in m.lower()]
        reason = (damage or errors or [detail])[0]
        raise ImageReadError(f"cannot read image '{path}': the TIFF data is corrupt or cannot be decoded ({reason})")
    if mode != "LA" or pixels.shape != (height, width, 2) or pixels.dtype != np.uint8:
        raise ImageReadError(
            f"cannot read image '{path}': Pillow decoded this gray+alpha TIFF as {mode} {pixels.shape}; "
            "save it with ZIP or no compression"
        )
    return pixels


def _full_pages(tif) -> int:
    """Pages of a TIFF that are images in their own right (not reduced-size previews of another page)."""
    if len(tif.pages) == 1:
        return 1
    return sum(1 for page in tif.pages if not int(getattr(page, "subfiletype", 0)) & 1)


def _cmyk_to_rgb(pixels: np.ndarray, *, keep_alpha: bool) -> np.ndarray:
    """(H, W, 4+) CMYK[+extra] -> RGB(A), as libtiff's RGBA interface converts (integer floor)."""
    top = np.int64(np.iinfo(pixels.dtype).max)
    cmyk = pixels[..., :4].astype(np.int64)
    k = top - cmyk[..., 3]
    rgb = np.stack([(k * (top - cmyk[..., i])) // top for i in range(3)], axis=-1).astype(pixels.dtype)
    if keep_alpha and pixels.shape[2] > 4:
        return np.dstack([rgb, pixels[..., 4]])
    return rgb


def _tiff_to_integer(path: Path, pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 as is; bool -> uint8 0/255; float -> uint16 (clipped to [0, 1]); 32-bit ints -> uint16."""
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * np.uint8(255)
    if pixels.dtype.kind == "f":
        scaled = np.clip(np.nan_to_num(pixels.astype(np.float32), nan=0.0), 0.0, 1.0) * 65535.0
        return np.rint(scaled).astype(np.uint16)
    if pixels.dtype == np.uint32:
        return (pixels >> 16).astype(np.uint16)
    raise ImageReadError(f"cannot read image '{path}': unsupported TIFF sample type {pixels.dtype}")


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright according to the EXIF Orientation value (1..8)."""
    if orientation == 2:
        return cv2.flip(pixels, 1)
    if orientation == 3:
        return cv2.rotate(pixels, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(pixels, 0)
    if orientation == 5:  # transpose
        return cv2.flip(cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE), 1)
    if orientation == 6:
        return cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:  # transverse
        return cv2.flip(cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE), 0)
    if orientation == 8:
        return cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return pixels


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------- writing


def gray_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) gray of the same dtype (uint8/uint16: rounded to nearest), by Rec. 709 luma.

    The way back from :func:`read_image`'s expansion of a gray file: three equal channels give exactly the gray
    value they were made from, so pixels a harmonization left alone are the input's bit for bit. Why luma rather
    than the mean: see ``_LUMA_709``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {rgb.shape}")
    if rgb.dtype.kind == "f":
        return (rgb.astype(np.float32) @ _LUMA_709[0].astype(np.float32)).astype(rgb.dtype, copy=False)
    # cv2.transform: one threaded pass, rounded and saturated in the input's depth.
    return cv2.transform(rgb, _LUMA_709).reshape(rgb.shape[:2])


def output_bit_depth_for(path: str | os.PathLike, bit_depth: int) -> int:
    """The bit depth :func:`write_image` keeps for ``path`` for data of ``bit_depth``: 16 for PNG/TIFF, and for
    HEIF, which stores the 16-bit data with 10 bits."""
    ext = _output_extension(Path(path))
    if bit_depth not in (8, 16):
        raise UsageError(f"bit depth must be 8 or 16, got {bit_depth}")
    return 16 if bit_depth == 16 and ext in _SIXTEEN_BIT_EXTENSIONS else 8


def write_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    *,
    bit_depth: int | None = None,
    jpeg_quality: int = 95,
    alpha: np.ndarray | None = None,
    protect: Iterable[str | os.PathLike] = (),
    metadata: ImageMetadata | None = None,
    overwrite: bool = True,
) -> Path:
    """Write an image atomically, in the format its extension names.

    Args:
        path: destination; its folder is created. Extension one of ``WRITE_EXTENSIONS``.
        rgb: (H, W, 3) RGB or (H, W) gray; uint8, uint16, or float in [0, 1] (clipped). Gray is stored as gray
            (one channel, plus alpha in PNG and TIFF) in every format that has a gray form. WebP, which has none,
            gets three equal channels, and so does gray + alpha in HEIF, AVIF and BMP, which have no gray + alpha
            form (JPEG drops the alpha and stays gray).
        bit_depth: 8 or 16; default: that of ``rgb`` (8 for float data). PNG and TIFF keep 16-bit; JPEG, WebP,
            BMP and AVIF hold only 8 bits, so 16-bit data is rounded to 8 bits (v / 257, to nearest) for them —
            see :func:`output_bit_depth_for`. 8-bit data is never widened unless ``bit_depth=16`` is asked.
        jpeg_quality: 1..100 for JPEG, for HEIF and AVIF (on libavif's own scale), and for WebP, where 100 means
            lossless.
        alpha: (H, W) alpha channel, kept by PNG, TIFF, WebP, BMP, HEIF and AVIF; JPEG cannot store it and drops it.
            (WebP, even lossless, may discard the colour of fully transparent pixels.)
        protect: paths (the inputs) that must never be overwritten; writing to any of them, under any name
            that resolves to the same file, raises ImageWriteError.
        metadata: colour profile, EXIF, resolution, XMP and IPTC to store (JPEG, PNG, TIFF, WebP, HEIF, AVIF;
            BMP stores none, WebP, HEIF and AVIF no IPTC), and a PNG input's text chunks (PNG only); None writes
            none. The profile is the one that
            describes the stored pixels (:meth:`ImageMetadata.for_pixels`): ``gray_icc`` for gray pixels, ``icc``
            for RGB ones; an output whose pixels are the other kind gets none.
        overwrite: False: raise OutputExistsError when ``path`` exists when the file is complete (also when
            it appeared while this one was being written); True: replace it.

    Returns:
        The path written.

    Raises:
        ImageWriteError: unsupported extension, the output is a protected input, it exists (``overwrite``
            False: OutputExistsError), or the disk write failed.
            No partial or temporary file is left behind.
    """
    path = Path(path)
    ext = _output_extension(path)
    check_not_protected(path, protect)
    if not (1 <= int(jpeg_quality) <= 100):
        raise UsageError(f"JPEG quality must be between 1 and 100, got {jpeg_quality}")
    rgb = np.asarray(rgb)
    if not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)) or rgb.size == 0:
        raise ImageWriteError(f"cannot write '{path}': expected an (H, W, 3) or (H, W) image, got shape {rgb.shape}")
    if alpha is not None and np.asarray(alpha).shape != rgb.shape[:2]:
        raise ImageWriteError(f"cannot write '{path}': alpha {np.asarray(alpha).shape} does not match image {rgb.shape[:2]}")
    source_depth = 16 if rgb.dtype == np.uint16 else 8
    depth = output_bit_depth_for(path, bit_depth if bit_depth is not None else source_depth)
    rgb = _to_depth(path, rgb, depth)
    if alpha is not None and ext in (".jpg", ".jpeg"):
        alpha = None
    if alpha is not None:
        alpha = _to_depth(path, np.asarray(alpha), depth)
    if rgb.ndim == 2 and (ext in _RGB_ONLY_EXTENSIONS or (alpha is not None and ext not in _GRAY_ALPHA_EXTENSIONS)):
        rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)  # no gray form for these pixels here: see _RGB_ONLY_EXTENSIONS
    if metadata is not None:
        metadata = metadata.for_pixels(gray=rgb.ndim == 2)
        if (metadata.png_text or metadata.png_colour) and ext != ".png":  # PNG text and colour chunks: PNG outputs only
            metadata = replace(metadata, png_text=(), png_colour=())
        if metadata.jpeg_comments and ext not in (".jpg", ".jpeg"):  # and JPEG comments into JPEG outputs
            metadata = replace(metadata, jpeg_comments=())
    if ext in _TIFF_EXTENSIONS:
        return atomic_write(path, lambda fh: _write_tiff(fh, rgb, alpha, metadata), protect=protect, overwrite=overwrite)
    if ext in HEIF_EXTENSIONS:
        encoded = heif.encode(path, rgb, alpha, metadata, int(jpeg_quality))
        return atomic_write(path, lambda fh: fh.write(encoded), protect=protect, overwrite=overwrite)
    if ext in AVIF_EXTENSIONS:
        encoded = avif.encode(path, rgb, alpha, metadata, int(jpeg_quality))
        return atomic_write(path, lambda fh: fh.write(encoded), protect=protect, overwrite=overwrite)

    if rgb.ndim == 2 and alpha is not None:  # a gray + alpha PNG, which OpenCV's encoder cannot write
        encoded = _encode_gray_alpha_png(rgb, alpha)
        pieces = embed_metadata(encoded, ext, metadata, has_alpha=True)
        return atomic_write(path, lambda fh: fh.writelines(pieces), protect=protect, overwrite=overwrite)
    if rgb.ndim == 2:
        bgr = rgb
    elif alpha is None:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    else:
        bgr = cv2.merge([rgb[..., 2], rgb[..., 1], rgb[..., 0], alpha])
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 101 if int(jpeg_quality) == 100 else int(jpeg_quality)]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # photos: level 3+ costs ~2x the time for ~8 % smaller files
    else:
        params = []
    try:
        ok, encoded = cv2.imencode(ext, bgr, params)
    except cv2.error as exc:
        raise ImageWriteError(f"cannot write '{path}': encoding failed ({_first_line(exc)})") from None
    if not ok:
        raise ImageWriteError(f"cannot write '{path}': OpenCV could not encode {ext} data")
    pieces = embed_metadata(encoded, ext, metadata, has_alpha=alpha is not None)
    return atomic_write(path, lambda fh: fh.writelines(pieces), protect=protect, overwrite=overwrite)


def _encode_gray_alpha_png(gray: np.ndarray, alpha: np.ndarray) -> bytes:
    """A PNG of colour type 4 (gray + alpha), 8 or 16 bits (the dtype of ``gray`` and ``alpha``).

    OpenCV's PNG encoder takes 1, 3 or 4 channels only, and Pillow has no 16-bit gray + alpha mode, so these few
    chunks are written here: every row with the Sub filter (each byte minus the one a pixel to its left, which
    is what suits photographs among the filters a single NumPy pass can make), Deflate at level 1 as for
    OpenCV's PNGs (see ``write_image``), no interlacing.
    """
    height, width = gray.shape
    pixels = np.dstack((gray, alpha))
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2")  # PNG stores 16-bit samples big-endian
    rows = pixels.view(np.uint8).reshape(height, -1)
    step = 2 * pixels.itemsize  # bytes per pixel
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 1  # filter type Sub
    filtered[:, 1 : 1 + step] = rows[:, :step]
    np.subtract(rows[:, step:], rows[:, :-step], out=filtered[:, 1 + step :])  # modulo 256, as PNG wants

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8 * pixels.itemsize, 4, 0, 0, 0)
    return b"".join((
        b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(filtered.data, 1)), chunk(b"IEND", b""),
    ))


def _to_depth(path: Path, data: np.ndarray, depth: int) -> np.ndarray:
    target = np.uint16 if depth == 16 else np.uint8
    if data.dtype == target:
        return data
    if data.dtype == np.uint16:  # 16 -> 8, to nearest: v * 255 / 65535 = v / 257, never exactly halfway
        return cv2.convertScaleAbs(data, alpha=1.0 / 257.0)
    if data.dtype == np.uint8:
        return data.astype(np.uint16) * np.uint16(257)
    if data.dtype.kind == "f":
        scaled = np.clip(np.nan_to_num(data.astype(np.float32), nan=0.0), 0.0, 1.0) * float(np.iinfo(target).max)
        return np.rint(scaled).astype(target)
    raise ImageWriteError(f"cannot write '{path}': unsupported pixel type {data.dtype} (use uint8, uint16 or float)")


def _write_tiff(fh: BinaryIO, rgb: np.ndarray, alpha: np.ndarray | None, metadata: ImageMetadata | None = None) -> None:
    import tifffile

    photometric = "rgb" if rgb.ndim == 3 else "minisblack"  # decided before alpha joins the samples
    extrasamples = None
    if alpha is not None:
        rgb = np.dstack((rgb, alpha))
        extrasamples = ("unassalpha",)
    row_bytes = rgb.shape[1] * (rgb.shape[2] if rgb.ndim == 3 else 1) * rgb.itemsize
    options = tiff_write_options(metadata)
    tifffile.imwrite(
        fh,
        rgb,
        photometric=photometric,
        extrasamples=extrasamples,
        # Deflate (Adobe) with the horizontal predictor: readable everywhere, needs only the stdlib zlib,
        # and level 1 is ~5x faster than the default for ~15% larger files.
        compression="zlib",
        compressionargs={"level": 1},
        predictor=True,
        rowsperstrip=max(1, (1 << 20) // row_bytes),
        metadata=None,
        **options,
    )
    finish_tiff(fh, metadata)  # EXIF sub-directories, which tifffile does not write, appended in place


def _output_extension(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
        shown = f"'{ext}'" if ext else "(no extension)"
        raise ImageWriteError(
            f"cannot write '{path}': unsupported output format {shown}; use one of {', '.join(WRITE_EXTENSIONS)}"
        )
    return ext
