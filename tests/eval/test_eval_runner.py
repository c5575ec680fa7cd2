"""The runner: loading (bit depth, sizes, backgrounds), method parsing, and the picture collector."""

import math

import cv2
import numpy as np
import pytest

from harmcli.errors import InputMismatchError, UsageError
from harmcli.data.layouts import discover
from harmcli.eval.runner import GridCollector, build_methods, evaluate, load_item, parse_methods


def _plain(root, depth=8, seed=0):
    rng = np.random.default_rng(seed)
    for name in ("a", "b"):
        gt = rng.integers(0, 256, (24, 30, 3)).astype(np.uint8)
        mask = np.zeros((24, 30), np.uint8)
        mask[4:16, 6:20] = 255
        comp = gt.copy()
        comp[mask > 0] //= 2
        for folder, image in (("composites", comp), ("gt", gt), ("masks", mask), ("backgrounds", gt)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            if depth == 16 and image.ndim == 3:
                image = image.astype(np.uint16) * 257
            cv2.imwrite(str(root / folder / f"{name}.png"), image[..., ::-1] if image.ndim == 3 else image)
    return root


def test_sixteen_bit_images_score_like_eight_bit(tmp_path):
    items8 = discover(_plain(tmp_path / "d8", 8))
    items16 = discover(_plain(tmp_path / "d16", 16))
    loaded = load_item(items16[0])
    assert loaded.composite.dtype == np.uint16 and loaded.background is not loaded.composite
    assert loaded.mask.dtype == np.float32 and loaded.mask.max() == 1.0
    methods = build_methods(["identity", "hist"])
    r8, r16 = evaluate(items8, methods), evaluate(items16, methods)
    for name in ("identity", "hist"):
        for key in ("MSE", "fMSE", "SSIM"):
            assert r16.summary[name][key] == pytest.approx(r8.summary[name][key], rel=1e-3, abs=1e-6)


def test_size_mismatch_is_reported(tmp_path):
    root = _plain(tmp_path / "d")
    cv2.imwrite(str(root / "gt" / "a.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputMismatchError, match="ground truth is 10x10"):
        load_item(discover(root)[0])


def test_parse_methods():
    assert parse_methods(None) == ["harmcli", "identity", "reinhard", "hist"]
    assert parse_methods(["hist,identity", "hist"]) == ["hist", "identity"]
    with pytest.raises(UsageError):
        parse_methods(["nope"])


def test_grid_collector_keeps_worst_and_best(tmp_path):
    collector = GridCollector("identity", k=2)
    items = discover(_plain(tmp_path / "d"))
    loaded = load_item(items[0])
    scores = [5.0, 1.0, 9.0, math.nan, 3.0, 7.0]
    for i, score in enumerate(scores):
        item = items[0].__class__(f"i{i}", items[0].composite_path, items[0].mask_path, items[0].target_path)
        collector(item, loaded, {"identity": loaded.composite}, {"identity": {"fMSE": score}})
    assert [name for _, name, _ in collector.worst] == ["i2", "i5"]
    assert [name for _, name, _ in collector.best] == ["i1", "i4"]
    picture = collector.render()
    assert picture.dtype == np.uint8 and picture.shape[2] == 3 and picture.shape[0] > 4 * 192
