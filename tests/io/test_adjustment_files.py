"""Adjustment exports: every format round-trips, hand edits are validated, the identity stays bit-exact."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import tifffile

from harmcli.errors import AdjustmentError, ImageWriteError
from harmcli.io.adjustment_files import (
    ACV_MAX_POINTS,
    ACV_MIN_SPACING,
    CUBE_SIZE,
    EXPORT_EXTENSIONS,
    acv_points,
    code_to_gain,
    gain_to_code,
    load_adjustment,
    photoshop_curve,
    render_curves_plot,
    save_adjustment,
)
from harmcli.io.images import read_image
from harmcli.ops.adjustment import Adjustment
from harmcli.ops.apply import apply_adjustment


def smooth_curves(n_points: int = 32) -> np.ndarray:
    """Three smooth, distinct curves like the networks predict: (3, n_points) on the uniform grid."""
    g = np.linspace(0.0, 1.0, n_points)
    red = np.clip(g**0.8 + 0.04 * np.sin(g * 6.0), 0.0, 1.0)
    green = g**1.25
    blue = 0.5 + 0.5 * np.tanh((g - 0.5) * 3.0) / np.tanh(1.5)
    return np.stack([red, green, blue]).astype(np.float32)


def gain_map(height: int = 12, width: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.exp2(1.6 * np.sin(x / 4.0) * np.cos(y / 5.0)).astype(np.float32)  # ~1/3 .. 3


@pytest.fixture
def adjustment() -> Adjustment:
    return Adjustment.from_uniform(smooth_curves(), gain_map())


def test_export_extensions():
    assert EXPORT_EXTENSIONS == (".json", ".cube", ".acv", ".tif", ".tiff", ".png")


# ------------------------------------------------------------------------------------------ JSON


def test_json_roundtrip_with_shading(tmp_path, adjustment):
    written = save_adjustment(adjustment, tmp_path / "adj.json")
    assert written == [tmp_path / "adj.json", tmp_path / "adj.shading.tif"]
    doc = json.loads((tmp_path / "adj.json").read_text())
    assert doc["version"] == 1 and doc["shading"] == "adj.shading.tif"
    assert set(doc["curves"]) == {"red", "green", "blue"} and len(doc["curves"]["red"]["x"]) == 32
    loaded = load_adjustment(tmp_path / "adj.json")
    np.testing.assert_allclose(loaded.curve_x, adjustment.curve_x, atol=6e-7)
    np.testing.assert_allclose(loaded.curve_y, adjustment.curve_y, atol=6e-7)
    assert loaded.shading.shape == adjustment.shading.shape
    np.testing.assert_allclose(loaded.shading, adjustment.shading, atol=1e-3)


def test_json_without_shading(tmp_path):
    adj = Adjustment.from_uniform(smooth_curves())
    assert save_adjustment(adj, tmp_path / "flat.json") == [tmp_path / "flat.json"]
    assert json.loads((tmp_path / "flat.json").read_text())["shading"] is None
    assert not (tmp_path / "flat.shading.tif").exists()
    assert load_adjustment(tmp_path / "flat.json").shading is None


def test_json_loads_from_another_working_folder(tmp_path, adjustment, monkeypatch):
    save_adjustment(adjustment, tmp_path / "sub" / "adj.json")
    monkeypatch.chdir(tmp_path)
    assert load_adjustment("sub/adj.json").shading is not None


def write_json(path, doc) -> None:
    path.write_text(json.dumps(doc))


def identity_doc(xs=(0, 0.25, 0.6, 1)) -> dict:
    return {"version": 1, "curves": {c: {"x": list(xs), "y": list(xs)} for c in ("red", "green", "blue")}, "shading": None}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_identity_edited_json_is_bit_exact(tmp_path, dtype):
    write_json(tmp_path / "edited.json", identity_doc(xs=(0, 0.032258, 0.1, 0.5, 0.77, 1)))
    adj = load_adjustment(tmp_path / "edited.json")
    assert adj.is_identity
    rng = np.random.default_rng(3)
    image = (rng.random((20, 30, 3)) * np.iinfo(dtype).max).astype(dtype)
    mask = rng.random((20, 30)).astype(np.float32)
    np.testing.assert_array_equal(apply_adjustment(image, mask, adj), image)


def test_json_saved_identity_is_identity(tmp_path):
    save_adjustment(Adjustment.identity(), tmp_path / "id.json")
    assert load_adjustment(tmp_path / "id.json").is_identity


def test_json_inline_shading(tmp_path):
    doc = identity_doc()
    doc["shading"] = [[1.0, 2.0, 0.5], [1.0, 1.0, 1.5]]
    write_json(tmp_path / "inline.json", doc)
    np.testing.assert_allclose(load_adjustment(tmp_path / "inline.json").shading, doc["shading"])


def test_json_channels_with_different_point_counts(tmp_path):
    doc = identity_doc()
    doc["curves"]["red"] = {"x": [0, 0.5, 1], "y": [0, 0.7, 1]}
    write_json(tmp_path / "uneven.json", doc)
    adj = load_adjustment(tmp_path / "uneven.json")
    probe = np.linspace(0, 1, 101)
    np.testing.assert_allclose(adj.evaluate(probe)[:, 0], np.interp(probe, [0, 0.5, 1], [0, 0.7, 1]), atol=1e-6)
    np.testing.assert_allclose(adj.evaluate(probe)[:, 1], probe, atol=1e-6)


def _broken(change):
    doc = identity_doc()
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        (_broken(lambda d: d.pop("version")), "missing key 'version'"),
        (_broken(lambda d: d.update(version=2)), "unsupported version 2"),
        (_broken(lambda d: d.pop("curves")), "missing key 'curves'"),
        (_broken(lambda d: d["curves"].pop("green")), "missing key 'curves.green'"),
        (_broken(lambda d: d["curves"]["blue"].pop("y")), "missing key 'curves.blue.y'"),
        (_broken(lambda d: d["curves"]["red"].update(x=[0, 0.6, 0.25, 1])), "strictly increasing"),
        (_broken(lambda d: d["curves"]["red"].update(x=[0, 0.25, 0.25, 1])), "strictly increasing"),
        (_broken(lambda d: d["curves"]["red"].update(y=[0, 0.25, 1.5, 1])), r"\[0, 1\]"),
        (_broken(lambda d: d["curves"]["red"].update(y=[0, -0.1, 0.5, 1])), r"\[0, 1\]"),
        (_broken(lambda d: d["curves"]["red"].update(x=[0, 0.25, 0.6, 0.9])), "end at 1"),
        (_broken(lambda d: d["curves"]["red"].update(y=[0, 1])), "'x' has 4 values but 'y' has 2"),
        (_broken(lambda d: d["curves"]["red"].update(y=["0", 0.2, 0.5, 1])), "list of numbers"),
        (_broken(lambda d: d.update(shading="missing.shading.tif")), "does not exist"),
        (_broken(lambda d: d.update(shading=[[1.0, 2.0], [1.0]])), "equally long"),
        (_broken(lambda d: d.update(shading=[[1.0, -2.0]])), "gains"),
        (_broken(lambda d: d.update(shading=42)), "'shading' must be"),
        (_broken(lambda d: d.update(curvs={})), "unknown key"),
    ],
)
def test_invalid_json_raises_adjustment_error(tmp_path, doc, message):
    path = tmp_path / "bad.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(AdjustmentError, match=message) as info:
        load_adjustment(path)
    assert "\n" not in str(info.value)


def test_missing_adjustment_file(tmp_path):
    with pytest.raises(AdjustmentError, match="does not exist"):
        load_adjustment(tmp_path / "nope.json")


def test_unknown_load_and_save_extensions(tmp_path, adjustment):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(AdjustmentError, match=r"\.json"):
        load_adjustment(tmp_path / "a.txt")
    with pytest.raises(ImageWriteError, match=r"\.cube"):
        save_adjustment(adjustment, tmp_path / "a.xml")


def test_save_refuses_to_overwrite_an_input(tmp_path, adjustment):
    source = tmp_path / "photo.png"
    source.write_bytes(b"original")
    with pytest.raises(ImageWriteError, match="input"):
        save_adjustment(adjustment, source, protect=[source])
    with pytest.raises(ImageWriteError, match="input"):  # the shading TIFF beside a JSON counts too
        save_adjustment(adjustment, tmp_path / "x.json", protect=[tmp_path / "x.shading.tif"])
    with pytest.raises(ImageWriteError, match="input"):  # nothing written, not even the shading TIFF
        save_adjustment(adjustment, tmp_path / "y.json", protect=[tmp_path / "y.json"])
    assert source.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


# ------------------------------------------------------------------------------------------ .cube


def test_cube_file_layout(tmp_path, adjustment):
    save_adjustment(adjustment, tmp_path / "look.cube")
    lines = (tmp_path / "look.cube").read_text().splitlines()
    keywords = [line for line in lines if line and not line.startswith("#") and line[0].isalpha()]
    assert keywords == ['TITLE "look"', f"LUT_1D_SIZE {CUBE_SIZE}", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    table = [line for line in lines if line and (line[0].isdigit())]
    assert len(table) == CUBE_SIZE == 1024
    values = np.array([[float(v) for v in line.split()] for line in table])
    assert values.shape == (1024, 3) and values.min() >= 0 and values.max() <= 1
    np.testing.assert_allclose(values[0], adjustment.evaluate([0.0])[0], atol=1e-6)


def test_cube_roundtrip(tmp_path, adjustment):
    save_adjustment(adjustment, tmp_path / "look.cube")
    loaded = load_adjustment(tmp_path / "look.cube")
    assert loaded.shading is None and loaded.n_points == CUBE_SIZE
    assert np.abs(loaded.lut(4096) - adjustment.lut(4096)).max() <= 1 / 1023


def test_cube_other_sizes_and_keywords(tmp_path):
    text = "# hand made\nTITLE \"tiny\"\nLUT_1D_INPUT_RANGE 0 1\nLUT_1D_SIZE 3\n0 0 0\n0.25 0.5 0.75\n1 1 1\n"
    (tmp_path / "tiny.cube").write_text(text)
    adj = load_adjustment(tmp_path / "tiny.cube")
    np.testing.assert_allclose(adj.evaluate([0.5])[0], [0.25, 0.5, 0.75], atol=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 8, "3D LUT"),
        ("LUT_1D_SIZE 3\n0 0 0\n1 1 1\n", "3 but the file has 2"),
        ("0 0 0\n1 1 1\n", "no LUT_1D_SIZE"),
        ("LUT_1D_SIZE 2\n0 0 0\n1 1 x\n", "line 3"),
        ("LUT_1D_SIZE 2\n0 0 0\n1 1.5 1\n", r"\[0, 1\]"),
        ("LUT_1D_SIZE 2\nDOMAIN_MAX 2 2 2\n0 0 0\n1 1 1\n", "domain"),
    ],
)
def test_invalid_cube(tmp_path, text, message):
    (tmp_path / "bad.cube").write_text(text)
    with pytest.raises(AdjustmentError, match=message):
        load_adjustment(tmp_path / "bad.cube")


# ------------------------------------------------------------------------------------------ .acv


def read_acv_curves(data: bytes) -> tuple[int, list[list[tuple[int, int]]]]:
    version, count = struct.unpack_from(">hh", data, 0)
    pos, curves = 4, []
    for _ in range(count):
        (n,) = struct.unpack_from(">h", data, pos)
        values = struct.unpack_from(f">{2 * n}h", data, pos + 2)
        curves.append([(values[2 * i + 1], values[2 * i]) for i in range(n)])  # stored as (output, input)
        pos += 2 + 4 * n
    assert pos == len(data)
    return version, curves


def natural_spline(points, inputs) -> np.ndarray:
    """Reference: the natural cubic spline through ``points`` from its 4(n-1) polynomial coefficients, solved as one
    dense linear system (values at both ends of each piece, matching first and second derivatives inside, zero
    second derivative at the ends); clipped to 0..255, flat beyond the end points. Independent of harmcli's."""
    x = np.asarray([p[0] for p in points], float)
    y = np.asarray([p[1] for p in points], float)
    n = len(x) - 1
    rows, rhs = [], []

    def row(piece, coeffs):
        r = np.zeros(4 * n)
        r[4 * piece : 4 * piece + 4] = coeffs
        return r

    for i in range(n):  # piece i: a + b (t - x_i) + c (t - x_i)^2 + d (t - x_i)^3
        h = x[i + 1] - x[i]
        rows += [row(i, [1, 0, 0, 0]), row(i, [1, h, h * h, h**3])]
        rhs += [y[i], y[i + 1]]
        if i < n - 1:
            rows.append(row(i, [0, 1, 2 * h, 3 * h * h]) - row(i + 1, [0, 1, 0, 0]))
            rows.append(row(i, [0, 0, 2, 6 * h]) - row(i + 1, [0, 0, 2, 0]))
            rhs += [0, 0]
    rows += [row(0, [0, 0, 2, 0]), row(n - 1, [0, 0, 2, 6 * (x[n] - x[n - 1])])]
    rhs += [0, 0]
    coeffs = np.linalg.solve(np.array(rows), np.array(rhs, float)).reshape(n, 4)
    t = np.clip(np.asarray(inputs, float), x[0], x[-1])
    piece = np.clip(np.searchsorted(x, t, side="right") - 1, 0, n - 1)
    u = t - x[piece]
    a, b, c, d = coeffs[piece].T
    return np.clip(a + b * u + c * u**2 + d * u**3, 0, 255)


