"""Bringing a foreground into its background's colour space (ICC profiles), before the two are combined.

The same RGB numbers mean different colours in sRGB, Adobe RGB or ProPhoto RGB. When a foreground and its
background carry different profiles (an untagged file counts as sRGB, the web's and most cameras' default), the
foreground is converted into the background's space, so that the composite, the network's view of it and the
output (which carries the background's profile) all mean what they show. Relative colorimetric intent, no
black-point compensation: colours inside both gamuts keep their appearance, the others are clipped.

- **8-bit** images go through LittleCMS, by Pillow's ``ImageCms`` (the only module importing it).
- **16-bit** images: ``ImageCms`` transforms only 8-bit RGB (Pillow has no 16-bit RGB image mode; every
  ``RGB;16``/``RGBA;16B`` mode is refused by ``buildTransform``), and rounding to 8 bits would throw away what a
  16-bit file is for. Matrix/TRC profiles (sRGB, Adobe RGB, ProPhoto, Display P3 and nearly every working
  space) are therefore converted here in float32: each channel through its tone curve (an exact 65536-entry
  table), the 3 x 3 matrix of ``inverse(destination colorants) x source colorants`` (both D50-relative, as
  ICC stores them), then the destination's inverse tone curve (a table indexed by the cube root of the linear
  value, dense where gamma curves are steep). That is the model LittleCMS evaluates for such profiles. Checked
  against LittleCMS on 8-bit data (tests/io/test_colour.py): it agrees to within rounding. 16-bit images
  whose profiles are LUT-based (A2B/B2A tables: printer and scanner profiles, rare on photos) go through
  LittleCMS at 8 bits, and the note says so.
"""

from __future__ import annotations

import functools
import io
import struct

import numpy as np

class ProfileError(ValueError):
    """A colour profile that cannot be used for a conversion (damaged, or a kind LittleCMS refuses)."""


_LUT_TAGS = (b"A2B0", b"A2B1", b"A2B2", b"B2A0", b"B2A1", b"B2A2")
_INVERSE_STEPS = 65536


# nclx codes (ISO/IEC 23091-2) that HEIF and AVIF files may give instead of a profile.
_BT709_OR_UNSTATED = (1, 2)  # colour_primaries: 1 BT.709 (sRGB's), 2 unspecified
_HDR_TRANSFERS = {16: "PQ", 18: "HLG"}  # transfer_characteristics: HDR curves, not sRGB's


def coded_colour_note(path, primaries: int | None, transfer: int | None) -> str | None:
    """A note for a file without a profile whose colour codes say other than sRGB (wide primaries, an HDR curve):
    it is taken as sRGB and its output is untagged. None when the codes are sRGB's, unstated or absent."""
    wide = primaries is not None and int(primaries) not in _BT709_OR_UNSTATED
    hdr = transfer is not None and int(transfer) in _HDR_TRANSFERS
    if not (wide or hdr):
        return None
    what = ", ".join(
        ([f"nclx primaries {int(primaries)}"] if primaries is not None else [])
        + ([f"{_HDR_TRANSFERS[int(transfer)]} transfer"] if hdr else [])
    )
    return (f"{path}: its colours are described by code ({what}), not by a profile; taken as sRGB, and the output is "
            "untagged")


def profile_name(icc: bytes | None) -> str:
    """A short human name of a profile ('sRGB' for an untagged image)."""
    if icc is None:
        return "untagged, taken as sRGB"
    try:
        from PIL import ImageCms

        name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except Exception:  # a profile Pillow cannot open still gets a name in the note
        name = ""
    return name or "an unnamed profile"


@functools.lru_cache(maxsize=64)  # asked per item and per clip frame, mostly about the same few profiles
def same_space(a: bytes | None, b: bytes | None) -> bool:
    """Whether two profiles (None = untagged, taken as sRGB) describe the same colours, so no conversion is needed.

    Identical bytes are the same space. Two matrix/TRC profiles are when converting a 17 x 17 x 17 grid of
    colours from one to the other moves no colour by more than a quarter of an 8-bit level: different files of
    one standard space (an sRGB from one vendor and from another) are then left alone.
    """
    if a == b:
        return True
    model = _matrix_model(a or _srgb_bytes(), b or _srgb_bytes())
    if model is None:
        return False
    grid = np.rint(np.linspace(0, 65535, 17)).astype(np.uint16)
    colours = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(1, -1, 3)
    with np.errstate(all="ignore"):
        moved = np.abs(model.apply(colours).astype(np.int32) - colours.astype(np.int32)).max()
    return bool(moved <= 65535 / 255 / 4)


