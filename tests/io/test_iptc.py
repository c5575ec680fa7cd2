"""IPTC-IIM records survive read -> write (JPEG, TIFF, PNG) and ``harmcli harmonize``, with their digest only when
it is current; other Photoshop resources are not carried; damage is dropped, never an error.

Inputs are built here byte by byte (IIM datasets, 8BIM resources, APP13 segments, TIFF tags through tifffile);
outputs are checked with Pillow's and tifffile's own readers where they have one.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, IptcImagePlugin

from harmcli.io.images import read_image, write_image
from harmcli.io.metadata import ImageMetadata, read_metadata

from ..cli import IDENTITY, identity_weights, make_scene, run, write_params  # noqa: F401  (fixtures)
from .icc import ADOBE_RGB, build_rgb_profile

ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)


def dataset(record: int, number: int, value: bytes) -> bytes:
    """One IIM dataset; values of 32 KB and more take the extended form (a 4-byte length after 0x8004)."""
    if len(value) < 0x8000:
        return bytes((0x1C, record, number)) + struct.pack(">H", len(value)) + value
    return bytes((0x1C, record, number)) + struct.pack(">HI", 0x8004, len(value)) + value


# What Photo Mechanic writes for a news photo: UTF-8 marker, record version, caption, keywords, byline, copyright.
RECORD = b"".join([
    dataset(1, 90, b"\x1b%G"),
    dataset(2, 0, b"\x00\x04"),
    dataset(2, 120, "Fête de la musique, Place de la République".encode()),
    dataset(2, 25, b"music"),
    dataset(2, 25, b"Paris"),
    dataset(2, 80, b"Jane Doe"),
    dataset(2, 116, b"(c) 2024 Jane Doe"),
])


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def resource(resource_id: int, data: bytes, name: bytes = b"") -> bytes:
    """One 8BIM image resource: Pascal name padded to an even length, data padded to an even length."""
    pascal = bytes((len(name),)) + name
    pascal += b"\x00" * (len(pascal) & 1)
    return b"8BIM" + struct.pack(">H", resource_id) + pascal + struct.pack(">I", len(data)) + data + b"\x00" * (len(data) & 1)


def photoshop_resources(record: bytes = RECORD, digest: bytes | None = None) -> bytes:
    """Resources as Photoshop saves them: resolution info, a named odd-length resource, a thumbnail, then the IIM
    record and its digest (current unless ``digest`` says otherwise)."""
    ok, thumb = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))
    return b"".join([
        resource(0x03ED, struct.pack(">IHHIHH", 300 << 16, 1, 1, 300 << 16, 1, 1)),
        resource(0x0BB7, b"odd", name=b"Slice"),
        resource(0x040C, struct.pack(">6I2H", 1, 8, 8, 24, 24, len(thumb), 24, 1) + thumb.tobytes()),
        resource(0x0404, record),
        resource(0x0425, md5(record) if digest is None else digest),
    ])


def plain_jpeg(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return encoded.tobytes()


def jpeg_with(rgb: np.ndarray, *segments: tuple[int, bytes]) -> bytes:
    """A JPEG of ``rgb`` with (marker, payload) segments right after the encoder's JFIF segment."""
    data = plain_jpeg(rgb)
    (jfif_length,) = struct.unpack_from(">H", data, 4)
    at = 4 + jfif_length
    extra = b"".join(struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload for marker, payload in segments)
    return data[:at] + extra + data[at:]


def app13(resources: bytes) -> tuple[int, bytes]:
    return 0xED, b"Photoshop 3.0\x00" + resources


