"""Reading and writing images: round-trips per format and bit depth, EXIF orientation, errors, safe writes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from harmcli.errors import ImageReadError, ImageWriteError, InputMismatchError
from harmcli.io import images
from harmcli.io.images import (
    DEFAULT_MAX_PIXELS,
    READ_EXTENSIONS,
    WRITE_EXTENSIONS,
    LoadedImage,
    atomic_write,
    output_bit_depth_for,
    read_image,
    read_mask,
    write_image,
)

HAVE_WEBP = ".webp" in WRITE_EXTENSIONS


def smooth_rgb(height: int = 48, width: int = 64, dtype=np.uint8) -> np.ndarray:
    """Smooth gradients (JPEG-friendly) with a different pattern per channel."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([x / (width - 1), y / (height - 1), 0.5 + 0.4 * np.sin(x / 9.0 + y / 13.0)], axis=-1)
    maxval = np.iinfo(dtype).max
    return np.rint(rgb * maxval).astype(dtype)


def unique_rgb(height: int = 5, width: int = 7, dtype=np.uint8) -> np.ndarray:
    """Every pixel different, so any rotation or flip is detectable exactly."""
    values = np.arange(height * width * 3, dtype=np.int64).reshape(height, width, 3) * 2
    return values.astype(dtype)


def exif_orientation_blob(orientation: int, big_endian: bool = False) -> bytes:
    """A minimal TIFF-structured EXIF block holding only the Orientation tag (274)."""
    order = ">" if big_endian else "<"
    head = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(order + "I", 8)
    ifd = struct.pack(order + "H", 1) + struct.pack(order + "HHIH", 274, 3, 1, orientation) + b"\x00\x00"
    return head + ifd + struct.pack(order + "I", 0)


def jpeg_with_orientation(rgb: np.ndarray, orientation: int, big_endian: bool = False) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    data = encoded.tobytes()
    payload = b"Exif\x00\x00" + exif_orientation_blob(orientation, big_endian)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    data = encoded.tobytes()
    ihdr_end = 8 + 12 + 13
    return data[:ihdr_end] + png_chunk(b"eXIf", exif_orientation_blob(orientation, big_endian=True)) + data[ihdr_end:]


def upright(stored: np.ndarray, orientation: int) -> np.ndarray:
    """What a viewer shows for ``stored`` pixels tagged with EXIF ``orientation`` (the spec's definitions)."""
    transposed = stored.transpose(1, 0, *range(2, stored.ndim))
    return {
        1: stored,
        2: stored[:, ::-1],
        3: stored[::-1, ::-1],
        4: stored[::-1],
        5: transposed,
        6: np.rot90(stored, -1),  # 90 degrees clockwise
        7: transposed[::-1, ::-1],
        8: np.rot90(stored, 1),  # 90 degrees counter-clockwise
    }[orientation]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------ constants / API


def test_extensions_and_limit():
    assert DEFAULT_MAX_PIXELS >= 20_000_000
    for ext in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        assert ext in READ_EXTENSIONS and ext in WRITE_EXTENSIONS


@pytest.mark.parametrize(
    ("name", "depth", "expected"),
    [("a.png", 16, 16), ("a.TIF", 16, 16), ("a.tiff", 16, 16), ("a.jpg", 16, 8), ("a.bmp", 16, 8), ("a.png", 8, 8), ("a.jpeg", 8, 8)],
)
def test_output_bit_depth_for(name, depth, expected):
    assert output_bit_depth_for(name, depth) == expected


def test_output_bit_depth_for_unknown_extension():
    with pytest.raises(ImageWriteError, match=r"\.png"):
        output_bit_depth_for("a.gif", 8)


# ------------------------------------------------------------------------------------------ round-trips


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".bmp"] + ([".webp"] if HAVE_WEBP else []))
def test_lossless_8bit_roundtrip(tmp_path, ext):
    rgb = unique_rgb(9, 11)
    path = write_image(tmp_path / f"img{ext}", rgb, jpeg_quality=100)
    loaded = read_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.bit_depth == 8 and loaded.rgb.dtype == np.uint8 and loaded.alpha is None
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert loaded.path == path


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_roundtrip(tmp_path, ext):
    rgb = (np.random.default_rng(0).random((13, 17, 3)) * 65535).astype(np.uint16)
    loaded = read_image(write_image(tmp_path / f"img{ext}", rgb))
    assert loaded.bit_depth == 16 and loaded.rgb.dtype == np.uint16
    np.testing.assert_array_equal(loaded.rgb, rgb)


