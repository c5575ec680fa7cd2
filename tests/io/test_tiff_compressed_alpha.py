"""Gray + alpha TIFFs compressed in a way tifffile needs ``imagecodecs`` for (LZW, JPEG): OpenCV's libtiff, the
fallback for those, has no 2-channel images and returned gray alone, so a cutout's transparency was lost without
a word. They are decoded by Pillow's libtiff instead, alpha kept bit for bit; what it cannot read is a clear error."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from harmcli.errors import ImageReadError
from harmcli.io import images
from harmcli.io.images import read_image, read_mask

from .test_grayscale import ramp, soft_alpha
from .test_images import upright

LZW, PACKBITS = 5, 32773


def la_tiff(gray: np.ndarray, alpha: np.ndarray, compression: str = "tiff_lzw", **options) -> bytes:
    """An 8-bit gray + alpha TIFF (MINISBLACK, unassociated alpha) as Pillow's libtiff writes it."""
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(buffer, format="TIFF", compression=compression, **options)
    return buffer.getvalue()


def with_tag(data: bytes, code: int, value: int) -> bytes:
    """``data`` with the one-value tag ``code`` of the first page set to ``value`` (the pixel data unchanged)."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tag = tif.pages[0].tags[code]
        form = tif.byteorder + ("H" if tag.dtype == 3 else "I")
        offset = tag.valueoffset
    patched = bytearray(data)
    struct.pack_into(form, patched, offset, value)
    return bytes(patched)


def compression_of(path: Path) -> int:
    with tifffile.TiffFile(path) as tif:
        return int(tif.pages[0].compression)


@pytest.mark.parametrize("compression, code", [("tiff_lzw", LZW), ("packbits", PACKBITS)])
def test_compressed_gray_alpha_reads_back_exactly(tmp_path, compression, code):
    gray, alpha = ramp(), soft_alpha()
    path = tmp_path / "cutout.tif"
    path.write_bytes(la_tiff(gray, alpha, compression))
    assert compression_of(path) == code
    loaded = read_image(path)
    assert loaded.gray and loaded.bit_depth == 8
    assert loaded.alpha is not None, "the alpha was dropped"
    np.testing.assert_array_equal(loaded.alpha, alpha)
    for channel in range(3):
        np.testing.assert_array_equal(loaded.rgb[..., channel], gray)
    np.testing.assert_allclose(read_mask(path), alpha / 255.0, atol=1e-6)  # a cutout's alpha is its mask


@pytest.mark.parametrize(
    "photometric, extrasample",
    [(1, 2), (0, 2), (1, 1), (1, 0)],
    ids=["minisblack", "miniswhite", "associated-alpha", "unspecified-extra"],
)
def test_lzw_reads_as_the_same_file_uncompressed(tmp_path, photometric, extrasample):
    """Whatever the tags say, the LZW file reads as tifffile reads the same samples stored uncompressed."""
    stored_gray, alpha = ramp(), soft_alpha()
    data = with_tag(with_tag(la_tiff(stored_gray, alpha), 262, photometric), 338, extrasample)
    (tmp_path / "lzw.tif").write_bytes(data)
    tifffile.imwrite(
        tmp_path / "plain.tif",
        np.dstack([stored_gray, alpha]),
        photometric="miniswhite" if photometric == 0 else "minisblack",
        extrasamples=[{0: "unspecified", 1: "assocalpha", 2: "unassalpha"}[extrasample]],
    )
    lzw, plain = read_image(tmp_path / "lzw.tif"), read_image(tmp_path / "plain.tif")
    assert lzw.gray and plain.gray and lzw.alpha is not None
    np.testing.assert_array_equal(lzw.rgb, plain.rgb)
    np.testing.assert_array_equal(lzw.alpha, plain.alpha)
    np.testing.assert_array_equal(lzw.alpha, alpha)  # never inverted
    expected_gray = 255 - stored_gray if photometric == 0 else stored_gray  # MINISWHITE: the gray channel only
    np.testing.assert_array_equal(lzw.rgb[..., 0], expected_gray)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_lzw_gray_alpha_orientation_applied_once(tmp_path, orientation):
    gray, alpha = ramp(height=12, width=20), soft_alpha(height=12, width=20)
    (tmp_path / "o.tif").write_bytes(la_tiff(gray, alpha, tiffinfo={274: orientation}))
    loaded = read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(loaded.rgb[..., 0], upright(gray, orientation))
    np.testing.assert_array_equal(loaded.alpha, upright(alpha, orientation))


def test_jpeg_compressed_gray_alpha_keeps_its_alpha(tmp_path):
    gray, alpha = ramp(), soft_alpha()
    (tmp_path / "j.tif").write_bytes(la_tiff(gray, alpha, "jpeg"))
    loaded = read_image(tmp_path / "j.tif")
    assert loaded.gray and loaded.alpha is not None
    assert np.abs(loaded.alpha.astype(int) - alpha).max() <= 8  # lossy, but there
    assert np.abs(loaded.rgb[..., 0].astype(int) - gray).max() <= 8


def test_pillow_pixel_limit_does_not_apply(tmp_path, monkeypatch):
    """--max-pixels alone decides, as for every other format; Pillow's own limit is restored afterwards."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the file has 960 pixels: Pillow alone would refuse it
    gray, alpha = ramp(), soft_alpha()
    (tmp_path / "big.tif").write_bytes(la_tiff(gray, alpha))
    np.testing.assert_array_equal(read_image(tmp_path / "big.tif").alpha, alpha)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(ImageReadError, match="megapixels"):
        read_image(tmp_path / "big.tif", max_pixels=500)