def test_photoshop_curve_is_the_natural_spline():
    points = [(0, 10), (40, 30), (90, 150), (160, 170), (230, 250), (255, 240)]
    levels = np.arange(256)
    np.testing.assert_allclose(photoshop_curve(np.array(points)), natural_spline(points, levels), atol=1e-9)
    # Two points: a straight line; end points moved inward: flat beyond them.
    np.testing.assert_allclose(photoshop_curve(np.array([(0, 0), (255, 128)])), levels * 128 / 255, atol=1e-9)
    inward = photoshop_curve(np.array([(20, 5), (128, 140), (235, 250)]))
    assert np.all(inward[:21] == 5) and np.all(inward[235:] == 250)


def test_acv_layout(tmp_path, adjustment):
    save_adjustment(adjustment, tmp_path / "look.acv")
    version, curves = read_acv_curves((tmp_path / "look.acv").read_bytes())
    assert version == 4 and len(curves) == 5
    assert curves[0] == [(0, 0), (255, 255)] and curves[4] == [(0, 0), (255, 255)]  # composite first, identity
    for c, points in enumerate(curves[1:4]):
        inputs = [p[0] for p in points]
        assert inputs[0] == 0 and inputs[-1] == 255 and 2 <= len(points) <= ACV_MAX_POINTS
        assert min(np.diff(inputs)) >= ACV_MIN_SPACING
        # Points are tuned for the spline, so they sit near (not on) our curve: the (input, output) order is
        # right and red/green/blue are in order.
        expected = adjustment.evaluate(np.array(inputs) / 255.0)[:, c] * 255
        assert np.abs(np.array([p[1] for p in points]) - expected).max() <= 3


