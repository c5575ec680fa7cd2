"""Build training data from photos with object masks (``make-composites``).

Modes (paper §3.2):
- ``real``: foreground j pasted on the inpainted background of photo i (eq. 5), plus the "real" samples: each
  foreground pasted back on its own inpainted background (eq. 6). No targets: the adversarial stream.
- ``retouch``: supervised pairs from a random retouch R: foreground-only (target: the photo) and
  background-only (target: R(photo)).
- ``transfer``: the same two composites, but the edit gives the foreground (or the background) the colour and
  tone of *another* photo's object or whole frame (Lab statistics or histogram transfer, as iHarmony4 built
  HCOCO); see :mod:`harmcli.data.mismatch`.
- ``illuminant``: the same two composites, the edit being another light: colour temperature (a blackbody
  white-balance shift) and intensity, as another time of day would give.
- ``pairs``: the same two composites from a user's own before/after retouched photos.
- ``composites``: existing real composites (image + mask, no target) imported as extra adversarial inputs.

Every sample is a row of ``manifest.jsonl`` naming its files (relative paths), mode, role, split, source stems
and seed, and for supervised samples the ``kind`` of mismatch (``retouch``, ``transfer``, ``illuminant``,
``pairs``) with what was drawn in ``edit``; the whole folder is reproducible from ``--seed``.

Photos (``images/``, ``after/``, the composites of ``composites`` mode) are read colour-managed, by harmcli's
reader (EXIF orientation, 16-bit, HEIC/AVIF) and :func:`harmcli.io.colour.as_srgb`: a file tagged with another
RGB profile (a Lightroom export in Adobe RGB or ProPhoto beside camera JPEGs in sRGB) is converted to sRGB, and
untagged or sRGB files are used as they are, bit for bit. Otherwise a before/after pair in two profiles, or a
folder mixing them, would teach the network a colour shift that is only a profile difference. A profile that
cannot be used skips the photo, as an unreadable file does. The samples are written as untagged 8-bit sRGB PNGs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from harmcli.data.mismatch import random_illuminant, random_transfer
from harmcli.data.retouch import dilate_mask, random_retouch
from harmcli.errors import DatasetError, HarmcliError, UsageError
from harmcli.io.images import READ_EXTENSIONS

IMAGE_EXTENSIONS = READ_EXTENSIONS
MODES = ("real", "retouch", "transfer", "illuminant", "pairs", "composites")
# Modes that make supervised pairs by editing a photo: the edit's name is the sample's "kind" of mismatch.
EDIT_MODES = ("retouch", "transfer", "illuminant", "pairs")
# Dilation before inpainting: 30 px at 512 px scale (paper), scaled with the image.
DILATION_AT_512 = 30
MIN_FOREGROUND_FRACTION = 0.005

Inpainter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def opencv_inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` (uint8, 255 = fill) of a float32 RGB image with OpenCV's Telea method.

    The paper used LaMa; any function with this signature can replace it (``make_composites(inpainter=...)``).
    """
    as8 = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    radius = max(3, int(round(max(image.shape[:2]) / 64)))
    filled = cv2.inpaint(as8, hole, radius, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    out = image.copy()
    inside = hole > 0
    out[inside] = filled[inside]
    return out


@dataclass
class SourcePhoto:
    stem: str
    image_path: Path
    mask_path: Path
    after_path: Path | None = None  # the retouched version, in ``pairs`` mode


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (hidden files ignored), sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def find_sources(
    src: Path, *, after_folder: str | None = None, on_skip: Callable[[str, str], None] | None = None
) -> list[SourcePhoto]:
    """Photos in ``src/images`` with a mask of the same stem in ``src/masks`` (and ``src/<after>`` for pairs).

    A photo without its mask (or its retouched version) is reported through ``on_skip(stem, reason)``.
    """
    if not src.exists():
        raise DatasetError(f"{src}: no such folder")
    if not src.is_dir():
        raise DatasetError(f"{src}: is a file; give the folder that holds images/ and masks/")
    images_dir, masks_dir = src / "images", src / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"{src}: expected the folders images/ and masks/ (photos and object masks matched by file stem)")
    masks = {p.stem: p for p in _image_files(masks_dir)}
    afters = {}
    if after_folder:
        after_dir = src / after_folder
        if not after_dir.is_dir():
            raise DatasetError(f"{src}: pairs mode needs the retouched photos in {after_folder}/")
        afters = {p.stem: p for p in _image_files(after_dir)}
    sources, unmatched = [], []
    for path in _image_files(images_dir):
        if path.stem not in masks:
            unmatched.append((path.stem, f"{path}: no mask {masks_dir / path.stem}.* beside it"))
        elif after_folder and path.stem not in afters:
            unmatched.append((path.stem, f"{path}: no retouched version {src / after_folder / path.stem}.* (pairs mode)"))
        else:
            sources.append(SourcePhoto(path.stem, path, masks[path.stem], afters.get(path.stem)))
    if not sources:
        needs = f"a mask of the same stem in masks/{f' and in {after_folder}/' if after_folder else ''}"
        raise DatasetError(f"{src}: no image in images/ has {needs}")
    # Reported only when there is something to do: otherwise the one error above says it all.
    for stem, reason in unmatched:
        if on_skip is not None:
            on_skip(stem, reason)
    return sources


