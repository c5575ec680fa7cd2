"""A tiny iHarmony4-layout folder, generated: composites are colour-shifted copies of the real photos."""

from pathlib import Path

import cv2
import numpy as np
import pytest


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1] if rgb.ndim == 3 else rgb)


def make_iharmony(root: Path, count: int = 5, size=(40, 48), seed: int = 0) -> dict:
    """Writes ``count`` items (PNG, lossless) and a test list of all but the last; the 4th has an empty mask.

    Returns ``{name: (composite, mask (bool), real)}`` for the listed items, as written.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    arrays = {}
    for i in range(count):
        real = cv2.GaussianBlur(rng.integers(30, 220, (height, width, 3)).astype(np.uint8), (5, 5), 1.5)
        mask = np.zeros((height, width), np.uint8)
        if i != 3:
            mask[8 + i : 30, 10 : 34 + i] = 255
        gain = np.array([0.7, 0.9, 1.2]) if i % 2 else np.array([1.25, 1.0, 0.8])
        composite = real.copy()
        composite[mask > 0] = np.clip(real[mask > 0] * gain + 10 * i, 0, 255).astype(np.uint8)
        photo = f"p{i}"
        _write(root / "real_images" / f"{photo}.png", real)
        _write(root / "masks" / f"{photo}_1.png", mask)
        _write(root / "composite_images" / f"{photo}_1_1.png", composite)
        arrays[f"{photo}_1_1"] = (composite, mask > 0, real)
    listed = list(arrays)[: count - 1]
    (root / "Tiny_test.txt").write_text("".join(f"{name}.png\n" for name in listed))
    return {name: arrays[name] for name in listed}


@pytest.fixture
def iharmony(tmp_path):
    root = tmp_path / "Tiny"
    return root, make_iharmony(root)


@pytest.fixture(scope="session")
def identity_weights(tmp_path_factory):
    """An untrained 'lite' network: initialised to leave images unchanged."""
    from harmcli.models import create_model
    from harmcli.weights import save_weights

    return save_weights(create_model("lite"), tmp_path_factory.mktemp("weights") / "identity.safetensors")
