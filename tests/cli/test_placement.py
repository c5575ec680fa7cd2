"""``--at X,Y`` / ``--at center`` and ``--scale F``: a cutout of another size placed on its background.

With the identity network (it leaves every image unchanged) the output is the background with the cutout pasted,
so each expected image is built here by hand, pixel for pixel.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from . import (  # noqa: F401  (fixtures)
    IDENTITY,
    Scene,
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

BG_HEIGHT, BG_WIDTH = 48, 64


def make_cutout(height: int, width: int, *, seed: int = 0, dtype=np.uint8) -> tuple[np.ndarray, np.ndarray]:
    """Smooth colours and a soft elliptic alpha inscribed in the cutout: opaque core, 0 in the corners."""
    rgb = make_scene(dtype, seed=seed, size=(height, width)).fg
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot((xx + 0.5 - width / 2) / (width / 2), (yy + 0.5 - height / 2) / (height / 2))
    maxval = np.iinfo(dtype).max
    alpha = np.rint(np.clip((1.0 - r) / 0.3, 0, 1) * maxval).astype(dtype)
    return rgb, alpha


def background(seed: int = 100, dtype=np.uint8) -> np.ndarray:
    return make_scene(dtype, seed=seed, size=(BG_HEIGHT, BG_WIDTH)).bg


def pasted(bg: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> np.ndarray:
    """The background with the cutout composited at (x, y), cut off at the edges: M·FG + (1−M)·BG, rounded."""
    out = bg.copy()
    height, width = alpha.shape
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + height, bg.shape[0]), min(x + width, bg.shape[1])
    cut = (slice(top - y, bottom - y), slice(left - x, right - x))
    out[top:bottom, left:right] = Scene(rgb[cut], bg[top:bottom, left:right], alpha[cut]).composite()
    return out


def identity_params(tmp_path):
    return write_params(tmp_path / "identity.json", {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY})


def harmonize_cutout(run, tmp_path, weights, rgb, alpha, bg, *options, name="out.png"):
    cutout = write_image(tmp_path / "cutout.png", rgb, alpha)
    plate = write_image(tmp_path / "bg.png", bg)
    out = tmp_path / name
    return run("harmonize", cutout, plate, "-o", out, "--weights", weights, *options), out


# ------------------------------------------------------------------------------------------- placement


def test_opaque_block_at_an_offset_is_pasted_exactly(run, tmp_path, identity_weights):
    """Hand-written: a 4x3 opaque block at (5, 7) over a flat background."""
    bg = np.full((BG_HEIGHT, BG_WIDTH, 3), 90, np.uint8)
    bg[:, 32:] = (30, 140, 200)  # some variety for the network
    block = np.empty((3, 4, 3), np.uint8)
    block[:] = (200, 40, 10)
    result, out = harmonize_cutout(
        run, tmp_path, identity_weights, block, np.full((3, 4), 255, np.uint8), bg, "--at", "5,7"
    )
    assert result.code == 0, result.err
    expected = bg.copy()
    expected[7:10, 5:9] = (200, 40, 10)
    np.testing.assert_array_equal(read_image(out), expected)


def test_soft_cutout_at_an_offset(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(20, 16, seed=1)
    bg = background()
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, bg, "--at", "10,5")
    assert result.code == 0, result.err
    image = read_image(out)
    assert image.shape == (BG_HEIGHT, BG_WIDTH, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, pasted(bg, rgb, alpha, 10, 5))
    outside = np.ones((BG_HEIGHT, BG_WIDTH), bool)
    outside[5:25, 10:26] = False
    np.testing.assert_array_equal(image[outside], bg[outside])  # the background is untouched


@pytest.mark.parametrize("x, y", [(-6, -4), (56, 40), (-10, 35), (60, -15)])
def test_overhanging_offsets_are_cut_off(run, tmp_path, identity_weights, x, y):
    rgb, alpha = make_cutout(20, 16, seed=2)
    bg = background(101)
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, bg, "--at", f"{x},{y}")
    assert result.code == 0, result.err
    np.testing.assert_array_equal(read_image(out), pasted(bg, rgb, alpha, x, y))


@pytest.mark.parametrize(
    "size, x, y",
    [
        ((20, 16), 24, 14),  # (64 - 16) / 2, (48 - 20) / 2
        ((15, 21), 21, 16),  # odd differences round down: 21.5 -> 21, 16.5 -> 16
        ((60, 80), -8, -6),  # larger than the background: cut off on every side
    ],
)
def test_center(run, tmp_path, identity_weights, size, x, y):
    rgb, alpha = make_cutout(*size, seed=3)
    bg = background(102)
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, bg, "--at", "center")
    assert result.code == 0, result.err
    np.testing.assert_array_equal(read_image(out), pasted(bg, rgb, alpha, x, y))


def test_scale_half_centred(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(20, 16, seed=4)
    bg = background(103)
    result, out = harmonize_cutout(
        run, tmp_path, identity_weights, rgb, alpha, bg, "--at", "center", "--scale", "0.5"
    )
    assert result.code == 0, result.err
    image = read_image(out)
    # Halving averages each 2x2 block (INTER_AREA) of the colours premultiplied by the mask, and of the mask; the
    # 10x8 cutout is centred at ((64-8)/2, (48-10)/2) = (28, 19). Composited: premultiplied + (1 - weight) * bg.
    a = alpha.astype(np.float64)[..., None] / 255
    premultiplied = (a * rgb).reshape(10, 2, 8, 2, 3).mean(axis=(1, 3))
    weight = a.reshape(10, 2, 8, 2).mean(axis=(1, 3))[..., None]
    box = bg[19:29, 28:36].astype(np.float64)
    expected = bg.astype(np.float64)
    expected[19:29, 28:36] = premultiplied + (1 - weight) * box
    assert np.abs(image.astype(np.float64) - expected).max() <= 1.0  # the halved cutout is rounded once
    outside = np.ones((BG_HEIGHT, BG_WIDTH), bool)
    outside[19:29, 28:36] = False
    np.testing.assert_array_equal(image[outside], bg[outside])
    assert not np.array_equal(image[19:29, 28:36], bg[19:29, 28:36])


def test_scaling_does_not_fringe_the_edge_with_the_transparent_colour(run, tmp_path, identity_weights):
    """A cutout's transparent pixels are black (as many editors save them); halved with its edge inside a 2x2 block,
    the edge pixel is half subject and half background, with no black mixed in."""
    rgb = np.zeros((20, 16, 3), np.uint8)
    alpha = np.zeros((20, 16), np.uint8)
    rgb[:, 5:], alpha[:, 5:] = 200, 255  # the edge between columns 4 and 5: inside the block of columns 4-5
    bg = np.full((BG_HEIGHT, BG_WIDTH, 3), 100, np.uint8)
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, bg, "--at", "0,0", "--scale", "0.5")
    assert result.code == 0, result.err
    image = read_image(out)
    np.testing.assert_array_equal(image[:10, 2], 150)  # 0.5 * 200 + 0.5 * 100 (a straight resize gives 100)
    np.testing.assert_array_equal(image[:10, 3:8], 200)
    np.testing.assert_array_equal(image[:10, :2], 100)


def test_scale_up_keeps_the_background_outside_the_enlarged_box(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(10, 8, seed=5)
    bg = background(104)
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, bg, "--at", "3,2", "--scale", "2.5")
    assert result.code == 0, result.err
    image = read_image(out)
    outside = np.ones((BG_HEIGHT, BG_WIDTH), bool)
    outside[2:27, 3:23] = False  # 25x20 at (3, 2)
    np.testing.assert_array_equal(image[outside], bg[outside])
    centre = (2 + 12, 3 + 10)  # the enlarged cutout's opaque core
    np.testing.assert_allclose(image[centre].astype(int), rgb[5, 4].astype(int), atol=12)


def test_placed_equals_the_same_size_form(run, tmp_path, active_weights):
    """--at gives what FG BG MASK gives with the cutout already placed on a background-sized canvas: the network
    sees the same composite, background and mask (a network that really changes colours, and curves too)."""
    rgb, alpha = make_cutout(20, 16, seed=6)
    bg = background(105)
    cutout = write_image(tmp_path / "cutout.png", rgb, alpha)
    plate = write_image(tmp_path / "bg.png", bg)
    canvas, canvas_mask = bg.copy(), np.zeros((BG_HEIGHT, BG_WIDTH), np.uint8)
    canvas[30:48, 50:64], canvas_mask[30:48, 50:64] = rgb[:18, :14], alpha[:18, :14]
    fg_full = write_image(tmp_path / "fg_full.png", canvas)
    mask_full = write_image(tmp_path / "mask_full.png", canvas_mask)
    placed, same = tmp_path / "placed.png", tmp_path / "same.png"
    assert run("harmonize", cutout, plate, "-o", placed, "--weights", active_weights, "--at", "50,30").code == 0
    assert run("harmonize", fg_full, plate, mask_full, "-o", same, "--weights", active_weights).code == 0
    np.testing.assert_array_equal(read_image(placed), read_image(same))
    assert not np.array_equal(read_image(placed), bg)
    looks = tmp_path / "placed.json", tmp_path / "same.json"
    assert run("curves", cutout, plate, "-o", looks[0], "--weights", active_weights, "--at", "50,30").code == 0
    assert run("curves", fg_full, plate, mask_full, "-o", looks[1], "--weights", active_weights).code == 0
    placed_doc, same_doc = (json.loads(p.read_text()) for p in looks)
    assert placed_doc["curves"] == same_doc["curves"]
    shading = (read_image(tmp_path / f"{name}.shading.tif") for name in ("placed", "same"))
    np.testing.assert_array_equal(*shading)


def test_mask_file_of_the_foregrounds_size(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(20, 16, seed=7)
    bg = background(106)
    fg = write_image(tmp_path / "fg.png", rgb)
    plate = write_image(tmp_path / "bg.png", bg)
    mask = write_image(tmp_path / "mask.png", alpha)
    out = tmp_path / "out.png"
    result = run("harmonize", fg, plate, mask, "-o", out, "--weights", identity_weights, "--at", "30,-3")
    assert result.code == 0, result.err
    np.testing.assert_array_equal(read_image(out), pasted(bg, rgb, alpha, 30, -3))


def test_output_keeps_the_backgrounds_bit_depth_and_metadata(run, tmp_path):
    """As with a same-size FG BG: the background's EXIF and resolution; 8-bit over 16-bit gives 16 bits."""
    rgb, alpha = make_cutout(20, 16, seed=8)
    bg16 = background(107, np.uint16)
    cutout = write_image(tmp_path / "cutout.png", rgb, alpha)
    plate = write_image(tmp_path / "bg16.png", bg16)
    out = tmp_path / "out16.png"
    result = run("harmonize", cutout, plate, "-o", out, "--params", identity_params(tmp_path), "--at", "40,30")
    assert result.code == 0, result.err
    image = read_image(out)
    assert image.dtype == np.uint16 and image.shape == (BG_HEIGHT, BG_WIDTH, 3)
    outside = np.ones((BG_HEIGHT, BG_WIDTH), bool)
    outside[30:48, 40:56] = False
    np.testing.assert_array_equal(image[outside], bg16[outside])
    expected = pasted(bg16, rgb.astype(np.uint16) * 257, alpha.astype(np.uint16) * 257, 40, 30)
    assert np.abs(image.astype(np.int64) - expected).max() <= 1

    exif = Image.Exif()
    exif[271] = "Canon"
    tagged = tmp_path / "tagged.png"
    Image.fromarray(background(108)).save(tagged, exif=exif, dpi=(300, 300))
    out8 = tmp_path / "out8.png"
    result = run("harmonize", cutout, tagged, "-o", out8, "--params", identity_params(tmp_path), "--at", "center")
    assert result.code == 0, result.err
    with Image.open(out8) as im:
        assert im.size == (BG_WIDTH, BG_HEIGHT) and im.mode == "RGB"
        assert im.getexif().get(271) == "Canon"
        assert tuple(float(v) for v in im.info["dpi"]) == pytest.approx((300.0, 300.0), abs=1e-2)