def split_of(stem: str, val_fraction: float) -> str:
    """Deterministic train/val split by a hash of the stem, so the split never depends on file order."""
    h = int(hashlib.sha1(stem.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def load_rgb(image_path: Path) -> np.ndarray:
    """RGB float32 [0,1] in sRGB, upright: a photo with another RGB profile is converted (composites mix photos,
    and a pair's before and after must mean the same colours by the same numbers); untagged counts as sRGB.

    Raises:
        ImageReadError: an unreadable file, or a colour profile that cannot be used (both skip the photo).
    """
    from harmcli.io.colour import as_srgb
    from harmcli.io.images import read_image

    loaded = read_image(image_path)
    scale = 255.0 if loaded.bit_depth == 8 else 65535.0
    return as_srgb(loaded.rgb, loaded.metadata.icc, str(image_path)).astype(np.float32) / scale


def load_photo(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB float32 [0,1] in sRGB (see :func:`load_rgb`) and mask float32 [0,1] of the same size (the mask is
    resized if it is not)."""
    from harmcli.io.images import read_mask

    rgb = load_rgb(image_path)
    mask = read_mask(mask_path)
    if mask.shape != rgb.shape[:2]:
        mask = cv2.resize(mask, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return rgb, mask


def foreground_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of mask > 0.5, or None."""
    ys, xs = np.nonzero(mask > 0.5)
    if ys.size == 0:
        return None
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def paste_into_box(
    fg_rgb: np.ndarray, fg_mask: np.ndarray, box: tuple[int, int, int, int], out_shape: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Move the foreground of (fg_rgb, fg_mask) into ``box`` of a canvas of ``out_shape``.

    The foreground is rotated by a small random angle and scaled as large as fits inside the box (the paper
    translates and rotates F_j to be maximally contained in F_i's bounding box), then placed with random slack.
    Returns the canvas RGB (zeros outside) and the moved soft mask.
    """
    src_box = foreground_box(fg_mask)
    if src_box is None:
        raise ValueError("empty foreground")
    sy0, sy1, sx0, sx1 = src_box
    sh, sw = sy1 - sy0, sx1 - sx0
    by0, by1, bx0, bx1 = box
    bh, bw = by1 - by0, bx1 - bx0
    angle = rng.uniform(-10.0, 10.0)
    rad = math.radians(angle)
    rot_w = abs(sw * math.cos(rad)) + abs(sh * math.sin(rad))
    rot_h = abs(sw * math.sin(rad)) + abs(sh * math.cos(rad))
    scale = min(bw / rot_w, bh / rot_h) * rng.uniform(0.85, 1.0)
    slack_x = max(0.0, bw - rot_w * scale) / 2
    slack_y = max(0.0, bh - rot_h * scale) / 2
    cx = (bx0 + bx1) / 2 + rng.uniform(-slack_x, slack_x)
    cy = (by0 + by1) / 2 + rng.uniform(-slack_y, slack_y)
    matrix = cv2.getRotationMatrix2D(((sx0 + sx1) / 2, (sy0 + sy1) / 2), angle, scale)
    matrix[0, 2] += cx - (sx0 + sx1) / 2
    matrix[1, 2] += cy - (sy0 + sy1) / 2
    size = (out_shape[1], out_shape[0])
    rgb = cv2.warpAffine(fg_rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpAffine(fg_mask, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return rgb, np.clip(mask, 0, 1)


def blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (fg * mask[..., None] + bg * (1 - mask[..., None])).astype(np.float32)


@dataclass
class CompositeWriter:
    """Writes samples as 8-bit PNGs under ``out`` and appends their manifest rows."""

    out: Path
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self):
        for sub in ("composites", "backgrounds", "masks", "targets"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)

    def _save(self, sub: str, sample_id: str, image: np.ndarray) -> str:
        rel = f"{sub}/{sample_id}.png"
        data = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if data.ndim == 3:
            data = cv2.cvtColor(data, cv2.COLOR_RGB2BGR)
        # Training data is written once into a fresh folder, so a plain write is enough here.
        if not cv2.imwrite(str(self.out / rel), data):
            raise HarmcliError(f"{self.out / rel}: could not be written")
        return rel

    def add(self, sample_id: str, *, mode: str, role: str, split: str, composite, background, mask, target, sources, seed,
            kind: str | None = None, edit: dict | None = None) -> None:
        row = {
            "id": sample_id,
            "mode": mode,
            "role": role,  # supervised | adversarial | real
            "split": split,
            "composite": self._save("composites", sample_id, composite),
            "background": self._save("backgrounds", sample_id, background),
            "mask": self._save("masks", sample_id, mask),
            "target": None if target is None else self._save("targets", sample_id, target),
            "sources": sources,
            "seed": seed,
        }
        if kind is not None:
            row["kind"] = kind
        if edit:
            row["edit"] = edit
        self.rows.append(row)


def _usable(mask: np.ndarray) -> bool:
    frac = float((mask > 0.5).mean())
    return MIN_FOREGROUND_FRACTION <= frac <= 1.0 - MIN_FOREGROUND_FRACTION


def _dilation(shape: tuple[int, int]) -> int:
    return max(1, int(round(DILATION_AT_512 * max(shape) / 512)))


def _item_rng(seed: int, *keys) -> np.random.Generator:
    digest = hashlib.sha1(json.dumps([seed, *keys]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_composites(
    src: Path,
    out: Path,
    *,
    modes: tuple[str, ...] = ("real", "retouch"),
    seed: int = 0,
    val_fraction: float = 0.1,
    per_photo: int = 1,
    after_folder: str = "after",
    inpainter: Inpainter = opencv_inpaint,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> list[dict]:
    """Build the training samples of ``modes`` from ``src`` into ``out`` and write ``out/manifest.jsonl``.

    ``per_photo``: how many real composites (``real``) or edited pairs (``retouch``, ``transfer``, ``illuminant``)
    to make per photo.
    Bad source files are reported through ``on_skip(stem, reason)`` and skipped. Returns the manifest rows.
    """
    for mode in modes:
        if mode not in MODES:
            raise UsageError(f"unknown mode '{mode}' (choose from {', '.join(MODES)})")
    modes = tuple(dict.fromkeys(modes))  # a repeated mode would write the same samples twice
    if not modes:
        raise UsageError(f"no mode given (choose from {', '.join(MODES)})")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    # Everything that can be wrong is checked before the output folder is created: a failed start leaves nothing.
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: is a file; the output must be a new (or empty) folder")
    if (out / "manifest.jsonl").exists():
        raise DatasetError(f"{out}: already holds a manifest.jsonl; choose an empty output folder")
    if out.is_dir() and any(not entry.name.startswith(".") for entry in out.iterdir()):
        # Samples of another run (seed, modes) would be mixed with these, or replaced one by one.
        raise DatasetError(f"{out}: the folder is not empty; the output must be a new or empty folder")
    skip = on_skip or (lambda stem, reason: None)
    sources = find_sources(src, after_folder=after_folder if "pairs" in modes else None, on_skip=skip)
    if limit:
        sources = sources[:limit]
    sources_by_stem = {s.stem: s for s in sources}

    # Load every photo once (the folders this is meant for fit in memory at training resolution).
    photos: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for source in sources:
        try:
            rgb, mask = load_photo(source.image_path, source.mask_path)
        except HarmcliError as exc:
            skip(source.stem, str(exc))
            continue
        if not _usable(mask):
            covered = float((mask > 0.5).mean())
            skip(source.stem, f"{source.mask_path}: the mask covers {covered:.1%} of the photo; "
                              f"it must cover between {MIN_FOREGROUND_FRACTION:.1%} and {1 - MIN_FOREGROUND_FRACTION:.1%}")
            continue
        photos[source.stem] = (rgb, mask)
    if not photos:
        raise DatasetError(f"{src}: none of the {len(sources)} photo(s) could be used (see the skipped lines); nothing written")
    created = not out.exists()
    writer = CompositeWriter(out)
    stems = list(photos)
    splits = {stem: split_of(stem, val_fraction) for stem in stems}
    by_split = {s: [k for k in stems if splits[k] == s] for s in ("train", "val")}
    total = len(stems) * len(modes)
    done = 0
    inpainted: dict[str, np.ndarray] = {}

    def inpainted_background(stem: str) -> np.ndarray:
        if stem not in inpainted:
            rgb, mask = photos[stem]
            inpainted[stem] = inpainter(rgb, dilate_mask(mask, _dilation(mask.shape)))
        return inpainted[stem]

    for mode in modes:
        for stem in stems:
            rng = _item_rng(seed, mode, stem)
            split = splits[stem]
            rgb, mask = photos[stem]
            try:
                if mode == "real":
                    background = inpainted_background(stem)
                    # "real" sample (eq. 6): the foreground back on its own inpainted background.
                    writer.add(f"self_{stem}", mode="real", role="real", split=split, composite=blend(rgb, background, mask),
                               background=background, mask=mask, target=None, sources=[stem], seed=seed)
                    box = foreground_box(mask)
                    pool = [s for s in by_split[split] if s != stem] or [stem]
                    for k in range(per_photo):
                        other = pool[rng.integers(len(pool))]
                        fg_rgb, fg_mask = photos[other]
                        moved_rgb, moved_mask = paste_into_box(fg_rgb, fg_mask, box, mask.shape, rng)
                        if not _usable(moved_mask):
                            continue
                        # eq. 5: C_ij = F_j M_j + inpaint(B_i) (1 - M_j)
                        writer.add(f"real_{stem}_{k}", mode="real", role="adversarial", split=split,
                                   composite=blend(moved_rgb, background, moved_mask), background=background,
                                   mask=moved_mask, target=None, sources=[stem, other], seed=seed)
                elif mode == "composites":
                    # An existing composite: the network's background input is the composite itself.
                    writer.add(f"comp_{stem}", mode="composites", role="adversarial", split=split, composite=rgb,
                               background=rgb, mask=mask, target=None, sources=[stem], seed=seed)
                else:
                    pool = [s for s in by_split[split] if s != stem]
                    for k in range(1 if mode == "pairs" else per_photo):
                        edit_fg = edit_bg = {}
                        if mode == "retouch":
                            after_fg = after_bg = random_retouch(rgb, rng)
                        elif mode == "illuminant":
                            after_fg, edit_fg = random_illuminant(rgb, rng)
                            after_bg, edit_bg = after_fg, edit_fg
                        elif mode == "transfer":
                            if not pool:
                                raise HarmcliError(f"transfer mode needs another photo in the {split} split")
                            other = pool[rng.integers(len(pool))]
                            ref_rgb, ref_mask = photos[other]
                            inside = mask > 0.5
                            # Each side gets its own draw, its statistics moved to the other photo's.
                            after_fg, edit_fg = random_transfer(rgb, inside, ref_rgb, ref_mask, rng)
                            after_bg, edit_bg = random_transfer(rgb, ~inside, ref_rgb, ref_mask, rng)
                            edit_fg, edit_bg = {**edit_fg, "from": other}, {**edit_bg, "from": other}
                        else:
                            source = sources_by_stem[stem]
                            # Read like the photo, into sRGB: an export in another profile is no edit.
                            after_rgb = load_rgb(source.after_path)
                            if after_rgb.shape != rgb.shape:
                                raise HarmcliError(
                                    f"{source.after_path}: is {after_rgb.shape[1]}x{after_rgb.shape[0]} but "
                                    f"{source.image_path} is {rgb.shape[1]}x{rgb.shape[0]}; before and after must match"
                                )
                            after_fg = after_bg = after_rgb
                        hole = dilate_mask(mask, _dilation(mask.shape))
                        # Foreground edited, background original: undo the edit (target: the photo).
                        comp_fg = blend(after_fg, rgb, mask)
                        writer.add(f"{mode}_fg_{stem}_{k}", mode=f"{mode}_fg", role="supervised", split=split,
                                   composite=comp_fg, background=inpainter(comp_fg, hole), mask=mask, target=rgb,
                                   sources=[stem], seed=seed, kind=mode, edit=edit_fg)
                        # Background edited, foreground original: follow the edit (target: the edited photo).
                        comp_bg = blend(rgb, after_bg, mask)
                        writer.add(f"{mode}_bg_{stem}_{k}", mode=f"{mode}_bg", role="supervised", split=split,
                                   composite=comp_bg, background=inpainter(comp_bg, hole), mask=mask, target=after_bg,
                                   sources=[stem], seed=seed, kind=mode, edit=edit_bg)
            except (HarmcliError, ValueError, cv2.error) as exc:
                skip(stem, str(exc))
            done += 1
            if on_progress:
                on_progress(done, total)

    if not writer.rows:
        if created:  # leave no empty folders behind (rmdir never removes a folder that holds files)
            for folder in [out / sub for sub in ("composites", "backgrounds", "masks", "targets")] + [out]:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise DatasetError(f"{src}: no sample could be made from {len(stems)} photo(s) (see the skipped lines); nothing written")
    manifest = out / "manifest.jsonl"
    tmp = manifest.with_suffix(".jsonl.tmp")
    with open(tmp, "w") as handle:
        for row in writer.rows:
            handle.write(json.dumps(row) + "\n")
    os.replace(tmp, manifest)
    return writer.rows


def row_kind(row: dict) -> str:
    """The kind of mismatch of a manifest row: its ``kind``; for rows written before kinds were recorded, the
    mode without its ``_fg``/``_bg`` side (``retouch_fg`` -> ``retouch``); ``rendered`` for rendered samples."""
    if row.get("kind"):
        return str(row["kind"])
    if row.get("domain") == "rendered":
        return "rendered"
    mode = str(row.get("mode", ""))
    return mode[:-3] if mode.endswith(("_fg", "_bg")) else mode


def read_manifest(folder: Path) -> Iterator[dict]:
    """Rows of ``folder/manifest.jsonl`` (DatasetError if missing or malformed)."""
    path = folder / "manifest.jsonl"
    if not path.is_file():
        raise DatasetError(f"{folder}: no manifest.jsonl (make one with 'harmcli make-composites')")
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    raise DatasetError(f"{path}:{number}: not valid JSON") from None