def test_16_bit_lzw_gray_alpha_is_a_clear_error(tmp_path):
    """Pillow has no 16-bit gray + alpha mode. (The file is declared LZW over uncompressed samples: the error
    comes from the tags, before any decoding.)"""
    buffer = io.BytesIO()
    samples = np.dstack([ramp(np.uint16), soft_alpha(np.uint16)])
    tifffile.imwrite(buffer, samples, photometric="minisblack", extrasamples=["unassalpha"])
    path = tmp_path / "g16.tif"
    path.write_bytes(with_tag(buffer.getvalue(), 259, LZW))
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "16-bit gray+alpha TIFF compressed with LZW" in message and "ZIP or no compression" in message


def test_separate_planes_lzw_gray_alpha_is_a_clear_error(tmp_path):
    """Pillow's libtiff path mixes up separate planes of gray + alpha; refused rather than misread."""
    buffer = io.BytesIO()
    planes = np.stack([ramp(), soft_alpha()])
    tifffile.imwrite(buffer, planes, photometric="minisblack", extrasamples=["unassalpha"], planarconfig="separate")
    path = tmp_path / "planar.tif"
    path.write_bytes(with_tag(buffer.getvalue(), 259, LZW))
    with pytest.raises(ImageReadError, match="separate planes compressed with LZW"):
        read_image(path)


def test_damaged_lzw_gray_alpha_is_corrupt_and_nothing_is_printed(tmp_path, capfd):
    gray = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    data = bytearray(la_tiff(gray, gray[::-1]))
    for k in range(20, 400, 3):  # inside the strip, which starts at byte 8
        data[k] ^= 0x5A
    path = tmp_path / "bad.tif"
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(ImageReadError, match="corrupt") as info:
        read_image(path)
    assert str(path) in str(info.value) and "tempfile.tif" not in str(info.value)
    with pytest.raises(ImageReadError):
        read_mask(path)
    assert capfd.readouterr().err == ""  # libtiff's own lines never reach the terminal


def test_opencv_fallback_that_drops_alpha_is_an_error(tmp_path, monkeypatch):
    """The safety net: a TIFF that declares alpha never comes back without it."""
    rgb = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    alpha = np.full((6, 8), 77, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buffer, format="TIFF", compression="tiff_lzw")
    (tmp_path / "rgba.tif").write_bytes(buffer.getvalue())
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.tif").alpha, alpha)

    real = images._decode_opencv
    monkeypatch.setattr(images, "_decode_opencv", lambda *args, **kwargs: real(*args, **kwargs)[..., :3])
    with pytest.raises(ImageReadError, match="drops its alpha") as info:
        read_image(tmp_path / "rgba.tif")
    assert "rgba.tif" in str(info.value) and "LZW" in str(info.value)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_fallback_rewrites_tags_in_either_byte_order(tmp_path, monkeypatch, byteorder):
    """MINISWHITE, an associated alpha and an orientation, big- or little-endian, through the Pillow path (tifffile
    made to fail as it does without imagecodecs) read as tifffile reads them."""
    stored_gray, alpha = ramp(height=12, width=20), soft_alpha(height=12, width=20)
    path = tmp_path / "w.tif"
    tifffile.imwrite(
        path, np.dstack([stored_gray, alpha]), photometric="miniswhite", extrasamples=["assocalpha"],
        byteorder=byteorder, extratags=[(274, "H", 1, 6, True)],
    )
    direct = read_image(path)

    def needs_imagecodecs(self, *args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", needs_imagecodecs)
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.rgb, direct.rgb)
    np.testing.assert_array_equal(loaded.alpha, direct.alpha)
    np.testing.assert_array_equal(loaded.rgb[..., 0], upright(255 - stored_gray, 6))
    np.testing.assert_array_equal(loaded.alpha, upright(alpha, 6))


@pytest.mark.parametrize("depth", [np.uint8, np.uint16])
def test_gray_with_alpha_and_a_further_channel_is_read_as_gray_and_alpha(tmp_path: Path, depth):
    """Uncompressed gray + alpha + a saved selection: three samples were read as red, green and blue."""
    top = np.iinfo(depth).max
    gray = (np.arange(30, dtype=np.float64)[None, :].repeat(20, 0) / 29 * top).astype(depth)
    alpha = np.full((20, 30), top // 3, depth)
    selection = np.full((20, 30), top // 7, depth)
    path = tmp_path / "g3.tif"
    tifffile.imwrite(path, np.dstack([gray, alpha, selection]), photometric="minisblack", extrasamples=[2, 0])
    loaded = read_image(path)
    assert loaded.gray
    np.testing.assert_array_equal(loaded.rgb[..., 0], gray)
    np.testing.assert_array_equal(loaded.rgb[..., 2], gray)
    np.testing.assert_array_equal(loaded.alpha, alpha)
    assert any("used gray and alpha" in note for note in loaded.notes)
