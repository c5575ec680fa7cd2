"""AVIF images (AV1 in the HEIF container: web exports, some phones and cameras) through Pillow's own AVIF
plugin: the only module that uses it (libavif, with dav1d to decode and libaom to encode, inside the Pillow wheel;
pillow-heif's wheel, which :mod:`harmcli.io.heif` uses, has no AV1 codec).

What the rest of harmcli sees: :data:`AVIF_EXTENSIONS`, :func:`is_avif` (by content), :func:`size`,
:func:`decode`, :func:`read_metadata` and :func:`encode`, as for HEIF. Nothing here imports the plugin until an
AVIF file is read or written.

Why it is built this way:

* **Upright pixels, turned once.** libavif hands out the stored pixels; Pillow reports the file's rotation and
  mirror boxes (``irot``/``imir``) as the EXIF orientation in ``info["exif"]``, replacing whatever Orientation the
  file's own EXIF block says, and does not turn anything. So the orientation read there is the boxes', and it is
  applied here, once. As in HEIF, an EXIF Orientation stored in the file is informational and never applied; the
  EXIF kept for the output says 1. Writing, Pillow turns an EXIF Orientation into those boxes and drops the tag;
  ours is always 1, so no box is written and the EXIF block has no Orientation tag (readers take that as 1).
* **8 bits only.** Pillow decodes every AVIF to 8 bits per channel (libavif converts 10- and 12-bit samples down)
  and encodes 8-bit AVIF only, as its documentation says and a 10-bit file written by SVT-AV1 confirmed. A 10- or
  12-bit file is read at 8 bits, with a note (its depth is read from the ``av1C`` box); 16-bit data written as
  AVIF is rounded to 8 bits, as for JPEG and WebP.
* **Colour.** The ICC profile is kept like any other format's. A file that describes its colour with an ``nclx``
  box instead is taken as sRGB when its primaries are BT.709 or unstated and its transfer is not HDR (PQ, HLG);
  otherwise a note says so, since no profile can be carried for it. Written files without a profile say BT.709
  primaries and the sRGB transfer (Pillow's choice), which is what harmcli's untagged pixels are.
* **Encoding.** 4:2:0, full range, 8 bits; ``quality`` is libavif's 0..100 scale (not JPEG's), fed from
  ``--jpeg-quality``; alpha is coded as its own plane (a gradient came back within 2 levels at quality 50). Speed 6,
  libavif's and Pillow's default: on a photo scaled up to 4.4 megapixels (2 busy cores, quality 95) it took 1.3 s
  against 0.2 s at speed 8, for a file about 20 % smaller at the same PSNR; the HEIC encoder took 3.5 s there.
* **Only the first image** of a sequence (brand ``avis``) is used, with a note. A clean-aperture crop (``clap``)
  and an HDR gain map are not applied (Pillow does not), like HEIF's auxiliary images.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from harmcli.errors import HarmcliError, ImageReadError, ImageWriteError
from harmcli.io.colour import coded_colour_note
from harmcli.io.metadata import NO_METADATA, ImageMetadata, encoder_options, metadata_from_parts

AVIF_EXTENSIONS = (".avif",)
# ftyp brands that say the images are AV1-coded (avif: still image, avis: sequence). AVIF files also list the
# structural HEIF brands (mif1, msf1, miaf), so these decide between AVIF and HEVC-coded HEIF.
AV1_BRANDS = (b"avif", b"avis")
_ORIENTATION_TAG = 274
_SPEED = 6  # libaom's effort, 0 (slowest) .. 10: see the module docstring


def is_avif(data: bytes) -> bool:
    """True for AVIF content: an ISO base media ``ftyp`` box whose major or a compatible brand is avif or avis."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(size, len(data), 64), 4)]
    return any(brand in AV1_BRANDS for brand in brands)


def _plugin():
    try:
        from PIL import AvifImagePlugin
    except ImportError:  # pragma: no cover - a Pillow older than its AVIF plugin
        AvifImagePlugin = None
    if AvifImagePlugin is None or not AvifImagePlugin.SUPPORTED:  # pragma: no cover - or one built without libavif
        raise HarmcliError("AVIF images need a Pillow with AVIF support (recent PyPI wheels have it): pip install -U pillow")
    return AvifImagePlugin


