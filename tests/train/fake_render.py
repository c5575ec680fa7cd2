"""A tiny folder in the layout ``harmcli render`` writes, made without Blender: one synthetic "scene" per stem
lit by a few colour "styles"; each composite takes the foreground of style a and the rest of style b."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import object_mask, synthetic_photo

STYLE_NAMES = ("clear_noon", "clear_sunset", "night", "cloudy_noon")
# Per-style RGB gains: the "lighting" of this fake renderer.
STYLE_GAINS = {0: (1.0, 1.0, 1.0), 1: (1.3, 0.95, 0.6), 2: (0.35, 0.4, 0.6), 3: (0.8, 0.85, 0.9)}


def _write(path: Path, rgb: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), data)
    return f"{path.parent.name}/{path.name}"


def write_fake_render(
    root: Path, *, scenes: int = 3, size: int = 48, seed: int = 0, val_scenes: int = 1, explicit_target: bool = False
) -> Path:
    """``explicit_target``: also write ``target_style_label`` (``harmcli render`` does); without it the reader
    infers the target's style from the soft label."""
    rng = np.random.default_rng(seed)
    rows = []
    for scene in range(scenes):
        split = "val" if scene < val_scenes else "train"
        base = synthetic_photo(rng, size, size).astype(np.float32) / 255
        mask = object_mask(size, size, (size // 4, 3 * size // 4, size // 3, 2 * size // 3))
        area = float((mask > 127).mean())
        renders = {k: np.clip(base * np.array(g, np.float32), 0, 1) for k, g in STYLE_GAINS.items()}
        for a, b in ((1, 0), (2, 3), (0, 1)):
            m = (mask.astype(np.float32) / 255)[..., None]
            composite = renders[a] * m + renders[b] * (1 - m)
            label = [0.0] * 10
            label[a] += area
            label[b] += 1 - area
            sid = f"s{scene}_{a}_{b}"
            to8 = lambda x: (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)  # noqa: E731
            rows.append({
                "id": sid, "domain": "rendered", "mode": "rendered", "role": "supervised", "split": split,
                "scene": f"scene{scene}", "style_fg": STYLE_NAMES[a], "style_bg": STYLE_NAMES[b], "style_label": label,
                "composite": _write(root / "composites" / f"{sid}.png", to8(composite)),
                "background": _write(root / "backgrounds" / f"{sid}.png", to8(renders[b])),
                "mask": _write(root / "masks" / f"{sid}.png", mask),
                "target": _write(root / "targets" / f"{sid}.png", to8(renders[b])),
            })
            if explicit_target:
                rows[-1]["target_style_label"] = [1.0 if k == b else 0.0 for k in range(10)]
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
