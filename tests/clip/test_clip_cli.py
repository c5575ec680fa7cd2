"""``harmcli harmonize`` on videos and --sequence folders: clips the tests generate (64x48, 12-24 frames)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from tests.cli import assert_one_error, files_in, identity_weights, read_image, run, write_image  # noqa: F401 (fixtures)

from . import jittery_weights, make_clip, mean_corrections, read_video, write_video  # noqa: F401


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    """A lossless 16-frame clip at 24000/1001 fps with its mask video."""
    folder = tmp_path_factory.mktemp("clip")
    comps, _, masks = make_clip(16)
    rate = Fraction(24000, 1001)
    return (write_video(folder / "clip.mkv", comps, rate=rate), write_video(folder / "mask.mkv", masks, rate=rate),
            comps, masks)


def test_lossless_video_keeps_frames_rate_size_and_background(run, tmp_path, clip_files, jittery_weights):
    clip, mask, comps, masks = clip_files
    out = tmp_path / "out.mkv"
    result = run("harmonize", clip, "--mask", mask, "-o", out, "--codec", "ffv1", "--weights", jittery_weights)
    assert result.code == 0, result.err
    assert "16 frames" in result.err and "flicker" in result.err
    frames, rate, _, _ = read_video(out)
    assert len(frames) == 16 and rate == Fraction(24000, 1001)
    assert frames[0].shape == comps[0].shape
    for got, comp, m in zip(frames, comps, masks):
        assert np.array_equal(got[m == 0], comp[m == 0])  # the background, bit for bit
        assert np.abs(got[m == 255].astype(int) - comp[m == 255]).mean() > 2  # the subject was adjusted
    assert files_in(tmp_path) == ["out.mkv"]


def test_smoothing_halves_flicker_and_follows_a_change_of_light(run, tmp_path, jittery_weights):
    comps, _, masks = make_clip(24, step_at=12, noise=2.0)
    clip, mask = write_video(tmp_path / "c.mkv", comps), write_video(tmp_path / "m.mkv", masks)
    measured = {}
    for temporal in ("0", "1"):
        out, report = tmp_path / f"out{temporal}.mkv", tmp_path / f"r{temporal}.json"
        result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "ffv1", "--weights", jittery_weights,
                     "--temporal", temporal, "--report", report)
        assert result.code == 0, result.err
        frames, *_ = read_video(out)
        measured[temporal] = (mean_corrections(frames, comps, masks), json.loads(report.read_text()))
    per_frame, smoothed = measured["0"][0], measured["1"][0]
    report = measured["1"][1]
    assert report["cuts"] == [12]  # the change of light is a new scene for the background histogram

    def flicker(values):  # full resolution, pairs across the change left out
        steps = np.abs(np.diff(values, axis=0)).mean(axis=1)
        return np.delete(steps, 11).mean()

    assert flicker(smoothed) <= 0.5 * flicker(per_frame)
    assert report["flicker_smoothed"] <= 0.5 * report["flicker_per_frame"]
    assert report["flicker_per_frame"] == pytest.approx(measured["0"][1]["flicker_smoothed"])
    assert report["background_flicker"] == 0.0
    # After the change the smoothed correction sits with the per-frame values after it, not before it.
    before, after = per_frame[:12].mean(axis=0), per_frame[12:].mean(axis=0)
    assert np.abs(after - before).mean() > 5
    for t in (12, 13, 14):
        assert np.abs(smoothed[t] - after).mean() < np.abs(smoothed[t] - before).mean(), t


def test_audio_is_copied_and_a_still_mask_works(run, tmp_path, identity_weights):
    comps, _, masks = make_clip(12)
    clip = write_video(tmp_path / "clip.mp4", comps, codec="h264", audio=True)
    mask = write_image(tmp_path / "mask.png", masks[5])
    out = tmp_path / "out.mp4"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights, "--crf", "12")
    assert result.code == 0, result.err
    frames, rate, _, audio = read_video(out)
    decoded, _, _, audio_in = read_video(clip)
    assert len(frames) == 12 and rate == 12 and audio == audio_in > 0
    # An identity network through a lossy codec: the decoded input comes back closely, with no colour shift
    # (the same YUV matrix both ways).
    diff = frames[6].astype(float) - decoded[6]
    assert np.abs(diff).mean() < 1.5 and np.all(np.abs(diff.mean(axis=(0, 1))) < 0.5)


@pytest.mark.parametrize("codec", ["png", "prores"])
def test_rgba_foreground_video_over_a_still_plate(run, tmp_path, jittery_weights, codec):
    """PNG-in-MOV (lossless) and ProRes 4444 (its alpha within a code value) cut-outs over one plate."""
    comps, bgs, masks = make_clip(12)
    fg = write_video(tmp_path / "fg.mov", [np.dstack([c, m]) for c, m in zip(comps, masks)], codec=codec)
    plate = write_image(tmp_path / "plate.png", bgs[0])
    out = tmp_path / "out.mkv"
    result = run("harmonize", fg, plate, "-o", out, "--codec", "ffv1", "--weights", jittery_weights)
    assert result.code == 0, result.err
    frames, *_ = read_video(out)
    assert len(frames) == 12
    outside = masks[3] == 0
    if codec == "png":
        assert np.array_equal(frames[3][outside], bgs[0][outside])
    else:  # where ProRes decodes an alpha of 1/255 instead of 0 the plate gets a trace of the subject
        assert np.abs(frames[3][outside].astype(int) - bgs[0][outside]).max() <= 2


def test_sequence_folders_in_and_out(run, tmp_path, jittery_weights):
    comps, _, masks = make_clip(12)
    for i, (c, m) in enumerate(zip(comps, masks)):
        write_image(tmp_path / "frames" / f"shot_{i + 1:04d}.png", c)
        write_image(tmp_path / "masks" / f"{i + 1:04d}.png", m)
    out = tmp_path / "out"
    result = run("harmonize", tmp_path / "frames", "-m", tmp_path / "masks", "--sequence", "-o", out,
                 "--weights", jittery_weights, "--report", tmp_path / "r.json")
    assert result.code == 0, result.err
    assert files_in(out) == [f"shot_{i + 1:04d}.png" for i in range(12)]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames"] == 12 and report["flicker_smoothed"] < report["flicker_per_frame"]
    again = ("harmonize", tmp_path / "frames", "-m", tmp_path / "masks", "--sequence", "-o", out, "--weights", jittery_weights)
    assert_one_error(run(*again), 1, "shot_0001.png", "already exists")
    assert run(*again, "--overwrite").code == 0
    assert files_in(out) == [f"shot_{i + 1:04d}.png" for i in range(12)]  # replaced, nothing left beside them
    # The same folders as a video at a given rate.
    result = run("harmonize", tmp_path / "frames", "-m", tmp_path / "masks", "--sequence", "-o", tmp_path / "o.mkv",
                 "--fps", "30000/1001", "--weights", jittery_weights, "--codec", "ffv1")
    assert result.code == 0, result.err
    frames, rate, *_ = read_video(tmp_path / "o.mkv")
    assert len(frames) == 12 and rate == Fraction(30000, 1001)


# ------------------------------------------------------------------------------------------- bad inputs


@pytest.fixture
def short_mask(tmp_path, clip_files):
    _, _, _, masks = clip_files
    return write_video(tmp_path / "short.mkv", masks[:12], rate=Fraction(24000, 1001))


def test_mismatched_frame_counts(run, tmp_path, clip_files, short_mask, identity_weights):
    clip = clip_files[0]
    result = run("harmonize", clip, "-m", short_mask, "-o", tmp_path / "o.mkv", "--weights", identity_weights)
    assert_one_error(result, 1, "short.mkv", "12 frames", "16")
    assert not (tmp_path / "o.mkv").exists() and files_in(tmp_path) == ["short.mkv"]


def test_mismatched_rates_and_sizes(run, tmp_path, clip_files, identity_weights):
    clip, _, comps, masks = clip_files
    other_rate = write_video(tmp_path / "m25.mkv", masks, rate=Fraction(25))
    result = run("harmonize", clip, "-m", other_rate, "-o", tmp_path / "o.mp4", "--weights", identity_weights)
    assert_one_error(result, 1, "25 fps", "24000/1001")
    small = write_video(tmp_path / "small.mkv", [m[:32, :32] for m in masks], rate=Fraction(24000, 1001))
    result = run("harmonize", clip, "-m", small, "-o", tmp_path / "o.mp4", "--weights", identity_weights)
    assert_one_error(result, 1, "32x32", "64x48")


def test_missing_mask_frame_in_a_folder(run, tmp_path, clip_files, identity_weights):
    clip, _, _, masks = clip_files
    for i, m in enumerate(masks):
        if i != 6:
            write_image(tmp_path / "masks" / f"{i + 1:04d}.png", m)
    result = run("harmonize", clip, "-m", tmp_path / "masks", "-o", tmp_path / "o.mp4", "--weights", identity_weights)
    assert_one_error(result, 1, "frame 7 is missing")
    write_image(tmp_path / "masks" / "0007.png", masks[6])
    (tmp_path / "masks" / "0016.png").unlink()  # now one frame short at the end
    result = run("harmonize", clip, "-m", tmp_path / "masks", "-o", tmp_path / "o.mp4", "--weights", identity_weights)
    assert_one_error(result, 1, "15 frames", "16")
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("target", ["o.mp4", "frames_out"])
def test_interrupt_leaves_no_output(run, tmp_path, clip_files, identity_weights, monkeypatch, target):
    import harmcli.clip.run as clip_run

    clip, mask, _, _ = clip_files
    real = clip_run._Writer.put
    calls = []

    def interrupted(self, item):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(self, item)

    monkeypatch.setattr(clip_run._Writer, "put", interrupted)
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / target, "--weights", identity_weights)
    assert result.code == 130
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--temporal", "1.5"], "--temporal"),
        (["--codec", "ffv1"], "ffv1 cannot go in a .mp4"),
        (["--codec", "h264rgb", "--crf", "20"], "--crf does not apply"),
        (["--codec", "mpeg2"], "--codec must be one of"),
        (["--save-params", "x.json"], "--save-params"),
        (["--fps", "25"], "--fps is for frame folders"),
    ],
)
def test_usage_errors(run, tmp_path, clip_files, identity_weights, extra, fragment):
    clip, mask, _, _ = clip_files
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / "o.mp4", "--weights", identity_weights, *extra)
    assert_one_error(result, 2, fragment)


def test_odd_frame_size_for_a_4_2_0_codec(run, tmp_path, clip_files, identity_weights):
    _, _, comps, masks = clip_files
    clip = write_video(tmp_path / "odd.mkv", [c[:47, :63] for c in comps])
    mask = write_video(tmp_path / "oddm.mkv", [m[:47, :63] for m in masks])
    assert_one_error(run("harmonize", clip, "-m", mask, "-o", tmp_path / "o.mp4", "--weights", identity_weights), 2,
                     "63x47", "--codec ffv1")
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / "o.mkv", "--codec", "ffv1", "--weights", identity_weights)
    assert result.code == 0, result.err
    frames, *_ = read_video(tmp_path / "o.mkv")
    assert frames[0].shape == (47, 63, 3) and len(frames) == 16


def test_a_frame_folder_whose_frames_change_size(run, tmp_path, clip_files, identity_weights):
    """A video holds one frame size: a folder frame of another size is an error naming it, and nothing is written;
    into a frame folder each frame keeps its own size."""
    _, _, comps, masks = clip_files
    frames, mask_frames = tmp_path / "f", tmp_path / "m"
    for i in range(4):
        rows = 46 if i == 2 else 48
        write_image(frames / f"{i:03d}.png", comps[i][:rows])
        write_image(mask_frames / f"{i:03d}.png", masks[i][:rows])
    inputs = files_in(tmp_path)
    result = run("harmonize", frames, "-m", mask_frames, "--sequence", "--fps", "24", "-o", tmp_path / "o.mkv",
                 "--codec", "ffv1", "--weights", identity_weights)
    assert_one_error(result, 1, "002.png", "64x46", "64x48", "one size")
    assert files_in(tmp_path) == inputs
    result = run("harmonize", frames, "-m", mask_frames, "--sequence", "-o", tmp_path / "out", "--weights", identity_weights)
    assert result.code == 0, result.err
    assert [read_image(p).shape[0] for p in sorted((tmp_path / "out").iterdir())] == [48, 48, 46, 48]


def test_clip_options_on_images_and_an_image_output(run, tmp_path, clip_files, identity_weights):
    clip, mask, comps, masks = clip_files
    img, m = write_image(tmp_path / "a.png", comps[0]), write_image(tmp_path / "m.png", masks[0])
    assert_one_error(run("harmonize", img, "-m", m, "-o", tmp_path / "o.png", "--temporal", "0.3"), 2, "--temporal")
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / "o.png", "--weights", identity_weights)
    assert_one_error(result, 2, "video file")
    (tmp_path / "exists.mp4").write_bytes(b"x")
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / "exists.mp4", "--weights", identity_weights)
    assert_one_error(result, 1, "already exists")


def test_a_video_by_its_container_and_a_fixed_adjustment(run, tmp_path, clip_files):
    """A .mts-named Matroska file is read as a video; --params applies one look to every frame, no network."""
    from tests.cli import HALF, IDENTITY, write_params

    _, mask, comps, masks = clip_files
    clip = tmp_path / "camera.mts"
    clip.write_bytes(clip_files[0].read_bytes())
    look = write_params(tmp_path / "look.json", {"red": HALF, "green": IDENTITY, "blue": IDENTITY})
    out = tmp_path / "out.mkv"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "ffv1", "--params", look)
    assert result.code == 0, result.err
    frames, *_ = read_video(out)
    assert len(frames) == 16
    for got, comp, m in zip(frames, comps, masks):
        inside = m == 255
        assert np.abs(got[inside, 0].astype(int) - np.rint(comp[inside, 0] * 0.5)).max() <= 1
        assert np.array_equal(got[..., 1:], comp[..., 1:]) and np.array_equal(got[m == 0], comp[m == 0])


def test_a_damaged_video_is_one_line(run, tmp_path, clip_files, identity_weights):
    """FFmpeg's own log lines stay quiet: a cut-off .mp4 (no index) is one error line, and nothing is written."""
    _, _, comps, masks = clip_files
    whole = write_video(tmp_path / "whole.mp4", comps, codec="h264")
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    mask = write_image(tmp_path / "mask.png", masks[0])
    result = run("harmonize", cut, "-m", mask, "-o", tmp_path / "o.mp4", "--weights", identity_weights)
    assert_one_error(result, 1, "cut.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_sequence_frames_keep_their_metadata_unless_stripped(run, tmp_path, identity_weights):
    from PIL import Image

    from tests.io.icc import ADOBE_RGB, build_rgb_profile

    adobe = build_rgb_profile("Adobe RGB (test)", **ADOBE_RGB)
    comps, _, masks = make_clip(4)
    (tmp_path / "frames").mkdir()
    for i, (c, m) in enumerate(zip(comps, masks)):
        exif = Image.Exif()
        exif[271] = f"Camera {i}"  # each frame its own, so the test sees which input each output came from
        Image.fromarray(c).save(tmp_path / "frames" / f"f{i:03d}.png", icc_profile=adobe, exif=exif, dpi=(240, 240))
        write_image(tmp_path / "masks" / f"m{i:03d}.png", m)
    for extra, kept in (((), True), (("--strip-metadata",), False)):
        out = tmp_path / ("kept" if kept else "stripped")
        result = run("harmonize", tmp_path / "frames", "-m", tmp_path / "masks", "--sequence", "-o", out,
                     "--weights", identity_weights, *extra)
        assert result.code == 0, result.err
        for i in range(4):
            with Image.open(out / f"f{i:03d}.png") as im:
                got = (im.info.get("icc_profile"), im.getexif().get(271), im.info.get("dpi"))
            if kept:
                assert got[0] == adobe and got[1] == f"Camera {i}"
                assert tuple(float(v) for v in got[2]) == pytest.approx((240, 240), abs=0.01)
            else:
                assert got == (None, None, None)


def test_a_foreground_sequence_is_pasted_in_the_background_clips_colour_space(run, tmp_path, identity_weights):
    from PIL import Image

    from harmcli.io import colour
    from harmcli.io.video import VideoReader
    from tests.io.icc import ADOBE_RGB, build_rgb_profile

    adobe = build_rgb_profile("Adobe RGB (test)", **ADOBE_RGB)
    comps, backs, masks = make_clip(4)
    (tmp_path / "fg").mkdir()
    for i, (c, m) in enumerate(zip(comps, masks)):
        Image.fromarray(c).save(tmp_path / "fg" / f"f{i:03d}.png", icc_profile=adobe)  # the same numbers, in Adobe RGB
        write_image(tmp_path / "masks" / f"m{i:03d}.png", m)
    plate = write_video(tmp_path / "plate.mkv", backs)  # video: sRGB
    out = tmp_path / "out.mkv"
    result = run("harmonize", tmp_path / "fg", plate, tmp_path / "masks", "--sequence", "-o", out, "--codec", "ffv1",
                 "--weights", identity_weights)
    assert result.code == 0, result.err
    assert result.err.count("converted the foreground from 'Adobe RGB (test)'") == 1  # said once, not per frame
    from harmcli.io.video import probe

    assert probe(out).rate == probe(plate).rate == 12  # a frame folder over a video runs at the video's rate
    again = run("harmonize", tmp_path / "fg", plate, tmp_path / "masks", "--sequence", "-o", tmp_path / "o2.mkv",
                "--fps", "25", "--weights", identity_weights)
    assert_one_error(again, 2, "plate.mkv has its own rate")
    for (got, _), c, m in zip(VideoReader(out), comps, masks):
        want = colour.convert(c, adobe, None)[0]
        assert np.abs(want[m == 255].astype(int) - c[m == 255]).mean() > 3  # the conversion matters here
        assert np.abs(got[m == 255].astype(int) - want[m == 255]).max() <= 1

    # A video foreground (sRGB) over an Adobe RGB still: into the still's space, and the frames keep its profile.
    still = tmp_path / "plate.png"
    Image.fromarray(backs[0]).save(still, icc_profile=adobe)
    fg_video = write_video(tmp_path / "fg.mkv", comps)
    frames_out = tmp_path / "frames_out"
    result = run("harmonize", fg_video, still, tmp_path / "masks", "--sequence", "-o", frames_out,
                 "--weights", identity_weights)
    assert result.code == 0, result.err
    assert "into the background's colour space ('Adobe RGB (test)')" in result.err
    with Image.open(sorted(frames_out.iterdir())[1]) as im:
        got, icc = np.asarray(im.convert("RGB")), im.info.get("icc_profile")
    want = colour.convert(comps[1], None, adobe)[0]
    assert icc == adobe
    assert np.abs(got[masks[1] == 255].astype(int) - want[masks[1] == 255]).max() <= 1

    # The same into a video, which holds no profile and is read as sRGB: the frames are converted into sRGB, so the
    # plate shows its colours (not its Adobe RGB numbers) and the subject its own.
    out = tmp_path / "over_adobe.mkv"
    result = run("harmonize", fg_video, still, tmp_path / "masks", "-o", out, "--codec", "ffv1",
                 "--weights", identity_weights)
    assert result.code == 0, result.err
    assert result.err.count("into sRGB for the video") == 1
    plate_seen = colour.convert(backs[0], adobe, None)[0]
    for (got, _), c, m in zip(VideoReader(out), comps, masks):
        assert np.abs(got[m == 0].astype(int) - plate_seen[m == 0]).max() <= 1
        assert np.abs(got[m == 255].astype(int) - c[m == 255]).max() <= 2  # sRGB -> Adobe RGB -> sRGB


def test_a_videos_own_metadata_reaches_the_output_unless_stripped(run, tmp_path, identity_weights):
    import av

    tags = {"creation_time": "2026-05-01T10:00:00.000000Z", "location": "+48.8577+002.2950/", "title": "Paris"}
    comps, backs, masks = make_clip(4)
    clip = write_video(tmp_path / "clip.mp4", comps, codec="h264", tags=tags)
    mask = write_video(tmp_path / "mask.mkv", masks)

    def tags_of(path):
        with av.open(str(path)) as container:
            return dict(container.metadata)

    for ext in (".mp4", ".mov", ".mkv"):
        out = tmp_path / f"out{ext}"
        result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
        assert result.code == 0, result.err
        got = tags_of(out)
        assert {k: got.get(k, got.get(k.upper())) for k in tags} == tags, (ext, got)
        assert got.get("encoder", got.get("ENCODER", "")).startswith("Lavf")  # the muxer's own, not copied
    out = tmp_path / "stripped.mp4"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--strip-metadata", "--weights", identity_weights)
    assert result.code == 0, result.err
    assert not set(tags) & set(tags_of(out))

    # Apple's own keys (what an iPhone writes: location, make, creation date with its zone) reach .mov and .mp4.
    apple = {"com.apple.quicktime.location.ISO6709": "+48.8577+002.2950+035.000/",
             "com.apple.quicktime.make": "Apple"}
    phone = write_video(tmp_path / "phone.mov", comps, codec="h264", tags=apple)
    for ext in (".mov", ".mp4"):
        out = tmp_path / f"phone_out{ext}"
        result = run("harmonize", phone, "-m", mask, "-o", out, "--weights", identity_weights)
        assert result.code == 0, result.err
        assert {k: tags_of(out).get(k) for k in apple} == apple

    # A tag in another encoding than UTF-8 (older cameras write Latin-1) is carried as best it can, never an error.
    latin = write_video(tmp_path / "latin.mkv", comps, tags={"title": "café"}, tag_encoding="latin-1")
    result = run("harmonize", latin, "-m", mask, "-o", tmp_path / "latin_out.mkv", "--weights", identity_weights)
    assert result.code == 0, result.err
    assert tags_of(tmp_path / "latin_out.mkv").get("title", "").startswith("caf")

    # A foreground over a background video: the background's, as an image output inherits the background's.
    plate = write_video(tmp_path / "plate.mkv", backs, tags={"title": "the plate"})
    fg = write_video(tmp_path / "fg.mkv", comps, tags={"title": "the subject"})
    out = tmp_path / "fgbg.mkv"
    result = run("harmonize", fg, plate, mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert tags_of(out)["title"] == "the plate"
