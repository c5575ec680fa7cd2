"""Grayscale files: read as three equal channels that know they were gray, turned back into one channel exactly,
and written gray (with their gray profile) in every format that has a gray form."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from harmcli.io.images import WRITE_EXTENSIONS, gray_from_rgb, read_image, read_mask, write_image
from harmcli.io.metadata import ImageMetadata, read_metadata

from .icc import ADOBE_RGB, build_gray_profile, build_rgb_profile

GRAY = build_gray_profile("Gray Gamma 2.2 (test)")
ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
HAVE_WEBP = ".webp" in WRITE_EXTENSIONS


def ramp(dtype=np.uint8, height: int = 24, width: int = 40) -> np.ndarray:
    """A smooth gray picture that uses most of the range (every 8-bit value of a row differs)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    values = 0.05 + 0.9 * (x / (width - 1)) * (0.6 + 0.4 * np.cos(y / 5.0))
    return np.rint(values * np.iinfo(dtype).max).astype(dtype)


def soft_alpha(dtype=np.uint8, height: int = 24, width: int = 40) -> np.ndarray:
    return np.rint(np.linspace(0.1, 1.0, height * width).reshape(height, width) * np.iinfo(dtype).max).astype(dtype)


# ------------------------------------------------------------------------------------------- RGB -> gray


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_from_rgb_gives_equal_channels_back_exactly(dtype):
    values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(1, -1)
    gray = gray_from_rgb(np.dstack([values] * 3))
    assert gray.dtype == dtype and gray.shape == values.shape
    np.testing.assert_array_equal(gray, values)


def test_gray_from_rgb_weighs_colours_by_rec709_luma():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 100, 50]]], np.uint8)
    expected = np.rint(rgb.astype(np.float64) @ [0.2126, 0.7152, 0.0722])
    np.testing.assert_array_equal(gray_from_rgb(rgb), expected.astype(np.uint8))  # 54, 182, 18, 120
    sixteen = rgb.astype(np.uint16) * 257
    assert np.abs(gray_from_rgb(sixteen).astype(np.int64) - np.rint(sixteen @ [0.2126, 0.7152, 0.0722])).max() <= 1


# ------------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_png_and_tiff_read_as_equal_channels_marked_gray(tmp_path, dtype):
    gray = ramp(dtype)
    assert cv2.imwrite(str(tmp_path / "g.png"), gray)
    tifffile.imwrite(tmp_path / "g.tif", gray, photometric="minisblack")
    for name in ("g.png", "g.tif"):
        loaded = read_image(tmp_path / name)
        assert loaded.gray and loaded.alpha is None and loaded.rgb.dtype == dtype and loaded.rgb.shape == (24, 40, 3)
        for c in range(3):
            np.testing.assert_array_equal(loaded.rgb[..., c], gray)


def test_gray_jpeg_is_gray_and_colour_files_are_not(tmp_path):
    gray = ramp()
    assert cv2.imwrite(str(tmp_path / "g.jpg"), gray)  # one component
    loaded = read_image(tmp_path / "g.jpg")
    assert loaded.gray and np.abs(loaded.rgb[..., 0].astype(int) - gray).max() <= 3
    assert np.array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])
    # A black-and-white picture saved as RGB is an RGB file: its output stays RGB.
    assert cv2.imwrite(str(tmp_path / "rgb.png"), np.dstack([gray] * 3))
    assert cv2.imwrite(str(tmp_path / "rgb.jpg"), np.dstack([gray] * 3))
    assert not read_image(tmp_path / "rgb.png").gray and not read_image(tmp_path / "rgb.jpg").gray


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_alpha_png_and_tiff_read_as_gray_with_alpha(tmp_path, dtype):
    gray, alpha = ramp(dtype), soft_alpha(dtype)
    if dtype == np.uint8:
        Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "ga.png")  # colour type 4, by Pillow
    else:
        write_image(tmp_path / "ga.png", gray, alpha=alpha)
        with open(tmp_path / "ga.png", "rb") as fh:
            assert fh.read(26)[25] == 4  # IHDR colour type: gray + alpha
    tifffile.imwrite(tmp_path / "ga.tif", np.dstack([gray, alpha]), photometric="minisblack", extrasamples=["unassalpha"])
    for name in ("ga.png", "ga.tif"):
        loaded = read_image(tmp_path / name)
        assert loaded.gray and loaded.rgb.dtype == dtype, name
        np.testing.assert_array_equal(loaded.rgb[..., 1], gray)
        np.testing.assert_array_equal(loaded.alpha, alpha)
        # read as a mask, the alpha is the mask, as for RGBA files
        np.testing.assert_allclose(read_mask(tmp_path / name), alpha / np.iinfo(dtype).max, atol=1e-6)


