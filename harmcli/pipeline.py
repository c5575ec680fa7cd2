"""Predict at low resolution, apply at full resolution.

``Harmonizer.predict`` runs the network on a low-res copy and returns an :class:`Adjustment`;
:func:`harmcli.ops.apply.apply_adjustment` applies it to the full-resolution image. ``harmonize`` does both.
Two engines run the network: PyTorch (:class:`Harmonizer`: training, CUDA, the fallback) and ONNX Runtime
(:class:`OnnxHarmonizer`: the CPU path that never imports torch). :func:`load_harmonizer` picks one.

torch is imported only inside the torch engine's methods, so that this module costs NumPy and OpenCV alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from harmcli.errors import BackendError, DeviceError, InputMismatchError, UsageError, WeightsError
from harmcli.ops.adjustment import Adjustment
from harmcli.ops.apply import apply_adjustment, mask_to_float

if TYPE_CHECKING:
    import torch

    from harmcli.models import HarmonizationNet
    from harmcli.onnx_backend import OnnxNetwork

_SCALE = {np.dtype(np.uint8): 1.0 / 255.0, np.dtype(np.uint16): 1.0 / 65535.0}


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; 'cuda' without CUDA is an error, never a silent CPU fallback."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was asked for, but no CUDA GPU is available to PyTorch here (use --device cpu)")
        return torch.device(device)
    if device == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device '{device}' (use auto, cpu or cuda)")


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Any uint8/uint16/float image -> float32 in [0, 1] (no copy for float32 input)."""
    scale = _SCALE.get(image.dtype)
    if scale is None:
        return image.astype(np.float32, copy=False)
    return image.astype(np.float32) * scale


PARALLEL_RESIZE_ROWS = 512


def downsample(image: np.ndarray, size: int) -> np.ndarray:
    """Area-average resize to ``size`` x ``size`` (the network's square input); float32 in [0, 1].

    Resized in the image's own dtype first and converted afterwards: converting a 12 MP image to float before
    shrinking it costs more time and memory than the rest of a harmonize. Training data is resized the same way.
    """
    if image.shape[:2] != (size, size):
        # OpenCV splits a resize across threads by output rows, and an output of under ~512 rows stays on one
        # core: a 4K image shrunk to 256 rows takes longer than the same image shrunk to 512. So small sizes go
        # through an exact multiple of themselves of at least 512 rows first; the second step is then a k x k box.
        # Both steps are box averages over nested pixel grids, so the result is the one-step average (up to the
        # rounding of the 8/16-bit intermediate, under 1 code value).
        middle = size * -(-PARALLEL_RESIZE_ROWS // size)
        if middle > size and min(image.shape[:2]) >= 2 * middle:
            image = cv2.resize(image, (middle, middle), interpolation=cv2.INTER_AREA)
        interp = cv2.INTER_AREA if min(image.shape[:2]) >= size else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interp)
    return to_unit_float(image)


