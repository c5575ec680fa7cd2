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


def test_files_with_another_colour_profile_are_scored_in_srgb(tmp_path):
    """A ground truth saved in Adobe RGB shows the same colours as the sRGB composite: identity scores ~0."""
    from harmcli.io.colour import convert
    from harmcli.io.images import write_image
    from harmcli.io.metadata import ImageMetadata

    from tests.io.icc import ADOBE_RGB, build_rgb_profile

    adobe = build_rgb_profile("Adobe RGB (test)", **ADOBE_RGB)
    root = _plain(tmp_path / "d")
    for name in ("a", "b"):
        same = cv2.imread(str(root / "composites" / f"{name}.png"))[..., ::-1]
        encoded, _ = convert(np.ascontiguousarray(same), None, adobe)
        assert np.abs(encoded.astype(int) - same).mean() > 5  # other numbers for the same colours
        write_image(root / "gt" / f"{name}.png", encoded, metadata=ImageMetadata(icc=adobe))
    loaded = load_item(discover(root)[0])
    # Back in sRGB within the rounding of an 8-bit Adobe RGB file (coarser steps: a wider gamut in 256 levels).
    assert np.abs(loaded.target.astype(int) - loaded.composite).mean() < 0.6
    result = evaluate(discover(root), build_methods(["identity"]))
    assert result.summary["identity"]["fMSE"] < 1.0
