"""``harmcli bench``: where the time and memory of a harmonize go, stage by stage, on this machine.

For each requested size a realistic scene is generated (smooth gradients, texture and noise; an object-shaped
soft mask over about 35 % of the frame), written as a JPEG at quality 95 plus a PNG mask, and every stage of
``harmcli harmonize`` is timed on it with the library's own functions:

========== =============================================================================================
decode     ``harmcli.io.images.read_image`` of the composite JPEG (header checks, decode, BGR -> RGB)
downsample ``Harmonizer.low_res_inputs``: composite, background and mask to the model's low-res, on the device
network    the forward pass at low-res plus the outputs' copy to the host (``Harmonizer.predict`` minus the
           downsample); measured once per model and precision: it does not depend on the full-res size
apply      ``harmcli.ops.apply.apply_adjustment`` at full resolution, with the mask as harmcli reads it
           (float32) and a synthetic adjustment (32-point curves + a smooth shading map at the model's low-res)
encode     ``harmcli.io.images.write_image`` as JPEG q95 and as PNG (to a temporary folder)
========== =============================================================================================

Each stage gets ``warmup`` untimed calls, then ``runs`` timed ones (median, min, max); on CUDA,
``torch.cuda.synchronize()`` runs before each timestamp. Without ``--weights`` the network is untrained
(``create_model``): its speed does not depend on trained values. In the same run, the **floor** of the apply stage
is one ``cv2.LUT`` pass over the same 8-bit RGB image, and ``ratio`` = apply median / floor median.

**Peak memory** of a full harmonize of the largest size (read composite + mask, predict, apply, write a JPEG) is
measured in a fresh child process: CPU = the rise of the process's peak RSS over its RSS once the model is
loaded (every NumPy/OpenCV/torch buffer counts). On Linux the peak is ``VmHWM``, reset just before the harmonize
(``ru_maxrss`` of a child inherits the parent's high-water mark through fork/exec); elsewhere ``ru_maxrss``, an
upper bound. CUDA adds ``torch.cuda.max_memory_allocated``. **Folder mode** (``folder=N``) times N 4K JPEGs
through (a) a plain OpenCV loop that only reads, downsamples, LUT-blends with the mask and writes, and (b) harmcli's
folder pipeline
(:func:`harmcli.batch.run_batch`, or a ``Harmonizer.harmonize`` loop when that is unavailable; ``mode`` says which).

JSON schema (``schema`` = ``"harmcli-bench/1"``; times in milliseconds, memory in MiB)::

    {
      "schema": "harmcli-bench/1",
      "created": "2025-01-01T12:00:00Z",
      "device": ["cpu"],                       # torch devices measured, as resolved ("cuda:0", ...)
      "torch_threads": 2, "opencv_threads": 2,
      "cpu": {"name": str, "logical_cores": int, "machine": str},
      "gpu": null | {"name": str, "memory_mib": float},
      "versions": {"harmcli", "python", "torch", "numpy", "opencv"},
      "settings": {"runs": int, "warmup": int, "fp16": bool | null, "weights": str | null,
                   "threads": int | null, "folder": int},
      "models": {NAME: {"preset": str, "low_res": int, "parameters": int, "weights": "untrained" | path}},
      "sizes": {SIZE: {"width": int, "height": int, "megapixels": float, "mask_coverage": float,
                       "jpeg_bytes": int}},
      "stages": [{"stage": "decode" | "downsample" | "network" | "apply" | "encode_jpeg" | "encode_png",
                  "size": SIZE | null,             # null for network (size-independent)
                  "device": "cpu" | "cuda:0",      # where it ran: decode, apply, encode always on the CPU
                  "model": NAME | null, "precision": "fp32" | "fp16" | "bf16" | null,
                  "median_ms": float, "min_ms": float, "max_ms": float, "runs": int}],
      "floor": [{"size": SIZE, "median_ms", "min_ms", "max_ms", "apply_median_ms": float, "ratio": float}],
      "totals": [{"size", "device", "model", "precision", "median_ms"}],   # decode + downsample + network
                                                                           # + apply + encode_jpeg medians
      "peak_memory": [{"device", "model", "size", "baseline_rss_mib", "peak_rss_mib", "rss_increase_mib",
                       "method": str, "cuda_max_allocated_mib": float | null}],   # [] when skipped
      "folder": null | {"images": int, "size": "4k", "device", "model", "mode": str, "repeats": int,
                        "opencv_loop_s": float, "harmcli_s": float, "ratio": float,
                        "opencv_ms_per_image": float, "harmcli_ms_per_image": float},
      "notes": [str]
    }
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from harmcli import __version__
from harmcli.errors import HarmcliError, UsageError
from harmcli.ops.adjustment import Adjustment

SCHEMA = "harmcli-bench/1"
STAGES = ("decode", "downsample", "network", "apply", "encode_jpeg", "encode_png")
JPEG_QUALITY = 95
NAMED_SIZES = {"512": (512, 512), "720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160), "12mp": (4000, 3000)}
DEFAULT_SIZES = ("512", "1080p", "4k", "12mp")
FOLDER_SIZE = "4k"
MASK_COVERAGE = 0.35
MIN_SIDE, MAX_PIXELS = 16, 100_000_000


# ------------------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class BenchSize:
    name: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def parse_sizes(text: str) -> list[BenchSize]:
    """``"512,1080p,4k,12mp,64x48"`` -> sizes. A bare number N is N x N; ``WxH`` is width x height."""
    sizes = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if part in NAMED_SIZES:
            width, height = NAMED_SIZES[part]
        elif re.fullmatch(r"\d+", part):
            width = height = int(part)
        elif m := re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", part):
            width, height = int(m.group(1)), int(m.group(2))
        else:
            raise UsageError(f"--sizes: '{part}' is not a size; use {', '.join(NAMED_SIZES)}, N or WxH (e.g. 640x480)")
        if min(width, height) < MIN_SIDE or width * height > MAX_PIXELS:
            limit = MAX_PIXELS // 1_000_000
            raise UsageError(f"--sizes: {part} is out of range (sides of at least {MIN_SIDE} px, at most {limit} MP)")
        if part not in (s.name for s in sizes):
            sizes.append(BenchSize(part, width, height))
    if not sizes:
        raise UsageError("--sizes is empty; e.g. --sizes 512,1080p,4k,12mp")
    return sizes


@dataclass(frozen=True)
class ModelSpec:
    """A preset, optionally at another low-res: ``lite``, ``paper``, ``lite@512``."""

    name: str
    preset: str
    low_res: int | None = None  # None: the preset's own


def parse_model(text: str) -> ModelSpec:
    from harmcli.models import PRESETS

    name = text.strip().lower()
    preset, _, res = name.partition("@")
    if preset not in PRESETS:
        choices = ", ".join(PRESETS)
        raise UsageError(f"--model: unknown model '{preset}'; choose one of: {choices} (optionally @RES, e.g. lite@512)")
    if not res:
        return ModelSpec(name, preset)
    if not res.isdigit() or int(res) % 32 or not 64 <= int(res) <= 2048:
        raise UsageError(f"--model {text}: the low-res after @ must be a multiple of 32 between 64 and 2048")
    return ModelSpec(name, preset, int(res))


@dataclass
class BenchConfig:
    devices: list[str] = field(default_factory=lambda: ["auto"])
    models: list[str] = field(default_factory=lambda: ["lite"])
    sizes: list[BenchSize] = field(default_factory=lambda: parse_sizes(",".join(DEFAULT_SIZES)))
    runs: int = 5
    warmup: int = 1
    weights: Path | None = None
    threads: int | None = None
    fp16: bool | None = None  # None: fp16 as well on CUDA only
    folder: int = 0
    folder_size: str = FOLDER_SIZE  # the CLI always uses 4K; tests use less
    memory: bool = True
    seed: int = 0

    def check(self) -> None:
        if self.runs < 1:
            raise UsageError(f"--runs must be at least 1, got {self.runs}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}")
        if self.folder < 0:
            raise UsageError(f"--folder must be 0 (off) or a number of images, got {self.folder}")
        if not self.sizes:
            raise UsageError("--sizes is empty")


# ------------------------------------------------------------------------------------------------ timing


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float
    runs: int

    def as_dict(self) -> dict:
        return {"median_ms": self.median_ms, "min_ms": self.min_ms, "max_ms": self.max_ms, "runs": self.runs}


def time_call(fn: Callable[[], object], runs: int, warmup: int, sync: Callable[[], None] | None = None) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times timed; ``sync`` runs before each timestamp."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return Timing(statistics.median(samples), min(samples), max(samples), runs)


# ------------------------------------------------------------------------------------------------- scenes


def _smooth_field(rng: np.random.Generator, width: int, height: int, cells: int, scale: float, channels: int = 3) -> np.ndarray:
    """Random values on a coarse grid, bicubically enlarged: smooth variation at about 1/cells of the frame."""
    grid = rng.normal(0.0, scale, (max(2, cells * height // max(width, height) + 2), cells + 2, channels)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, channels)


def _photo(rng: np.random.Generator, width: int, height: int, tint: tuple[float, float, float]) -> np.ndarray:
    """A photo-like uint8 RGB image: a colour gradient, blotchy texture at two scales and sensor noise."""
    image = _smooth_field(rng, width, height, 2, 45.0)
    image += np.asarray(tint, np.float32) * 255.0
    image += _smooth_field(rng, width, height, 24, 14.0)
    image += _smooth_field(rng, width, height, max(2, width // 12), 6.0)
    noise = np.empty((height, width, 3), np.float32)
    cv2.randn(noise, 0.0, 3.0)
    image += noise
    return np.clip(image, 0, 255).astype(np.uint8)


def object_mask(width: int, height: int, coverage: float = MASK_COVERAGE) -> np.ndarray:
    """A person-like silhouette (body, head, an arm) with a soft edge, about ``coverage`` of the frame: uint8."""
    # Drawn at a quarter of the size and enlarged bilinearly: the enlargement itself softens the edge.
    w, h = max(8, width // 4), max(8, height // 4)
    small = np.zeros((h, w), np.uint8)
    k = np.sqrt(coverage / 0.35)  # the proportions below cover about 35 % of the frame
    cx, base = w * 0.5, h * 0.62
    cv2.ellipse(small, (int(cx), int(base)), (max(1, int(w * 0.21 * k)), max(1, int(h * 0.40 * k))), 0, 0, 360, 255, -1)
    cv2.circle(small, (int(cx), int(base - h * 0.44 * k)), max(1, int(min(w, h) * 0.13 * k)), 255, -1)
    arm = (max(1, int(w * 0.13 * k)), max(1, int(h * 0.06 * k)))
    cv2.ellipse(small, (int(cx + w * 0.2 * k), int(base - h * 0.05)), arm, -25, 0, 360, 255, -1)
    blur = max(3, (min(w, h) // 60) * 2 + 1)
    small = cv2.GaussianBlur(small, (blur, blur), 0)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def make_scene(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(composite, background, mask): a warm, darker subject pasted into a cool background. uint8."""
    from harmcli.ops.paste import make_composite

    rng = np.random.default_rng(seed)
    background = _photo(rng, width, height, (0.35, 0.45, 0.55))
    foreground = _photo(rng, width, height, (0.55, 0.40, 0.30))
    mask = object_mask(width, height)
    return make_composite(foreground, background, mask), background, mask


