"""``harmcli harmonize`` on grayscale inputs: the output is gray (gray + alpha) again, at the input's bit depth, with
its gray colour profile, and untouched pixels bit for bit; it follows the composite, or with FG BG the background."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from ..io.icc import ADOBE_RGB, build_gray_profile, build_rgb_profile
from . import (  # noqa: F401  (fixtures)
    HALF,
    IDENTITY,
    LIFT,
    active_weights,
    apply_curve,
    make_scene,
    read_image,
    run,
    write_image,
    write_params,
)

GRAY = build_gray_profile("Gray Gamma 2.2 (test)")
ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
LUMA = np.array([0.2126, 0.7152, 0.0722])
CURVES = [HALF, LIFT, IDENTITY]  # three different curves: a gray input comes out of them tinted, then gray again


@pytest.fixture
def params_file(tmp_path):
    return write_params(tmp_path / "edit.json", dict(zip(("red", "green", "blue"), CURVES)))


def gray_scene(dtype=np.uint8, seed: int = 0):
    """(gray composite (H, W), mask (H, W) of the same dtype, soft weight (H, W) float)."""
    scene = make_scene(dtype, seed=seed)
    w = scene.weight
    composite = np.rint(w * scene.fg[..., 0] + (1 - w) * scene.bg[..., 1]).astype(dtype)
    return composite, scene.mask, w


def expected_gray(composite: np.ndarray, w: np.ndarray, curves=CURVES) -> np.ndarray:
    """The three curves applied to the gray composite inside the soft mask, then Rec. 709 luma (float).

    The harmonized RGB image is within 1 code of its curves (the bound test_harmonize holds it to), and its gray
    value is rounded once more, so outputs are held to within ``TOLERANCE`` of this."""
    maxval = np.iinfo(composite.dtype).max
    c = composite.astype(np.float64)
    channels = [c + w * (apply_curve(composite, curve, maxval) - c) for curve in curves]
    return sum(weight * channel for weight, channel in zip(LUMA, channels))


TOLERANCE = 1.5


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_png_composite_gives_a_gray_png_of_the_same_depth(run, tmp_path, params_file, dtype):
    composite, mask, w = gray_scene(dtype, seed=1)
    comp = write_image(tmp_path / "comp.png", composite)
    mask_path = write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    result = run("harmonize", comp, "--mask", mask_path, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    image = read_image(out)  # what the file holds, read by OpenCV alone
    assert image.shape == composite.shape and image.dtype == dtype  # one channel
    outside, inside = mask == 0, mask == np.iinfo(dtype).max
    assert outside.any() and inside.any()
    np.testing.assert_array_equal(image[outside], composite[outside])  # bit for bit
    assert np.abs(image.astype(np.float64) - expected_gray(composite, w)).max() <= TOLERANCE
    assert (image[inside] > composite[inside]).mean() > 0.9  # really changed: lifted green (72 % of luma) wins over halved red


def test_gray_composite_through_the_network(run, tmp_path, active_weights):
    composite, mask, _ = gray_scene(seed=2)
    comp = write_image(tmp_path / "comp.png", composite)
    mask_path = write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    result = run("harmonize", comp, "-m", mask_path, "-o", out, "--weights", active_weights, "--device", "cpu", "-q")
    assert result.code == 0, result.err
    image = read_image(out)
    assert image.shape == composite.shape and image.dtype == np.uint8
    outside, inside = mask == 0, mask == 255
    np.testing.assert_array_equal(image[outside], composite[outside])
    assert np.abs(image[inside].astype(int) - composite[inside].astype(int)).mean() > 2


def test_gray_tiff_keeps_its_gray_profile_and_metadata(run, tmp_path, params_file):
    composite, mask, w = gray_scene(np.uint16, seed=3)
    comp = tmp_path / "comp.tif"
    tifffile.imwrite(comp, composite, photometric="minisblack", iccprofile=GRAY, resolution=(300, 300), resolutionunit="INCH")
    mask_path = write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.tif"
    result = run("harmonize", comp, "--mask", mask_path, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.MINISBLACK and page.samplesperpixel == 1
        assert page.tags["InterColorProfile"].value == GRAY  # the profile's bytes, unchanged
        assert page.tags["XResolution"].value == (300, 1) and page.tags["ResolutionUnit"].value == 2
        image = page.asarray()
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image[mask == 0], composite[mask == 0])
    assert np.abs(image.astype(np.float64) - expected_gray(composite, w)).max() <= TOLERANCE
    # Into another format the profile goes along: a one-component JPEG, tagged gray.
    jpg = tmp_path / "out.jpg"
    assert run("harmonize", comp, "--mask", mask_path, "-o", jpg, "--params", params_file).code == 0
    with Image.open(jpg) as im:
        assert im.mode == "L" and im.info.get("icc_profile") == GRAY and im.info.get("dpi") == (300, 300)
    # --strip-metadata: still gray, no profile.
    bare = tmp_path / "bare.png"
    assert run("harmonize", comp, "--mask", mask_path, "-o", bare, "--params", params_file, "--strip-metadata").code == 0
    with Image.open(bare) as im:
        assert im.mode.startswith("I") and "icc_profile" not in im.info  # 16-bit gray, untagged


def test_gray_alpha_stays_gray_alpha(run, tmp_path, params_file):
    composite, mask, w = gray_scene(seed=4)
    alpha = np.full(mask.shape, 255, np.uint8)
    alpha[:, :8] = 0  # a transparent strip
    alpha[:, 8:16] = 100
    png = tmp_path / "comp.png"
    Image.fromarray(np.dstack([composite, alpha]), "LA").save(png, icc_profile=GRAY)
    tif = tmp_path / "comp.tif"
    tifffile.imwrite(tif, np.dstack([composite, alpha]), photometric="minisblack", extrasamples=["unassalpha"])
    mask_path = write_image(tmp_path / "mask.png", mask)
    for source, out in ((png, tmp_path / "out.png"), (tif, tmp_path / "out.tif")):
        result = run("harmonize", source, "--mask", mask_path, "-o", out, "--params", params_file)
        assert result.code == 0, result.err
        if out.suffix == ".png":
            assert out.read_bytes()[25] == 4  # IHDR colour type 4: gray + alpha
            with Image.open(out) as im:
                assert im.mode == "LA" and im.info.get("icc_profile") == GRAY
                stored = np.asarray(im)
        else:
            stored = tifffile.imread(out)
        assert stored.shape == (*composite.shape, 2) and stored.dtype == np.uint8
        np.testing.assert_array_equal(stored[..., 1], alpha)
        np.testing.assert_array_equal(stored[..., 0][mask == 0], composite[mask == 0])
        assert np.abs(stored[..., 0].astype(np.float64) - expected_gray(composite, w)).max() <= TOLERANCE


def test_lzw_gray_alpha_cutout_keeps_its_alpha(run, tmp_path, params_file):
    """LZW (what Photoshop, GIMP and Pillow write) needs imagecodecs in tifffile; the fallback once dropped the
    alpha of gray + alpha, so the output lost the cutout's transparency and FG BG had no mask."""
    composite, mask, w = gray_scene(seed=5)
    alpha = np.full(mask.shape, 255, np.uint8)
    alpha[:, :8] = 0
    alpha[:, 8:16] = 100
    source = tmp_path / "comp.tif"
    Image.fromarray(np.dstack([composite, alpha]), "LA").save(source, compression="tiff_lzw")
    with tifffile.TiffFile(source) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.LZW
    mask_path = write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.tif"
    result = run("harmonize", source, "--mask", mask_path, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    stored = tifffile.imread(out)
    assert stored.shape == (*composite.shape, 2) and stored.dtype == np.uint8
    np.testing.assert_array_equal(stored[..., 1], alpha)
    np.testing.assert_array_equal(stored[..., 0][mask == 0], composite[mask == 0])
    assert np.abs(stored[..., 0].astype(np.float64) - expected_gray(composite, w)).max() <= TOLERANCE

    # FG BG: the LZW cutout's alpha is the mask; outside it the background comes through bit for bit.
    scene = make_scene(seed=5)
    fg = tmp_path / "fg.tif"
    Image.fromarray(np.dstack([scene.fg[..., 0], scene.mask]), "LA").save(fg, compression="tiff_lzw")
    bg = write_image(tmp_path / "bg.png", scene.bg[..., 1])
    out = tmp_path / "fgbg.png"
    result = run("harmonize", fg, bg, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    image = read_image(out)
    assert image.shape == scene.mask.shape
    np.testing.assert_array_equal(image[scene.mask == 0], scene.bg[..., 1][scene.mask == 0])
    assert (image[scene.mask == 255] != scene.bg[..., 1][scene.mask == 255]).mean() > 0.9


def test_rgb_composite_still_gives_rgb(run, tmp_path, params_file):
    scene = make_scene(seed=5)
    comp = write_image(tmp_path / "comp.png", scene.composite())
    mask_path = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / "out.png"
    assert run("harmonize", comp, "--mask", mask_path, "-o", out, "--params", params_file).code == 0
    image = read_image(out)
    assert image.shape == (*scene.mask.shape, 3)
    np.testing.assert_array_equal(image[scene.mask == 0], scene.composite()[scene.mask == 0])
    inside = scene.mask == 255
    assert (image[inside][:, 0] < scene.composite()[inside][:, 0]).mean() > 0.95  # red halved, not gray


def test_empty_mask_writes_the_gray_input_unchanged(run, tmp_path, params_file):
    composite, mask, _ = gray_scene(np.uint16, seed=6)
    comp = write_image(tmp_path / "comp.png", composite)
    mask_path = write_image(tmp_path / "mask.png", np.zeros_like(mask))
    out = tmp_path / "out.png"
    result = run("harmonize", comp, "--mask", mask_path, "-o", out, "--params", params_file)
    assert result.code == 0 and "empty" in result.err
    np.testing.assert_array_equal(read_image(out), composite)


def test_fg_bg_output_follows_the_background(run, tmp_path, params_file):
    scene = make_scene(seed=7)
    gray_bg = scene.bg[..., 1]
    bg = tmp_path / "bg.png"
    Image.fromarray(gray_bg).save(bg, icc_profile=GRAY, dpi=(240, 240))
    fg = tmp_path / "fg.png"
    Image.fromarray(scene.fg).save(fg, icc_profile=ADOBE)  # a colour foreground, in Adobe RGB
    mask_path = write_image(tmp_path / "mask.png", scene.mask)

    # A colour foreground on a gray background: gray, with the background's profile, and a warning.
    out = tmp_path / "out.png"
    result = run("harmonize", fg, bg, mask_path, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    warned = [line for line in result.err_lines if "is grayscale, so the output is too" in line]
    assert len(warned) == 1 and "fg.png" in warned[0] and warned[0].startswith("warning:")
    with Image.open(out) as im:
        assert im.mode == "L" and im.info.get("icc_profile") == GRAY and im.info.get("dpi") == pytest.approx((240, 240), abs=0.01)
        image = np.asarray(im)
    np.testing.assert_array_equal(image[scene.mask == 0], gray_bg[scene.mask == 0])
    inside = scene.mask == 255
    assert image[inside].std() > 5  # the foreground is there, as gray

    # A gray foreground on a colour background: colour.
    gray_fg = write_image(tmp_path / "gray_fg.png", scene.fg[..., 0])
    colour_bg = write_image(tmp_path / "colour_bg.png", scene.bg)
    out = tmp_path / "colour.png"
    result = run("harmonize", gray_fg, colour_bg, mask_path, "-o", out, "--params", params_file)
    assert result.code == 0 and "grayscale" not in result.err, result.err
    image = read_image(out)
    assert image.shape == scene.bg.shape
    np.testing.assert_array_equal(image[scene.mask == 0], scene.bg[scene.mask == 0])


def test_folder_items_each_follow_their_own_input(run, tmp_path, params_file):
    composite, mask, w = gray_scene(seed=8)
    scene = make_scene(seed=8)
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "bw.png", composite)
    write_image(tmp_path / "in" / "colour.png", scene.composite())
    mask_path = write_image(tmp_path / "mask.png", mask)
    result = run("harmonize", tmp_path / "in", "--mask", mask_path, "-o", tmp_path / "out", "--params", params_file, "-q")
    assert result.code == 0, result.err
    bw, colour = read_image(tmp_path / "out" / "bw.png"), read_image(tmp_path / "out" / "colour.png")
    assert bw.shape == composite.shape and colour.shape == scene.composite().shape
    np.testing.assert_array_equal(bw[mask == 0], composite[mask == 0])
    assert np.abs(bw.astype(np.float64) - expected_gray(composite, w)).max() <= TOLERANCE
    # --ext jpg: a one-component JPEG for the gray item.
    result = run("harmonize", tmp_path / "in", "--mask", mask_path, "-o", tmp_path / "jpg", "--ext", "jpg", "--params", params_file, "-q")
    assert result.code == 0, result.err
    assert cv2.imread(str(tmp_path / "jpg" / "bw.jpg"), cv2.IMREAD_UNCHANGED).ndim == 2
    assert cv2.imread(str(tmp_path / "jpg" / "colour.jpg"), cv2.IMREAD_UNCHANGED).shape[2] == 3
