"""Colour profiles, EXIF and resolution survive read_image -> write_image in every format; untagged stays untagged.

Inputs are made here with Pillow and tifffile (not harmcli), with an EXIF block built byte by byte, and outputs
are checked with Pillow and tifffile.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile
from PIL import ExifTags, Image, ImageCms

from harmcli.io.images import read_image, write_image
from harmcli.io.metadata import ImageMetadata, read_metadata, standalone_xmp

from ..cli import IDENTITY, make_scene, run, write_params  # noqa: F401  (fixtures)
from .icc import ADOBE_RGB, PROPHOTO_RGB, build_rgb_profile

ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
PROPHOTO = build_rgb_profile("ProPhoto RGB (test)", **PROPHOTO_RGB)
MAKE, DATETIME, COPYRIGHT = "Canon", "2024:05:06 07:08:09", "(c) Jane Doe"
DATETIME_ORIGINAL = "2024:05:06 07:08:00"


def _ifd(entries, start: int) -> tuple[bytes, bytes]:
    """A little-endian IFD at offset ``start``: (table, out-of-line values). entries: (tag, type, count, bytes)."""
    table_size = 2 + 12 * len(entries) + 4
    table, values = struct.pack("<H", len(entries)), b""
    for tag, kind, count, raw in sorted(entries):
        if len(raw) <= 4:
            table += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\x00")
        else:
            table += struct.pack("<HHII", tag, kind, count, start + table_size + len(values))
            values += raw + b"\x00" * (len(raw) & 1)
    return table + struct.pack("<I", 0), values  # next IFD: none (IFD0's is patched to point to IFD1)


def _ascii(tag, text):
    raw = text.encode() + b"\x00"
    return (tag, 2, len(raw), raw)


def exif_block(orientation: int = 6, thumbnail: bool = True) -> bytes:
    """A camera-like EXIF block (TIFF structure): IFD0, an Exif sub-IFD and, optionally, IFD1 with a thumbnail."""
    ok, thumb = cv2.imencode(".jpg", np.full((8, 8, 3), 200, np.uint8))
    thumb = thumb.tobytes()
    exif_entries = [(33434, 5, 1, struct.pack("<II", 1, 250)), _ascii(36867, DATETIME_ORIGINAL),
                    (40962, 3, 1, struct.pack("<H", 60)), (40963, 3, 1, struct.pack("<H", 40))]  # stored 60 x 40
    gps_entries = [(0, 1, 4, bytes((2, 3, 0, 0))), _ascii(1, "N"), (2, 5, 3, struct.pack("<6I", 48, 1, 51, 1, 30, 1))]
    ifd0_entries = [
        _ascii(271, MAKE), (274, 3, 1, struct.pack("<H", orientation)), (282, 5, 1, struct.pack("<II", 300, 1)),
        (283, 5, 1, struct.pack("<II", 300, 1)), (296, 3, 1, struct.pack("<H", 2)), _ascii(306, DATETIME),
        _ascii(33432, COPYRIGHT), (34665, 4, 1, b"\x00" * 4), (34853, 4, 1, b"\x00" * 4),
    ]
    # Lay out: header, IFD0, its values, Exif IFD, its values, GPS IFD, its values, IFD1, thumbnail.
    table0, values0 = _ifd(ifd0_entries, 8)
    exif_at = 8 + len(table0) + len(values0)
    table_e, values_e = _ifd(exif_entries, exif_at)
    gps_at = exif_at + len(table_e) + len(values_e)
    table_g, values_g = _ifd(gps_entries, gps_at)
    ifd0_entries[-2:] = [(34665, 4, 1, struct.pack("<I", exif_at)), (34853, 4, 1, struct.pack("<I", gps_at))]
    table0, values0 = _ifd(ifd0_entries, 8)
    ifd1_at = gps_at + len(table_g) + len(values_g)
    blob = bytearray(b"II*\x00" + struct.pack("<I", 8) + table0 + values0 + table_e + values_e + table_g + values_g)
    if thumbnail:
        thumb_at = ifd1_at + 2 + 12 * 3 + 4
        table1, _ = _ifd([(259, 3, 1, struct.pack("<H", 6)), (513, 4, 1, struct.pack("<I", thumb_at)),
                          (514, 4, 1, struct.pack("<I", len(thumb)))], ifd1_at)
        struct.pack_into("<I", blob, 8 + len(table0) - 4, ifd1_at)  # IFD0's link to IFD1
        blob += table1 + thumb
    return bytes(blob)


def next_ifd(exif: Image.Exif | bytes) -> int:
    """The offset of IFD1 (the thumbnail) in a TIFF-structured EXIF block: 0 when there is none."""
    order = "<" if exif[:2] == b"II" else ">"
    (first,) = struct.unpack_from(order + "I", exif, 4)
    (count,) = struct.unpack_from(order + "H", exif, first)
    return struct.unpack_from(order + "I", exif, first + 2 + 12 * count)[0]


def camera_rgb(height=40, width=60) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 4, width // 4, 3)).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@pytest.fixture
def adobe_jpeg(tmp_path):
    """An Adobe RGB camera JPEG: ICC profile, EXIF (rotated 90° by Orientation 6, with a thumbnail), 300 dpi."""
    path = tmp_path / "camera.jpg"
    Image.fromarray(camera_rgb()).save(path, quality=95, icc_profile=ADOBE, exif=b"Exif\x00\x00" + exif_block(), dpi=(300, 300))
    with Image.open(path) as im:  # the input really has all of it
        assert im.info["icc_profile"] == ADOBE and im.info["dpi"] == (300, 300)
        assert im.getexif()[274] == 6 and next_ifd(im.info["exif"][6:]) != 0
    return path


def check_exif(exif: Image.Exif) -> None:
    assert (exif.get(271), exif.get(306), exif.get(33432)) == (MAKE, DATETIME, COPYRIGHT)
    assert exif.get(274, 1) == 1  # pixels are upright now
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    assert sub[36867] == DATETIME_ORIGINAL and float(sub[33434]) == pytest.approx(1 / 250)
    assert (sub[40962], sub[40963]) == (40, 60)  # the image width and height of the upright pixels
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert gps[1] == "N" and tuple(float(v) for v in gps[2]) == (48.0, 51.0, 30.0)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif", ".webp"])
def test_adobe_rgb_jpeg_round_trip(tmp_path, adobe_jpeg, ext):
    loaded = read_image(adobe_jpeg)
    assert loaded.rgb.shape == (60, 40, 3)  # turned upright
    out = write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as im:
        assert im.info["icc_profile"] == ADOBE  # byte for byte
        exif = im.getexif()
        check_exif(exif)
        assert not exif.get_ifd(ExifTags.IFD.IFD1)  # no stale thumbnail
        if ext == ".webp":  # WebP's only place for a resolution is its EXIF
            assert (float(exif[282]), float(exif[283]), exif[296]) == (300.0, 300.0, 2)
        else:
            assert tuple(float(v) for v in im.info["dpi"]) == pytest.approx((300, 300), abs=1e-3)
    again = read_image(out)
    assert again.metadata.icc == ADOBE and again.metadata.dpi == pytest.approx((300, 300))
    if ext in (".png", ".tif"):  # lossless: read back upright, not turned a second time
        np.testing.assert_array_equal(again.rgb, loaded.rgb)
    else:
        assert again.rgb.shape == loaded.rgb.shape and np.abs(again.rgb.astype(int) - loaded.rgb).mean() < 8  # lossy


def test_prophoto_16bit_tiff_round_trip(tmp_path):
    rgb = (camera_rgb().astype(np.uint16) * 257 + np.arange(60, dtype=np.uint16)[None, :, None]).astype(np.uint16)
    source = tmp_path / "scan.tif"
    tifffile.imwrite(
        source, rgb, photometric="rgb", iccprofile=PROPHOTO, resolution=(300, 300), resolutionunit="INCH",
        metadata=None, extratags=[(271, 2, None, MAKE, True), (306, 2, None, DATETIME, True), (33432, 2, None, COPYRIGHT, True)],
    )
    loaded = read_image(source)
    assert loaded.bit_depth == 16 and loaded.metadata.icc == PROPHOTO and loaded.metadata.dpi == (300.0, 300.0)
    out = write_image(tmp_path / "out.tif", loaded.rgb, metadata=loaded.metadata)
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), rgb)  # 16-bit kept
        tags = page.tags
        assert tags["InterColorProfile"].value == PROPHOTO
        assert (tags["Make"].value, tags["DateTime"].value, tags["Copyright"].value) == (MAKE, DATETIME, COPYRIGHT)
        assert tags["XResolution"].value == (300, 1) and tags["ResolutionUnit"].value == 2
    # The same tags become an EXIF block in a JPEG.
    jpeg = write_image(tmp_path / "out.jpg", loaded.rgb, metadata=loaded.metadata)
    with Image.open(jpeg) as im:
        assert im.info["icc_profile"] == PROPHOTO and im.info["dpi"] == (300, 300)
        exif = im.getexif()
        assert (exif[271], exif[306], exif[33432]) == (MAKE, DATETIME, COPYRIGHT)


def test_exif_sub_directory_written_into_tiff(tmp_path, adobe_jpeg):
    loaded = read_image(adobe_jpeg)
    out = write_image(tmp_path / "out.tif", loaded.rgb, bit_depth=16, metadata=loaded.metadata)
    with tifffile.TiffFile(out) as tif:
        sub = tif.pages[0].tags["ExifTag"].value  # tifffile follows the pointers harmcli patched in
        assert sub["DateTimeOriginal"] == DATETIME_ORIGINAL and sub["ExposureTime"] == (1, 250)
        gps = tif.pages[0].tags["GPSTag"].value
        assert gps["GPSLatitudeRef"] == "N" and gps["GPSLatitude"] == (48, 1, 51, 1, 30, 1)
        assert tif.pages[0].tags["Orientation"].value == 1


def _png_chunks(data: bytes) -> list[bytes]:
    pos, kinds = 8, []
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        kinds.append(kind)
        pos += 12 + length
    return kinds


def _jpeg_markers(data: bytes) -> list[int]:
    pos, markers = 2, []
    while data[pos + 1] != 0xDA:
        markers.append(data[pos + 1])
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return markers


def test_untagged_inputs_stay_untagged(tmp_path):
    rgb = camera_rgb()
    cv2.imwrite(str(tmp_path / "plain.png"), rgb)
    cv2.imwrite(str(tmp_path / "plain.jpg"), rgb)
    tifffile.imwrite(tmp_path / "plain.tif", rgb)  # tifffile's own shape description and name are not metadata
    for name in ("plain.png", "plain.jpg", "plain.tif"):
        loaded = read_image(tmp_path / name)
        assert loaded.metadata.is_empty
        png = write_image(tmp_path / f"{name}.png", loaded.rgb, metadata=loaded.metadata).read_bytes()
        assert not {b"iCCP", b"sRGB", b"eXIf", b"pHYs"} & set(_png_chunks(png))
        jpg = write_image(tmp_path / f"{name}.jpg", loaded.rgb, metadata=loaded.metadata).read_bytes()
        assert not {0xE1, 0xE2} & set(_jpeg_markers(jpg))
        with tifffile.TiffFile(write_image(tmp_path / f"{name}.tif", loaded.rgb, metadata=loaded.metadata)) as tif:
            assert "InterColorProfile" not in tif.pages[0].tags and "ExifTag" not in tif.pages[0].tags


def test_png_metadata_into_jpeg(tmp_path):
    source = tmp_path / "in.png"
    exif = Image.Exif()
    exif[271], exif[33432] = MAKE, COPYRIGHT
    Image.fromarray(camera_rgb()).save(source, icc_profile=ADOBE, dpi=(240, 240), exif=exif)
    loaded = read_image(source)
    assert loaded.metadata.icc == ADOBE and loaded.metadata.dpi == (240.0, 240.0)
    out = write_image(tmp_path / "out.jpg", loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as im:
        assert im.info["icc_profile"] == ADOBE and im.info["dpi"] == (240, 240)
        assert (im.getexif()[271], im.getexif()[33432]) == (MAKE, COPYRIGHT)


def test_webp_with_alpha_keeps_profile_and_alpha(tmp_path):
    rgb, alpha = camera_rgb(), np.tile(np.linspace(0, 255, 60).astype(np.uint8), (40, 1))
    for quality in (90, 100):  # lossy (VP8 + ALPH) and lossless (VP8L)
        out = write_image(tmp_path / f"a{quality}.webp", rgb, alpha=alpha, jpeg_quality=quality,
                          metadata=ImageMetadata(icc=ADOBE))
        decoded = cv2.imdecode(np.frombuffer(out.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == (40, 60, 4) and np.abs(decoded[..., 3].astype(int) - alpha).max() <= 2
        with Image.open(out) as im:
            assert im.info["icc_profile"] == ADOBE and im.mode == "RGBA"


def test_large_profile_spans_several_jpeg_segments(tmp_path):
    big = ADOBE + bytes(150_000)  # a profile over 64 KB (real ones with big LUTs exist) needs 3 APP2 segments
    out = write_image(tmp_path / "big.jpg", camera_rgb(), metadata=ImageMetadata(icc=big))
    assert _jpeg_markers(out.read_bytes()).count(0xE2) == 3
    with Image.open(out) as im:
        assert im.info["icc_profile"] == big
    assert read_image(out).metadata.icc == big


def test_non_rgb_profiles_and_damaged_exif_are_dropped(tmp_path):
    gray = bytearray(ADOBE)
    gray[16:20] = b"GRAY"
    path = tmp_path / "gray.jpg"
    Image.fromarray(camera_rgb()).save(path, icc_profile=bytes(gray), exif=b"Exif\x00\x00II*\x00\xff\xff\x00\x00")
    loaded = read_image(path)  # the image itself is fine
    assert loaded.metadata.icc is None and loaded.metadata.exif is None
    assert read_metadata(b"\xff\xd8\xff\xe1\x00\x04", "jpeg").is_empty  # a segment running off the end


def test_srgb_profile_from_pillow_round_trips_in_16bit_png(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = camera_rgb().astype(np.uint16) * 257
    out = write_image(tmp_path / "s.png", rgb, metadata=ImageMetadata(icc=srgb, dpi=(72.0, 72.0)))
    data = out.read_bytes()
    pos = data.index(b"iCCP")
    (length,) = struct.unpack(">I", data[pos - 4 : pos])
    name, _, rest = data[pos + 4 : pos + 4 + length].partition(b"\x00")
    assert rest[0] == 0 and zlib.decompress(rest[1:]) == srgb  # compression method 0: zlib
    assert _png_chunks(data).index(b"iCCP") < _png_chunks(data).index(b"IDAT")
    loaded = read_image(out)
    assert loaded.bit_depth == 16 and loaded.metadata.icc == srgb and loaded.metadata.dpi == (72.0, 72.0)
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == srgb


def test_damaged_exif_never_fails_an_image(tmp_path):
    """Random byte damage in the EXIF block: every image still reads and writes in every format (metadata that
    cannot be parsed is dropped, never an error). 3000 such blocks were run once by hand; 60 here."""
    rng = np.random.default_rng(0)
    rgb = camera_rgb(16, 24)
    ok, encoded = cv2.imencode(".jpg", rgb)
    head, body = encoded.tobytes()[:2], encoded.tobytes()[2:]
    for _ in range(60):
        blob = bytearray(exif_block())
        for _ in range(rng.integers(1, 6)):
            blob[rng.integers(0, len(blob))] = rng.integers(0, 256)
        app1 = b"Exif\x00\x00" + bytes(blob)
        (tmp_path / "in.jpg").write_bytes(head + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + body)
        loaded = read_image(tmp_path / "in.jpg")
        for ext in (".jpg", ".png", ".tif", ".webp"):
            read_image(write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata))


XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
    b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    b'xmlns:xmpGImg="http://ns.adobe.com/xap/1.0/g/img/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'tiff:Orientation="6" xmp:Rating="4"><dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) Jane Doe</rdf:li>'
    b'</rdf:Alt></dc:rights><xmp:Thumbnails><rdf:Alt><rdf:li rdf:parseType="Resource"><xmpGImg:image>/9j/4AAQ'
    b'</xmpGImg:image></rdf:li></rdf:Alt></xmp:Thumbnails></rdf:Description></rdf:RDF></x:xmpmeta>'
    b'<?xpacket end="w"?>'
)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif", ".webp"])
def test_xmp_round_trip(tmp_path, ext):
    """Lightroom-style XMP (rights, rating) is kept; its orientation is reset and its thumbnail removed."""
    source = tmp_path / "in.jpg"
    Image.fromarray(camera_rgb()).save(source, xmp=XMP, exif=b"Exif\x00\x00" + exif_block())
    loaded = read_image(source)
    out = write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata)
    if ext == ".tif":
        with tifffile.TiffFile(out) as tif:
            xmp = bytes(tif.pages[0].tags["XMP"].value)
    else:
        with Image.open(out) as im:
            xmp = im.info["XML:com.adobe.xmp" if ext == ".png" else "xmp"]
            xmp = xmp.encode() if isinstance(xmp, str) else xmp
    assert b"(c) Jane Doe" in xmp and b'xmp:Rating="4"' in xmp
    assert b'tiff:Orientation="1"' in xmp and b"Thumbnails" not in xmp and b"/9j/" not in xmp
    assert xmp.startswith(b"<?xpacket begin=") and xmp.endswith(b'<?xpacket end="w"?>')
    assert read_image(out).metadata.xmp == xmp


# ---------------------------------------------------------------------------------------- extended XMP (JPEG)

XMP_STANDARD = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"


def extended_packet(thumbnail: bool = False) -> bytes:
    """What Lightroom or Photoshop puts in extended XMP: a large property (here 150 KB of text, in a namespace of
    its own) that does not fit the 64 KB standard packet; optionally a thumbnail of the old picture as well."""
    data = bytes(np.random.default_rng(3).integers(65, 91, 150_000, dtype=np.uint8))
    thumbs = (b'<xmp:Thumbnails><rdf:Alt><rdf:li rdf:parseType="Resource"><xmpGImg:image>/9j/4AAQ</xmpGImg:image>'
              b"</rdf:li></rdf:Alt></xmp:Thumbnails>") if thumbnail else b""
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:hist="http://example.com/history/1.0/" '
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:xmpGImg="http://ns.adobe.com/xap/1.0/g/img/" '
        b'hist:Kind="steps" hist:Steps="' + data + b'">' + thumbs + b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def standard_packet(guid: bytes) -> bytes:
    return (
        b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        b'xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" tiff:Orientation="6" xmp:Rating="5" '
        b'xmpNote:HasExtendedXMP="' + guid + b'"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


def guid_of(packet: bytes) -> bytes:
    return hashlib.md5(packet).hexdigest().upper().encode()


def extension_segments(packet: bytes, guid: bytes, piece: int = 60_000) -> list[tuple[int, bytes]]:
    return [(0xE1, XMP_EXTENSION + guid + struct.pack(">II", len(packet), at) + packet[at : at + piece])
            for at in range(0, len(packet), piece)]


def jpeg_with_segments(segments: list[tuple[int, bytes]], rgb: np.ndarray | None = None) -> bytes:
    ok, encoded = cv2.imencode(".jpg", (camera_rgb() if rgb is None else rgb)[..., ::-1])
    data = encoded.tobytes()
    at = 4 + struct.unpack_from(">H", data, 4)[0]  # after the encoder's JFIF segment
    extra = b"".join(struct.pack(">BBH", 0xFF, marker, len(p) + 2) + p for marker, p in segments)
    return data[:at] + extra + data[at:]


def extended_xmp_of(data: bytes) -> tuple[bytes, dict[bytes, list[tuple[int, int, bytes]]]]:
    """A written JPEG's standard packet and its extension segments by GUID, read here without harmcli; every
    segment is checked to fit its 16-bit length."""
    pos, standard, pieces = 2, None, {}
    while data[pos + 1] != 0xDA:
        (length,) = struct.unpack_from(">H", data, pos + 2)
        payload = data[pos + 4 : pos + 2 + length]
        if data[pos + 1] == 0xE1 and payload.startswith(XMP_STANDARD):
            standard = payload[29:]
        elif data[pos + 1] == 0xE1 and payload.startswith(XMP_EXTENSION):
            guid, (full, offset) = payload[35:67], struct.unpack_from(">II", payload, 67)
            pieces.setdefault(guid, []).append((full, offset, payload[75:]))
        pos += 2 + length
    return standard, pieces


def test_extended_xmp_reassembled_and_written_back(tmp_path):
    extended = extended_packet()
    guid = guid_of(extended)
    segments = extension_segments(extended, guid)
    stale = extended.replace(b"image/jpeg", b"image/png ")  # an older set, left behind by an editor
    shuffled = [segments[2], *extension_segments(stale, guid_of(stale)), segments[0], segments[1]]
    source = tmp_path / "phone.jpg"
    source.write_bytes(jpeg_with_segments([(0xE1, XMP_STANDARD + standard_packet(guid)), *shuffled]))
    loaded = read_image(source)
    assert loaded.metadata.xmp_extended == extended  # the pieces named by the standard packet, in order
    assert b'tiff:Orientation="1"' in loaded.metadata.xmp and b'HasExtendedXMP="' + guid + b'"' in loaded.metadata.xmp
    out = write_image(tmp_path / "out.jpg", loaded.rgb, metadata=loaded.metadata)
    standard, pieces = extended_xmp_of(out.read_bytes())
    assert standard == loaded.metadata.xmp and list(pieces) == [guid]  # the same GUID, no stale set
    assert len(pieces[guid]) == 3 and all(full == len(extended) for full, _, _ in pieces[guid])
    assert b"".join(piece for _, _, piece in sorted(pieces[guid], key=lambda p: p[1])) == extended
    again = read_image(out).metadata
    assert (again.xmp, again.xmp_extended) == (loaded.metadata.xmp, extended)
    # TIFF and PNG have one XMP place without a size limit: only the standard packet goes there.
    for ext in (".tif", ".png"):
        other = read_image(write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata)).metadata
        # ...without its pointer to the extended part, which would name nothing there.
        assert other.xmp == standalone_xmp(loaded.metadata.xmp) and other.xmp_extended is None
        assert b"HasExtendedXMP" not in other.xmp and b"HasExtendedXMP" in loaded.metadata.xmp


def test_incomplete_or_foreign_extended_xmp_is_ignored(tmp_path):
    extended = extended_packet()
    guid = guid_of(extended)
    segments = extension_segments(extended, guid)
    standard = (0xE1, XMP_STANDARD + standard_packet(guid))
    wrong_length = bytearray(segments[2][1])
    struct.pack_into(">I", wrong_length, 67, len(extended) + 1)  # its full-length field disagrees with the others'
    cases = {
        "a piece missing": [standard, segments[0], segments[2]],
        "another GUID": [standard, *extension_segments(extended, b"0" * 32)],
        "lengths disagree": [standard, segments[0], segments[1], (0xE1, bytes(wrong_length))],
        "no standard packet": segments,
    }
    for name, case in cases.items():
        path = tmp_path / "in.jpg"
        path.write_bytes(jpeg_with_segments(case))
        metadata = read_image(path).metadata
        assert metadata.xmp_extended is None, name
        assert (metadata.xmp is None) == (name == "no standard packet"), name  # the standard packet stays
        out = write_image(tmp_path / "out.jpg", camera_rgb(), metadata=metadata).read_bytes()
        assert XMP_EXTENSION not in out, name
    # A segment too short to hold its own header is skipped, not taken for damage to the rest.
    path.write_bytes(jpeg_with_segments([standard, (0xE1, XMP_EXTENSION + guid[:8]), *segments]))
    assert read_image(path).metadata.xmp_extended == extended


def test_extended_xmp_cleaned_gets_a_new_guid(tmp_path):
    """A thumbnail in the extended part is removed like one in the standard packet; the extended packet then
    has another MD5, so the GUID in the standard packet and in the segments is the new one."""
    extended = extended_packet(thumbnail=True)
    guid = guid_of(extended)
    source = tmp_path / "in.jpg"
    source.write_bytes(jpeg_with_segments(
        [(0xE1, XMP_STANDARD + standard_packet(guid)), *extension_segments(extended, guid)]))
    metadata = read_image(source).metadata
    cleaned = metadata.xmp_extended
    assert b"Thumbnails" not in cleaned and b"/9j/" not in cleaned and b'hist:Steps="' in cleaned
    new_guid = guid_of(cleaned)
    assert new_guid != guid and b'HasExtendedXMP="' + new_guid + b'"' in metadata.xmp and guid not in metadata.xmp
    out = write_image(tmp_path / "out.jpg", camera_rgb(), metadata=metadata)
    standard, pieces = extended_xmp_of(out.read_bytes())
    assert standard == metadata.xmp and list(pieces) == [new_guid]
    assert b"".join(p for _, _, p in sorted(pieces[new_guid], key=lambda p: p[1])) == cleaned


def test_harmonize_keeps_extended_xmp_and_strip_drops_it(run, tmp_path):
    scene = make_scene()
    extended = extended_packet()
    guid = guid_of(extended)
    segments = [(0xE1, XMP_STANDARD + standard_packet(guid)), *extension_segments(extended, guid)]
    composite = tmp_path / "pasted.jpg"
    composite.write_bytes(jpeg_with_segments(segments, scene.composite()))
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), scene.mask)
    params = write_params(tmp_path / "identity.json", {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY})
    kept, stripped = tmp_path / "kept.jpg", tmp_path / "stripped.jpg"
    assert run("harmonize", composite, "--mask", mask, "-o", kept, "--params", params).code == 0
    result = run("harmonize", composite, "--mask", mask, "-o", stripped, "--params", params, "--strip-metadata")
    assert result.code == 0, result.err
    standard, pieces = extended_xmp_of(kept.read_bytes())
    assert b'HasExtendedXMP="' + guid + b'"' in standard and b'tiff:Orientation="1"' in standard
    assert b"".join(p for _, _, p in sorted(pieces[guid], key=lambda p: p[1])) == extended
    assert extended_xmp_of(stripped.read_bytes()) == (None, {})


def test_the_old_picture_phones_keep_in_xmp_is_not_carried(tmp_path):
    """Google's portrait photos keep the unedited original (GImage) and a depth map (GDepth) in XMP, Ultra HDR
    describes a gain map (hdrgm) and Dynamic Depth its appended items (Container): all of the old picture or of
    files the output does not have. The rest of the packet stays byte for byte."""
    from harmcli.io.metadata import clean_xmp

    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:GImage="http://ns.google.com/photos/1.0/image/" '
        b'xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" '
        b'xmlns:Container="http://ns.google.com/photos/1.0/container/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        b'GImage:Mime="image/jpeg" GImage:Data="/9j/AAAA" GDepth:Format="RangeInverse" GDepth:Data=\'iVBOR\' '
        b'hdrgm:Version="1.0" dc:format="image/jpeg"><Container:Directory><rdf:Seq><rdf:li>item</rdf:li></rdf:Seq>'
        b'</Container:Directory><dc:rights>(c) Ana</dc:rights></rdf:Description></rdf:RDF></x:xmpmeta>'
    )
    cleaned = clean_xmp(packet)
    for gone in (b"GImage:", b"GDepth:", b"hdrgm:Version", b"Container:Directory", b"/9j/", b"iVBOR"):
        assert gone not in cleaned, gone  # (the namespace declarations, xmlns:GImage=..., may stay)
    assert b'dc:format="image/jpeg"' in cleaned and b"<dc:rights>(c) Ana</dc:rights>" in cleaned


def test_formats_without_an_extended_part_lose_the_pointer_to_it(tmp_path):
    """A JPEG's standard packet names its extended part by GUID; a PNG, TIFF or WebP output holds only the standard
    packet, so the pointer would name nothing and goes."""
    extended = extended_packet()
    guid = guid_of(extended)
    source = tmp_path / "in.jpg"
    source.write_bytes(jpeg_with_segments(
        [(0xE1, XMP_STANDARD + standard_packet(guid)), *extension_segments(extended, guid)]))
    metadata = read_image(source).metadata
    for ext in (".png", ".tif", ".webp"):
        out = write_image(tmp_path / f"out{ext}", camera_rgb(), metadata=metadata)
        xmp = read_image(out).metadata.xmp
        assert b"HasExtendedXMP" not in xmp and b'xmp:Rating="5"' in xmp, ext
    jpeg = write_image(tmp_path / "out.jpg", camera_rgb(), metadata=metadata)
    assert b"HasExtendedXMP" in read_image(jpeg).metadata.xmp


# ------------------------------------------------------------------------------------------ PNG text chunks

TITLE = "Sonnenuntergang über dem Fjord — 日本語"


def _text_png(path, rgb: np.ndarray, *, xmp: bytes | None = None) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Copyright", COPYRIGHT + " \xa9 2024")  # tEXt (Latin-1)
    info.add_text("Description", "A fjord at dusk. " * 20, zip=True)  # zTXt
    info.add_itxt("Title", TITLE, lang="de-DE", tkey="Titel", zip=False)  # iTXt, non-ASCII, language tag
    info.add_itxt("Comment", "zusammengepresst ä" * 30, lang="de", tkey="Kommentar", zip=True)  # compressed iTXt
    if xmp is not None:
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    Image.fromarray(rgb).save(path, pnginfo=info)


def _text_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, body) of each tEXt, zTXt and iTXt chunk, in file order, CRCs checked."""
    pos, found = 8, []
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        assert struct.unpack_from(">I", data, pos + 8 + length)[0] == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            found.append((kind, body))
        pos += 12 + length
    return found