def convert(rgb: np.ndarray, source: bytes | None, destination: bytes | None) -> tuple[np.ndarray, bool]:
    """``rgb`` (H, W, 3) uint8 or uint16, converted from profile ``source`` to ``destination`` (None = sRGB).

    Returns the converted pixels (same dtype) and whether 16-bit data had to go through 8 bits (LUT-based
    profiles, see the module docstring).

    Raises:
        ProfileError: a profile LittleCMS cannot use.
    """
    try:
        if rgb.dtype == np.uint8:
            return _convert_lcms(rgb, source, destination), False
        model = _matrix_model(source or _srgb_bytes(), destination or _srgb_bytes())
        if model is None:
            narrow = np.rint(rgb.astype(np.float32) / 257.0).astype(np.uint8)
            return _convert_lcms(narrow, source, destination).astype(np.uint16) * np.uint16(257), True
        return model.apply(rgb), False
    except ProfileError:
        raise
    except Exception as exc:  # Pillow's PyCMSError, OSError from a damaged profile, ...
        raise ProfileError(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__) from None


@functools.lru_cache(maxsize=1)
def _srgb_bytes() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@functools.lru_cache(maxsize=8)
def _lcms_transform(src: bytes | None, dst: bytes | None):
    from PIL import ImageCms

    def open_profile(icc: bytes | None):
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB") if icc is None else io.BytesIO(icc))

    return ImageCms.buildTransform(
        open_profile(src),
        open_profile(dst),
        "RGB",
        "RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        # Items are read on a thread pool: LittleCMS's one-pixel cache must not be shared between threads.
        flags=ImageCms.Flags.NOCACHE,
    )


def _convert_lcms(rgb: np.ndarray, src: bytes | None, dst: bytes | None) -> np.ndarray:
    from PIL import Image, ImageCms

    out = ImageCms.applyTransform(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), _lcms_transform(src, dst))
    return np.asarray(out)


# ------------------------------------------------------------------------------------ matrix/TRC profiles


def _tag_table(icc: bytes) -> dict[bytes, bytes] | None:
    try:
        (count,) = struct.unpack_from(">I", icc, 128)
        tags = {}
        for i in range(min(count, 200)):
            sig, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            tags[sig] = icc[offset : offset + size]
        return tags
    except struct.error:
        return None


def _is_matrix_shaper(tags: dict[bytes, bytes]) -> bool:
    needed = (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")
    return all(t in tags for t in needed) and not any(t in tags for t in _LUT_TAGS)


def _xyz(tag: bytes) -> np.ndarray:
    if tag[:4] != b"XYZ ":
        raise ValueError("not an XYZ tag")
    return np.asarray(struct.unpack_from(">3i", tag, 8), dtype=np.float64) / 65536.0


def _tone_curve(tag: bytes):
    """The forward tone curve (encoded value in [0, 1] -> linear) of a curv or para tag, as a float64 function."""
    kind = tag[:4]
    if kind == b"curv":
        (n,) = struct.unpack_from(">I", tag, 8)
        if n == 0:
            return lambda x: x
        if n == 1:
            (g,) = struct.unpack_from(">H", tag, 12)
            gamma = g / 256.0
            return lambda x: np.power(x, gamma)
        table = np.asarray(struct.unpack_from(f">{n}H", tag, 12), dtype=np.float64) / 65535.0
        grid = np.linspace(0.0, 1.0, n)
        return lambda x: np.interp(x, grid, table)
    if kind == b"para":
        (function,) = struct.unpack_from(">H", tag, 8)
        counts = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}
        if function not in counts:
            raise ValueError("unknown parametric curve")
        params = np.asarray(struct.unpack_from(f">{counts[function]}i", tag, 12), dtype=np.float64) / 65536.0
        g, a, b, c, d, e, f = (*params, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)[:7]
        if function == 0:
            return lambda x: np.power(x, g)
        if function == 1:
            return lambda x: np.where(x >= -b / a, np.power(np.maximum(a * x + b, 0.0), g), 0.0)
        if function == 2:
            return lambda x: np.where(x >= -b / a, np.power(np.maximum(a * x + b, 0.0), g) + c, c)
        if function == 3:
            return lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0.0), g), c * x)
        return lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0.0), g) + e, c * x + f)
    raise ValueError("unknown tone curve type")