def synthetic_adjustment(low_res: int, seed: int = 0) -> Adjustment:
    """What a trained network typically predicts: gentle per-channel curves and a smooth shading map."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, 32, dtype=np.float32)
    gamma = rng.uniform(0.8, 1.25, (3, 1)).astype(np.float32)
    curves = np.clip(x[None] ** gamma * rng.uniform(0.9, 1.05, (3, 1)) + rng.uniform(0.0, 0.04, (3, 1)), 0.0, 1.0)
    shading = np.exp(_smooth_field(rng, low_res, low_res, 4, 0.25, 1)[..., 0])
    return Adjustment.from_uniform(curves.astype(np.float32), np.clip(shading, 0.25, 4.0).astype(np.float32))


@dataclass
class Scene:
    size: BenchSize
    composite: np.ndarray  # as decoded from the JPEG, RGB uint8
    background: np.ndarray
    mask: np.ndarray  # as harmcli reads it: float32 in [0, 1]
    composite_path: Path
    background_path: Path
    mask_path: Path
    coverage: float
    jpeg_bytes: int


def write_scene(size: BenchSize, folder: Path, seed: int, stem: str | None = None) -> Scene:
    """Generate a scene, write composite/background JPEGs (q95) and the mask PNG, read them back as harmcli does."""
    from harmcli.io.images import read_image, read_mask, write_image

    composite, background, mask = make_scene(size.width, size.height, seed)
    stem = stem or size.name
    paths = (folder / f"{stem}.jpg", folder / f"{stem}.background.jpg", folder / f"{stem}.mask.png")
    write_image(paths[0], composite, jpeg_quality=JPEG_QUALITY)
    write_image(paths[1], background, jpeg_quality=JPEG_QUALITY)
    write_image(paths[2], mask)
    decoded = read_mask(paths[2])
    return Scene(
        size, read_image(paths[0]).rgb, read_image(paths[1]).rgb, decoded, *paths,
        coverage=float(decoded.mean()), jpeg_bytes=paths[0].stat().st_size,
    )


# ------------------------------------------------------------------------------------------------- models


def build_harmonizer(spec: ModelSpec, weights: Path | None, device: str):
    """A :class:`Harmonizer` for ``spec`` (untrained) or for the network in ``weights``."""
    from harmcli.models import create_model
    from harmcli.pipeline import Harmonizer, resolve_device

    dev = resolve_device(device)
    if weights is not None:
        from harmcli.weights import load_weights

        return Harmonizer(load_weights(weights, "cpu"), dev)
    overrides = {"low_res": spec.low_res} if spec.low_res else {}
    return Harmonizer(create_model(spec.preset, **overrides), dev)


def _precisions(device: torch.device, fp16: bool | None) -> list[str]:
    """fp32 always; half precision too when asked, or by default on CUDA (autocast: fp16 on CUDA, bf16 on CPU)."""
    half = "fp16" if device.type == "cuda" else "bf16"
    if fp16 or (fp16 is None and device.type == "cuda"):
        return ["fp32", half]
    return ["fp32"]


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def _network_call(harmonizer, inputs, precision: str) -> Callable[[], Adjustment]:
    """What ``Harmonizer.predict`` does after the downsample: forward, outputs to the host, an Adjustment."""

    def call() -> Adjustment:
        with torch.inference_mode(), _autocast(harmonizer.device, precision):
            curve_y, shading = harmonizer.model(*inputs)
        return Adjustment.from_uniform(curve_y[0].float().cpu().numpy(), shading[0, 0].float().cpu().numpy())

    return call


# ------------------------------------------------------------------------------------------ harmonize paths


class _LoadedPredictor:
    """The predictor interface of :mod:`harmcli.batch`, over an already built (possibly untrained) network."""

    def __init__(self, harmonizer):
        self.harmonizer = harmonizer

    def load(self) -> None:
        pass

    def __call__(self, inputs) -> Adjustment:
        return self.harmonizer.predict(inputs.composite, inputs.background, inputs.mask)


def _batch_runner(harmonizer, composites: Path, masks: Path, output: Path) -> Callable[[], None] | None:
    """``harmcli harmonize COMPOSITES --mask MASKS -o OUTPUT`` through :func:`harmcli.batch.run_batch`, or None
    when this version of the batch module does not offer what is needed."""
    try:
        from harmcli import batch
        from harmcli.io.images import READ_EXTENSIONS, WRITE_EXTENSIONS

        spec = batch.InputSpec.from_args([composites], masks)
        plan = batch.match_items(spec, READ_EXTENSIONS)
        layout = batch.plan_output(spec, output, extension=None, allowed=WRITE_EXTENSIONS)
        job = batch.HarmonizeJob(
            reader=batch.InputReader(max_pixels=MAX_PIXELS), layout=layout, predictor=_LoadedPredictor(harmonizer),
            existing="overwrite", jpeg_quality=JPEG_QUALITY,
        )
        run_one, run_batch = batch.run_one, batch.run_batch
    except (ImportError, AttributeError, TypeError):
        return None

    def run() -> None:
        # One file: what `harmcli harmonize` does for a single image; folders: the folder loop.
        results = run_batch(job, plan).results if spec.is_folder else [run_one(job, plan.items[0])]
        failed = [r for r in results if r.status != "done"]
        if failed or not results:
            raise HarmcliError(f"bench: harmonize failed: {failed[0].message if failed else 'no items matched'}")

    return run


def _loop_runner(harmonizer, pairs: list[tuple[Path, Path]], output: Path) -> Callable[[], None]:
    """The same work as a plain loop: read, harmonize, write JPEG q95."""
    from harmcli.io.images import read_image, read_mask, write_image

    def run() -> None:
        for composite_path, mask_path in pairs:
            rgb = read_image(composite_path).rgb
            result, _ = harmonizer.harmonize(rgb, rgb, read_mask(mask_path, size=rgb.shape[:2]))
            write_image(output / composite_path.name, result, jpeg_quality=JPEG_QUALITY)

    return run


def _opencv_loop(pairs: list[tuple[Path, Path]], output: Path, low_res: int) -> Callable[[], None]:
    """The floor for folder mode: read, downsample (discarded), LUT + blend with the mask, write JPEG q95."""
    table = np.clip(np.arange(256) * 1.1 - 10, 0, 255).astype(np.uint8)
    ramp = np.linspace(0.0, 1.0, 256, dtype=np.float32)

    def run() -> None:
        for composite_path, mask_path in pairs:
            image = cv2.imread(str(composite_path), cv2.IMREAD_COLOR)
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            cv2.resize(image, (low_res, low_res), interpolation=cv2.INTER_AREA)
            cv2.resize(mask, (low_res, low_res), interpolation=cv2.INTER_AREA)
            weight = cv2.LUT(mask, ramp)
            blended = cv2.blendLinear(cv2.LUT(image, table), image, weight, 1.0 - weight)
            cv2.imwrite(str(output / composite_path.name), blended, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])

    return run


# ------------------------------------------------------------------------------------------- peak memory


def _proc_status_mib(key: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status (Linux), in MiB; None elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _max_rss_mib() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def memory_probe(payload: dict) -> dict:
    """Run in a fresh process: one full harmonize of the files in ``payload``; returns the memory figures.

    The peak is the RSS high-water mark, reset just before the harmonize where Linux allows it. ``ru_maxrss``
    alone is not enough there: a child started by ``subprocess`` inherits its parent's high-water mark
    through fork/exec, so it would report the (large) benchmark process instead.
    """
    if payload.get("threads"):
        torch.set_num_threads(payload["threads"])
        cv2.setNumThreads(payload["threads"])
    spec = ModelSpec(payload["model"], payload["preset"], payload["low_res"])
    harmonizer = build_harmonizer(spec, Path(payload["weights"]) if payload["weights"] else None, payload["device"])
    cuda = harmonizer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(harmonizer.device)
        torch.cuda.reset_peak_memory_stats(harmonizer.device)
    output = Path(payload["output"])
    output.mkdir(parents=True, exist_ok=True)
    composite, mask = Path(payload["composite"]), Path(payload["mask"])
    run = _batch_runner(harmonizer, composite, mask, output) or _loop_runner(harmonizer, [(composite, mask)], output)
    baseline = _proc_status_mib("VmRSS")
    exact = baseline is not None and _reset_peak_rss()
    if not exact:  # no /proc: ru_maxrss so far is the best baseline there is (an upper bound on the rise follows)
        baseline = _max_rss_mib()
    run()
    peak = _proc_status_mib("VmHWM") if exact else _max_rss_mib()
    return {
        "baseline_rss_mib": round(baseline, 1),
        "peak_rss_mib": round(peak, 1),
        "rss_increase_mib": round(max(0.0, peak - baseline), 1),
        "method": "VmHWM reset before the harmonize" if exact else "ru_maxrss",
        "cuda_max_allocated_mib": round(torch.cuda.max_memory_allocated(harmonizer.device) / 2**20, 1) if cuda else None,
    }


def _probe_in_child(payload: dict) -> dict:
    code = "import json, sys\nfrom harmcli.bench import memory_probe\nprint(json.dumps(memory_probe(json.loads(sys.argv[1]))))"
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-c", code, json.dumps(payload)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarmcliError(f"bench: the peak-memory child process failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------------------------------------- system


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _system_info(devices: list[torch.device]) -> dict:
    gpu = None
    cuda = next((d for d in devices if d.type == "cuda"), None)
    if cuda is not None:
        props = torch.cuda.get_device_properties(cuda)
        gpu = {"name": props.name, "memory_mib": round(props.total_memory / 2**20, 1)}
    return {
        "torch_threads": torch.get_num_threads(),
        "opencv_threads": cv2.getNumThreads(),
        "cpu": {"name": _cpu_name(), "logical_cores": os.cpu_count() or 1, "machine": platform.machine()},
        "gpu": gpu,
        "versions": {
            "harmcli": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
        },
    }


# --------------------------------------------------------------------------------------------------- run


def run_bench(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Run the benchmark described by ``config``; returns the report (the JSON schema in the module docstring).

    ``progress`` receives a short line before each step. Thread settings changed by ``config.threads`` are
    restored afterwards.
    """
    config.check()
    saved = torch.get_num_threads(), cv2.getNumThreads()
    if config.threads:
        torch.set_num_threads(config.threads)
        cv2.setNumThreads(config.threads)
    try:
        return _run(config, progress or (lambda message: None))
    finally:
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])


