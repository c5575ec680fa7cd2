"""HEIF/HEIC images (what iPhones and many Android phones save) through pillow-heif: the only module that imports
``pillow_heif`` (libheif with its HEVC decoder and encoder inside the wheel).

What the rest of harmcli sees: :data:`HEIF_EXTENSIONS`, :func:`is_heif` (by content), :func:`decode`,
:func:`read_metadata` and :func:`encode`. Nothing here runs until a HEIF file is read or written, so other
formats do not pay for the import.

Why it is built this way:

* **Upright pixels.** libheif applies the file's own rotation and mirror boxes (``irot``/``imir``) while decoding,
  which is what HEIF asks readers to do; the EXIF orientation of a HEIF file is informational and never applied
  a second time. The EXIF kept for the output says 1, as for the other formats.
* **Bit depth.** A 10- or 12-bit image (an iPhone's HDR photo, a camera's 10-bit HEIF) is read as uint16 on the
  full 0..65535 scale and written back with 10 bits; 8-bit files stay 8-bit.
* **Colour.** The ICC profile (an iPhone's Display P3) is kept like any other format's. A file that describes its
  colour with an ``nclx`` box instead (codes, no profile) is taken as sRGB when its primaries are BT.709 or
  unstated; other primaries are said in a note, since no profile can be carried for them.
* **Only the primary image** is used: depth maps, auxiliary images (HDR gain maps, portrait mattes) and the
  thumbnail describe the old picture and are not carried.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from harmcli.errors import HarmcliError, ImageReadError, ImageWriteError
from harmcli.io.avif import AV1_BRANDS
from harmcli.io.colour import coded_colour_note
from harmcli.io.metadata import NO_METADATA, ImageMetadata, encoder_options, metadata_from_parts

HEIF_EXTENSIONS = (".heic", ".heif", ".hif")
# ISO base media brands of still HEIF images (HEVC-coded: heic/heix/heim/heis, and the structural mif1/msf1).
_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_MAX_SIDE = 16384  # x265's longest picture side here (measured: 64 x 16384 encodes, 8 x 17000 is refused)


def is_heif(data: bytes) -> bool:
    """True for HEIF content: an ISO base media ``ftyp`` box naming a still-image brand, and no AV1 brand (AVIF
    files list mif1 too, but they are :mod:`harmcli.io.avif`'s: libheif here has no AV1 decoder)."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(size, len(data), 64), 4)]
    return any(brand in _BRANDS for brand in brands) and not any(brand in AV1_BRANDS for brand in brands)


def _pillow_heif():
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - pillow-heif is a default dependency
        raise HarmcliError("HEIF/HEIC images need pillow-heif: pip install pillow-heif") from None
    return pillow_heif


def _open(path: Path, data: bytes):
    heif = _pillow_heif()
    try:
        return heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
    except (ValueError, RuntimeError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"cannot read image '{path}': not a HEIF image libheif can decode ({_first_line(exc)})") from None


def size(path: Path, data: bytes) -> tuple[int, int]:
    """(width, height) of the primary image, from the container: nothing is decoded."""
    return _open(path, data).size


def decode(path: Path, data: bytes) -> tuple[np.ndarray, list[str]]:
    """The primary image as (H, W) gray (a monochrome file), (H, W, 3) RGB or (H, W, 4) RGBA, uint8, or uint16 for
    more than 8 bits, upright.

    Also returns notes on what was left out (other top-level images of a burst or collection).
    """
    container = _open(path, data)
    notes = []
    if len(container) > 1:
        notes.append(f"{path}: a HEIF file with {len(container)} images; only the primary one is used")
    image = container[container.primary_index]
    try:
        pixels = np.asarray(image)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ImageReadError(f"cannot read image '{path}': the file is truncated or corrupt ({_first_line(exc)})") from None
    bits = int(image.info.get("bit_depth") or 8)
    if pixels.dtype == np.uint16 and bits < 16:
        # pillow-heif hands out 10/12-bit values shifted to the top of 16 bits (1023 -> 65472): rescale so that
        # white is 65535, as for 16-bit PNG or TIFF.
        top = float((1 << bits) - 1)
        pixels = np.rint((pixels >> (16 - bits)).astype(np.float32) * np.float32(65535.0 / top)).astype(np.uint16)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and getattr(image, "premultiplied_alpha", False):
        pixels = _unpremultiplied(pixels)
    return np.ascontiguousarray(pixels), notes


def _unpremultiplied(rgba: np.ndarray) -> np.ndarray:
    """Straight alpha from premultiplied (as harmcli and every output format here hold it): colour / alpha,
    black where alpha is 0."""
    top = float(np.iinfo(rgba.dtype).max)
    alpha = rgba[..., 3:].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        rgb = np.where(alpha > 0, rgba[..., :3].astype(np.float32) * top / alpha, 0.0)
    out = rgba.copy()
    out[..., :3] = np.rint(np.clip(rgb, 0, top)).astype(rgba.dtype)
    return out


def read_metadata(path: Path, data: bytes, notes: list[str] | None = None) -> ImageMetadata:
    """The primary image's ICC profile, EXIF (Orientation 1, no thumbnail) and XMP; damaged parts are dropped."""
    try:
        info = _open(path, data).info
    except ImageReadError:
        return NO_METADATA
    icc = info.get("icc_profile") or None
    nclx = info.get("nclx_profile")
    if icc is None and isinstance(nclx, dict) and notes is not None:
        note = coded_colour_note(path, nclx.get("color_primaries"), nclx.get("transfer_characteristics"))
        if note:
            notes.append(note)
    return metadata_from_parts(icc, info.get("exif"), info.get("xmp"))


def encode(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, metadata: ImageMetadata | None, quality: int) -> bytes:
    """HEIC bytes (HEVC, 4:2:0; monochrome 4:0:0 for (H, W) gray without alpha) of ``rgb`` (uint8: 8-bit; uint16:
    10-bit) with ``alpha`` and ``metadata``.

    ``quality`` 1..100 as for JPEG; 100 is the encoder's best lossy quality (HEVC here has no lossless RGB).
    pillow-heif encodes gray + alpha as RGBA, so that is made RGBA here, visibly."""
    heif = _pillow_heif()
    if max(rgb.shape[:2]) > _MAX_SIDE:
        # x265 refuses such a picture with a message about its parameters; say what the limit is instead.
        raise ImageWriteError(
            f"cannot write '{path}': {rgb.shape[1]}x{rgb.shape[0]} has a side over {_MAX_SIDE} pixels, more than the "
            "HEVC encoder takes; write a .tif, .png or .jpg"
        )
    if alpha is not None and rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    pixels = rgb if alpha is None else np.dstack((rgb, alpha))
    deep = pixels.dtype == np.uint16
    mode = ("L" if pixels.ndim == 2 else "RGBA" if pixels.shape[2] == 4 else "RGB") + (";16" if deep else "")
    options = {"quality": int(quality), **encoder_options(metadata, exif_prefix=True)}
    out = io.BytesIO()
    try:
        image = heif.from_bytes(mode=mode, size=(pixels.shape[1], pixels.shape[0]), data=np.ascontiguousarray(pixels).tobytes())
        image.save(out, format="HEIF", **options)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ImageWriteError(f"cannot write '{path}': HEIF encoding failed ({_first_line(exc)})") from None
    return out.getvalue()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__