def _expected_text() -> dict[str, str]:
    return {
        "Copyright": COPYRIGHT + " \xa9 2024", "Description": "A fjord at dusk. " * 20, "Title": TITLE,
        "Comment": "zusammengepresst ä" * 30,
    }


def test_png_text_chunks_read_and_written_back(tmp_path):
    source = tmp_path / "in.png"
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
           b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
    _text_png(source, camera_rgb(), xmp=xmp)
    loaded = read_image(source)
    texts = loaded.metadata.png_text
    assert [(t.kind, t.keyword, t.compressed) for t in texts] == [
        (b"tEXt", b"Copyright", False), (b"zTXt", b"Description", True), (b"iTXt", b"Title", False),
        (b"iTXt", b"Comment", True),
    ]  # the XMP chunk is carried as XMP, not as text
    assert texts[2].language == b"de-DE" and texts[2].translated_keyword == "Titel".encode()
    assert texts[2].text == TITLE.encode("utf-8") and texts[0].text == (COPYRIGHT + " \xa9 2024").encode("latin-1")
    out = write_image(tmp_path / "out.png", loaded.rgb, metadata=loaded.metadata)
    written = _text_chunks(out.read_bytes())
    # Uncompressed chunks come back byte for byte; the XMP chunk is written once, by harmcli.
    assert [k for k, _ in written].count(b"iTXt") == 3
    assert len([b for _, b in written if b.startswith(b"XML:com.adobe.xmp\x00")]) == 1
    assert _text_chunks(source.read_bytes())[0] in written and _text_chunks(source.read_bytes())[2] in written
    with Image.open(out) as im:
        assert {k: v for k, v in im.text.items() if k != "XML:com.adobe.xmp"} == _expected_text()
    assert read_metadata(out.read_bytes(), "png").png_text == texts  # a second generation changes nothing


