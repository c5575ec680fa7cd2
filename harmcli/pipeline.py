"""Predict at low resolution, apply at full resolution.

``Harmonizer.predict`` runs the network on a low-res copy and returns an :class:`Adjustment`;
:func:`harmcli.ops.apply.apply_adjustment` applies it to the full-resolution image. ``harmonize`` does both.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from harmcli.errors import DeviceError, InputMismatchError, WeightsError
from harmcli.models import HarmonizationNet, create_model
from harmcli.ops.adjustment import Adjustment
from harmcli.ops.apply import apply_adjustment, mask_to_float

_SCALE = {np.dtype(np.uint8): 1.0 / 255.0, np.dtype(np.uint16): 1.0 / 65535.0}


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; 'cuda' without CUDA is an error, never a silent CPU fallback."""
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


class Harmonizer:
    """A loaded network on a device, ready to predict adjustments for many images."""

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
        return cls(create_model(name), resolve_device(device))

    def low_res_inputs(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The network's three inputs as (1, C, S, S) tensors on the device."""
        s = self.low_res
        c = torch.from_numpy(downsample(composite, s)).permute(2, 0, 1)[None]
        # In the COMPOSITE --mask form the background is the composite itself: shrink it once.
        b = c if background is composite else torch.from_numpy(downsample(background, s)).permute(2, 0, 1)[None]
        m = torch.from_numpy(downsample(mask_to_float(mask), s))[None, None]
        return c.to(self.device), b.to(self.device), m.to(self.device)

    @torch.inference_mode()
    def predict(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> Adjustment:
        """Predict the adjustment for full-resolution RGB ``composite``/``background`` (H, W, 3) and ``mask`` (H, W)."""
        check_inputs(composite, background, mask)
        c, b, m = self.low_res_inputs(composite, background, mask)
        curve_y, shading = self.model(c, b, m)
        return Adjustment.from_uniform(curve_y[0].float().cpu().numpy(), shading[0, 0].float().cpu().numpy())

    @torch.inference_mode()
    def predict_low_res(
        self, composites: np.ndarray, backgrounds: np.ndarray, masks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predict a batch from inputs already at the network's size (as :func:`downsample` makes them).

        Args:
            composites, backgrounds: (B, S, S, 3) float32 in [0, 1]; masks: (B, S, S) float32 in [0, 1].

        Returns:
            ``curve_y`` (B, 3, K) and ``shading`` (B, S, S) float32: the adjustments of :meth:`predict`.
        """
        def to_device(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

        c = to_device(composites).permute(0, 3, 1, 2)
        b = c if backgrounds is composites else to_device(backgrounds).permute(0, 3, 1, 2)
        m = to_device(masks)[:, None]
        curve_y, shading = self.model(c, b, m)
        return curve_y.float().cpu().numpy(), shading[:, 0].float().cpu().numpy()

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
