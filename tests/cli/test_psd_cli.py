"""``harmcli harmonize file.psd``: the subject layer harmonized against the layers below it, exactly as the same pixels
exported as FG (with the layer's coverage as alpha) and BG files are; --layer; a layered .psd output; the refusals."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from ..io.icc import ADOBE_RGB, build_rgb_profile
from ..io.psdmake import GroupSpec, Layer, new_document, on_canvas, save, with_resources
from . import (  # noqa: F401  (fixtures)
    HALF,
    IDENTITY,
    LIFT,
    active_weights,
    assert_one_error,
    files_in,
    identity_weights,
    make_scene,
    read_image,
    run,
    write_image,
    write_params,
)

H, W = 48, 64


def layered(tmp_path, *, dtype=np.uint8, seed=0, left=10, top=6, size=(30, 36), mask=None, name="comp.psd", above=()):
    """A background layer (a smooth picture) and, above it, a subject cutout with a soft alpha at (left, top); the
    merged preview is the flattened document. Returns the file, the background, the subject (RGBA) and the subject's
    coverage on the canvas (alpha x mask, rounded as in the document)."""
    scene = make_scene(dtype, seed=seed, size=(H, W))
    sub = make_scene(dtype, seed=seed + 1, size=size)
    top_value = np.iinfo(dtype).max
    subject = np.dstack([sub.fg, sub.mask])
    coverage = sub.mask.astype(np.float64)
    if mask is not None:
        coverage = coverage * mask / 255.0
    coverage = np.rint(coverage).astype(dtype)
    canvas_coverage = on_canvas(coverage, left, top, H, W)
    w = canvas_coverage[..., None] / top_value
    flattened = np.rint(w * on_canvas(sub.fg, left, top, H, W) + (1 - w) * scene.bg).astype(dtype)
    layers = [Layer("Background", scene.bg), Layer("Subject", subject, left=left, top=top, mask=mask), *above]
    psd = new_document((W, H), layers, depth=16 if dtype == np.uint16 else 8)
    path = save(psd, tmp_path / name, preview=flattened)
    return path, scene.bg, subject, canvas_coverage


def export_fg_bg(tmp_path, bg, subject, coverage, left, top, ext=".png"):
    """The same pixels as separate files: FG at the canvas size with the coverage as alpha, and BG."""
    fg = write_image(tmp_path / f"fg{ext}", on_canvas(subject[..., :3], left, top, H, W), coverage)
    return fg, write_image(tmp_path / f"bg{ext}", bg)


@pytest.fixture
def params(tmp_path):
    return write_params(tmp_path / "edit.json", {"red": HALF, "green": LIFT, "blue": IDENTITY})


# ------------------------------------------------------------------------------------------- equal to FG BG


@pytest.mark.parametrize("out_ext", [".png", ".jpg", ".tif"])
def test_psd_equals_the_same_pixels_given_as_fg_bg(run, tmp_path, active_weights, out_ext):
    path, bg, subject, coverage = layered(tmp_path)
    fg_file, bg_file = export_fg_bg(tmp_path, bg, subject, coverage, 10, 6)
    from_psd, from_files = tmp_path / f"psd{out_ext}", tmp_path / f"files{out_ext}"
    result = run("harmonize", path, "-o", from_psd, "--weights", active_weights)
    assert result.code == 0, result.err
    assert run("harmonize", fg_file, bg_file, "-o", from_files, "--weights", active_weights).code == 0
    a, b = read_image(from_psd), read_image(from_files)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    if out_ext != ".jpg":
        outside = coverage == 0
        np.testing.assert_array_equal(a[outside], bg[outside])  # the background, bit for bit
        inside = coverage == 255
        assert np.abs(a[inside].astype(int) - subject[..., :3][coverage[6:36, 10:46] == 255].astype(int)).mean() > 1


def test_layer_mask_and_an_offset_over_the_edge(run, tmp_path, params):
    mask = np.full((30, 36), 255, np.uint8)
    mask[:, :12] = 0
    mask[:, 12:18] = 128
    path, bg, subject, coverage = layered(tmp_path, left=40, top=-8, mask=mask)
    assert coverage[:, :40].max() == 0 and coverage[22:].max() == 0  # where the layer lies
    fg_file, bg_file = export_fg_bg(tmp_path, bg, subject, coverage, 40, -8)
    out, ref = tmp_path / "psd.png", tmp_path / "ref.png"
    assert run("harmonize", path, "-o", out, "--params", params).code == 0
    assert run("harmonize", fg_file, bg_file, "-o", ref, "--params", params).code == 0
    assert np.abs(read_image(out).astype(int) - read_image(ref).astype(int)).max() <= 1
    np.testing.assert_array_equal(read_image(out)[coverage == 0], bg[coverage == 0])


@pytest.mark.parametrize("out_ext", [".png", ".tif"])
def test_16_bit_psd_gives_16_bit_output(run, tmp_path, active_weights, out_ext):
    path, bg, subject, coverage = layered(tmp_path, dtype=np.uint16)
    fg_file, bg_file = export_fg_bg(tmp_path, bg, subject, coverage, 10, 6, ext=".tif")
    out, ref = tmp_path / f"psd{out_ext}", tmp_path / f"ref{out_ext}"
    assert run("harmonize", path, "-o", out, "--weights", active_weights).code == 0
    assert run("harmonize", fg_file, bg_file, "-o", ref, "--weights", active_weights).code == 0
    a = read_image(out)
    assert a.dtype == np.uint16 and a.shape == (H, W, 3)
    assert np.abs(a.astype(int) - read_image(ref).astype(int)).max() <= 1
    np.testing.assert_array_equal(a[coverage == 0], bg[coverage == 0])


def test_colour_profile_is_kept(run, tmp_path, params):
    from PIL import Image

    icc = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
    path, _, _, _ = layered(tmp_path)
    path.write_bytes(with_resources(path.read_bytes(), {1039: icc}))
    out = tmp_path / "out.png"
    assert run("harmonize", path, "-o", out, "--params", params).code == 0
    with Image.open(out) as image:
        assert image.info.get("icc_profile") == icc
    stripped = tmp_path / "stripped.png"
    assert run("harmonize", path, "-o", stripped, "--params", params, "--strip-metadata").code == 0
    with Image.open(stripped) as image:
        assert image.info.get("icc_profile") is None


# ------------------------------------------------------------------------------------------- --layer, layers above


def test_layer_option_and_the_layers_above_are_drawn_over(run, tmp_path, params):
    label = np.dstack([np.full((6, 20, 3), 240, np.uint8), np.full((6, 20), 255, np.uint8)])
    path, bg, subject, coverage = layered(tmp_path, above=[Layer("Title", label, left=2, top=2)])
    out = tmp_path / "out.png"
    result = run("harmonize", path, "-o", out, "--params", params, "--layer", "Subject")
    assert result.code == 0, result.err
    image = read_image(out)
    np.testing.assert_array_equal(image[2:8, 2:22], label[..., :3])  # the title, over everything
    rest = np.ones((H, W), bool)
    rest[2:8, 2:22] = False
    fg_file, bg_file = export_fg_bg(tmp_path, bg, subject, coverage, 10, 6)
    ref = tmp_path / "ref.png"
    assert run("harmonize", fg_file, bg_file, "-o", ref, "--params", params).code == 0
    np.testing.assert_array_equal(image[rest], read_image(ref)[rest])
    # without --layer, the title is the top visible pixel layer and so the subject
    assert run("harmonize", path, "-o", tmp_path / "title.png", "--params", params).code == 0
    title = read_image(tmp_path / "title.png")
    assert np.abs(title[2:8, 2:22, 0].astype(int) - 120).max() <= 1  # its red halved
    w = coverage[..., None] / 255.0  # and the subject layer is now part of the background, as it is
    flattened = w * on_canvas(subject[..., :3], 10, 6, H, W) + (1 - w) * bg
    assert np.abs(title[rest] - flattened[rest]).max() <= 1


def test_unknown_layer_lists_the_layers(run, tmp_path, params):
    path, *_ = layered(tmp_path)
    out = tmp_path / "out.png"
    result = run("harmonize", path, "-o", out, "--params", params, "--layer", "Car")
    assert_one_error(result, 1, "no layer named 'Car'", "'Subject', 'Background'")
    assert not out.exists()


# ------------------------------------------------------------------------------------------- a layered output


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_psd_output_keeps_the_layers(run, tmp_path, params, dtype):
    from psd_tools import PSDImage

    mask = np.full((30, 36), 255, np.uint8)
    mask[:, :6] = 0
    path, bg, subject, coverage = layered(tmp_path, dtype=dtype, mask=mask)
    out = tmp_path / "out.psd"
    result = run("harmonize", path, "-o", out, "--params", params)
    assert result.code == 0, result.err
    before, after = PSDImage.open(path), PSDImage.open(out)
    assert [layer.name for layer in after] == ["Background", "Subject"] and after.depth == before.depth
    top = np.iinfo(dtype).max
    np.testing.assert_array_equal(np.rint(after[0].numpy() * top), np.rint(before[0].numpy() * top))
    np.testing.assert_array_equal(after[1].numpy("shape"), before[1].numpy("shape"))
    np.testing.assert_array_equal(after[1].numpy("mask"), before[1].numpy("mask"))
    new = np.rint(after[1].numpy("color") * top)
    old = subject[..., :3].astype(float)
    present = subject[..., 3] > 0
    np.testing.assert_allclose(new[..., 0][present], old[..., 0][present] / 2, atol=1)  # red halved
    np.testing.assert_array_equal(new[..., 2], old[..., 2])  # blue as it was
    # the merged preview shows the new layer over the background
    w = coverage[..., None] / top
    expected = w * on_canvas(new, 10, 6, H, W) + (1 - w) * bg
    assert np.abs(np.rint(after.numpy() * top) - expected).max() <= 1


def test_psd_output_needs_a_psd_input(run, tmp_path, params):
    scene = make_scene()
    fg = write_image(tmp_path / "fg.png", scene.fg)
    bg = write_image(tmp_path / "bg.png", scene.bg)
    mask = write_image(tmp_path / "mask.png", scene.mask)
    result = run("harmonize", fg, bg, mask, "-o", tmp_path / "out.psd", "--params", params)
    assert_one_error(result, 2, ".psd output needs a .psd input", "png")
    assert not (tmp_path / "out.psd").exists()


# ------------------------------------------------------------------------------------------- folders, curves


def test_folder_of_psds(run, tmp_path, params):
    folder = tmp_path / "in"
    folder.mkdir()
    for seed, stem in ((0, "a"), (5, "b")):
        layered(folder, seed=seed, name=f"{stem}.psd")
    write_image(folder / "notes.png", make_scene().fg)  # no mask: not an item of a .psd folder
    result = run("harmonize", folder, "-o", tmp_path / "out", "--params", params, "--ext", "png")
    assert result.code == 0, result.err
    assert files_in(tmp_path / "out") == ["a.png", "b.png"]
    single = tmp_path / "b.png"
    assert run("harmonize", folder / "b.psd", "-o", single, "--params", params).code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "b.png"), read_image(single))
    # each input's own format by default: layered files
    assert run("harmonize", folder, "-o", tmp_path / "layered", "--params", params).code == 0
    assert files_in(tmp_path / "layered") == ["a.psd", "b.psd"]


def test_curves_reads_a_psd(run, tmp_path, active_weights):
    path, bg, subject, coverage = layered(tmp_path)
    fg_file, bg_file = export_fg_bg(tmp_path, bg, subject, coverage, 10, 6)
    assert run("curves", path, "-o", tmp_path / "a.json", "--weights", active_weights).code == 0
    assert run("curves", fg_file, bg_file, "-o", tmp_path / "b.json", "--weights", active_weights).code == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["shading"] == "a.shading.tif" and b["shading"] == "b.shading.tif"
    assert {**a, "shading": None} == {**b, "shading": None}
    np.testing.assert_array_equal(read_image(tmp_path / "a.shading.tif"), read_image(tmp_path / "b.shading.tif"))


# ------------------------------------------------------------------------------------------- refusals


def test_usage_errors(run, tmp_path, params):
    path, *_ = layered(tmp_path)
    other = write_image(tmp_path / "m.png", make_scene().mask)
    out = tmp_path / "out" / "x.png"
    cases = [
        ([path, "--mask", other], "--mask"),
        ([path, other], "given alone"),
        ([other, path], "given alone"),
        ([path, "--at", "3,4"], "--at"),
        ([other, other, "--layer", "x"], "--layer"),
    ]
    for args, fragment in cases:
        assert_one_error(run("harmonize", *args, "-o", out, "--params", params), 2, fragment)
    assert files_in(tmp_path / "out") == []


def test_errors_are_one_line_and_write_nothing(run, tmp_path, params, monkeypatch):
    path, *_ = layered(tmp_path)
    out = tmp_path / "out" / "x.png"
    single = save(new_document((W, H), [Layer("Only", make_scene().bg)]), tmp_path / "single.psd")
    assert_one_error(run("harmonize", single, "-o", out, "--params", params), 1, "own layer above the background")
    truncated = tmp_path / "cut.psd"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert_one_error(run("harmonize", truncated, "-o", out, "--params", params), 1, "cut.psd", "damaged or truncated")
    assert_one_error(run("harmonize", path, "-o", out, "--params", params, "--max-pixels", 1000), 1, "--max-pixels")
    under = Layer("Shadow", np.dstack([make_scene().fg, make_scene().mask]), blend="MULTIPLY")
    blended = save(new_document((W, H), [Layer("bg", make_scene().bg), under, Layer("s", make_scene(seed=3).fg)]), tmp_path / "m.psd")
    assert_one_error(run("harmonize", blended, "-o", out, "--params", params), 1, "'Shadow' uses the multiply blend mode", "flatten")
    grouped = new_document((W, H), [Layer("bg", make_scene().bg), GroupSpec("g", [Layer("s", make_scene().fg)], blend="MULTIPLY")])
    assert_one_error(run("harmonize", save(grouped, tmp_path / "g.psd"), "-o", out, "--params", params), 1, "group 'g'")
    monkeypatch.setitem(sys.modules, "psd_tools", None)  # what an install without the extra looks like
    assert_one_error(run("harmonize", path, "-o", out, "--params", params), 1, "pip install 'psd-tools>=1.26,<2'")
    assert files_in(tmp_path / "out") == []
