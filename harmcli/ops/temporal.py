"""Temporal smoothing of per-frame adjustments, scene cuts and a flicker measure (plain NumPy).

A network run on each frame of a clip alone jitters: the subject's colour pumps from frame to frame. The
adjustment is a few hundred numbers per frame, so it can be smoothed over time after every frame has been
predicted, before any frame is written.

**The filter** is a zero-phase (centred, non-causal) *temporal bilateral* average: frame ``t`` gets

    w(t, s) = exp(-(t - s)^2 / 2 sigma_t^2) * exp(-d(t, s)^2 / 2 h^2)

over the frames ``s`` of its own scene, where ``d`` is how differently the two adjustments change a picture
(see :func:`adjustment_distance`). Why this one:

* centred, so a slow real change (a fade, a cloud) is followed without the lag of a causal filter such as an
  exponential or one-euro filter (a centred symmetric average reproduces a ramp exactly);
* the range term ``h`` is a multiple of the clip's own jitter, estimated robustly as the median distance
  between consecutive frames: jitter (distances near the median) is averaged away, while a real change in
  the scene's light, several times larger, gives near-zero weight across it, so a step stays a step;
* every output is a convex combination of predicted adjustments with one weight per frame, so smoothed curves
  are still monotone and in [0, 1] (a weighted mean of increasing functions increases), and shading, averaged
  as log-gain, stays within the range the network can produce.

**Curves** are averaged point by point. **Shading** is a gain map in image coordinates while the subject
moves, and the network's map outside the mask means nothing; so its log-gain is split into the mean over the
mask (the overall exposure: averaged like the curves) and the residual pattern, which is averaged per pixel
only over the frames in which that pixel was inside the mask (on a 64-pixel thumbnail; the smoothed change is
upsampled and added to the frame's own full map, so ``sigma_t = 0`` gives back exactly the predicted map).

**Scene cuts** split the clip into scenes that are smoothed separately: a cut is where the colours of the
background (outside the subject) move by more than ``CUT_THRESHOLD`` from one frame to the next.

**Flicker** (:func:`flicker`) is the mean frame-to-frame change of the correction the foreground receives (the
masked mean of output minus input), in code values, the thing a viewer sees pumping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from harmcli.ops.adjustment import SHADING_RANGE, Adjustment
from harmcli.ops.apply import apply_adjustment

# Histogram bins per channel of the scene signature, and the move of the background's colours between two frames
# (earth mover's distance, a fraction of the range) that counts as a cut. Measured on the test and example clips:
# 0.001-0.004 between ordinary frames, 0.056 for a sudden x1.15/x0.8 change of light (followed by the smoothing
# itself), 0.12 for a x1.35/x0.7 one, 0.3 and more between different scenes.
CUT_BINS = 64
CUT_THRESHOLD = 0.08
# The range kernel's width in units of the clip's typical frame-to-frame jitter (the median step): two frames
# that differ by jitter alone weigh ~0.95 of each other; a change 10x the jitter gets under 0.5 % weight.
# Measured on a jittery step (tests/ops/test_temporal.py): 2 left noise in, 5 let the step leak.
RANGE_FACTOR = 3.0
# Below this (in output units, 0..1) differences are invisible: a clip with no jitter at all still smooths.
MIN_JITTER = 0.5 / 255.0
# The Gaussian time window is cut at this many sigmas.
WINDOW_SIGMAS = 3.0
# Side of the thumbnails the shading residual is smoothed on and the flicker is measured on.
THUMB = 64
# A thumbnail pixel counts as "inside the mask" in other frames above this total weight.
MIN_MASK_WEIGHT = 1e-3
# How far the per-channel gain that matches the smoothed target colour may move the smoothed curves.
MATCH_RANGE = (0.8, 1.25)
# The correction's slope against the subject's input colour: -1 = holds the result still (full compensation),
# 0 = ignores the input; a network's answer beyond these is jitter. The ridge term makes input changes under
# ~2 code values (grain, compression) count as no change.
SLOPE_RANGE = (-1.0, 0.0)
RIDGE = (2.0 / 255.0) ** 2


# --------------------------------------------------------------------------------------------- scene cuts


def scene_signature(background: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-channel colour histograms of a (low-res) RGB background, float in [0, 1] or uint8, over the pixels
    outside ``mask`` (where the subject is not): (3, CUT_BINS), each channel summing to 1."""
    image = np.asarray(background)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    where = None
    if mask is not None:
        where = (np.asarray(mask) < 0.5).astype(np.uint8)
        if not where.any():
            where = None
    hists = [cv2.calcHist([np.ascontiguousarray(image[..., c])], [0], where, [CUT_BINS], [0, 256]).ravel() for c in range(3)]
    out = np.stack(hists).astype(np.float32)
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1.0)