def camera_rgb(height=40, width=60) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 4, width // 4, 3)).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def output_iptc(path) -> tuple[bytes | None, dict[int, bytes]]:
    """The IIM record of a written file and the Photoshop resources beside it, read without harmcli."""
    suffix = str(path).rsplit(".", 1)[-1]
    if suffix == "jpg":
        with Image.open(path) as im:
            resources = dict(im.info.get("photoshop", {}))
        return resources.get(0x0404), resources
    if suffix == "tif":
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            record = bytes(tags["IPTCNAA"].value) if "IPTCNAA" in tags else None
            blob = bytes(tags["ImageResources"].value) if "ImageResources" in tags else b""
        return record, parse_resources(blob)
    if suffix == "png":
        data, pos = open(path, "rb").read(), 8
        while pos < len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            body = data[pos + 8 : pos + 8 + length]
            if kind == b"zTXt" and body.startswith(b"Raw profile type iptc\x00\x00"):
                text = zlib.decompress(body[len(b"Raw profile type iptc\x00\x00") :]).decode("ascii")
                _, name, count, *lines = text.split("\n")
                payload = bytes.fromhex("".join(lines))
                assert int(count) == len(payload) and all(len(line) <= 72 for line in lines)
                resources = parse_resources(payload)
                return resources.get(0x0404), resources
            pos += 12 + length
        return None, {}
    raise AssertionError(suffix)


def parse_resources(blob: bytes) -> dict[int, bytes]:
    resources, pos = {}, 0
    while pos < len(blob):
        assert blob[pos : pos + 4] == b"8BIM"
        (rid,) = struct.unpack_from(">H", blob, pos + 4)
        pos += 6 + blob[pos + 6] + 1
        pos += pos & 1
        (size,) = struct.unpack_from(">I", blob, pos)
        resources[rid] = blob[pos + 4 : pos + 4 + size]
        pos += 4 + size + (size & 1)
    return resources


@pytest.mark.parametrize("ext", [".jpg", ".tif", ".png"])
def test_jpeg_iptc_carried_without_photoshops_other_resources(tmp_path, ext):
    source = tmp_path / "in.jpg"
    source.write_bytes(jpeg_with(camera_rgb(), app13(photoshop_resources())))
    with Image.open(source) as im:  # the input really holds all five resources
        assert set(im.info["photoshop"]) == {0x03ED, 0x0BB7, 0x040C, 0x0404, 0x0425}
    loaded = read_image(source)
    assert loaded.metadata.iptc == RECORD and loaded.metadata.iptc_digest
    out = write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata)
    record, resources = output_iptc(out)
    assert record == RECORD
    # Only the digest comes along (TIFF keeps the record in a tag of its own); no thumbnail, slice or resolution.
    assert set(resources) == ({0x0425} if ext == ".tif" else {0x0404, 0x0425})
    assert resources[0x0425] == md5(RECORD)
    again = read_image(out).metadata
    assert again.iptc == RECORD and again.iptc_digest
    if ext != ".png":  # Pillow reads the datasets back too
        with Image.open(out) as im:
            info = IptcImagePlugin.getiptcinfo(im)
        assert info[(2, 120)] == "Fête de la musique, Place de la République".encode()
        assert info[(2, 25)] == [b"music", b"Paris"]


def test_webp_outputs_carry_no_iptc(tmp_path):
    """WebP has no place for IPTC-IIM (its XMP carries the same fields); the output is still written."""
    source = tmp_path / "in.jpg"
    source.write_bytes(jpeg_with(camera_rgb(), app13(photoshop_resources())))
    loaded = read_image(source)
    out = write_image(tmp_path / "out.webp", loaded.rgb, metadata=loaded.metadata)
    assert read_image(out).metadata.iptc is None and b"8BIM" not in out.read_bytes()


def test_stale_digest_is_dropped_record_kept(tmp_path):
    stale = md5(RECORD.replace(b"Paris", b"Lyon!"))  # another tool edited the record after Photoshop's digest
    source = tmp_path / "in.jpg"
    source.write_bytes(jpeg_with(camera_rgb(), app13(photoshop_resources(digest=stale))))
    loaded = read_image(source)
    assert loaded.metadata.iptc == RECORD and not loaded.metadata.iptc_digest
    for ext in (".jpg", ".tif", ".png"):
        out = write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata)
        record, resources = output_iptc(out)
        assert record == RECORD and 0x0425 not in resources
        assert read_image(out).metadata == loaded.metadata


