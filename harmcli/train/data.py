"""Training samples in memory, by stream and domain.

Reads ``make-composites`` folders (``manifest.jsonl``), ``render`` folders (the same layout; their rows say
``"domain": "rendered"`` and carry style labels) and iHarmony4 folders (``composite_images/``, ``masks/``,
``real_images/``, ``*_train.txt``). Photo samples go to the streams ``supervised``, ``adversarial``, ``real``
and ``val``; rendered supervised samples to ``rendered`` and ``val_rendered``. Everything is decoded and resized to the
training size once (decoding PNGs every step would cost more than the network on a small CPU) into an
``ImagePool`` per folder: uint8, each distinct picture once, optionally memory-mapped from a cache folder so that
several runs over the same data share one copy in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
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
    folder: Path | None = None  # the data folder it came from: one image pool (and cache file) per folder


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


def _read_own(path: Path, *, gray: bool) -> np.ndarray:
    """8-bit pixels by harmcli's reader (HEIF and AVIF, which OpenCV cannot decode or turn upright, and every
    colour picture: see :func:`_read_rgb`). A colour picture comes in sRGB: a file tagged with another RGB profile
    is converted, as make-composites and eval convert theirs; untagged and sRGB files are used bit for bit. A
    mask's gray values are coverage, not colour, and are never converted."""
    from harmcli.errors import ImageReadError
    from harmcli.io.colour import as_srgb
    from harmcli.io.images import read_image

    try:
        loaded = read_image(path)
        rgb = loaded.rgb if gray else as_srgb(loaded.rgb, loaded.metadata.icc, str(path))
    except ImageReadError as exc:  # also a colour profile that cannot be used
        raise DatasetError(str(exc)) from None
    rgb = rgb if rgb.dtype == np.uint8 else cv2.convertScaleAbs(rgb, alpha=1.0 / 257.0)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if gray else rgb


# Masks of these are decoded by harmcli's reader, never by OpenCV: some OpenCV builds decode AVIF but ignore its
# rotation boxes.
_OWN_READER = (".heic", ".heif", ".hif", ".avif")


def _read_rgb(path: Path, size: int) -> np.ndarray:
    # Always harmcli's reader, which reads the colour profile OpenCV ignores: an iHarmony4-layout folder of one's
    # own photos may hold Adobe RGB or ProPhoto exports. make-composites and render samples are untagged 8-bit
    # sRGB and decode to the same pixels as through OpenCV.
    data = _read_own(path, gray=False)
    if data.shape[:2] != (size, size):
        data = cv2.resize(data, (size, size), interpolation=cv2.INTER_AREA)
    return data


def _read_gray(path: Path, size: int) -> np.ndarray:
    data = None if path.suffix.lower() in _OWN_READER else cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if data is None:
        data = _read_own(path, gray=True)
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
                folder=folder,
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
            samples.append(Sample(item.composite_path, None, item.mask_path, item.target_path, "supervised", split, folder=folder))
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


