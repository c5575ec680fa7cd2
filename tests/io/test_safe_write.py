"""harmcli.io.safe_write: exclusive creation (no silent replacement), temporary names, stale temp clean-up."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from harmcli.errors import ImageWriteError, Interrupted, OutputExistsError
from harmcli.io import safe_write
from harmcli.io.safe_write import TEMP_NAME, atomic_write, make_folder, remove_stale_temp_files, temp_name


def dead_pid() -> int:
    """The PID of a process that has ended (a child that exited and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_name_carries_the_pid_and_matches_the_pattern():
    name = temp_name("shot 1.png")
    match = TEMP_NAME.match(name)
    assert match and match["name"] == "shot 1.png" and int(match["pid"]) == os.getpid()
    assert TEMP_NAME.match(".a.png.1a2b3c4d.tmp")["pid"] is None  # the older, PID-less pattern
    for other in ("a.png", ".a.png", ".a.png.tmp", "a.png.1234.1a2b3c4d.tmp", ".a.png.1234.XYZ.tmp"):
        assert TEMP_NAME.match(other) is None, other


def test_a_file_that_appears_during_the_write_is_kept(tmp_path):
    target = tmp_path / "out.png"

    def another_run_wins(fh):
        fh.write(b"mine")
        target.write_bytes(b"theirs")  # created by someone else while this file was being written

    with pytest.raises(OutputExistsError, match="appeared while") as info:
        atomic_write(target, another_run_wins, overwrite=False)
    assert info.value.path == target
    assert target.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary file left

    # --overwrite: replaced, atomically
    atomic_write(target, lambda fh: fh.write(b"mine"), overwrite=True)
    assert target.read_bytes() == b"mine"
    # a new name: created, and only the final name remains
    atomic_write(tmp_path / "new.png", lambda fh: fh.write(b"new"), overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.png", "out.png"]


def test_without_hard_links_creation_is_still_exclusive(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(safe_write.os, "link", no_links)
    atomic_write(tmp_path / "a.png", lambda fh: fh.write(b"first"), overwrite=False)
    assert (tmp_path / "a.png").read_bytes() == b"first"
    with pytest.raises(OutputExistsError):
        atomic_write(tmp_path / "a.png", lambda fh: fh.write(b"second"), overwrite=False)
    assert (tmp_path / "a.png").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_an_interrupt_removes_the_temporary_file(tmp_path):
    def stopped(fh):
        fh.write(b"half")
        raise Interrupted(15, "SIGTERM")

    with pytest.raises(Interrupted):
        atomic_write(tmp_path / "out.tif", stopped, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_make_folder_says_why_not(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageWriteError, match="a file of that name is in the way"):
        make_folder(tmp_path / "file")
    with pytest.raises(ImageWriteError, match="file"):
        make_folder(tmp_path / "file" / "sub")

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(safe_write.Path, "mkdir", denied)
    with pytest.raises(ImageWriteError, match=r"cannot create the folder .*out.*: Permission denied"):
        make_folder(tmp_path / "out")


def test_stale_temp_files_of_dead_runs_are_removed(tmp_path):
    gone, alive = dead_pid(), os.getppid()
    now = time.time()
    names = {
        "dead": f".a.png.{gone}.0123abcd.tmp",  # its run was killed: removed
        "alive": f".b.png.{alive}.0123abcd.tmp",  # a run still writing: kept
        "own": f".c.png.{os.getpid()}.0123abcd.tmp",  # this process's own: kept
        "legacy_old": ".d.png.89abcdef.tmp",  # older harmcli, 20 minutes old: removed
        "legacy_young": ".e.png.89abcdef.tmp",  # older harmcli, just written: kept
        "alive_but_ancient": f".f.png.{alive}.0123abcd.tmp",  # PID reused by another process: removed
        "user_file": ".notes.tmp",  # not harmcli's pattern: kept
        "image": "a.png",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    old = now - 20 * 60
    os.utime(tmp_path / names["legacy_old"], (old, old))
    ancient = now - safe_write.STALE_AFTER_S - 60
    os.utime(tmp_path / names["alive_but_ancient"], (ancient, ancient))

    removed = remove_stale_temp_files(tmp_path, now=now)
    assert sorted(p.name for p in removed) == sorted(names[k] for k in ("dead", "legacy_old", "alive_but_ancient"))
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names[k] for k in ("alive", "own", "legacy_young", "user_file", "image")}
    assert remove_stale_temp_files(tmp_path / "missing") == []
