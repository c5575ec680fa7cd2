"""Training samples in memory, by stream.

Reads ``make-composites`` folders (``manifest.jsonl``) and iHarmony4 folders (``composite_images/``,
``masks/``, ``real_images/``, ``*_train.txt``). Everything is resized to the training size once and kept as
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


@dataclass
class Batch:
    composite: torch.Tensor  # (B, 3, S, S) float in [0, 1]
    background: torch.Tensor  # (B, 3, S, S)
    mask: torch.Tensor  # (B, 1, S, S)
    target: torch.Tensor | None  # (B, 3, S, S) or None for the adversarial and real streams


@dataclass
class Sample:
    composite: Path
    background: Path | None  # None: the composite itself
    mask: Path
    target: Path | None
    role: str
    split: str


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
    for row in read_manifest(folder):
        samples.append(
            Sample(
                composite=folder / row["composite"],
                background=folder / row["background"] if row.get("background") else None,
                mask=folder / row["mask"],
                target=folder / row["target"] if row.get("target") else None,
                role=row["role"],
                split=row.get("split", "train"),
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
        return Batch(take("composite"), take("background"), take("mask"), target)

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
    return Batch(composite, background, mask, target)
