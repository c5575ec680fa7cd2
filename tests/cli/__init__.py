"""Shared helpers for the command tests: small generated images, weights files and an in-process runner.

Test modules import the fixtures they use from here (``from . import run, identity_weights, ...``) so
that pytest sees them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

HEIGHT, WIDTH = 48, 64
# The 'lite' network, run on a 64 x 64 copy instead of 256 x 256: the same code path, ~30x less CPU time, which
# keeps the suite fast on a busy 2-core machine. The weights file records low_res, so nothing else changes.
TEST_LOW_RES = 64


# ------------------------------------------------------------------------------------------- images


def write_image(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    """Write RGB (+ alpha) uint8/uint16 with OpenCV or tifffile, independently of harmcli.io."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        data = rgb if alpha is None else np.dstack([rgb, alpha])
        tifffile.imwrite(path, data, photometric="rgb" if data.ndim == 3 else "minisblack")
        return path
    if rgb.ndim == 2:
        bgr = rgb
    elif alpha is None:
        bgr = rgb[..., ::-1]
    else:
        bgr = np.dstack([rgb[..., ::-1], alpha])
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    return path


def read_image(path: Path) -> np.ndarray:
    """What a file holds, as RGB or RGBA at its own bit depth."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert data is not None, path
    if data.ndim == 3 and data.shape[2] == 3:
        return data[..., ::-1]
    if data.ndim == 3 and data.shape[2] == 4:
        return data[..., [2, 1, 0, 3]]
    return data


@dataclass
class Scene:
    """Foreground, background and mask arrays (``mask`` in the file's dtype, ``weight`` as float)."""

    fg: np.ndarray
    bg: np.ndarray
    mask: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        return self.mask.astype(np.float64) / np.iinfo(self.mask.dtype).max

    def composite(self) -> np.ndarray:
        w = self.weight[..., None]
        return np.rint(w * self.fg + (1 - w) * self.bg).astype(self.fg.dtype)


def make_scene(dtype=np.uint8, *, seed: int = 0, size=(HEIGHT, WIDTH)) -> Scene:
    """Smooth random images; the mask is a soft-edged ellipse (hard inside, some background everywhere else)."""
    rng = np.random.default_rng(seed)
    height, width = size
    maxval = np.iinfo(dtype).max

    def smooth():
        noise = rng.uniform(0.1, 0.9, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
        return cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR)

    fg = np.rint(smooth() * maxval).astype(dtype)
    bg = np.rint(smooth() * maxval).astype(dtype)
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot((xx - width * 0.45) / (width * 0.28), (yy - height * 0.5) / (height * 0.32))
    mask = np.rint(np.clip((1.15 - r) / 0.3, 0, 1) * maxval).astype(dtype)
    return Scene(fg, bg, mask)


def write_scene(folder: Path, scene: Scene, ext: str = ".png", stem: str = "", *, alpha: bool = False) -> tuple[Path, ...]:
    """fg, bg, mask files in ``folder`` (named ``{stem}fg{ext}`` ...). With ``alpha`` the mask is FG's alpha."""
    folder = Path(folder)
    fg = write_image(folder / f"{stem}fg{'.png' if alpha else ext}", scene.fg, scene.mask if alpha else None)
    bg = write_image(folder / f"{stem}bg{ext}", scene.bg)
    mask = write_image(folder / f"{stem}mask.png", scene.mask)
    return fg, bg, mask


def write_params(path: Path, curves: dict, shading=None) -> Path:
    """A hand-written adjustment JSON: ``curves`` maps red/green/blue to (x list, y list)."""
    doc = {"version": 1, "curves": {c: {"x": list(x), "y": list(y)} for c, (x, y) in curves.items()}, "shading": shading}
    Path(path).write_text(json.dumps(doc))
    return Path(path)


IDENTITY = ([0, 1], [0, 1])
HALF = ([0, 1], [0, 0.5])  # halves the channel
LIFT = ([0, 0.5, 1], [0, 0.75, 1])  # brightens mid-tones


def apply_curve(values: np.ndarray, curve, maxval: int) -> np.ndarray:
    """The expected effect of one piecewise-linear curve on integer code values (before rounding)."""
    x, y = curve
    return np.interp(values.astype(np.float64) / maxval, x, y) * maxval


# ------------------------------------------------------------------------------------------- weights


def _perturbed_lite(seed: int = 0):
    """An untrained 'lite' network whose output heads are nudged, so it predicts a real (smooth) adjustment."""
    import torch

    from harmcli.models import create_model

    torch.manual_seed(seed)
    model = create_model("lite", low_res=TEST_LOW_RES)
    with torch.no_grad():
        head = model.curves_head.mlp[-1]
        raw = torch.zeros(3, head.bias.numel() // 3)
        raw[:, 0] = torch.tensor([0.08, -0.02, -0.06])  # black point
        raw[:, 1:] = torch.tensor([[-0.4], [0.05], [0.3]]) + 0.05 * torch.randn(3, raw.shape[1] - 1)
        head.bias.copy_(raw.flatten())
        out = model.shading_decoder.out
        out.weight.normal_(0.0, 0.2)
        out.bias.fill_(0.15)
    return model


@pytest.fixture(scope="session")
def identity_weights(tmp_path_factory) -> Path:
    """An untrained 'lite' network: initialised to leave images unchanged."""
    from harmcli.models import create_model
    from harmcli.weights import save_weights

    path = tmp_path_factory.mktemp("weights") / "identity.safetensors"
    return save_weights(create_model("lite", low_res=TEST_LOW_RES), path)


@pytest.fixture(scope="session")
def active_weights(tmp_path_factory) -> Path:
    """A network that predicts non-trivial curves and a non-flat shading map."""
    from harmcli.weights import save_weights

    return save_weights(_perturbed_lite(), tmp_path_factory.mktemp("weights") / "active.safetensors")


# ------------------------------------------------------------------------------------------- running

# One intra-op thread for the network in tests: on a 2-core machine shared with other jobs, two torch threads
# spin against each other and a 30 ms forward pass can take seconds; one thread is steady.
TORCH_THREADS_ENV = {"OMP_NUM_THREADS": "1"}


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def run(capsys):
    """Run ``harmcli ARGS...`` in this process; returns exit code, stdout and stderr."""

    def _run(*args) -> Result:
        import torch

        from harmcli.cli.app import main

        capsys.readouterr()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # see TORCH_THREADS_ENV
        try:
            with pytest.raises(SystemExit) as info:
                main([str(a) for a in args])
        finally:
            torch.set_num_threads(threads)
        out, err = capsys.readouterr()
        code = info.value.code
        return Result(0 if code is None else int(code), out, err)

    return _run


def assert_one_error(result: Result, code: int, *fragments: str) -> None:
    """Exit ``code``, exactly one line on stderr, an error line naming ``fragments``, no traceback."""
    assert result.code == code, result.err
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("error:"), line
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment.lower() in line.lower(), (fragment, line)


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder``, relative and sorted (hidden temporary files included)."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