def check_inputs(composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> None:
    if composite.shape[:2] != mask.shape[:2] or background.shape[:2] != mask.shape[:2]:
        raise InputMismatchError(
            f"composite {composite.shape[1]}x{composite.shape[0]}, background {background.shape[1]}x{background.shape[0]} "
            f"and mask {mask.shape[1]}x{mask.shape[0]} must have the same size"
        )


def mirror_averaged(curve_y: np.ndarray, shading: np.ndarray, curve_y_mirror: np.ndarray, shading_mirror: np.ndarray):
    """The adjustment of an image averaged with the one predicted for its left-right mirror image.

    A harmonization does not depend on which way the picture faces, but a network trained on a few thousand
    photos has not learnt that exactly; averaging the two predictions cancels part of its error (measured on
    the shipped weights in weights/README.md). Curves are averaged; the shading map is flipped back and its gains,
    which multiply the image, are averaged geometrically (a gain of 2 and one of 1/2 average to 1, not 1.25).
    Arrays: curves (..., 3, K), shading (..., S, S); the mirror's shading is as the network gave it (mirrored).
    """
    return (curve_y + curve_y_mirror) * 0.5, np.sqrt(shading * shading_mirror[..., ::-1])


def low_res_arrays(
    composite: np.ndarray, background: np.ndarray, mask: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Both engines' network inputs: (1, 3, S, S), (1, 3, S, S), (1, 1, S, S) contiguous float32. The background
    is None when it is the composite itself (the COMPOSITE --mask form): it is shrunk once and fed twice."""

    def planar(image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(downsample(image, size).transpose(2, 0, 1))[None]

    c = planar(composite)
    b = None if background is composite else planar(background)
    return c, b, np.ascontiguousarray(downsample(mask_to_float(mask), size))[None, None]


class _Predicting:
    """What both engines share: ``harmonize`` = ``predict`` + apply at full resolution.

    ``flip_average``: predict for the image and for its mirror image and average the two (see
    :func:`mirror_averaged`); costs a second network pass (at low resolution), on by default."""

    low_res: int
    backend: str
    flip_average: bool = True

    def predict(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> Adjustment:
        raise NotImplementedError

    def harmonize(
        self,
        composite: np.ndarray,
        background: np.ndarray,
        mask: np.ndarray,
        *,
        strength: float = 1.0,
        shading_strength: float = 1.0,
    ) -> tuple[np.ndarray, Adjustment]:
        """Predict and apply; returns the harmonized image (same dtype as ``composite``) and the adjustment used."""
        adjustment = self.predict(composite, background, mask).scaled(strength, shading_strength)
        return apply_adjustment(composite, mask, adjustment), adjustment


class Harmonizer(_Predicting):
    """A loaded PyTorch network on a device, ready to predict adjustments for many images."""

    backend = "torch"

    def __init__(self, model: HarmonizationNet, device: torch.device):
        self.model = model.to(device).eval()
        self.device = device
        self.low_res = model.config.low_res

    @classmethod
    def load(cls, weights: str | Path | None = None, device: str = "auto") -> "Harmonizer":
        """Load ``weights`` (or the shipped default) onto ``device``."""
        from harmcli.weights import default_weights_path, load_weights

        dev = resolve_device(device)
        path = Path(weights) if weights is not None else default_weights_path()
        if path is None:
            raise WeightsError("no default weights found in weights/; pass --weights FILE")
        return cls(load_weights(path, "cpu"), dev)

    @classmethod
    def untrained(cls, name: str = "lite", device: str = "cpu") -> "Harmonizer":
        """An identity-initialised network (leaves images unchanged); for tests and benchmarks."""
        from harmcli.models import create_model

        return cls(create_model(name), resolve_device(device))

    def low_res_inputs(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The network's three inputs as (1, C, S, S) tensors on the device."""
        import torch

        c, b, m = (None if a is None else torch.from_numpy(a).to(self.device)
                   for a in low_res_arrays(composite, background, mask, self.low_res))
        return c, (c if b is None else b), m

    def predict(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> Adjustment:
        """Predict the adjustment for full-resolution RGB ``composite``/``background`` (H, W, 3) and ``mask`` (H, W)."""
        import torch

        check_inputs(composite, background, mask)
        with torch.inference_mode():
            c, b, m = self.low_res_inputs(composite, background, mask)
            curve_y, shading = self._run(c, b, m)
            return Adjustment.from_uniform(curve_y[0], shading[0])

    def _run(self, c: "torch.Tensor", b: "torch.Tensor", m: "torch.Tensor") -> tuple[np.ndarray, np.ndarray]:
        """The network on (B, C, S, S) inputs -> curves (B, 3, K), shading (B, S, S) as float32 arrays; with
        ``flip_average`` the mirror images go through in the same batch."""
        import torch

        n = c.shape[0]
        if self.flip_average:
            shared = b is c
            c, m = torch.cat([c, c.flip(-1)]), torch.cat([m, m.flip(-1)])
            b = c if shared else torch.cat([b, b.flip(-1)])
        curve_y, shading = self.model(c, b, m)
        curve_y, shading = curve_y.float().cpu().numpy(), shading[:, 0].float().cpu().numpy()
        if self.flip_average:
            return mirror_averaged(curve_y[:n], shading[:n], curve_y[n:], shading[n:])
        return curve_y, shading

    def predict_low_res(
        self, composites: np.ndarray, backgrounds: np.ndarray, masks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predict a batch from inputs already at the network's size (as :func:`downsample` makes them).

        Args:
            composites, backgrounds: (B, S, S, 3) float32 in [0, 1]; masks: (B, S, S) float32 in [0, 1].

        Returns:
            ``curve_y`` (B, 3, K) and ``shading`` (B, S, S) float32: the adjustments of :meth:`predict`.
        """
        import torch

        def to_device(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

        with torch.inference_mode():
            c = to_device(composites).permute(0, 3, 1, 2)
            b = c if backgrounds is composites else to_device(backgrounds).permute(0, 3, 1, 2)
            m = to_device(masks)[:, None]
            return self._run(c, b, m)


class OnnxHarmonizer(_Predicting):
    """The same predictions through ONNX Runtime on the CPU (see :mod:`harmcli.onnx_backend`); no torch."""

    backend = "onnx"
    device = "cpu"

    def __init__(self, network: OnnxNetwork):
        self.network = network
        self.low_res = network.low_res

    def low_res_inputs(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        """The network's three inputs as (1, C, S, S) float32 arrays: the same pixels as the torch engine's."""
        c, b, m = low_res_arrays(composite, background, mask, self.low_res)
        return c, (c if b is None else b), m

    def predict(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> Adjustment:
        """Predict the adjustment for full-resolution RGB ``composite``/``background`` (H, W, 3) and ``mask`` (H, W)."""
        check_inputs(composite, background, mask)
        curve_y, shading = self._run(*self.low_res_inputs(composite, background, mask))
        return Adjustment.from_uniform(curve_y[0], shading[0])

    def _run(self, c: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One image's (1, C, S, S) inputs -> curves (1, 3, K), shading (1, S, S); the exported graph takes one
        image, so with ``flip_average`` the mirror image is a second call."""
        curve_y, shading = self.network(c, b, m)
        if not self.flip_average:
            return curve_y, shading[:, 0]

        def mirror(a):
            return np.ascontiguousarray(a[..., ::-1])

        mc = mirror(c)
        curve_m, shading_m = self.network(mc, mc if b is c else mirror(b), mirror(m))
        return mirror_averaged(curve_y, shading[:, 0], curve_m, shading_m[:, 0])

    def predict_low_res(
        self, composites: np.ndarray, backgrounds: np.ndarray, masks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`Harmonizer.predict_low_res` on ONNX Runtime; the exported graph takes one image, so a loop."""
        curves, shadings = [], []
        for i in range(len(composites)):
            c = np.ascontiguousarray(composites[i].transpose(2, 0, 1), dtype=np.float32)[None]
            b = c if backgrounds is composites else np.ascontiguousarray(backgrounds[i].transpose(2, 0, 1), dtype=np.float32)[None]
            curve_y, shading = self._run(c, b, np.ascontiguousarray(masks[i], dtype=np.float32)[None, None])
            curves.append(curve_y[0])
            shadings.append(shading[0])
        return np.stack(curves), np.stack(shadings)


# ----------------------------------------------------------------------------------------- choosing an engine

BACKENDS = ("auto", "onnx", "torch")


def load_harmonizer(
    weights: str | Path | None = None,
    device: str = "auto",
    backend: str = "auto",
    threads: int | None = None,
    notes: list[str] | None = None,
    flip_average: bool = True,
) -> Harmonizer | OnnxHarmonizer:
    """Load ``weights`` (or the shipped default) on the engine that ``backend`` and ``device`` ask for.

    ``auto`` runs ONNX Runtime on the CPU when ``onnxruntime`` is installed and an up-to-date export of the
    weights lies beside them (``NAME.onnx``, or ``weights`` is itself a ``.onnx`` file); otherwise, and on CUDA,
    PyTorch. ``onnx`` insists on ONNX Runtime (an error when it cannot serve); ``torch`` insists on PyTorch.
    ``threads`` sets the engine's CPU threads. A stale export under ``auto`` adds a line to ``notes``.
    ``flip_average``: see :class:`_Predicting`.
    """
    harmonizer = _load_engine(weights, device, backend, threads, notes)
    harmonizer.flip_average = flip_average
    return harmonizer


def _load_engine(weights, device, backend, threads, notes) -> Harmonizer | OnnxHarmonizer:
    from harmcli.onnx_backend import onnx_path_for, onnx_runtime_installed
    from harmcli.weights import default_weights_path, file_sha256

    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not '{backend}'")
    device = (device or "auto").lower()
    path = Path(weights) if weights is not None else default_weights_path()
    if path is None:
        raise WeightsError("no default weights found in weights/; pass --weights FILE")
    given_onnx = path.suffix.lower() == ".onnx"
    if device.startswith("cuda") and (backend == "onnx" or given_onnx):
        raise UsageError("the ONNX backend runs on the CPU; for CUDA use --backend torch with a .safetensors weights file")
    if given_onnx and backend == "torch":
        raise UsageError(f"{path}: --backend torch needs the .safetensors weights, not an ONNX export")

    if backend == "torch" or (backend == "auto" and not given_onnx and _cuda_may_be_present(device)):
        return _torch_harmonizer(path, device, threads)
    if not onnx_runtime_installed():
        if backend == "onnx" or given_onnx:
            raise BackendError("ONNX Runtime is not installed: pip install onnxruntime (or use --backend torch)")
        return _torch_harmonizer(path, device, threads)
    if given_onnx:
        return _onnx_harmonizer(path, threads)
    exported = onnx_path_for(path)
    hint = f"make it with 'harmcli export {path} -o {exported}'"
    if not exported.is_file():
        if backend == "onnx":
            raise WeightsError(f"{path}: no ONNX export beside it ({exported}); {hint}, or use --backend torch")
        return _torch_harmonizer(path, device, threads)
    harmonizer = _onnx_harmonizer(exported, threads)
    if harmonizer.network.weights_sha256 != file_sha256(path):
        # Weights retrained or replaced and the export left behind: never run the old network.
        # The stale file is in the way: without --overwrite the suggested command would only say it exists.
        message = (
            f"{exported} was exported from other weights than {path}; "
            f"refresh it with 'harmcli export {path} -o {exported} --overwrite'"
        )
        if backend == "onnx":
            raise WeightsError(message)
        if notes is not None:
            notes.append(message + "; using PyTorch meanwhile")
        return _torch_harmonizer(path, device, threads)
    return harmonizer


def _torch_harmonizer(path: Path, device: str, threads: int | None) -> Harmonizer:
    harmonizer = Harmonizer.load(path, device)
    if threads:
        import torch

        torch.set_num_threads(threads)
    return harmonizer


def _onnx_harmonizer(path: Path, threads: int | None) -> OnnxHarmonizer:
    from harmcli.onnx_backend import OnnxNetwork

    return OnnxHarmonizer(OnnxNetwork(path, threads))


def _cuda_may_be_present(device: str) -> bool:
    """Whether ``device`` may mean a CUDA GPU, answered without importing torch where the system tells.

    ``cpu``: no. ``auto``: only when CUDA is visible (not hidden by CUDA_VISIBLE_DEVICES, an NVIDIA driver on
    Linux, not macOS) and then torch itself is asked, the only reliable judge.
    """
    if device == "cpu":
        return False
    if device.startswith("cuda"):
        return True
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux") and not any(
        os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/dxg")
    ):
        return False
    import torch

    return torch.cuda.is_available()