class ImagePool:
    """The decoded, resized images of one data folder, each distinct picture stored once.

    A make-composites folder repeats the same photo many times (the target of a retouch is the background of
    the same pair and of the photo's other kinds; a render's target is shared by every object and style pair of
    its scene), so rows are keyed by content: a 256-px pool of a 10k-pair folder is under half the size of one
    copy per file. Kept as uint8 numpy arrays; with a cache folder they are memory-mapped ``.npy`` files, whose
    pages the operating system shares between training runs reading the same data."""

    # 2: colour pictures read in sRGB (files tagged with another profile are converted; see _read_rgb), so a
    # pool cached from such files before holds other pixels.
    VERSION = 2

    def __init__(self, rgb: np.ndarray, gray: np.ndarray, rows: dict[str, int]):
        self.rgb, self.gray, self.rows = rgb, gray, rows

    @classmethod
    def build(cls, files_rgb: dict[str, Path], files_gray: dict[str, Path], size: int, on_file=None) -> "ImagePool":
        """``files_*``: name -> path of the pictures to hold; ``rows`` will map ``"rgb:" + name`` to a row."""
        rows: dict[str, int] = {}
        arrays = {}
        for kind, files, reader, shape in (
            ("rgb", files_rgb, _read_rgb, (size, size, 3)), ("gray", files_gray, _read_gray, (size, size)),
        ):
            # np.empty commits no memory for rows never written: the tail past the distinct count costs nothing.
            pool = np.empty((max(len(files), 1), *shape), np.uint8)
            seen: dict[bytes, int] = {}
            for name, path in files.items():
                data = reader(Path(path), size)
                digest = hashlib.blake2b(data.tobytes(), digest_size=16).digest()
                row = seen.get(digest)
                if row is None:
                    row = seen[digest] = len(seen)
                    pool[row] = data
                rows[f"{kind}:{name}"] = row
                if on_file:
                    on_file()
            arrays[kind] = pool[: max(len(seen), 1)]
        return cls(arrays["rgb"], arrays["gray"], rows)

    @classmethod
    def cached(cls, folder: Path, files_rgb, files_gray, size: int, cache_dir: Path, on_file=None) -> "ImagePool":
        """The pool of ``folder`` from ``cache_dir``, made there first if missing or stale (one process makes it;
        others wait on a lock and then read it). Names are relative to the folder, so the same folder named
        another way (relative, absolute, through a link) finds the same entry. Making an entry deletes the older
        entries of the same folder and size: their stamp (manifest, file list) no longer matches, so nothing would
        read them again, and each is gigabytes."""
        import fcntl

        folder = Path(folder).resolve()
        stamp = [str(folder), size, cls.VERSION, sorted(files_rgb), sorted(files_gray)]
        manifest = folder / "manifest.jsonl"
        if manifest.is_file():
            info = manifest.stat()
            stamp += [info.st_size, info.st_mtime_ns]
        key = hashlib.blake2b(json.dumps(stamp).encode(), digest_size=8).hexdigest()
        cache_dir.mkdir(parents=True, exist_ok=True)
        stem = cache_dir / f"{folder.name}-{size}-{key}"
        index = Path(f"{stem}.json")  # not with_suffix: a folder name may hold dots
        source = {"folder": str(folder), "size": size}
        with open(f"{stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not index.is_file():
                pool = cls.build(files_rgb, files_gray, size, on_file)
                for kind in ("rgb", "gray"):
                    tmp = Path(f"{stem}.{kind}.{os.getpid()}.tmp.npy")
                    np.save(tmp, getattr(pool, kind))
                    os.replace(tmp, f"{stem}.{kind}.npy")
                Path(f"{stem}.source").write_text(json.dumps(source))
                tmp = Path(f"{index}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(pool.rows))
                os.replace(tmp, index)  # written last: its presence means the arrays are complete
                _delete_stale_entries(cache_dir, stem, source)
            # Opened under the lock, so a run pruning this entry never removes it between check and open (an
            # entry deleted after it is open stays readable: the mapping holds the file).
            return cls(
                np.load(f"{stem}.rgb.npy", mmap_mode="r"), np.load(f"{stem}.gray.npy", mmap_mode="r"),
                json.loads(index.read_text()),
            )


def _delete_stale_entries(cache_dir: Path, current: Path, source: dict) -> None:
    """Remove the cache entries made for the same folder and size as ``current`` (see ``ImagePool.cached``).
    An entry another process is making or opening (its lock held) is left for a later run."""
    import fcntl

    for other in cache_dir.glob("*.source"):
        stem = other.with_suffix("")  # drops ".source" only
        if stem == current:
            continue
        try:
            if json.loads(other.read_text()) != source:
                continue
        except (OSError, ValueError):
            continue
        with open(f"{stem}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            for path in (Path(f"{stem}.json"), Path(f"{stem}.rgb.npy"), Path(f"{stem}.gray.npy"), other):
                path.unlink(missing_ok=True)
        Path(f"{stem}.lock").unlink(missing_ok=True)


class TrainingData:
    """Samples of every stream at ``size``: per stream, each sample's (pool, row) for its composite, background,
    mask and target; the pixels live in one ``ImagePool`` per data folder."""

    def __init__(self, samples: list[Sample], size: int, on_progress=None, cache_dir: Path | None = None):
        self.size = size
        groups: dict[str, list[Sample]] = {}
        for s in samples:
            if s.domain == "rendered":
                key = None if s.role != "supervised" or s.target is None else ("val_rendered" if s.split == "val" else "rendered")
            else:
                key = "val" if s.split == "val" and s.role == "supervised" else (s.role if s.split != "val" else None)
            if key:
                groups.setdefault(key, []).append(s)
        by_folder: dict[Path | None, list[Sample]] = {}
        for group in groups.values():
            for s in group:
                by_folder.setdefault(s.folder, []).append(s)

        def name(s: Sample, path: Path) -> str:
            return os.path.relpath(path, s.folder) if s.folder is not None else str(path)

        # Each folder's distinct files by name: what its pool decodes (and what the progress counts).
        files = {
            folder: (
                {name(s, p): p for s in members for p in (s.composite, s.background, s.target) if p is not None},
                {name(s, s.mask): s.mask for s in members},
            )
            for folder, members in by_folder.items()
        }
        total = sum(len(rgb) + len(gray) for rgb, gray in files.values())
        done = 0

        def on_file():
            nonlocal done
            done += 1
            if on_progress and done % 200 == 0:
                on_progress(done, total)

        self.pools: list[ImagePool] = []
        pool_of: dict[Path | None, int] = {}
        for folder, (rgb, gray) in files.items():
            if cache_dir is not None and folder is not None:
                pool = ImagePool.cached(folder, rgb, gray, size, Path(cache_dir), on_file)
            else:
                pool = ImagePool.build(rgb, gray, size, on_file)
            pool_of[folder] = len(self.pools)
            self.pools.append(pool)

        self.entries: dict[str, dict[str, np.ndarray | torch.Tensor]] = {}
        for key, group in groups.items():
            def refs(kind, paths):
                return np.array([(pool_of[s.folder], self.pools[pool_of[s.folder]].rows[f"{kind}:{name(s, p)}"]) for s, p in zip(group, paths)])

            entry = {
                "composite": refs("rgb", [s.composite for s in group]),
                "background": refs("rgb", [s.background or s.composite for s in group]),
                "mask": refs("gray", [s.mask for s in group]),
            }
            if all(s.target is not None for s in group):
                entry["target"] = refs("rgb", [s.target for s in group])
            if group[0].domain == "rendered" and all(s.style_label is not None for s in group):
                style_in = torch.tensor([s.style_label for s in group], dtype=torch.float32)
                entry["style_in"] = style_in
                out = []
                for i, s in enumerate(group):
                    if s.target_style_label is not None:
                        out.append(torch.tensor(s.target_style_label))
                    else:
                        pool, row = entry["mask"][i]
                        fraction = float(self.pools[pool].gray[row].mean()) / 255.0
                        out.append(target_style(style_in[i], fraction))
                entry["style_out"] = torch.stack(out)
            self.entries[key] = entry

    @classmethod
    def from_folders(cls, folders: list[Path], size: int, on_progress=None, cache_dir: Path | None = None) -> "TrainingData":
        samples = []
        for folder in folders:
            samples += discover_samples(Path(folder))
        if not samples:
            raise DatasetError("no training samples found")
        return cls(samples, size, on_progress, cache_dir)

    def count(self, key: str) -> int:
        entry = self.entries.get(key)
        return 0 if entry is None else len(entry["composite"])

    def _gather(self, refs: np.ndarray, kind: str) -> torch.Tensor:
        stacked = np.stack([getattr(self.pools[pool], kind)[row] for pool, row in refs])
        tensor = torch.from_numpy(stacked).float() / 255.0
        return tensor.permute(0, 3, 1, 2) if kind == "rgb" else tensor[:, None]

    def batch(self, key: str, indices: torch.Tensor) -> Batch:
        entry = self.entries[key]
        idx = indices.numpy()
        composite, background, target = (
            self._gather(entry[name][idx], "rgb") if name in entry else None for name in ("composite", "background", "target")
        )
        mask = self._gather(entry["mask"][idx], "gray")
        styles = [entry[name][indices] if name in entry else None for name in ("style_in", "style_out")]
        return Batch(composite, background, mask, target, *styles)

    def has_styles(self, key: str) -> bool:
        return key in self.entries and "style_in" in self.entries[key]

    def sample(self, key: str, batch_size: int, generator: torch.Generator) -> Batch:
        indices = torch.randint(0, self.count(key), (batch_size,), generator=generator)
        return self.batch(key, indices)


def global_jitter(images: list[torch.Tensor], generator: torch.Generator, stops: float) -> list[torch.Tensor]:
    """The same random global look on each of ``images`` ((B, 3, H, W) in [0, 1], one look per sample): an exposure
    change of up to ``stops`` stops, a white-balance shift of up to half that per channel, and a gamma of
    2 ** (+-stops / 2). Applied to a composite, its background and its target together, it keeps every pair valid
    (the mismatch is between regions, the jitter is global) while no training photo keeps its own colours."""
    b = images[0].shape[0]

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * 2 - 1

    gamma = 2.0 ** (uniform(b, 1, 1, 1) * stops / 2)
    gain = 2.0 ** (uniform(b, 1, 1, 1) * stops + uniform(b, 3, 1, 1) * stops / 2)
    return [(image.clamp(0, 1) ** gamma * gain).clamp(0, 1) for image in images]


def random_crops(images: list[torch.Tensor], mask: torch.Tensor, generator: torch.Generator, min_scale: float) -> list[torch.Tensor]:
    """The same random crop of each of ``images`` ((B, C, H, W), one crop per sample), scaled back to H x W: a side
    of ``min_scale`` to 1 times the image's, placed so that the foreground's bounding box (``mask`` > 0.5) stays
    inside when it fits. Photos then come at many framings and scales, so that a training photo is not recognised by
    its layout; the pair stays valid since composite, background, mask and target are cut alike."""
    b, _, h, w = images[0].shape
    out = [image.clone() for image in images]
    scales = min_scale + torch.rand(b, generator=generator) * (1 - min_scale)
    offsets = torch.rand(b, 2, generator=generator)
    for i in range(b):
        ch, cw = max(1, round(float(scales[i]) * h)), max(1, round(float(scales[i]) * w))
        if ch == h and cw == w:
            continue
        rows = torch.nonzero(mask[i, 0].amax(1) > 0.5).flatten()
        cols = torch.nonzero(mask[i, 0].amax(0) > 0.5).flatten()
        # The crop's top-left corner ranges over positions that keep the foreground in; where the foreground is
        # larger than the crop, over those that cut it evenly from both sides.
        if len(rows):
            y_lo, y_hi = _keep_inside(int(rows[0]), int(rows[-1]) + 1, ch, h)
            x_lo, x_hi = _keep_inside(int(cols[0]), int(cols[-1]) + 1, cw, w)
        else:  # no foreground: anywhere
            (y_lo, y_hi), (x_lo, x_hi) = (0, h - ch), (0, w - cw)
        y0 = y_lo + round(float(offsets[i, 0]) * (y_hi - y_lo))
        x0 = x_lo + round(float(offsets[i, 1]) * (x_hi - x_lo))
        for image, result in zip(images, out):
            crop = image[i : i + 1, :, y0 : y0 + ch, x0 : x0 + cw]
            result[i : i + 1] = torch.nn.functional.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)
    return out


def _keep_inside(start: int, stop: int, crop: int, size: int) -> tuple[int, int]:
    """Range of crop starts (inclusive) along one axis that keep [start, stop) inside a crop of length ``crop``."""
    if stop - start <= crop:
        return max(0, stop - crop), min(start, size - crop)
    centred = min(max(0, (start + stop - crop) // 2), size - crop)
    return centred, centred


def augment(
    batch: Batch, generator: torch.Generator, *, brightness_stops: float, background_is_composite: float, identity_fraction: float = 0.0,
    global_stops: float = 0.0, crop_min_scale: float = 1.0,
) -> Batch:
    """Random horizontal flip; random crops (:func:`random_crops`) when ``crop_min_scale`` < 1; a random global look
    (:func:`global_jitter`) when ``global_stops`` > 0; with supervised batches, some samples replaced by their target
    photo (nothing to correct: the answer is the input); random foreground exposure on the others (the input only: the target
    keeps the right brightness, so the network learns to undo it); sometimes the composite itself as the
    background input, so that the ``COMPOSITE --mask`` form of ``harmonize`` is in the training distribution."""
    b = batch.composite.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    tensors = [batch.composite, batch.background, batch.mask] + ([batch.target] if batch.target is not None else [])
    tensors = [torch.where(flip[:, None, None, None], t.flip(-1), t) for t in tensors]
    if crop_min_scale < 1:
        tensors = random_crops(tensors, tensors[2], generator, crop_min_scale)
    composite, background, mask = tensors[:3]
    target = tensors[3] if batch.target is not None else None
    if global_stops > 0:
        looks = global_jitter([composite, background] + ([target] if target is not None else []), generator, global_stops)
        composite, background = looks[:2]
        target = looks[2] if target is not None else None
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