def test_tiff_iptc_as_long_and_in_image_resources(tmp_path):
    """Photoshop's TIFFs: the record as LONGs (zero-padded to four bytes) in 33723, the digest in 34377. A file
    with only 34377 holding the record is read too. Both reach a JPEG output unchanged."""
    rgb = camera_rgb()
    record = RECORD + dataset(2, 5, b"x")  # odd length: the LONG tag pads it
    assert len(record) % 4
    padded = record + b"\x00" * (-len(record) % 4)
    longs = np.frombuffer(padded, dtype="<u4")  # the bytes as stored, read as little-endian numbers
    digest_only = resource(0x0425, md5(record))
    long_tiff = tmp_path / "long.tif"
    tifffile.imwrite(long_tiff, rgb, photometric="rgb", byteorder="<", metadata=None,
                     extratags=[(33723, 4, len(longs), longs, True), (34377, 1, len(digest_only), digest_only, True)])
    resources_tiff = tmp_path / "resources.tif"
    tifffile.imwrite(resources_tiff, rgb, photometric="rgb", metadata=None,
                     extratags=[(34377, 1, None, photoshop_resources(record), True)])
    for source in (long_tiff, resources_tiff):
        loaded = read_image(source)
        assert loaded.metadata.iptc == record and loaded.metadata.iptc_digest, source
        out = write_image(tmp_path / f"{source.stem}.jpg", loaded.rgb, metadata=loaded.metadata)
        assert output_iptc(out) == (record, {0x0404: record, 0x0425: md5(record)})


def test_png_raw_profile_with_bare_iim(tmp_path):
    """ImageMagick writes the bare record (no resources around it) into a tEXt raw profile."""
    hexed = RECORD.hex().encode()
    text = b"\nIPTC profile\n%8d\n" % len(RECORD) + b"\n".join(hexed[i : i + 72] for i in range(0, len(hexed), 72)) + b"\n"
    body = b"Raw profile type iptc\x00" + text
    ok, png = cv2.imencode(".png", camera_rgb())
    png = png.tobytes()
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    iend = png.rindex(b"IEND") - 4  # after IDAT, where older exiftool versions put text chunks
    metadata = read_metadata(png[:iend] + chunk + png[iend:], "png")
    assert metadata.iptc == RECORD and not metadata.iptc_digest


def test_damaged_resources_and_records_are_dropped_without_error(tmp_path):
    rgb = camera_rgb()
    exif = Image.Exif()
    exif[271] = "Canon"
    others = [(0xE2, b"ICC_PROFILE\x00\x01\x01" + ADOBE), (0xE1, exif.tobytes())]
    overrun = bytearray(photoshop_resources())
    at = overrun.index(b"8BIM\x04\x04")
    struct.pack_into(">I", overrun, at + 8, 1 << 20)  # the record's size runs past the end of the segment
    truncated = RECORD[:-4]  # the last dataset's stated length runs past the record
    bad_signature = resource(0x0404, RECORD).replace(b"8BIM", b"8BIX")
    cases = {
        "overrun": photoshop_resources()[:-10],  # the digest cut short: the record before it is still good
        "size past end": bytes(overrun),
        "truncated record": resource(0x0404, truncated) + resource(0x0425, md5(truncated)),
        "bad signature": bad_signature,
        "not IIM": resource(0x0404, b"Photo Mechanic was here"),
    }
    expected = {"overrun": RECORD}
    for name, blob in cases.items():
        source = tmp_path / "in.jpg"
        source.write_bytes(jpeg_with(rgb, *others, app13(blob)))
        loaded = read_image(source)
        assert loaded.metadata.iptc == expected.get(name), name
        assert not loaded.metadata.iptc_digest, name  # the digest resource is gone or the record is
        assert loaded.metadata.icc == ADOBE and loaded.metadata.exif is not None, name  # the rest is kept
        for ext in (".jpg", ".tif", ".png"):
            read_image(write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata))


