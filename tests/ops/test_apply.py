"""The fast NumPy/OpenCV apply against the differentiable torch reference, plus its edge cases."""

import numpy as np
import pytest
import torch

import harmcli.ops.apply as apply_mod
from harmcli.ops.adjustment import Adjustment
from harmcli.ops.apply import _column_runs, apply_adjustment, mask_bbox, mask_to_float
from harmcli.ops.compose import apply_adjustment_torch

SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def torch_reference(image: np.ndarray, mask: np.ndarray, adjustment: Adjustment, device: str = "cpu") -> np.ndarray:
    """``apply_adjustment_torch`` in float32 on ``device``, returned as float64 on the image's scale."""
    scale = SCALE.get(image.dtype, 1.0)
    composite = torch.from_numpy(image.astype(np.float32) / np.float32(scale)).permute(2, 0, 1)[None]
    weight = torch.from_numpy(mask_to_float(mask))[None, None]
    shading = None if adjustment.shading is None else torch.from_numpy(adjustment.shading)[None, None].to(device)
    out = apply_adjustment_torch(
        composite.to(device),
        weight.to(device),
        torch.from_numpy(adjustment.curve_y)[None].to(device),
        shading,
        torch.from_numpy(adjustment.curve_x)[None].to(device),
    )
    return out[0].permute(1, 2, 0).cpu().numpy().astype(np.float64) * scale


def random_adjustment(rng, n_points=32, uniform=True, shading_size=(32, 32)) -> Adjustment:
    if uniform:
        x = np.linspace(0, 1, n_points)
    else:
        x = np.concatenate([[0.0], np.sort(rng.uniform(0.01, 0.99, n_points - 2)), [1.0]])
    y = rng.uniform(0, 1, (3, n_points))  # not monotone: harder than anything a network predicts
    shading = None
    if shading_size is not None:
        shading = np.clip(np.exp(rng.normal(0, 0.7, shading_size)), 0.25, 4.0)
    return Adjustment(np.tile(x, (3, 1)).astype(np.float32), y.astype(np.float32), shading)