def test_rgba_png_with_equal_channels_is_not_gray(tmp_path):
    gray, alpha = ramp(), soft_alpha()
    assert cv2.imwrite(str(tmp_path / "rgba.png"), cv2.merge([gray, gray, gray, alpha]))  # colour type 6
    loaded = read_image(tmp_path / "rgba.png")
    assert not loaded.gray
    np.testing.assert_array_equal(loaded.alpha, alpha)


def test_miniswhite_inverts_the_gray_channel_not_the_alpha(tmp_path):
    gray, alpha = ramp(), soft_alpha()
    tifffile.imwrite(tmp_path / "w.tif", np.dstack([255 - gray, alpha]), photometric="miniswhite", extrasamples=["unassalpha"])
    loaded = read_image(tmp_path / "w.tif")
    assert loaded.gray
    np.testing.assert_array_equal(loaded.rgb[..., 0], gray)
    np.testing.assert_array_equal(loaded.alpha, alpha)


def test_gray_profile_read_into_gray_icc_and_only_for_gray_pixels(tmp_path):
    gray = ramp()
    Image.fromarray(gray).save(tmp_path / "g.png", icc_profile=GRAY)
    Image.fromarray(gray).save(tmp_path / "g.jpg", icc_profile=GRAY, quality=95)
    tifffile.imwrite(tmp_path / "g.tif", gray, photometric="minisblack", iccprofile=GRAY)
    for name in ("g.png", "g.jpg", "g.tif"):
        metadata = read_image(tmp_path / name).metadata
        assert metadata.gray_icc == GRAY and metadata.icc is None, name  # colour conversions never see it
    # In an RGB file a gray profile describes nothing (an output of that file is RGB): dropped.
    Image.fromarray(np.dstack([gray] * 3)).save(tmp_path / "rgb.png", icc_profile=GRAY)
    assert read_metadata((tmp_path / "rgb.png").read_bytes(), "png").gray_icc == GRAY
    assert read_image(tmp_path / "rgb.png").metadata.gray_icc is None


def test_for_pixels_picks_the_profile_that_describes_them():
    gray_tagged = ImageMetadata(gray_icc=GRAY, dpi=(300.0, 300.0))
    assert gray_tagged.for_pixels(gray=True) == ImageMetadata(icc=GRAY, dpi=(300.0, 300.0))
    assert gray_tagged.for_pixels(gray=False) == ImageMetadata(dpi=(300.0, 300.0))
    rgb_tagged = ImageMetadata(icc=ADOBE)
    assert rgb_tagged.for_pixels(gray=False) is rgb_tagged
    assert rgb_tagged.for_pixels(gray=True).icc is None
    assert not ImageMetadata(gray_icc=GRAY).is_empty


# ------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_png_and_tiff_store_gray_and_gray_alpha_exactly(tmp_path, dtype, with_alpha):
    gray = ramp(dtype)
    alpha = soft_alpha(dtype) if with_alpha else None
    metadata = ImageMetadata(gray_icc=GRAY, dpi=(300.0, 300.0))
    png = write_image(tmp_path / "o.png", gray, alpha=alpha, metadata=metadata)
    tif = write_image(tmp_path / "o.tif", gray, alpha=alpha, metadata=metadata)
    # As other software sees them: libpng through OpenCV (which expands gray + alpha to BGRA), Pillow, tifffile.
    stored = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == dtype
    if with_alpha:
        assert png.read_bytes()[25] == 4  # IHDR colour type 4: gray + alpha
        np.testing.assert_array_equal(stored[..., 0], gray)
        np.testing.assert_array_equal(stored[..., 3], alpha)
    else:
        np.testing.assert_array_equal(stored, gray)
    with Image.open(png) as im:
        assert im.info.get("icc_profile") == GRAY
    with tifffile.TiffFile(tif) as t:
        page = t.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.MINISBLACK and page.dtype == dtype
        assert page.tags["InterColorProfile"].value == GRAY
        np.testing.assert_array_equal(page.asarray(), gray if alpha is None else np.dstack([gray, alpha]))
    for path in (png, tif):
        loaded = read_image(path)
        assert loaded.gray and loaded.metadata.gray_icc == GRAY and loaded.metadata.dpi == pytest.approx((300.0, 300.0), abs=1e-2)
        np.testing.assert_array_equal(loaded.rgb[..., 0], gray)
        if with_alpha:
            np.testing.assert_array_equal(loaded.alpha, alpha)


