"""Draw ``video_strip.png`` for the README: a generated clip harmonized frame by frame and with smoothing.

The clip is made from the example (``fg.png``, ``bg.jpg``, ``mask.png``; see ``make_example.py``): the ball rolls
across the landscape for 48 frames at 24 fps with film grain on every frame, so a network run on each frame alone
sees a slightly different picture each time and its answer jitters. Halfway through, the whole scene's light
turns warmer (a real change that must be followed). The script writes the clip
and its mask as lossless videos, runs the command twice::

    harmcli harmonize clip.mkv --mask mask.mkv -o per_frame.mkv --codec ffv1 --temporal 0 --report a.json
    harmcli harmonize clip.mkv --mask mask.mkv -o smoothed.mkv  --codec ffv1 --temporal 1 --report b.json

and draws rows of frames (composite, per frame, smoothed) above a plot of the foreground's mean correction per
frame (red channel, code values), both runs, with the flicker each report gives::

    python examples/make_video_strip.py [--weights FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
FRAMES, RATE, WARM_FROM = 48, Fraction(24), 24
SHOWN = (4, 14, 22, 26, 34, 44)
WIDTH, HEIGHT = 480, 320  # the example scaled to 3/4, even sides for 4:2:0 codecs


def make_clip(seed: int = 0, exposure_jitter: float = 0.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Composites and masks (uint8) of the rolling ball, with grain and exposure jitter on the subject."""
    from harmcli.io.images import read_image, read_mask

    rng = np.random.default_rng(seed)
    fg = cv2.resize(read_image(HERE / "fg.png").rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA).astype(np.float32)
    bg = cv2.resize(read_image(HERE / "bg.jpg").rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA).astype(np.float32)
    mask = cv2.resize(read_mask(HERE / "mask.png"), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    composites, masks = [], []
    for t in range(FRAMES):
        shift = np.float32([[1, 0, -150 + 230 * t / (FRAMES - 1)], [0, 1, 0]])
        m = cv2.warpAffine(mask, shift, (WIDTH, HEIGHT))
        f = cv2.warpAffine(fg, shift, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
        f = f * np.float32(np.exp(rng.normal(0.0, exposure_jitter)))  # the cut-out's own exposure
        light = np.float32([1.0, 1.0, 1.0]) if t < WARM_FROM else np.float32([1.15, 1.0, 0.8])
        grain = rng.normal(0.0, 4.0, (HEIGHT, WIDTH, 3)).astype(np.float32)
        frame = (m[..., None] * f + (1 - m[..., None]) * bg) * light + grain
        composites.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
        masks.append(np.rint(m * 255).astype(np.uint8))
    return composites, masks


def write_lossless(path: Path, frames: list[np.ndarray]) -> None:
    """FFV1 in Matroska through PyAV (the same library harmcli reads it with)."""
    import av

    gray = frames[0].ndim == 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "gray" if gray else "bgr0"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="gray" if gray else "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def corrections(frames: list[np.ndarray], composites: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    rows = []
    for out, comp, m in zip(frames, composites, masks):
        w = m.astype(np.float64)[..., None] / 255.0
        rows.append(((out.astype(np.float64) - comp) * w).sum(axis=(0, 1)) / w.sum())
    return np.array(rows)


def plot(per_frame: np.ndarray, smoothed: np.ndarray, width: int, labels: tuple[str, str]) -> np.ndarray:
    """A line plot of the red channel's correction per frame: grey = per frame, blue = smoothed."""
    height, pad = 220, 40
    canvas = np.full((height, width, 3), 255, np.uint8)
    values = np.concatenate([per_frame, smoothed])
    lo, hi = float(values.min()) - 2, float(values.max()) + 2

    def xy(t, v):
        return int(pad + (width - 2 * pad) * t / (FRAMES - 1)), int(height - pad - (height - 2 * pad) * (v - lo) / (hi - lo))

    cv2.line(canvas, xy(WARM_FROM - 0.5, lo), xy(WARM_FROM - 0.5, hi), (230, 180, 120), 1, cv2.LINE_AA)
    for series, colour, thick in ((per_frame, (150, 150, 150), 1), (smoothed, (40, 90, 200), 2)):
        points = np.array([xy(t, v) for t, v in enumerate(series)], np.int32)
        cv2.polylines(canvas, [points], False, colour, thick, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, "foreground's mean correction, red channel (code values) per frame", (pad, 22), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, labels[0], (pad, height - 12), font, 0.45, (120, 120, 120), 1, cv2.LINE_AA)
    cv2.putText(canvas, labels[1], (width // 2, height - 12), font, 0.45, (40, 90, 200), 1, cv2.LINE_AA)
    cv2.putText(canvas, "light turns warm", xy(WARM_FROM + 0.5, hi - 0.5 * (hi - lo) / 8), font, 0.4, (200, 140, 60), 1, cv2.LINE_AA)
    for v in (lo + 2, hi - 2):
        cv2.putText(canvas, f"{round(v):+d}", (2, xy(0, v)[1] + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (0, 0), (12 + 8 * len(text), 22), (0, 0, 0), thickness=-1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the clips and reports in this folder.")
    parser.add_argument("--exposure-jitter", type=float, default=0.0,
                        help="Also let the subject's own exposure wander (log-normal sigma, e.g. 0.08); no picture is drawn.")
    args = parser.parse_args()
    from harmcli.io.images import write_image
    from harmcli.io.video import VideoReader

    composites, masks = make_clip(exposure_jitter=args.exposure_jitter)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        write_lossless(work / "clip.mkv", composites)
        write_lossless(work / "mask.mkv", masks)
        runs = {}
        for name, temporal in (("per_frame", "0"), ("smoothed", "1")):
            command = [sys.executable, "-m", "harmcli", "harmonize", str(work / "clip.mkv"), "--mask", str(work / "mask.mkv"),
                       "-o", str(work / f"{name}.mkv"), "--codec", "ffv1", "--temporal", temporal, "--overwrite",
                       "--report", str(work / f"{name}.json")]
            if args.weights:
                command += ["--weights", str(args.weights)]
            print(" ".join(command[1:]), file=sys.stderr)
            subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
            frames = [a for a, _ in VideoReader(work / f"{name}.mkv")]
            runs[name] = (frames, json.loads((work / f"{name}.json").read_text()))
    per_frame, smoothed = runs["per_frame"], runs["smoothed"]
    gap = 6
    rows = []
    for title, frames in (("composite", composites), ("per frame (--temporal 0)", per_frame[0]), ("smoothed (--temporal 1)", smoothed[0])):
        tiles = [cv2.resize(frames[t], (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA) for t in SHOWN]
        tiles = [label(tile, f"{title}, frame {t + 1}" if i == 0 else f"frame {t + 1}") for i, (t, tile) in enumerate(zip(SHOWN, tiles))]
        row = np.hstack([np.hstack([tile, np.full((HEIGHT // 2, gap, 3), 255, np.uint8)]) for tile in tiles])[:, :-gap]
        rows += [row, np.full((gap, row.shape[1], 3), 255, np.uint8)]
    a = corrections(per_frame[0], composites, masks)[:, 0]
    b = corrections(smoothed[0], composites, masks)[:, 0]
    labels = (f"per frame: flicker {per_frame[1]['flicker_smoothed']:.2f}",
              f"--temporal 1: flicker {smoothed[1]['flicker_smoothed']:.2f}")
    rows.append(plot(a, b, rows[0].shape[1], labels))
    out = write_image(HERE / "video_strip.png", np.vstack(rows)) if not args.exposure_jitter else "nothing"
    print(f"wrote {out}; flicker per frame {per_frame[1]['flicker_smoothed']:.2f}, smoothed {smoothed[1]['flicker_smoothed']:.2f}, "
          f"cuts {smoothed[1]['cuts']}", file=sys.stderr)


if __name__ == "__main__":
    main()