class _MatrixModel:
    """source tone curves -> 3 x 3 matrix -> destination inverse tone curves, for 16-bit data."""

    def __init__(self, forward: list, matrix: np.ndarray, inverse: list):
        codes = np.arange(65536, dtype=np.float64) / 65535.0
        self.forward = [curve(codes).astype(np.float32) for curve in forward]
        self.matrix = matrix.astype(np.float32)
        # Inverse tone curves tabulated against u = cbrt(linear): gamma-like curves are steep near 0, where
        # the cube root spreads the table's entries out.
        u = np.linspace(0.0, 1.0, _INVERSE_STEPS + 1)
        dense = np.linspace(0.0, 1.0, 1 << 20)
        self.inverse = []
        for curve in inverse:
            values = np.maximum.accumulate(np.clip(curve(dense), 0.0, 1.0))  # monotone, for the interpolation
            self.inverse.append(np.interp(u**3, values, dense).astype(np.float32))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        linear = np.empty(rgb.shape, np.float32)
        for c in range(3):
            linear[..., c] = self.forward[c][rgb[..., c]]
        linear = cv2.transform(linear, self.matrix)
        np.clip(linear, 0.0, 1.0, out=linear)
        out = np.empty(rgb.shape, np.uint16)
        position = np.cbrt(linear)
        position *= _INVERSE_STEPS
        for c in range(3):
            pos = position[..., c]
            index = np.minimum(pos.astype(np.int32), _INVERSE_STEPS - 1)
            frac = pos - index
            table = self.inverse[c]
            value = table[index] * (1.0 - frac) + table[index + 1] * frac
            out[..., c] = np.rint(value * 65535.0).astype(np.uint16)
        return out


@functools.lru_cache(maxsize=8)
def _matrix_model(src: bytes, dst: bytes) -> _MatrixModel | None:
    src_tags, dst_tags = _tag_table(src), _tag_table(dst)
    if src_tags is None or dst_tags is None or not (_is_matrix_shaper(src_tags) and _is_matrix_shaper(dst_tags)):
        return None
    try:
        colorants = []
        for tags in (src_tags, dst_tags):
            colorants.append(np.stack([_xyz(tags[t]) for t in (b"rXYZ", b"gXYZ", b"bXYZ")], axis=1))
        forward = [_tone_curve(src_tags[t]) for t in (b"rTRC", b"gTRC", b"bTRC")]
        inverse = [_tone_curve(dst_tags[t]) for t in (b"rTRC", b"gTRC", b"bTRC")]
        matrix = np.linalg.solve(colorants[1], colorants[0])
    except (ValueError, struct.error, np.linalg.LinAlgError):
        return None
    return _MatrixModel(forward, matrix, inverse)


def as_srgb(rgb: np.ndarray, icc: bytes | None, where: str) -> np.ndarray:
    """``rgb`` in sRGB: converted from its profile ``icc`` when that is another space, else returned as is.

    For tools that mix pictures from different files into one dataset (``make-composites``, ``eval``): a photo
    in Adobe RGB pasted next to an sRGB one, or scored against it, would otherwise be off by its profile.

    Raises:
        ImageReadError: a profile that cannot be used, naming ``where``.
    """
    from harmcli.errors import ImageReadError

    if same_space(icc, None):
        return rgb
    try:
        return convert(rgb, icc, None)[0]
    except ProfileError as exc:
        raise ImageReadError(f"{where}: its colour profile cannot be used ({exc})") from None
