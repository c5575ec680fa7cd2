"""Training samples in memory, by stream and domain.

Reads ``make-composites`` folders (``manifest.jsonl``), ``render`` folders (the same layout; their rows say
``"domain": "rendered"`` and carry style labels) and iHarmony4 folders (``composite_images/``, ``masks/``,
``real_images/``, ``*_train.txt``). Photo samples go to the streams ``supervised``, ``adversarial``, ``real``
and ``val``; rendered supervised samples to ``rendered`` and ``val_rendered``. Everything is resized to the training size once and kept as
uint8 tensors: the datasets this is for fit in memory, and decoding PNGs every step would cost more than the
network on a small CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from harmcli.data.composites import read_manifest
from harmcli.errors import DatasetError

STREAMS = ("supervised", "adversarial", "real")
N_STYLES = 10


@dataclass
class Batch:
    composite: torch.Tensor  # (B, 3, S, S) float in [0, 1]
    background: torch.Tensor  # (B, 3, S, S)
    mask: torch.Tensor  # (B, 1, S, S)
    target: torch.Tensor | None  # (B, 3, S, S) or None for the adversarial and real streams
    style_in: torch.Tensor | None = None  # (B, 10) the composite's style label (rendered samples; soft)
    style_out: torch.Tensor | None = None  # (B, 10) the target's style label (one-hot)


@dataclass
class Sample:
    composite: Path
    background: Path | None  # None: the composite itself
    mask: Path
    target: Path | None
    role: str
    split: str
    domain: str = "photo"
    style_label: list[float] | None = None  # the composite's (soft) style label
    target_style_label: list[float] | None = None  # the target's (one-hot); None: inferred, see target_style


def _style_vector(value, where: str) -> list[float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != N_STYLES or not all(isinstance(v, (int, float)) for v in value):
        raise DatasetError(f"{where}: a style label must be a list of {N_STYLES} numbers")
    return [float(v) for v in value]


def target_style(composite_label: torch.Tensor, foreground_fraction: float) -> torch.Tensor:
    """The target render's one-hot style from the composite's soft label, when the manifest does not give it.

    A composite's label is ``a * onehot(style_fg) + (1 - a) * onehot(style_bg)`` with ``a`` the foreground's
    share of the frame (paper §3), and the target is the scene in the background's style. Of the (at most two)
    styles present, the background's is the one whose weight is nearer ``1 - a``.
    """
    present = torch.nonzero(composite_label > 1e-6).flatten()
    out = torch.zeros_like(composite_label)
    if present.numel() == 0:
        return out
    if present.numel() == 1:
        out[present[0]] = 1.0
        return out
    weights = composite_label[present]
    out[present[torch.argmin((weights - (1.0 - foreground_fraction)).abs())]] = 1.0
    return out


def _read_rgb(path: Path, size: int) -> np.ndarray:
    data = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if data is None:
        raise DatasetError(f"{path}: missing or not an image")
    data = cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    if data.shape[:2] != (size, size):
        data = cv2.resize(data, (size, size), interpolation=cv2.INTER_AREA)
    return data


def _read_gray(path: Path, size: int) -> np.ndarray:
    data = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if data is None:
        raise DatasetError(f"{path}: missing or not an image")
    if data.shape[:2] != (size, size):
        data = cv2.resize(data, (size, size), interpolation=cv2.INTER_AREA)
    return data


def manifest_samples(folder: Path) -> list[Sample]:
    samples = []
    for number, row in enumerate(read_manifest(folder), 1):
        rendered = row.get("domain") == "rendered"
        where = f"{folder / 'manifest.jsonl'}:{number}"
        target_label = _style_vector(row.get("target_style_label"), where) if rendered else None
        if rendered and target_label is None and isinstance(row.get("style_bg"), int):
            target_label = [1.0 if k == row["style_bg"] else 0.0 for k in range(N_STYLES)]
        samples.append(
            Sample(
                composite=folder / row["composite"],
                background=folder / row["background"] if row.get("background") else None,
                mask=folder / row["mask"],
                target=folder / row["target"] if row.get("target") else None,
                # A render is a supervised pair even if its row does not say so: it always has its target.
                role=row.get("role") or ("supervised" if rendered else "adversarial"),
                split=row.get("split", "train"),
                domain="rendered" if rendered else "photo",
                style_label=_style_vector(row.get("style_label"), where) if rendered else None,
                target_style_label=target_label,
            )
        )
    return samples


def iharmony_samples(folder: Path) -> list[Sample]:
    """Supervised samples from an iHarmony4 folder (a subset, or the root with all subsets): the ``*_train.txt``
    lists pick training images and ``*_test.txt`` the validation ones; without lists everything trains."""
    from harmcli.data.layouts import discover

    has_lists = any(folder.glob("*_train.txt")) or any(folder.glob("*/*_train.txt"))
    splits = {"train": "train", "val": "test"} if has_lists else {"train": "all"}
    samples = []
    for split, list_name in splits.items():
        for item in discover(folder, list_name):
            samples.append(Sample(item.composite_path, None, item.mask_path, item.target_path, "supervised", split))
    return samples


def discover_samples(folder: Path) -> list[Sample]:
    if (folder / "manifest.jsonl").is_file():
        return manifest_samples(folder)
    if (folder / "composite_images").is_dir() or any(folder.glob("*/composite_images")):
        return iharmony_samples(folder)
    raise DatasetError(
        f"{folder}: not a training folder (expected manifest.jsonl from 'harmcli make-composites', "
        "or the iHarmony4 layout composite_images/, masks/, real_images/)"
    )


class TrainingData:
    """Samples of every stream, resized to ``size`` and stored as uint8 tensors."""

    def __init__(self, samples: list[Sample], size: int, on_progress=None):
        self.size = size
        self.tensors: dict[str, dict[str, torch.Tensor]] = {}
        groups: dict[str, list[Sample]] = {}
        for s in samples:
            if s.domain == "rendered":
                key = None if s.role != "supervised" or s.target is None else ("val_rendered" if s.split == "val" else "rendered")
            else:
                key = "val" if s.split == "val" and s.role == "supervised" else (s.role if s.split != "val" else None)
            if key:
                groups.setdefault(key, []).append(s)
        done, total = 0, sum(len(v) for v in groups.values())
        for key, group in groups.items():
            comps, bgs, masks, targets = [], [], [], []
            for s in group:
                comp = _read_rgb(s.composite, size)
                comps.append(comp)
                bgs.append(_read_rgb(s.background, size) if s.background else comp)
                masks.append(_read_gray(s.mask, size))
                if s.target is not None:
                    targets.append(_read_rgb(s.target, size))
                done += 1
                if on_progress and done % 50 == 0:
                    on_progress(done, total)
            entry = {
                "composite": torch.from_numpy(np.stack(comps)).permute(0, 3, 1, 2).contiguous(),
                "background": torch.from_numpy(np.stack(bgs)).permute(0, 3, 1, 2).contiguous(),
                "mask": torch.from_numpy(np.stack(masks))[:, None].contiguous(),
            }
            if targets and len(targets) == len(group):
                entry["target"] = torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).contiguous()
            if group[0].domain == "rendered" and all(s.style_label is not None for s in group):
                style_in = torch.tensor([s.style_label for s in group], dtype=torch.float32)
                fractions = entry["mask"].float().mean((1, 2, 3)) / 255.0
                entry["style_in"] = style_in
                entry["style_out"] = torch.stack([
                    torch.tensor(s.target_style_label) if s.target_style_label is not None else target_style(style_in[i], float(fractions[i]))
                    for i, s in enumerate(group)
                ])
            self.tensors[key] = entry

    @classmethod
    def from_folders(cls, folders: list[Path], size: int, on_progress=None) -> "TrainingData":
        samples = []
        for folder in folders:
            samples += discover_samples(Path(folder))
        if not samples:
            raise DatasetError("no training samples found")
        return cls(samples, size, on_progress)

    def count(self, key: str) -> int:
        entry = self.tensors.get(key)
        return 0 if entry is None else entry["composite"].shape[0]

    def batch(self, key: str, indices: torch.Tensor) -> Batch:
        entry = self.tensors[key]

        def take(name):
            return entry[name][indices].float() / 255.0

        target = take("target") if "target" in entry else None
        styles = [entry[name][indices] if name in entry else None for name in ("style_in", "style_out")]
        return Batch(take("composite"), take("background"), take("mask"), target, *styles)

    def has_styles(self, key: str) -> bool:
        return key in self.tensors and "style_in" in self.tensors[key]

    def sample(self, key: str, batch_size: int, generator: torch.Generator) -> Batch:
        indices = torch.randint(0, self.count(key), (batch_size,), generator=generator)
        return self.batch(key, indices)


def augment(
    batch: Batch, generator: torch.Generator, *, brightness_stops: float, background_is_composite: float, identity_fraction: float = 0.0
) -> Batch:
    """Random horizontal flip; with supervised batches, some samples replaced by their target photo (nothing
    to correct: the answer is the input); random foreground exposure on the others (the input only: the target
    keeps the right brightness, so the network learns to undo it); sometimes the composite itself as the
    background input, so that the ``COMPOSITE --mask`` form of ``harmonize`` is in the training distribution."""
    b = batch.composite.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    tensors = [batch.composite, batch.background, batch.mask] + ([batch.target] if batch.target is not None else [])
    tensors = [torch.where(flip[:, None, None, None], t.flip(-1), t) for t in tensors]
    composite, background, mask = tensors[:3]
    target = tensors[3] if batch.target is not None else None
    identity = torch.zeros(b, dtype=torch.bool)
    if target is not None and identity_fraction > 0:
        identity = torch.rand(b, generator=generator) < identity_fraction
        composite = torch.where(identity[:, None, None, None], target, composite)
    if brightness_stops > 0:
        gain = 2.0 ** ((torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * brightness_stops)
        gain = torch.where(identity[:, None, None, None], torch.ones_like(gain), gain)
        composite = (composite + mask * (composite * gain - composite)).clamp(0, 1)
    if background_is_composite > 0:
        use_comp = (torch.rand(b, generator=generator) < background_is_composite)[:, None, None, None]
        background = torch.where(use_comp, composite, background)
    style_in = batch.style_in
    if style_in is not None and batch.style_out is not None:
        # A composite replaced by its target render has the target's style.
        style_in = torch.where(identity[:, None], batch.style_out, style_in)
    return Batch(composite, background, mask, target, style_in, batch.style_out)
