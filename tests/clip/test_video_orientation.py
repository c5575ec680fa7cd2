"""Videos with a display matrix (a phone's portrait clip is stored landscape plus "turn a quarter"): frames are
read upright, masks and foregrounds line up with the picture as shown, and the output is written upright."""

from __future__ import annotations

import numpy as np
import pytest

from harmcli.io.video import Orientation, VideoReader, probe
from tests.cli import assert_one_error, identity_weights, run  # noqa: F401 (fixtures)

from . import jittery_weights, make_clip, write_video  # noqa: F401


def _shown(stored: np.ndarray, degrees: int, hflip: bool, vflip: bool) -> np.ndarray:
    """The picture a player shows, as PyAV documents set_display_rotation: turned ``degrees`` counter-clockwise,
    then mirrored (hflip left-right, vflip top-bottom)."""
    shown = np.rot90(stored, degrees // 90)
    if hflip:
        shown = shown[:, ::-1]
    if vflip:
        shown = shown[::-1]
    return shown


@pytest.mark.parametrize("degrees", [0, 90, 180, -90])
@pytest.mark.parametrize("flips", [(False, False), (True, False), (False, True)])
def test_every_quarter_turn_and_flip_is_read_as_shown(tmp_path, degrees, flips):
    rng = np.random.default_rng(180 + degrees + 7 * flips[0] + 13 * flips[1])
    stored = [rng.integers(0, 256, (6, 10, 3), dtype=np.uint8) for _ in range(2)]  # no symmetry to hide a mistake
    path = write_video(tmp_path / "turned.mkv", stored, display_rotation=(degrees, *flips))
    info = probe(path)
    expected = [_shown(s, degrees, *flips) for s in stored]
    assert (info.height, info.width) == expected[0].shape[:2]
    frames = [frame for frame, _ in VideoReader(path)]
    assert len(frames) == 2
    for got, want in zip(frames, expected):
        assert np.array_equal(got, want)


def test_an_untagged_video_is_left_as_stored(tmp_path):
    comps, _, _ = make_clip(2)
    path = write_video(tmp_path / "plain.mkv", comps)
    assert probe(path).orientation == Orientation()
    assert all(np.array_equal(got, src) for (got, _), src in zip(VideoReader(path), comps))


def test_display_matrix_between_quarter_turns_rounds_to_the_nearest():
    angle = np.radians(80)  # counter-clockwise, as FFmpeg's av_display_rotation_set writes it
    one = 1 << 16
    matrix = [np.cos(angle) * one, -np.sin(angle) * one, 0, np.sin(angle) * one, np.cos(angle) * one, 0, 0, 0, 1 << 30]
    assert Orientation.from_display_matrix(matrix) == Orientation(1, False)
    assert Orientation.from_display_matrix([0] * 9) == Orientation()  # a broken matrix: left as stored


def test_a_portrait_phone_clip_lines_up_with_an_upright_mask_and_comes_out_upright(run, tmp_path, jittery_weights):
    comps, _, masks = make_clip(6)  # the scene as it is shown: 48 x 64
    # The phone stores each frame turned a quarter clockwise and asks for a quarter counter-clockwise on display.
    stored = [np.ascontiguousarray(np.rot90(c, -1)) for c in comps]
    clip = write_video(tmp_path / "phone.mkv", stored, display_rotation=(90, False, False))
    mask = write_video(tmp_path / "mask.mkv", masks)  # drawn on the upright picture
    out = tmp_path / "out.mkv"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "ffv1", "--weights", jittery_weights)
    assert result.code == 0, result.err
    info = probe(out)
    assert info.orientation == Orientation() and (info.height, info.width) == comps[0].shape[:2]
    for (got, _), src, m in zip(VideoReader(out), comps, masks):
        assert np.array_equal(got[m == 0], src[m == 0])  # the background, upright and untouched
        assert np.abs(got[m == 255].astype(int) - src[m == 255]).mean() > 2  # the subject under the mask adjusted


def test_a_mask_drawn_on_the_stored_sideways_frames_gets_a_hint(run, tmp_path, identity_weights):
    comps, _, masks = make_clip(3)
    stored = [np.ascontiguousarray(np.rot90(c, -1)) for c in comps]
    clip = write_video(tmp_path / "phone.mkv", stored, display_rotation=(90, False, False))
    sideways = write_video(tmp_path / "mask.mkv", [np.ascontiguousarray(np.rot90(m, -1)) for m in masks])
    result = run("harmonize", clip, "-m", sideways, "-o", tmp_path / "out.mkv", "--weights", identity_weights)
    assert_one_error(result, 1, "must be the same size", "read upright", "phone.mkv")
    assert not (tmp_path / "out.mkv").exists()
