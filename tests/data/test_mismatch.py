import json

import cv2
import numpy as np
import pytest

from harmcli.data.composites import make_composites, read_manifest, row_kind
from harmcli.data.layouts import discover
from harmcli.data.mismatch import (
    LUMA,
    blackbody_rgb,
    change_illuminant,
    histogram_transfer,
    illuminant_gains,
    lab_statistics_transfer,
    linear_to_srgb,
    planckian_xy,
    srgb_to_linear,
)
from harmcli.errors import DatasetError
from tests.data.test_make_composites import write_source


def test_planckian_locus_and_blackbody_colours():
    # D65's correlated colour temperature lies close to D65's white point (0.3127, 0.3290).
    x, y = planckian_xy(6504)
    assert abs(x - 0.3127) < 0.003 and abs(y - 0.3290) < 0.01
    # Warm light is red-heavy, cool light blue-heavy.
    warm, cool = blackbody_rgb(3000), blackbody_rgb(10000)
    assert warm[0] > warm[1] > warm[2] and cool[2] > cool[1]


def test_illuminant_gains_keep_luma_and_apply_stops():
    assert np.allclose(illuminant_gains(6504.0), 1.0, atol=1e-6)
    for cct in (2500.0, 4000.0, 9000.0):
        assert float(illuminant_gains(cct) @ LUMA) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(illuminant_gains(3000.0, 1.0), 2 * illuminant_gains(3000.0), atol=1e-6)
    image = np.random.default_rng(0).uniform(0.05, 0.4, (8, 8, 3)).astype(np.float32)
    # Daylight, no exposure change: the photo comes back; one stop: double the linear light.
    assert np.abs(change_illuminant(image, 6504.0, 0.0) - image).max() < 1e-5
    doubled = srgb_to_linear(change_illuminant(image, 6504.0, 1.0))
    assert np.allclose(doubled, 2 * srgb_to_linear(image), atol=1e-4)
    assert np.allclose(linear_to_srgb(srgb_to_linear(image)), image, atol=1e-5)
    warm = change_illuminant(image, 3000.0, 0.0)
    assert warm[..., 0].mean() > image[..., 0].mean() and warm[..., 2].mean() < image[..., 2].mean()


def _two_photos():
    rng = np.random.default_rng(3)
    image = np.clip(rng.normal((0.3, 0.5, 0.4), 0.08, (40, 40, 3)), 0, 1).astype(np.float32)
    reference = np.clip(rng.normal((0.6, 0.45, 0.3), 0.05, (40, 40, 3)), 0, 1).astype(np.float32)
    source = np.zeros((40, 40), bool)
    source[10:30, 10:30] = True
    return image, source, reference


def test_lab_transfer_moves_the_source_statistics_to_the_reference():
    image, source, reference = _two_photos()
    out = lab_statistics_transfer(image, source, reference, np.ones((40, 40), bool))
    lab = lambda im: cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2Lab)  # noqa: E731
    moved, ref = lab(out)[source], lab(reference).reshape(-1, 3)
    assert np.allclose(moved.mean(0), ref.mean(0), atol=0.5)
    assert np.allclose(moved.std(0), ref.std(0), rtol=0.05, atol=0.2)


def test_histogram_transfer_gives_the_source_the_reference_quantiles():
    image, source, reference = _two_photos()
    out = histogram_transfer(image, source, reference, np.ones((40, 40), bool))
    for c in range(3):
        for q in (0.1, 0.5, 0.9):
            assert np.quantile(out[..., c][source], q) == pytest.approx(np.quantile(reference[..., c], q), abs=0.02)


def test_make_composites_records_the_kind_of_each_mismatch(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=6)
    rows = make_composites(src, tmp_path / "out", modes=("retouch", "transfer", "illuminant"), seed=1, val_fraction=0.3)
    assert rows == list(read_manifest(tmp_path / "out"))
    by_kind = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
        assert row_kind(row) == row["kind"] and row["mode"] == f"{row['kind']}_{row['mode'][-2:]}"
    assert sorted(by_kind) == ["illuminant", "retouch", "transfer"]
    assert all(len(v) == 12 for v in by_kind.values())  # 6 photos x (fg + bg)
    split = {row["sources"][0]: row["split"] for row in rows}
    for row in by_kind["transfer"]:
        edit = row["edit"]
        assert edit["method"] in ("lab", "hist") and edit["reference"] in ("object", "frame")
        # The other photo comes from the same split, so no held-out photo's colours leak into training.
        assert edit["from"] != row["sources"][0] and split[edit["from"]] == row["split"]
    for row in by_kind["illuminant"]:
        assert 2500 <= row["edit"]["cct"] <= 12000 and -1.5 <= row["edit"]["stops"] <= 1.0
    # Each edited foreground differs from its target inside the mask.
    for row in by_kind["transfer"] + by_kind["illuminant"]:
        comp = cv2.imread(str(tmp_path / "out" / row["composite"])).astype(int)
        target = cv2.imread(str(tmp_path / "out" / row["target"])).astype(int)
        mask = cv2.imread(str(tmp_path / "out" / row["mask"]), cv2.IMREAD_GRAYSCALE)
        assert np.abs(comp[mask > 200] - target[mask > 200]).mean() > 0.5
        assert np.abs(comp[mask == 0] - target[mask == 0]).max() <= 1

    # Evaluation picks kinds; rows written before kinds existed count by their mode.
    val = discover(tmp_path / "out", None, ("transfer",))
    assert len(val) == sum(r["split"] == "val" for r in by_kind["transfer"]) and all("transfer" in i.name for i in val)
    assert len(discover(tmp_path / "out", "all", ("retouch", "illuminant"))) == 24
    assert row_kind({"mode": "retouch_fg"}) == "retouch" and row_kind({"domain": "rendered", "mode": "x"}) == "rendered"
    with pytest.raises(DatasetError, match="kinds here: illuminant, retouch, transfer"):
        discover(tmp_path / "out", "all", ("pairs",))


def test_an_absent_kind_names_the_kinds_of_the_split_asked_for(tmp_path):
    rows = [("a", "val", "retouch"), ("b", "val", "illuminant"), ("c", "train", "transfer"), ("d", "train", "retouch")]
    lines = [
        json.dumps({"id": f"{kind}_fg_{stem}", "mode": f"{kind}_fg", "role": "supervised", "split": split,
                    "composite": f"composites/{stem}.png", "background": f"backgrounds/{stem}.png",
                    "mask": f"masks/{stem}.png", "target": f"targets/{stem}.png", "kind": kind})
        for stem, split, kind in rows
    ]
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    # transfer is in the folder, but not in the held-out split that eval reads by default: say so, not "here"
    with pytest.raises(DatasetError, match=r"kinds here: illuminant, retouch; transfer only in other splits"):
        discover(tmp_path, None, ("transfer",))
    with pytest.raises(DatasetError, match=r"kinds here: illuminant, retouch, transfer\)"):
        discover(tmp_path, "all", ("pairs",))
    assert [item.name for item in discover(tmp_path, "train", ("transfer",))] == ["transfer_fg_c"]


def test_transfer_needs_another_photo_in_the_split(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=1)
    skipped = []
    with pytest.raises(DatasetError):
        make_composites(src, tmp_path / "out", modes=("transfer",), val_fraction=0.0, on_skip=lambda s, r: skipped.append(r))
    assert "another photo" in skipped[0]
