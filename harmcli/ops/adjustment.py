"""The adjustment: what the network predicts and what an artist can edit.

Three piecewise-linear curves (red, green, blue) and an optional low-resolution grayscale gain map. Plain
NumPy so that an edited adjustment can be applied without torch or a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmcli.errors import AdjustmentError

CHANNELS = ("red", "green", "blue")
DEFAULT_POINTS = 32
# Gains outside this range are certainly a broken file, not an edit.
SHADING_RANGE = (1e-3, 1e3)


@dataclass(frozen=True)
class Adjustment:
    """Curves and shading for one image.

    Attributes:
        curve_x: (3, K) float32 control-point positions per channel, strictly increasing from 0 to 1.
        curve_y: (3, K) float32 curve values in [0, 1].
        shading: (h, w) float32 positive gain map covering the whole image, or None (gain 1 everywhere).
    """

    curve_x: np.ndarray
    curve_y: np.ndarray
    shading: np.ndarray | None = None

    def __post_init__(self):
        x = np.ascontiguousarray(self.curve_x, dtype=np.float32)
        y = np.ascontiguousarray(self.curve_y, dtype=np.float32)
        object.__setattr__(self, "curve_x", x)
        object.__setattr__(self, "curve_y", y)
        if self.shading is not None:
            object.__setattr__(self, "shading", np.ascontiguousarray(self.shading, dtype=np.float32))
        self.validate()

    @classmethod
    def identity(cls, n_points: int = DEFAULT_POINTS) -> "Adjustment":
        grid = np.linspace(0.0, 1.0, n_points, dtype=np.float32)
        return cls(np.tile(grid, (3, 1)), np.tile(grid, (3, 1)), None)

    @classmethod
    def from_uniform(cls, curve_y: np.ndarray, shading: np.ndarray | None = None) -> "Adjustment":
        """Curves on the uniform grid, as the networks predict them."""
        curve_y = np.asarray(curve_y, dtype=np.float32)
        grid = np.linspace(0.0, 1.0, curve_y.shape[-1], dtype=np.float32)
        return cls(np.tile(grid, (3, 1)), curve_y, shading)

    def validate(self) -> None:
        x, y = self.curve_x, self.curve_y
        if x.ndim != 2 or x.shape[0] != 3 or x.shape != y.shape or x.shape[1] < 2:
            raise AdjustmentError(f"curves must be 3 channels of at least 2 points with matching x and y, got x{x.shape} y{y.shape}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise AdjustmentError("curve values must be finite numbers")
        if np.any(np.diff(x, axis=1) <= 0):
            raise AdjustmentError("curve x values must be strictly increasing")
        if np.any(np.abs(x[:, 0]) > 1e-6) or np.any(np.abs(x[:, -1] - 1) > 1e-6):
            raise AdjustmentError("each curve must start at x=0 and end at x=1")
        if np.any(y < -1e-6) or np.any(y > 1 + 1e-6):
            raise AdjustmentError("curve y values must lie in [0, 1]")
        if self.shading is not None:
            s = self.shading
            if s.ndim != 2 or min(s.shape) < 1:
                raise AdjustmentError(f"shading must be a 2-D gain map, got shape {s.shape}")
            if not np.isfinite(s).all() or s.min() < SHADING_RANGE[0] or s.max() > SHADING_RANGE[1]:
                raise AdjustmentError(f"shading gains must be finite and within {SHADING_RANGE}")

    @property
    def n_points(self) -> int:
        return self.curve_x.shape[1]

    @property
    def is_identity(self) -> bool:
        return self.shading is None and bool(np.all(np.abs(self.curve_y - self.curve_x) < 1e-7))

    def evaluate(self, values: np.ndarray) -> np.ndarray:
        """Evaluate the three curves at ``values`` (1-D, in [0, 1]); returns (len(values), 3) float32."""
        values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
        cols = [np.interp(values, self.curve_x[c].astype(np.float64), self.curve_y[c].astype(np.float64)) for c in range(3)]
        return np.stack(cols, axis=1).astype(np.float32)

    def lut(self, levels: int) -> np.ndarray:
        """Curves sampled at every code value ``k / (levels - 1)``: (levels, 3) float32 in [0, 1]."""
        return self.evaluate(np.arange(levels) / (levels - 1))

    def scaled(self, strength: float = 1.0, shading_strength: float = 1.0) -> "Adjustment":
        """Weaken or exaggerate the adjustment: 0 = off, 1 = as given.

        Curves move linearly toward the identity; the shading gain is raised to the power ``shading_strength``
        so that 0 is flat and 2 doubles the effect in stops.
        """
        if strength == 1.0 and shading_strength == 1.0:
            return self
        y = np.clip(self.curve_x + strength * (self.curve_y - self.curve_x), 0.0, 1.0)
        shading = None
        if self.shading is not None and shading_strength != 0.0:
            shading = np.power(self.shading, shading_strength, dtype=np.float32)
            shading = np.clip(shading, *SHADING_RANGE)
        return Adjustment(self.curve_x, y, shading)
