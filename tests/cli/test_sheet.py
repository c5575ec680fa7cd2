"""``harmcli harmonize ... --sheet FILE``: the before/after contact sheet (layout, tiles, captions, pages, refusals)."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from harmcli.batch import sheet as sheet_module
from harmcli.batch.sheet import CAPTION, MAX_TILE_WIDTH, PAD, PLACEHOLDER_FILL, PLACEHOLDER_WIDTH, ROW_HEIGHT, TILE_HEIGHT
from harmcli.ops.drawing import OUTLINE_COLOUR

from . import (  # noqa: F401  (fixtures)
    HALF,
    HEIGHT,
    IDENTITY,
    LIFT,
    WIDTH,
    active_weights,
    assert_one_error,
    files_in,
    make_scene,
    read_image,
    run,
    write_image,
    write_params,
    write_scene,
)

# The rule for a 64 x 48 item: 256 px tall, the aspect ratio kept.
TILE_WIDTH = round(WIDTH * TILE_HEIGHT / HEIGHT)
assert TILE_WIDTH == 341 and TILE_WIDTH <= MAX_TILE_WIDTH


@pytest.fixture
def params_file(tmp_path):
    return write_params(tmp_path / "edit.json", {"red": HALF, "green": LIFT, "blue": IDENTITY})


@pytest.fixture
def captions(monkeypatch):
    """Every line of text drawn on a sheet, in drawing order."""
    from harmcli.ops import drawing

    seen: list[str] = []
    original = drawing.put_text

    def spy(canvas, text, *args, **kwargs):
        seen.append(text)
        return original(canvas, text, *args, **kwargs)

    monkeypatch.setattr(drawing, "put_text", spy)
    return seen


def make_composites(root, stems=("a", "b", "c")):
    """comps/STEM.png (pasted composites) and masks/STEM.png; returns (comps, masks, scenes)."""
    scenes = {}
    for i, stem in enumerate(stems):
        scene = make_scene(seed=60 + i)
        write_image(root / "comps" / f"{stem}.png", scene.composite())
        write_image(root / "masks" / f"{stem}.png", scene.mask)
        scenes[stem] = scene
    return root / "comps", root / "masks", scenes


def thumb(image: np.ndarray) -> np.ndarray:
    """The expected tile, made here with OpenCV: 48 px enlarged to 256 (bilinear), 16-bit rounded to 8 after."""
    small = cv2.resize(image, (TILE_WIDTH, TILE_HEIGHT), interpolation=cv2.INTER_LINEAR)
    return np.rint(small / 257.0).astype(np.uint8) if small.dtype == np.uint16 else small


def tiles(picture: np.ndarray, row: int) -> tuple[np.ndarray, np.ndarray]:
    """The before and after tiles of ``row`` on a page."""
    top = PAD + row * ROW_HEIGHT + CAPTION
    before = picture[top : top + TILE_HEIGHT, PAD : PAD + TILE_WIDTH]
    after = picture[top : top + TILE_HEIGHT, 2 * PAD + TILE_WIDTH : 2 * PAD + 2 * TILE_WIDTH]
    return before, after


def page_shape(rows: int) -> tuple[int, int, int]:
    return (PAD + rows * ROW_HEIGHT, PAD + TILE_WIDTH + PAD + TILE_WIDTH + PAD, 3)


def assert_before_tile(tile: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> None:
    """The composite's thumbnail, except for a one-pixel outline in the outline colour along the mask's edge."""
    expected = thumb(composite)
    differs = np.any(tile != expected, axis=2)
    assert differs.sum() > 300  # an ellipse about 190 x 160 px across at this size: its outline is there
    assert (tile[differs] == OUTLINE_COLOUR).all()
    small = cv2.resize(mask.astype(np.float32) / np.iinfo(mask.dtype).max, (TILE_WIDTH, TILE_HEIGHT), interpolation=cv2.INTER_LINEAR)
    inside = (small > 0.5).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    edge = cv2.dilate(inside, kernel) != cv2.erode(inside, kernel)
    assert edge[differs].all()  # only on the edge


def mean_change(out: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> float:
    w = mask.astype(np.float64) / np.iinfo(mask.dtype).max
    diff = np.abs(out.astype(np.float64) - composite.astype(np.float64)).sum(axis=2)
    scale = 257.0 if out.dtype == np.uint16 else 1.0
    return float((diff * w).sum() / (3 * w.sum() * scale))


def caption_change(captions: list[str], name: str) -> float:
    line = next(c for c in captions if c.startswith(f"{name} "))
    found = re.search(r"mean change in mask: ([0-9.]+) levels", line)
    assert found, line
    return float(found[1])


# ------------------------------------------------------------------------------------------- the sheet


def test_folder_sheet_rows_tiles_and_captions(run, tmp_path, params_file, captions):
    comps, masks, scenes = make_composites(tmp_path)
    out, sheet = tmp_path / "out", tmp_path / "sheet.png"
    result = run("harmonize", comps, "--mask", masks, "-o", out, "--params", params_file, "--sheet", sheet)
    assert result.code == 0, result.err
    assert files_in(out) == ["a.png", "b.png", "c.png"]  # the sheet goes where it is told, not among the outputs
    picture = read_image(sheet)
    assert picture.shape == page_shape(3) == (852, 700, 3)
    for row, stem in enumerate("abc"):
        scene = scenes[stem]
        output = read_image(out / f"{stem}.png")
        before, after = tiles(picture, row)
        assert np.abs(after.astype(int) - thumb(output).astype(int)).max() <= 1
        assert_before_tile(before, scene.composite(), scene.mask)
        expected = mean_change(output, scene.composite(), scene.mask)
        assert expected > 5 and caption_change(captions, f"{stem}.png") == pytest.approx(expected, abs=0.051)
    # the rows are in the items' order, whatever order the threads finished them in
    assert [c.split()[0] for c in captions] == ["a.png", "b.png", "c.png"]
    assert result.err_lines[-1] == f"contact sheet: {sheet}"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary file left


def test_failed_and_skipped_items_get_placeholders(run, tmp_path, params_file, captions):
    comps, masks, scenes = make_composites(tmp_path)
    out = tmp_path / "out"
    assert run("harmonize", comps, "--mask", masks, "-o", out, "--params", params_file, "-q").code == 0
    (out / "a.png").unlink()
    (out / "b.png").unlink()
    (comps / "b.png").write_bytes((comps / "b.png").read_bytes()[:200])  # truncated: b fails; c's output exists
    sheet = tmp_path / "sheet.png"
    result = run("harmonize", comps, "--mask", masks, "-o", out, "--params", params_file, "--skip-existing", "--sheet", sheet)
    assert result.code == 1
    assert any("1 done, 1 skipped, 1 failed" in line for line in result.err_lines)
    picture = read_image(sheet)
    assert picture.shape == page_shape(3)  # two tiles are wider than a placeholder
    before, after = tiles(picture, 0)
    assert np.abs(after.astype(int) - thumb(read_image(out / "a.png")).astype(int)).max() <= 1
    assert_before_tile(before, scenes["a"].composite(), scenes["a"].mask)
    for row in (1, 2):
        top = PAD + row * ROW_HEIGHT + CAPTION
        box = picture[top : top + TILE_HEIGHT, PAD : PAD + PLACEHOLDER_WIDTH]
        assert (box == PLACEHOLDER_FILL).all(axis=2).mean() > 0.9  # the placeholder, with a little text on it
        beside = picture[top : top + TILE_HEIGHT, PAD + PLACEHOLDER_WIDTH + PAD :]
        assert (beside == sheet_module.CANVAS).all()  # and nothing else in that row
    b_caption = next(c for c in captions if c.startswith("b.png "))
    assert "failed:" in b_caption and "truncated" in b_caption
    c_caption = next(c for c in captions if c.startswith("c.png "))
    assert "skipped:" in c_caption and "--skip-existing" in c_caption
    assert "FAILED" in captions and "SKIPPED" in captions


def test_pages_when_rows_exceed_the_limit(run, tmp_path, params_file, monkeypatch):
    monkeypatch.setattr(sheet_module, "ROWS_PER_PAGE", 2)
    comps, masks, scenes = make_composites(tmp_path)
    out, sheet = tmp_path / "out", tmp_path / "sheets" / "run.png"
    result = run("harmonize", comps, "--mask", masks, "-o", out, "--params", params_file, "--sheet", sheet)
    assert result.code == 0, result.err
    assert files_in(tmp_path / "sheets") == ["run-001.png", "run-002.png"]
    first, second = read_image(sheet.with_name("run-001.png")), read_image(sheet.with_name("run-002.png"))
    assert first.shape == page_shape(2) and second.shape == page_shape(1)
    _, after = tiles(second, 0)  # the third item heads the second page
    assert np.abs(after.astype(int) - thumb(read_image(out / "c.png")).astype(int)).max() <= 1
    _, after = tiles(first, 1)
    assert np.abs(after.astype(int) - thumb(read_image(out / "b.png")).astype(int)).max() <= 1
    assert f"{sheet.with_name('run-001.png')}, {sheet.with_name('run-002.png')}" in result.err_lines[-1]
    assert "2 pages" in result.err_lines[-1]


def test_existing_sheet_is_refused_kept_or_replaced(run, tmp_path, params_file):
    comps, masks, _ = make_composites(tmp_path)
    out, sheet = tmp_path / "out", tmp_path / "sheet.jpg"
    sheet.write_bytes(b"precious")
    args = ("harmonize", comps, "--mask", masks, "-o", out, "--params", params_file, "--sheet", sheet)
    assert_one_error(run(*args), 1, "sheet.jpg", "already exists", "--overwrite")
    assert sheet.read_bytes() == b"precious" and files_in(out) == []  # nothing written, not even the outputs
    kept = run(*args, "--skip-existing")
    assert kept.code == 0 and any("no contact sheet written" in line for line in kept.err_lines)
    assert sheet.read_bytes() == b"precious" and files_in(out) == ["a.png", "b.png", "c.png"]
    replaced = run(*args, "--overwrite")
    assert replaced.code == 0, replaced.err
    assert read_image(sheet).shape == page_shape(3)  # a JPEG now, the sheet's size


def test_sheet_refusals(run, tmp_path, params_file):
    from tests.clip import make_clip, write_video

    comps, masks, _ = make_composites(tmp_path)
    out = tmp_path / "out"
    base = ("harmonize", comps, "--mask", masks, "-o", out, "--params", params_file, "--sheet")
    assert_one_error(run(*base, tmp_path / "sheet.gif"), 2, "--sheet must end in .jpg or .png")
    before = (comps / "a.png").read_bytes()
    assert_one_error(run(*base, comps / "a.png", "--overwrite"), 1, "input")  # an input, even with --overwrite
    assert (comps / "a.png").read_bytes() == before
    assert_one_error(run(*base, masks / "sheet.png"), 1, "mask input folder")  # would be read as a mask next time
    assert_one_error(run(*base, out / "b.png"), 1, "output has this name")
    assert files_in(out) == [] and files_in(masks) == ["a.png", "b.png", "c.png"]
    # clips: no sheet
    composites, _, clip_masks = make_clip(4)
    clip, mask = write_video(tmp_path / "c.mkv", composites), write_video(tmp_path / "m.mkv", clip_masks)
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / "o.mkv", "--params", params_file, "--sheet", tmp_path / "s.jpg")
    assert_one_error(result, 2, "--sheet", "video")
    assert not (tmp_path / "o.mkv").exists() and not (tmp_path / "s.jpg").exists()


def test_single_16_bit_fg_bg_with_the_network(run, tmp_path, active_weights, captions):
    scene = make_scene(np.uint16, seed=70)
    fg, bg, mask = write_scene(tmp_path, scene, ext=".tif")
    out, sheet = tmp_path / "out.tif", tmp_path / "sheet.png"
    result = run("harmonize", fg, bg, mask, "-o", out, "--weights", active_weights, "--sheet", sheet)
    assert result.code == 0, result.err
    output = read_image(out)
    assert output.dtype == np.uint16
    picture = read_image(sheet)
    assert picture.dtype == np.uint8 and picture.shape == page_shape(1)  # shown at 8 bits
    before, after = tiles(picture, 0)
    assert np.abs(after.astype(int) - thumb(output).astype(int)).max() <= 1
    expected_before = thumb(scene.composite())
    outline = np.any(before != expected_before, axis=2)
    assert (before[outline] == OUTLINE_COLOUR).all() and outline.sum() > 300
    expected = mean_change(output, scene.composite(), scene.mask)
    assert expected > 1 and caption_change(captions, "out.tif") == pytest.approx(expected, abs=0.051)


def test_psd_layers_above_the_subject_are_on_both_tiles(run, tmp_path, params_file):
    from ..io.psdmake import Layer
    from .test_psd_cli import layered

    label = np.dstack([np.full((6, 20, 3), 240, np.uint8), np.full((6, 20), 255, np.uint8)])
    path, *_ = layered(tmp_path, above=[Layer("Title", label, left=2, top=2)])
    out, sheet = tmp_path / "out.png", tmp_path / "sheet.png"
    result = run("harmonize", path, "--layer", "Subject", "-o", out, "--params", params_file, "--sheet", sheet)
    assert result.code == 0, result.err
    untouched = tmp_path / "untouched.png"  # the document as it was: the same layers, the adjustment off
    assert run("harmonize", path, "--layer", "Subject", "-o", untouched, "--params", params_file, "--strength", 0).code == 0
    before, after = tiles(read_image(sheet), 0)
    assert np.abs(after.astype(int) - thumb(read_image(out)).astype(int)).max() <= 1
    expected = thumb(read_image(untouched)).astype(int)
    same = np.all(before == expected, axis=2)
    outline = np.all(before == OUTLINE_COLOUR, axis=2)
    assert (same | outline).all()
    title = before[int(2.5 * TILE_HEIGHT / HEIGHT) : int(7.5 * TILE_HEIGHT / HEIGHT), 20:100]
    assert (title >= 238).all()  # the title layer is on the before tile too


def test_page_names():
    from pathlib import Path

    per_page = sheet_module.ROWS_PER_PAGE
    assert sheet_module.page_paths(Path("d/s.jpg"), per_page) == [Path("d/s.jpg")]
    assert sheet_module.page_paths(Path("d/s.jpg"), per_page + 1) == [Path("d/s-001.jpg"), Path("d/s-002.jpg")]
    many = sheet_module.page_paths(Path("s.png"), per_page * 1000 + 1)
    assert len(many) == 1001 and many[0] == Path("s-0001.png") and many[-1] == Path("s-1001.png")


def test_help_names_the_page_rule():
    import typer

    from harmcli.cli.app import app

    command = typer.main.get_command(app).commands["harmonize"]
    (option,) = [p for p in command.params if p.name == "sheet"]
    assert f"over {sheet_module.ROWS_PER_PAGE} rows" in option.help and "FILE-001.jpg" in option.help