def test_acv_export_matches_photoshop_within_one_level(tmp_path, adjustment):
    """Photoshop's spline through the exported points (evaluated here independently) is within 1 level of ours."""
    points, error = acv_points(adjustment)
    assert error <= 1.0
    save_adjustment(adjustment, tmp_path / "look.acv")
    _, curves = read_acv_curves((tmp_path / "look.acv").read_bytes())
    ours = adjustment.lut(256) * 255
    measured = max(np.abs(natural_spline(curves[c + 1], np.arange(256)) - ours[:, c]).max() for c in range(3))
    assert measured <= 1.0 and measured == pytest.approx(error, abs=1e-4)  # the reported error is the real one
    # harmcli reads the file back through the same spline: the same curve, within the reported error.
    loaded = load_adjustment(tmp_path / "look.acv")
    levels = np.arange(256) / 255.0
    difference = np.abs(loaded.evaluate(levels) - adjustment.evaluate(levels)).max() * 255
    assert difference <= error + 1e-3


def test_acv_s_curve_both_ways(tmp_path):
    """A Photoshop-style 4-point S-curve reads as the spline; our S-curve exported then read stays within 1 level."""
    s_curve = [(0, 0), (64, 48), (192, 208), (255, 255)]
    identity = [(0, 0), (255, 255)]
    (tmp_path / "s.acv").write_bytes(acv_file([identity, s_curve, s_curve, s_curve, identity]))
    loaded = load_adjustment(tmp_path / "s.acv")
    levels = np.arange(256)
    expected = natural_spline(s_curve, levels)
    np.testing.assert_allclose(loaded.lut(256)[:, 0] * 255, expected, atol=1e-3)
    # Reading the points as straight lines would be off by up to ~4 levels between them.
    assert np.abs(np.interp(levels, *zip(*s_curve)) - expected).max() > 3

    g = np.linspace(0.0, 1.0, 32)
    ours = Adjustment.from_uniform(np.tile(0.5 + 0.5 * np.tanh((g - 0.5) * 4.0) / np.tanh(2.0), (3, 1)))
    save_adjustment(ours, tmp_path / "ours.acv")
    back = load_adjustment(tmp_path / "ours.acv")
    assert np.abs(back.lut(256) - ours.lut(256)).max() * 255 <= 1.0
    _, curves = read_acv_curves((tmp_path / "ours.acv").read_bytes())
    assert np.abs(natural_spline(curves[1], levels) - ours.lut(256)[:, 0] * 255).max() <= 1.0