def test_gray_png_with_alpha_is_a_valid_png_for_pillow(tmp_path):
    gray, alpha = ramp(), soft_alpha()
    out = write_image(tmp_path / "ga.png", gray, alpha=alpha, metadata=ImageMetadata(gray_icc=GRAY))
    with Image.open(out) as im:
        im.load()  # checks every CRC and the zlib stream
        assert im.mode == "LA"
        np.testing.assert_array_equal(np.asarray(im), np.dstack([gray, alpha]))


def test_jpeg_stores_gray_as_one_component_with_the_gray_profile(tmp_path):
    out = write_image(tmp_path / "g.jpg", ramp(np.uint16), alpha=soft_alpha(), metadata=ImageMetadata(gray_icc=GRAY))
    with Image.open(out) as im:
        assert im.mode == "L" and im.info.get("icc_profile") == GRAY  # 16 bits rounded to 8, alpha dropped


def test_gray_data_never_carries_an_rgb_profile_nor_rgb_data_a_gray_one(tmp_path):
    both = ImageMetadata(icc=ADOBE)
    with Image.open(write_image(tmp_path / "g.png", ramp(), metadata=both)) as im:
        assert "icc_profile" not in im.info
    with Image.open(write_image(tmp_path / "c.png", np.dstack([ramp()] * 3), metadata=ImageMetadata(gray_icc=GRAY))) as im:
        assert "icc_profile" not in im.info


@pytest.mark.skipif(not HAVE_WEBP, reason="this OpenCV build has no WebP")
def test_webp_has_no_gray_form_equal_channels_and_no_gray_profile(tmp_path):
    gray, alpha = ramp(), soft_alpha()
    for name, a in (("g.webp", None), ("ga.webp", alpha)):
        out = write_image(tmp_path / name, gray, alpha=a, jpeg_quality=100, metadata=ImageMetadata(gray_icc=GRAY, dpi=(300.0, 300.0)))
        loaded = read_image(out)
        assert not loaded.gray and loaded.metadata.icc is None and loaded.metadata.gray_icc is None
        assert loaded.metadata.dpi == pytest.approx((300.0, 300.0), abs=1e-2)  # the rest of the metadata is kept
        for c in range(3):
            np.testing.assert_array_equal(loaded.rgb[..., c], gray)  # lossless: the gray picture, three times


def test_heic_and_avif_store_gray_as_monochrome_with_the_gray_profile(tmp_path):
    import pillow_heif

    gray = ramp()
    metadata = ImageMetadata(gray_icc=GRAY)
    heic = write_image(tmp_path / "g.heic", gray, jpeg_quality=100, metadata=metadata)
    container = pillow_heif.open_heif(heic)
    assert container.mode == "L" and container.info.get("icc_profile") == GRAY
    sixteen = write_image(tmp_path / "g16.heic", ramp(np.uint16), jpeg_quality=100, metadata=metadata)
    loaded = read_image(sixteen)
    assert loaded.gray and loaded.bit_depth == 16 and loaded.metadata.gray_icc == GRAY
    assert np.abs(loaded.rgb[..., 0].astype(int) - ramp(np.uint16)).max() <= 3 * 257  # 10 bits, lossy as at 8
    avif = write_image(tmp_path / "g.avif", gray, jpeg_quality=100, metadata=metadata)
    with Image.open(avif) as im:
        assert im.mode == "L" and im.info.get("icc_profile") == GRAY
    for path in (heic, avif):
        loaded = read_image(path)
        assert loaded.gray and loaded.metadata.gray_icc == GRAY
        assert np.abs(loaded.rgb[..., 0].astype(int) - gray).max() <= 3


def test_heic_and_avif_write_gray_alpha_as_rgba_without_the_gray_profile(tmp_path):
    gray, alpha = ramp(), soft_alpha()
    for name in ("ga.heic", "ga.avif"):
        out = write_image(tmp_path / name, gray, alpha=alpha, jpeg_quality=100, metadata=ImageMetadata(gray_icc=GRAY))
        loaded = read_image(out)
        assert not loaded.gray and loaded.alpha is not None and loaded.metadata.gray_icc is None, name
        assert np.abs(loaded.rgb[..., 0].astype(int) - gray).max() <= 3