def test_background_alpha_is_kept_under_the_placed_cutout(run, tmp_path):
    rgb, alpha = make_cutout(20, 16, seed=9)
    bg = background(109)
    bg_alpha = np.full((BG_HEIGHT, BG_WIDTH), 255, np.uint8)
    bg_alpha[:, :20] = 0
    cutout = write_image(tmp_path / "cutout.png", rgb, alpha)
    plate = write_image(tmp_path / "bg.png", bg, bg_alpha)
    out = tmp_path / "out.png"
    result = run("harmonize", cutout, plate, "-o", out, "--params", identity_params(tmp_path), "--at", "10,10")
    assert result.code == 0, result.err
    image = read_image(out)
    assert image.shape == (BG_HEIGHT, BG_WIDTH, 4)
    expected_alpha = bg_alpha.copy()
    expected_alpha[10:30, 10:20] = alpha[:, :10]  # opaque where the cutout is, over the transparent strip
    np.testing.assert_array_equal(image[..., 3], expected_alpha)


# ------------------------------------------------------------------------------------------- folders


def test_folder_of_cutouts_over_one_plate(run, tmp_path, identity_weights):
    cutouts = {"a": make_cutout(20, 16, seed=10), "b": make_cutout(12, 30, seed=11)}
    for stem, (rgb, alpha) in cutouts.items():
        write_image(tmp_path / "cutouts" / f"{stem}.png", rgb, alpha)
    bg = background(110)
    plate = write_image(tmp_path / "plate.png", bg)
    out = tmp_path / "out"
    result = run("harmonize", tmp_path / "cutouts", plate, "-o", out, "--weights", identity_weights, "--at", "-2,30")
    assert result.code == 0, result.err
    assert files_in(out) == ["a.png", "b.png"]
    for stem, (rgb, alpha) in cutouts.items():
        np.testing.assert_array_equal(read_image(out / f"{stem}.png"), pasted(bg, rgb, alpha, -2, 30))