@pytest.mark.parametrize("ext", [".jpg", ".bmp"] + ([".webp"] if HAVE_WEBP else []))
def test_16bit_to_8bit_only_format_rounds(tmp_path, ext):
    rgb = smooth_rgb(32, 48, np.uint16)
    if ext != ".jpg":  # a sharp pixel would only measure JPEG's loss
        rgb[0, 0] = (128, 385, 65535)  # 128/257 = 0.498 -> 0, 385/257 = 1.498 -> 1
    loaded = read_image(write_image(tmp_path / f"img{ext}", rgb, jpeg_quality=100))
    assert loaded.bit_depth == 8
    expected = np.rint(rgb / 257.0).astype(np.int16)
    difference = np.abs(loaded.rgb.astype(np.int16) - expected)
    if ext == ".jpg":
        assert difference.mean() < 1.5
    else:
        assert difference.max() == 0
        assert tuple(loaded.rgb[0, 0]) == (0, 1, 255)


def test_jpeg_roundtrip_within_tolerance(tmp_path):
    rgb = smooth_rgb(64, 96)
    loaded = read_image(write_image(tmp_path / "photo.jpeg", rgb, jpeg_quality=95))
    assert loaded.rgb.shape == rgb.shape and loaded.bit_depth == 8
    assert np.abs(loaded.rgb.astype(int) - rgb.astype(int)).mean() < 2.0


def test_8bit_stays_8bit_and_can_be_widened(tmp_path):
    rgb = unique_rgb()
    assert read_image(write_image(tmp_path / "a.png", rgb)).bit_depth == 8
    wide = read_image(write_image(tmp_path / "b.png", rgb, bit_depth=16))
    np.testing.assert_array_equal(wide.rgb, rgb.astype(np.uint16) * 257)


def test_float_input_written_at_requested_depth(tmp_path):
    values = np.array([[[0.0, 0.5, 1.0], [1.2, -0.1, 0.25]]], np.float32)
    eight = read_image(write_image(tmp_path / "f8.png", values))
    np.testing.assert_array_equal(eight.rgb, [[[0, 128, 255], [255, 0, 64]]])
    sixteen = read_image(write_image(tmp_path / "f16.tif", values, bit_depth=16))
    np.testing.assert_array_equal(sixteen.rgb, [[[0, 32768, 65535], [65535, 0, 16384]]])


@pytest.mark.parametrize("ext", [".png", ".tif", ".jpg"])
def test_grayscale_becomes_rgb(tmp_path, ext):
    gray = smooth_rgb(24, 32)[..., 0]
    path = tmp_path / f"gray{ext}"
    if ext == ".tif":
        tifffile.imwrite(path, gray, photometric="minisblack")
    else:
        assert cv2.imwrite(str(path), gray)
    loaded = read_image(path)
    assert loaded.rgb.shape == (24, 32, 3) and loaded.alpha is None
    tolerance = 3 if ext == ".jpg" else 0
    for c in range(3):
        assert np.abs(loaded.rgb[..., c].astype(int) - gray.astype(int)).max() <= tolerance


def test_gray_16bit_tiff(tmp_path):
    gray = np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50
    tifffile.imwrite(tmp_path / "g.tif", gray)
    loaded = read_image(tmp_path / "g.tif")
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.rgb[..., 1], gray)


RGBA_CASES = [(".png", np.uint8), (".png", np.uint16), (".tif", np.uint16)] + ([(".webp", np.uint8)] if HAVE_WEBP else [])


@pytest.mark.parametrize(("ext", "dtype"), RGBA_CASES)
def test_rgba_keeps_alpha_separately(tmp_path, ext, dtype):
    rgb = unique_rgb(6, 8, dtype)
    # Starts at 1: lossless WebP may drop the colour of fully transparent pixels.
    alpha = np.linspace(1, np.iinfo(dtype).max, 48).reshape(6, 8).astype(dtype)
    loaded = read_image(write_image(tmp_path / f"rgba{ext}", rgb, alpha=alpha, jpeg_quality=100))
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert loaded.alpha is not None and loaded.alpha.dtype == dtype
    np.testing.assert_array_equal(loaded.alpha, alpha)


def test_jpeg_drops_alpha(tmp_path):
    loaded = read_image(write_image(tmp_path / "a.jpg", smooth_rgb(), alpha=np.zeros((48, 64), np.uint8)))
    assert loaded.alpha is None


