"""The networks being timed: built untrained or from weights, called in fp32 or under autocast, and the same
networks exported to ONNX and run by ONNX Runtime."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import torch

from harmcli.bench.config import ModelSpec
from harmcli.ops.adjustment import Adjustment


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


def build_onnx_harmonizer(harmonizer, folder: Path, threads: int | None):
    """The network of a torch ``harmonizer`` exported to ``folder`` and loaded in ONNX Runtime (same weights)."""
    from harmcli.onnx_backend import OnnxNetwork, export_model
    from harmcli.pipeline import OnnxHarmonizer

    path = folder / f"bench-{id(harmonizer)}.onnx"
    if not path.exists():
        export_model(harmonizer.model, path)
    return OnnxHarmonizer(OnnxNetwork(path, threads))


def backends_for(device: torch.device, backend: str) -> list[str]:
    """The engines to time on ``device``: ``auto`` = every one it has; ONNX Runtime serves the CPU only."""
    from harmcli.errors import UsageError
    from harmcli.onnx_backend import onnx_runtime_installed

    onnx = device.type == "cpu" and onnx_runtime_installed()
    if backend == "onnx" and not onnx:
        why = "onnxruntime is not installed" if device.type == "cpu" else f"it runs on the CPU, not {device}"
        raise UsageError(f"--backend onnx: {why}")
    if backend == "auto":
        return ["torch", "onnx"] if onnx else ["torch"]
    return [backend]


def precisions(device: torch.device, fp16: bool | None) -> list[str]:
    """fp32 always; half precision too when asked, or by default on CUDA (autocast: fp16 on CUDA, bf16 on CPU)."""
    half = "fp16" if device.type == "cuda" else "bf16"
    if fp16 or (fp16 is None and device.type == "cuda"):
        return ["fp32", half]
    return ["fp32"]


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def network_call(harmonizer, inputs, precision: str) -> Callable[[], Adjustment]:
    """What ``Harmonizer.predict`` does after the downsample: forward, outputs to the host, an Adjustment."""
    if harmonizer.backend == "onnx":

        def run_onnx() -> Adjustment:
            curve_y, shading = harmonizer.network(*inputs)
            return Adjustment.from_uniform(curve_y[0], shading[0, 0])

        return run_onnx

    def call() -> Adjustment:
        with torch.inference_mode(), autocast(harmonizer.device, precision):
            curve_y, shading = harmonizer.model(*inputs)
        return Adjustment.from_uniform(curve_y[0].float().cpu().numpy(), shading[0, 0].float().cpu().numpy())

    return call
