"""Colour profile, EXIF, resolution, XMP and IPTC: read from a file's container, written into an encoded output.

Photographers' files carry five things besides pixels that harmcli keeps:

- the **ICC colour profile** (what the RGB numbers mean: sRGB, Adobe RGB, ProPhoto ...). RGB profiles are kept
  for RGB outputs, and a gray profile (Gray Gamma 2.2, Dot Gain 20 % ...) for the gray output of a grayscale
  input: they are held apart (``icc`` and ``gray_icc``), since every colour conversion needs an RGB profile and
  the writer stores the one that describes the pixels it writes (:meth:`ImageMetadata.for_pixels`). A CMYK or
  Lab profile could describe neither and is dropped. An untagged input stays untagged.
- the **EXIF block** (camera, lens, date, copyright, GPS ...). It is rebuilt from its IFD0 (minus the tags that
  describe pixel storage), Exif, GPS and Interoperability directories: the Orientation is set to 1 because the
  pixels are already turned upright, and the thumbnail (IFD1) is dropped because it would show the old picture.
  Maker notes are copied byte for byte; the few makes whose maker notes hold offsets into the original file
  cannot be read back afterwards by tools that follow those offsets.
- the **resolution** in dots per inch (JPEG's JFIF density, PNG's pHYs, TIFF's X/YResolution; WebP has no field
  of its own and keeps the one in its EXIF block).
- the **XMP packet** (what Lightroom, Bridge and Photoshop write: keywords, ratings, rights, captions), as text,
  with its orientation set to 1 and its thumbnails removed, for the same reasons as EXIF's. A JPEG's *extended*
  XMP (a packet over 64 KB, split by Adobe's tools into a standard packet that names the rest by a GUID, the MD5
  of the rest, and APP1 "xmp/extension" segments) is reassembled, cleaned the same way (a new GUID when that
  changes it) and written back split the same way into JPEG outputs. Other outputs get only the standard
  packet: merging the two into one is an RDF rewrite, not a splice.
- the **IPTC-IIM record** (captions, keywords, creator, copyright as Photo Mechanic, Lightroom and Photoshop
  write them), byte for byte, with its MD5 digest when the input's digest was current (see
  :mod:`harmcli.io.iptc`). JPEG: APP13 "Photoshop 3.0" resources; TIFF: tag 33723 (and 34377 for the digest);
  PNG: the "Raw profile type iptc" text chunk of exiftool and ImageMagick (read holding a bare record or
  resources, written holding resources, as exiftool does). WebP, HEIF and AVIF have no place for it; their XMP carries
  the same fields for current tools. Photoshop's other image resources (thumbnails, paths, slices, layer comps)
  describe the old pixels or Photoshop's state and are not carried.

Free text goes where its own format keeps it: a PNG's text chunks (Author, Copyright, Description ...) into PNG
outputs, a JPEG's comments (COM segments) into JPEG outputs; another format has no field that means the same. So
does a PNG's colour description without a profile (gAMA, cHRM, sRGB chunks): into PNG outputs (elsewhere it would
take a profile made up from it).

A JPEG holds at most 64 KB of EXIF (one APP1 segment): a larger block (possible from a TIFF) is left out, and so is
a standard XMP packet over 64 KB from a TIFF or PNG (splitting one is the same RDF rewrite as merging).
Everything here works on the bytes already in memory: reading walks the container's chunks, segments or tags
without decoding a pixel, and writing splices chunks/segments into the bytes the encoder produced (JPEG, PNG,
WebP) or hands tags to ``tifffile`` (TIFF). Damaged metadata is dropped, never an error: the pixels matter more.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from dataclasses import dataclass, replace

from harmcli.io import iptc as iim

# EXIF tags with special handling.
_ORIENTATION = 274
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT = 282, 283, 296
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 34665, 34853, 40965
_SUB_IFDS = {_EXIF_IFD, _GPS_IFD, _INTEROP_IFD}
_ICC_TAG = 34675
# IFD0 tags that describe how pixels (or a thumbnail) are stored, or that hold data the output no longer
# matches (Photoshop's layers and resources) or that is carried separately (ICC, XMP, IPTC).
_STORAGE_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 292, 293, 317, 320, 322, 323,
     324, 325, 330, 338, 339, 340, 341, 347, 513, 514, 530, 531, 532, 700, 33723, 34377, _ICC_TAG, 37724}
)
# Bytes per value of each TIFF field type (1 BYTE ... 13 IFD).
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TYPE_FORMAT = {1: "B", 3: "H", 4: "I", 5: "II", 6: "b", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d", 13: "I"}
_MAX_ENTRIES = 1000
_JPEG_SEGMENT_MAX = 65533  # payload of one APPn segment (its 16-bit length counts itself)
_ICC_CHUNK = _JPEG_SEGMENT_MAX - 14  # "ICC_PROFILE\0" + sequence number + count
_EXIF_PREFIX = b"Exif\x00\x00"
_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"  # JPEG APP1: the standard packet (at most 64 KB)
_XMP_EXTENSION_PREFIX = b"http://ns.adobe.com/xmp/extension/\x00"  # JPEG APP1: a piece of the extended packet
# Each extension segment: prefix, 32-character GUID, full length and offset (4 bytes each, big-endian), piece.
_XMP_EXTENSION_HEADER = len(_XMP_EXTENSION_PREFIX) + 40
_XMP_EXTENSION_CHUNK = _JPEG_SEGMENT_MAX - _XMP_EXTENSION_HEADER
_IPTC_TIFF_TAG, _PHOTOSHOP_TIFF_TAG = 33723, 34377
_PHOTOSHOP_CHUNK = _JPEG_SEGMENT_MAX - len(iim.PHOTOSHOP_PREFIX)
_XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"
_XMP_TIFF_TAG = 700
_METRES_PER_INCH = 0.0254
# PNG text chunks carried as they are (PngText): all but those harmcli reads and writes itself (XMP and the
# "Raw profile type ..." chunks, whose EXIF/IPTC/ICC copies would describe the old pixels).
_PNG_TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")
_PNG_RAW_PROFILE = b"Raw profile type "
_MAX_PNG_TEXT = 1 << 24  # inflated bytes of one text chunk; more is treated as damage (a decompression bomb)


@dataclass(frozen=True)
class PngText:
    """One PNG text chunk (tEXt, zTXt or iTXt), as its content: written back with the same kind, keyword, text,
    compressed-ness and (iTXt) language tag and translated keyword.

    Attributes:
        kind: b"tEXt", b"zTXt" or b"iTXt".
        keyword: 1-79 Latin-1 bytes ("Copyright", "Author", "Description", "Creation Time" ...).
        text: the text, inflated: Latin-1 for tEXt and zTXt, UTF-8 for iTXt.
        compressed: stored deflated (always for zTXt, never for tEXt; iTXt's compression flag).
        language: iTXt's language tag ("en", "fr-CA" ...), else empty.
        translated_keyword: iTXt's keyword in that language (UTF-8), else empty.
    """

    kind: bytes
    keyword: bytes
    text: bytes
    compressed: bool = False
    language: bytes = b""
    translated_keyword: bytes = b""

    def chunk_body(self) -> bytes:
        text = zlib.compress(self.text) if self.compressed else self.text
        if self.kind == b"tEXt":
            return self.keyword + b"\x00" + text
        if self.kind == b"zTXt":
            return self.keyword + b"\x00\x00" + text
        return (self.keyword + b"\x00" + bytes((int(self.compressed), 0)) + self.language + b"\x00"
                + self.translated_keyword + b"\x00" + text)


@dataclass(frozen=True)
class ImageMetadata:
    """What an output inherits from its input, all optional.

    Attributes:
        icc: an RGB ICC profile, as stored: the one colour conversions use (after :meth:`for_pixels`, the profile
            the output stores, whichever its kind).
        gray_icc: a GRAY ICC profile, as stored, for an output written in gray (see :meth:`for_pixels`); a file
            holds one profile, so at most one of ``icc`` and ``gray_icc`` is set.
        exif: a TIFF-structured EXIF block (starting ``II*\\0`` or ``MM\\0*``), Orientation 1, no thumbnail.
        dpi: (horizontal, vertical) resolution in dots per inch.
        xmp: an XMP packet (UTF-8 XML), orientation 1, no thumbnails; for a JPEG with extended XMP, the standard
            packet, whose xmpNote:HasExtendedXMP names ``xmp_extended`` by its GUID.
        xmp_extended: the full extended XMP packet of a JPEG (cleaned like ``xmp``), only alongside ``xmp``.
        iptc: an IPTC-IIM record (the datasets themselves, as in Photoshop's resource 0x0404).
        iptc_digest: the input held a current MD5 digest of ``iptc``; outputs then store one too.
        png_text: a PNG input's text chunks (Author, Copyright, Description, Title ...), in file order, other than
            XMP and raw profiles; written into PNG outputs only.
        jpeg_comments: a JPEG input's COM segments (free text: a scanner's or an editor's note, a caption), in
            file order, as stored; written into JPEG outputs only.
        png_colour: a PNG input's gAMA, cHRM and sRGB chunks (kind, body): the colour description of a PNG without
            an ICC profile (a linear render says gAMA 1.0); written into PNG outputs only.
    """

    icc: bytes | None = None
    gray_icc: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    xmp_extended: bytes | None = None
    iptc: bytes | None = None
    iptc_digest: bool = False
    png_text: tuple[PngText, ...] = ()
    jpeg_comments: tuple[bytes, ...] = ()
    png_colour: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def is_empty(self) -> bool:
        return (
            self.icc is None and self.gray_icc is None and self.exif is None and self.dpi is None and self.xmp is None
            and self.xmp_extended is None and self.iptc is None and not self.png_text and not self.jpeg_comments
            and not self.png_colour
        )

    def for_pixels(self, *, gray: bool) -> "ImageMetadata":
        """What an output whose stored pixels are gray (``gray``) or RGB carries: ``icc`` becomes the profile that
        describes them (the gray one for gray pixels, the RGB one for RGB pixels) and ``gray_icc`` is cleared.

        The writers embed ``icc`` as they find it, so this is the one place that decides which kind an output
        gets; a profile of the other kind would tell colour-managed viewers a wrong story (or, for a gray profile
        on RGB data, be rejected by them) and is left out.
        """
        icc = self.gray_icc if gray else self.icc
        if icc == self.icc and self.gray_icc is None:
            return self
        return replace(self, icc=icc, gray_icc=None)


NO_METADATA = ImageMetadata()


# --------------------------------------------------------------------------------------------------- reading


def read_metadata(data: bytes, kind: str) -> ImageMetadata:
    """The metadata of an encoded image (``kind``: "jpeg", "png", "tiff", "webp"; others have none)."""
    try:
        if kind == "jpeg":
            return _read_jpeg(data)
        if kind == "png":
            return _read_png(data)
        if kind == "tiff":
            return _read_tiff(data)
        if kind == "webp":
            return _read_webp(data)
    except (struct.error, ValueError, IndexError, zlib.error):
        pass
    return NO_METADATA


def _finish(
    icc: bytes | None,
    exif_blob: bytes | None,
    dpi: tuple[float, float] | None,
    xmp: bytes | None = None,
    *,
    xmp_extended: bytes | None = None,
    iptc: tuple[bytes | None, bool] = (None, False),
) -> ImageMetadata:
    exif, exif_dpi = clean_exif(exif_blob) if exif_blob else (None, None)
    dpi = dpi or exif_dpi
    if dpi is not None and not all(1.0 <= v <= 100_000.0 for v in dpi):  # damaged, not a resolution
        dpi = None
    xmp, xmp_extended = _clean_extended_xmp(clean_xmp(xmp), xmp_extended)
    record, digest = iptc
    return ImageMetadata(
        icc=icc if is_rgb_profile(icc) else None, gray_icc=icc if is_gray_profile(icc) else None, exif=exif, dpi=dpi,
        xmp=xmp, xmp_extended=xmp_extended, iptc=record, iptc_digest=record is not None and digest,
    )


def metadata_from_parts(icc: bytes | None, exif: bytes | None, xmp: bytes | str | None) -> ImageMetadata:
    """What an output inherits, from parts a decoder library hands over (HEIF, AVIF): the ICC profile, an EXIF
    block with or without its ``Exif\\0\\0`` prefix (its resolution is the only one), an XMP packet as bytes or text.
    Cleaned as for the other formats; damaged parts are dropped."""
    if exif is not None and exif.startswith(_EXIF_PREFIX):
        exif = exif[len(_EXIF_PREFIX) :]
    return _finish(icc or None, exif or None, None, xmp.encode("utf-8") if isinstance(xmp, str) else xmp)


def encoder_options(metadata: ImageMetadata | None, *, exif_prefix: bool) -> dict:
    """``metadata`` as the ``icc_profile``/``exif``/``xmp`` save options of Pillow-style encoders (HEIF, AVIF),
    which hold one XMP packet and no resolution field: the resolution goes into EXIF (as for WebP) and the XMP
    loses its pointer to an extended part. ``exif_prefix``: the encoder wants the ``Exif\\0\\0`` prefix."""
    if metadata is None:
        return {}
    options: dict = {}
    if metadata.icc is not None:
        options["icc_profile"] = metadata.icc
    exif = exif_with_resolution(metadata.exif, metadata.dpi) if metadata.dpi is not None else metadata.exif
    if exif is not None:
        options["exif"] = (_EXIF_PREFIX + exif) if exif_prefix else exif
    if metadata.xmp is not None:
        options["xmp"] = standalone_xmp(metadata.xmp)
    return options


_XMP_ORIENTATION = (
    (re.compile(rb"""(tiff:Orientation\s*=\s*["'])\s*\d+\s*(["'])"""), rb"\g<1>1\g<2>"),
    (re.compile(rb"(<tiff:Orientation>)\s*\d+\s*(</tiff:Orientation>)"), rb"\g<1>1\g<2>"),
)
_XMP_THUMBNAILS = re.compile(rb"<xmp:Thumbnails\b.*?</xmp:Thumbnails>|<xmp:Thumbnails\b[^>]*/>", re.S)
# Pictures and maps of the old photo that phones keep in XMP or describe there: Google's portrait mode puts the
# unedited original (GImage) and a depth map (GDepth) in the (extended) XMP as base64; Ultra HDR's gain map
# (hdrgm) and Dynamic Depth's items (Container:Directory) are files appended after the JPEG, which the output does
# not have. Carried over, they would hand the old pixels back or point at images that are not there.
_OLD_PICTURES = (
    re.compile(rb"""\s(?:GImage|GDepth|hdrgm):\w+\s*=\s*(?:"[^"]*"|'[^']*')"""),
    re.compile(rb"<((?:GImage|GDepth|hdrgm|Container):\w+)\b[^>]*?(?:/>|>.*?</\1\s*>)", re.S),
)
# A standard packet's pointer to its extended part (attribute or element), for formats that carry no extended part.
_EXTENDED_POINTER = re.compile(
    rb"""\s\w+:HasExtendedXMP\s*=\s*(?:"[^"]*"|'[^']*')|<(\w+:HasExtendedXMP)\b[^>]*?(?:/>|>.*?</\1\s*>)""", re.S
)


def clean_xmp(xmp: bytes | None) -> bytes | None:
    """An XMP packet for an upright output: orientation 1; thumbnails, and the original photo, depth map and gain
    map phones keep beside it (all of the old picture), removed.

    Edited as text, so that everything else stays byte for byte; something that is not an XMP packet is dropped.
    """
    if not xmp or b"<x:xmpmeta" not in xmp and b"<rdf:RDF" not in xmp:
        return None
    for pattern, replacement in _XMP_ORIENTATION:
        xmp = pattern.sub(replacement, xmp)
    for pattern in _OLD_PICTURES:
        xmp = pattern.sub(b"", xmp)
    return _XMP_THUMBNAILS.sub(b"", xmp)


def standalone_xmp(xmp: bytes | None) -> bytes | None:
    """The standard packet for an output that holds no extended part (every format but JPEG): without the pointer
    to one, which would name a packet that is not there."""
    return _EXTENDED_POINTER.sub(b"", xmp) if xmp else xmp


# The GUID of a standard packet's extended part, as an attribute or as an element (group 2 is the GUID itself).
_EXTENDED_GUID = re.compile(rb"""(HasExtendedXMP(?:\s*=\s*["']|>\s*))([0-9A-Fa-f]{32})""")


def _clean_extended_xmp(xmp: bytes | None, extended: bytes | None) -> tuple[bytes | None, bytes | None]:
    """The standard and extended packets for an upright output. When cleaning changes the extended packet its
    GUID (the MD5 of the packet) changes, and the standard packet is made to name the new one."""
    if xmp is None or extended is None:
        return xmp, None
    cleaned = clean_xmp(extended)
    if cleaned is None:
        return xmp, None
    if cleaned != extended:
        guid = hashlib.md5(cleaned, usedforsecurity=False).hexdigest().upper().encode()
        xmp = _EXTENDED_GUID.sub(lambda m: m.group(1) + guid, xmp, count=1)
    return xmp, cleaned


def _extended_guid(xmp: bytes | None) -> bytes | None:
    match = _EXTENDED_GUID.search(xmp) if xmp else None
    return match.group(2).upper() if match else None


def _join_extended_xmp(pieces: list[tuple[int, int, bytes]]) -> bytes | None:
    """The extended packet from its (full length, offset, piece) segments; None unless they cover it exactly."""
    if not pieces or len({full for full, _, _ in pieces}) != 1:
        return None
    full, joined = pieces[0][0], bytearray()
    for _, offset, piece in sorted(pieces, key=lambda p: p[1]):
        if offset > len(joined):
            return None  # a piece is missing
        joined += piece[len(joined) - offset :]  # a repeated segment adds nothing
    return bytes(joined) if len(joined) == full else None


def is_rgb_profile(icc: bytes | None) -> bool:
    """True for a plausible ICC profile whose data colour space is RGB (header bytes 16..20)."""
    return _profile_space(icc) == b"RGB "


def is_gray_profile(icc: bytes | None) -> bool:
    """True for a plausible ICC profile whose data colour space is GRAY (header bytes 16..20)."""
    return _profile_space(icc) == b"GRAY"


def _profile_space(icc: bytes | None) -> bytes | None:
    if icc is None or len(icc) < 132 or icc[36:40] != b"acsp":
        return None
    return bytes(icc[16:20])


def _read_jpeg(data: bytes) -> ImageMetadata:
    pos, end = 2, len(data)
    icc_chunks: dict[int, bytes] = {}
    exif = xmp = None
    dpi = None
    extension_pieces: dict[bytes, list[tuple[int, int, bytes]]] = {}  # GUID -> (full length, offset, piece)
    photoshop: list[bytes] = []
    comments: list[bytes] = []
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan: no metadata after this point
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        payload = data[pos + 4 : pos + 2 + length]
        if marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= 12:
            units, xd, yd = struct.unpack_from(">BHH", payload, 7)
            if units in (1, 2) and xd and yd:
                scale = 1.0 if units == 1 else 2.54
                dpi = (xd * scale, yd * scale)
        elif marker == 0xE1 and exif is None and payload.startswith(_EXIF_PREFIX):
            exif = payload[6:]
        elif marker == 0xE1 and xmp is None and payload.startswith(_XMP_PREFIX):
            xmp = payload[len(_XMP_PREFIX) :]
        elif marker == 0xE1 and payload.startswith(_XMP_EXTENSION_PREFIX) and len(payload) > _XMP_EXTENSION_HEADER:
            at = len(_XMP_EXTENSION_PREFIX)
            full, offset = struct.unpack_from(">II", payload, at + 32)
            extension_pieces.setdefault(payload[at : at + 32].upper(), []).append((full, offset, payload[at + 40 :]))
        elif marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00") and len(payload) > 14:
            icc_chunks[payload[12]] = payload[14:]
        elif marker == 0xED and payload.startswith(iim.PHOTOSHOP_PREFIX):
            # Resources too long for one segment continue in the next, each behind its own prefix.
            photoshop.append(payload[len(iim.PHOTOSHOP_PREFIX) :])
        elif marker == 0xFE and payload and len(payload) == length - 2:  # COM, unless cut short by the file's end
            comments.append(bytes(payload))
        pos += 2 + length
    icc = b"".join(icc_chunks[k] for k in sorted(icc_chunks)) if icc_chunks else None
    # Only the pieces the standard packet names belong to it (an edited file may still hold an older set).
    guid = _extended_guid(xmp)
    extended = _join_extended_xmp(extension_pieces.get(guid, [])) if guid else None
    iptc = iim.iptc_from_resources(b"".join(photoshop)) if photoshop else (None, False)
    return replace(_finish(icc, exif, dpi, xmp, xmp_extended=extended, iptc=iptc), jpeg_comments=tuple(comments))


def _read_png(data: bytes) -> ImageMetadata:
    pos, end = 8, len(data)
    icc = exif = dpi = xmp = None
    iptc: tuple[bytes | None, bool] = (None, False)
    texts: list[PngText] = []
    colour: dict[bytes, bytes] = {}
    seen_image_data = False
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":  # the pixels: skipped, not sliced (a slice is a copy, the whole image over all of them)
            seen_image_data = True
            pos += 12 + length
            continue
        if kind == b"IEND":
            # Metadata chunks may follow IDAT: eXIf does in practice, and so did the text chunks of exiftool
            # before 11.63 (text chunks may stand anywhere after IHDR); so the walk goes on to IEND.
            break
        body = data[pos + 8 : pos + 8 + length]
        if kind in _PNG_TEXT_KINDS and not body.startswith((_XMP_PNG_KEYWORD + b"\x00", _PNG_RAW_PROFILE)):
            text = _png_text(kind, body)
            if text is not None:
                texts.append(text)
        elif kind == b"iCCP":
            name_end = body.index(b"\x00")
            icc = zlib.decompress(body[name_end + 2 :])
        elif kind == b"eXIf":
            exif = body[6:] if body.startswith(_EXIF_PREFIX) else body
        elif kind == b"iTXt" and body.startswith(_XMP_PNG_KEYWORD + b"\x00"):
            # keyword, NUL, compression flag, method, language tag, NUL, translated keyword, NUL, text
            flag = body[len(_XMP_PNG_KEYWORD) + 1]
            text_at = body.index(b"\x00", body.index(b"\x00", len(_XMP_PNG_KEYWORD) + 3) + 1) + 1
            xmp = zlib.decompress(body[text_at:]) if flag else body[text_at:]
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and iptc[0] is None and body.startswith(_PNG_IPTC_KEYWORDS):
            iptc = _png_raw_iptc(kind, body)
        elif kind in _PNG_COLOUR_SIZES and len(body) == _PNG_COLOUR_SIZES[kind] and not seen_image_data:
            colour.setdefault(kind, bytes(body))  # only valid before the image data, and only the first counts
        elif kind == b"pHYs" and length >= 9:
            x, y, unit = struct.unpack_from(">IIB", body)
            if unit == 1 and x and y:
                dpi = (_ppm_to_dpi(x), _ppm_to_dpi(y))
        pos += 12 + length
    return replace(_finish(icc, exif, dpi, xmp, iptc=iptc), png_text=tuple(texts), png_colour=tuple(colour.items()))


# PNG's colour chunks other than iCCP, with the one length each may have (PNG spec 11.3.3).
_PNG_COLOUR_SIZES = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1}
_PNG_IPTC_KEYWORDS = (iim.PNG_IPTC_KEYWORD + b"\x00", iim.PNG_PHOTOSHOP_KEYWORD + b"\x00")


def _valid_png_keyword(keyword: bytes) -> bool:
    """The PNG specification's keyword: 1-79 printable Latin-1 characters (32-126, 161-255)."""
    return 1 <= len(keyword) <= 79 and all(32 <= b <= 126 or b >= 161 for b in keyword)


def _png_text(kind: bytes, body: bytes) -> PngText | None:
    """A tEXt, zTXt or iTXt chunk's content; None for a damaged one (bad keyword, unknown compression method,
    text that does not inflate or inflates past ``_MAX_PNG_TEXT``), which is dropped."""
    try:
        keyword_end = body.index(b"\x00")
        keyword = body[:keyword_end]
        if not _valid_png_keyword(keyword):
            return None
        if kind == b"tEXt":
            return PngText(kind, keyword, body[keyword_end + 1 :])
        if kind == b"zTXt":
            if body[keyword_end + 1] != 0:
                return None
            return PngText(kind, keyword, _inflate_png_text(body[keyword_end + 2 :]), compressed=True)
        flag, method = body[keyword_end + 1], body[keyword_end + 2]
        if flag not in (0, 1) or method != 0:
            return None
        language_end = body.index(b"\x00", keyword_end + 3)
        translated_end = body.index(b"\x00", language_end + 1)
        text = body[translated_end + 1 :]
        return PngText(
            kind, keyword, _inflate_png_text(text) if flag else text, compressed=bool(flag),
            language=body[keyword_end + 3 : language_end], translated_keyword=body[language_end + 1 : translated_end],
        )
    except (ValueError, IndexError, zlib.error):
        return None


def _inflate_png_text(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, _MAX_PNG_TEXT)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("damaged or too large compressed text")
    return text


def _png_raw_iptc(kind: bytes, body: bytes) -> tuple[bytes | None, bool]:
    """The IIM record in a tEXt, zTXt or iTXt raw profile chunk; a damaged one is dropped here, so that the
    rest of the file's metadata is still read."""
    try:
        keyword_end = body.index(b"\x00")
        if kind == b"tEXt":
            text = body[keyword_end + 1 :]
        elif kind == b"zTXt":
            text = iim.inflate_text(body[keyword_end + 2 :])
        else:  # iTXt: compression flag and method, then language tag and translated keyword, each NUL-ended
            flag = body[keyword_end + 1]
            text_at = body.index(b"\x00", body.index(b"\x00", keyword_end + 3) + 1) + 1
            text = iim.inflate_text(body[text_at:]) if flag else body[text_at:]
        return iim.iptc_from_raw_profile(text)
    except (ValueError, IndexError, struct.error, zlib.error):
        return None, False


def _ppm_to_dpi(ppm: int) -> float:
    """Pixels per metre to dots per inch; 300 dpi is stored as 11811 ppm, which is read back as 300, not 299.9994."""
    dpi = ppm * _METRES_PER_INCH
    whole = round(dpi)
    return float(whole) if whole and round(whole / _METRES_PER_INCH) == ppm else dpi


def _read_webp(data: bytes) -> ImageMetadata:
    pos, end = 12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    icc = exif = xmp = None
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if fourcc == b"ICCP":
            icc = body
        elif fourcc == b"EXIF":
            exif = body[6:] if body.startswith(_EXIF_PREFIX) else body
        elif fourcc == b"XMP ":
            xmp = body
        pos += 8 + size + (size & 1)
    return _finish(icc, exif, None, xmp)


def _read_tiff(data: bytes) -> ImageMetadata:
    """A TIFF file is itself TIFF-structured: its first IFD holds the ICC tag, the resolution and EXIF's IFD0 tags."""
    order = _byte_order(data)
    if data[2:4] not in (b"*\x00", b"\x00*"):  # BigTIFF (43): metadata not read
        return NO_METADATA
    (first,) = struct.unpack_from(order + "I", data, 4)
    entries, _ = _parse_ifd(data, first, order, depth=0)
    by_tag = {e.tag: e for e in entries}
    icc = by_tag[_ICC_TAG].raw if _ICC_TAG in by_tag else None
    xmp = by_tag[_XMP_TIFF_TAG].raw if _XMP_TIFF_TAG in by_tag and by_tag[_XMP_TIFF_TAG].type in (1, 7) else None
    exif_entries = _turned_upright([e for e in entries if e.tag not in _STORAGE_TAGS and not _is_tool_stamp(e)], order)
    exif = _serialize(exif_entries, order) if _has_content(exif_entries) else None
    return _finish(icc, exif, _exif_dpi(exif_entries, order), xmp, iptc=_tiff_iptc(by_tag))


def _tiff_iptc(by_tag: dict[int, "_Entry"]) -> tuple[bytes | None, bool]:
    """The IIM record of tag 33723, or else the one among the Photoshop resources of tag 34377, whose digest
    resource (Photoshop writes both tags) says whether the record is current."""
    resources = by_tag.get(_PHOTOSHOP_TIFF_TAG)
    resources = iim.read_resources(resources.raw) if resources is not None and resources.type in (1, 7) else {}
    digest = resources.get(iim.DIGEST_RESOURCE)
    entry = by_tag.get(_IPTC_TIFF_TAG)
    if entry is not None and entry.type in (1, 4, 7):  # BYTE, LONG (Photoshop's choice) or UNDEFINED
        record, current = iim.checked_iptc(entry.raw, digest)
        if record is None and entry.type == 4:
            # A writer that took the LONGs for numbers swapped each one into its own byte order.
            swapped = b"".join(entry.raw[i : i + 4][::-1] for i in range(0, len(entry.raw) - 3, 4))
            record, current = iim.checked_iptc(swapped, digest)
        if record is not None:
            return record, current
    return iim.checked_iptc(resources.get(iim.IPTC_RESOURCE), digest)


def _is_tool_stamp(entry: "_Entry") -> bool:
    """What Python imaging libraries write into every TIFF (tifffile's shape JSON and name, ImageJ's header):
    not a description of the photograph, so not copied into EXIF."""
    if entry.type != 2:
        return False
    if entry.tag == 270:
        return entry.raw.startswith((b'{"shape":', b"ImageJ=", b"shape=("))
    return entry.tag == 305 and entry.raw.rstrip(b"\x00") == b"tifffile.py"


def _has_content(entries: list["_Entry"]) -> bool:
    """Whether an IFD0 says anything besides orientation and resolution (tifffile writes those in every file)."""
    return any(e.tag not in (_ORIENTATION, _X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT) for e in entries)


# ------------------------------------------------------------------------------------------------ EXIF blocks


@dataclass
class _Entry:
    """One TIFF/EXIF field: its raw value bytes in the block's byte order, or a sub-directory."""

    tag: int
    type: int
    count: int
    raw: bytes = b""
    sub: list["_Entry"] | None = None


def _byte_order(blob: bytes) -> str:
    try:
        return {b"II": "<", b"MM": ">"}[blob[:2]]
    except KeyError:
        raise ValueError("not TIFF-structured") from None


def _parse_ifd(data: bytes, offset: int, order: str, depth: int) -> tuple[list[_Entry], int]:
    """The fields of the directory at ``offset`` (sub-directories parsed too) and the next directory's offset."""
    if depth > 4 or offset < 8 or offset + 2 > len(data):
        raise ValueError("bad directory offset")
    (count,) = struct.unpack_from(order + "H", data, offset)
    if count > _MAX_ENTRIES:
        raise ValueError("implausible directory")
    entries = []
    for i in range(count):
        at = offset + 2 + 12 * i
        tag, kind, n = struct.unpack_from(order + "HHI", data, at)
        size = _TYPE_SIZE.get(kind)
        if size is None:
            continue  # an unknown field type cannot be copied safely
        nbytes = size * n
        if nbytes <= 4:
            raw = data[at + 8 : at + 8 + nbytes]
        else:
            (value_at,) = struct.unpack_from(order + "I", data, at + 8)
            if value_at + nbytes > len(data):
                continue  # points outside the block: a damaged field, dropped
            raw = data[value_at : value_at + nbytes]
        entry = _Entry(tag, kind, n, raw)
        if tag in _SUB_IFDS:
            if not (depth < 3 and n == 1 and kind in (4, 13)):
                continue
            (sub_at,) = struct.unpack_from(order + "I", raw)
            try:
                entry.sub, _ = _parse_ifd(data, sub_at, order, depth + 1)
            except (ValueError, struct.error):
                continue  # a damaged sub-directory is dropped, the rest kept
        elif kind == 13:
            continue  # a pointer to a directory we do not copy would point nowhere
        entries.append(entry)
    end = offset + 2 + 12 * count
    (next_ifd,) = struct.unpack_from(order + "I", data, end) if end + 4 <= len(data) else (0,)
    return entries, next_ifd


def clean_exif(blob: bytes) -> tuple[bytes | None, tuple[float, float] | None]:
    """Rebuild an EXIF block for an upright output: Orientation 1, no thumbnail, no pixel-storage tags.

    Returns the new block (None when nothing is left or it is unreadable) and the resolution it states in dpi.
    """
    try:
        order = _byte_order(blob)
        (first,) = struct.unpack_from(order + "I", blob, 4)
        entries, _ = _parse_ifd(blob, first, order, depth=0)  # IFD1 (the thumbnail) is not followed
    except (ValueError, struct.error):
        return None, None
    entries = _turned_upright([e for e in entries if e.tag not in _STORAGE_TAGS], order)
    return (_serialize(entries, order) if entries else None), _exif_dpi(entries, order)


def _turned_upright(entries: list[_Entry], order: str) -> list[_Entry]:
    """After a quarter turn (Orientation 5..8) the Exif image width and height (40962, 40963) trade places."""
    by_tag = {e.tag: e for e in entries}
    orientation = by_tag.get(_ORIENTATION)
    try:
        turned = orientation is not None and orientation.type == 3 and _values(orientation, order)[0] in (5, 6, 7, 8)
    except struct.error:
        turned = False
    exif = by_tag.get(_EXIF_IFD)
    if turned and exif is not None and exif.sub is not None:
        sizes = {e.tag: e for e in exif.sub if e.tag in (40962, 40963)}
        if len(sizes) == 2:
            width, height = sizes[40962], sizes[40963]
            swapped = [_Entry(40962, height.type, height.count, height.raw), _Entry(40963, width.type, width.count, width.raw)]
            exif.sub = [e for e in exif.sub if e.tag not in (40962, 40963)] + swapped
    return entries


def _exif_dpi(entries: list[_Entry], order: str) -> tuple[float, float] | None:
    by_tag = {e.tag: e for e in entries}
    try:
        unit = _values(by_tag[_RESOLUTION_UNIT], order)[0] if _RESOLUTION_UNIT in by_tag else 2
        x = _values(by_tag[_X_RESOLUTION], order)
        y = _values(by_tag[_Y_RESOLUTION], order)
    except (KeyError, struct.error, IndexError):
        return None
    if unit not in (2, 3) or not (x[1] and y[1] and x[0] and y[0]):
        return None
    scale = 1.0 if unit == 2 else 2.54
    return (x[0] / x[1] * scale, y[0] / y[1] * scale)


def _values(entry: _Entry, order: str) -> tuple:
    fmt = _TYPE_FORMAT[entry.type]
    return struct.unpack(order + fmt * entry.count, entry.raw)


def _serialize(entries: list[_Entry], order: str, base: int = 0) -> bytes:
    """A TIFF-structured block (header + IFD0 + values + sub-directories) for ``entries``.

    ``base`` is where the block will sit in its file: 0 for an EXIF block (offsets count from its own header).
    Orientation is written as 1.
    """
    header = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", base + 8)
    return header + _serialize_ifd(entries, order, base + 8, top=True)


def _serialize_ifd(entries: list[_Entry], order: str, start: int, *, top: bool = False) -> bytes:
    """One directory at file offset ``start``: entries, then out-of-line values, then sub-directories."""
    entries = sorted(entries, key=lambda e: e.tag)
    table_size = 2 + 12 * len(entries) + 4
    out_of_line: list[bytes] = []
    fields: list[bytes | _Entry] = []
    pos = start + table_size
    for entry in entries:
        if entry.sub is not None:
            fields.append(entry)  # its offset is known once the values are placed
            continue
        raw = entry.raw
        if top and entry.tag == _ORIENTATION and entry.type == 3 and entry.count == 1:
            raw = struct.pack(order + "H", 1)
        if len(raw) <= 4:
            fields.append(struct.pack(order + "HHI", entry.tag, entry.type, entry.count) + raw.ljust(4, b"\x00"))
        else:
            fields.append(struct.pack(order + "HHII", entry.tag, entry.type, entry.count, pos))
            padded = raw + b"\x00" * (len(raw) & 1)  # offsets stay even, as TIFF asks
            out_of_line.append(padded)
            pos += len(padded)
    subs: list[bytes] = []
    for i, field in enumerate(fields):
        if isinstance(field, _Entry):
            block = _serialize_ifd(field.sub or [], order, pos)
            fields[i] = struct.pack(order + "HHII", field.tag, 4, 1, pos)
            subs.append(block)
            pos += len(block)
    table = struct.pack(order + "H", len(entries)) + b"".join(fields) + struct.pack(order + "I", 0)
    return table + b"".join(out_of_line) + b"".join(subs)


# --------------------------------------------------------------------------------------------------- writing


def embed_metadata(encoded, ext: str, metadata: ImageMetadata | None, *, has_alpha: bool = False) -> list:
    """``encoded`` (OpenCV's JPEG, PNG or WebP bytes, any buffer) with ``metadata`` added, as pieces to write in
    order: the small new parts and views into ``encoded``, so that a 20 MB photo is not copied to add 1 KB."""
    view = memoryview(encoded).cast("B")
    if metadata is None or metadata.is_empty:
        return [view]
    if ext in (".jpg", ".jpeg"):
        return _embed_jpeg(view, metadata)
    if ext == ".png":
        return _embed_png(view, metadata)
    if ext == ".webp":
        return [_embed_webp(bytes(view), metadata, has_alpha)]
    return [view]  # BMP has no place for any of it


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _embed_jpeg(view: memoryview, metadata: ImageMetadata) -> list:
    rest = 2  # after SOI; the new segments go here
    jfif = b""
    if bytes(view[2:4]) == b"\xff\xe0":  # the encoder's JFIF APP0: its density becomes the resolution
        (length,) = struct.unpack_from(">H", view, 4)
        jfif, rest = bytearray(view[2 : 4 + length]), 4 + length
        if metadata.dpi is not None and jfif[4:9] == b"JFIF\x00" and len(jfif) >= 16:
            struct.pack_into(">BHH", jfif, 11, 1, *(min(65535, max(1, round(v))) for v in metadata.dpi))
    if not jfif and metadata.dpi is not None:  # an encoder that wrote no JFIF segment: add one for the density
        jfif = _segment(0xE0, b"JFIF\x00\x01\x01" + struct.pack(">BHH", 1, *(min(65535, max(1, round(v))) for v in metadata.dpi)) + b"\x00\x00")
    segments = [bytes(jfif)]
    if metadata.exif is not None and len(metadata.exif) + 6 <= _JPEG_SEGMENT_MAX:
        segments.append(_segment(0xE1, _EXIF_PREFIX + metadata.exif))
    if metadata.xmp is not None and len(metadata.xmp) + len(_XMP_PREFIX) <= _JPEG_SEGMENT_MAX:
        segments.append(_segment(0xE1, _XMP_PREFIX + metadata.xmp))
        segments += _extended_xmp_segments(metadata.xmp, metadata.xmp_extended)
    if metadata.icc is not None:
        chunks = [metadata.icc[i : i + _ICC_CHUNK] for i in range(0, len(metadata.icc), _ICC_CHUNK)]
        if len(chunks) <= 255:
            for k, chunk in enumerate(chunks, start=1):
                segments.append(_segment(0xE2, b"ICC_PROFILE\x00" + bytes((k, len(chunks))) + chunk))
    if metadata.iptc is not None:
        resources = iim.resources_for(metadata.iptc, metadata.iptc_digest)
        for i in range(0, len(resources), _PHOTOSHOP_CHUNK):  # readers join consecutive APP13 segments
            segments.append(_segment(0xED, iim.PHOTOSHOP_PREFIX + resources[i : i + _PHOTOSHOP_CHUNK]))
    segments += [_segment(0xFE, comment) for comment in metadata.jpeg_comments]  # after the APPn, as libjpeg puts them
    return [bytes(view[:2]) + b"".join(segments), view[rest:]]


def _extended_xmp_segments(xmp: bytes, extended: bytes | None) -> list[bytes]:
    """APP1 segments holding ``extended`` under the GUID the standard packet ``xmp`` names for it."""
    guid = _extended_guid(xmp)
    if extended is None or guid is None:
        return []
    return [
        _segment(0xE1, _XMP_EXTENSION_PREFIX + guid + struct.pack(">II", len(extended), offset)
                 + extended[offset : offset + _XMP_EXTENSION_CHUNK])
        for offset in range(0, len(extended), _XMP_EXTENSION_CHUNK)
    ]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _embed_png(view: memoryview, metadata: ImageMetadata) -> list:
    (ihdr_length,) = struct.unpack_from(">I", view, 8)
    split = 8 + 12 + ihdr_length  # signature + IHDR: the chunks below must come before PLTE and IDAT
    chunks = [_png_chunk(kind, body) for kind, body in metadata.png_colour]
    if metadata.icc is not None:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(metadata.icc)))
    if metadata.dpi is not None:
        x, y = (max(1, round(v / _METRES_PER_INCH)) for v in metadata.dpi)
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", x, y, 1)))
    if metadata.exif is not None:
        chunks.append(_png_chunk(b"eXIf", metadata.exif))
    if metadata.xmp is not None:  # uncompressed, as XMP asks, so that tools can find it without inflating
        chunks.append(_png_chunk(b"iTXt", _XMP_PNG_KEYWORD + b"\x00\x00\x00\x00\x00" + standalone_xmp(metadata.xmp)))
    if metadata.iptc is not None:
        # exiftool's way: the record inside image resources (so the digest can come along), compressed zTXt.
        text = iim.raw_profile(b"IPTC profile", iim.resources_for(metadata.iptc, metadata.iptc_digest))
        chunks.append(_png_chunk(b"zTXt", iim.PNG_IPTC_KEYWORD + b"\x00\x00" + zlib.compress(text)))
    for text_chunk in metadata.png_text:  # the input's own text chunks, in their order, as they were
        chunks.append(_png_chunk(text_chunk.kind, text_chunk.chunk_body()))
    return [view[:split], b"".join(chunks), view[split:]]


