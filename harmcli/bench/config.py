"""What ``harmcli bench`` measures: sizes, models and the settings of a run (no heavy imports)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harmcli.errors import UsageError


SCHEMA = "harmcli-bench/1"
STAGES = ("decode", "downsample", "network", "apply", "encode_jpeg", "encode_png")
JPEG_QUALITY = 95
NAMED_SIZES = {"512": (512, 512), "720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160), "12mp": (4000, 3000)}
DEFAULT_SIZES = ("512", "1080p", "4k", "12mp")
FOLDER_SIZE = "4k"
ONESHOT_SIZE = "4k"
BACKENDS = ("auto", "onnx", "torch")
VIDEO_SIZE = "1080p"
MASK_COVERAGE = 0.35
MIN_SIDE, MAX_PIXELS = 16, 100_000_000


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
    video: int = 0  # frames of a generated clip timed end to end (0: off)
    video_size: str = VIDEO_SIZE  # the CLI always uses 1080p; tests use less
    memory: bool = True
    backend: str = "auto"  # auto: every engine the device has (torch; ONNX Runtime too on the CPU)
    oneshot: bool = True  # time whole `harmcli harmonize` processes against the plain OpenCV script
    oneshot_size: str = ONESHOT_SIZE  # the CLI always uses 4K; tests use less
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
        if self.video < 0 or self.video == 1:
            raise UsageError(f"--video must be 0 (off) or a number of frames (at least 2), got {self.video}")
        if not self.sizes:
            raise UsageError("--sizes is empty")
        if self.backend not in BACKENDS:
            raise UsageError(f"--backend must be {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}, not '{self.backend}'")