def test_gray_alpha_png_and_tiff(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    alpha = np.full((4, 5), 77, np.uint8)
    tifffile.imwrite(tmp_path / "ga.tif", np.dstack([gray, alpha]), photometric="minisblack", extrasamples=["unassalpha"])
    bgra = cv2.merge([gray, gray, gray, alpha])
    cv2.imwrite(str(tmp_path / "ga.png"), bgra)
    for name in ("ga.tif", "ga.png"):
        loaded = read_image(tmp_path / name)
        np.testing.assert_array_equal(loaded.rgb[..., 2], gray)
        np.testing.assert_array_equal(loaded.alpha, alpha)


def test_float_tiff_becomes_16bit(tmp_path):
    values = np.array([[[0.0, 0.5, 1.0], [2.0, -1.0, 0.25]]], np.float32)
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="rgb")
    loaded = read_image(tmp_path / "f.tif")
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.rgb, [[[0, 32768, 65535], [65535, 0, 16384]]])


def test_planar_tiff(tmp_path):
    rgb = unique_rgb(4, 6, np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "p.tif").rgb, rgb)


def test_unicode_path_and_created_parents(tmp_path):
    path = tmp_path / "ünï cødé" / "deeper" / "bild ✓.png"
    rgb = unique_rgb()
    write_image(path, rgb)
    np.testing.assert_array_equal(read_image(path).rgb, rgb)


def test_content_decides_decoder(tmp_path):
    """A PNG saved under a .jpg name still reads losslessly."""
    ok, encoded = cv2.imencode(".png", unique_rgb())
    (tmp_path / "really_png.jpg").write_bytes(encoded.tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "really_png.jpg").rgb, cv2.cvtColor(unique_rgb(), cv2.COLOR_BGR2RGB))


# ------------------------------------------------------------------------------------------ EXIF orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_orientation_all_eight(tmp_path, orientation):
    stored = unique_rgb(5, 7)
    (tmp_path / "o.png").write_bytes(png_with_orientation(stored, orientation))
    loaded = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(loaded.rgb, upright(stored, orientation))


@pytest.mark.parametrize(("orientation", "big_endian"), [(3, False), (6, False), (6, True), (8, True), (5, False), (7, True)])
def test_jpeg_exif_orientation(tmp_path, orientation, big_endian):
    stored = np.full((32, 48, 3), 20, np.uint8)
    stored[:8, :16] = 230  # a bright block in the stored top-left corner
    (tmp_path / "o.jpg").write_bytes(jpeg_with_orientation(stored, orientation, big_endian))
    loaded = read_image(tmp_path / "o.jpg")
    expected = upright(stored, orientation)
    assert loaded.rgb.shape == expected.shape
    assert np.abs(loaded.rgb.astype(int) - expected.astype(int)).max() <= 12


