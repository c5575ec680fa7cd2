"""``harmcli eval`` end to end on a generated iHarmony4 folder."""

import csv
import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import harmcli.cli.eval_cmd  # noqa: F401  registers the command
from harmcli.cli.app import app, main
from harmcli.eval.runner import THUMB_HEIGHT

METRIC_KEYS = {"MSE", "fMSE", "PSNR", "fPSNR", "SSIM"}


def _fmse(composite, mask, real):
    diff = (composite.astype(np.float64) - real.astype(np.float64)) ** 2
    return diff[mask].sum() / (mask.sum() * 3)


def test_eval_end_to_end(iharmony, identity_weights, tmp_path):
    root, arrays = iharmony
    out_json, out_csv, out_grid = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "grid.png"
    args = ["eval", str(root), "--method", "identity,reinhard", "-m", "hist", "-m", "harmcli"]
    args += ["--weights", str(identity_weights), "--device", "cpu", "--quiet"]
    args += ["--json", str(out_json), "--csv", str(out_csv), "--grid", str(out_grid)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "identity" in result.stdout and "fPSNR" in result.stdout and "empty mask" in result.stdout

    report = json.loads(out_json.read_text())
    assert report["count"] == 4 and report["size"] is None and report["dataset"] == str(root)
    assert report["empty_foreground"] == 1
    methods = ["identity", "reinhard", "hist", "harmcli"]
    assert list(report["summary"]) == methods
    assert all(set(report["summary"][m]) == METRIC_KEYS for m in methods)
    assert [row["name"] for row in report["images"]] == sorted(arrays)
    for row in report["images"]:
        assert set(row) == {"name", *methods} and all(set(row[m]) == METRIC_KEYS for m in methods)
    empty_row = next(row for row in report["images"] if row["name"] == "p3_1_1")
    assert empty_row["identity"]["fMSE"] is None and empty_row["identity"]["MSE"] == 0.0

    # identity's fMSE, computed independently, over the three images that have a foreground
    expected = np.mean([_fmse(c, m, r) for c, m, r in arrays.values() if m.any()])
    summary = report["summary"]
    assert summary["identity"]["fMSE"] == pytest.approx(expected, rel=0.01)
    # the untrained network leaves images unchanged: the same numbers as identity
    for key in METRIC_KEYS:
        assert summary["harmcli"][key] == pytest.approx(summary["identity"][key], rel=1e-9)
    # the baselines undo a global colour shift at least partly
    assert summary["reinhard"]["fMSE"] < summary["identity"]["fMSE"]
    assert summary["hist"]["fMSE"] < summary["identity"]["fMSE"]
    assert summary["identity"]["PSNR"] < 100 and math.isfinite(summary["identity"]["fPSNR"])

    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 4 * 4 and rows[0].keys() == {"name", "method", *METRIC_KEYS}
    assert {r["fMSE"] for r in rows if r["name"] == "p3_1_1"} == {""}

    grid = cv2.imread(str(out_grid))
    # 3 worst + 3 best of 3 rankable images = 3 distinct rows; 6 tiles (composite, 4 methods, ground truth)
    assert grid.shape[0] > 3 * THUMB_HEIGHT and grid.shape[1] > 6 * (48 * THUMB_HEIGHT // 40)


def test_eval_at_fixed_size(iharmony, tmp_path):
    root, arrays = iharmony
    out_json = tmp_path / "r.json"
    args = ["eval", str(root), "-m", "identity", "--size", "32", "--limit", "2", "--json", str(out_json)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    assert report["size"] == 32 and report["count"] == 2
    first = sorted(arrays)[0]
    composite, mask, real = arrays[first]
    c = cv2.resize(composite, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    r = cv2.resize(real, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    m = cv2.resize(mask.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    row = report["images"][0]["identity"]
    assert row["MSE"] == pytest.approx(np.mean((c - r) ** 2), rel=1e-3)
    assert row["fMSE"] == pytest.approx((m[..., None] * (c - r) ** 2).sum() / (3 * m.sum()), rel=1e-3)


def _run_main(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_errors_are_one_line(iharmony, tmp_path, capsys):
    root, _ = iharmony
    code, err = _run_main(["eval", str(tmp_path / "nowhere"), "-m", "identity"], capsys)
    assert code == 1 and "dataset folder not found" in err and len(err.strip().splitlines()) == 1
    code, err = _run_main(["eval", str(root), "-m", "magic"], capsys)
    assert code == 2 and "unknown method 'magic'" in err
    code, err = _run_main(["eval", str(root), "-m", "hist", "--weights", "w.safetensors"], capsys)
    assert code == 2 and "--weights" in err
    code, err = _run_main(["eval", str(root), "-m", "hist", "--grid", str(tmp_path / "g.gif")], capsys)
    assert code == 2 and ".png" in err
    code, err = _run_main(["eval", str(root), "-m", "harmcli", "--weights", str(tmp_path / "none.safetensors")], capsys)
    assert code == 1 and "not found" in err


def test_help_names_every_dataset_layout(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["eval", "--help"])
    assert result.exit_code == 0
    for layout in ("composite_images/", "gt/", "make-composites", "manifest.jsonl"):
        assert layout in result.stdout, layout


def test_module_import_stays_light():
    code = "import sys, harmcli.cli.eval_cmd; print(sorted(m for m in ('torch', 'cv2', 'numpy', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("option", ["--json", "--csv", "--grid"])
def test_reports_never_overwrite_a_dataset_image(iharmony, tmp_path, capsys, option):
    root, _ = iharmony
    target = root / "real_images" / "p0.png"
    before = target.read_bytes()
    other_name = root / "real_images" / ".." / "real_images" / "p0.png"
    code, err = _run_main(["eval", str(root), "-m", "identity", option, str(other_name)], capsys)
    assert code == 1 and "input of the dataset" in err and len(err.strip().splitlines()) == 1
    assert target.read_bytes() == before


def test_report_under_a_file_is_refused_before_the_run(iharmony, tmp_path, capsys):
    root, _ = iharmony
    (tmp_path / "notes").write_text("x")
    code, err = _run_main(["eval", str(root), "-m", "identity", "--json", str(tmp_path / "notes" / "r.json")], capsys)
    assert code == 2 and "is a file, not a folder" in err and len(err.strip().splitlines()) == 1
