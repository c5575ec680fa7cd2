"""Folder mode against the OpenCV floor: N 4K JPEGs end to end, interleaved passes."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from harmcli.bench.config import BenchConfig, parse_sizes
from harmcli.bench.runners import batch_runner, loop_runner, opencv_loop
from harmcli.bench.scenes import write_scene


def folder_mode(config: BenchConfig, harmonizer, model: str, tmp: Path, say) -> dict:
    """Time ``config.folder`` generated JPEGs through the OpenCV floor and through harmcli (the ``folder`` record)."""
    size = parse_sizes(config.folder_size)[0]
    inputs, masks = tmp / "folder-in", tmp / "folder-masks"
    out_floor, out_harmcli = tmp / "folder-opencv", tmp / "folder-harmcli"
    for folder in (inputs, masks, out_floor, out_harmcli):
        folder.mkdir()
    pairs = []
    for i in range(config.folder):
        say(f"folder mode: writing image {i + 1} of {config.folder}")
        scene = write_scene(size, tmp, config.seed + 1 + i, stem=f"img{i:03d}")
        composite = scene.composite_path.rename(inputs / scene.composite_path.name)
        mask = scene.mask_path.rename(masks / f"img{i:03d}.png")
        scene.background_path.unlink()
        pairs.append((composite, mask))
    harmcli_run = batch_runner(harmonizer, inputs, masks, out_harmcli)
    mode = "harmcli.batch.run_batch (reads and writes overlap the network on a thread pool)"
    if harmcli_run is None:
        harmcli_run = loop_runner(harmonizer, pairs, out_harmcli)
        mode = "loop of read_image + Harmonizer.harmonize + write_image (harmcli.batch.run_batch unavailable)"
    floor_run = opencv_loop(pairs, out_floor, harmonizer.low_res)
    repeats = max(1, min(config.runs, 3))
    floor_s, harmcli_s = [], []
    for r in range(repeats):  # interleaved, so that a busy moment hits both sides
        say(f"folder mode: OpenCV loop, pass {r + 1} of {repeats}")
        start = time.perf_counter()
        floor_run()
        floor_s.append(time.perf_counter() - start)
        say(f"folder mode: harmcli, pass {r + 1} of {repeats}")
        start = time.perf_counter()
        harmcli_run()
        harmcli_s.append(time.perf_counter() - start)
    a, b = statistics.median(floor_s), statistics.median(harmcli_s)
    n = config.folder
    return {
        "images": n, "size": size.name, "device": str(harmonizer.device), "model": model, "mode": mode, "repeats": repeats,
        "opencv_loop_s": a, "harmcli_s": b, "ratio": b / max(a, 1e-9),
        "opencv_ms_per_image": a / n * 1e3, "harmcli_ms_per_image": b / n * 1e3,
    }
