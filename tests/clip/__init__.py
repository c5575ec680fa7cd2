"""Short generated clips for the video tests: a moving subject whose colour is off, with per-frame noise.

The test files are written with PyAV directly (independently of harmcli.io.video), the way the image tests
write their inputs with OpenCV.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

HEIGHT, WIDTH = 48, 64


def make_clip(n: int = 16, *, seed: int = 0, step_at: int | None = None, noise: float = 6.0):
    """Frames of a scene: (composites, backgrounds, masks) uint8 lists.

    The background is a smooth gradient that drifts slowly; the subject, a blue-ish ellipse, moves from left to
    right; every frame gets its own random brightness offset on the subject (``noise`` code values, the kind of
    change a per-frame network reacts to) and fine pixel noise. ``step_at``: from that frame on, the light of
    the whole scene turns warm (a real change that smoothing must follow).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    composites, backgrounds, masks = [], [], []
    for t in range(n):
        drift = 4.0 * t / max(1, n - 1)
        bg = np.stack([90 + 60 * (xx + drift) / WIDTH, 120 + 40 * yy / HEIGHT, 150 - 30 * xx / WIDTH], axis=-1)
        fg = np.stack([60 + 0 * xx, 70 + 20 * yy / HEIGHT, 170 + 0 * xx], axis=-1) + rng.normal(0, noise)
        if step_at is not None and t >= step_at:
            warm = np.array([1.35, 1.05, 0.7], np.float32)
            bg, fg = bg * warm, fg * warm
        cx = WIDTH * (0.3 + 0.4 * t / max(1, n - 1))
        r = np.hypot((xx - cx) / (WIDTH * 0.2), (yy - HEIGHT * 0.5) / (HEIGHT * 0.3))
        mask = np.clip((1.1 - r) / 0.2, 0, 1)
        comp = mask[..., None] * fg + (1 - mask[..., None]) * bg + rng.normal(0, 1.0, bg.shape)
        composites.append(np.clip(np.rint(comp), 0, 255).astype(np.uint8))
        backgrounds.append(np.clip(np.rint(bg), 0, 255).astype(np.uint8))
        masks.append(np.rint(mask * 255).astype(np.uint8))
    return composites, backgrounds, masks


def write_video(path: Path, frames, *, rate=Fraction(12), codec: str = "ffv1", audio: bool = False,
                display_rotation: tuple[int, bool, bool] | None = None, tags: dict[str, str] | None = None,
                tag_encoding: str = "utf-8") -> Path:
    """Write uint8 RGB (H, W, 3), RGBA (H, W, 4) or gray (H, W) frames; ``codec`` ffv1 (lossless), h264, png.
    ``display_rotation``: (degrees counter-clockwise, hflip, vflip) put in the display matrix, as a phone does;
    ``tags``: the container's metadata, written in ``tag_encoding``."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = frames[0]
    fmt = "gray" if first.ndim == 2 else ("rgba" if first.shape[2] == 4 else "rgb24")
    encoder, pix = {
        ("ffv1", "gray"): ("ffv1", "gray"), ("ffv1", "rgb24"): ("ffv1", "bgr0"), ("ffv1", "rgba"): ("ffv1", "bgra"),
        ("h264", "gray"): ("libx264", "yuv420p"), ("h264", "rgb24"): ("libx264", "yuv420p"),
        ("png", "rgba"): ("png", "rgba"), ("png", "rgb24"): ("png", "rgb24"), ("png", "gray"): ("png", "gray"),
        ("prores", "rgba"): ("prores_ks", "yuva444p10le"),
    }[(codec, fmt)]
    # Reverse-DNS keys (an iPhone's com.apple.quicktime.*) need QuickTime's "mdta" form in .mov/.mp4.
    mdta = path.suffix.lower() in (".mov", ".mp4") and any("." in key for key in (tags or {}))
    options = {"movflags": "use_metadata_tags"} if mdta else {}
    with av.open(str(path), "w", options=options, metadata_encoding=tag_encoding) as out:
        out.metadata.update(tags or {})
        stream = out.add_stream(encoder, rate=rate)
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], pix
        if codec == "prores":
            stream.options = {"profile": "4444"}
        if display_rotation is not None:
            degrees, hflip, vflip = display_rotation
            stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        sound = out.add_stream("aac", rate=48000) if audio else None
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            mux_tone(out, sound, int(48000 * float(len(frames) / rate)), 440, 0.3)
    return path


def mux_tone(out, track, samples: int, hz: float, amplitude: float) -> None:
    """A mono sine of ``samples`` samples at 48 kHz, encoded into the audio ``track`` of ``out`` and flushed."""
    import av

    tone = (amplitude * np.sin(2 * np.pi * hz * np.arange(samples) / 48000)).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 48000, start
        for packet in track.encode(chunk):
            out.mux(packet)
    for packet in track.encode():
        out.mux(packet)


def read_video(path: Path, fmt: str = "rgb24"):
    """(frames, rate, time_base, audio packet count) of a video, read with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate, tb = stream.average_rate, stream.time_base
        frames = [f.to_ndarray(format=fmt) for f in container.decode(stream)]
    with av.open(str(path)) as container:
        audio = sum(1 for p in container.demux(audio=0) if p.size) if container.streams.audio else 0
    return frames, rate, tb, audio


