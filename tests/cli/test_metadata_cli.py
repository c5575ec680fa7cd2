"""``harmcli harmonize`` keeps colour profiles, EXIF and resolution, converts a foreground into the background's
colour space (with one note), and --strip-metadata writes none. Identity params: no network involved."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harmcli.io import colour

from ..io.icc import ADOBE_RGB, PROPHOTO_RGB, build_rgb_profile
from . import IDENTITY, make_scene, read_image, run, write_image, write_params  # noqa: F401  (fixtures)

ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
PROPHOTO = build_rgb_profile("ProPhoto RGB (test)", **PROPHOTO_RGB)


def save_tagged(path, rgb, *, icc=None, make=None, dpi=None):
    """An 8-bit PNG written by Pillow with an optional profile, EXIF Make and resolution."""
    options = {}
    if icc is not None:
        options["icc_profile"] = icc
    if make is not None:
        exif = Image.Exif()
        exif[271] = make
        options["exif"] = exif
    if dpi is not None:
        options["dpi"] = (dpi, dpi)
    Image.fromarray(rgb).save(path, **options)
    return path


def info(path):
    with Image.open(path) as im:
        return im.info.get("icc_profile"), im.getexif().get(271), im.info.get("dpi")


def identity_params(tmp_path):
    return write_params(tmp_path / "identity.json", {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY})


def test_foreground_converted_into_the_background_profile(run, tmp_path):
    scene = make_scene()
    fg = save_tagged(tmp_path / "fg.png", scene.fg, icc=ADOBE, make="Nikon")
    bg = save_tagged(tmp_path / "bg.png", scene.bg, icc=PROPHOTO, make="Canon", dpi=300)
    mask = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / "out.png"
    result = run("harmonize", fg, bg, mask, "-o", out, "--params", identity_params(tmp_path))
    assert result.code == 0, result.err
    notes = [line for line in result.err_lines if "converted the foreground" in line]
    assert len(notes) == 1 and "fg.png" in notes[0] and "Adobe RGB (1998) (test)" in notes[0] and "ProPhoto RGB (test)" in notes[0]
    icc, make, dpi = info(out)
    assert icc == PROPHOTO and make == "Canon" and tuple(float(v) for v in dpi) == pytest.approx((300.0, 300.0), abs=1e-2)  # the background's
    pixels = read_image(out)
    converted, _ = colour.convert(scene.fg, ADOBE, PROPHOTO)
    assert not np.array_equal(converted, scene.fg)
    inside, outside = scene.mask == 255, scene.mask == 0
    np.testing.assert_array_equal(pixels[inside], converted[inside])
    np.testing.assert_array_equal(pixels[outside], scene.bg[outside])  # the background is untouched


def test_same_profile_or_untagged_needs_no_conversion(run, tmp_path):
    scene = make_scene()
    for name, icc in (("tagged", ADOBE), ("plain", None)):
        fg = save_tagged(tmp_path / f"{name}_fg.png", scene.fg, icc=icc)
        bg = save_tagged(tmp_path / f"{name}_bg.png", scene.bg, icc=icc)
        mask = write_image(tmp_path / "mask.png", scene.mask)
        out = tmp_path / f"{name}_out.png"
        result = run("harmonize", fg, bg, mask, "-o", out, "--params", identity_params(tmp_path))
        assert result.code == 0 and "converted the foreground" not in result.err, result.err
        assert info(out)[0] == icc  # untagged stays untagged
        np.testing.assert_array_equal(read_image(out), scene.composite())


def test_composite_with_mask_keeps_the_composite_metadata(run, tmp_path):
    scene = make_scene()
    composite = save_tagged(tmp_path / "pasted.png", scene.composite(), icc=ADOBE, make="Fujifilm", dpi=240)
    mask = save_tagged(tmp_path / "mask.png", np.dstack([scene.mask] * 3), icc=PROPHOTO, make="Mask tool")
    out = tmp_path / "out.jpg"
    result = run("harmonize", composite, "--mask", mask, "-o", out, "--params", identity_params(tmp_path))
    assert result.code == 0 and "converted the foreground" not in result.err, result.err
    icc, make, dpi = info(out)
    assert icc == ADOBE and make == "Fujifilm" and dpi == (240, 240)


def test_strip_metadata(run, tmp_path):
    scene = make_scene()
    fg = save_tagged(tmp_path / "fg.png", scene.fg, icc=ADOBE)
    bg = save_tagged(tmp_path / "bg.png", scene.bg, icc=PROPHOTO, make="Canon", dpi=300)
    mask = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / "out.tif"
    result = run("harmonize", fg, bg, mask, "-o", out, "--params", identity_params(tmp_path), "--strip-metadata")
    assert result.code == 0, result.err
    import tifffile

    with tifffile.TiffFile(out) as tif:
        tags = tif.pages[0].tags
        assert "InterColorProfile" not in tags and "Make" not in tags and tags["ResolutionUnit"].value == 1
    # The pixels are still the background's space: the foreground was converted (and the note says so).
    assert sum("converted the foreground" in line for line in result.err_lines) == 1


def test_folder_mode_keeps_each_items_metadata(run, tmp_path):
    scene = make_scene()
    (tmp_path / "fg").mkdir()
    save_tagged(tmp_path / "fg" / "a.png", scene.fg, icc=ADOBE)
    save_tagged(tmp_path / "fg" / "b.png", scene.fg)  # untagged: sRGB
    save_tagged(tmp_path / "fg" / "c.png", scene.fg, icc=PROPHOTO)
    bg = save_tagged(tmp_path / "plate.png", scene.bg, icc=PROPHOTO, make="Canon", dpi=300)
    mask = write_image(tmp_path / "mask.png", scene.mask)
    result = run("harmonize", tmp_path / "fg", bg, mask, "-o", tmp_path / "out", "--params", identity_params(tmp_path))
    assert result.code == 0, result.err
    notes = [line for line in result.err_lines if "converted the foreground" in line]
    assert len(notes) == 2 and any("a.png" in n for n in notes) and any("b.png" in n and "sRGB" in n for n in notes)
    inside = scene.mask == 255
    for stem, source in (("a", ADOBE), ("b", None), ("c", PROPHOTO)):
        out = tmp_path / "out" / f"{stem}.png"
        icc, make, dpi = info(out)
        assert icc == PROPHOTO and make == "Canon" and tuple(float(v) for v in dpi) == pytest.approx((300.0, 300.0), abs=1e-2)
        expected = scene.fg if source == PROPHOTO else colour.convert(scene.fg, source, PROPHOTO)[0]
        np.testing.assert_array_equal(read_image(out)[inside], expected[inside])


def test_16bit_foreground_converted_in_16_bits(run, tmp_path):
    import tifffile

    scene = make_scene(np.uint16)
    fg = tmp_path / "fg.tif"
    tifffile.imwrite(fg, scene.fg, photometric="rgb", iccprofile=PROPHOTO)
    bg = save_tagged(tmp_path / "bg.png", (scene.bg // 257).astype(np.uint8), icc=ADOBE)
    mask = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / "out.tif"
    result = run("harmonize", fg, bg, mask, "-o", out, "--params", identity_params(tmp_path))
    assert result.code == 0, result.err
    with tifffile.TiffFile(out) as tif:
        pixels = tif.pages[0].asarray()
        assert pixels.dtype == np.uint16 and tif.pages[0].tags["InterColorProfile"].value == ADOBE
    converted, narrowed = colour.convert(scene.fg, PROPHOTO, ADOBE)
    assert not narrowed
    inside = scene.mask == 65535
    np.testing.assert_array_equal(pixels[inside], converted[inside])


def test_unusable_profile_is_a_note_not_a_failure(run, tmp_path):
    scene = make_scene()
    broken = ADOBE[:200]  # a header that says RGB, then nothing LittleCMS can read
    fg = save_tagged(tmp_path / "fg.png", scene.fg, icc=broken)
    bg = save_tagged(tmp_path / "bg.png", scene.bg, icc=ADOBE)
    mask = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / "out.png"
    result = run("harmonize", fg, bg, mask, "-o", out, "--params", identity_params(tmp_path))
    assert result.code == 0, result.err
    notes = [line for line in result.err_lines if "not converted" in line]
    assert len(notes) == 1 and "fg.png" in notes[0] and "pasted as it is" in notes[0] and "Traceback" not in result.err
    assert info(out)[0] == ADOBE
    np.testing.assert_array_equal(read_image(out), scene.composite())