def test_tiff_orientation_tag(tmp_path):
    stored = unique_rgb(4, 6, np.uint16)
    tifffile.imwrite(tmp_path / "o.tif", stored, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif").rgb, upright(stored, 6))


def test_lzw_tiff_from_other_tools(tmp_path):
    """LZW (the default of OpenCV, GIMP and Photoshop) needs imagecodecs in tifffile; OpenCV reads it instead."""
    rgba = unique_rgb(6, 8, np.uint16)
    alpha = np.full((6, 8), 1234, np.uint16)
    assert cv2.imwrite(str(tmp_path / "lzw.tif"), cv2.merge([rgba[..., 2], rgba[..., 1], rgba[..., 0], alpha]))
    loaded = read_image(tmp_path / "lzw.tif")
    np.testing.assert_array_equal(loaded.rgb, rgba)
    np.testing.assert_array_equal(loaded.alpha, alpha)


def test_tiff_opencv_fallback_applies_orientation_once(tmp_path, monkeypatch):
    stored = unique_rgb(4, 6)
    tifffile.imwrite(tmp_path / "o.tif", stored, photometric="rgb", extratags=[(274, "H", 1, 8, True)])

    def needs_imagecodecs(self, *args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", needs_imagecodecs)
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif").rgb, upright(stored, 8))


@pytest.mark.skipif(not HAVE_WEBP, reason="OpenCV without WebP")
def test_webp_exif_orientation(tmp_path):
    stored = unique_rgb(5, 7)
    ok, encoded = cv2.imencode(".webp", cv2.cvtColor(stored, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, 101])
    data = encoded.tobytes()
    assert data[12:16] == b"VP8L"
    image_chunk = data[12:]
    exif = exif_orientation_blob(8)
    exif_chunk = b"EXIF" + struct.pack("<I", len(exif)) + exif + (b"\x00" if len(exif) % 2 else b"")
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x08, 0, 0, 0]) + (7 - 1).to_bytes(3, "little") + (5 - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + image_chunk + exif_chunk
    (tmp_path / "o.webp").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    np.testing.assert_array_equal(read_image(tmp_path / "o.webp").rgb, upright(stored, 8))


def test_mask_orientation_matches_image(tmp_path):
    stored = unique_rgb(5, 7)
    stored[..., 1] = stored[..., 0]
    stored[..., 2] = stored[..., 0]
    (tmp_path / "m.png").write_bytes(png_with_orientation(stored, 6))
    mask = read_mask(tmp_path / "m.png")
    np.testing.assert_allclose(mask, upright(stored, 6)[..., 0] / 255.0, atol=1e-6)


# ------------------------------------------------------------------------------------------ masks


def test_mask_gray_8_and_16bit(tmp_path):
    gray = np.array([[0, 128, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "m8.png"), gray)
    np.testing.assert_allclose(read_mask(tmp_path / "m8.png"), [[0, 128 / 255, 1]], atol=1e-6)
    cv2.imwrite(str(tmp_path / "m16.png"), gray.astype(np.uint16) * 257)
    mask = read_mask(tmp_path / "m16.png")
    assert mask.dtype == np.float32
    np.testing.assert_allclose(mask, [[0, 128 / 255, 1]], atol=1e-6)


def test_mask_rgb_equal_channels_uses_first_else_luminance(tmp_path):
    equal = np.repeat(np.array([[10, 200]], np.uint8)[..., None], 3, axis=2)
    write_image(tmp_path / "eq.png", equal)
    np.testing.assert_allclose(read_mask(tmp_path / "eq.png"), [[10 / 255, 200 / 255]], atol=1e-6)
    colored = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    write_image(tmp_path / "col.png", colored)
    np.testing.assert_allclose(read_mask(tmp_path / "col.png"), [[0.299, 0.114]], atol=1e-3)


def test_mask_rgba_uses_alpha_unless_opaque(tmp_path):
    rgb = np.full((2, 3, 3), 255, np.uint8)
    alpha = np.array([[0, 51, 255], [255, 255, 102]], np.uint8)
    write_image(tmp_path / "a.png", rgb, alpha=alpha)
    np.testing.assert_allclose(read_mask(tmp_path / "a.png"), alpha / 255.0, atol=1e-6)
    gray = np.array([[0, 51, 255], [255, 255, 102]], np.uint8)
    write_image(tmp_path / "opaque.png", np.repeat(gray[..., None], 3, axis=2), alpha=np.full((2, 3), 255, np.uint8))
    np.testing.assert_allclose(read_mask(tmp_path / "opaque.png"), gray / 255.0, atol=1e-6)


def test_mask_size_mismatch_names_both_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((30, 40), np.uint8))
    assert read_mask(tmp_path / "m.png", size=(30, 40)).shape == (30, 40)
    with pytest.raises(InputMismatchError, match=r"40x30.*80x60") as info:
        read_mask(tmp_path / "m.png", size=(60, 80))
    assert "swapped" not in str(info.value)


def test_mask_of_the_image_turned_sideways_gets_an_orientation_hint(tmp_path):
    # A phone photo stored sideways (EXIF orientation 6) is read upright, 40x30; a mask a tool saved from the stored
    # pixels, without the tag, is 30x40: the message says why the sizes differ.
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((40, 30), np.uint8))
    with pytest.raises(InputMismatchError, match=r"30x40.*40x30.*width and height swapped.*EXIF orientation"):
        read_mask(tmp_path / "m.png", size=(30, 40))


# ------------------------------------------------------------------------------------------ read errors


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist") as info:
        read_image(tmp_path / "nope.png")
    assert "nope.png" in str(info.value) and "\n" not in str(info.value)


def test_folder(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path / "dir.png")


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(tmp_path / "empty.jpg")


def test_truncated_jpeg(tmp_path):
    ok, encoded = cv2.imencode(".jpg", smooth_rgb(64, 64))
    data = encoded.tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "cut_header.jpg").write_bytes(data[:40])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "cut_header.jpg")


def test_jpeg_with_trailing_bytes_is_fine(tmp_path):
    ok, encoded = cv2.imencode(".jpg", smooth_rgb())
    (tmp_path / "tail.jpg").write_bytes(encoded.tobytes() + b"\x00" * 32)
    assert read_image(tmp_path / "tail.jpg").rgb.shape == (48, 64, 3)


def test_truncated_png(tmp_path):
    ok, encoded = cv2.imencode(".png", smooth_rgb(64, 64))
    data = encoded.tobytes()
    for cut in (len(data) - 12, len(data) // 2):
        (tmp_path / "cut.png").write_bytes(data[:cut])
        with pytest.raises(ImageReadError, match="truncated"):
            read_image(tmp_path / "cut.png")


def test_corrupt_png_data(tmp_path):
    ok, encoded = cv2.imencode(".png", smooth_rgb(64, 64))
    data = bytearray(encoded.tobytes())
    idat = data.index(b"IDAT")
    data[idat + 4 : idat + 40] = b"\x00" * 36
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match="bad.png"):
        read_image(tmp_path / "bad.png")