def _run(config: BenchConfig, say: Callable[[str], None]) -> dict:
    from harmcli.io.images import read_image, write_image
    from harmcli.ops.apply import apply_adjustment
    from harmcli.pipeline import resolve_device

    devices = list(dict.fromkeys(resolve_device(d) for d in config.devices))  # raises DeviceError early
    if config.weights is not None:
        from harmcli.weights import read_metadata

        meta = read_metadata(config.weights)
        name = meta["config"].get("name", "lite")
        specs = [ModelSpec(name, name, meta["config"].get("low_res"))]
    else:
        specs = list({s.name: s for s in map(parse_model, config.models)}.values())
    runs, warmup = config.runs, config.warmup
    report: dict = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": [str(d) for d in devices],
        **_system_info(devices),
        "settings": {
            "runs": runs, "warmup": warmup, "fp16": config.fp16,
            "weights": str(config.weights) if config.weights else None, "threads": config.threads, "folder": config.folder,
        },
        "models": {},
        "sizes": {},
        "stages": [],
        "floor": [],
        "totals": [],
        "peak_memory": [],
        "folder": None,
        "notes": [],
    }
    stages = report["stages"]

    def record(stage: str, timing: Timing, *, size=None, device="cpu", model=None, precision=None) -> Timing:
        entry = {"stage": stage, "size": size, "device": str(device), "model": model, "precision": precision}
        stages.append({**entry, **timing.as_dict()})
        return timing

    def sync_for(device: torch.device):
        return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None

    with tempfile.TemporaryDirectory(prefix="harmcli-bench-") as tmp:
        tmp = Path(tmp)
        say("building models")
        harmonizers = {(d, s.name): build_harmonizer(s, config.weights, str(d)) for d in devices for s in specs}
        for spec in specs:
            net = harmonizers[(devices[0], spec.name)]
            report["models"][spec.name] = {
                "preset": net.model.config.name,
                "low_res": net.low_res,
                "parameters": int(sum(p.numel() for p in net.model.parameters())),
                "weights": str(config.weights) if config.weights else "untrained",
            }

        # The network sees only the low-res copy: time it once per device, model and precision.
        probe = make_scene(512, 512, config.seed)
        network_ms: dict[tuple, float] = {}
        for (device, name), net in harmonizers.items():
            inputs = net.low_res_inputs(*probe)
            for precision in _precisions(device, config.fp16):
                say(f"network {name} {precision} on {device}")
                timing = time_call(_network_call(net, inputs, precision), runs, warmup, sync_for(device))
                record("network", timing, device=device, model=name, precision=precision)
                network_ms[(device, name, precision)] = timing.median_ms

        # The other stages at each full-res size. Decode, apply and encode run on the CPU whatever the device.
        scenes = {}
        for size in config.sizes:
            say(f"{size.name}: generating the scene")
            scene = scenes[size.name] = write_scene(size, tmp, config.seed)
            report["sizes"][size.name] = {
                "width": size.width, "height": size.height, "megapixels": round(size.pixels / 1e6, 2),
                "mask_coverage": round(scene.coverage, 3), "jpeg_bytes": scene.jpeg_bytes,
            }
            say(f"{size.name}: decode")
            decode = record("decode", time_call(lambda: read_image(scene.composite_path), runs, warmup), size=size.name)
            downsample = {}
            for (device, name), net in harmonizers.items():
                say(f"{size.name}: downsample for {name} on {device}")
                call = lambda net=net: net.low_res_inputs(scene.composite, scene.background, scene.mask)  # noqa: E731
                timing = time_call(call, runs, warmup, sync_for(device))
                downsample[(device, name)] = record("downsample", timing, size=size.name, device=device, model=name)
            say(f"{size.name}: apply")
            adjustment = synthetic_adjustment(next(iter(harmonizers.values())).low_res, config.seed)
            result = apply_adjustment(scene.composite, scene.mask, adjustment)
            timing = time_call(lambda: apply_adjustment(scene.composite, scene.mask, adjustment), runs, warmup)
            apply = record("apply", timing, size=size.name)
            table = np.random.default_rng(config.seed).integers(0, 256, 256).astype(np.uint8)
            floor = time_call(lambda: cv2.LUT(scene.composite, table), runs, warmup)
            ratio = apply.median_ms / max(floor.median_ms, 1e-9)
            report["floor"].append({"size": size.name, **floor.as_dict(), "apply_median_ms": apply.median_ms, "ratio": ratio})
            say(f"{size.name}: encode")
            jpeg = time_call(lambda: write_image(tmp / "out.jpg", result, jpeg_quality=JPEG_QUALITY), runs, warmup)
            record("encode_jpeg", jpeg, size=size.name)
            record("encode_png", time_call(lambda: write_image(tmp / "out.png", result), runs, warmup), size=size.name)
            for (device, name, precision), net_ms in network_ms.items():
                total = decode.median_ms + downsample[(device, name)].median_ms + net_ms + apply.median_ms + jpeg.median_ms
                key = {"size": size.name, "device": str(device), "model": name, "precision": precision}
                report["totals"].append({**key, "median_ms": total})
            scene.composite = scene.background = scene.mask = result = None  # keep the files, free the pixels

        if config.memory:
            largest = scenes[max(config.sizes, key=lambda s: s.pixels).name]
            for device in devices:
                for spec in specs:
                    say(f"peak memory: {largest.size.name}, {spec.name} on {device} (child process)")
                    figures = _probe_in_child({
                        "composite": str(largest.composite_path), "mask": str(largest.mask_path), "output": str(tmp / "memory"),
                        "model": spec.name, "preset": spec.preset, "low_res": spec.low_res, "device": str(device),
                        "weights": str(config.weights) if config.weights else None, "threads": config.threads,
                    })
                    where = {"device": str(device), "model": spec.name, "size": largest.size.name}
                    report["peak_memory"].append({**where, **figures})

        if config.folder:
            report["folder"] = _folder_mode(config, harmonizers[(devices[0], specs[0].name)], specs[0].name, tmp, say)

    report["notes"] = _notes(config, report)
    return report


