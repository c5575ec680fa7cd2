"""``--at`` / ``--scale`` for clips: a foreground clip of another size placed on its background, frame by frame.

With the identity network every output frame is the background frame with that frame's cutout pasted, built here
by hand (the cutouts and the expected composite come from the still-image tests' helpers) and compared through
lossless FFV1 or PNG frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli import assert_one_error, files_in, identity_weights, read_image, run, write_image  # noqa: F401
from tests.cli.test_placement import make_cutout, pasted

from . import HEIGHT, WIDTH, make_clip, read_video, write_video

FRAMES = 6


def cutouts(height: int = 20, width: int = 16, n: int = FRAMES) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rgb, alpha) uint8 per frame: each frame its own colours, the soft ellipse of alpha."""
    return [make_cutout(height, width, seed=t) for t in range(n)]


def backgrounds(n: int = FRAMES) -> list[np.ndarray]:
    """A drifting 64x48 gradient, as the other clip tests' background."""
    return make_clip(n)[1]


def rgba_folder(folder: Path, frames) -> Path:
    """An RGBA PNG sequence cut_0001.png ... of ``frames``."""
    for t, (rgb, alpha) in enumerate(frames):
        write_image(folder / f"cut_{t + 1:04d}.png", rgb, alpha)
    return folder


def test_rgba_frame_folder_over_a_background_video(run, tmp_path, identity_weights):
    """An RGBA PNG sequence of 16x20 cutouts at (10, 5) of a 64x48 FFV1 video: every frame exactly the hand-made
    composite, the clip at the background video's size and rate."""
    cuts, plates = cutouts(), backgrounds()
    fg = rgba_folder(tmp_path / "cutout", cuts)
    plate = write_video(tmp_path / "plate.mkv", plates)
    out = tmp_path / "out.mkv"
    result = run("harmonize", fg, plate, "--sequence", "-o", out, "--codec", "ffv1", "--weights", identity_weights,
                 "--at", "10,5")
    assert result.code == 0, result.err
    frames, rate, *_ = read_video(out)
    assert len(frames) == FRAMES and rate == 12
    for got, bg, (rgb, alpha) in zip(frames, plates, cuts):
        assert got.shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(got, pasted(bg, rgb, alpha, 10, 5))
    assert not np.array_equal(frames[0], plates[0])  # the cutout is there


def test_overhanging_cutout_with_a_mask_video_over_a_still_plate_into_frames(run, tmp_path, identity_weights):
    """FG video + mask video of the foreground's size, hanging over the bottom-left corner of a still plate, into
    a folder of PNG frames; a uint8 mask that is only moved stays exact."""
    cuts, plate_rgb = cutouts(), backgrounds(1)[0]
    fg = write_video(tmp_path / "fg.mkv", [rgb for rgb, _ in cuts])
    mask = write_video(tmp_path / "mask.mkv", [alpha for _, alpha in cuts])
    plate = write_image(tmp_path / "plate.png", plate_rgb)
    out = tmp_path / "frames"
    result = run("harmonize", fg, plate, mask, "-o", out, "--weights", identity_weights, "--at", "-6,35")
    assert result.code == 0, result.err
    assert files_in(out) == [f"{t + 1:06d}.png" for t in range(FRAMES)]
    for t, (rgb, alpha) in enumerate(cuts):
        np.testing.assert_array_equal(read_image(out / f"{t + 1:06d}.png"), pasted(plate_rgb, rgb, alpha, -6, 35))