def test_acv_hard_curve_with_a_kink():
    """Highlights clipped at a sharp corner and a steep contrast ramp: a spline cannot turn a corner exactly,
    but tuned knots (two close ones each side of a corner) keep it within one level; the points a
    straight-line reading would choose are far off under the spline."""
    g = np.linspace(0.0, 1.0, 32)
    hard = Adjustment.from_uniform(np.stack([np.minimum(1.0, 1.6 * g), np.clip((g - 0.3) * 3.0, 0.0, 1.0), g**3]))
    points, error = acv_points(hard)
    ours = hard.lut(256) * 255
    measured = max(np.abs(natural_spline(p, np.arange(256)) - ours[:, c]).max() for c, p in enumerate(points))
    assert measured == pytest.approx(error, abs=1e-4)
    assert error <= 1.0
    assert all(len(p) <= ACV_MAX_POINTS and min(np.diff(p[:, 0])) >= ACV_MIN_SPACING for p in points)
    # The same number of points placed on our curve where straight lines fit best is far worse under the spline.
    from harmcli.io.adjustment_files import _linear_knots

    knots = _linear_knots(ours[:, 1])
    on_curve = [(k, round(ours[k, 1])) for k in knots]
    assert np.abs(natural_spline(on_curve, np.arange(256)) - ours[:, 1]).max() > 3 * error


