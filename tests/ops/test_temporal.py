"""Temporal smoothing, scene cuts and the flicker measure, on hand-built adjustment sequences."""

import numpy as np
import pytest

from harmcli.ops.temporal import (
    SmoothedAdjustments,
    find_scene_cuts,
    flicker,
    mean_correction,
    scene_signature,
    temporal_weights,
)

K = 16
GRID = np.linspace(0, 1, K)


def gamma_curves(gammas: np.ndarray) -> np.ndarray:
    """(T, 3, K): one power curve per frame and channel (gammas (T,) or (T, 3))."""
    g = np.asarray(gammas, dtype=np.float64)
    g = np.broadcast_to(g[:, None] if g.ndim == 1 else g, (len(g), 3))
    return (GRID[None, None, :] ** g[:, :, None]).astype(np.float32)


def jittery_step(n=48, step_at=24, seed=0, noise=0.06):
    """True gammas 0.7 then 1.3 (a real change of light at ``step_at``) plus per-frame jitter."""
    rng = np.random.default_rng(seed)
    truth = np.where(np.arange(n) < step_at, 0.7, 1.3)
    return truth, truth + rng.normal(0, noise, n)


def grey_thumb():
    ramp = np.linspace(0.05, 0.95, 32, dtype=np.float32)
    return np.repeat(np.tile(ramp, (32, 1))[..., None], 3, axis=2), np.ones((32, 32), np.float32)


def corrections(adjustments):
    image, mask = grey_thumb()
    return np.stack([mean_correction(image, mask, a) for a in adjustments])


def test_sigma_zero_is_the_prediction_exactly():
    _, noisy = jittery_step()
    curves = gamma_curves(noisy)
    gains = np.random.default_rng(1).uniform(0.5, 2.0, (len(curves), 8, 8)).astype(np.float32)
    masks = np.ones((len(curves), 4, 4), np.float32)
    smooth = SmoothedAdjustments(curves, gains, masks, sigma_frames=0)
    for t in (0, 7, 47):
        assert np.array_equal(smooth[t].curve_y, curves[t])
        assert np.array_equal(smooth[t].shading, gains[t])


def test_smoothing_halves_flicker_and_follows_a_step():
    truth, noisy = jittery_step()
    curves = gamma_curves(noisy)
    masks = np.ones((len(curves), 4, 4), np.float32)
    per_frame = SmoothedAdjustments(curves, None, masks, sigma_frames=0)
    smooth = SmoothedAdjustments(curves, None, masks, sigma_frames=6)
    raw_c = corrections(per_frame[t] for t in range(len(curves)))
    smooth_c = corrections(smooth[t] for t in range(len(curves)))
    true_c = corrections(SmoothedAdjustments(gamma_curves(truth), None, masks, sigma_frames=0)[t] for t in range(48))
    # The pair of frames across the real change is part of both measures: the step itself (~23 code values)
    # is kept, so the smoothed flicker is mostly that one step spread over 47 pairs.
    assert flicker(smooth_c) <= 0.5 * flicker(raw_c)
    step = true_c[24] - true_c[23]
    assert np.abs(step).mean() > 15
    # Right before and right after the change the smoothed correction is on the correct side, close to the truth:
    # the range kernel keeps the other scene's light out of the average.
    for t in (22, 23, 24, 25):
        assert np.abs(smooth_c[t] - true_c[t]).mean() < 3.0, t
    # Away from the step, the smoothed values are closer to the truth than the jittering prediction.
    inner = [t for t in range(48) if abs(t - 23.5) > 3]
    assert np.abs(smooth_c[inner] - true_c[inner]).mean() < 0.5 * np.abs(raw_c[inner] - true_c[inner]).mean()


def test_smoothed_curves_stay_monotone_and_in_range():
    rng = np.random.default_rng(3)
    y = np.sort(rng.uniform(0, 1, (30, 3, K)), axis=-1).astype(np.float32)
    y[:, :, 0], y[:, :, -1] = 0.0, 1.0
    smooth = SmoothedAdjustments(y, None, np.ones((30, 4, 4), np.float32), sigma_frames=5)
    for t in range(30):
        out = smooth[t].curve_y
        assert np.all(np.diff(out, axis=-1) >= 0) and out.min() >= 0 and out.max() <= 1


def test_no_weight_crosses_a_scene_cut_or_an_empty_frame():
    _, noisy = jittery_step(step_at=100)  # no real change: one light
    curves = gamma_curves(noisy)
    valid = np.ones(48, bool)
    valid[10] = False
    windows, jitter = temporal_weights(curves, np.zeros(48), sigma_frames=6, cuts=[30], valid=valid)
    assert jitter > 0
    for t in range(48):
        win = windows[t]
        frames = np.arange(win.lo, win.hi)
        used = frames[win.weights > 0]
        assert np.isclose(win.weights.sum(), 1.0)
        assert np.all((used < 30) == (t < 30)), t
        if t != 10:
            assert 10 not in used
    assert windows[10].weights[10 - windows[10].lo] == 1.0  # an empty frame keeps its own (unused) adjustment