def find_scene_cuts(signatures: np.ndarray, threshold: float = CUT_THRESHOLD) -> list[int]:
    """Frames that start a new scene (never 0): where the background's colours move by more than ``threshold``.

    The distance is the earth mover's distance between consecutive histograms, as a fraction of the range,
    averaged over channels: how far the colours moved. Unlike a bin-by-bin difference it grows smoothly with a
    fade or a change of light, instead of jumping when a flat colour crosses a bin edge.
    """
    sig = np.asarray(signatures, dtype=np.float64)
    if len(sig) < 2:
        return []
    cdf = np.cumsum(sig, axis=-1)
    moved = np.abs(np.diff(cdf, axis=0)).sum(axis=-1).mean(axis=-1) / sig.shape[-1]
    return [int(i) + 1 for i in np.flatnonzero(moved > threshold)]


def scene_ids(n_frames: int, cuts: Sequence[int]) -> np.ndarray:
    """(n_frames,) int: which scene each frame belongs to."""
    ids = np.zeros(n_frames, dtype=np.int64)
    for cut in cuts:
        ids[cut:] += 1
    return ids


# --------------------------------------------------------------------------------------------- smoothing


def adjustment_distance(curves_a: np.ndarray, mean_log_a: float, curves_b: np.ndarray, mean_log_b) -> np.ndarray:
    """How differently two adjustments change a picture, in output units (0..1).

    ``curves_*``: (..., 3, K) curve y on the same grid; ``mean_log_*``: the shading's mean log-gain over the
    mask. The RMS curve difference, and the shading's overall gain difference as it moves a mid-grey (0.5)
    pixel, combined as a root sum of squares.
    """
    curve_part = np.sqrt(np.mean((np.asarray(curves_a) - np.asarray(curves_b)) ** 2, axis=(-2, -1)))
    gain_part = 0.5 * np.abs(np.asarray(mean_log_a) - np.asarray(mean_log_b))
    return np.sqrt(curve_part**2 + gain_part**2)


@dataclass
class Window:
    """Frame ``t``'s neighbours ``lo:hi`` and their weights (summing to 1; 0 for unusable frames)."""

    lo: int
    hi: int
    weights: np.ndarray


def temporal_weights(
    curves: np.ndarray,
    mean_log_gain: np.ndarray,
    *,
    sigma_frames: float,
    cuts: Sequence[int] = (),
    valid: np.ndarray | None = None,
    range_factor: float | None = None,
) -> tuple[list[Window], float]:
    """The bilateral weights of every frame, and the jitter estimate they used.

    Args:
        curves: (T, 3, K) predicted curve y per frame.
        mean_log_gain: (T,) each frame's mean log shading gain over its mask (0 without shading).
        sigma_frames: the time kernel's sigma in frames (0: every frame keeps its own adjustment).
        cuts: frames that start a new scene; no weight crosses a cut.
        valid: (T,) bool, False for frames with nothing to adjust (empty mask): they lend no weight.
        range_factor: the range kernel's width in units of the jitter (default ``RANGE_FACTOR``).
    """
    range_factor = RANGE_FACTOR if range_factor is None else range_factor
    curves = np.asarray(curves, dtype=np.float64)
    logs = np.asarray(mean_log_gain, dtype=np.float64)
    n = len(curves)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    scenes = scene_ids(n, cuts)
    steps = adjustment_distance(curves[1:], logs[1:], curves[:-1], logs[:-1]) if n > 1 else np.zeros(0)
    usable = (scenes[1:] == scenes[:-1]) & valid[1:] & valid[:-1] if n > 1 else np.zeros(0, bool)
    # Median, not mean: the few real changes are outliers among the many jittering steps.
    jitter = float(np.median(steps[usable])) if usable.any() else 0.0
    h = range_factor * max(jitter, MIN_JITTER)
    radius = int(np.ceil(WINDOW_SIGMAS * sigma_frames)) if sigma_frames > 0 else 0
    windows = []
    for t in range(n):
        lo, hi = max(0, t - radius), min(n, t + radius + 1)
        if radius == 0 or not valid[t]:
            weights = np.zeros(hi - lo)
            weights[t - lo] = 1.0
            windows.append(Window(lo, hi, weights))
            continue
        offsets = np.arange(lo, hi) - t
        distance = adjustment_distance(curves[lo:hi], logs[lo:hi], curves[t], logs[t])
        weights = np.exp(-0.5 * (offsets / sigma_frames) ** 2 - 0.5 * (distance / h) ** 2)
        weights[(scenes[lo:hi] != scenes[t]) | ~valid[lo:hi]] = 0.0
        windows.append(Window(lo, hi, weights / weights.sum()))
    return windows, jitter


