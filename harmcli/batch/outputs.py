"""Where outputs go: ``-o`` checked against the inputs, one file or ``folder/STEM.EXT`` per item."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harmcli.batch.inputs import InputSpec, Item
from harmcli.errors import ImageWriteError, UsageError

# Used when an input's own extension cannot be written (e.g. a .webp or .bmp input in folder mode).
FALLBACK_EXTENSION = ".png"


def plan_output(
    spec: InputSpec,
    output: Path,
    *,
    extension: str | None,
    allowed: Sequence[str],
    default_extension: str | None = None,
    what: str = "-o",
    format_option: str = "--ext",
) -> OutputLayout:
    """Check ``-o`` against the inputs and decide the output layout.

    Folder inputs need an output folder (created later, when processing starts) that is none of the input
    folders. A single item writes ``-o`` itself, or ``-o/STEM.EXT`` when ``-o`` is an existing folder.
    ``extension`` is ``--ext``/``--format``; ``default_extension`` replaces the input's
    own extension when there is no such option (``curves`` writes .json).
    """
    allowed = tuple(a.lower() for a in allowed)
    ext = normalise_extension(extension) if extension else None
    if ext is not None and ext not in allowed:
        raise UsageError(f"cannot write '{ext}' files; choose one of: {', '.join(a.lstrip('.') for a in allowed)}")
    ext = ext or default_extension
    if str(output) == "-":  # the usual "standard output"; ./- still names a file or folder called "-"
        raise UsageError(f"{what} -: harmcli writes files, not standard output; give a file name (its extension is the format)")
    output = Path(output)
    if spec.is_folder:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output}: inputs are folders, so {what} must be a folder, but this is a file")
        if not output.exists() and output.suffix.lower() in allowed:
            # A folder would be created under a file's name (out.png/ holding a.png, b.png ...): almost certainly a
            # single-image command line given folder inputs by mistake.
            raise UsageError(
                f"{output}: inputs are folders, so {what} must be a folder, and this name ends like an image file; "
                f"give a folder name (choose the outputs' format with {format_option})"
            )
        for role, path in spec.roles():
            if path.is_dir() and same_file(output, path):
                raise ImageWriteError(
                    f"{output}: output folder is the {role} input folder; choose another {what} (inputs are never overwritten)"
                )
        return OutputLayout(output, True, ext, allowed)
    if output.is_dir():
        return OutputLayout(output, True, ext, allowed)
    suffix = output.suffix.lower()
    if not suffix:
        raise UsageError(f"{output}: {what} needs an extension ({', '.join(allowed)}) or must be an existing folder")
    if suffix not in allowed:
        raise UsageError(f"{output}: cannot write '{suffix}' files; use one of: {', '.join(allowed)}")
    if ext is not None and extension is not None and ext != suffix:
        raise UsageError(f"{output}: the extension contradicts '{extension}'; give one or the other")
    return OutputLayout(output, False, None, allowed)


@dataclass(frozen=True)
class OutputLayout:
    """Where each item's output goes: one file, or ``folder/STEM.EXT``.

    ``extension`` None means "the extension of the item's foreground/composite file" (or
    ``FALLBACK_EXTENSION`` when that one cannot be written).
    """

    path: Path  # the file (single) or the folder
    is_folder: bool
    extension: str | None
    allowed: tuple[str, ...]

    def output_for(self, item: Item) -> tuple[Path, str | None]:
        """The output path of ``item`` and a note when the input's extension had to be replaced."""
        if not self.is_folder:
            return self.path, None
        ext, note = self.extension, None
        if ext is None:
            ext = item.primary.suffix
            if ext.lower() not in self.allowed:
                note = f"{item.primary}: cannot write {ext or 'files without extension'}; wrote {FALLBACK_EXTENSION} instead"
                ext = FALLBACK_EXTENSION
        return self.path / f"{item.stem}{ext}", note


def normalise_extension(ext: str) -> str:
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else "." + ext


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (links included), even if ``a`` does not exist."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def written_with(path: Path) -> list[Path]:
    """``path`` and the files saving to it may also write: a ``.json`` adjustment's shading TIFF beside it."""
    if path.suffix.lower() == ".json":
        return [path, path.with_name(f"{path.stem}.shading.tif")]
    return [path]