def test_shading_is_smoothed_in_log_gain_where_the_subject_was():
    n = 20
    rng = np.random.default_rng(5)
    curves = gamma_curves(np.ones(n))
    # The overall gain jitters around x1.5 (log-normal); the subject covers the left half of each thumbnail.
    level = 1.5 * np.exp(rng.normal(0, 0.1, n))
    gains = (level[:, None, None] * np.ones((n, 16, 16))).astype(np.float32)
    gains[:, :, 8:] = rng.uniform(0.3, 3.0, (n, 16, 8))  # outside the subject: noise that must not leak in
    masks = np.zeros((n, 8, 8), np.float32)
    masks[:, :, :4] = 1.0
    smooth = SmoothedAdjustments(curves, gains, masks, sigma_frames=3)
    inside = np.array([np.log(smooth[t].shading[:, :6]).mean() for t in range(n)])
    raw = np.log(level)
    assert np.std(inside) < 0.5 * np.std(raw)
    assert abs(np.mean(inside) - np.log(1.5)) < 0.05


def test_scene_cuts_from_background_histograms():
    rng = np.random.default_rng(0)
    warm = np.clip(rng.normal([0.7, 0.5, 0.3], 0.05, (20, 32, 32, 3)), 0, 1)
    cool = np.clip(rng.normal([0.2, 0.4, 0.7], 0.05, (10, 32, 32, 3)), 0, 1)
    frames = np.concatenate([warm, cool])
    frames[5:12, 8:20, 8:20] = [0.9, 0.9, 0.9]  # an object passing by is not a cut
    cuts = find_scene_cuts(np.stack([scene_signature(f) for f in frames]))
    assert cuts == [20]
    # A fade of a flat colour, 4 code values a frame, crosses histogram bins but moves the colours little: no cut.
    fade = [np.full((16, 16, 3), 40 + 4 * t, np.uint8) for t in range(30)]
    assert find_scene_cuts(np.stack([scene_signature(f) for f in fade])) == []
    # The subject is left out when a mask is given: a large object appearing is not a new scene.
    with_object = frames[:20].copy()
    with_object[10:, 4:28, 4:28] = [0.05, 0.95, 0.05]
    mask = np.zeros((32, 32), np.float32)
    mask[4:28, 4:28] = 1.0
    sigs = [scene_signature(f, mask if t >= 10 else None) for t, f in enumerate(with_object)]
    assert find_scene_cuts(np.stack(sigs)) == []
    assert find_scene_cuts(np.stack([scene_signature(f) for f in with_object])) == [10]


@pytest.mark.parametrize("values, expected", [([[0, 0, 0], [3, 3, 3], [3, 3, 3], [0, 0, 0]], 2.0)])
def test_flicker_is_the_mean_absolute_step(values, expected):
    assert flicker(np.array(values, float)) == pytest.approx(expected)
    assert flicker(np.array(values, float), cuts=[1]) == pytest.approx(1.5)  # the 0 -> 3 pair is across a cut


def exposure_clip(n=40, seed=0, compensate=True, jitter=0.02):
    """Grey subjects whose exposure wanders; the 'network' answers each frame with a linear curve that brings the
    subject back to 0.5 (``compensate``) or with the identity, plus its own jitter."""
    rng = np.random.default_rng(seed)
    exposure = 0.5 * np.exp(rng.normal(0, 0.1, n))
    images = np.repeat(exposure[:, None, None, None], 3, axis=3) * np.ones((n, 8, 8, 3))
    masks = np.zeros((n, 8, 8), np.float32)
    masks[:, 2:6, 2:6] = 1.0
    slope = (0.5 / exposure if compensate else np.ones(n)) * np.exp(rng.normal(0, jitter, n))
    curves = np.clip(GRID[None, None, :] * slope[:, None, None], 0, 1) * np.ones((n, 3, 1))
    return images.astype(np.float32), masks, curves.astype(np.float32)


def output_means(smooth, images, masks):
    return np.stack([mean_correction(images[t], masks[t], smooth[t]) / 255.0 + images[t][3, 3] for t in range(len(images))])


def test_a_compensating_answer_to_the_subjects_own_change_is_kept():
    images, masks, curves = exposure_clip()
    plain = SmoothedAdjustments(curves, None, masks, sigma_frames=6)
    matched = SmoothedAdjustments(curves, None, masks, sigma_frames=6, images=images)
    per_frame = SmoothedAdjustments(curves, None, masks, sigma_frames=0, images=images)
    flick = {name: flicker(output_means(s, images, masks)) for name, s in
             (("plain", plain), ("matched", matched), ("per_frame", per_frame))}
    # Smoothing the curves alone lets the subject's exposure through; with the regression the result stays as
    # still as the per-frame answer makes it, minus that answer's own jitter.
    assert flick["matched"] < 0.5 * flick["plain"]
    assert flick["matched"] < flick["per_frame"]
    for t in range(40):
        assert np.all(np.diff(matched[t].curve_y, axis=-1) >= 0)


def test_identity_predictions_stay_the_identity_when_the_input_wanders():
    images, masks, curves = exposure_clip(compensate=False, jitter=0.0)
    matched = SmoothedAdjustments(curves, None, masks, sigma_frames=6, images=images)
    for t in (0, 17, 39):
        assert np.allclose(matched[t].curve_y, curves[t], atol=1e-6)