@pytest.mark.parametrize("codec", ["ffv1", "png"])
def test_rgba_video_centred_at_half_size(run, tmp_path, identity_weights, codec):
    """An RGBA video (FFV1 .mkv, PNG-in-MOV) at --at center --scale 0.5: the 8x10 half-size cutout at
    ((64-8)/2, (48-10)/2) = (28, 19), premultiplied area averaging as for stills, the rest of the plate untouched,
    and each frame the same as the still-image path gives for that frame."""
    cuts, plates = cutouts(), backgrounds()
    suffix = ".mkv" if codec == "ffv1" else ".mov"
    fg = write_video(tmp_path / f"fg{suffix}", [np.dstack([rgb, alpha]) for rgb, alpha in cuts], codec=codec)
    plate = write_video(tmp_path / "plate.mkv", plates)
    out = tmp_path / "out.mkv"
    result = run("harmonize", fg, plate, "-o", out, "--codec", "ffv1", "--weights", identity_weights,
                 "--at", "center", "--scale", "0.5")
    assert result.code == 0, result.err
    frames, *_ = read_video(out)
    assert len(frames) == FRAMES
    box = (slice(19, 29), slice(28, 36))
    outside = np.ones((HEIGHT, WIDTH), bool)
    outside[box] = False
    for got, bg, (rgb, alpha) in zip(frames, plates, cuts):
        a = alpha.astype(np.float64)[..., None] / 255
        premultiplied = (a * rgb).reshape(10, 2, 8, 2, 3).mean(axis=(1, 3))
        weight = a.reshape(10, 2, 8, 2).mean(axis=(1, 3))[..., None]
        expected = premultiplied + (1 - weight) * bg[box].astype(np.float64)
        assert np.abs(got[box].astype(np.float64) - expected).max() <= 1.0  # the halved cutout is rounded once
        np.testing.assert_array_equal(got[outside], bg[outside])
        assert not np.array_equal(got[box], bg[box])
    # One implementation: frame 3 through the still-image path, bit for bit.
    rgb, alpha = cuts[3]
    still = tmp_path / "still.png"
    cut3, bg3 = write_image(tmp_path / "cut3.png", rgb, alpha), write_image(tmp_path / "bg3.png", plates[3])
    result = run("harmonize", cut3, bg3, "-o", still, "--weights", identity_weights, "--at", "center", "--scale", "0.5")
    assert result.code == 0, result.err
    np.testing.assert_array_equal(frames[3], read_image(still))


def test_output_size_is_the_backgrounds_for_the_codec_check(run, tmp_path, identity_weights):
    """An even-sized cutout over an odd-sized plate: h264 (4:2:0) is refused for the plate's 63x47, before any
    frame is read."""
    cuts = cutouts()
    fg = write_video(tmp_path / "fg.mkv", [np.dstack([rgb, alpha]) for rgb, alpha in cuts])
    plate = write_image(tmp_path / "plate.png", backgrounds(1)[0][:47, :63])
    result = run("harmonize", fg, plate, "-o", tmp_path / "o.mp4", "--weights", identity_weights, "--at", "0,0")
    assert_one_error(result, 2, "63x47", "--codec ffv1")
    assert not (tmp_path / "o.mp4").exists()


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("x, y", [(64, 0), (0, 48), (-16, 0), (-1000, 5000)])
def test_entirely_outside_is_an_input_error_before_decoding(run, tmp_path, identity_weights, x, y):
    cuts = cutouts()
    fg = write_video(tmp_path / "fg.mkv", [np.dstack([rgb, alpha]) for rgb, alpha in cuts])
    plate = write_video(tmp_path / "plate.mkv", backgrounds())
    out = tmp_path / "out.mkv"
    result = run("harmonize", fg, plate, "-o", out, "--codec", "ffv1", "--weights", identity_weights,
                 "--at", f"{x},{y}")
    assert_one_error(result, 1, "fg.mkv", "16x20 foreground", f"{x},{y}", "entirely outside", "64x48", "plate.mkv")
    assert files_in(tmp_path) == ["fg.mkv", "plate.mkv"]