def test_damaged_or_profile_text_chunks_are_not_carried(tmp_path):
    from harmcli.io.metadata import _png_chunk

    source = tmp_path / "in.png"
    cv2.imwrite(str(source), camera_rgb())
    data = source.read_bytes()
    extra = [
        _png_chunk(b"tEXt", b"Raw profile type exif\x00\nexif\n  4\n00000000\n"),  # the old pixels' EXIF
        _png_chunk(b"tEXt", b"\x00no keyword"),
        _png_chunk(b"tEXt", b"K" * 80 + b"\x00keyword too long"),
        _png_chunk(b"zTXt", b"Bad\x00\x00not deflate data"),
        _png_chunk(b"iTXt", b"Bad\x00\x01\x07\x00\x00text"),  # unknown compression method
        _png_chunk(b"tEXt", b"Author\x00Jane Doe"),
    ]
    idat = data.index(b"IDAT") - 4
    after = _png_chunk(b"tEXt", b"Software\x00after IDAT")  # text chunks may follow the image data
    iend = data.index(b"IEND") - 4
    source.write_bytes(data[:idat] + b"".join(extra) + data[idat:iend] + after + data[iend:])
    loaded = read_image(source)
    carried = [(t.keyword, t.text) for t in loaded.metadata.png_text]
    assert carried == [(b"Author", b"Jane Doe"), (b"Software", b"after IDAT")]
    out = write_image(tmp_path / "out.png", loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as im:
        assert im.text == {"Author": "Jane Doe", "Software": "after IDAT"}


@pytest.mark.parametrize("fg_bg", [False, True])
def test_harmonize_keeps_png_text_and_strip_drops_it(run, tmp_path, fg_bg):
    scene = make_scene()
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), scene.mask)
    params = write_params(tmp_path / "identity.json", {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY})
    if fg_bg:  # the output inherits the background's metadata, never the foreground's
        fg, bg = tmp_path / "fg.png", tmp_path / "bg.png"
        cv2.imwrite(str(fg), scene.fg)
        _text_png(bg, scene.bg)
        inputs = [fg, bg, mask]
    else:
        composite = tmp_path / "pasted.png"
        _text_png(composite, scene.composite())
        inputs = [composite, "--mask", mask]
    kept, stripped, jpeg = tmp_path / "kept.png", tmp_path / "stripped.png", tmp_path / "out.jpg"
    for out, extra in ((kept, []), (stripped, ["--strip-metadata"]), (jpeg, [])):
        result = run("harmonize", *inputs, "-o", out, "--params", params, *extra)
        assert result.code == 0, result.err
    with Image.open(kept) as im:
        assert im.text == _expected_text()
    assert _text_chunks(stripped.read_bytes()) == []
    with Image.open(stripped) as im:
        assert im.text == {}
    jpeg_bytes = jpeg.read_bytes()
    assert b"Copyright" not in jpeg_bytes and TITLE.encode() not in jpeg_bytes
    with Image.open(jpeg) as im:
        assert "Copyright" not in im.info and "Title" not in im.info