def test_folder_pairs_each_placed_on_its_own_background(run, tmp_path, identity_weights):
    """FG folder + BG folder: the same --at center --scale 0.5 for every pair, centred on each background."""
    rgb, alpha = make_cutout(20, 16, seed=12)
    big, small = background(111), make_scene(seed=114, size=(30, 40)).bg
    write_image(tmp_path / "fgs" / "a.png", rgb, alpha)
    write_image(tmp_path / "fgs" / "b.png", rgb, alpha)
    write_image(tmp_path / "bgs" / "a.png", big)
    write_image(tmp_path / "bgs" / "b.png", small)
    out = tmp_path / "out"
    args = ("--weights", identity_weights, "--at", "center", "--scale", "0.5")
    result = run("harmonize", tmp_path / "fgs", tmp_path / "bgs", "-o", out, *args)
    assert result.code == 0, result.err
    assert files_in(out) == ["a.png", "b.png"]
    # the 10x8 cutout at ((64-8)/2, (48-10)/2) = (28, 19) and at ((40-8)/2, (30-10)/2) = (16, 10)
    for stem, plate, (x, y) in (("a", big, (28, 19)), ("b", small, (16, 10))):
        image = read_image(out / f"{stem}.png")
        assert image.shape == plate.shape
        outside = np.ones(plate.shape[:2], bool)
        outside[y : y + 10, x : x + 8] = False
        np.testing.assert_array_equal(image[outside], plate[outside])
        assert not np.array_equal(image[~outside], plate[~outside])


