"""``harmcli curves``: every export format, folders, and the same refusals as ``harmonize``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from . import (  # noqa: F401  (fixtures)
    active_weights,
    assert_one_error,
    files_in,
    identity_weights,
    make_scene,
    read_image,
    run,
    write_image,
    write_scene,
)


def test_curves_writes_all_five_formats(run, tmp_path, active_weights):
    from harmcli.io.adjustment_files import load_adjustment, read_shading_tiff

    fg, bg, mask = write_scene(tmp_path, make_scene(seed=1))
    out = tmp_path / "out"
    for ext in ("json", "cube", "acv", "tif", "png"):
        result = run("curves", fg, bg, mask, "-o", out / f"adj.{ext}", "--weights", active_weights)
        assert result.code == 0, result.err
        assert result.out == ""
    assert files_in(out) == ["adj.acv", "adj.cube", "adj.json", "adj.png", "adj.shading.tif", "adj.tif"]

    doc = json.loads((out / "adj.json").read_text())
    assert doc["shading"] == "adj.shading.tif" and set(doc["curves"]) == {"red", "green", "blue"}
    adjustment = load_adjustment(out / "adj.json")
    assert not np.allclose(adjustment.curve_y, adjustment.curve_x, atol=0.01)  # the network changed something
    assert adjustment.shading is not None and adjustment.shading.min() > 1.0  # the nudged head brightens
    np.testing.assert_allclose(read_shading_tiff(out / "adj.tif"), adjustment.shading, rtol=1e-4)
    cube = load_adjustment(out / "adj.cube")
    np.testing.assert_allclose(cube.lut(256), adjustment.lut(256), atol=2e-3)
    assert "LUT_1D_SIZE" in (out / "adj.cube").read_text()
    assert load_adjustment(out / "adj.acv").curve_x.shape[0] == 3
    plot = cv2.imread(str(out / "adj.png"))
    assert plot is not None and plot.shape[0] > 100 and plot.std() > 10


def test_curves_identity_model_gives_identity_curves(run, tmp_path, identity_weights):
    from harmcli.io.adjustment_files import load_adjustment

    fg, bg, mask = write_scene(tmp_path, make_scene(seed=2))
    out = tmp_path / "id.json"
    assert run("curves", fg, bg, mask, "-o", out, "--weights", identity_weights).code == 0
    adjustment = load_adjustment(out)
    np.testing.assert_allclose(adjustment.curve_y, adjustment.curve_x, atol=1e-6)
    np.testing.assert_allclose(adjustment.shading, 1.0, atol=1e-4)


def test_curves_strength_zero_is_identity(run, tmp_path, active_weights):
    from harmcli.io.adjustment_files import load_adjustment

    fg, bg, mask = write_scene(tmp_path, make_scene(seed=3))
    out = tmp_path / "off.json"
    args = ("--strength", 0, "--shading-strength", 0)
    assert run("curves", fg, bg, mask, "-o", out, "--weights", active_weights, *args).code == 0
    assert load_adjustment(out).is_identity
    assert not (tmp_path / "off.shading.tif").exists()


def test_curves_folder_with_format(run, tmp_path, active_weights):
    comps, masks = tmp_path / "comps", tmp_path / "masks"
    for i, stem in enumerate(("p", "q", "r")):
        scene = make_scene(seed=10 + i)
        write_image(comps / f"{stem}.jpg", scene.composite())
        write_image(masks / f"{stem}.png", scene.mask)
    out = tmp_path / "luts"
    result = run("curves", comps, "--mask", masks, "-o", out, "--format", "cube", "--weights", active_weights)
    assert result.code == 0, result.err
    assert files_in(out) == ["p.cube", "q.cube", "r.cube"]
    assert any("3 done, 0 skipped, 0 failed" in line for line in result.err_lines)
    default = tmp_path / "json"
    assert run("curves", comps, "--mask", masks, "-o", default, "--weights", active_weights, "-q").code == 0
    assert files_in(default) == sorted([f"{s}.json" for s in "pqr"] + [f"{s}.shading.tif" for s in "pqr"])
    skipped = run("curves", comps, "--mask", masks, "-o", default, "--weights", active_weights, "--skip-existing")
    assert skipped.code == 0 and any("3 skipped" in line for line in skipped.err_lines)


def test_curves_empty_mask_writes_identity_with_warning(run, tmp_path, identity_weights):
    from harmcli.io.adjustment_files import load_adjustment

    scene = make_scene(seed=4)
    scene.mask[:] = 0
    fg, bg, mask = write_scene(tmp_path, scene)
    out = tmp_path / "empty.json"
    result = run("curves", fg, bg, mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0
    assert any(line.startswith("warning:") and "empty" in line for line in result.err_lines)
    assert load_adjustment(out).is_identity


def test_curves_existing_json_or_its_shading_map_is_refused(run, tmp_path, identity_weights):
    fg, bg, mask = write_scene(tmp_path, make_scene(seed=5))
    (tmp_path / "adj.shading.tif").write_bytes(b"keep me")
    result = run("curves", fg, bg, mask, "-o", tmp_path / "adj.json", "--weights", identity_weights)
    assert_one_error(result, 1, "adj.shading.tif", "already exists")
    assert not (tmp_path / "adj.json").exists()
    assert (tmp_path / "adj.shading.tif").read_bytes() == b"keep me"


@pytest.mark.parametrize(
    "extra, code, fragment",
    [
        (["-o", "OUT/adj.gif"], 2, ".gif"),
        (["-o", "OUT/adj.json", "--format", "cube"], 2, "contradicts"),
        (["-o", "OUT/adj.json", "--strength", 5], 2, "--strength"),
        (["-o", "OUT/adj.json", "--weights", "W"], 1, "weights"),
        (["-o", "OUT/adj.json", "--max-pixels", 10], 1, "megapixels"),
    ],
)
def test_curves_refusals(run, tmp_path, extra, code, fragment):
    fg, bg, mask = write_scene(tmp_path, make_scene(seed=6))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    args = [str(garbage) if a == "W" else str(a).replace("OUT", str(tmp_path / "out")) for a in extra]
    assert_one_error(run("curves", fg, bg, mask, *args), code, fragment)
    assert files_in(tmp_path / "out") == []


def test_curves_alpha_form(run, tmp_path, identity_weights):
    scene = make_scene(seed=7)
    fg, bg, _ = write_scene(tmp_path, scene, alpha=True)
    assert read_image(fg).shape[2] == 4
    out = tmp_path / "adj.acv"
    assert run("curves", fg, bg, "-o", out, "--weights", identity_weights).code == 0
    assert out.stat().st_size > 4