def test_random_damage_never_fails_an_image(tmp_path):
    """Random byte damage in APP13: every image still reads and writes, and a record that comes through is a
    well-formed one (Pillow parses it). 2000 such segments were run once by hand; 60 here."""
    rng = np.random.default_rng(1)
    rgb = camera_rgb(16, 24)
    for _ in range(60):
        blob = bytearray(photoshop_resources())
        for _ in range(rng.integers(1, 6)):
            blob[rng.integers(0, len(blob))] = rng.integers(0, 256)
        source = tmp_path / "in.jpg"
        source.write_bytes(jpeg_with(rgb, app13(bytes(blob))))
        loaded = read_image(source)
        for ext in (".jpg", ".png", ".tif", ".webp"):
            out = write_image(tmp_path / f"out{ext}", loaded.rgb, metadata=loaded.metadata)
            assert read_image(out).metadata.iptc == (None if ext == ".webp" else loaded.metadata.iptc)
        if loaded.metadata.iptc is not None:
            with Image.open(tmp_path / "out.jpg") as im:
                assert IptcImagePlugin.getiptcinfo(im)


def test_large_record_spans_several_app13_segments(tmp_path):
    record = RECORD + dataset(2, 202, bytes(range(256)) * 400)  # 100 KB of object data (extended dataset)
    loaded = ImageMetadata(iptc=record, iptc_digest=True)
    out = write_image(tmp_path / "big.jpg", camera_rgb(), metadata=loaded)
    data = out.read_bytes()
    app13_bodies, pos = [], 2
    while data[pos + 1] != 0xDA:
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if data[pos + 1] == 0xED:
            assert data[pos + 4 : pos + 18] == b"Photoshop 3.0\x00"
            app13_bodies.append(data[pos + 18 : pos + 2 + length])
        pos += 2 + length
    assert len(app13_bodies) == 2
    # exiftool joins consecutive APP13 segments the same way (Pillow reads each alone, so not used here).
    assert parse_resources(b"".join(app13_bodies)) == {0x0404: record, 0x0425: md5(record)}
    metadata = read_image(out).metadata
    assert metadata.iptc == record and metadata.iptc_digest


# --------------------------------------------------------------------------------------------- harmcli CLI


def identity_params(tmp_path):
    return write_params(tmp_path / "identity.json", {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY})


def test_harmonize_keeps_iptc_jpeg_to_tiff_and_back(run, tmp_path, identity_weights):
    scene = make_scene()
    composite = tmp_path / "pasted.jpg"
    composite.write_bytes(jpeg_with(scene.composite(), app13(photoshop_resources())))
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), scene.mask)
    tiff = tmp_path / "out.tif"
    result = run("harmonize", composite, "--mask", mask, "-o", tiff, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert output_iptc(tiff) == (RECORD, {0x0425: md5(RECORD)})
    # The TIFF, harmonized again into a JPEG, gives the record back in APP13 with its digest.
    jpeg = tmp_path / "again.jpg"
    result = run("harmonize", tiff, "--mask", mask, "-o", jpeg, "--params", identity_params(tmp_path))
    assert result.code == 0, result.err
    assert output_iptc(jpeg) == (RECORD, {0x0404: RECORD, 0x0425: md5(RECORD)})


def test_strip_metadata_drops_iptc(run, tmp_path):
    scene = make_scene()
    bg = tmp_path / "bg.jpg"
    bg.write_bytes(jpeg_with(scene.bg, app13(photoshop_resources())))
    fg, mask = tmp_path / "fg.png", tmp_path / "mask.png"
    cv2.imwrite(str(fg), scene.fg[..., ::-1])
    cv2.imwrite(str(mask), scene.mask)
    for ext in (".jpg", ".tif", ".png"):
        kept, stripped = tmp_path / f"kept{ext}", tmp_path / f"stripped{ext}"
        params = identity_params(tmp_path)
        assert run("harmonize", fg, bg, mask, "-o", kept, "--params", params).code == 0
        result = run("harmonize", fg, bg, mask, "-o", stripped, "--params", params, "--strip-metadata")
        assert result.code == 0, result.err
        assert output_iptc(kept)[0] == RECORD  # the background's record, without the flag
        assert output_iptc(stripped) == (None, {}) and read_image(stripped).metadata.is_empty