def test_folder_item_entirely_outside_fails_alone(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(20, 16, seed=13)
    write_image(tmp_path / "fgs" / "a.png", rgb, alpha)
    write_image(tmp_path / "fgs" / "b.png", rgb, alpha)
    write_image(tmp_path / "bgs" / "a.png", background(112))
    write_image(tmp_path / "bgs" / "b.png", background(113)[:20, :20])  # (30, 25) is beyond its corner
    out = tmp_path / "out"
    args = ("--weights", identity_weights, "--at", "30,25")
    result = run("harmonize", tmp_path / "fgs", tmp_path / "bgs", "-o", out, *args)
    assert result.code == 1
    assert files_in(out) == ["a.png"]
    failed = [line for line in result.err_lines if line.startswith("failed:")]
    assert len(failed) == 1 and "b.png" in failed[0] and "entirely outside" in failed[0]
    np.testing.assert_array_equal(read_image(out / "a.png"), pasted(background(112), rgb, alpha, 30, 25))


# ------------------------------------------------------------------------------------------- refusals


def test_different_sizes_without_at_hint_at_the_option(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(20, 16)
    cutout = write_image(tmp_path / "cutout.png", rgb, alpha)
    plate = write_image(tmp_path / "bg.png", background())
    for command, name in (("harmonize", "out.png"), ("curves", "look.json")):
        result = run(command, cutout, plate, "-o", tmp_path / name, "--weights", identity_weights)
        assert_one_error(
            result, 1, "bg.png", "64x48", "16x20", "same size, or pass --at X,Y (or --at center) to place a smaller cutout"
        )
    assert files_in(tmp_path) == ["bg.png", "cutout.png"]


@pytest.mark.parametrize("text", ["1.5,2", "10", "a,b", "1,2,3", "", "left", "10;20", "0x10,5"])
def test_bad_at_is_a_usage_error(run, tmp_path, identity_weights, text):
    rgb, alpha = make_cutout(20, 16)
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, background(), "--at", text)
    assert_one_error(result, 2, "--at")
    assert not out.exists()


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--at", "0,0", "--scale", "0"], "--scale"),
        (["--at", "0,0", "--scale", "-1"], "--scale"),
        (["--at", "0,0", "--scale", "nan"], "--scale"),
        (["--at", "0,0", "--scale", "x"], "--scale"),
        (["--scale", "0.5"], "--at"),
    ],
)
def test_bad_scale_is_a_usage_error(run, tmp_path, identity_weights, options, fragment):
    rgb, alpha = make_cutout(20, 16)
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, background(), *options)
    assert_one_error(result, 2, fragment)
    assert not out.exists()