# --------------------------------------------------------------------------------------------- JPEG comments

COMMENTS = (b"Scanned on a Nikon Coolscan, 4000 dpi", "Légende : le fjord au crépuscule".encode("utf-8"))


def _commented_jpeg(path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    data = encoded.tobytes()
    segments = b"".join(b"\xff\xfe" + struct.pack(">H", len(c) + 2) + c for c in COMMENTS)
    path.write_bytes(data[:2] + segments + data[2:])  # before the encoder's JFIF: any place before the scan holds


def _com_segments(data: bytes) -> list[bytes]:
    pos, found = 2, []
    while data[pos] == 0xFF and data[pos + 1] != 0xDA:
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if data[pos + 1] == 0xFE:
            found.append(data[pos + 4 : pos + 2 + length])
        pos += 2 + length
    return found


def test_jpeg_comments_are_carried_into_jpeg_outputs(run, tmp_path):
    scene = make_scene()
    composite, mask = tmp_path / "scan.jpg", tmp_path / "mask.png"
    _commented_jpeg(composite, scene.composite())
    cv2.imwrite(str(mask), scene.mask)
    assert read_image(composite).metadata.jpeg_comments == COMMENTS
    params = write_params(tmp_path / "identity.json", {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY})
    kept, stripped, png = tmp_path / "kept.jpg", tmp_path / "stripped.jpg", tmp_path / "out.png"
    for out, extra in ((kept, []), (stripped, ["--strip-metadata"]), (png, [])):
        result = run("harmonize", composite, "--mask", mask, "-o", out, "--params", params, *extra)
        assert result.code == 0, result.err
    assert _com_segments(kept.read_bytes()) == list(COMMENTS)  # in order, byte for byte
    with Image.open(kept) as im:  # as another reader sees them
        assert [body for kind, body in im.applist if kind == "COM"] == list(COMMENTS)
    assert _com_segments(stripped.read_bytes()) == []
    assert COMMENTS[0] not in png.read_bytes()  # PNG has text chunks of its own; a comment is not one


def test_a_comment_cut_short_by_the_end_of_the_file_is_not_carried():
    data = b"\xff\xd8" + b"\xff\xfe" + struct.pack(">H", 40) + b"only part of it"
    assert read_metadata(data, "jpeg").jpeg_comments == ()


# ------------------------------------------------------------------------------- PNG gAMA, cHRM and sRGB chunks

LINEAR = struct.pack(">I", 100000)  # gAMA 1.0: a linear render
CHRM = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)  # BT.709 primaries, D65


