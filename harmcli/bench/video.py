"""Video end to end: N frames of a generated 1080p clip through ``harmcli harmonize clip.mp4 --mask mask.mp4``.

The clip is the bench scene (textured background, person-shaped soft mask) with the subject moving across the
frame and fresh grain on every frame, encoded as H.264 (CRF 18) with its mask as a second H.264 video, the way
a user's files usually come. :func:`harmcli.clip.run.harmonize_clip` then runs both passes with the default
``--temporal`` on the engine the command would pick (``backend`` in the record) and writes H.264: the record is the wall time and frames per second of that call, with its own
breakdown (reading, network, smoothing, apply, encoding; the second reading of the inputs is the price of the
two passes).
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from harmcli.bench.config import BenchConfig, parse_sizes
from harmcli.bench.scenes import make_scene

RATE = Fraction(30000, 1001)


def write_clip(folder: Path, width: int, height: int, frames: int, seed: int) -> tuple[Path, Path]:
    """The composite and mask videos (H.264 in .mp4) of a subject moving across the bench scene."""
    from harmcli.io.images import atomic_write
    from harmcli.io.video import CODECS, VideoWriter
    from harmcli.ops.paste import make_composite

    composite, background, mask = make_scene(width, height, seed)
    foreground = composite  # inside the mask the composite is the subject
    grain = np.empty((height, width, 3), np.float32)
    cv2.setRNGSeed(seed)
    paths = folder / "clip.mp4", folder / "mask.mp4"

    def frames_of(kind: str):
        for t in range(frames):
            shift = int(round(width * 0.2 * (t / max(1, frames - 1) - 0.5)))
            m = np.roll(mask, shift, axis=1)
            if kind == "mask":
                yield cv2.cvtColor(m, cv2.COLOR_GRAY2RGB)
                continue
            frame = make_composite(np.roll(foreground, shift, axis=1), background, m).astype(np.float32)
            cv2.randn(grain, 0.0, 3.0)
            yield np.clip(frame + grain, 0, 255).astype(np.uint8)

    for path, kind in zip(paths, ("composite", "mask")):
        def encode(fh, kind=kind, path=path) -> None:
            with VideoWriter(fh, path, width=width, height=height, rate=RATE, time_base=1 / RATE,
                             codec=CODECS["h264"], crf=18) as writer:
                for i, image in enumerate(frames_of(kind)):
                    writer.write(image, i)

        atomic_write(path, encode)
    return paths


def video_mode(config: BenchConfig, harmonizer, model: str, tmp: Path, say) -> dict:
    """Time ``config.video`` frames of a ``config.video_size`` clip end to end (the ``video`` record)."""
    from harmcli.batch import InputSpec
    from harmcli.clip.run import DEFAULT_TEMPORAL, harmonize_clip, plan_clip_output
    from harmcli.clip.sources import ClipInputs

    size = parse_sizes(config.video_size)[0]
    folder = tmp / "video"
    folder.mkdir()
    say(f"video: encoding a {config.video}-frame {size.name} clip")
    clip, mask = write_clip(folder, size.width, size.height, config.video, config.seed)
    inputs = ClipInputs(InputSpec("composite", clip, None, mask), sequence=False, max_pixels=size.pixels + 1)
    output = plan_clip_output(inputs, folder / "out.mp4", codec=None, crf=None, ext=None, fps=None, jpeg_quality=95,
                              protect=())
    say(f"video: harmonizing {config.video} frames")
    import torch

    from harmcli.batch import default_threads

    saved = torch.get_num_threads()
    threads = config.threads or default_threads(True) or saved
    # What `harmcli harmonize clip.mp4` uses: one core left to the reading and encoding threads (an ONNX
    # harmonizer was built with that count already).
    torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        result = harmonize_clip(inputs, output, harmonizer=harmonizer, temporal=DEFAULT_TEMPORAL)
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(saved)
    return {
        "frames": result.frames, "size": size.name, "device": str(harmonizer.device), "model": model,
        "codec": output.codec.name, "crf": output.crf, "temporal": DEFAULT_TEMPORAL, "seconds": seconds,
        "frames_per_second": result.frames / seconds, "network_threads": threads,
        "breakdown_s": {key: getattr(result, f"{key}_s") for key in
                        ("analyse", "smooth", "write", "read", "network", "apply", "encode", "second_decode")},
    }