def _open(path: Path, data: bytes):
    plugin = _plugin()
    try:
        # The class itself, not Image.open: Image.open refuses images over Pillow's own pixel limit, and here
        # --max-pixels alone decides (images.py checks it against this size before decoding).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data" and the like: Python warnings on stderr
            return plugin.AvifImageFile(io.BytesIO(data))
    except (SyntaxError, ValueError, RuntimeError, OSError) as exc:
        cut = _ends_early(data) or "truncated" in str(exc).lower()  # libavif's "Truncated data" result
        what = "the file is truncated" if cut else "not an AVIF image libavif can decode"
        raise ImageReadError(f"cannot read image '{path}': {what} ({_first_line(exc)})") from None


def size(path: Path, data: bytes) -> tuple[int, int]:
    """(width, height) of the stored image, from the container: nothing is decoded."""
    return _open(path, data).size


def decode(path: Path, data: bytes) -> tuple[np.ndarray, list[str]]:
    """The (first) image as (H, W) gray, (H, W, 2) gray + alpha (monochrome files), (H, W, 3) RGB or (H, W, 4)
    RGBA uint8, upright.

    Also returns notes on what was left out (frames after the first, bits beyond 8).
    """
    image = _open(path, data)
    notes = []
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1:
        notes.append(f"{path}: an AVIF sequence ({frames} frames); only the first frame is used")
    bits = _coding(data)[0]
    if bits > 8:
        notes.append(f"{path}: a {bits}-bit AVIF, read at 8 bits (Pillow's AVIF decoder gives 8 bits per channel)")
    try:
        image.load()
        pixels = np.asarray(image)
    except (SyntaxError, ValueError, RuntimeError, OSError) as exc:
        raise ImageReadError(f"cannot read image '{path}': the file is truncated or corrupt ({_first_line(exc)})") from None
    # 4:0:0 (monochrome) files decode to one channel (two with alpha) and stay so: images.read_image expands them.
    return np.ascontiguousarray(_upright(pixels, _box_orientation(image.info.get("exif")))), notes


def read_metadata(path: Path, data: bytes, notes: list[str] | None = None) -> ImageMetadata:
    """The image's ICC profile, EXIF (Orientation 1, no thumbnail) and XMP; damaged parts are dropped."""
    try:
        info = _open(path, data).info
    except ImageReadError:
        return NO_METADATA
    icc = info.get("icc_profile") or None
    if icc is None and notes is not None:
        _, primaries, transfer = _coding(data)
        note = coded_colour_note(path, primaries, transfer)
        if note:
            notes.append(note)
    # The EXIF Orientation is the boxes' (see the module docstring); cleaning sets it to 1 for the upright pixels
    # and, for a quarter turn, swaps the EXIF pixel width and height accordingly.
    return metadata_from_parts(icc, info.get("exif"), info.get("xmp"))


def encode(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, metadata: ImageMetadata | None, quality: int) -> bytes:
    """AVIF bytes (AV1, 4:2:0, 8-bit; 4:0:0 for gray without alpha) of ``rgb`` (uint8) with ``alpha`` and ``metadata``.

    ``quality`` 1..100 on libavif's scale; 100 is its best quality, still lossy here (4:2:0 YUV)."""
    from PIL import Image

    _plugin()
    if rgb.dtype != np.uint8 or (alpha is not None and alpha.dtype != np.uint8):
        raise ImageWriteError(f"cannot write '{path}': AVIF is written with 8 bits here; got {rgb.dtype} data")
    pixels = rgb
    if alpha is not None:
        pixels = np.dstack((np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb, alpha))
    options = {"quality": int(quality), "speed": _SPEED, **encoder_options(metadata, exif_prefix=False)}
    out = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.fromarray(np.ascontiguousarray(pixels)).save(out, format="AVIF", **options)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ImageWriteError(f"cannot write '{path}': AVIF encoding failed ({_first_line(exc)})") from None
    return out.getvalue()


