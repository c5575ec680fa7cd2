"""IPTC-IIM records and the Photoshop image resources that carry them (used by :mod:`harmcli.io.metadata`).

An IIM record is what Photo Mechanic, Lightroom and Photoshop write for captions, keywords, creator and
copyright: a run of datasets, each ``0x1C``, record number, dataset number, a length and the value. Files mostly
hold it inside Photoshop's image resources ("8BIM" blocks: JPEG's APP13, TIFF's tag 34377, PNG's raw profile
text), as resource 0x0404, next to resource 0x0425, the MD5 digest of the record; TIFF also has a tag for the bare
record (33723). Photoshop compares the digest with the record to tell whether another program changed the IIM
after Photoshop last wrote XMP, so a digest is only worth carrying while it still matches the record; a stale one
is dropped here.

Every other resource (thumbnails, slices, paths, layer comps, print settings ...) describes the old pixels or
Photoshop's working state, so only these two are read and only these two are written.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib

IPTC_RESOURCE = 0x0404
DIGEST_RESOURCE = 0x0425
PHOTOSHOP_PREFIX = b"Photoshop 3.0\x00"  # JPEG APP13
# "8BIM" is Photoshop's; the others are written by a few old Adobe and third-party tools in the same layout.
_SIGNATURES = (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa")
_MAX_RAW_PROFILE = 16 << 20  # inflated PNG text; an IIM record is a few KB, this only bounds a hostile chunk


def read_resources(blob: bytes) -> dict[int, bytes]:
    """The image resources in ``blob`` (resource id -> data; the first of each id).

    A resource whose header or size runs past the end stops the walk: what came before it is kept, it and what
    follows are dropped (there is no way to find the next resource after a broken size).
    """
    resources: dict[int, bytes] = {}
    pos, end = 0, len(blob)
    while pos + 12 <= end and blob[pos : pos + 4] in _SIGNATURES:
        (resource_id,) = struct.unpack_from(">H", blob, pos + 4)
        name_length = blob[pos + 6]
        pos += 6 + name_length + 1 + ((name_length + 1) & 1)  # a Pascal name, padded to an even length
        if pos + 4 > end:
            break
        (size,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if pos + size > end:
            break
        resources.setdefault(resource_id, blob[pos : pos + size])
        pos += size + (size & 1)
    return resources


def checked_iptc(record: bytes | None, digest: bytes | None) -> tuple[bytes | None, bool]:
    """A well-formed IIM record (or None) and whether ``digest`` is a current MD5 digest of it."""
    clean = clean_iim(record)
    if clean is None:
        return None, False
    # A record read from a LONG-typed TIFF tag has zero padding that Photoshop's digest may or may not cover.
    current = digest is not None and digest in (_md5(clean), _md5(record))
    return clean, current


def iptc_from_resources(blob: bytes) -> tuple[bytes | None, bool]:
    """The IIM record in a block of image resources and whether the block's own digest of it is current."""
    resources = read_resources(blob)
    return checked_iptc(resources.get(IPTC_RESOURCE), resources.get(DIGEST_RESOURCE))


def clean_iim(record: bytes | None) -> bytes | None:
    """``record`` if it parses as IIM datasets to its end (trailing zero padding removed), else None.

    Checked because the record's bytes come from a resource or tag that may be damaged or mislabelled: carrying
    a broken record would make other tools report errors on a file harmcli wrote.
    """
    if not record:
        return None
    pos, end = 0, len(record)
    while pos < end:
        if record[pos] != 0x1C:
            # TIFF writers that store the record as LONGs pad it with zeros to a multiple of four bytes.
            return record[:pos] if pos and not any(record[pos:]) else None
        if pos + 5 > end:
            return None
        (length,) = struct.unpack_from(">H", record, pos + 3)
        pos += 5
        if length & 0x8000:  # an extended dataset: the low bits count the bytes of the length that follows
            width = length & 0x7FFF
            if not 1 <= width <= 4 or pos + width > end:
                return None
            length = int.from_bytes(record[pos : pos + width], "big")
            pos += width
        pos += length
    return record if pos == end else None


def resources_for(iptc: bytes, digest: bool) -> bytes:
    """Image resources holding only ``iptc`` (and, with ``digest``, its MD5 digest): no name, data padded even."""
    blocks = [(IPTC_RESOURCE, iptc)] + ([(DIGEST_RESOURCE, _md5(iptc))] if digest else [])
    return b"".join(
        b"8BIM" + struct.pack(">HHI", resource_id, 0, len(data)) + data + b"\x00" * (len(data) & 1)
        for resource_id, data in blocks
    )


def digest_resource(iptc: bytes) -> bytes:
    """Image resources holding only the digest of ``iptc`` (for TIFF, where the record has a tag of its own)."""
    return b"8BIM" + struct.pack(">HHI", DIGEST_RESOURCE, 0, 16) + _md5(iptc)


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


# ----------------------------------------------------------------------------------- PNG "Raw profile" text

# ImageMagick's and exiftool's layout: newline, profile name, newline, the byte count (8 wide), newline, then the
# bytes in hex, 72 digits a line.
_RAW_PROFILE = re.compile(rb"\A\n([^\n]*)\n\s*(\d+)\n(.*)\Z", re.S)
PNG_IPTC_KEYWORD = b"Raw profile type iptc"
PNG_PHOTOSHOP_KEYWORD = b"Raw profile type 8bim"


def inflate_text(data: bytes) -> bytes:
    """zTXt/iTXt text, inflated to at most ``_MAX_RAW_PROFILE`` bytes (more is treated as damage)."""
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, _MAX_RAW_PROFILE)
    if inflater.unconsumed_tail:
        raise ValueError("raw profile too large")
    return text


def iptc_from_raw_profile(text: bytes) -> tuple[bytes | None, bool]:
    """The IIM record in PNG raw profile text. The hex may hold a bare IIM record or image resources (exiftool
    writes the latter, with or without the APP13 prefix); any stated byte count is ignored, the record is checked."""
    match = _RAW_PROFILE.match(text)
    if match is None:
        return None, False
    try:
        payload = bytes.fromhex(match.group(3).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None, False
    if payload[:1] == b"\x1c":
        return checked_iptc(payload, None)
    if payload.startswith(PHOTOSHOP_PREFIX):
        payload = payload[len(PHOTOSHOP_PREFIX) :]
    return iptc_from_resources(payload)


def raw_profile(name: bytes, data: bytes) -> bytes:
    """PNG raw profile text for ``data`` (see ``_RAW_PROFILE``)."""
    lines = [data[i : i + 36].hex().encode() for i in range(0, len(data), 36)]
    return b"\n" + name + b"\n" + b"%8d" % len(data) + b"\n" + b"\n".join(lines) + b"\n"
