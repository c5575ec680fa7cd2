"""Find the (composite, mask, ground truth) triplets of an evaluation folder.

Two layouts are recognised:

- **iHarmony4** (one subset such as ``HCOCO/``)::

      composite_images/NAME_K_J.jpg   composite J of object K of photo NAME
      masks/NAME_K.png                the object's mask
      real_images/NAME.jpg            the real photo (ground truth)
      NAME_test.txt / NAME_train.txt  optional lists of composite file names

  When list files exist, only the listed composites are used: ``split`` picks the list (``"test"`` ->
  ``*_test.txt``, or a file path); by default the one ``*_test.txt``. ``split="all"`` ignores the lists. The
  background is the composite itself. A folder whose sub-folders are iHarmony4 subsets (the iHarmony4 root)
  is evaluated as all of them, names prefixed with the subset.

- **plain**: ``composites/``, ``masks/``, ``gt/`` (and optionally ``backgrounds/``), matched by file stem.

- **make-composites** output (``manifest.jsonl``): its supervised samples (those with a target) of the
  ``val`` split by default (``split`` picks another split, or ``all``), with their inpainted backgrounds;
  ``kinds`` keeps only rows of those kinds of mismatch (``retouch``, ``transfer``, ``illuminant``, ``rendered``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harmcli.errors import DatasetError
from harmcli.io.images import READ_EXTENSIONS

IMAGE_EXTENSIONS = frozenset(READ_EXTENSIONS)
IHARMONY_DIRS = ("composite_images", "masks", "real_images")
PLAIN_DIRS = ("composites", "masks", "gt")
_SHOW = 5  # how many missing files an error message names


@dataclass(frozen=True)
class EvalItem:
    """One evaluation case. ``background_path`` is None when the composite is its own background."""

    name: str
    composite_path: Path
    mask_path: Path
    target_path: Path
    background_path: Path | None = None


def _images(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by stem (hidden files and other extensions ignored)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS:
            found.setdefault(path.stem, path)
    return found


def _listing(paths: list[str], total: int | None = None) -> str:
    total = len(paths) if total is None else total
    shown = ", ".join(paths[:_SHOW])
    return shown + (f" and {total - _SHOW} more" if total > _SHOW else "")


def _is_iharmony(folder: Path) -> bool:
    return all((folder / name).is_dir() for name in IHARMONY_DIRS)


def _split_file(folder: Path, split: str | None) -> Path | None:
    """The list file to use, or None for every composite."""
    if split is not None and split.lower() == "all":
        return None
    if split is not None:
        candidate = Path(split).expanduser()
        for path in (candidate, folder / split):
            if path.suffix == ".txt" and path.is_file():
                return path
        if candidate.suffix == ".txt":
            raise DatasetError(f"{folder}: split list '{split}' not found")
        matches = sorted(folder.glob(f"*_{split}.txt"))
        if len(matches) != 1:
            available = ", ".join(p.name for p in sorted(folder.glob("*.txt"))) or "none"
            what = "no" if not matches else "more than one"
            raise DatasetError(f"{folder}: {what} '*_{split}.txt' list file (found: {available}); pass --split FILE")
        return matches[0]
    tests = sorted(folder.glob("*_test.txt"))
    if len(tests) > 1:
        raise DatasetError(f"{folder}: several test lists ({_listing([p.name for p in tests])}); choose one with --split FILE")
    return tests[0] if tests else None


def _read_list(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the split list ({exc})") from None
    # iHarmony4 lists hold bare names (HCOCO_test.txt) or paths (IHD_test.txt); only the file name matters.
    return [Path(line.strip()).name for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _iharmony_items(folder: Path, split: str | None, prefix: str = "") -> list[EvalItem]:
    composites = _images(folder / "composite_images")
    masks = _images(folder / "masks")
    reals = _images(folder / "real_images")
    list_file = _split_file(folder, split)
    if list_file is not None:
        by_name = {path.name: path for path in composites.values()}
        wanted = _read_list(list_file)
        missing = [name for name in wanted if name not in by_name]
        if missing:
            raise DatasetError(
                f"{list_file}: {len(missing)} listed composite(s) missing from {folder / 'composite_images'}: {_listing(missing)}"
            )
        chosen = [by_name[name] for name in dict.fromkeys(wanted)]
    else:
        chosen = list(composites.values())
    items, missing = [], []
    for path in chosen:
        parts = path.stem.rsplit("_", 2)
        if len(parts) != 3:
            raise DatasetError(f"{path}: iHarmony4 composite names look like NAME_K_J.jpg (photo, object, variant)")
        photo, obj = parts[0], f"{parts[0]}_{parts[1]}"
        mask, real = masks.get(obj), reals.get(photo)
        if mask is None:
            missing.append(f"masks/{obj}.png")
        if real is None:
            missing.append(f"real_images/{photo}.jpg")
        if mask is not None and real is not None:
            items.append(EvalItem(prefix + path.stem, path, mask, real))
    if missing:
        unique = list(dict.fromkeys(missing))
        raise DatasetError(f"{folder}: {len(unique)} file(s) missing for the composites: {_listing(unique)}")
    return items


def _plain_items(folder: Path) -> list[EvalItem]:
    composites = _images(folder / "composites")
    masks = _images(folder / "masks")
    targets = _images(folder / "gt")
    backgrounds = _images(folder / "backgrounds") if (folder / "backgrounds").is_dir() else None
    items, missing = [], []
    for stem, path in composites.items():
        needed = [("masks", masks), ("gt", targets)] + ([("backgrounds", backgrounds)] if backgrounds is not None else [])
        lost = [f"{sub}/{stem}.*" for sub, found in needed if stem not in found]
        if lost:
            missing.extend(lost)
            continue
        background = backgrounds[stem] if backgrounds is not None else None
        items.append(EvalItem(stem, path, masks[stem], targets[stem], background))
    if missing:
        raise DatasetError(f"{folder}: {len(missing)} file(s) missing for the composites: {_listing(missing)}")
    return items


def _root_list(folder: Path, split: str | None) -> Path | None:
    """A list file given for an iHarmony4 root (such as IHD_test.txt), whose lines are SUBSET/.../NAME.jpg."""
    if split is None or not split.endswith(".txt"):
        return None
    for path in (Path(split).expanduser(), folder / split):
        if path.is_file():
            return path
    raise DatasetError(f"{folder}: split list '{split}' not found")


def _filter_root(folder: Path, subsets: list[Path], list_file: Path) -> list[EvalItem]:
    everything = {item.name: item for sub in subsets for item in _iharmony_items(sub, "all", prefix=f"{sub.name}/")}
    try:
        lines = [line.strip() for line in list_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{list_file}: cannot read the split list ({exc})") from None
    wanted = [f"{Path(line).parts[0]}/{Path(line).stem}" for line in lines]
    missing = [name for name in wanted if name not in everything]
    if missing:
        raise DatasetError(f"{list_file}: {len(missing)} listed composite(s) not found under {folder}: {_listing(missing)}")
    return [everything[name] for name in dict.fromkeys(wanted)]


def _manifest_items(folder: Path, split: str, kinds: tuple[str, ...] | None = None) -> list[EvalItem]:
    from harmcli.data.composites import read_manifest, row_kind

    items = []
    for row in read_manifest(folder):
        if kinds and row_kind(row) not in kinds:
            continue
        if row.get("target") and (split == "all" or row.get("split") == split):
            background = folder / row["background"] if row.get("background") else None
            items.append(EvalItem(row["id"], folder / row["composite"], folder / row["mask"], folder / row["target"], background))
    return items


def _manifest_splits(folder: Path) -> str:
    """'train: 12, val: 4': the supervised samples per split of a make-composites folder."""
    from harmcli.data.composites import read_manifest

    counts: dict[str, int] = {}
    for row in read_manifest(folder):
        if row.get("target"):
            counts[row.get("split", "train")] = counts.get(row.get("split", "train"), 0) + 1
    return ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "none at all"


def _manifest_kinds(folder: Path, split: str = "all") -> str:
    """'illuminant, retouch': the kinds of the supervised samples of a make-composites folder in ``split``, and
    those found only in its other splits (a kind the user asked for may be one of them)."""
    from harmcli.data.composites import read_manifest, row_kind

    in_split, elsewhere = set(), set()
    for row in read_manifest(folder):
        if row.get("target"):
            (in_split if split == "all" or row.get("split") == split else elsewhere).add(row_kind(row))
    text = ", ".join(sorted(in_split)) or "none"
    if elsewhere - in_split:
        text += f"; {', '.join(sorted(elsewhere - in_split))} only in other splits, see --split"
    return text


def discover(folder: str | Path, split: str | None = None, kinds: tuple[str, ...] | None = None) -> list[EvalItem]:
    """The evaluation items of ``folder``, sorted by name; ``kinds`` filters a make-composites folder by kind.

    Raises:
        DatasetError: the folder is missing or has neither layout, a split list or a matching file is missing,
            or nothing is left to evaluate.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DatasetError(f"{folder}: dataset folder not found")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: is a file; give the dataset folder")
    if kinds and not (folder / "manifest.jsonl").is_file():
        raise DatasetError(f"{folder}: --kind applies to make-composites folders (manifest.jsonl) only")
    if (folder / "manifest.jsonl").is_file():
        items = _manifest_items(folder, split or "val", kinds)
        if not items and kinds:
            raise DatasetError(f"{folder}: no supervised samples of kind {', '.join(kinds)} in split '{split or 'val'}' "
                               f"(kinds here: {_manifest_kinds(folder, split or 'val')})")
        if not items:
            raise DatasetError(f"{folder}: manifest.jsonl has no supervised samples in split '{split or 'val'}' "
                               f"({_manifest_splits(folder)}); pass --split train, or --split all")
    elif _is_iharmony(folder):
        items = _iharmony_items(folder, split)
    elif all((folder / name).is_dir() for name in PLAIN_DIRS):
        if split is not None:
            raise DatasetError(f"{folder}: --split applies to iHarmony4 folders only (this one has composites/, masks/, gt/)")
        items = _plain_items(folder)
    else:
        subsets = sorted(p for p in folder.iterdir() if p.is_dir() and _is_iharmony(p))
        if not subsets:
            raise DatasetError(
                f"{folder}: not a dataset folder; expected iHarmony4 folders {', '.join(d + '/' for d in IHARMONY_DIRS)} "
                f"or {', '.join(d + '/' for d in PLAIN_DIRS)} (optional backgrounds/)"
            )
        root_list = _root_list(folder, split)
        if root_list is None:
            items = [item for sub in subsets for item in _iharmony_items(sub, split, prefix=f"{sub.name}/")]
        else:
            items = _filter_root(folder, subsets, root_list)
    if not items:
        raise DatasetError(f"{folder}: no composites to evaluate")
    return sorted(items, key=lambda item: item.name)