def _box_orientation(exif: bytes | None) -> int:
    """The EXIF Orientation Pillow derived from the irot/imir boxes, 1 when there is none."""
    if not exif:
        return 1
    from PIL import Image

    tags = Image.Exif()
    try:
        with warnings.catch_warnings():
            # Pillow warns "Corrupt EXIF data" on stderr as a Python warning: a damaged block only loses its tags.
            warnings.simplefilter("ignore")
            tags.load(exif)
        value = int(tags.get(_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block: Pillow raises many types, and the pixels are still good
        return 1
    return value if 1 <= value <= 8 else 1


def _upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels as shown for an EXIF Orientation: 5..8 transpose first, then rows and/or columns reverse."""
    if orientation >= 5:
        pixels = pixels.swapaxes(0, 1)
    if orientation in (3, 4, 7, 8):
        pixels = pixels[::-1]
    if orientation in (2, 3, 6, 7):
        pixels = pixels[:, ::-1]
    return pixels


# ------------------------------------------------------------------------------------------- container boxes


def _coding(data: bytes) -> tuple[int, int | None, int | None]:
    """(bits per sample, nclx colour primaries, nclx transfer) of the primary image, read from its item
    properties (Pillow reports neither); 8 and None where the file does not say or cannot be parsed."""
    try:
        own, every = _item_properties(data)
    except (IndexError, ValueError):
        return 8, None, None
    bits = primaries = transfer = None
    for kind, body in own:
        if kind == b"av1C" and len(body) >= 3:
            # byte 2: seq_tier_0, high_bitdepth, twelve_bit, ... (AV1 codec configuration, AV1-ISOBMFF 2.3)
            bits = 12 if body[2] & 0x20 else 10 if body[2] & 0x40 else 8
        elif kind == b"colr" and body[:4] == b"nclx" and len(body) >= 8:
            primaries, transfer = int.from_bytes(body[4:6], "big"), int.from_bytes(body[6:8], "big")
    if bits is None:  # a grid image: its tiles carry the av1C, and they share one depth
        depths = [12 if b[2] & 0x20 else 10 if b[2] & 0x40 else 8 for k, b in every if k == b"av1C" and len(b) >= 3]
        bits = max(depths, default=8)
    return bits, primaries, transfer


def _item_properties(data: bytes) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """The (type, payload) properties associated with the primary item (meta/pitm, iprp/ipma), and all of ipco's."""
    meta = next((data[s:e] for k, s, e in _boxes(data, 0, len(data)) if k == b"meta"), None)
    if meta is None:
        return [], []
    children = {k: meta[s:e] for k, s, e in _boxes(meta, 4, len(meta))}  # meta is a full box: 4 bytes of version
    pitm, iprp = children.get(b"pitm"), children.get(b"iprp")
    if iprp is None:
        return [], []
    parts = {k: iprp[s:e] for k, s, e in _boxes(iprp, 0, len(iprp))}
    ipco = parts.get(b"ipco", b"")
    every = [(k, ipco[s:e]) for k, s, e in _boxes(ipco, 0, len(ipco))]
    ipma = parts.get(b"ipma")
    if pitm is None or ipma is None:
        return [], every
    primary = int.from_bytes(pitm[4:6] if pitm[0] == 0 else pitm[4:8], "big")
    version, flags = ipma[0], ipma[3]
    item_bytes, index_bytes = (2 if version == 0 else 4), (2 if flags & 1 else 1)
    pos, count = 8, int.from_bytes(ipma[4:8], "big")
    for _ in range(count):
        item = int.from_bytes(ipma[pos : pos + item_bytes], "big")
        n = ipma[pos + item_bytes]
        pos += item_bytes + 1
        indices = [int.from_bytes(ipma[pos + i * index_bytes : pos + (i + 1) * index_bytes], "big") for i in range(n)]
        pos += n * index_bytes
        if item == primary:
            mask = 0x7FFF if index_bytes == 2 else 0x7F  # the top bit says "essential"
            return [every[i - 1] for i in (j & mask for j in indices) if 0 < i <= len(every)], every
    return [], every


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, end) of the ISO base media boxes laid end to end in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind, header = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8], 8
        if size == 1 and pos + 16 <= end:  # a 64-bit size follows the type
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:  # the box runs to the end
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _ends_early(data: bytes) -> bool:
    """Whether a top-level box (the image data's mdat, usually last) says it runs past the end of the file."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1 and pos + 16 <= len(data):
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size == 0:  # runs to the end, whatever that is
            return False
        if size < 8:
            return False  # not a box structure at all: corrupt, not cut
        pos += size
    return pos != len(data)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__