def _riff_chunk(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def exif_with_resolution(exif: bytes | None, dpi: tuple[float, float]) -> bytes:
    """``exif`` (or a new EXIF block) stating the resolution ``dpi``: for WebP, whose only place for it is EXIF."""
    order, entries = "<", []
    if exif is not None:
        try:
            order = _byte_order(exif)
            (first,) = struct.unpack_from(order + "I", exif, 4)
            entries, _ = _parse_ifd(exif, first, order, depth=0)
        except (ValueError, struct.error):
            order, entries = "<", []
    entries = [e for e in entries if e.tag not in (_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT)]
    for tag, value in ((_X_RESOLUTION, dpi[0]), (_Y_RESOLUTION, dpi[1])):
        entries.append(_Entry(tag, 5, 1, struct.pack(order + "II", round(value * 100), 100)))
    entries.append(_Entry(_RESOLUTION_UNIT, 3, 1, struct.pack(order + "H", 2)))
    return _serialize(entries, order)


def _embed_webp(encoded: bytes, metadata: ImageMetadata, has_alpha: bool) -> bytes:
    if metadata.dpi is not None:
        metadata = replace(metadata, exif=exif_with_resolution(metadata.exif, metadata.dpi))
    if metadata.icc is None and metadata.exif is None and metadata.xmp is None:
        return encoded
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= len(encoded):
        fourcc, size = struct.unpack_from("<4sI", encoded, pos)
        chunks.append((fourcc, encoded[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    width = height = None
    for fourcc, body in chunks:
        if fourcc == b"VP8X":
            width = 1 + int.from_bytes(body[4:7], "little")
            height = 1 + int.from_bytes(body[7:10], "little")
        elif fourcc == b"VP8 " and width is None:
            w, h = struct.unpack_from("<HH", body, 6)
            width, height = w & 0x3FFF, h & 0x3FFF
        elif fourcc == b"VP8L" and width is None:
            (bits,) = struct.unpack_from("<I", body, 1)
            width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if width is None:
        return encoded
    image = [(f, b) for f, b in chunks if f in (b"ALPH", b"VP8 ", b"VP8L")]
    flags = 0x10 if has_alpha or any(f == b"ALPH" for f, _ in image) else 0
    # The extended format's order: VP8X, ICCP, the image (ALPH + VP8, or VP8L), EXIF, XMP.
    parts = []
    if metadata.icc is not None:
        flags |= 0x20
        parts.append(_riff_chunk(b"ICCP", metadata.icc))
    parts += [_riff_chunk(f, b) for f, b in image]
    if metadata.exif is not None:
        flags |= 0x08
        parts.append(_riff_chunk(b"EXIF", metadata.exif))
    if metadata.xmp is not None:
        flags |= 0x04
        parts.append(_riff_chunk(b"XMP ", standalone_xmp(metadata.xmp)))
    vp8x = bytes((flags, 0, 0, 0)) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + _riff_chunk(b"VP8X", vp8x) + b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# TIFF: the EXIF IFD0 fields become tags of the image's own IFD0; the Exif and GPS directories are appended
# after tifffile has written the file (it refuses to write their pointer tags), through placeholder tags one
# code below them, so that the directory stays sorted when the code is corrected.
_PLACEHOLDER = {_EXIF_IFD: _EXIF_IFD - 1, _GPS_IFD: _GPS_IFD - 1}


def tiff_write_options(metadata: ImageMetadata | None) -> dict:
    """Keyword arguments for ``tifffile.imwrite`` carrying ``metadata`` (pair with :func:`finish_tiff`)."""
    if metadata is None or metadata.is_empty:
        return {}
    options: dict = {}
    if metadata.icc is not None:
        options["iccprofile"] = metadata.icc
    if metadata.dpi is not None:
        options["resolution"] = metadata.dpi
        options["resolutionunit"] = "INCH"
    if metadata.xmp is not None:
        xmp = standalone_xmp(metadata.xmp)
        options["extratags"] = [(_XMP_TIFF_TAG, 1, len(xmp), xmp, True)]
    if metadata.iptc is not None:  # UNDEFINED: a byte stream, so no reader can mistake it for numbers to swap
        tags = [(_IPTC_TIFF_TAG, 7, len(metadata.iptc), metadata.iptc, True)]
        if metadata.iptc_digest:
            digest = iim.digest_resource(metadata.iptc)
            tags.append((_PHOTOSHOP_TIFF_TAG, 1, len(digest), digest, True))
        options["extratags"] = options.get("extratags", []) + tags
    if metadata.exif is not None:
        try:
            order = _byte_order(metadata.exif)
            (first,) = struct.unpack_from(order + "I", metadata.exif, 4)
            entries, _ = _parse_ifd(metadata.exif, first, order, depth=0)
        except (ValueError, struct.error):
            return options
        tags = []
        for entry in entries:
            if entry.tag in (_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT):
                continue  # tifffile writes these itself (from ``resolution``)
            if entry.sub is not None:
                if entry.tag in _PLACEHOLDER:
                    tags.append((_PLACEHOLDER[entry.tag], 4, 1, 0, True))
                continue
            if entry.tag == _ORIENTATION:
                tags.append((_ORIENTATION, 3, 1, 1, True))
            elif entry.type in (1, 2, 6, 7):
                value = entry.raw.rstrip(b"\x00") if entry.type == 2 else entry.raw
                tags.append((entry.tag, entry.type, None if entry.type == 2 else entry.count, value, True))
            else:
                tags.append((entry.tag, entry.type, entry.count, _values(entry, order), True))
        options["extratags"] = options.get("extratags", []) + tags
        options["byteorder"] = order
        options["software"] = False  # the EXIF's own Software tag, if any, says what made the picture
    return options


def finish_tiff(fh, metadata: ImageMetadata | None) -> None:
    """Append the EXIF sub-directories to the TIFF just written to ``fh`` with :func:`tiff_write_options`, and
    turn its placeholder tags into pointers to them.

    ``fh`` is the open (write-only) file; its first directory is read back through its name, so the pixel data
    is never copied.
    """
    if metadata is None or metadata.exif is None:
        return
    try:
        order = _byte_order(metadata.exif)
        (first,) = struct.unpack_from(order + "I", metadata.exif, 4)
        entries, _ = _parse_ifd(metadata.exif, first, order, depth=0)
    except (ValueError, struct.error):
        return
    subs = {e.tag: e.sub for e in entries if e.sub is not None and e.tag in _PLACEHOLDER}
    if not subs:
        return
    fh.flush()
    name = getattr(fh, "name", None)
    with (open(name, "rb") if isinstance(name, (str, bytes)) else io.BytesIO(fh.getvalue())) as reader:
        header = reader.read(8)
        if _byte_order(header) != order:
            return
        (ifd0,) = struct.unpack_from(order + "I", header, 4)
        reader.seek(ifd0)
        (count,) = struct.unpack(order + "H", reader.read(2))
        table = reader.read(12 * count)
    end = fh.seek(0, 2)
    patches = []
    for i in range(count):
        (tag,) = struct.unpack_from(order + "H", table, 12 * i)
        for real, placeholder in _PLACEHOLDER.items():
            if tag == placeholder and real in subs:
                if end & 1:
                    fh.write(b"\x00")
                    end += 1
                block = _serialize_ifd(subs[real], order, end)
                fh.write(block)
                patches.append((ifd0 + 2 + 12 * i, struct.pack(order + "HHII", real, 4, 1, end)))
                end += len(block)
    for position, entry in patches:
        fh.seek(position)
        fh.write(entry)
    fh.seek(0, 2)