def soft_object_mask(rng, height, width, dtype=np.uint8) -> np.ndarray:
    """A blurred disc plus a speckled patch (many short soft/empty column runs), on ``dtype``'s full scale."""
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.2, 0.6) * max(height, width)
    weight = np.clip((r - np.hypot(yy - cy, xx - cx)) / 6.0, 0.0, 1.0)
    patch = rng.random((height, width)) * (rng.random((height, width)) > 0.5)
    weight[: height // 3, : width // 3] = patch[: height // 3, : width // 3]
    if dtype == np.uint8:
        return np.rint(weight * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(weight * 65535).astype(np.uint16)
    return weight.astype(dtype)


def assert_within_one_code(out, image, mask, adjustment):
    expected = np.rint(torch_reference(image, mask, adjustment))
    diff = np.abs(out.astype(np.float64) - expected)
    assert diff.max() <= 1.0, f"max difference {diff.max()} code values"
    background = mask_to_float(mask) == 0
    assert np.array_equal(out[background], image[background])


@pytest.fixture
def small_strips(monkeypatch):
    """Many strips and short runs on small images, so that strip and run boundaries are exercised."""
    monkeypatch.setattr(apply_mod, "STRIP_PIXELS", 1024)
    monkeypatch.setattr(apply_mod, "MIN_RUN", 8)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("mask_dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("uniform", [True, False])
def test_matches_torch_within_one_code(rng, small_strips, dtype, mask_dtype, uniform):
    height, width = 97, 131
    image = rng.integers(0, np.iinfo(dtype).max + 1, (height, width, 3)).astype(dtype)
    mask = soft_object_mask(rng, height, width, mask_dtype)
    adjustment = random_adjustment(rng, n_points=int(rng.integers(2, 40)), uniform=uniform)
    assert_within_one_code(apply_adjustment(image, mask, adjustment), image, mask, adjustment)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shading_size", [None, (1, 1), (7, 5), (32, 32), (300, 40)])
def test_matches_torch_any_shading_size(rng, small_strips, dtype, shading_size):
    # (300, 40) is taller than the image: the gain rows take the gather path instead of segments.
    height, width = 61, 203
    image = rng.integers(0, np.iinfo(dtype).max + 1, (height, width, 3)).astype(dtype)
    mask = soft_object_mask(rng, height, width)
    adjustment = random_adjustment(rng, shading_size=shading_size)
    assert_within_one_code(apply_adjustment(image, mask, adjustment), image, mask, adjustment)


def test_default_strips_and_full_mask_match_torch(rng):
    # Real strip sizes, a mask that is fully on over most rows (runs with no blending at all).
    height, width = 601, 333
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    mask = np.full((height, width), 255, np.uint8)
    mask[:40] = 0
    mask[40:60] = 128
    adjustment = random_adjustment(rng, shading_size=(256, 256))
    assert_within_one_code(apply_adjustment(image, mask, adjustment), image, mask, adjustment)


def test_shading_upsampling_is_exact_bilinear(rng, small_strips):
    # Float image and identity curves isolate the gain map: it must be F.interpolate's, not 1/32-pixel rounded.
    image = np.full((53, 77, 3), 0.2, np.float32)
    mask = np.ones((53, 77), np.float32)
    identity = Adjustment.identity()
    adjustment = Adjustment(identity.curve_x, identity.curve_y, np.clip(np.exp(rng.normal(0, 1, (6, 9))), 0.25, 4))
    out = apply_adjustment(image, mask, adjustment)
    np.testing.assert_allclose(out, torch_reference(image, mask, adjustment), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_match_torch(rng, small_strips, dtype):
    image = rng.uniform(0, 1, (45, 67, 3)).astype(dtype)
    mask = soft_object_mask(rng, 45, 67, np.float32)
    adjustment = random_adjustment(rng, uniform=False)
    out = apply_adjustment(image, mask, adjustment)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, torch_reference(image, mask, adjustment), atol=1e-5)
    background = mask == 0
    assert np.array_equal(out[background], image[background])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_identity_adjustment_returns_exact_copy(rng, dtype):
    image = (rng.random((31, 29, 3)) * (255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1)).astype(dtype)
    mask = soft_object_mask(rng, 31, 29)
    out = apply_adjustment(image, mask, Adjustment.identity())
    assert out is not image and out.dtype == dtype
    assert np.array_equal(out, image)


def test_identity_curves_with_unit_shading_is_exact(rng, small_strips):
    # Curves and gain of exactly 1 go through the whole computation and must still round back to the input.
    image = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    mask = soft_object_mask(rng, 40, 50)
    identity = Adjustment.identity()
    out = apply_adjustment(image, mask, Adjustment(identity.curve_x, identity.curve_y, np.ones((8, 8), np.float32)))
    assert np.array_equal(out, image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_empty_mask_returns_copy(rng, dtype):
    image = (rng.random((20, 30, 3)) * 200).astype(dtype)
    out = apply_adjustment(image, np.zeros((20, 30), np.uint8), random_adjustment(rng))
    assert out is not image
    assert np.array_equal(out, image)


def test_background_bit_exact_with_speckled_mask(rng, small_strips):
    # Short empty gaps are blended with weight 0 rather than skipped: they must still come back unchanged.
    image = rng.integers(0, 256, (64, 96, 3)).astype(np.uint8)
    mask = ((rng.random((64, 96)) > 0.7) * rng.integers(1, 256, (64, 96))).astype(np.uint8)
    out = apply_adjustment(image, mask, random_adjustment(rng))
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert not np.array_equal(out[mask > 0], image[mask > 0])


@pytest.mark.parametrize(
    "region",
    [(0, 1, 0, 131), (96, 97, 0, 131), (0, 97, 0, 1), (0, 97, 130, 131), (0, 1, 0, 1), (96, 97, 130, 131), (0, 97, 0, 131)],
    ids=["top-row", "bottom-row", "left-column", "right-column", "top-left-pixel", "bottom-right-pixel", "whole"],
)
def test_mask_touching_the_borders(rng, small_strips, region):
    image = rng.integers(0, 256, (97, 131, 3)).astype(np.uint8)
    mask = np.zeros((97, 131), np.uint8)
    y0, y1, x0, x1 = region
    mask[y0:y1, x0:x1] = rng.integers(1, 256, (y1 - y0, x1 - x0))
    adjustment = random_adjustment(rng)
    out = apply_adjustment(image, mask, adjustment)
    assert_within_one_code(out, image, mask, adjustment)
    assert mask_bbox(mask) == region


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (2, 3)])
def test_tiny_and_thin_images(rng, shape):
    image = rng.integers(0, 256, (*shape, 3)).astype(np.uint8)
    mask = rng.integers(0, 256, shape).astype(np.uint8)
    adjustment = random_adjustment(rng)
    assert_within_one_code(apply_adjustment(image, mask, adjustment), image, mask, adjustment)


def test_non_contiguous_input(rng, small_strips):
    bgr = rng.integers(0, 256, (50, 70, 3)).astype(np.uint8)
    image = bgr[..., ::-1]  # the usual BGR -> RGB view
    mask = soft_object_mask(rng, 50, 70)
    adjustment = random_adjustment(rng)
    out = apply_adjustment(image, mask, adjustment)
    assert out.flags.c_contiguous
    assert np.array_equal(out, apply_adjustment(np.ascontiguousarray(image), mask, adjustment))
    assert_within_one_code(out, np.ascontiguousarray(image), mask, adjustment)


def test_thread_count_does_not_change_the_result(rng, small_strips, monkeypatch):
    image = rng.integers(0, 256, (120, 90, 3)).astype(np.uint8)
    mask = soft_object_mask(rng, 120, 90)
    adjustment = random_adjustment(rng)
    monkeypatch.setattr(apply_mod, "worker_count", lambda: 1)
    serial = apply_adjustment(image, mask, adjustment)
    monkeypatch.setattr(apply_mod, "worker_count", lambda: 4)
    assert np.array_equal(apply_adjustment(image, mask, adjustment), serial)


def test_rejects_mismatched_shapes_and_dtypes():
    with pytest.raises(ValueError, match="must match"):
        apply_adjustment(np.zeros((4, 5, 3), np.uint8), np.zeros((4, 6), np.uint8), Adjustment.identity())
    with pytest.raises(ValueError, match="uint8, uint16"):
        apply_adjustment(np.zeros((4, 5, 3), np.int32), np.zeros((4, 5), np.uint8), Adjustment.identity())


def test_column_runs_known_values():
    full, soft, none = 255, 100, 0
    row = np.array([none] * 10 + [soft] * 2 + [full] * 10 + [none] * 3 + [full] * 10 + [none] * 5, np.uint8)
    runs = _column_runs(np.stack([row, row]), 255, min_run=4)
    # Empty columns at the ends are skipped; the 3 empty columns between two full runs are too few to skip,
    # so they are blended (with weight 0) as a soft run.
    assert runs == [(10, 12, True), (12, 22, False), (22, 25, True), (25, 35, False)]
    # With a large minimum everything between the first and last masked column is one soft run.
    assert _column_runs(np.stack([row, row]), 255, min_run=64) == [(10, 35, True)]
    assert _column_runs(np.zeros((3, 9), np.uint8), 255) == []


def test_mask_bbox():
    mask = np.zeros((10, 12), np.uint8)
    assert mask_bbox(mask) is None
    mask[3:5, 7:9] = 1
    assert mask_bbox(mask) == (3, 5, 7, 9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_path_on_cuda_matches_cpu_and_fast_path(rng):
    image = rng.integers(0, 256, (97, 131, 3)).astype(np.uint8)
    mask = soft_object_mask(rng, 97, 131)
    adjustment = random_adjustment(rng)
    on_cpu = torch_reference(image, mask, adjustment, "cpu")
    on_gpu = torch_reference(image, mask, adjustment, "cuda")
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-3)
    assert np.abs(apply_adjustment(image, mask, adjustment).astype(np.float64) - np.rint(on_gpu)).max() <= 1
