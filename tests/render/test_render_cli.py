"""``harmcli render`` on the command line: usage errors, the missing-extra message, a tiny real run."""

import importlib.util
import json

import pytest

HAS_BPY = importlib.util.find_spec("bpy") is not None


def run(capsys, *args):
    from harmcli.cli.app import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (0 if info.value.code is None else int(info.value.code)), out, err


def test_unknown_style_is_a_usage_error_before_anything_is_written(capsys, tmp_path):
    code, _, err = run(capsys, "render", "-o", tmp_path / "rd", "--styles", "clear_noon,foggy")
    assert code == 2 and "foggy" in err and "clear_noon" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "rd").exists()


def test_bad_device_and_sheet_are_usage_errors(capsys, tmp_path):
    code, _, err = run(capsys, "render", "-o", tmp_path / "rd", "--device", "gpu")
    assert code == 2 and "--device" in err
    code, _, err = run(capsys, "render", "-o", tmp_path / "rd", "--sheet", tmp_path / "s.jpg")
    assert code == 2 and ".png" in err
    assert not (tmp_path / "rd").exists()


def test_split_without_such_scenes_or_unknown_is_a_usage_error(capsys, tmp_path):
    # scene00000..00007 all fall in the train split at the default --val-fraction 0.1 (scene00008 is the first held out)
    code, _, err = run(capsys, "render", "-o", tmp_path / "rd", "--scenes", "8", "--split", "val")
    assert code == 2 and "none of the 8 scene(s) is in the val split" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "render", "-o", tmp_path / "rd", "--split", "test")
    assert code == 2 and "--split must be all, train or val" in err
    assert not (tmp_path / "rd").exists()


@pytest.mark.skipif(HAS_BPY, reason="bpy is installed here")
def test_missing_bpy_is_one_line_naming_the_extra(capsys, tmp_path):
    code, out, err = run(capsys, "render", "-o", tmp_path / "rd", "--scenes", "1")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "bpy" in lines[0] and "pip install bpy==5.0.1" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "rd").exists()


@pytest.mark.skipif(not HAS_BPY, reason="needs Blender's bpy (the render extra)")
def test_render_command_writes_pairs_a_sheet_and_resumes(capsys, tmp_path):
    out = tmp_path / "rd"
    args = ("render", "-o", out, "--scenes", "1", "--size", "32", "--samples", "1", "--styles", "clear_noon,night",
            "--sheet", tmp_path / "sheet.png", "--seed", "7")
    code, stdout, err = run(capsys, *args)
    assert code == 0 and stdout == ""
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert f"rendered 1 scene(s), skipped 0" in err and f"{len(rows)} pairs" in err
    assert (tmp_path / "sheet.png").is_file()
    assert {r["style_bg"] for r in rows} == {"clear_noon", "night"}
    code, _, err = run(capsys, *args)
    assert code == 0 and "rendered 0 scene(s), skipped 1" in err
    code, _, err = run(capsys, "render", "-o", out, "--scenes", "1", "--size", "48", "--styles", "clear_noon,night", "--seed", "7")
    assert code == 2 and "size 32 -> 48" in err