def test_entirely_outside_in_a_frame_folder_is_found_on_reading(run, tmp_path, identity_weights):
    """A frame folder's size is known only when its frames are read: the first frame fails, nothing is written."""
    fg = rgba_folder(tmp_path / "cutout", cutouts())
    plate = write_video(tmp_path / "plate.mkv", backgrounds())
    for out, codec in ((tmp_path / "out.mkv", ("--codec", "ffv1")), (tmp_path / "frames", ())):
        result = run("harmonize", fg, plate, "--sequence", "-o", out, *codec, "--weights", identity_weights,
                     "--at", "70,0")
        assert_one_error(result, 1, "cut_0001.png", "entirely outside", "64x48", "70,0")
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cutout", "plate.mkv"]


@pytest.mark.parametrize("scale, fragment", [("0.01", "less than one pixel"), ("1000", "more than --max-pixels")])
def test_scale_out_of_range_is_an_input_error(run, tmp_path, identity_weights, scale, fragment):
    fg = write_video(tmp_path / "fg.mkv", [np.dstack([rgb, alpha]) for rgb, alpha in cutouts()])
    plate = write_video(tmp_path / "plate.mkv", backgrounds())
    result = run("harmonize", fg, plate, "-o", tmp_path / "out.mkv", "--codec", "ffv1", "--weights", identity_weights,
                 "--at", "center", "--scale", scale, "--max-pixels", "100000")
    assert_one_error(result, 1, "fg.mkv", "--scale", fragment)
    assert files_in(tmp_path) == ["fg.mkv", "plate.mkv"]


def test_foreground_and_mask_of_different_sizes(run, tmp_path, identity_weights):
    """The mask goes with the foreground, so it must have the foreground's size (a mask drawn on the background
    is refused): videos before decoding, a frame folder when its frames are read."""
    cuts, plates = cutouts(), backgrounds()
    fg = write_video(tmp_path / "fg.mkv", [rgb for rgb, _ in cuts])
    plate = write_video(tmp_path / "plate.mkv", plates)
    big_mask = write_video(tmp_path / "mask.mkv", [np.zeros((HEIGHT, WIDTH), np.uint8)] * FRAMES)
    out = tmp_path / "out.mkv"
    result = run("harmonize", fg, plate, big_mask, "-o", out, "--codec", "ffv1", "--weights", identity_weights,
                 "--at", "0,0")
    assert_one_error(result, 1, "mask.mkv", "64x48", "16x20", "the mask must have the foreground's size")
    assert not out.exists()

    for t, (_, alpha) in enumerate(cuts):
        write_image(tmp_path / "masks" / f"m{t:03d}.png", alpha[:18])  # two rows short
    result = run("harmonize", fg, plate, tmp_path / "masks", "--sequence", "-o", out, "--codec", "ffv1",
                 "--weights", identity_weights, "--at", "0,0")
    assert_one_error(result, 1, "m000.png", "16x18", "16x20", "the mask must have the foreground's size")
    assert not out.exists()


def test_without_at_the_sizes_must_still_match(run, tmp_path, identity_weights):
    fg = write_video(tmp_path / "fg.mkv", [np.dstack([rgb, alpha]) for rgb, alpha in cutouts()])
    plate = write_video(tmp_path / "plate.mkv", backgrounds())
    result = run("harmonize", fg, plate, "-o", tmp_path / "out.mkv", "--codec", "ffv1", "--weights", identity_weights)
    assert_one_error(result, 1, "plate.mkv", "64x48", "16x20", "they must be the same size, or pass --at X,Y")
    assert not (tmp_path / "out.mkv").exists()


def test_at_with_a_composite_clip_is_a_usage_error(run, tmp_path, identity_weights):
    comps, _, masks = make_clip(FRAMES)
    clip, mask = write_video(tmp_path / "clip.mkv", comps), write_video(tmp_path / "mask.mkv", masks)
    result = run("harmonize", clip, "--mask", mask, "-o", tmp_path / "o.mkv", "--weights", identity_weights,
                 "--at", "0,0")
    assert_one_error(result, 2, "--at", "COMPOSITE")