def test_acv_identity_is_two_points(tmp_path):
    points, error = acv_points(Adjustment.identity())
    assert [len(p) for p in points] == [2, 2, 2] and error < 1e-3
    save_adjustment(Adjustment.identity(), tmp_path / "id.acv")
    assert load_adjustment(tmp_path / "id.acv").is_identity


def test_acv_jagged_curve_reports_larger_error():
    """Random kinks at all 32 points: no 16-point spline follows them; the error says so honestly."""
    rng = np.random.default_rng(1)
    y = np.sort(rng.random((3, 32)), axis=1)
    y[:, 0], y[:, -1] = 0, 1
    jagged = Adjustment.from_uniform(y)
    points, error = acv_points(jagged)
    assert all(len(p) <= ACV_MAX_POINTS for p in points)
    measured = max(np.abs(natural_spline(p, np.arange(256)) - jagged.lut(256)[:, c] * 255).max() for c, p in enumerate(points))
    assert measured == pytest.approx(error, abs=1e-4)
    assert 1.0 < error < 8.0


def acv_file(curves) -> bytes:
    out = struct.pack(">hh", 4, len(curves))
    for points in curves:
        out += struct.pack(">h", len(points)) + b"".join(struct.pack(">hh", y, x) for x, y in points)
    return out


