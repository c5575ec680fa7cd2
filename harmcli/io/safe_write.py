"""Creating output files: complete or absent, never replacing a file that appeared meanwhile, no litter left.

:func:`atomic_write` writes to a temporary file in the destination folder and gives it its final name only
once it is complete. Without ``overwrite`` that last step is ``os.link(temp, final)``, which the kernel refuses
(``EEXIST``) when the name exists, so checking "does the output exist?" and creating it are one atomic step:
two harmcli runs writing into one folder can never replace each other's files, whatever their timing (a
separate ``exists()`` check followed by ``os.replace`` let the second run silently win). Where the file system
has no hard links (FAT, some network shares) the name is reserved with ``O_CREAT | O_EXCL`` first and the
complete file is then renamed over the reservation: still exclusive, but a reader may briefly see an empty file.
With ``overwrite`` the last step is ``os.replace``, which swaps the new content in atomically.

Temporary files are named ``.NAME.PID.RANDOM.tmp`` (``PID`` = the writing process). A run killed with SIGKILL
(or a machine that lost power) leaves one behind; :func:`remove_stale_temp_files` removes those of processes
that are gone, so a later run into the same folder cleans up, and never touches a live run's files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from harmcli.errors import HarmcliError, ImageWriteError, OutputExistsError

# .NAME.PID.RANDOM.tmp, and the .NAME.RANDOM.tmp of harmcli versions before the PID was added.
TEMP_NAME = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?(?P<token>[0-9a-f]{8})\.tmp$")
# A temporary file whose writer's PID is still in use but that has not changed for this long belongs to a PID
# that was reused by another process (a write takes seconds, not hours).
STALE_AFTER_S = 3600.0
# Files of the old pattern say nothing about their writer; they are left alone while this young, so a run
# of an older harmcli still writing into the folder is not disturbed.
LEGACY_STALE_AFTER_S = 600.0
# Errors of os.link that mean "this file system has no hard links" rather than "the name exists".
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EXDEV, errno.EACCES}


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], object],
    *,
    protect: Iterable[str | os.PathLike] = (),
    overwrite: bool = True,
) -> Path:
    """Create ``path`` through ``write(file_handle)`` on a temporary file in the same folder, then name it.

    ``overwrite`` False: raise :class:`OutputExistsError` (and write nothing) when ``path`` exists at the end,
    even if it appeared while ``write`` ran. True: replace it atomically. The temporary file is removed on any
    failure (also on KeyboardInterrupt or a signal turned into one). Parent folders are created.

    Raises:
        ImageWriteError: a protected path, a folder in the way, a disk error; OutputExistsError (a subclass).
    """
    path = Path(path)
    check_not_protected(path, protect)
    if path.is_dir():
        raise ImageWriteError(f"cannot write '{path}': a folder of that name exists")
    make_folder(path.parent)
    temp = path.parent / temp_name(path.name)
    try:
        # open(..., "xb") creates with the usual permissions (umask), unlike tempfile's private 0o600 files.
        with open(temp, "xb") as fh:
            write(fh)
        _commit(temp, path, overwrite)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, HarmcliError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, OSError):
            raise ImageWriteError(f"cannot write '{path}': {exc.strerror or exc}") from None
        raise ImageWriteError(f"cannot write '{path}': {_first_line(exc)}") from exc
    return path


def remove_stale_temp_files(folder: str | os.PathLike, *, now: float | None = None) -> list[Path]:
    """Remove temporary files that harmcli runs which no longer exist left in ``folder``; returns them.

    Only names of harmcli's own pattern (see the module docstring) are considered. A file is stale when its
    writer's process is gone, or (PID reused) it has not changed for :data:`STALE_AFTER_S`; files of the older,
    PID-less pattern when they have not changed for :data:`LEGACY_STALE_AFTER_S`.
    """
    folder = Path(folder)
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid = match.group("pid")
        if pid is None:
            stale = age > LEGACY_STALE_AFTER_S
        else:
            stale = int(pid) != os.getpid() and (not _process_alive(int(pid)) or age > STALE_AFTER_S)
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def temp_name(name: str) -> str:
    """The hidden temporary name under which ``name`` is written by this process."""
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def make_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and its parents) or raise one ImageWriteError line saying why not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ImageWriteError(f"cannot create the folder '{folder}': a file of that name is in the way") from None
    except OSError as exc:
        raise ImageWriteError(f"cannot create the folder '{folder}': {exc.strerror or exc}") from None
    return folder


def check_not_protected(path: str | os.PathLike, protect: Iterable[str | os.PathLike]) -> None:
    """Raise ImageWriteError when ``path`` is, under any name (relative, ``..``, symlink), one of ``protect``."""
    path = Path(path)
    target = path.resolve()
    for item in protect:
        other = Path(item)
        same = other.resolve() == target
        if not same and path.exists() and other.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(path, other)
        if same:
            raise ImageWriteError(
                f"refusing to write '{path}': it is the input '{other}'; choose another output name or folder"
            )


def _commit(temp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise _exists(path) from None
        os.replace(temp, path)
        return
    temp.unlink()


def _exists(path: Path) -> OutputExistsError:
    return OutputExistsError(
        f"{path}: already exists (it appeared while this run was writing it: another run?); kept it, pass "
        "--overwrite to replace it",
        path,
    )


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there; the age rule alone decides
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__