@pytest.mark.parametrize("x, y", [(64, 0), (0, 48), (-16, 0), (0, -20), (-1000, 5000)])
def test_entirely_outside_is_an_input_error(run, tmp_path, identity_weights, x, y):
    rgb, alpha = make_cutout(20, 16)
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, background(), "--at", f"{x},{y}")
    assert_one_error(result, 1, "cutout.png", "entirely outside", "64x48", f"{x},{y}")
    assert not out.exists()


def test_scaled_to_nothing_is_an_input_error(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(20, 16)
    options = ("--at", "0,0", "--scale", "0.01")
    result, out = harmonize_cutout(run, tmp_path, identity_weights, rgb, alpha, background(), *options)
    assert_one_error(result, 1, "cutout.png", "--scale")
    assert not out.exists()


def test_mask_must_have_the_foregrounds_size(run, tmp_path, identity_weights):
    rgb, alpha = make_cutout(20, 16)
    fg = write_image(tmp_path / "fg.png", rgb)
    plate = write_image(tmp_path / "bg.png", background())
    mask = write_image(tmp_path / "mask.png", np.zeros((BG_HEIGHT, BG_WIDTH), np.uint8))  # drawn on the background
    out = tmp_path / "out.png"
    result = run("harmonize", fg, plate, mask, "-o", out, "--weights", identity_weights, "--at", "0,0")
    assert_one_error(result, 1, "mask.png", "64x48", "16x20", "with --at the mask must have the foreground's size")
    assert not out.exists()


@pytest.mark.parametrize("command", ["harmonize", "curves"])
@pytest.mark.parametrize("options", [["--at", "0,0"], ["--at", "center", "--scale", "2"]])
def test_at_with_a_composite_is_a_usage_error(run, tmp_path, identity_weights, command, options):
    scene = make_scene()
    composite = write_image(tmp_path / "comp.png", scene.composite())
    mask = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / ("out.png" if command == "harmonize" else "look.json")
    result = run(command, composite, "--mask", mask, "-o", out, "--weights", identity_weights, *options)
    assert_one_error(result, 2, "--at", "COMPOSITE")
    assert not out.exists()