def mean_corrections(outputs, inputs, masks) -> np.ndarray:
    """(T, 3): the mask-weighted mean of output - input per frame, in code values (full resolution)."""
    rows = []
    for out, inp, m in zip(outputs, inputs, masks):
        w = m.astype(np.float64) / 255.0
        rows.append(((out.astype(np.float64) - inp) * w[..., None]).sum(axis=(0, 1)) / w.sum())
    return np.array(rows)


# ------------------------------------------------------------------------------------------- weights


def jittery_lite(curve_weight: float = 0.02, seed: int = 0):
    """A tiny 'lite' network (64 px) whose prediction reacts strongly to small changes of its input.

    An untrained network's features shrink to ~1e-8 by the deepest layer (batch norm still has its initial
    statistics), so it predicts the same adjustment for every frame. Calibrating batch norm on a few random
    images brings the features to unit scale, and random curve-head weights then turn frame-to-frame noise
    into curve jitter of several code values: the per-frame behaviour smoothing is there to remove.
    """
    import torch
    import torch.nn.functional as F

    from tests.cli import _perturbed_lite

    torch.manual_seed(seed)
    model = _perturbed_lite(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the calibration batches
    model.train()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(4):
            image = F.interpolate(torch.rand(8, 3, 8, 8, generator=gen), size=64, mode="bilinear")
            mask = (torch.rand(8, 1, 64, 64, generator=gen) > 0.5).float()
            model(image, image, mask)
        model.curves_head.mlp[-1].weight.normal_(0.0, curve_weight, generator=gen)
    return model.eval()


@pytest.fixture(scope="session")
def jittery_weights(tmp_path_factory) -> Path:
    from harmcli.weights import save_weights

    return save_weights(jittery_lite(), tmp_path_factory.mktemp("weights") / "jittery.safetensors")


def write_encoded(path: Path, frames, encoder: str, pix_fmt: str, *, options=None, rate=Fraction(12)) -> Path:
    """RGB or RGBA frames, uint8 or uint16, into any FFmpeg ``encoder`` and ``pix_fmt`` (the deep and alpha
    sources that :func:`write_video`'s table does not cover)."""
    import av

    first = frames[0]
    fmt = {(3, False): "rgb24", (3, True): "rgb48le", (4, False): "rgba", (4, True): "rgba64le"}[
        (first.shape[2], first.dtype == np.uint16)
    ]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], pix_fmt
        stream.options = dict(options or {})
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path)