def test_truncated_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", smooth_rgb(64, 64))
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="t.tif"):
        read_image(tmp_path / "t.tif")


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture\n")
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(tmp_path / "notes.png")


def test_unsupported_extension(tmp_path):
    (tmp_path / "anim.gif").write_bytes(b"GIF89a" + b"\x00" * 20)
    with pytest.raises(ImageReadError, match=r"unsupported.*\.png"):
        read_image(tmp_path / "anim.gif")


def test_too_many_pixels(tmp_path):
    path = write_image(tmp_path / "big.png", np.zeros((20, 30, 3), np.uint8))
    assert read_image(path, max_pixels=600).rgb.shape == (20, 30, 3)
    with pytest.raises(ImageReadError, match=r"30x20.*--max-pixels"):
        read_image(path, max_pixels=599)
    with pytest.raises(ImageReadError, match="--max-pixels"):
        read_mask(path, max_pixels=100)


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_too_many_pixels_other_formats(tmp_path, ext):
    path = write_image(tmp_path / f"big{ext}", smooth_rgb(40, 50))
    with pytest.raises(ImageReadError, match="--max-pixels"):
        read_image(path, max_pixels=1000)


def test_pixel_limit_checked_before_decoding(tmp_path, monkeypatch):
    """A forged header claiming 100000 x 100000 pixels is refused without decoding anything."""
    ok, encoded = cv2.imencode(".png", unique_rgb())
    data = bytearray(encoded.tobytes())
    ihdr = bytes(data[12:29])
    forged = ihdr[:4] + struct.pack(">II", 100_000, 100_000) + ihdr[12:]
    data[8:33] = png_chunk(forged[:4], forged[4:])
    (tmp_path / "bomb.png").write_bytes(bytes(data))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded despite the header")

    monkeypatch.setattr(images.cv2, "imdecode", no_decoding)
    with pytest.raises(ImageReadError, match=r"100000x100000.*--max-pixels"):
        read_image(tmp_path / "bomb.png")


# ------------------------------------------------------------------------------------------ writing


def test_write_unknown_extension(tmp_path):
    with pytest.raises(ImageWriteError, match=r"\.png.*\.tif"):
        write_image(tmp_path / "out.gif", unique_rgb())
    assert not list(tmp_path.iterdir())


def test_never_overwrites_an_input(tmp_path):
    original = unique_rgb()
    source = write_image(tmp_path / "in.png", original)
    before = source.read_bytes()
    for target in (source, tmp_path / "sub" / ".." / "in.png"):
        with pytest.raises(ImageWriteError, match="input"):
            write_image(target, np.zeros_like(original), protect=[source])
    link = tmp_path / "link.png"
    os.symlink(source, link)
    with pytest.raises(ImageWriteError, match="input"):
        write_image(link, np.zeros_like(original), protect=[source])
    assert source.read_bytes() == before
    # Other names in the same folder are fine.
    write_image(tmp_path / "out.png", original, protect=[source])


def test_overwrites_an_existing_non_input(tmp_path):
    path = write_image(tmp_path / "out.png", np.zeros((4, 4, 3), np.uint8))
    write_image(path, np.full((4, 4, 3), 9, np.uint8))
    assert read_image(path).rgb.max() == 9
    assert no_temp_files(tmp_path)


def test_failed_write_leaves_no_file(tmp_path):
    def half_then_fail(fh):
        fh.write(b"partial data")
        raise OSError(28, "No space left on device")

    with pytest.raises(ImageWriteError, match="No space left"):
        atomic_write(tmp_path / "out.png", half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_image(tmp_path / "out.tif", np.zeros((4, 4, 3), np.uint8))
    before = path.read_bytes()

    def failing_imwrite(fh, *args, **kwargs):
        fh.write(b"II*\x00 half a tiff")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(tifffile, "imwrite", failing_imwrite)
    with pytest.raises(ImageWriteError, match="out.tif"):
        write_image(path, np.ones((4, 4, 3), np.uint8))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_interrupted_write_cleans_up(tmp_path):
    def interrupted(fh):
        fh.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.json", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_bad_shapes_rejected(tmp_path):
    with pytest.raises(ImageWriteError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageWriteError, match="alpha"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8), alpha=np.zeros((3, 3), np.uint8))
