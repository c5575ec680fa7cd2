"""Option values converted without pydantic (harmcli/cli/coercion.py) come out exactly as Typer's own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

# The hook exists in the Typer that converts through pydantic (0.2x); elsewhere harmcli leaves Typer alone.
pytest.importorskip("typer._coercion")

from harmcli.cli import commands  # noqa: F401  registers every command
from harmcli.cli.app import _adjust_params, app
from harmcli.cli.coercion import _converter, use_plain_coercion
from tests.cli import assert_one_error, run  # noqa: F401  (run is a fixture)

REPO = Path(__file__).resolve().parents[2]

ARGVS = [
    ["harmonize", "a.png", "b.jpg", "m.png", "-o", "out.tif", "--strength", "0.5", "--shading-strength", "2",
     "--jpeg-quality", " 90", "--threads", "3", "--max-pixels", "1000", "--device", "CPU", "--backend", "onnx",
     "--weights", "w.safetensors", "--ext", "png", "--save-params", "p.json", "--overwrite", "-q"],
    ["harmonize", "c.png", "--mask", "m.png", "-o", "o.png"],
    ["curves", "c.png", "-m", "m.png", "-o", "looks", "--format", "cube", "--strength", "1e-1", "--skip-existing"],
    ["eval", "data", "-m", "identity,hist", "--size", "256", "--limit", "3", "--json", "e.json", "--backend", "torch"],
    ["bench", "--device", "cpu", "--device", "cuda", "--model", "lite@64", "--sizes", "64", "--runs", "2",
     "--threads", "1", "--no-memory", "--no-oneshot", "--fp16"],
    ["export", "w.safetensors", "-o", "w.onnx", "--overwrite"],
    ["average", "a.safetensors", "b.safetensors", "-o", "c.safetensors", "--overwrite", "-q"],
    ["train", "data", "-o", "runs/x"],
    ["make-composites", "photos", "-o", "data", "--seed", "7", "--per-photo", "2"],
]


def _parsed(argv, plain: bool) -> dict:
    group = typer.main.get_command(app)
    _adjust_params(group)
    if plain:
        use_plain_coercion(group)
    command = group.commands[argv[0]]
    with command.make_context(argv[0], list(argv[1:])) as ctx:
        return dict(ctx.params)


def test_every_option_of_every_command_is_converted_plainly():
    group = typer.main.get_command(app)
    for command in [group, *group.commands.values()]:
        for param in command.params:
            assert _converter(param.type_descriptor) is not None, (command.name, param.name)


@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: a[0])
def test_values_match_typers_own_conversion(argv):
    plain, typer_own = _parsed(argv, True), _parsed(argv, False)
    assert plain == typer_own
    assert {type(v) for v in plain.values()} == {type(v) for v in typer_own.values()}


@pytest.mark.parametrize(
    "args, option",
    [
        (["--strength", "abc"], "--strength"),
        (["--jpeg-quality", "9.5"], "--jpeg-quality"),
        (["--threads", "two"], "--threads"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_option(run, tmp_path, args, option):
    result = run("harmonize", tmp_path / "a.png", "--mask", tmp_path / "m.png", "-o", tmp_path / "o.png", *args)
    assert_one_error(result, 2, option, repr(args[1]))


def test_eval_size_keeps_its_minimum(run, tmp_path):
    assert_one_error(run("eval", tmp_path, "--size", "4"), 2, "--size", "minimum 8")


def test_a_one_shot_command_does_not_import_pydantic(tmp_path):
    code = (
        "import sys\n"
        "from harmcli.cli.app import main\n"
        "try:\n"
        "    main(['export', sys.argv[1], '-o', sys.argv[2]])\n"  # fails (no file): the options are converted first
        "except SystemExit as exc:\n"
        "    print('CODE', exc.code)\n"
        "print('PYDANTIC', 'pydantic' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(tmp_path / "missing.safetensors"), str(tmp_path / "x.onnx")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert "CODE 1" in done.stdout, done.stdout + done.stderr
    assert "PYDANTIC False" in done.stdout
