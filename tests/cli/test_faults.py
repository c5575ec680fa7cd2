"""Faults a photographer or a batch script meets, each answered by one harmcli line and the README's exit code:
corrupt data, odd masks and params, non-ASCII names, half results, folders that cannot be made, unreadable
files, OpenCV's limits, multi-frame inputs, races with another run, and --help. Files are made here."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from harmcli.errors import ImageWriteError
from harmcli.io import images, safe_write

from . import (  # noqa: F401  (fixtures)
    HALF,
    IDENTITY,
    LIFT,
    Result,
    assert_one_error,
    files_in,
    identity_weights,
    make_scene,
    read_image,
    run,
    write_image,
    write_params,
    write_scene,
)


@pytest.fixture
def run_fd(capfd):
    """Like ``run``, but captures file descriptor 2 as well: what C libraries print shows up here."""

    def _run(*args) -> Result:
        from harmcli.cli.app import main

        capfd.readouterr()
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in args])
        out, err = capfd.readouterr()
        code = info.value.code
        return Result(0 if code is None else int(code), out, err)

    return _run


@pytest.fixture
def params_file(tmp_path):
    return write_params(tmp_path / "edit.json", {"red": HALF, "green": LIFT, "blue": IDENTITY})


def composite_and_mask(folder: Path, seed: int = 0, ext: str = ".png", mask_folder: Path | None = None):
    """``folder/comp.EXT`` and ``mask.png`` (in ``mask_folder`` when given, else beside it), and the scene."""
    scene = make_scene(seed=seed)
    composite = write_image(folder / f"comp{ext}", scene.composite())
    mask = write_image((mask_folder or folder) / "mask.png", scene.mask)
    return composite, mask, scene


def damaged_jpeg(path: Path, seed: int = 0) -> Path:
    """A JPEG whose scan data is overwritten in the middle, markers (SOI ... EOI) intact."""
    rgb = make_scene(seed=seed).composite()
    data = bytearray(cv2.imencode(".jpg", rgb[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    for k in range(start + 20, len(data) - 8, 5):
        if data[k] != 0xFF and data[k - 1] != 0xFF:
            data[k] = 0x55
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def damaged_png(path: Path, seed: int = 0) -> Path:
    data = bytearray(cv2.imencode(".png", make_scene(seed=seed).composite())[1].tobytes())
    idat = data.find(b"IDAT")
    data[idat + 30 : idat + 60] = bytes(30)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------------------------------- strict decoding


@pytest.mark.parametrize("make, ext", [(damaged_jpeg, ".jpg"), (damaged_png, ".png")], ids=["jpeg", "png"])
def test_corrupt_data_is_one_line_and_exit_1(run_fd, tmp_path, params_file, make, ext):
    _, mask, _ = composite_and_mask(tmp_path)
    bad = make(tmp_path / f"bad{ext}")
    result = run_fd("harmonize", bad, "-m", mask, "-o", tmp_path / "out.png", "--params", params_file)
    assert_one_error(result, 1, str(bad), "corrupt")  # exactly one line: no raw libjpeg / libpng line
    assert not (tmp_path / "out.png").exists()


def test_a_gif_is_an_unsupported_image_not_a_clip(run_fd, tmp_path, params_file):
    """FFmpeg opens any GIF as video: a still one was refused with 'a clip goes to a video file'."""
    from PIL import Image

    composite, mask, _ = composite_and_mask(tmp_path)
    gif = tmp_path / "still.gif"
    Image.fromarray(read_image(composite)[..., :3]).save(gif)
    result = run_fd("harmonize", gif, "-m", mask, "-o", tmp_path / "out.png", "--params", params_file)
    assert_one_error(result, 1, "still.gif", "unsupported format '.gif'")
    gif_mask = tmp_path / "mask.gif"
    Image.fromarray(read_image(mask)).save(gif_mask)
    result = run_fd("harmonize", composite, "-m", gif_mask, "-o", tmp_path / "out.png", "--params", params_file)
    assert_one_error(result, 1, "mask.gif", "unsupported format '.gif'")
    assert not (tmp_path / "out.png").exists()


def test_cmyk_with_alpha_is_harmonized_without_library_noise(run_fd, tmp_path, params_file):
    rng = np.random.default_rng(1)
    scene = make_scene(seed=2)
    cmyka = rng.integers(0, 256, (*scene.mask.shape, 5), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "cmyka.tif", cmyka, photometric="separated", extrasamples=["unassalpha"])
    mask = write_image(tmp_path / "mask.png", scene.mask)
    result = run_fd("harmonize", tmp_path / "cmyka.tif", "-m", mask, "-o", tmp_path / "out.tif", "--params", params_file)
    assert result.code == 0, result.err
    assert len(result.err_lines) == 1 and result.err_lines[0].startswith("wrote"), result.err
    out = read_image(tmp_path / "out.tif")
    np.testing.assert_array_equal(out[..., 3], cmyka[..., 4])  # alpha kept
    background = scene.mask == 0
    expected_rgb = images.read_image(tmp_path / "cmyka.tif").rgb
    np.testing.assert_array_equal(out[..., :3][background], expected_rgb[background])


def test_opencv_pixel_cap_is_one_line(run, tmp_path, params_file, monkeypatch):
    composite, mask, _ = composite_and_mask(tmp_path)
    monkeypatch.setattr(images, "_OPENCV_MAX_PIXELS", 1000)  # what a cv2 loaded before harmcli would allow
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "o.png", "--params", params_file, "--max-pixels", 10**10)
    assert_one_error(result, 1, str(composite), "OPENCV_IO_MAX_IMAGE_PIXELS")
    assert "Assertion" not in result.err


# ------------------------------------------------------------------------------------------- masks, params, names


def test_zero_one_mask_is_read_as_binary(run, tmp_path, params_file):
    composite, _, scene = composite_and_mask(tmp_path)
    binary = (scene.mask > 127).astype(np.uint8)
    mask = write_image(tmp_path / "mask01.png", binary)
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "out.png", "--params", params_file)
    assert result.code == 0, result.err
    assert any(line.startswith("warning:") and "0 and 1" in line for line in result.err_lines), result.err
    out, comp = read_image(tmp_path / "out.png").astype(int), scene.composite().astype(int)
    inside = binary == 1
    assert np.abs(out[inside][:, 0] - np.rint(comp[inside][:, 0] * 0.5)).max() <= 1  # red halved, fully
    np.testing.assert_array_equal(out[~inside], comp[~inside])


def test_colour_tiff_as_params_is_refused(run, tmp_path):
    composite, mask, _ = composite_and_mask(tmp_path)
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "photo.tif", rng.integers(0, 65535, (16, 16, 3), dtype=np.uint16), photometric="rgb")
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "o.png", "--params", tmp_path / "photo.tif")
    assert_one_error(result, 1, "photo.tif", "colour image", "grayscale")
    assert not (tmp_path / "o.png").exists()


def test_non_ascii_output_names(run, tmp_path, params_file, identity_weights):
    composite, mask, _ = composite_and_mask(tmp_path)
    for name in ("Ölook.png", "Ölook.jpg", "Ölook.tif"):
        result = run("harmonize", composite, "-m", mask, "-o", tmp_path / name, "--params", params_file)
        assert result.code == 0 and (tmp_path / name).is_file(), result.err
    result = run(
        "harmonize", composite, "-m", mask, "-o", tmp_path / "ß.png", "--weights", identity_weights,
        "--save-params", tmp_path / "Ölook.cube",
    )
    assert result.code == 0, result.err
    assert 'TITLE "Ölook"' in (tmp_path / "Ölook.cube").read_text(encoding="utf-8")
    for ext in (".json", ".cube", ".acv", ".tif", ".png"):
        result = run("curves", composite, "-m", mask, "-o", tmp_path / f"Ölook_2{ext}", "--weights", identity_weights)
        assert result.code == 0 and (tmp_path / f"Ölook_2{ext}").is_file(), result.err


def test_save_params_and_image_are_written_both_or_neither(run, tmp_path, params_file, monkeypatch):
    composite, mask, _ = composite_and_mask(tmp_path)
    out, look = tmp_path / "out.png", tmp_path / "look.json"
    args = ("harmonize", composite, "-m", mask, "-o", out, "--params", params_file, "--save-params", look)

    def full_disk(path, *a, **k):
        raise ImageWriteError(f"cannot write '{path}': No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(images, "write_image", full_disk)
        assert_one_error(run(*args), 1, "No space left")
    assert files_in(tmp_path) == sorted(["comp.png", "mask.png", "edit.json"])  # neither: no half result
    result = run(*args)  # and so the re-run needs no --overwrite
    assert result.code == 0 and out.is_file() and look.is_file(), result.err

    # --save-params fails (a file where its folder should be): the image is not written either
    (tmp_path / "blocker").write_text("x")
    result = run(*args[:5], tmp_path / "o2.png", *args[6:8], "--save-params", tmp_path / "blocker" / "look.cube")
    assert_one_error(result, 1, "blocker")
    assert not (tmp_path / "o2.png").exists()


# ------------------------------------------------------------------------------------------- files and folders


def test_output_folder_that_cannot_be_created(run, tmp_path, params_file, monkeypatch):
    composite, mask, _ = composite_and_mask(tmp_path / "in", mask_folder=tmp_path)
    (tmp_path / "file").write_text("x")
    result = run("harmonize", tmp_path / "in", "-m", mask, "-o", tmp_path / "file" / "out", "--params", params_file)
    assert_one_error(result, 1, "cannot create the folder", "file")

    real_mkdir = Path.mkdir

    def denied(self, *args, **kwargs):
        if self.name == "denied":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(safe_write.Path, "mkdir", denied)
    result = run("harmonize", tmp_path / "in", "-m", mask, "-o", tmp_path / "denied", "--params", params_file)
    assert_one_error(result, 1, "cannot create the folder", "denied", "permission denied")
    assert "PermissionError" not in result.err


def test_unreadable_input_is_exit_1_not_a_usage_error(run, tmp_path, params_file, monkeypatch):
    composite, mask, _ = composite_and_mask(tmp_path)
    # As for a user without read permission (the tests may run as root, who reads everything).
    real_access, real_read = os.access, Path.read_bytes

    def access(path, mode, *args, **kwargs):
        return False if Path(path).name == "comp.png" else real_access(path, mode, *args, **kwargs)

    def read_bytes(self):
        if self.name == "comp.png":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "o.png", "--params", params_file)
    assert_one_error(result, 1, "comp.png", "permission denied")


def test_no_command_keeps_typers_readable_check():
    import typer

    from harmcli.cli.app import _adjust_params, _register_commands, app

    _register_commands()
    command = typer.main.get_command(app)
    _adjust_params(command)
    checked = 0
    for sub in command.commands.values():
        for param in sub.params:
            info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)
            if info is not None and hasattr(info, "readable") and hasattr(info, "exists"):
                checked += 1
                assert info.readable is False, (sub.name, param.name)
    assert checked >= 5


def test_weights_folder_says_so(run, tmp_path):
    composite, mask, _ = composite_and_mask(tmp_path)
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "o.png", "--weights", tmp_path)
    assert_one_error(result, 1, "is a folder", ".safetensors")


def test_multi_page_tiff_gets_a_warning(run, tmp_path, params_file):
    scene = make_scene(seed=3)
    pages = np.stack([scene.composite(), scene.bg])
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="rgb")
    mask = write_image(tmp_path / "mask.png", scene.mask)
    result = run("harmonize", tmp_path / "pages.tif", "-m", mask, "-o", tmp_path / "o.tif", "--params", params_file)
    assert result.code == 0, result.err
    assert any(line.startswith("warning:") and "2 pages" in line for line in result.err_lines), result.err


def test_summary_when_every_item_failed(run, tmp_path, params_file):
    for stem in ("a", "b"):
        damaged_jpeg(tmp_path / "comps" / f"{stem}.jpg")
        write_image(tmp_path / "masks" / f"{stem}.png", make_scene().mask)
    result = run("harmonize", tmp_path / "comps", "-m", tmp_path / "masks", "-o", tmp_path / "out", "--params", params_file)
    assert result.code == 1
    assert sum(line.startswith("failed:") for line in result.err_lines) == 2
    assert "0 done, 0 skipped, 2 failed in" in result.err and "per item" in result.err
    assert result.err_lines[-1].startswith("error: 2 of 2 items failed") and "nothing was written" in result.err_lines[-1]
    assert "the others are in" not in result.err


# ------------------------------------------------------------------------------------------- races, temp files


def another_run_writes_first(monkeypatch):
    """Make every output appear (written by 'another run') just before this run names its own file."""
    real_commit = safe_write._commit

    def commit(temp, path, overwrite):
        if not path.exists():
            path.write_bytes(b"the other run's file")
        return real_commit(temp, path, overwrite)

    monkeypatch.setattr(safe_write, "_commit", commit)


def test_an_output_that_appears_meanwhile_is_never_replaced(run, tmp_path, params_file, monkeypatch):
    composite, mask, _ = composite_and_mask(tmp_path / "in", mask_folder=tmp_path)
    another_run_writes_first(monkeypatch)
    args = ("harmonize", tmp_path / "in", "-m", mask, "-o", tmp_path / "out", "--params", params_file)
    result = run(*args)
    assert result.code == 1
    assert any(line.startswith("failed:") and "appeared while this run was writing it" in line for line in result.err_lines)
    assert (tmp_path / "out" / "comp.png").read_bytes() == b"the other run's file"
    assert files_in(tmp_path / "out") == ["comp.png"]  # no temporary file left
    (tmp_path / "out" / "comp.png").unlink()
    result = run(*args, "--skip-existing")  # resuming runs side by side: the other run's item is skipped
    assert result.code == 0 and "0 done, 1 skipped, 0 failed" in result.err, result.err
    assert (tmp_path / "out" / "comp.png").read_bytes() == b"the other run's file"
    result = run(*args, "--overwrite")
    assert result.code == 0 and (tmp_path / "out" / "comp.png").read_bytes() != b"the other run's file"


def test_single_image_race_is_one_line(run, tmp_path, params_file, monkeypatch):
    composite, mask, _ = composite_and_mask(tmp_path)
    another_run_writes_first(monkeypatch)
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "o.png", "--params", params_file)
    assert_one_error(result, 1, "o.png", "appeared while", "--overwrite")


def test_stale_temp_files_of_a_killed_run_are_removed(run, tmp_path, params_file):
    composite, mask, _ = composite_and_mask(tmp_path / "in", mask_folder=tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".comp.png.{child.pid}.0123abcd.tmp"  # what SIGKILL left behind
    live = out / f".other.png.{os.getppid()}.0123abcd.tmp"  # a run that is still writing
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    result = run("harmonize", tmp_path / "in", "-m", mask, "-o", out, "--params", params_file)
    assert result.code == 0, result.err
    assert "removed 1 temporary file" in result.err
    assert files_in(out) == sorted(["comp.png", live.name])


# ------------------------------------------------------------------------------------------- help, make-composites


def test_help_shows_flags_without_a_value_type(run):
    import typer

    from harmcli.cli.app import _register_commands, app

    _register_commands()
    names = sorted(typer.main.get_command(app).commands)
    assert {"harmonize", "curves", "make-composites", "train", "eval", "bench"} <= set(names)
    for command in [(), *((name,) for name in names)]:
        result = run(*command, "--help")
        assert result.code == 0
        assert "--help" in result.out and "<bool>" not in result.out, (command, result.out)
    line = next(line for line in run("harmonize", "--help").out.splitlines() if "--overwrite" in line)
    assert "Replace existing outputs" in line and "<" not in line


def test_bare_harmcli_prints_the_help_once(run):
    result = run()
    assert result.code == 0 and result.err == ""
    assert result.out.count("Usage:") == 1 and "harmonize" in result.out, result.out


def test_debug_after_the_command_is_an_unknown_option_not_a_traceback(run, tmp_path):
    result = run("harmonize", tmp_path / "missing.png", "--mask", tmp_path / "m.png", "-o", tmp_path / "o.png", "--debug")
    assert_one_error(result, 2, "no such option: --debug")


def test_debug_before_the_command_lets_the_exception_through(tmp_path):
    from harmcli.cli.app import main
    from harmcli.errors import ImageReadError

    with pytest.raises(ImageReadError, match="missing.png"):
        main(["--debug", "harmonize", str(tmp_path / "missing.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png")])


def test_help_shows_every_default_written_into_a_help_text(run, monkeypatch):
    """Rich reads an unescaped "[default: ...]" in a help text as markup and drops it from --help: each one written
    into a help string must reach the screen."""
    import typer

    from harmcli.cli.app import _register_commands, app

    monkeypatch.setenv("COLUMNS", "400")  # one line per option, so no "[default:" is split by wrapping
    _register_commands()
    import re

    for name, command in typer.main.get_command(app).commands.items():
        shown = run(name, "--help").out
        for param in command.params:
            for written in re.findall(r"\[default: [^\]]*\]", (param.help or "").replace("\\", "")):
                assert written in shown, (name, param.name, written)


def test_make_composites_refuses_a_non_empty_output_folder(run, tmp_path):
    src = tmp_path / "src"
    for sub in ("images", "masks"):
        (src / sub).mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old_sample.png").write_bytes(b"x")
    result = run("make-composites", src, "-o", out)
    assert_one_error(result, 1, str(out), "not empty")
    assert files_in(out) == ["old_sample.png"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("lands_after_the_write", [False, True], ids=["before", "after"])
def test_sigterm_on_a_single_image_says_whether_it_was_written(run, tmp_path, params_file, monkeypatch, lands_after_the_write):
    import signal

    from harmcli import batch

    composite, mask, _ = composite_and_mask(tmp_path)
    real_run_one = batch.run_one

    def stopped(job, item):
        if lands_after_the_write:
            real_run_one(job, item)
        os.kill(os.getpid(), signal.SIGTERM)  # harmcli's handler raises Interrupted right here
        time.sleep(5)  # not reached
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(batch, "run_one", stopped)
    handler_before = signal.getsignal(signal.SIGTERM)
    result = run("harmonize", composite, "-m", mask, "-o", tmp_path / "o.png", "--params", params_file)
    assert signal.getsignal(signal.SIGTERM) is handler_before  # harmcli's handler is put back
    assert result.code == 143
    expected = "written before the stop" if lands_after_the_write else "not written (stopped before it was complete)"
    assert result.err_lines == [f"{tmp_path / 'o.png'}: {expected}", "error: stopped by SIGTERM"]
    assert (tmp_path / "o.png").exists() == lands_after_the_write
