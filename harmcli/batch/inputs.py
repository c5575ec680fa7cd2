"""What the command line names (:class:`InputSpec`, :class:`Placement`) and how folder contents pair up into
:class:`Item` s."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

from harmcli.batch.summary import ItemResult
from harmcli.errors import ImageReadError, InputMismatchError, UsageError
from harmcli.io.psd import PSD_EXTENSIONS

Form = Literal["layers", "alpha", "composite", "psd"]


def match_items(spec: InputSpec, extensions: Iterable[str]) -> Plan:
    """Pair the inputs into items.

    A file input is used for every item; folder inputs are matched by file stem (``a.jpg`` in the foreground
    folder goes with ``a.png`` in the mask folder). A stem missing from any folder is *unmatched*; a stem that
    names two files in one folder (``a.png`` and ``a.jpg``) is a failure, since either could be meant.
    """
    # A layered Photoshop file is a whole item by itself (subject layer over the layers below): a folder given
    # alone is read for those, and only those.
    extensions = PSD_EXTENSIONS if spec.form == "psd" else tuple(extensions)
    spec.check_exists()
    roles = spec.roles()
    folders: dict[str, dict[str, list[Path]]] = {}
    for role, path in roles:
        if path.is_dir():
            by_stem: dict[str, list[Path]] = {}
            files = list_images(path, extensions)
            if not files and spec.form == "psd":
                raise ImageReadError(
                    f"{path}: no .psd files in this folder; for other composites give their masks (--mask MASKS) or a "
                    "background (FG BG [MASK])"
                )
            if not files:
                raise ImageReadError(f"{path}: no images in this folder (looked for {', '.join(sorted(set(extensions)))})")
            for f in files:
                by_stem.setdefault(f.stem, []).append(f)
            folders[role] = by_stem
    paths = dict(roles)
    if not folders:
        return Plan([Item(spec.primary.stem, spec.form, spec.primary, spec.background, spec.mask)])

    plan = Plan([])
    all_stems = sorted(set().union(*(set(s) for s in folders.values())))
    for stem in all_stems:
        missing = tuple(role for role in folders if stem not in folders[role])
        if missing:
            found = {role: folders[role][stem][0] for role in folders if stem in folders[role]}
            plan.unmatched.append(Unmatched(stem, found, missing))
            continue
        ambiguous = [files for files in (folders[role][stem] for role in folders) if len(files) > 1]
        if ambiguous:
            names = ", ".join(str(p) for p in ambiguous[0])
            message = f"{names}: several files share the stem '{stem}'; rename all but one"
            plan.failures.append(ItemResult(stem, "failed", message=message))
            continue
        chosen = {role: (folders[role][stem][0] if role in folders else paths[role]) for role, _ in roles}
        first = "foreground" if spec.form in ("layers", "alpha") else "composite"
        plan.items.append(Item(stem, spec.form, chosen[first], chosen.get("background"), chosen.get("mask")))
    if not plan.items and not plan.failures:
        folder_list = ", ".join(str(paths[r]) for r in folders)
        raise InputMismatchError(f"{folder_list}: no file stem is present in every input folder; nothing to do")
    return plan


def is_psd_path(path: Path) -> bool:
    """A Photoshop file by its name (.psd, .psb); folders never are."""
    return Path(path).suffix.lower() in PSD_EXTENSIONS and not Path(path).is_dir()


def list_images(folder: Path, extensions: Iterable[str]) -> list[Path]:
    """Image files directly in ``folder`` (not recursive; hidden files ignored), sorted by name."""
    allowed = {e.lower() for e in extensions}
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in allowed
    )



@dataclass(frozen=True)
class InputSpec:
    """The inputs as named on the command line.

    Forms: ``layers`` = FG BG MASK (composite = M·FG + (1−M)·BG); ``alpha`` = FG BG with the mask in FG's
    alpha channel; ``composite`` = an already pasted image and its mask (the network's background input is
    the composite itself); ``psd`` = a layered Photoshop file alone (its subject layer over the layers below it:
    :mod:`harmcli.io.psd`), or a folder given alone, read for its .psd files. Any path may be a folder.
    """

    form: Form
    primary: Path  # the foreground, or the composite
    background: Path | None = None
    mask: Path | None = None

    @classmethod
    def from_args(cls, paths: Sequence[Path], mask: Path | None = None) -> "InputSpec":
        paths = [Path(p) for p in paths]
        mask = Path(mask) if mask is not None else None
        psd = [p for p in paths if is_psd_path(p)]
        if psd:
            # The file holds the subject, the background and (in the subject's transparency and layer mask) the mask.
            if len(paths) > 1:
                raise UsageError(
                    f"{psd[0]}: a .psd is given alone: its top visible pixel layer is the subject and the layers below "
                    "it the background (pick another subject with --layer NAME)"
                )
            if mask is not None:
                raise UsageError(f"{psd[0]}: --mask does not go with a .psd: the subject layer's transparency and layer mask are the mask")
            return cls("psd", paths[0])
        if mask is not None and is_psd_path(mask):
            raise UsageError(f"{mask}: a .psd cannot be a mask; give the .psd alone to use its layers")
        if len(paths) == 1:
            if mask is None:
                if paths[0].is_dir() and list_images(paths[0], PSD_EXTENSIONS):
                    return cls("psd", paths[0])
                raise UsageError(
                    f"{paths[0]}: one input is read as a composite and needs --mask MASK "
                    "(or give a background: FG BG [MASK])"
                )
            return cls("composite", paths[0], None, mask)
        if len(paths) == 2:
            if mask is None:
                return cls("alpha", paths[0], paths[1], None)
            return cls("layers", paths[0], paths[1], mask)
        if len(paths) == 3:
            if mask is not None:
                raise UsageError("the mask is given twice: as the third input and as --mask (give one)")
            return cls("layers", paths[0], paths[1], paths[2])
        raise UsageError(f"expected FG BG [MASK] or COMPOSITE --mask MASK, got {len(paths)} inputs")

    def roles(self) -> list[tuple[str, Path]]:
        """(role, path) for every input, in command-line order."""
        first = "foreground" if self.form in ("layers", "alpha") else "composite"
        out = [(first, self.primary)]
        if self.background is not None:
            out.append(("background", self.background))
        if self.mask is not None:
            out.append(("mask", self.mask))
        return out

    @property
    def is_folder(self) -> bool:
        return any(p.is_dir() for _, p in self.roles())

    def check_exists(self) -> None:
        for role, path in self.roles():
            if not path.exists():
                raise ImageReadError(f"{path}: no such file or folder ({role})")


@dataclass(frozen=True)
class Placement:
    """Where a foreground goes on a background of another size (``--at``, ``--scale``): the same for every item.

    ``origin`` is the (x, y) of the foreground's top-left corner in background pixels (negative: it hangs over the
    left or top edge), or None to centre it; ``scale`` resizes the foreground and its mask first.
    """

    origin: tuple[int, int] | None = None
    scale: float = 1.0

    @classmethod
    def from_args(cls, at: str | None, scale: float | None) -> "Placement | None":
        """``--at X,Y`` / ``--at center`` and ``--scale F`` as given; None when neither is (the inputs must then have
        the same size). A bad value is a UsageError naming the option."""
        if scale is not None and not (math.isfinite(scale) and scale > 0):
            raise UsageError(f"--scale must be a number greater than 0, got {scale:g}")
        if at is None:
            if scale is not None:
                raise UsageError("--scale resizes the foreground that --at places; give --at X,Y or --at center too")
            return None
        text = at.strip().lower()
        if text in ("center", "centre"):
            return cls(None, 1.0 if scale is None else scale)
        found = re.fullmatch(r"([+-]?[0-9]+) *, *([+-]?[0-9]+)", text)
        if found is None:
            raise UsageError(
                f"--at must be X,Y (the foreground's top-left corner in background pixels, integers, e.g. --at 120,-40) "
                f"or center, not '{at}'"
            )
        return cls((int(found[1]), int(found[2])), 1.0 if scale is None else scale)


@dataclass(frozen=True)
class Item:
    """One image to process: its stem (names the output in folder mode) and its input files."""

    stem: str
    form: Form
    primary: Path
    background: Path | None = None
    mask: Path | None = None

    @property
    def inputs(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.primary, self.background, self.mask) if p is not None)


@dataclass(frozen=True)
class Unmatched:
    """A stem found in some input folders but not in all of them."""

    stem: str
    found: dict[str, Path]
    missing: tuple[str, ...]

    def describe(self) -> str:
        found = ", ".join(str(p) for p in self.found.values())
        return f"{found}: no {' or '.join(self.missing)} with stem '{self.stem}'; skipped"


@dataclass
class Plan:
    """What a command will process: matched items, stems that matched nothing, and ambiguous stems."""

    items: list[Item]
    unmatched: list[Unmatched] = field(default_factory=list)
    failures: list["ItemResult"] = field(default_factory=list)  # problems found while matching