def test_acv_photoshop_style_files(tmp_path):
    identity = [(0, 0), (255, 255)]
    # End points moved inward (black point at 20, white at 235): flat beyond them.
    red = [(20, 0), (128, 160), (235, 255)]
    (tmp_path / "ps.acv").write_bytes(acv_file([identity, red, identity, identity, identity]))
    adj = load_adjustment(tmp_path / "ps.acv")
    values = adj.evaluate(np.array([0, 10, 20, 128, 240, 255]) / 255.0) * 255
    np.testing.assert_allclose(values[:, 0], [0, 0, 0, 160, 255, 255], atol=1e-3)
    np.testing.assert_allclose(values[:, 1], [0, 10, 20, 128, 240, 255], atol=1e-3)
    # A composite curve applies after each channel's curve; a single-curve file applies to all channels.
    half = [(0, 0), (255, 128)]
    (tmp_path / "comp.acv").write_bytes(acv_file([half, [(0, 0), (255, 200)], identity, identity]))
    values = load_adjustment(tmp_path / "comp.acv").evaluate(np.array([1.0]))[0] * 255
    np.testing.assert_allclose(values, [200 * 128 / 255, 128, 128], atol=0.6)
    (tmp_path / "one.acv").write_bytes(struct.pack(">hh", 1, 1) + acv_file([half])[4:])
    np.testing.assert_allclose(load_adjustment(tmp_path / "one.acv").evaluate(np.array([1.0]))[0] * 255, [128] * 3, atol=1e-3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x04", "ends early"),
        (struct.pack(">hh", 7, 1), "version 7"),
        (acv_file([[(0, 0), (255, 255)]])[:-3], "ends early"),
        (acv_file([[(0, 0), (200, 100), (100, 200), (255, 255)]]), "strictly increasing"),
        (acv_file([[(0, 0), (255, 300)]]), r"\[0, 1\]"),
    ],
)
def test_invalid_acv(tmp_path, data, message):
    (tmp_path / "bad.acv").write_bytes(data)
    with pytest.raises(AdjustmentError, match=message):
        load_adjustment(tmp_path / "bad.acv")


# ------------------------------------------------------------------------------------------ shading .tif


def test_shading_code_mapping():
    assert int(gain_to_code(np.array([1.0]))[0]) == 32768
    assert code_to_gain(np.array([32768]))[0] == 1.0
    np.testing.assert_allclose(code_to_gain(gain_to_code(np.array([0.25, 0.5, 2.0, 4.0]))), [0.25, 0.5, 2.0, 4.0], rtol=1e-4)
    assert gain_to_code(np.array([1e-3, 1e3])).tolist() == [0, 65535]  # outside 1/16 .. 16: clipped


def test_tif_shading_roundtrip(tmp_path, adjustment):
    assert save_adjustment(adjustment, tmp_path / "gain.tif") == [tmp_path / "gain.tif"]
    with tifffile.TiffFile(tmp_path / "gain.tif") as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.shape == adjustment.shading.shape
        assert "2 ** ((value - 32768) / 8192)" in page.description
    loaded = load_adjustment(tmp_path / "gain.tif")
    np.testing.assert_allclose(loaded.shading, adjustment.shading, atol=1e-3)
    assert np.abs(loaded.curve_y - loaded.curve_x).max() == 0  # curves untouched