def _colour_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, found = 8, []
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            break
        if kind in (b"gAMA", b"cHRM", b"sRGB"):
            found.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return found


def test_png_colour_chunks_are_carried_into_png_outputs(run, tmp_path):
    from harmcli.io.metadata import _png_chunk

    scene = make_scene()
    composite, mask = tmp_path / "render.png", tmp_path / "mask.png"
    cv2.imwrite(str(composite), cv2.cvtColor(scene.composite(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(mask), scene.mask)
    data = composite.read_bytes()
    idat, iend = data.index(b"IDAT") - 4, data.index(b"IEND") - 4
    late = _png_chunk(b"gAMA", struct.pack(">I", 45455))  # after the image data: not valid there, not carried
    composite.write_bytes(data[:idat] + _png_chunk(b"gAMA", LINEAR) + _png_chunk(b"cHRM", CHRM) + _png_chunk(b"sRGB", b"\x00")
                          + data[idat:iend] + late + data[iend:])
    assert read_image(composite).metadata.png_colour == ((b"gAMA", LINEAR), (b"cHRM", CHRM), (b"sRGB", b"\x00"))
    params = write_params(tmp_path / "identity.json", {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY})
    kept, stripped, jpeg = tmp_path / "kept.png", tmp_path / "stripped.png", tmp_path / "out.jpg"
    for out, extra in ((kept, []), (stripped, ["--strip-metadata"]), (jpeg, [])):
        result = run("harmonize", composite, "--mask", mask, "-o", out, "--params", params, *extra)
        assert result.code == 0, result.err
    assert _colour_chunks(kept.read_bytes()) == [(b"gAMA", LINEAR), (b"cHRM", CHRM), (b"sRGB", b"\x00")]
    with Image.open(kept) as im:
        assert im.info["gamma"] == 1.0 and im.info["srgb"] == 0  # another reader sees them
    assert _colour_chunks(stripped.read_bytes()) == []
    assert b"gAMA" not in jpeg.read_bytes()[:4096]
