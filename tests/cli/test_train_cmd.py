"""``harmcli make-composites`` and ``harmcli train`` from the command line: refusals, reports and resuming."""

from __future__ import annotations

import numpy as np
import pytest

from tests.data.test_make_composites import write_source

from . import assert_one_error, files_in, run  # noqa: F401  (fixtures)

TINY = ["--max-steps", "2", "--size", "32", "--batch-size", "2", "--no-pretrained", "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A make-composites folder with a val split, built through the library (the CLI is tested below)."""
    from harmcli.data.composites import make_composites

    root = tmp_path_factory.mktemp("cmd")
    src = write_source(root / "src", np.random.default_rng(7), count=8, size=(48, 48))
    make_composites(src, root / "data", modes=("real", "retouch"), val_fraction=0.25)
    return root / "data"


# --------------------------------------------------------------------------------------- make-composites


@pytest.mark.parametrize(
    "case, code, fragment",
    [
        ("missing-src", 1, "no such folder"),
        ("not-a-source", 1, "images/ and masks/"),
        ("output-is-a-file", 1, "is a file"),
        ("has-manifest", 1, "manifest.jsonl"),
        ("unknown-mode", 2, "unknown mode 'nope'"),
        ("pairs-without-after", 1, "after/"),
        ("limit-0", 2, "--limit"),
    ],
)
def test_make_composites_refusals(run, tmp_path, case, code, fragment):
    src = write_source(tmp_path / "src", np.random.default_rng(0), count=2, size=(32, 32))
    out = tmp_path / "out"
    extra = []
    if case == "missing-src":
        src = tmp_path / "nowhere"
    elif case == "not-a-source":
        src = src / "images"
    elif case == "output-is-a-file":
        out.write_text("notes")
    elif case == "has-manifest":
        out.mkdir()
        (out / "manifest.jsonl").write_text("")
    elif case == "unknown-mode":
        extra = ["--mode", "real,nope"]
    elif case == "pairs-without-after":
        extra = ["--mode", "pairs"]
    elif case == "limit-0":
        extra = ["--limit", "0"]
    before = files_in(tmp_path)
    result = run("make-composites", src, "-o", out, *extra)
    assert_one_error(result, code, fragment)
    assert files_in(tmp_path) == before
    assert out.exists() == (case in ("output-is-a-file", "has-manifest"))


def test_make_composites_reports_bad_photos_and_counts_them(run, tmp_path):
    src = write_source(tmp_path / "src", np.random.default_rng(1), count=3, size=(32, 32))
    (src / "images" / "p1.jpg").write_bytes((src / "images" / "p1.jpg").read_bytes()[:200])  # truncated
    (src / "images" / "p9.jpg").write_bytes(b"hello")  # text, and no mask either
    result = run("make-composites", src, "-o", tmp_path / "out", "--mode", "retouch")
    assert result.code == 0, result.err
    lines = result.err_lines
    assert any(line.startswith("skipped p1:") and "p1.jpg" in line and "truncated" in line for line in lines), lines
    assert any(line.startswith("skipped p9:") and "no mask" in line for line in lines), lines
    assert lines[-1].startswith(f"wrote 4 samples to {tmp_path / 'out'}") and lines[-1].endswith("2 photo(s) skipped")
    assert "Traceback" not in result.err


# ------------------------------------------------------------------------------------------------ train


@pytest.mark.parametrize(
    "case, code, fragment",
    [
        ("missing-data", 1, "no such folder"),
        ("not-a-dataset", 1, "not a training folder"),
        ("output-is-a-file", 1, "is a file"),
        ("unknown-recipe", 2, "unknown recipe 'nope'"),
        ("unknown-model", 2, "unknown model 'nope'"),
        ("missing-init", 1, "no such weights file"),
        ("bad-init", 1, "not.safetensors"),
    ],
)
def test_train_refusals_leave_no_run_folder(run, tmp_path, dataset, case, code, fragment):
    data, out, extra = dataset, tmp_path / "run", []
    if case == "missing-data":
        data = tmp_path / "nowhere"
    elif case == "not-a-dataset":
        data = tmp_path / "empty"
        data.mkdir()
    elif case == "output-is-a-file":
        out.write_text("notes")
    elif case == "missing-init":
        extra = ["--init", tmp_path / "nowhere.safetensors"]
    elif case == "bad-init":
        (tmp_path / "not.safetensors").write_text("not weights")
        extra = ["--init", tmp_path / "not.safetensors"]
    else:
        extra = ["--recipe" if case == "unknown-recipe" else "--model", "nope"]
    result = run("train", data, "-o", out, *TINY, *extra)
    assert_one_error(result, code, fragment)
    if case == "output-is-a-file":
        assert out.read_text() == "notes"
    else:
        assert not out.exists()


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04" + bytes(200)])
def test_train_corrupt_checkpoint_is_one_line(run, tmp_path, dataset, content):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(content)
    result = run("train", dataset, "-o", out, *TINY)
    assert_one_error(result, 1, "checkpoint.pt", "move it away")
    assert (out / "checkpoint.pt").read_bytes() == content


def test_train_resumes_and_its_best_weights_harmonize(run, tmp_path, dataset):
    out = tmp_path / "run"
    first = run("train", dataset, "-o", out, *TINY)
    assert first.code == 0, first.err
    assert f"best weights: {out / 'best.safetensors'}" in first.err
    second = run("train", dataset, "-o", out, *TINY[2:], "--max-steps", "3")
    assert second.code == 0, second.err
    assert f"resuming from step 2 ({out / 'checkpoint.pt'})" in second.err_lines[0]
    assert "stopped at step 3" in second.err

    photo = sorted((dataset / "composites").glob("retouch_fg_*"))[0]
    mask = dataset / "masks" / photo.name
    result = run("harmonize", photo, "--mask", mask, "-o", tmp_path / "h.png", "--weights", out / "best.safetensors",
                 "--device", "cpu")
    assert result.code == 0, result.err
    assert (tmp_path / "h.png").is_file()


def test_train_without_validation_names_the_weights_it_wrote(run, tmp_path):
    from harmcli.data.composites import make_composites

    src = write_source(tmp_path / "src", np.random.default_rng(2), count=3, size=(32, 32))
    make_composites(src, tmp_path / "data", modes=("retouch",), val_fraction=0.0)
    out = tmp_path / "run"
    result = run("train", tmp_path / "data", "-o", out, *TINY)
    assert result.code == 0, result.err
    assert not (out / "best.safetensors").exists()
    assert f"weights: {out / 'last.safetensors'} (no validation samples" in result.err
    assert (out / "last.safetensors").is_file()


def test_help_gives_every_option_a_text():
    import typer

    from harmcli.cli.app import _register_commands, app

    _register_commands()
    group = typer.main.get_command(app)
    for name in ("make-composites", "train"):
        for param in group.commands[name].params:
            if param.param_type_name == "option":
                assert param.help, (name, param.name)


def test_train_cross_domain_from_the_command_line_and_eval_by_kind(run, tmp_path, dataset):
    from tests.train.fake_render import write_fake_render

    render = write_fake_render(tmp_path / "render", scenes=3, size=64)
    out = tmp_path / "run"
    args = ["--max-steps", "2", "--size", "64", "--batch-size", "4", "--no-pretrained", "--threads", "1", "--val-every", "2"]
    result = run("train", dataset, render, "-o", out, *args, "--cross-domain", "--rendered-fraction", "0.5", "--ema", "0.9",
                 "--val-limit", "0", "--lambda-style-photo", "0.02")
    assert result.code == 0, result.err
    assert "rendered 6, val_rendered 3" in result.err and "rendered val fMSE" in result.err
    import json

    config = json.loads((out / "config.json").read_text())
    assert config["cross_domain"] is True and config["ema_decay"] == 0.9 and config["lambda_style_photo"] == 0.02
    # The weights work in eval, and eval scores one kind of mismatch at a time.
    result = run("eval", dataset, "-m", "harmcli,identity", "--weights", out / "best.safetensors", "--kind", "retouch",
                 "--device", "cpu", "-q")
    assert result.code == 0, result.err and "identity" in result.out
    result = run("eval", render, "-m", "identity", "--kind", "rendered", "-q")
    assert result.code == 0, result.err
    assert "3 images" in result.out
    assert_one_error(run("eval", dataset, "-m", "identity", "--kind", "transfer"), 1, "kinds here: retouch")


def test_train_cross_domain_without_renders_is_refused(run, tmp_path, dataset):
    result = run("train", dataset, "-o", tmp_path / "run", *TINY, "--cross-domain")
    assert_one_error(result, 1, "--cross-domain needs rendered pairs")
    assert not (tmp_path / "run").exists()
