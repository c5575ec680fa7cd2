"""--backend and ``harmcli export``: the ONNX path serves harmonize, curves and eval without importing torch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli import (  # noqa: F401  (fixtures)
    TORCH_THREADS_ENV,
    active_weights,
    assert_one_error,
    identity_weights,
    make_scene,
    read_image,
    run,
    write_scene,
)
from tests.eval.conftest import make_iharmony

REPO = Path(__file__).resolve().parents[2]


def test_onnx_path_never_imports_torch(tmp_path):
    """harmonize, curves and eval with the shipped weights on the ONNX backend, in one fresh process."""
    fg, bg, mask = write_scene(tmp_path, make_scene(seed=5))
    make_iharmony(tmp_path / "data", count=3)
    code = (
        "import json, sys\n"
        "from harmcli.cli.app import main\n"
        "codes = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "print('CODES', codes)\n"
        "print('TORCH', sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
        "print('PYDANTIC', 'pydantic' in sys.modules)\n"  # Typer's converter, replaced by harmcli/cli/coercion.py
    )
    commands = [
        ["harmonize", str(fg), str(bg), str(mask), "-o", str(tmp_path / "out.png"), "--backend", "onnx"],
        ["harmonize", str(fg), str(bg), str(mask), "-o", str(tmp_path / "auto.png")],  # auto: ONNX on this CPU
        ["curves", str(fg), str(bg), str(mask), "-o", str(tmp_path / "look.json"), "--backend", "onnx"],
        ["eval", str(tmp_path / "data"), "-m", "harmcli", "--backend", "onnx", "--json", str(tmp_path / "eval.json"), "-q"],
    ]
    env = {**os.environ, **TORCH_THREADS_ENV, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(commands)], capture_output=True, text=True, cwd=REPO, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "CODES [0, 0, 0, 0]" in done.stdout, done.stdout + done.stderr
    assert "TORCH []" in done.stdout and "PYDANTIC False" in done.stdout
    assert np.array_equal(read_image(tmp_path / "out.png"), read_image(tmp_path / "auto.png"))
    assert (tmp_path / "look.json").is_file() and (tmp_path / "look.shading.tif").is_file()
    summary = json.loads((tmp_path / "eval.json").read_text())["summary"]
    assert set(summary) == {"harmcli"} and summary["harmcli"]["MSE"] >= 0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_backends_agree_through_the_command(run, tmp_path, dtype):
    """The shipped weights, 8- and 16-bit PNGs: ONNX Runtime and PyTorch outputs within one code value."""
    fg, bg, mask = write_scene(tmp_path, make_scene(dtype, seed=8, size=(120, 160)))
    outputs = {}
    for backend in ("onnx", "torch"):
        outputs[backend] = tmp_path / f"{backend}.png"
        result = run("harmonize", fg, bg, mask, "-o", outputs[backend], "--backend", backend, "--device", "cpu")
        assert result.code == 0, result.err
    by_onnx, by_torch = (read_image(outputs[b]).astype(np.int64) for b in ("onnx", "torch"))
    assert read_image(outputs["onnx"]).dtype == dtype
    assert np.abs(by_onnx - by_torch).max() <= 1
    assert np.abs(by_torch - read_image(fg).astype(np.int64)).max() > 0  # the foreground was adjusted


def test_export_then_use_beside_the_weights(run, tmp_path, active_weights):
    weights = Path(shutil.copy(active_weights, tmp_path / "mine.safetensors"))
    result = run("export", weights, "-q")
    assert result.code == 0, result.err
    exported = tmp_path / "mine.onnx"  # the default output: beside the weights
    assert exported.is_file() and result.err == ""
    assert_one_error(run("export", weights), 1, "already exists", "--overwrite")
    assert run("export", weights, "--overwrite", "-q").code == 0
    assert_one_error(run("export", weights, "-o", tmp_path / "x.onnnx"), 2, "must end in .onnx")

    fg, bg, mask = write_scene(tmp_path, make_scene(seed=9))
    for backend, out in (("onnx", "a.png"), ("auto", "b.png"), ("torch", "c.png")):
        result = run("harmonize", fg, bg, mask, "-o", tmp_path / out, "--weights", weights, "--backend", backend)
        assert result.code == 0, result.err
    a, b, c = (read_image(tmp_path / name).astype(np.int64) for name in ("a.png", "b.png", "c.png"))
    assert np.array_equal(a, b) and np.abs(a - c).max() <= 1
    result = run("harmonize", fg, bg, mask, "-o", tmp_path / "d.png", "--weights", exported)  # the .onnx itself
    assert result.code == 0 and np.array_equal(read_image(tmp_path / "d.png").astype(np.int64), a)


def test_stale_export_warns_and_falls_back(run, tmp_path, active_weights, identity_weights):
    weights = Path(shutil.copy(identity_weights, tmp_path / "w.safetensors"))
    assert run("export", active_weights, "-o", tmp_path / "w.onnx", "-q").code == 0  # the wrong network's export
    fg, bg, mask = write_scene(tmp_path, make_scene(seed=10))
    result = run("harmonize", fg, bg, mask, "-o", tmp_path / "out.png", "--weights", weights)
    assert result.code == 0, result.err
    warnings = [line for line in result.err_lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "exported from other weights" in warnings[0] and "using PyTorch" in warnings[0]
    assert run("harmonize", fg, bg, mask, "-o", tmp_path / "torch.png", "--weights", weights, "--backend", "torch").code == 0
    assert np.array_equal(read_image(tmp_path / "out.png"), read_image(tmp_path / "torch.png"))  # not the stale network
    failed = run("harmonize", fg, bg, mask, "-o", tmp_path / "out2.png", "--weights", weights, "--backend", "onnx")
    assert_one_error(failed, 1, "exported from other weights", "harmcli export")


@pytest.mark.parametrize("command", ["harmonize", "curves", "eval", "bench"])
def test_unknown_backend_is_a_usage_error(run, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    args = {
        "harmonize": ["fg.png", "bg.png", "mask.png", "-o", "out.png"],
        "curves": ["fg.png", "bg.png", "mask.png", "-o", "out.json"],
        "eval": ["data", "-m", "harmcli"],
        "bench": ["--sizes", "64", "--no-memory"],
    }[command]
    assert_one_error(run(command, *args, "--backend", "tensorrt"), 2, "--backend", "'tensorrt'")
    assert not any(tmp_path.iterdir())


def test_onnx_backend_on_cuda_is_a_usage_error(run, tmp_path):
    fg, bg, mask = write_scene(tmp_path, make_scene(seed=11))
    result = run("harmonize", fg, bg, mask, "-o", tmp_path / "o.png", "--backend", "onnx", "--device", "cuda")
    assert_one_error(result, 2, "runs on the CPU")


def test_command_modules_map_names_their_own_module():
    """A one-shot command imports only the module named in COMMAND_MODULES: it must be the one that registers it."""
    from harmcli.cli import commands  # noqa: F401  registers every command
    from harmcli.cli.app import COMMAND_MODULES, app

    registered = {(c.name or c.callback.__name__): c.callback.__module__ for c in app.registered_commands}
    for name, module in COMMAND_MODULES.items():
        assert registered[name] == f"harmcli.cli.{module}", name