def _folder_mode(config: BenchConfig, harmonizer, model: str, tmp: Path, say) -> dict:
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
    harmcli_run = _batch_runner(harmonizer, inputs, masks, out_harmcli)
    mode = "harmcli.batch.run_batch (reads and writes overlap the network on a thread pool)"
    if harmcli_run is None:
        harmcli_run = _loop_runner(harmonizer, pairs, out_harmcli)
        mode = "loop of read_image + Harmonizer.harmonize + write_image (harmcli.batch.run_batch unavailable)"
    floor_run = _opencv_loop(pairs, out_floor, harmonizer.low_res)
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


def _notes(config: BenchConfig, report: dict) -> list[str]:
    notes = [
        f"threads: torch {report['torch_threads']}, OpenCV {report['opencv_threads']} (apply uses as many); "
        "on a busy machine also try --threads 1: torch's thread barriers stall when a core is taken"
    ]
    if config.weights is None:
        notes.append("network: untrained model from create_model(); its speed does not depend on trained values")
    notes.append(
        "apply: a synthetic adjustment (32-point curves + smooth shading at the model's low-res), "
        "mask as harmcli reads it (float32)"
    )
    notes.append("floor: one cv2.LUT pass over the same 8-bit RGB image; ratio = apply median / floor median")
    if report["peak_memory"]:
        notes.append(
            "peak memory: a full harmonize (read, predict, apply, write JPEG) in a fresh process; "
            "RSS rise over the RSS with the model loaded"
        )
    if any(s["precision"] in ("fp16", "bf16") for s in report["stages"]):
        notes.append("fp16/bf16: torch.autocast (fp16 on CUDA, bf16 on CPU); outputs are converted back to float32")
    return notes


