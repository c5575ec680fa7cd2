"""Real processes: two runs into one folder account for every item exactly once; SIGTERM / SIGINT stop a run
cleanly (summary, exit 143 / 130, no temporary file); a run killed with SIGKILL is cleaned up by the next one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harmcli.io.adjustment_files import save_adjustment
from harmcli.ops.adjustment import Adjustment

from . import TORCH_THREADS_ENV, files_in, make_scene, read_image, write_image

REPO = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"(\d+) done, (\d+) skipped, (\d+) failed")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def make_items(root: Path, count: int, size=(48, 64)) -> tuple[Path, Path]:
    scene = make_scene(seed=7, size=size)
    for i in range(count):
        write_image(root / "comps" / f"i{i:03d}.png", np.roll(scene.composite(), i, axis=1))
        write_image(root / "masks" / f"i{i:03d}.png", scene.mask)
    return root / "comps", root / "masks"


def look(path: Path, top: float) -> Path:
    """A .cube that scales every channel by ``top``: tells apart whose output a file is."""
    save_adjustment(Adjustment.from_uniform(np.tile(np.linspace(0, top, 8, dtype=np.float32), (3, 1))), path)
    return path


# The command with every mask read slowed down by 20 ms, so that a run of 150 items lasts seconds on any
# machine and a signal sent after its first output always lands mid-run (unslowed, a quiet machine finishes
# all 150 before the signal arrives). Only the test's child process is patched; harmcli has no test hook.
SLOWED_MAIN = """
import sys, time
import harmcli.io.images as images
read_mask = images.read_mask
def slow_read_mask(*args, **kwargs):
    time.sleep(0.02)
    return read_mask(*args, **kwargs)
images.read_mask = slow_read_mask
from harmcli.cli.app import main
sys.argv[0] = "harmcli"
main()
"""


def start(*args: object, slowed: bool = False) -> subprocess.Popen:
    env = {**os.environ, **TORCH_THREADS_ENV}
    entry = ["-c", SLOWED_MAIN] if slowed else ["-m", "harmcli"]
    return subprocess.Popen(
        [sys.executable, *entry, *map(str, args)], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def temp_files(folder: Path) -> list[str]:
    return [name for name in files_in(folder) if name.startswith(".")]


def test_two_runs_into_one_folder_account_for_every_item_once(tmp_path):
    count = 30
    comps, masks = make_items(tmp_path, count)
    out = tmp_path / "out"
    looks = {"A": look(tmp_path / "a.cube", 0.5), "B": look(tmp_path / "b.cube", 0.8)}
    runs = {name: start("harmonize", comps, "-m", masks, "-o", out, "--params", path) for name, path in looks.items()}
    logs = {name: proc.communicate(timeout=300)[1] for name, proc in runs.items()}

    failed_stems, done = {}, {}
    for name, log in logs.items():
        assert runs[name].returncode in (0, 1), log
        assert "Traceback" not in log
        done[name], _, failed = map(int, SUMMARY.search(log).groups())
        failed_stems[name] = set(re.findall(r"failed: .*?(i\d{3})\.png: already exists", log))
        assert len(failed_stems[name]) == failed, log
    assert done["A"] + done["B"] == count
    assert len(failed_stems["A"]) + len(failed_stems["B"]) == count
    # Every file holds the output of the run that reported it done, and of no other.
    scene = make_scene(seed=7)
    inside = scene.mask == 255
    for i in range(count):
        stem = f"i{i:03d}"
        red = read_image(out / f"{stem}.png")[..., 0][inside].astype(float)
        source = np.roll(scene.composite(), i, axis=1)[..., 0][inside].astype(float)
        writer = "A" if np.abs(red - 0.5 * source).max() <= 1 else "B" if np.abs(red - 0.8 * source).max() <= 1 else None
        assert writer is not None, stem
        other = "B" if writer == "A" else "A"
        assert stem in failed_stems[other] and stem not in failed_stems[writer], stem
    assert temp_files(out) == []
    raced = sum(log.count("appeared while") for log in logs.values())
    print(f"done A={done['A']} B={done['B']}; {raced} item(s) lost at the final step (both runs got past the check)")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_run_cleanly(tmp_path, sig, code):
    count = 150
    comps, masks = make_items(tmp_path, count, size=(96, 128))
    out = tmp_path / "out"
    proc = start("harmonize", comps, "-m", masks, "-o", out, "--params", look(tmp_path / "a.cube", 0.5), "--ext", "tif",
                 slowed=True)
    deadline = time.monotonic() + 120
    while not any(not name.startswith(".") for name in files_in(out)) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    done, skipped, failed = map(int, SUMMARY.search(err).groups())
    not_started = int(re.search(r"(\d+) not started \(interrupted\)", err).group(1))
    assert done >= 1 and not_started >= 1 and skipped == failed == 0 and done + not_started == count, err
    assert lines[-1] == f"error: stopped by {signal.Signals(sig).name}" + (" (Ctrl-C)" if sig == signal.SIGINT else "")
    written = files_in(out)
    assert temp_files(out) == [] and len(written) == done, err  # every output counted is whole and present
    for name in written:
        assert read_image(out / name).shape == (96, 128, 3)


def test_after_sigkill_the_next_run_cleans_up_and_completes(tmp_path):
    count = 150
    comps, masks = make_items(tmp_path, count, size=(96, 128))
    out = tmp_path / "out"
    args = ("harmonize", comps, "-m", masks, "-o", out, "--params", look(tmp_path / "a.cube", 0.5), "--ext", "tif")
    proc = start(*args)
    deadline = time.monotonic() + 120
    while not any(not name.startswith(".") for name in files_in(out)) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.kill()
    proc.communicate(timeout=60)
    left = temp_files(out)  # there may or may not be one, depending on where the kill landed
    rerun = start(*args, "--skip-existing")
    err = rerun.communicate(timeout=300)[1]
    assert rerun.returncode == 0, err
    assert (f"removed {len(left)} temporary file" in err) == bool(left), err
    assert temp_files(out) == [] and len(files_in(out)) == count