def test_tif_without_shading_is_flat(tmp_path):
    save_adjustment(Adjustment.from_uniform(smooth_curves()), tmp_path / "flat.tiff")
    codes = tifffile.imread(tmp_path / "flat.tiff")
    assert codes.shape == (64, 64) and np.all(codes == 32768)
    np.testing.assert_array_equal(load_adjustment(tmp_path / "flat.tiff").shading, np.ones((64, 64), np.float32))


def test_float_shading_tiff_is_read_as_gains(tmp_path):
    gains = np.array([[0.5, 1.0], [2.0, 3.0]], np.float32)
    tifffile.imwrite(tmp_path / "f.tif", gains)
    np.testing.assert_array_equal(load_adjustment(tmp_path / "f.tif").shading, gains)


def test_lzw_shading_tiff_as_editors_save_it(tmp_path, adjustment):
    """A painted map saved with LZW (the TIFF default of many editors, and of OpenCV): tifffile alone would need
    the optional imagecodecs package for it; it is read like the map harmcli wrote."""
    import cv2

    save_adjustment(adjustment, tmp_path / "gain.tif")
    codes = tifffile.imread(tmp_path / "gain.tif")
    for name, data in (("lzw16.tif", codes), ("lzw8.tif", (codes // 257).astype(np.uint8))):
        assert cv2.imwrite(str(tmp_path / name), data)
        with tifffile.TiffFile(tmp_path / name) as tif:
            assert tif.pages[0].compression == 5  # LZW
        loaded = load_adjustment(tmp_path / name).shading
        np.testing.assert_allclose(loaded, adjustment.shading, rtol=2e-3 if data.dtype == np.uint16 else 0.05)


# ------------------------------------------------------------------------------------------ .png plot


def test_png_plot(tmp_path, adjustment):
    assert save_adjustment(adjustment, tmp_path / "curves.png") == [tmp_path / "curves.png"]
    plot = read_image(tmp_path / "curves.png").rgb
    assert plot.shape == (600, 800, 3)
    assert (plot == 255).all(axis=2).mean() > 0.5  # mostly white background
    pixels = plot.reshape(-1, 3).astype(int)
    for color in ((214, 39, 40), (44, 160, 44), (31, 119, 180)):  # each curve is drawn in its colour
        assert (np.abs(pixels - color).sum(axis=1) < 30).sum() > 300
    # The shading thumbnail: a block of neutral grays that are neither white nor the grid.
    gray = (np.ptp(plot, axis=2) == 0) & (plot[..., 0] > 60) & (plot[..., 0] < 200)
    assert gray[:, 560:].sum() > 5000


def test_png_plot_without_shading():
    plot = render_curves_plot(Adjustment.from_uniform(smooth_curves()))
    gray = (np.ptp(plot, axis=2) == 0) & (plot[..., 0] > 60) & (plot[..., 0] < 200)
    assert plot.shape == (600, 800, 3) and gray[:, 560:].sum() < 2000


def test_acv_far_from_our_curves_is_reported(tmp_path, adjustment):
    rng = np.random.default_rng(1)
    y = np.sort(rng.random((3, 32)), axis=1)
    y[:, 0], y[:, -1] = 0, 1
    notes: list[str] = []
    save_adjustment(Adjustment.from_uniform(y), tmp_path / "jagged.acv", notes=notes)
    _, error = acv_points(Adjustment.from_uniform(y))
    assert len(notes) == 1 and "jagged.acv" in notes[0] and f"{error:.1f} levels" in notes[0]
    save_adjustment(adjustment, tmp_path / "smooth.acv", notes=notes)  # within one level: nothing to say
    assert len(notes) == 1