# ------------------------------------------------------------------------------------------------ tables


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    return f"{_ms(entry['median_ms'])} [{_ms(entry['min_ms'])}–{_ms(entry['max_ms'])}]"


def render(report: dict) -> list:
    """Rich renderables for ``report``: per device, a stage x size table; then memory, folder mode and notes."""
    from rich.table import Table
    from rich.text import Text

    sizes = report["sizes"]
    runs = report["settings"]["runs"]
    out = []

    def find(stage, size=None, device=None, model=None, precision=None):
        for s in report["stages"]:
            same_device = device is None or s["device"] == device
            if (s["stage"], s["size"], s["model"], s["precision"]) == (stage, size, model, precision) and same_device:
                return s
        return None

    for device in report["device"]:
        where = report["gpu"]["name"] if device.startswith("cuda") and report["gpu"] else report["cpu"]["name"]
        threads = report["torch_threads"]
        title = f"harmcli bench on {device} ({where}; torch {threads} threads): median ms [min–max] over {runs} runs"
        table = Table(title=Text(title, style="bold"), title_justify="left")
        table.add_column("stage")
        for name, info in sizes.items():
            dims = f"{info['width']}×{info['height']}"
            table.add_column(dims if re.fullmatch(r"[\dx]+", name) else f"{name}\n{dims}", justify="right")
        table.add_row("decode JPEG", *[_cell(find("decode", n)) for n in sizes])
        for model, info in report["models"].items():
            cells = [_cell(find("downsample", n, device, model)) for n in sizes]
            table.add_row(f"downsample → {info['low_res']}² ({model})", *cells)
        network_rows = [s for s in report["stages"] if s["stage"] == "network" and s["device"] == device]
        for s in network_rows:
            res = report["models"][s["model"]]["low_res"]
            table.add_row(f"network {s['model']} {s['precision']} ({res}², any size)", *[_cell(s)] * len(sizes))
        table.add_row("apply", *[_cell(find("apply", n)) for n in sizes])
        floors = {f["size"]: f for f in report["floor"]}
        table.add_row("apply floor: one cv2.LUT", *[_cell(floors.get(n)) for n in sizes])
        table.add_row("apply ÷ floor", *[f"{floors[n]['ratio']:.1f}×" if n in floors else "-" for n in sizes])
        table.add_row("encode JPEG q95", *[_cell(find("encode_jpeg", n)) for n in sizes])
        table.add_row("encode PNG", *[_cell(find("encode_png", n)) for n in sizes])
        for s in network_rows:
            key = (device, s["model"], s["precision"])
            totals = {t["size"]: t for t in report["totals"] if (t["device"], t["model"], t["precision"]) == key}
            table.add_row(
                Text(f"total {s['model']} {s['precision']} (decode→JPEG)", style="bold"),
                *[Text(f"{totals[n]['median_ms']:.0f}", style="bold") if n in totals else "-" for n in sizes],
            )
        out.append(table)
    for m in report["peak_memory"]:
        line = (
            f"peak memory, full harmonize of {m['size']} ({m['model']} on {m['device']}): +{m['rss_increase_mib']:.0f} MiB RSS "
            f"over {m['baseline_rss_mib']:.0f} MiB with the model loaded (process peak {m['peak_rss_mib']:.0f} MiB)"
        )
        if m.get("cuda_max_allocated_mib") is not None:
            line += f"; CUDA max allocated {m['cuda_max_allocated_mib']:.0f} MiB"
        out.append(Text(line))
    if report["folder"]:
        f = report["folder"]
        out.append(Text(
            f"folder mode, {f['images']} × {f['size']} JPEG ({f['model']} on {f['device']}, median of {f['repeats']}): "
            f"OpenCV loop {f['opencv_loop_s']:.2f} s ({f['opencv_ms_per_image']:.0f} ms/image), "
            f"harmcli {f['harmcli_s']:.2f} s ({f['harmcli_ms_per_image']:.0f} ms/image) = {f['ratio']:.2f}× the floor; "
            f"{f['mode']}"
        ))
    for note in report["notes"]:
        out.append(Text(f"note: {note}", style="dim"))
    return out