def masked_mean_log(gain: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """Split a shading gain map into its mean log-gain over ``mask`` and the residual log-gain pattern, both on
    the mask's (thumbnail) grid: returns ``(mean, residual)``."""
    log = np.log(cv2.resize(np.asarray(gain, np.float32), mask.shape[::-1], interpolation=cv2.INTER_AREA))
    weight = float(mask.sum())
    mean = float((log * mask).sum() / weight) if weight > 0 else float(log.mean())
    return mean, (log - mean).astype(np.float32)


class SmoothedAdjustments:
    """Smoothed adjustments of a whole clip, computed frame by frame on demand.

    Args:
        curves: (T, 3, K) predicted curve y (uniform grid).
        gains: (T, S, S) predicted shading gain maps (any array-like: a memory map is fine), or None.
        masks: (T, THUMB, THUMB) float masks (thumbnails) where each frame's subject is.
        images: (T, THUMB, THUMB, 3) thumbnails of the composites (uint8, or float in [0, 1]), or None. Smoothing the
            adjustment alone also removes the network's answer to a real change of the subject itself (its
            exposure wandering, a light flickering on the cut-out), which should change the correction so that
            the result does not change. With the images, the correction each prediction makes to the subject's
            mean colour is regressed on the subject's input colour (their frame-to-frame parts, over the whole
            scene): the part that follows the input (slope limited to ``SLOPE_RANGE``: compensating, never
            amplifying) is kept, the rest is smoothed; a per-channel gain on the smoothed curves (within ``MATCH_RANGE``) then makes the
            frame reach that colour. An identity prediction stays the identity.
        sigma_frames, cuts, valid: as for :func:`temporal_weights`.
    """

    def __init__(self, curves, gains, masks, *, sigma_frames: float, cuts: Sequence[int] = (), valid=None, images=None):
        self.curves = np.asarray(curves, dtype=np.float32)
        self.gains = gains
        self.masks = np.asarray(masks, dtype=np.float32)
        n = len(self.curves)
        if gains is not None:
            split = [masked_mean_log(gains[t], self.masks[t]) for t in range(n)]
            self.mean_log = np.array([m for m, _ in split], dtype=np.float64)
            self.residual = np.stack([r for _, r in split]) if n else np.zeros((0, *self.masks.shape[1:]), np.float32)
        else:
            self.mean_log = np.zeros(n)
            self.residual = None
        self.windows, self.jitter = temporal_weights(
            self.curves, self.mean_log, sigma_frames=sigma_frames, cuts=cuts, valid=valid
        )
        self.valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
        self.scenes = scene_ids(n, cuts)
        # Kept as given (uint8 thumbnails are a quarter of the memory of float ones), converted frame by frame.
        self.images = None if images is None else np.asarray(images)
        if self.images is not None:
            # The subject's mean input colour, and the change each prediction makes to it (thumbnails, 0..1).
            self.inputs = np.stack([_masked_mean(self.image(t), self.masks[t]) for t in range(n)]) if n else np.zeros((0, 3))
            self.changes = np.stack([
                _masked_mean(apply_adjustment(self.image(t), self.masks[t], self.raw(t)), self.masks[t]) - self.inputs[t]
                for t in range(n)
            ]) if n else np.zeros((0, 3))
            self.slopes = self._slopes()

    def __len__(self) -> int:
        return len(self.curves)

    def image(self, t: int) -> np.ndarray:
        """Frame ``t``'s thumbnail as float32 in [0, 1]."""
        image = self.images[t]
        return image.astype(np.float32) * np.float32(1.0 / 255.0) if image.dtype == np.uint8 else image.astype(np.float32)

    def raw(self, t: int) -> Adjustment:
        """Frame ``t``'s adjustment as predicted."""
        gain = None if self.gains is None else np.asarray(self.gains[t], dtype=np.float32)
        return Adjustment.from_uniform(self.curves[t], gain)

    def __getitem__(self, t: int) -> Adjustment:
        """Frame ``t``'s smoothed adjustment (exactly :meth:`raw` when it only weighs itself)."""
        win = self.windows[t]
        w = win.weights
        if w[t - win.lo] == 1.0:
            return self.raw(t)
        curves = np.tensordot(w, self.curves[win.lo : win.hi], axes=1)
        gain = None
        if self.gains is not None:
            mean = float(w @ self.mean_log[win.lo : win.hi])
            masks = self.masks[win.lo : win.hi]
            coverage = np.tensordot(w, masks, axes=1)
            pattern = np.tensordot(w, masks * self.residual[win.lo : win.hi], axes=1)
            own = self.residual[t]
            smoothed = np.where(coverage > MIN_MASK_WEIGHT, pattern / np.maximum(coverage, MIN_MASK_WEIGHT), own)
            gain = np.asarray(self.gains[t], dtype=np.float32)
            change = (smoothed - own) + (mean - self.mean_log[t])
            change = cv2.resize(change.astype(np.float32), gain.shape[::-1], interpolation=cv2.INTER_LINEAR)
            gain = np.clip(gain * np.exp(change), *SHADING_RANGE).astype(np.float32)
        adjustment = Adjustment.from_uniform(curves, gain)
        if self.images is None or not self.masks[t].any():
            return adjustment
        target = self._target(t, win)
        reached = _masked_mean(apply_adjustment(self.image(t), self.masks[t], adjustment), self.masks[t])
        match = np.clip(target / np.maximum(reached, 1e-4), *MATCH_RANGE)
        return Adjustment.from_uniform(np.clip(curves * match[:, None], 0.0, 1.0), gain)


    def _slopes(self) -> np.ndarray:
        """(T, 3): per scene, the slope of the prediction's change against the subject's input colour.

        Fitted on the fast part of both (each frame minus its window's mean), over the whole scene: many more
        frames than one window holds, and slow drifts of light, which move both, do not count.
        """
        n = len(self.curves)
        fast_in = np.zeros((n, 3))
        fast_change = np.zeros((n, 3))
        for t, win in enumerate(self.windows):
            w = win.weights
            fast_in[t] = self.inputs[t] - w @ self.inputs[win.lo : win.hi]
            fast_change[t] = self.changes[t] - w @ self.changes[win.lo : win.hi]
        slopes = np.zeros((n, 3))
        valid = self.valid
        for scene in np.unique(self.scenes):
            frames = (self.scenes == scene) & valid
            if frames.sum() < 3:
                continue
            x, y = fast_in[frames], fast_change[frames]
            slopes[self.scenes == scene] = np.clip((x * y).sum(axis=0) / ((x * x).sum(axis=0) + frames.sum() * RIDGE), *SLOPE_RANGE)
        return slopes

    def _target(self, t: int, win: Window) -> np.ndarray:
        """The subject's mean colour frame ``t`` should reach: the window's mean change, plus the scene's slope
        against the input colour times this frame's input offset from its window's mean."""
        w = win.weights
        mean_in, mean_change = w @ self.inputs[win.lo : win.hi], w @ self.changes[win.lo : win.hi]
        return self.inputs[t] + mean_change + self.slopes[t] * (self.inputs[t] - mean_in)


def _masked_mean(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(3,) mean colour of ``image`` weighted by ``mask``."""
    weight = float(mask.sum())
    return (image * mask[..., None]).sum(axis=(0, 1)) / max(weight, 1e-12)


# --------------------------------------------------------------------------------------------- flicker


def thumbnail(image: np.ndarray, side: int = THUMB) -> np.ndarray:
    """Area-averaged ``side`` x ``side`` copy (for masks and the flicker measure)."""
    return cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=cv2.INTER_AREA)


def mean_correction(composite: np.ndarray, mask: np.ndarray, adjustment: Adjustment | None) -> np.ndarray:
    """The mean change ``adjustment`` makes inside ``mask``: (3,) RGB in code values (0..255).

    ``composite`` is float (H, W, 3) in [0, 1] (a thumbnail), ``mask`` float (H, W); weighted by the mask.
    """
    weight = float(mask.sum())
    if adjustment is None or weight <= 0:
        return np.zeros(3)
    out = apply_adjustment(composite.astype(np.float32), mask.astype(np.float32), adjustment)
    return 255.0 * ((out - composite) * mask[..., None]).sum(axis=(0, 1)) / weight


def flicker(corrections: np.ndarray, cuts: Sequence[int] = (), valid: np.ndarray | None = None) -> float:
    """Mean absolute frame-to-frame change of per-frame values (T, C), averaged over channels; pairs across a
    scene cut or involving an invalid frame are left out. 0 for fewer than two usable frames."""
    values = np.asarray(corrections, dtype=np.float64)
    n = len(values)
    if n < 2:
        return 0.0
    scenes = scene_ids(n, cuts)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    usable = (scenes[1:] == scenes[:-1]) & valid[1:] & valid[:-1]
    if not usable.any():
        return 0.0
    steps = np.abs(np.diff(values, axis=0)).mean(axis=1)
    return float(steps[usable].mean())
