"""``harmcli harmonize``: the three input forms, folders, bit depth, --params replay and every refusal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from . import (  # noqa: F401  (fixtures)
    HALF,
    IDENTITY,
    LIFT,
    TORCH_THREADS_ENV,
    active_weights,
    apply_curve,
    assert_one_error,
    files_in,
    identity_weights,
    make_scene,
    read_image,
    run,
    write_image,
    write_params,
    write_scene,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def params_file(tmp_path):
    """Red halved, green mid-tones lifted, blue unchanged; no shading."""
    return write_params(tmp_path / "edit.json", {"red": HALF, "green": LIFT, "blue": IDENTITY})


def expected_with(scene, curves, maxval=255, gain=1.0):
    """The composite with ``curves`` (per channel) and a constant ``gain`` applied inside the soft mask."""
    composite = scene.composite().astype(np.float64)
    adjusted = np.stack([apply_curve(scene.composite()[..., c], curves[c], maxval) for c in range(3)], axis=-1)
    adjusted = np.minimum(adjusted * gain, maxval)
    w = scene.weight[..., None]
    return composite + w * (adjusted - composite)


def assert_background_exact(out: np.ndarray, scene) -> None:
    background = scene.mask == 0
    assert background.any()
    np.testing.assert_array_equal(out[background], scene.bg[background])


# ------------------------------------------------------------------------------------------- the three forms


def test_fg_bg_mask_applies_params_inside_mask_only(run, tmp_path, params_file):
    scene = make_scene()
    fg, bg, mask = write_scene(tmp_path, scene)
    out = tmp_path / "out" / "result.png"
    result = run("harmonize", fg, bg, mask, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    image = read_image(out)
    assert image.dtype == np.uint8 and image.shape == scene.fg.shape
    assert_background_exact(image, scene)
    expected = expected_with(scene, [HALF, LIFT, IDENTITY])
    assert np.abs(image.astype(np.float64) - expected).max() <= 1.0
    inside = scene.mask == 255
    assert (image[inside][:, 0] < scene.fg[inside][:, 0]).mean() > 0.95  # red really halved
    assert files_in(tmp_path / "out") == ["result.png"]
    assert result.out == ""  # stdout stays clean


def test_fg_with_alpha_and_bg(run, tmp_path, params_file):
    scene = make_scene(seed=1)
    fg, bg, _ = write_scene(tmp_path, scene, ext=".jpg", alpha=True)
    out = tmp_path / "result.png"
    result = run("harmonize", fg, bg, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    image = read_image(out)
    bg_read = read_image(bg)  # JPEG: compare against what was decoded
    background = scene.mask == 0
    np.testing.assert_array_equal(image[background], bg_read[background])
    assert image.shape == (48, 64, 3)  # the background is opaque, so is the result


def test_composite_with_mask(run, tmp_path, params_file):
    scene = make_scene(seed=2)
    composite = write_image(tmp_path / "comp.tif", scene.composite())
    mask = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / "result.tif"
    result = run("harmonize", composite, "--mask", mask, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    image = read_image(out)
    background = scene.mask == 0
    np.testing.assert_array_equal(image[background], scene.composite()[background])
    assert np.abs(image.astype(np.float64) - expected_with(scene, [HALF, LIFT, IDENTITY])).max() <= 1.0


def test_composite_alpha_is_kept(run, tmp_path, params_file):
    scene = make_scene(seed=3)
    alpha = np.full(scene.mask.shape, 255, np.uint8)
    alpha[:, :8] = 0  # a transparent strip
    composite = write_image(tmp_path / "comp.png", scene.composite(), alpha)
    mask = write_image(tmp_path / "mask.png", scene.mask)
    out = tmp_path / "result.png"
    assert run("harmonize", composite, "-m", mask, "-o", out, "--params", params_file).code == 0
    image = read_image(out)
    assert image.shape == (48, 64, 4)
    np.testing.assert_array_equal(image[..., 3], alpha)


def test_transparency_dropped_by_a_jpeg_output_is_said(run, tmp_path, params_file):
    scene = make_scene(seed=3)
    alpha = np.full(scene.mask.shape, 255, np.uint8)
    alpha[:, :8] = 0
    composite = write_image(tmp_path / "comp.png", scene.composite(), alpha)
    opaque = write_image(tmp_path / "opaque.png", scene.composite(), np.full_like(alpha, 255))
    mask = write_image(tmp_path / "mask.png", scene.mask)
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "out.jpg", "--params", params_file)
    assert result.code == 0, result.err
    warnings = [line for line in result.err_lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "out.jpg" in warnings[0] and "transparency was dropped" in warnings[0]
    assert read_image(tmp_path / "out.jpg").shape == (48, 64, 3)
    # an opaque alpha loses nothing: no warning
    result = run("harmonize", opaque, "-m", mask, "-o", tmp_path / "opaque.jpg", "--params", params_file)
    assert result.code == 0 and "warning" not in result.err, result.err


def test_network_identity_model_leaves_image_unchanged(run, tmp_path, identity_weights):
    scene = make_scene(seed=4)
    fg, bg, mask = write_scene(tmp_path, scene)
    out = tmp_path / "result.png"
    result = run("harmonize", fg, bg, mask, "-o", out, "--weights", identity_weights, "--device", "cpu")
    assert result.code == 0, result.err
    np.testing.assert_array_equal(read_image(out), scene.composite())


def test_network_changes_foreground_only_and_strength_zero_is_off(run, tmp_path, active_weights):
    scene = make_scene(seed=5)
    fg, bg, mask = write_scene(tmp_path, scene)
    out, off = tmp_path / "a.png", tmp_path / "off.png"
    assert run("harmonize", fg, bg, mask, "-o", out, "--weights", active_weights, "-q").code == 0
    image = read_image(out)
    assert_background_exact(image, scene)
    inside = scene.mask == 255
    assert np.abs(image[inside].astype(int) - scene.fg[inside].astype(int)).mean() > 5
    args = ("--strength", 0, "--shading-strength", 0)
    assert run("harmonize", fg, bg, mask, "-o", off, "--weights", active_weights, *args).code == 0
    np.testing.assert_array_equal(read_image(off), scene.composite())


def test_shading_strength_and_strength(run, tmp_path):
    scene = make_scene(seed=6)
    fg, bg, mask = write_scene(tmp_path, scene)
    flat = {"red": IDENTITY, "green": IDENTITY, "blue": IDENTITY}
    params = write_params(tmp_path / "gain.json", flat, shading=[[1.5, 1.5], [1.5, 1.5]])
    for shading_strength, gain in ((1, 1.5), (0, 1.0), (2, 2.25)):
        out = tmp_path / f"s{shading_strength}.png"
        result = run("harmonize", fg, bg, mask, "-o", out, "--params", params, "--shading-strength", shading_strength)
        assert result.code == 0, result.err
        expected = expected_with(scene, [IDENTITY] * 3, gain=gain)
        assert np.abs(read_image(out).astype(np.float64) - expected).max() <= 1.0, shading_strength
    # --strength 0.5 moves the curves half way to the identity: x/2 -> 3x/4
    half_way = write_params(tmp_path / "half.json", {"red": HALF, "green": IDENTITY, "blue": IDENTITY})
    out = tmp_path / "half.png"
    assert run("harmonize", fg, bg, mask, "-o", out, "--params", half_way, "--strength", 0.5).code == 0
    expected = expected_with(scene, [([0, 1], [0, 0.75]), IDENTITY, IDENTITY])
    assert np.abs(read_image(out).astype(np.float64) - expected).max() <= 1.0


# ------------------------------------------------------------------------------------------- bit depth, formats


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16_bit_in_16_bit_out(run, tmp_path, params_file, ext):
    scene = make_scene(np.uint16, seed=7)
    fg, bg, mask = write_scene(tmp_path, scene, ext=ext)
    out = tmp_path / f"result{ext}"
    assert run("harmonize", fg, bg, mask, "-o", out, "--params", params_file).code == 0
    image = read_image(out)
    assert image.dtype == np.uint16
    assert_background_exact(image, scene)
    expected = expected_with(scene, [HALF, LIFT, IDENTITY], maxval=65535)
    assert np.abs(image.astype(np.float64) - expected).max() <= 1.0
    # same input to JPEG: 8-bit, quality honoured
    jpg_hi, jpg_lo = tmp_path / "hi.jpg", tmp_path / "lo.jpg"
    assert run("harmonize", fg, bg, mask, "-o", jpg_hi, "--params", params_file).code == 0
    assert run("harmonize", fg, bg, mask, "-o", jpg_lo, "--params", params_file, "--jpeg-quality", 20).code == 0
    assert read_image(jpg_hi).dtype == np.uint8
    assert jpg_lo.stat().st_size < jpg_hi.stat().st_size


def test_mixed_bit_depths_promote_to_16(run, tmp_path, params_file):
    scene8 = make_scene(seed=8)
    fg = write_image(tmp_path / "fg.png", scene8.fg.astype(np.uint16) * 257)
    bg = write_image(tmp_path / "bg.png", scene8.bg)
    mask = write_image(tmp_path / "mask.png", scene8.mask)
    out = tmp_path / "result.png"
    assert run("harmonize", fg, bg, mask, "-o", out, "--params", params_file).code == 0
    image = read_image(out)
    assert image.dtype == np.uint16
    background = scene8.mask == 0
    np.testing.assert_array_equal(image[background], scene8.bg[background].astype(np.uint16) * 257)


def test_empty_mask_copies_input_with_warning(run, tmp_path, identity_weights):
    scene = make_scene(seed=9)
    scene.mask[:] = 0
    fg, bg, mask = write_scene(tmp_path, scene)
    out = tmp_path / "result.png"
    result = run("harmonize", fg, bg, mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0
    assert any(line.startswith("warning:") and "empty" in line for line in result.err_lines)
    np.testing.assert_array_equal(read_image(out), scene.bg)


def test_output_into_existing_folder_and_save_params(run, tmp_path, active_weights):
    scene = make_scene(seed=10)
    fg, bg, mask = write_scene(tmp_path, scene, stem="photo_")
    outdir = tmp_path / "results"
    outdir.mkdir()
    result = run("harmonize", fg, bg, mask, "-o", outdir, "--weights", active_weights, "--save-params", outdir / "used.json")
    assert result.code == 0, result.err
    assert files_in(outdir) == ["photo_fg.png", "used.json", "used.shading.tif"]


# ------------------------------------------------------------------------------------------- --params replay


def test_params_replay_json_matches_prediction(run, tmp_path, active_weights):
    scene = make_scene(seed=11)
    fg, bg, mask = write_scene(tmp_path, scene)
    predicted, replayed, curves_json = tmp_path / "pred.png", tmp_path / "replay.png", tmp_path / "c.json"
    args = ("--weights", active_weights, "--save-params", tmp_path / "p.json")
    result = run("harmonize", fg, bg, mask, "-o", predicted, *args)
    assert result.code == 0, result.err
    assert run("harmonize", fg, bg, mask, "-o", replayed, "--params", tmp_path / "p.json").code == 0
    a, b = read_image(predicted).astype(int), read_image(replayed).astype(int)
    assert np.abs(a - b).max() <= 1  # the shading map went through a 16-bit TIFF
    assert (a != b).mean() < 0.01
    # `curves -o x.json` gives the same adjustment as --save-params
    assert run("curves", fg, bg, mask, "-o", curves_json, "--weights", active_weights).code == 0
    assert run("harmonize", fg, bg, mask, "-o", tmp_path / "replay2.png", "--params", curves_json).code == 0
    assert np.abs(read_image(tmp_path / "replay2.png").astype(int) - a).max() <= 1


def test_params_replay_without_shading_is_exact(run, tmp_path, active_weights):
    scene = make_scene(seed=12)
    fg, bg, mask = write_scene(tmp_path, scene)
    predicted, replayed = tmp_path / "pred.png", tmp_path / "replay.png"
    args = ("--weights", active_weights, "--shading-strength", 0, "--save-params", tmp_path / "p.json")
    assert run("harmonize", fg, bg, mask, "-o", predicted, *args).code == 0
    assert not (tmp_path / "p.shading.tif").exists()
    assert run("harmonize", fg, bg, mask, "-o", replayed, "--params", tmp_path / "p.json").code == 0
    np.testing.assert_array_equal(read_image(replayed), read_image(predicted))


def test_params_replay_without_shading_is_exact_16_bit(run, tmp_path, active_weights):
    scene = make_scene(np.uint16, seed=12)
    fg, bg, mask = write_scene(tmp_path, scene)
    predicted, replayed = tmp_path / "pred.png", tmp_path / "replay.png"
    args = ("--weights", active_weights, "--shading-strength", 0, "--save-params", tmp_path / "p.json")
    assert run("harmonize", fg, bg, mask, "-o", predicted, *args).code == 0
    assert run("harmonize", fg, bg, mask, "-o", replayed, "--params", tmp_path / "p.json").code == 0
    a, b = read_image(predicted).astype(int), read_image(replayed).astype(int)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fmt", ["cube", "acv"])
def test_params_replay_cube_and_acv(run, tmp_path, active_weights, fmt):
    """.cube and .acv hold curves only: they replay `--shading-strength 0` (ACV within its 16-point fit)."""
    from harmcli.io.adjustment_files import acv_points, load_adjustment

    scene = make_scene(seed=13)
    fg, bg, mask = write_scene(tmp_path, scene)
    lut, original = tmp_path / f"c.{fmt}", tmp_path / "c.json"
    for target in (lut, original):
        assert run("curves", fg, bg, mask, "-o", target, "--weights", active_weights).code == 0
    reference = tmp_path / "ref.png"
    assert run("harmonize", fg, bg, mask, "-o", reference, "--params", original, "--shading-strength", 0).code == 0
    replayed = tmp_path / "replay.png"
    assert run("harmonize", fg, bg, mask, "-o", replayed, "--params", lut).code == 0
    tolerance = 1
    if fmt == "acv":  # Photoshop curves hold 16 integer points: allow the fit's own error
        tolerance += int(np.ceil(acv_points(load_adjustment(original))[1]))
    diff = np.abs(read_image(replayed).astype(int) - read_image(reference).astype(int))
    assert diff.max() <= tolerance
    assert_background_exact(read_image(replayed), scene)


# ------------------------------------------------------------------------------------------- folders


def test_jpeg_masks_get_one_warning_per_run(run, tmp_path, params_file):
    fgs, bg, masks, scenes = make_folder_inputs(tmp_path, ("a", "b"))
    for stem in ("a", "b"):
        (masks / f"{stem}.png").unlink()
        write_image(masks / f"{stem}.jpg", scenes[stem].mask)
    result = run("harmonize", fgs, bg, masks, "-o", tmp_path / "out", "--params", params_file)
    assert result.code == 0, result.err
    warnings = [line for line in result.err_lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "1 more masks are lossy" in warnings[0] and "PNG" in warnings[0]
    # A PNG mask: no such warning.
    fg, bg_file, mask = write_scene(tmp_path / "single", make_scene(seed=3))
    result = run("harmonize", fg, bg_file, mask, "-o", tmp_path / "single.png", "--params", params_file)
    assert result.code == 0 and not any("lossy" in line for line in result.err_lines)


def make_folder_inputs(root: Path, stems=("a", "b", "c")):
    """fgs/STEM.png, masks/STEM.png and one shared bg.png; returns (fgs, bg, masks, scenes)."""
    scenes = {stem: make_scene(seed=20 + i) for i, stem in enumerate(stems)}
    bg_scene = make_scene(seed=99)
    for stem, scene in scenes.items():
        scene.bg = bg_scene.bg
        write_image(root / "fgs" / f"{stem}.png", scene.fg)
        write_image(root / "masks" / f"{stem}.png", scene.mask)
    write_image(root / "bg.png", bg_scene.bg)
    return root / "fgs", root / "bg.png", root / "masks", scenes


def test_folder_matches_stems_and_keeps_going_past_a_bad_item(run, tmp_path, params_file):
    fgs, bg, masks, scenes = make_folder_inputs(tmp_path, ("a", "b", "c"))
    (fgs / "c.png").write_bytes((fgs / "c.png").read_bytes()[:200])  # truncated
    write_image(masks / "d.png", scenes["a"].mask)  # no foreground "d": unmatched
    (fgs / "notes.txt").write_text("not an image")  # ignored
    out = tmp_path / "out"
    result = run("harmonize", fgs, bg, masks, "-o", out, "--params", params_file)
    assert result.code == 1
    assert files_in(out) == ["a.png", "b.png"]
    lines = result.err_lines
    assert sum(line.startswith("failed:") for line in lines) == 1
    assert any("c.png" in line and "truncated" in line for line in lines if line.startswith("failed:"))
    assert any(line.startswith("warning:") and "d.png" in line for line in lines)
    assert any("2 done, 0 skipped, 1 failed, 1 unmatched" in line for line in lines)
    assert lines[-1].startswith("error:") and "1 of 3" in lines[-1]
    for stem in ("a", "b"):
        assert_background_exact(read_image(out / f"{stem}.png"), scenes[stem])


def test_folder_results_equal_single_runs(run, tmp_path, active_weights):
    fgs, bg, masks, _ = make_folder_inputs(tmp_path, ("a", "b", "c", "d"))
    out = tmp_path / "out"
    assert run("harmonize", fgs, bg, masks, "-o", out, "--weights", active_weights, "--ext", "tif").code == 0
    assert files_in(out) == ["a.tif", "b.tif", "c.tif", "d.tif"]
    single = tmp_path / "single_b.tif"
    assert run("harmonize", fgs / "b.png", bg, masks / "b.png", "-o", single, "--weights", active_weights).code == 0
    np.testing.assert_array_equal(read_image(out / "b.tif"), read_image(single))


def test_folder_existing_outputs_skip_overwrite(run, tmp_path, params_file):
    fgs, bg, masks, _ = make_folder_inputs(tmp_path, ("a", "b"))
    out = tmp_path / "out"
    assert run("harmonize", fgs, bg, masks, "-o", out, "--params", params_file, "-q").code == 0
    before = {p: (out / p).stat().st_mtime_ns for p in files_in(out)}
    again = run("harmonize", fgs, bg, masks, "-o", out, "--params", params_file)
    assert again.code == 1 and sum("already exists" in line for line in again.err_lines) == 2
    skipped = run("harmonize", fgs, bg, masks, "-o", out, "--params", params_file, "--skip-existing")
    assert skipped.code == 0 and any("0 done, 2 skipped, 0 failed" in line for line in skipped.err_lines)
    assert {p: (out / p).stat().st_mtime_ns for p in files_in(out)} == before
    assert run("harmonize", fgs, bg, masks, "-o", out, "--params", params_file, "--overwrite").code == 0


def test_folder_inputs_with_an_image_name_as_output_is_a_usage_error(run, tmp_path, params_file):
    """-o out.png with folder inputs used to create a folder called out.png; an existing folder of that name is fine."""
    fgs, bg, masks, _ = make_folder_inputs(tmp_path, ("a", "b"))
    result = run("harmonize", fgs, bg, masks, "-o", tmp_path / "single.png", "--params", params_file)
    assert result.code == 2 and "must be a folder" in result.err_lines[-1] and "--ext" in result.err_lines[-1]
    assert not (tmp_path / "single.png").exists()
    curves = run("curves", fgs, bg, masks, "-o", tmp_path / "look.json")
    assert curves.code == 2 and "--format" in curves.err_lines[-1]
    assert not (tmp_path / "look.json").exists()
    (tmp_path / "made.png").mkdir()
    assert run("harmonize", fgs, bg, masks, "-o", tmp_path / "made.png", "--params", params_file, "-q").code == 0
    assert files_in(tmp_path / "made.png") == ["a.png", "b.png"]


def test_folder_ext_and_own_extensions(run, tmp_path, params_file):
    scenes = {stem: make_scene(seed=30 + i) for i, stem in enumerate("xyz")}
    comps, masks = tmp_path / "comps", tmp_path / "masks"
    for stem, ext in zip("xyz", (".png", ".tif", ".jpg")):
        write_image(comps / f"{stem}{ext}", scenes[stem].composite())
        write_image(masks / f"{stem}.png", scenes[stem].mask)
    out = tmp_path / "out"
    assert run("harmonize", comps, "--mask", masks, "-o", out, "--params", params_file).code == 0
    assert files_in(out) == ["x.png", "y.tif", "z.jpg"]
    out_jpg = tmp_path / "out_jpg"
    assert run("harmonize", comps, "--mask", masks, "-o", out_jpg, "--params", params_file, "--ext", ".JPG").code == 0
    assert files_in(out_jpg) == ["x.jpg", "y.jpg", "z.jpg"]


def test_folder_alpha_form(run, tmp_path, params_file):
    fgs, bgs = tmp_path / "fgs", tmp_path / "bgs"
    for i, stem in enumerate(("one", "two")):
        scene = make_scene(seed=40 + i)
        write_image(fgs / f"{stem}.png", scene.fg, scene.mask)
        write_image(bgs / f"{stem}.png", scene.bg)
    out = tmp_path / "out"
    result = run("harmonize", fgs, bgs, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    assert files_in(out) == ["one.png", "two.png"]


# ------------------------------------------------------------------------------------------- refusals


def _bad_inputs(tmp_path: Path, case: str):
    """Inputs for one bad case: returns (args, expected fragment)."""
    scene = make_scene(seed=50)
    fg, bg, mask = write_scene(tmp_path, scene)
    if case == "missing":
        return [tmp_path / "nope.png", bg, mask], "nope.png"
    if case == "empty":
        fg.write_bytes(b"")
        return [fg, bg, mask], "empty"
    if case == "truncated":
        fg.write_bytes(fg.read_bytes()[:300])
        return [fg, bg, mask], "truncated"
    if case == "not-an-image":
        fg.write_text("hello, I am text")
        return [fg, bg, mask], "not an image"
    if case == "size-mismatch":
        write_image(bg, make_scene(seed=51, size=(40, 64)).bg)
        return [fg, bg, mask], "same size"
    if case == "mask-size-mismatch":
        write_image(mask, make_scene(seed=51, size=(40, 64)).mask)
        return [fg, bg, mask], "mask.png"
    if case == "sideways-background":  # a phone plate stored sideways without its EXIF orientation
        write_image(bg, make_scene(seed=51, size=(64, 48)).bg)
        return [fg, bg, mask], "width and height swapped"
    if case == "sideways-mask":
        write_image(mask, make_scene(seed=51, size=(64, 48)).mask)
        return [fg, bg, mask], "width and height swapped"
    if case == "all-foreground":
        write_image(mask, np.full(scene.mask.shape, 255, np.uint8))
        return [fg, bg, mask], "foreground everywhere"
    if case == "no-alpha":
        return [fg, bg], "no alpha"
    if case == "bad-params":
        bad = tmp_path / "bad.json"
        bad.write_text('{"version": 1, "curves": {"red": {"x": [0, 1], "y": [0, 2]}}}')
        return [fg, bg, mask, "--params", bad], "bad.json"
    if case == "missing-params":
        return [fg, bg, mask, "--params", tmp_path / "none.json"], "none.json"
    if case == "garbage-weights":
        weights = tmp_path / "w.safetensors"
        weights.write_bytes(os.urandom(256))
        return [fg, bg, mask, "--weights", weights], "w.safetensors"
    if case == "foreign-weights":
        from safetensors.numpy import save_file

        weights = tmp_path / "other.safetensors"
        save_file({"x": np.zeros(3, np.float32)}, str(weights))
        return [fg, bg, mask, "--weights", weights], "other.safetensors"
    if case == "too-many-pixels":
        return [fg, bg, mask, "--max-pixels", 1000], "megapixels"
    raise AssertionError(case)


BAD_CASES = [
    "missing", "empty", "truncated", "not-an-image", "size-mismatch", "mask-size-mismatch", "sideways-background",
    "sideways-mask", "all-foreground",
    "no-alpha", "bad-params", "missing-params", "garbage-weights", "foreign-weights", "too-many-pixels",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_inputs_fail_cleanly(run, tmp_path, identity_weights, case):
    args, fragment = _bad_inputs(tmp_path, case)
    if case not in ("garbage-weights", "foreign-weights") and "--params" not in args:
        args += ["--weights", identity_weights]
    out = tmp_path / "out" / "result.png"
    result = run("harmonize", *args, "-o", out)
    assert_one_error(result, 1, fragment)
    assert files_in(tmp_path / "out") == []


def test_cuda_without_gpu_is_an_error(run, tmp_path, identity_weights):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    fg, bg, mask = write_scene(tmp_path, make_scene())
    result = run("harmonize", fg, bg, mask, "-o", tmp_path / "out.png", "--weights", identity_weights, "--device", "cuda")
    assert_one_error(result, 1, "cuda")
    assert not (tmp_path / "out.png").exists()


def test_never_overwrites_an_input(run, tmp_path, params_file):
    scene = make_scene(seed=52)
    fg, bg, mask = write_scene(tmp_path, scene)
    before = fg.read_bytes()
    for flags in ((), ("--overwrite",)):
        result = run("harmonize", fg, bg, mask, "-o", fg, "--params", params_file, *flags)
        assert_one_error(result, 1, "input")
    alias = tmp_path / "sub" / ".." / "fg.png"
    assert_one_error(run("harmonize", fg, bg, mask, "-o", alias, "--params", params_file, "--overwrite"), 1, "input")
    assert fg.read_bytes() == before
    # nor the adjustment it applies
    edit = params_file.read_bytes()
    args = ("-o", tmp_path / "x.png", "--params", params_file, "--save-params", params_file, "--overwrite")
    assert_one_error(run("harmonize", fg, bg, mask, *args), 1, "input")
    assert params_file.read_bytes() == edit and not (tmp_path / "x.png").exists()
    # folder mode: -o naming an input folder
    fgs, bgf, masks, _ = make_folder_inputs(tmp_path / "f", ("a",))
    result = run("harmonize", fgs, bgf, masks, "-o", masks, "--params", params_file)
    assert_one_error(result, 1, "input folder")
    assert files_in(masks) == ["a.png"]


def test_existing_output_is_refused_then_skipped_or_overwritten(run, tmp_path, params_file):
    fg, bg, mask = write_scene(tmp_path, make_scene(seed=53))
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    assert_one_error(run("harmonize", fg, bg, mask, "-o", out, "--params", params_file), 1, "already exists")
    assert out.read_bytes() == b"precious"
    skipped = run("harmonize", fg, bg, mask, "-o", out, "--params", params_file, "--skip-existing")
    assert skipped.code == 0 and out.read_bytes() == b"precious"
    assert run("harmonize", fg, bg, mask, "-o", out, "--params", params_file, "--overwrite").code == 0
    assert read_image(out).shape == (48, 64, 3)


USAGE_CASES = [
    (["--strength", 3], "--strength"),
    (["--strength", -0.5], "--strength"),
    (["--shading-strength", 2.5], "--shading-strength"),
    (["--jpeg-quality", 0], "--jpeg-quality"),
    (["--jpeg-quality", 101], "--jpeg-quality"),
    (["--max-pixels", 0], "--max-pixels"),
    (["--device", "tpu"], "--device"),
    (["--skip-existing", "--overwrite"], "contradict"),
    (["--params", "p.json", "--weights", "w.safetensors"], "--weights"),
    (["--ext", "png"], "contradicts"),
]


@pytest.mark.parametrize("extra, fragment", USAGE_CASES)
def test_bad_option_values_exit_2(run, tmp_path, extra, fragment):
    fg, bg, mask = write_scene(tmp_path, make_scene())
    result = run("harmonize", fg, bg, mask, "-o", tmp_path / "out" / "x.jpg", *extra)
    assert_one_error(result, 2, fragment)
    assert files_in(tmp_path / "out") == []


@pytest.mark.parametrize(
    "layout, fragment",
    [
        ("one-input", "--mask"),
        ("mask-twice", "twice"),
        ("no-output", "--output"),
        ("bad-extension", ".gif"),
        ("no-extension", "extension"),
        ("save-params-folder", "--save-params"),
        ("save-params-ext", "--save-params"),
        ("ext-folder", "gif"),
    ],
)
def test_bad_command_lines_exit_2(run, tmp_path, layout, fragment):
    fg, bg, mask = write_scene(tmp_path, make_scene())
    fgs, bgf, masks, _ = make_folder_inputs(tmp_path / "f", ("a",))
    out = tmp_path / "out"
    args = {
        "one-input": [fg, "-o", out / "x.png"],
        "mask-twice": [fg, bg, mask, "--mask", mask, "-o", out / "x.png"],
        "no-output": [fg, bg, mask],
        "bad-extension": [fg, bg, mask, "-o", out / "x.gif"],
        "no-extension": [fg, bg, mask, "-o", out / "x"],
        "save-params-folder": [fgs, bgf, masks, "-o", out, "--save-params", out / "p.json"],
        "save-params-ext": [fg, bg, mask, "-o", out / "x.png", "--save-params", out / "p.txt"],
        "ext-folder": [fgs, bgf, masks, "-o", out, "--ext", "gif"],
    }[layout]
    assert_one_error(run("harmonize", *args), 2, fragment)
    assert files_in(out) == []


@pytest.mark.parametrize("command", ["harmonize", "curves"])
def test_output_dash_is_not_standard_output(run, tmp_path, monkeypatch, params_file, command):
    # "-o -" means stdout to most tools; harmcli writes files, so it says so instead of making a file or folder "-".
    monkeypatch.chdir(tmp_path)
    fg, bg, mask = write_scene(tmp_path, make_scene())
    fgs, bgf, masks, _ = make_folder_inputs(tmp_path / "f", ("a",))
    extra = ["--params", params_file] if command == "harmonize" else []
    for inputs in ([fg, bg, mask], [fgs, bgf, masks]):
        result = run(command, *inputs, "-o", "-", *extra)
        assert_one_error(result, 2, "-o -", "standard output")
        assert result.out == "" and not (tmp_path / "-").exists()


# ------------------------------------------------------------------------------------------- end to end, startup


def _python(*args, timeout=120):
    env = {**os.environ, **TORCH_THREADS_ENV}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env)


def test_end_to_end_subprocess(tmp_path, identity_weights):
    scene = make_scene(seed=60)
    fg, bg, mask = write_scene(tmp_path, scene)
    out = tmp_path / "out.png"
    inputs = (str(fg), str(bg), str(mask))
    done = _python("-m", "harmcli", "harmonize", *inputs, "-o", str(out), "--weights", str(identity_weights))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "wrote" in done.stderr
    np.testing.assert_array_equal(read_image(out), scene.composite())
    fg.write_bytes(fg.read_bytes()[:300])
    failed = _python("-m", "harmcli", "harmonize", str(fg), str(bg), str(mask), "-o", str(tmp_path / "x.png"))
    assert failed.returncode == 1
    assert len(failed.stderr.strip().splitlines()) == 1 and "Traceback" not in failed.stderr
    assert "fg.png" in failed.stderr and not (tmp_path / "x.png").exists()


def test_help_and_version_do_not_import_torch():
    code = (
        "import sys, time\n"
        "from harmcli.cli.app import main\n"
        "for argv in (['--help'], ['--version'], ['harmonize', '--help'], ['curves', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (argv, exc.code)\n"
        "heavy = sorted(m for m in ('torch', 'cv2', 'numpy', 'harmcli.pipeline', 'harmcli.io.images') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert "--shading-strength" in done.stdout and "--format" in done.stdout
    # How fast that makes it is `harmcli bench`'s business (a timed assertion here fails on a busy machine).
    version = _python("-m", "harmcli", "--version")
    assert version.returncode == 0 and version.stdout.startswith("harmcli ")


def test_help_texts_match_io_constants():
    from harmcli.cli import harmonize_cmd
    from harmcli.io.adjustment_files import EXPORT_EXTENSIONS
    from harmcli.io.images import DEFAULT_MAX_PIXELS

    assert harmonize_cmd.DEFAULT_MAX_PIXELS == DEFAULT_MAX_PIXELS
    assert {f".{f}" for f in harmonize_cmd.CURVES_FORMATS} <= set(EXPORT_EXTENSIONS)


# ------------------------------------------------------------------------------------------- GPU


def test_cuda_matches_cpu(run, tmp_path, active_weights):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    fg, bg, mask = write_scene(tmp_path, make_scene(seed=70))
    cpu, gpu = tmp_path / "cpu.png", tmp_path / "gpu.png"
    assert run("harmonize", fg, bg, mask, "-o", cpu, "--weights", active_weights, "--device", "cpu").code == 0
    assert run("harmonize", fg, bg, mask, "-o", gpu, "--weights", active_weights, "--device", "cuda").code == 0
    assert np.abs(read_image(cpu).astype(int) - read_image(gpu).astype(int)).max() <= 1
