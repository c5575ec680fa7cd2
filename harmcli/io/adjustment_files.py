"""Export and import of an :class:`~harmcli.ops.adjustment.Adjustment`, the format chosen by the extension.

- ``.json``: the curves (shortest exact float32 text) and, when there is one, the shading map as ``<stem>.shading.tif`` beside
  it (referenced by relative path; an inline list of lists of gains is accepted too). Loads back exactly.
- ``.cube``: a 1D LUT of 1024 entries (DaVinci Resolve, Premiere, ffmpeg ``lut1d``); curves only.
- ``.acv``: a Photoshop Curves preset, at most 16 points per channel, tuned so that the spline Photoshop draws
  through them follows our curve (see :func:`photoshop_curve`, :func:`acv_points`); read through the same
  spline; curves only.
- ``.tif`` / ``.tiff``: the shading map alone, 16-bit grayscale (flat 64 x 64 when there is none).
- ``.png``: a plot of the curves with a thumbnail of the shading map, for people (not loadable).

Shading TIFFs store the gain ``g`` of each cell as a 16-bit code ``v``:
``g = 2 ** ((v - 32768) / 8192)``, so 32768 is exactly gain 1, one stop is 8192 codes, and the range is
1/16 .. 16 (the networks predict 1/4 .. 4). Rounding to the nearest code changes a gain by at most 0.0043 %.
Float TIFFs are read as gains directly; 8-bit ones as ``v * 257``.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from harmcli.errors import AdjustmentError, ImageWriteError
from harmcli.io.images import atomic_write, check_not_protected
from harmcli.ops.adjustment import CHANNELS, SHADING_RANGE, Adjustment

EXPORT_EXTENSIONS = (".json", ".cube", ".acv", ".tif", ".tiff", ".png")
LOAD_EXTENSIONS = (".json", ".cube", ".acv", ".tif", ".tiff")

JSON_VERSION = 1
CUBE_SIZE = 1024
ACV_MAX_POINTS = 16
# Photoshop's Curves dialog keeps control points at least this far apart (in 0..255 input units).
ACV_MIN_SPACING = 4
FLAT_SHADING_SIZE = 64

SHADING_CODE_ONE = 32768
SHADING_CODES_PER_STOP = 8192
SHADING_DESCRIPTION = (
    "harmcli shading gain map: gain = 2 ** ((value - 32768) / 8192); value 32768 = gain 1, "
    "8192 per stop, range 1/16 .. 16"
)



def save_adjustment(
    adj: Adjustment,
    path: str | os.PathLike,
    *,
    protect: Iterable[str | os.PathLike] = (),
    overwrite: bool = True,
    notes: list[str] | None = None,
) -> list[Path]:
    """Write ``adj`` in the format named by ``path``'s extension (see the module docstring).

    Every file is written atomically and none may be one of ``protect`` (the inputs). A ``.json`` with a
    shading map also writes ``<stem>.shading.tif`` beside it (first, so the JSON never points to nothing; if
    the JSON then fails, the map is removed again: both or neither). ``overwrite`` False: an existing file
    (also one that appears meanwhile) raises OutputExistsError instead of being replaced. ``notes``, when given,
    receives a line when a ``.acv`` cannot follow the curves within :data:`ACV_NOTE_LEVELS`.

    Returns:
        The files written, the requested one first.

    Raises:
        ImageWriteError: unknown extension, a protected path, or a disk error.
    """
    path = Path(path)
    protect = tuple(protect)
    ext = path.suffix.lower()
    if ext == ".json":
        written = []
        shading_ref = None
        if adj.shading is not None:
            shading_path = path.with_name(f"{path.stem}.shading.tif")
            check_not_protected(path, protect)  # before writing anything
            written.append(_write_shading_tiff(adj.shading, shading_path, protect, overwrite))
            shading_ref = shading_path.name
        try:
            atomic_write(
                path, lambda fh: fh.write(_json_text(adj, shading_ref).encode("utf-8")), protect=protect, overwrite=overwrite
            )
        except BaseException:
            for done in written:
                done.unlink(missing_ok=True)
            raise
        return [path, *written]
    if ext == ".cube":
        text = _cube_text(adj, title=path.stem)
        # UTF-8: a title from a non-ASCII file name (Resolve and Premiere read UTF-8 .cube files).
        return [atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), protect=protect, overwrite=overwrite)]
    if ext == ".acv":
        data, error = _acv_bytes(adj)
        if notes is not None and error > ACV_NOTE_LEVELS:
            notes.append(
                f"{path}: Photoshop will draw these curves up to {error:.1f} levels (of 255) from harmcli's; "
                "16 Photoshop points cannot follow bends this sharp (.json or .cube keep them exactly)"
            )
        return [atomic_write(path, lambda fh: fh.write(data), protect=protect, overwrite=overwrite)]
    if ext in (".tif", ".tiff"):
        shading = adj.shading
        if shading is None:  # flat: a valid map that changes nothing, so tools that expect one still work
            shading = np.ones((FLAT_SHADING_SIZE, FLAT_SHADING_SIZE), np.float32)
        return [_write_shading_tiff(shading, path, protect, overwrite)]
    if ext == ".png":
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(render_curves_plot(adj), cv2.COLOR_RGB2BGR))
        if not ok:
            raise ImageWriteError(f"cannot write '{path}': PNG encoding failed")
        return [atomic_write(path, lambda fh: fh.write(encoded.data), protect=protect, overwrite=overwrite)]
    raise ImageWriteError(
        f"cannot export the adjustment to '{path}': unknown format '{ext}'; use one of {', '.join(EXPORT_EXTENSIONS)}"
    )


def load_adjustment(path: str | os.PathLike) -> Adjustment:
    """Read an adjustment written by :func:`save_adjustment` (or edited by hand / another tool).

    ``.json`` gives curves and shading; ``.cube`` (any 1D size) and ``.acv`` give curves only; a ``.tif`` /
    ``.tiff`` shading map gives identity curves with that shading. JSON and .cube curves are read as
    piecewise-linear; .acv curves as Photoshop draws them (:func:`photoshop_curve`), sampled at every level.

    Raises:
        AdjustmentError: missing file, unknown extension, or any malformed or out-of-range content.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in LOAD_EXTENSIONS:
        raise AdjustmentError(f"cannot load an adjustment from '{path}': use one of {', '.join(LOAD_EXTENSIONS)}")
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise AdjustmentError(f"adjustment file '{path}' {what}")
    if ext in (".tif", ".tiff"):
        identity = Adjustment.identity()
        return Adjustment(identity.curve_x, identity.curve_y, read_shading_tiff(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AdjustmentError(f"cannot read adjustment file '{path}': {exc.strerror or exc}") from None
    if ext == ".json":
        return _parse_json(path, data)
    if ext == ".cube":
        return _parse_cube(path, data)
    return _parse_acv(path, data)


# --------------------------------------------------------------------------------------------------- shading


def gain_to_code(gain: np.ndarray) -> np.ndarray:
    """Shading gains -> uint16 codes of the shading TIFF (clipped to the 1/16 .. 16 range)."""
    gain = np.maximum(np.asarray(gain, dtype=np.float64), 1e-12)
    return np.clip(np.rint(SHADING_CODE_ONE + SHADING_CODES_PER_STOP * np.log2(gain)), 0, 65535).astype(np.uint16)


def code_to_gain(code: np.ndarray) -> np.ndarray:
    """uint16 codes of the shading TIFF -> float32 gains."""
    stops = (np.asarray(code, dtype=np.float64) - SHADING_CODE_ONE) / SHADING_CODES_PER_STOP
    return np.exp2(stops).astype(np.float32)


def read_shading_tiff(path: str | os.PathLike) -> np.ndarray:
    """A shading map TIFF (see the module docstring for the mapping) as (h, w) float32 gains."""
    import tifffile

    from harmcli.io.native_log import python_log

    path = Path(path)
    try:
        with python_log("tifffile") as logged:  # its log lines: for the message, not the terminal
            values = tifffile.imread(path)
    except FileNotFoundError:
        raise AdjustmentError(f"shading map '{path}' does not exist") from None
    except Exception as exc:  # tifffile raises many types for corrupt files
        if "imagecodecs" not in str(exc):
            raise AdjustmentError(f"cannot read shading map '{path}': {logged[0] if logged else exc}") from None
        # LZW or JPEG compression, which many editors save a painted map with: tifffile decodes those only with
        # the optional imagecodecs package; OpenCV's libtiff, which reads such images for harmonize, does.
        values = _decode_with_libtiff(path)
    values = np.squeeze(values)
    if values.size == 0:  # tifffile found no page (a truncated file) and said why in its log
        reason = f" ({logged[0]})" if logged else ""
        raise AdjustmentError(f"cannot read shading map '{path}': no image in it, damaged or truncated{reason}")
    if values.ndim == 3 and values.shape[-1] in (3, 4):
        # An editor may save a gray map as RGB(A): equal channels are fine. Differing ones are a photo, not a map.
        if not (np.array_equal(values[..., 0], values[..., 1]) and np.array_equal(values[..., 0], values[..., 2])):
            raise AdjustmentError(
                f"shading map '{path}' is a colour image (its red, green and blue differ); a shading map is a "
                "single-channel (grayscale) TIFF such as 'harmcli curves ... -o map.tif' writes"
            )
        values = values[..., 0]
    if values.ndim != 2:
        raise AdjustmentError(f"shading map '{path}' must be a single-channel image, got shape {values.shape}")
    if values.dtype == np.uint16:
        gains = code_to_gain(values)
    elif values.dtype == np.uint8:
        gains = code_to_gain(values.astype(np.uint32) * 257)
    elif values.dtype.kind == "f":
        gains = values.astype(np.float32)
    else:
        raise AdjustmentError(f"shading map '{path}' has unsupported sample type {values.dtype} (use 16-bit)")
    _check_gains(gains, f"shading map '{path}'")
    return gains


def _decode_with_libtiff(path: Path) -> np.ndarray:
    from harmcli.errors import ImageReadError
    from harmcli.io.images import _decode_opencv

    try:
        return _decode_opencv(path, path.read_bytes(), "tiff", for_mask=True)
    except ImageReadError as exc:
        raise AdjustmentError(str(exc).replace("cannot read image", "cannot read shading map", 1)) from None
    except OSError as exc:
        raise AdjustmentError(f"cannot read shading map '{path}': {exc.strerror or exc}") from None


def _write_shading_tiff(
    shading: np.ndarray, path: Path, protect: Sequence[str | os.PathLike], overwrite: bool = True
) -> Path:
    import tifffile

    codes = gain_to_code(shading)

    def write(fh):
        tifffile.imwrite(
            fh,
            codes,
            photometric="minisblack",
            compression="zlib",
            predictor=True,
            description=SHADING_DESCRIPTION,
            metadata=None,
        )

    return atomic_write(path, write, protect=protect, overwrite=overwrite)


def _check_gains(gains: np.ndarray, what: str) -> None:
    if gains.ndim != 2 or min(gains.shape) < 1:
        raise AdjustmentError(f"{what} must be a 2-D grid of gains, got shape {gains.shape}")
    if not np.isfinite(gains).all() or gains.min() < SHADING_RANGE[0] or gains.max() > SHADING_RANGE[1]:
        raise AdjustmentError(f"{what}: gains must be finite and within {SHADING_RANGE[0]} .. {SHADING_RANGE[1]:g}")


# --------------------------------------------------------------------------------------------------- JSON


def _json_number(value: float) -> str:
    # The shortest text that reads back as the same float32: replay of a saved file is then bit-exact,
    # while round values an artist types (0.5, 1) stay short.
    text = np.format_float_positional(np.float32(value), unique=True, trim="-")
    return "0" if text in ("-0", "") else text


def _json_text(adj: Adjustment, shading_ref: str | None) -> str:
    """Hand-formatted so that each curve's x and y lists stay on one line each (easy to edit and diff)."""
    lines = ["{", f'  "version": {JSON_VERSION},', '  "curves": {']
    for c, name in enumerate(CHANNELS):
        xs = ", ".join(_json_number(v) for v in adj.curve_x[c])
        ys = ", ".join(_json_number(v) for v in adj.curve_y[c])
        comma = "," if c < 2 else ""
        lines += [f'    "{name}": {{', f'      "x": [{xs}],', f'      "y": [{ys}]', f"    }}{comma}"]
    lines += ["  },", f'  "shading": {json.dumps(shading_ref)}', "}", ""]
    return "\n".join(lines)


def _parse_json(path: Path, data: bytes) -> Adjustment:
    where = f"adjustment file '{path}'"
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise AdjustmentError(f"{where} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise AdjustmentError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(doc, dict):
        raise AdjustmentError(f"{where}: expected a JSON object with 'version', 'curves' and 'shading'")
    unknown = sorted(set(doc) - {"version", "curves", "shading", "comment"})
    if unknown:
        raise AdjustmentError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; expected 'version', 'curves', 'shading'")
    for key in ("version", "curves"):
        if key not in doc:
            raise AdjustmentError(f"{where}: missing key '{key}'")
    if doc["version"] != JSON_VERSION:
        raise AdjustmentError(f"{where}: unsupported version {doc['version']!r}; this harmcli reads version {JSON_VERSION}")
    curves = doc["curves"]
    if not isinstance(curves, dict):
        raise AdjustmentError(f"{where}: 'curves' must be an object with 'red', 'green' and 'blue'")
    extra = sorted(set(curves) - set(CHANNELS))
    if extra:
        raise AdjustmentError(f"{where}: unknown curve(s) {', '.join(map(repr, extra))}; expected 'red', 'green', 'blue'")
    points = []
    for name in CHANNELS:
        if name not in curves:
            raise AdjustmentError(f"{where}: missing key 'curves.{name}'")
        curve = curves[name]
        if not isinstance(curve, dict):
            raise AdjustmentError(f"{where}: 'curves.{name}' must be an object with 'x' and 'y' lists")
        xy = []
        for axis in ("x", "y"):
            if axis not in curve:
                raise AdjustmentError(f"{where}: missing key 'curves.{name}.{axis}'")
            xy.append(_number_list(curve[axis], f"{where}: 'curves.{name}.{axis}'"))
        points.append(_checked_curve(xy[0], xy[1], f"{where}: curve '{name}'"))
    shading = _json_shading(path, doc.get("shading"), where)
    return _curves_to_adjustment(points, shading, where)


def _number_list(value: object, what: str) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise AdjustmentError(f"{what} must be a list of numbers")
    return np.asarray(value, dtype=np.float64)


def _checked_curve(x: np.ndarray, y: np.ndarray, what: str, *, tolerance: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Validate one curve's points (x strictly increasing from 0 to 1, y in [0, 1])."""
    if len(x) != len(y):
        raise AdjustmentError(f"{what}: 'x' has {len(x)} values but 'y' has {len(y)}")
    if len(x) < 2:
        raise AdjustmentError(f"{what}: needs at least 2 points, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise AdjustmentError(f"{what}: values must be finite numbers")
    steps = np.diff(x)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise AdjustmentError(f"{what}: x must be strictly increasing, but x[{i + 1}] = {x[i + 1]:g} follows x[{i}] = {x[i]:g}")
    if abs(x[0]) > tolerance or abs(x[-1] - 1) > tolerance:
        raise AdjustmentError(f"{what}: x must start at 0 and end at 1, got {x[0]:g} .. {x[-1]:g}")
    bad = np.flatnonzero((y < -tolerance) | (y > 1 + tolerance))
    if bad.size:
        i = int(bad[0])
        raise AdjustmentError(f"{what}: y must lie in [0, 1], but y[{i}] = {y[i]:g}")
    x = x.copy()
    x[0], x[-1] = 0.0, 1.0
    return x, np.clip(y, 0.0, 1.0)


def _json_shading(path: Path, value: object, where: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        shading_path = Path(value)
        if not shading_path.is_absolute():
            shading_path = path.parent / shading_path
        if not shading_path.is_file():
            raise AdjustmentError(f"{where}: the shading map '{shading_path}' it refers to does not exist")
        return read_shading_tiff(shading_path)
    if isinstance(value, list):
        rows = value
        if not rows or not all(isinstance(r, list) and r for r in rows) or len({len(r) for r in rows}) != 1:
            raise AdjustmentError(f"{where}: an inline 'shading' must be a non-empty list of equally long lists of gains")
        gains = np.stack([_number_list(r, f"{where}: 'shading'") for r in rows]).astype(np.float32)
        _check_gains(gains, f"{where}: 'shading'")
        return gains
    raise AdjustmentError(f"{where}: 'shading' must be null, the path of a shading TIFF, or a list of lists of gains")


def _curves_to_adjustment(points: list[tuple[np.ndarray, np.ndarray]], shading: np.ndarray | None, where: str) -> Adjustment:
    """Three (x, y) curves, possibly with different point counts, as one Adjustment.

    Curves with different x positions are merged onto the union of all positions; each is piecewise-linear,
    so evaluating it at its own points plus extra ones describes exactly the same function.
    """
    if all(len(x) == len(points[0][0]) for x, _ in points):
        curve_x = np.stack([x for x, _ in points])
        curve_y = np.stack([y for _, y in points])
    else:
        grid = np.unique(np.concatenate([x for x, _ in points]))
        curve_x = np.tile(grid, (3, 1))
        curve_y = np.stack([np.interp(grid, x, y) for x, y in points])
    try:
        return Adjustment(curve_x, curve_y, shading)
    except AdjustmentError as exc:
        raise AdjustmentError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------------------------------- .cube


def _cube_text(adj: Adjustment, title: str) -> str:
    # The usual Adobe Cube 1.0 layout (Resolve, Premiere). ffmpeg's lut1d skips every line before
    # LUT_1D_SIZE, so the TITLE is lost there, and the DOMAIN lines after it are what it would assume anyway.
    safe_title = title.replace('"', "'") or "harmcli"
    lines = [
        "# 1D LUT exported by harmcli: the red, green and blue curves of an adjustment.",
        "# The shading map cannot be expressed in a LUT and is not included.",
        f'TITLE "{safe_title}"',
        f"LUT_1D_SIZE {CUBE_SIZE}",
        "DOMAIN_MIN 0.0 0.0 0.0",
        "DOMAIN_MAX 1.0 1.0 1.0",
    ]
    table = np.clip(adj.lut(CUBE_SIZE).astype(np.float64), 0.0, 1.0)
    lines += [f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in table]
    return "\n".join(lines) + "\n"


def _parse_cube(path: Path, data: bytes) -> Adjustment:
    where = f"LUT file '{path}'"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AdjustmentError(f"{where} is not text") from None
    size = None
    domain_min, domain_max = [0.0] * 3, [1.0] * 3
    rows: list[list[float]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        try:
            if keyword == "TITLE":
                continue
            if keyword == "LUT_3D_SIZE":
                raise AdjustmentError(f"{where} is a 3D LUT; only 1D LUTs (LUT_1D_SIZE) can be turned into curves")
            if keyword == "LUT_1D_SIZE":
                size = int(rest)
                if not 2 <= size <= 65536:
                    raise AdjustmentError(f"{where}: LUT_1D_SIZE must be 2 .. 65536, got {size}")
            elif keyword == "DOMAIN_MIN":
                domain_min = [float(v) for v in rest.split()]
            elif keyword == "DOMAIN_MAX":
                domain_max = [float(v) for v in rest.split()]
            elif keyword == "LUT_1D_INPUT_RANGE":
                low, high = (float(v) for v in rest.split())
                domain_min, domain_max = [low] * 3, [high] * 3
            elif keyword[0].isalpha() and keyword.isupper():
                raise AdjustmentError(f"{where}: unknown keyword '{keyword}' on line {number}")
            else:
                values = [float(v) for v in line.split()]
                if len(values) != 3:
                    raise ValueError
                rows.append(values)
        except ValueError:
            raise AdjustmentError(f"{where}: cannot read line {number}: {raw.strip()[:60]!r}") from None
    if size is None:
        raise AdjustmentError(f"{where}: no LUT_1D_SIZE line (is it a .cube LUT?)")
    if len(rows) != size:
        raise AdjustmentError(f"{where}: LUT_1D_SIZE is {size} but the file has {len(rows)} table lines")
    if len(domain_min) != 3 or len(domain_max) != 3 or not (np.allclose(domain_min, 0) and np.allclose(domain_max, 1)):
        raise AdjustmentError(f"{where}: only the domain 0 .. 1 is supported, got {domain_min} .. {domain_max}")
    table = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(table).all() or table.min() < -1e-4 or table.max() > 1 + 1e-4:
        raise AdjustmentError(f"{where}: output values must lie in [0, 1] (curves cannot go beyond)")
    grid = np.linspace(0.0, 1.0, size)
    return _curves_to_adjustment([(grid, np.clip(table[:, c], 0, 1)) for c in range(3)], None, where)


# --------------------------------------------------------------------------------------------------- .acv


# Photoshop draws the curve of a Curves preset as a natural cubic spline through its points (second derivative
# zero at both end points), clipped to 0..255, and flat beyond the first and last point. Adobe does not publish
# the formula; this is what the open-source readers of .acv files that reproduce Photoshop's curves use (FFmpeg's
# curves filter with its `psfile` option, GPUImage's tone-curve filter), and it agrees with how the dialog
# behaves: two points give a straight line, and a point dragged too far makes the curve overshoot and clip at
# 0 or 255 rather than bend to stay inside. So harmcli reads .acv files through that spline, and chooses the
# points it exports so that the same spline lands on its own curve.
ACV_NOTE_LEVELS = 1.0  # levels: a larger difference is reported when the file is written
ACV_GOOD_ENOUGH = 0.75  # levels: stop adding points once the spline is this close (integer heights cost ~0.5)


def photoshop_curve(points: np.ndarray, inputs: np.ndarray | None = None) -> np.ndarray:
    """Photoshop's curve through ``points`` ((n, 2) (input, output) in 0..255, inputs increasing).

    A natural cubic spline, clipped to 0..255 and flat beyond the end points (see above). Evaluated at
    ``inputs`` (float, 0..255; default every level 0..255); returns float64 output levels.
    """
    points = np.asarray(points, dtype=np.float64)
    inputs = np.arange(256, dtype=np.float64) if inputs is None else np.asarray(inputs, dtype=np.float64)
    basis = _spline_basis(points[:, 0], inputs)
    return np.clip(basis @ points[:, 1], 0.0, 255.0)


def _spline_basis(knots: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """(len(inputs), n) matrix B with spline(inputs) = B @ heights for the natural spline on ``knots``.

    The spline is linear in the heights, which is what lets the export fit them by least squares.
    """
    knots = np.asarray(knots, dtype=np.float64)
    n = len(knots)
    h = np.diff(knots)
    # Second derivatives M = K @ heights; M_0 = M_{n-1} = 0 (natural), the inner ones from the continuity of
    # the first derivative: h[i-1] M[i-1] + 2 (h[i-1] + h[i]) M[i] + h[i] M[i+1] = 6 (slope[i] - slope[i-1]).
    second = np.zeros((n, n))
    if n > 2:
        inner = np.arange(1, n - 1)
        system = np.diag(2.0 * (h[:-1] + h[1:])) + np.diag(h[1:-1], 1) + np.diag(h[1:-1], -1)
        rhs = np.zeros((n - 2, n))
        rows = np.arange(n - 2)
        rhs[rows, inner - 1] = 6.0 / h[:-1]
        rhs[rows, inner] = -6.0 / h[:-1] - 6.0 / h[1:]
        rhs[rows, inner + 1] = 6.0 / h[1:]
        second[1:-1] = np.linalg.solve(system, rhs)
    t = np.clip(inputs, knots[0], knots[-1])
    seg = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, n - 2)
    width = h[seg]
    a = (knots[seg + 1] - t) / width
    b = 1.0 - a
    rows = np.arange(len(t))
    basis = np.zeros((len(t), n))
    basis[rows, seg] += a
    basis[rows, seg + 1] += b
    curvature = width**2 / 6.0
    basis += ((a**3 - a) * curvature)[:, None] * second[seg] + ((b**3 - b) * curvature)[:, None] * second[seg + 1]
    return basis


def acv_points(adj: Adjustment) -> tuple[list[np.ndarray], float]:
    """The Photoshop control points written for each channel, and how far Photoshop's curve is from ours.

    Photoshop stores at most 16 points per curve, as integers in 0..255, at least 4 apart in input, and draws
    the natural cubic spline of :func:`photoshop_curve` through them. For each channel the points are tuned
    for that spline, not placed on our curve: knots are added one at a time where the spline is furthest from
    our curve, every inner knot is moved while that lowers the least-squares error, and the heights are fitted
    for the smallest largest error (Lawson's iteratively reweighted least squares), rounded, and nudged one
    level at a time while that helps. The fewest points within :data:`ACV_GOOD_ENOUGH` levels are kept,
    otherwise the best 16.

    Returns:
        Per channel an (n, 2) int array of (input, output) points, and the largest difference, in levels
        (1/255), between our curves and Photoshop's curves through these points, over the 256 input levels.
    """
    targets = adj.lut(256).astype(np.float64) * 255.0
    result, worst = [], 0.0
    for c in range(3):
        points, error = _fit_spline_points(targets[:, c])
        result.append(points)
        worst = max(worst, error)
    return result, worst


def _fit_spline_points(target: np.ndarray) -> tuple[np.ndarray, float]:
    """At most ``ACV_MAX_POINTS`` integer points whose Photoshop curve is closest to ``target`` (256 levels).

    Two starts: the two end points alone (best for smooth curves), and the knots of the best piecewise-linear
    fit (they sit on the corners of a curve with kinks, which a spline needs a knot on each side of).
    """
    levels = np.arange(256, dtype=np.float64)
    best: tuple[np.ndarray, float] | None = None
    for start in ([0, 255], _linear_knots(target)):
        points, error = _grow_knots(list(start), target, levels)
        better = best is None or error < best[1] - 1e-9
        if best is not None and max(error, best[1]) <= ACV_GOOD_ENOUGH:
            better = len(points) < len(best[0])  # both good enough: the simpler curve
        if better:
            best = (points, error)
    if best[1] > ACV_GOOD_ENOUGH:
        best = _polish(best, target, levels)
    return best


def _polish(best: tuple[np.ndarray, float], target: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, float]:
    """For curves still off: move knots again, now judged by the final integer minimax error (slower, exact)."""
    points, error = best
    knots = [int(k) for k in points[:, 0]]
    for _ in range(3):
        improved = False
        for i in range(1, len(knots) - 1):
            for step in (-4, -2, -1, 1, 2, 4):
                moved = knots[i] + step
                if not (knots[i - 1] + ACV_MIN_SPACING <= moved <= knots[i + 1] - ACV_MIN_SPACING):
                    continue
                trial = knots[:i] + [moved] + knots[i + 1 :]
                heights, trial_error = _fit_heights(np.asarray(trial), target, levels)
                if trial_error < error - 1e-9:
                    knots, error, improved = trial, trial_error, True
                    points = np.stack([np.asarray(trial), heights], axis=1).astype(int)
        if not improved:
            break
    return points, error


def _grow_knots(knots: list[int], target: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, float]:
    """Move, fit, and add a knot where the spline misses most, until good enough or 16 points."""
    best: tuple[np.ndarray, float] | None = None
    while True:
        knots = _move_knots(knots, target, levels)
        heights, error = _fit_heights(np.asarray(knots), target, levels)
        points = np.stack([np.asarray(knots), heights], axis=1).astype(int)
        if best is None or error < best[1] - 1e-9:
            best = (points, error)
        if error <= ACV_GOOD_ENOUGH or len(knots) >= ACV_MAX_POINTS:
            return best
        miss = np.abs(photoshop_curve(points) - target)
        distance = np.min(np.abs(levels[:, None] - np.asarray(knots)[None, :]), axis=1)
        miss[distance < ACV_MIN_SPACING] = -1.0
        if miss.max() < 0:
            return best
        knots = sorted([*knots, int(np.argmax(miss))])


def _linear_knots(target: np.ndarray) -> list[int]:
    """Inputs of the minimax piecewise-linear fit of ``target`` with at most 16 points (dynamic programming)."""
    n = len(target)
    heights = np.clip(np.rint(target), 0, 255)
    # cost[i, j]: largest error on [i, j] of the straight segment from point i to point j.
    cost = np.full((n, n), np.inf)
    for i in range(n - ACV_MIN_SPACING):
        ends = np.arange(i + ACV_MIN_SPACING, n)
        positions = np.arange(i, n)
        slopes = (heights[ends] - heights[i]) / (ends - i)
        errors = np.abs(heights[i] + slopes[:, None] * (positions - i)[None, :] - target[None, i:])
        errors[positions[None, :] > ends[:, None]] = 0.0
        cost[i, ends] = errors.max(axis=1)
    best = np.full(n, np.inf)
    best[0] = 0.0
    history, parents = [], []
    for _ in range(ACV_MAX_POINTS - 1):
        candidates = np.maximum(best[:, None], cost)
        parents.append(np.argmin(candidates, axis=0))
        best = candidates[parents[-1], np.arange(n)]
        history.append(best[n - 1])
    segments = int(np.argmin(history)) + 1
    chosen, j = [n - 1], n - 1
    for k in range(segments - 1, -1, -1):
        j = int(parents[k][j])
        chosen.append(j)
    return sorted(set(chosen))


def _least_squares(basis: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Heights minimising the (weighted) squared error: normal equations, well conditioned for <= 16 knots at
    least 4 levels apart, and several times faster than an SVD in the fitting loops."""
    weighted = basis if weights is None else basis * weights[:, None]
    return np.linalg.solve(weighted.T @ basis, weighted.T @ target)


def _least_squares_error(knots: np.ndarray, target: np.ndarray, levels: np.ndarray) -> float:
    basis = _spline_basis(knots, levels)
    heights = _least_squares(basis, target)
    return float(np.abs(basis @ heights - target).max())


def _move_knots(knots: list[int], target: np.ndarray, levels: np.ndarray) -> list[int]:
    """Shift inner knots (keeping them integers, in order and ``ACV_MIN_SPACING`` apart) while it helps."""
    knots = list(knots)
    if len(knots) < 3:
        return knots
    error = _least_squares_error(np.asarray(knots, float), target, levels)
    for _ in range(4):
        improved = False
        for i in range(1, len(knots) - 1):
            for step in (-8, -4, -2, -1, 1, 2, 4, 8):
                moved = knots[i] + step
                if not (knots[i - 1] + ACV_MIN_SPACING <= moved <= knots[i + 1] - ACV_MIN_SPACING):
                    continue
                trial = knots[:i] + [moved] + knots[i + 1 :]
                trial_error = _least_squares_error(np.asarray(trial, float), target, levels)
                if trial_error < error - 1e-6:
                    knots, error, improved = trial, trial_error, True
        if not improved:
            break
    return knots


def _fit_heights(knots: np.ndarray, target: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, float]:
    """Integer heights (0..255) at ``knots`` minimising the largest error of the clipped spline."""
    basis = _spline_basis(knots, levels)
    weights = np.ones_like(target)
    heights = _least_squares(basis, target)
    for _ in range(40):  # Lawson: reweight towards where the error is largest -> minimax heights
        residual = np.abs(basis @ heights - target)
        weights = weights * np.maximum(residual, 1e-9)
        weights /= weights.sum()
        heights = _least_squares(basis, target, weights)
    heights = np.clip(np.rint(heights), 0, 255)

    def largest(h: np.ndarray) -> float:
        return float(np.abs(np.clip(basis @ h, 0.0, 255.0) - target).max())

    error = largest(heights)
    for _ in range(30):
        improved = False
        for i in range(len(heights)):
            for step in (-1.0, 1.0):
                trial = heights.copy()
                trial[i] = min(255.0, max(0.0, trial[i] + step))
                trial_error = largest(trial)
                if trial_error < error - 1e-9:
                    heights, error, improved = trial, trial_error, True
        if not improved:
            break
    return heights, error


def _acv_bytes(adj: Adjustment) -> tuple[bytes, float]:
    """The .acv file and how far Photoshop's curves through it are from ``adj``'s (levels)."""
    channel_points, error = acv_points(adj)
    identity = np.array([[0, 0], [255, 255]])
    # Photoshop writes version 4 and five curves for RGB documents: composite, red, green, blue, and a
    # fifth that RGB documents ignore. The composite (applied after the channel curves) stays identity.
    curves = [identity, *channel_points, identity]
    out = [struct.pack(">hh", 4, len(curves))]
    for points in curves:
        out.append(struct.pack(">h", len(points)))
        for x, y in points:
            out.append(struct.pack(">hh", int(y), int(x)))  # (output, input), in that order
    return b"".join(out), error


def _parse_acv(path: Path, data: bytes) -> Adjustment:
    """Photoshop's curves, drawn as Photoshop draws them (:func:`photoshop_curve`), sampled at the 256 levels."""
    where = f"Photoshop curves file '{path}'"
    try:
        version, count = struct.unpack_from(">hh", data, 0)
        if version not in (1, 4):
            raise AdjustmentError(f"{where}: unknown version {version} (expected 1 or 4); is it an .acv file?")
        if not 1 <= count <= 32:
            raise AdjustmentError(f"{where}: implausible number of curves ({count})")
        pos, curves = 4, []
        for i in range(count):
            (n,) = struct.unpack_from(">h", data, pos)
            if not 2 <= n <= 64:
                raise AdjustmentError(f"{where}: curve {i + 1} has {n} points (expected 2 .. 19)")
            pairs = np.asarray(struct.unpack_from(f">{2 * n}h", data, pos + 2), dtype=np.float64).reshape(n, 2)
            pos += 2 + 4 * n
            points = pairs[:, ::-1]  # stored as (output, input)
            # Validated in 0..1 units; Photoshop lets the end points move inward (flat beyond them).
            x, y = points[:, 0] / 255.0, points[:, 1] / 255.0
            padded_x = np.concatenate([[0.0] if x[0] > 0 else [], x, [1.0] if x[-1] < 1 else []])
            padded_y = np.concatenate([[y[0]] if x[0] > 0 else [], y, [y[-1]] if x[-1] < 1 else []])
            _checked_curve(padded_x, padded_y, f"{where}: curve {i + 1}", tolerance=1e-9)
            curves.append(points)
    except struct.error:
        raise AdjustmentError(f"{where} ends early (truncated or not an .acv file)") from None
    composite = curves[0]
    channels = curves[1:4] if count >= 4 else [composite] * 3
    levels = np.arange(256, dtype=np.float64)
    values = [photoshop_curve(points) for points in channels]
    if count >= 4 and not np.array_equal(composite[:, 0], composite[:, 1]):
        # Photoshop applies the composite curve after each channel's curve.
        values = [photoshop_curve(composite, inputs=v) for v in values]
    return _curves_to_adjustment([(levels / 255.0, v / 255.0) for v in values], None, where)


# --------------------------------------------------------------------------------------------------- .png plot

_PLOT_COLORS = {"red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 119, 180)}  # RGB
_INK, _GRID, _FAINT = (40, 40, 40), (228, 228, 228), (150, 150, 150)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def render_curves_plot(adj: Adjustment, size: tuple[int, int] = (600, 800)) -> np.ndarray:
    """A picture of the adjustment: (H, W, 3) uint8 RGB, default 600 x 800.

    The three curves over a grid with the identity dashed, labelled axes and a legend; on the right, a
    thumbnail of the shading map (mid-gray = gain 1, black = 1/4 or less, white = 4 or more) with its range.
    """
    height, width = size
    # Drawn at 2x and reduced with area averaging: smoother lines and text than LINE_AA alone.
    s = 2
    canvas = np.full((height * s, width * s, 3), 255, np.uint8)
    left, top, side = 90 * s, 56 * s, min(height - 130, width - 330) * s
    right, bottom = left + side, top + side

    def to_px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.stack([left + x * side, bottom - y * side], axis=-1)

    _text(canvas, "Harmonization curves", (left, top - 22 * s), 0.75 * s, _INK, 2 * s)
    for k in range(11):
        t = k / 10
        color = (205, 205, 205) if k in (0, 5, 10) else _GRID
        cv2.line(canvas, _pt(to_px(t, 0)), _pt(to_px(t, 1)), color, s, cv2.LINE_AA)
        cv2.line(canvas, _pt(to_px(0, t)), _pt(to_px(1, t)), color, s, cv2.LINE_AA)
    for k in range(5):
        t = k / 4
        label = f"{t:g}"
        (tw, th), _ = cv2.getTextSize(label, _FONT, 0.45 * s, s)
        _text(canvas, label, (int(left + t * side - tw / 2), bottom + th + 10 * s), 0.45 * s, _FAINT, s)
        _text(canvas, label, (left - tw - 10 * s, int(bottom - t * side + th / 2)), 0.45 * s, _FAINT, s)
    # Identity, dashed.
    dashes = 40
    for k in range(0, dashes, 2):
        a, b = k / dashes, (k + 1) / dashes
        cv2.line(canvas, _pt(to_px(a, a)), _pt(to_px(b, b)), (160, 160, 160), s, cv2.LINE_AA)
    # Curves: densely sampled polylines, then the control points.
    grid = np.linspace(0.0, 1.0, 513)
    values = adj.evaluate(grid)
    for c, name in enumerate(CHANNELS):
        line = np.rint(to_px(grid, values[:, c].astype(np.float64)) * 16).astype(np.int32)
        cv2.polylines(canvas, [line], False, _PLOT_COLORS[name], 2 * s + 1, cv2.LINE_AA, shift=4)
    if adj.n_points <= 64:
        for c, name in enumerate(CHANNELS):
            for x, y in zip(adj.curve_x[c], adj.curve_y[c]):
                cv2.circle(canvas, _pt(to_px(float(x), float(y))), int(2.5 * s), _PLOT_COLORS[name], -1, cv2.LINE_AA)
    cv2.rectangle(canvas, (left, top), (right, bottom), (120, 120, 120), s, cv2.LINE_AA)
    # Axis labels.
    (tw, th), _ = cv2.getTextSize("input", _FONT, 0.6 * s, s)
    _text(canvas, "input", (left + (side - tw) // 2, bottom + th + 40 * s), 0.6 * s, _INK, s + 1)
    _vertical_text(canvas, "output", (left - 62 * s, top + side // 2), 0.6 * s, _INK, s + 1)
    # Legend.
    lx, ly = right + 36 * s, top + 10 * s
    entries = [(name, _PLOT_COLORS[name], False) for name in CHANNELS] + [("identity", (160, 160, 160), True)]
    for i, (name, color, dashed) in enumerate(entries):
        y = ly + i * 26 * s
        if dashed:
            for k in range(0, 30 * s, 10 * s):
                cv2.line(canvas, (lx + k, y), (lx + k + 5 * s, y), color, s, cv2.LINE_AA)
        else:
            cv2.line(canvas, (lx, y), (lx + 30 * s, y), color, 2 * s + 1, cv2.LINE_AA)
        _text(canvas, name, (lx + 40 * s, y + 6 * s), 0.55 * s, _INK, s)
    panel_top = ly + 4 * 26 * s + 20 * s
    _draw_shading_panel(canvas, adj.shading, (lx, panel_top), (width * s - lx - 24 * s, bottom - panel_top), s)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)


def _draw_shading_panel(
    canvas: np.ndarray, shading: np.ndarray | None, origin: tuple[int, int], box: tuple[int, int], s: int
) -> None:
    x0, y0 = origin
    box_w, box_h = box
    _text(canvas, "shading", (x0, y0 + 14 * s), 0.55 * s, _INK, s + 1)
    y0 += 30 * s
    if shading is None:
        _text(canvas, "none (gain 1", (x0, y0 + 10 * s), 0.45 * s, _FAINT, s)
        _text(canvas, "everywhere)", (x0, y0 + 30 * s), 0.45 * s, _FAINT, s)
        return
    sh, sw = shading.shape
    thumb_max = min(box_w, box_h - 90 * s)
    scale = thumb_max / max(sh, sw)
    tw, th = max(1, int(round(sw * scale))), max(1, int(round(sh * scale)))
    # Mid-gray = gain 1, two stops either way to black / white (the networks' range).
    gray = np.clip((np.log2(shading) / 2.0 + 1.0) * 127.5, 0, 255).astype(np.uint8)
    interpolation = cv2.INTER_NEAREST if max(sh, sw) <= 16 else cv2.INTER_LINEAR
    thumb = cv2.resize(gray, (tw, th), interpolation=interpolation)
    canvas[y0 : y0 + th, x0 : x0 + tw] = thumb[..., None]
    cv2.rectangle(canvas, (x0 - 1, y0 - 1), (x0 + tw, y0 + th), (120, 120, 120), s)
    # A gain scale under the thumbnail.
    bar_y, bar_h, bar_w = y0 + th + 14 * s, 10 * s, tw
    ramp = np.linspace(0, 255, bar_w).astype(np.uint8)
    canvas[bar_y : bar_y + bar_h, x0 : x0 + bar_w] = ramp[None, :, None]
    cv2.rectangle(canvas, (x0 - 1, bar_y - 1), (x0 + bar_w, bar_y + bar_h), (120, 120, 120), s)
    for label, t in (("1/4", 0.0), ("1", 0.5), ("4", 1.0)):
        (lw, lh), _ = cv2.getTextSize(label, _FONT, 0.4 * s, s)
        lx = int(np.clip(x0 + t * bar_w - lw / 2, x0, x0 + bar_w - lw))
        _text(canvas, label, (lx, bar_y + bar_h + lh + 6 * s), 0.4 * s, _FAINT, s)
    low, high = float(shading.min()), float(shading.max())
    _text(canvas, f"gain {low:.2f} .. {high:.2f}", (x0, bar_y + bar_h + 44 * s), 0.45 * s, _INK, s)


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float, color, thickness: int) -> None:
    cv2.putText(canvas, text, (int(origin[0]), int(origin[1])), _FONT, scale, color, thickness, cv2.LINE_AA)


def _vertical_text(canvas: np.ndarray, text: str, center: tuple[int, int], scale: float, color, thickness: int) -> None:
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    patch = np.full((th + base + 4, tw + 4, 3), 255, np.uint8)
    cv2.putText(patch, text, (2, th + 2), _FONT, scale, color, thickness, cv2.LINE_AA)
    patch = cv2.rotate(patch, cv2.ROTATE_90_COUNTERCLOCKWISE)
    ph, pw = patch.shape[:2]
    y, x = center[1] - ph // 2, center[0] - pw // 2
    region = canvas[y : y + ph, x : x + pw]
    np.minimum(region, patch, out=region)

