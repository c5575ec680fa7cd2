"""Clips as cameras, phones and editors hand them over: timing from other containers, colour tags, every audio
track, timecode, subtitles, streams without timestamps, and files cut short. Tiny clips, one fixed look
(``--params``: no network), so each test is about the container, not the picture."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.cli import HALF, IDENTITY, assert_one_error, files_in, run, write_image, write_params  # noqa: F401

from . import HEIGHT, WIDTH, make_clip, mux_tone, write_video


@pytest.fixture
def look(tmp_path) -> Path:
    return write_params(tmp_path / "look.json", {"red": HALF, "green": IDENTITY, "blue": IDENTITY})


@pytest.fixture
def still_mask(tmp_path) -> Path:
    return write_image(tmp_path / "mask.png", make_clip(1)[2][0])


def _encode(path: Path, frames, encoder: str, pix_fmt: str, *, rate=Fraction(12), color=None, options=None,
            audio_languages=(), timecode=None, container_options=None) -> Path:
    """RGB uint8 frames into ``encoder``; ``color``: (matrix, primaries, transfer) on the stream; one AAC track
    per language in ``audio_languages``; ``timecode``: the start timecode."""
    import av

    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        stream.options = dict(options or {})
        if color is not None:
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = (*color, 1)
        if timecode:
            stream.metadata["timecode"] = timecode
        tracks = []
        for language in audio_languages:
            track = out.add_stream("aac", rate=48000)
            track.metadata["language"] = language
            tracks.append(track)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if color is not None:
                frame = frame.reformat(format=pix_fmt, dst_colorspace=color[0], dst_color_range=1)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        samples = int(48000 * len(frames) / rate)
        for k, track in enumerate(tracks):
            mux_tone(out, track, samples, 440 + 110 * k, 0.2)
    return path


def _streams(path: Path) -> dict:
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(video)]
        first = None
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        return {
            "rate": container.streams.video[0].average_rate,
            "frames": container.streams.video[0].frames,
            "time_base": container.streams.video[0].time_base,
            "pts": pts,
            "colour": (int(first.colorspace), int(first.color_primaries), int(first.color_trc)),
            "audio": [(s.codec_context.name, s.metadata.get("language")) for s in container.streams.audio],
            "timecode": next((s.metadata.get("timecode") or s.metadata.get("TIMECODE") for s in container.streams
                              if s.metadata.get("timecode") or s.metadata.get("TIMECODE")), None),
        }


# ------------------------------------------------------------------------------------------------ timing


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_a_24000_1001_mkv_stays_24000_1001_in_an_mp4(run, tmp_path, look, ext):
    """Matroska rounds times to the millisecond (0, 42, 83 ms); copied as they are, an .mp4 would say
    128000/5337 fps with frames 41 and 42 ms apart. They go back on the 1001/24000 s grid."""
    comps, _, masks = make_clip(12)
    rate = Fraction(24000, 1001)
    clip, mask = write_video(tmp_path / "c.mkv", comps, rate=rate), write_video(tmp_path / "m.mkv", masks, rate=rate)
    out = tmp_path / f"out{ext}"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--params", look)
    assert result.code == 0, result.err
    got = _streams(out)
    assert got["rate"] == rate
    times = [p * got["time_base"] for p in got["pts"]]
    assert times == [i / rate for i in range(12)]


def test_variable_frame_times_are_kept_exactly(run, tmp_path, look, still_mask):
    """A frame off the grid (a phone's variable frame rate) keeps its own time."""
    import av

    comps, _, _ = make_clip(6)
    clip = tmp_path / "vfr.mkv"
    times_ms = [0, 33, 100, 133, 233, 266]  # frames dropped after 33 and 133 ms
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr0"
        stream.time_base = Fraction(1, 1000)
        for image, ms in zip(comps, times_ms):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    out = tmp_path / "out.mp4"
    result = run("harmonize", clip, "-m", still_mask, "-o", out, "--params", look)
    assert result.code == 0, result.err
    got = _streams(out)
    # On the 1/30 s grid where the file rounded it (33 -> 1/30 s), its own millisecond where it is off the grid.
    want = [Fraction(0), Fraction(1, 30), Fraction(3, 30), Fraction(4, 30), Fraction(7, 30), Fraction(8, 30)]
    assert [p * got["time_base"] for p in got["pts"]] == want


def test_an_avi_output_has_the_inputs_frame_rate(run, tmp_path, look, still_mask):
    """AVI holds a frame rate, no timestamps: given the .mp4's 1/12288 time base, FFmpeg's muxer wrote a file of
    600 frames per second, 49 of every 50 of them empty."""
    comps, _, _ = make_clip(12)
    clip = write_video(tmp_path / "c.mp4", comps, codec="h264")
    out = tmp_path / "out.avi"
    result = run("harmonize", clip, "-m", still_mask, "-o", out, "--params", look)
    assert result.code == 0, result.err
    got = _streams(out)
    assert got["rate"] == 12 and got["frames"] == 12 and got["pts"] == list(range(12))


def test_a_stream_without_timestamps_runs_at_its_rate(run, tmp_path, look, still_mask):
    """A raw .h264 file carries no timestamps: frames go on its rate's grid (FFmpeg's 25 fps), not one tick apart."""
    comps, _, _ = make_clip(12)
    clip = _encode(tmp_path / "camera.h264", comps, "libx264", "yuv420p")
    out = tmp_path / "out.mp4"
    result = run("harmonize", clip, "-m", still_mask, "-o", out, "--params", look)
    assert result.code == 0, result.err
    got = _streams(out)
    assert got["rate"] == 25
    assert [p * got["time_base"] for p in got["pts"]] == [Fraction(i, 25) for i in range(12)]


def test_the_start_timecode_is_carried_unless_stripped(run, tmp_path, look, still_mask):
    comps, _, _ = make_clip(4)
    clip = _encode(tmp_path / "camera.mov", comps, "libx264", "yuv420p", timecode="01:02:03:04")
    for ext in (".mov", ".mp4", ".mkv"):
        out = tmp_path / f"out{ext}"
        result = run("harmonize", clip, "-m", still_mask, "-o", out, "--params", look)
        assert result.code == 0, result.err
        assert _streams(out)["timecode"] == "01:02:03:04", ext
    out = tmp_path / "stripped.mov"
    result = run("harmonize", clip, "-m", still_mask, "-o", out, "--params", look, "--strip-metadata")
    assert result.code == 0, result.err
    assert _streams(out)["timecode"] is None


# ------------------------------------------------------------------------------------------------ colour


@pytest.mark.parametrize("codec, ext", [("prores", ".mov"), ("ffv1", ".mkv"), ("hevc", ".mp4")])
def test_hdr_colour_tags_reach_every_codec(run, tmp_path, look, still_mask, codec, ext):
    """BT.2020 with HLG from a 10-bit camera file: ProRes (whose encoder reads the tags from each frame) and the
    lossless RGB codecs lost the primaries and transfer, so an editor read HLG pictures as BT.709."""
    comps, _, _ = make_clip(4)
    clip = _encode(tmp_path / "hlg.mp4", comps, "libx264", "yuv420p10le", color=(9, 9, 18))
    assert _streams(clip)["colour"] == (9, 9, 18)
    out = tmp_path / f"out{ext}"
    result = run("harmonize", clip, "-m", still_mask, "-o", out, "--codec", codec, "--params", look)
    assert result.code == 0, result.err
    matrix, primaries, transfer = _streams(out)["colour"]
    assert (primaries, transfer) == (9, 18)
    if codec != "ffv1":  # RGB has no matrix
        assert matrix == 9


# ------------------------------------------------------------------------------------------------ streams


def test_every_audio_track_is_copied_with_its_language(run, tmp_path, look, still_mask):
    comps, _, _ = make_clip(6)
    clip = _encode(tmp_path / "two.mkv", comps, "libx264", "yuv420p", audio_languages=("eng", "fra"))
    for ext in (".mkv", ".mp4"):
        out = tmp_path / f"out{ext}"
        result = run("harmonize", clip, "-m", still_mask, "-o", out, "--params", look)
        assert result.code == 0, result.err
        assert _streams(out)["audio"] == [("aac", "eng"), ("aac", "fra")], ext


def test_an_audio_track_ffmpeg_cannot_name_is_left_out_with_a_note(run, tmp_path, look, still_mask):
    """A track in a codec FFmpeg does not know (a newer phone's spatial audio) has no codec context: copying it
    failed the run with "'NoneType' object has no attribute 'name'"."""
    comps, _, _ = make_clip(6)
    data = _encode(tmp_path / "two.mkv", comps, "libx264", "yuv420p", audio_languages=("eng",)).read_bytes()
    assert data.count(b"A_AAC") == 1
    clip = tmp_path / "odd_audio.mkv"
    clip.write_bytes(data.replace(b"A_AAC", b"A_ZZZ"))  # Matroska's codec ID: one nobody knows
    out = tmp_path / "out.mp4"
    result = run("harmonize", clip, "-m", still_mask, "-o", out, "--params", look)
    assert result.code == 0, result.err
    assert "audio track 1 of" in result.err and "not copied" in result.err
    assert _streams(out)["audio"] == []


def test_ffmpeg_logs_never_call_into_python(tmp_path):
    """PyAV's log callback (installed by any av.logging.set_level(LEVEL)) takes the GIL for FFmpeg's error lines;
    a decoder thread logging while Python closes that decoder then waits for the GIL forever, and the run hangs
    (measured: 5 runs in 20 when an output failed to open mid-clip). harmcli keeps FFmpeg quiet without it."""
    import av

    from harmcli.io.video import probe

    probe(write_video(tmp_path / "c.mkv", make_clip(2)[0]))
    assert av.logging.get_level() is None


def test_subtitle_tracks_left_out_are_said(run, tmp_path, look, still_mask):
    import av

    comps, _, _ = make_clip(4)
    plain = write_video(tmp_path / "plain.mkv", comps)
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,300\nHello\n")
    clip = tmp_path / "subs.mkv"
    with av.open(str(plain)) as video, av.open(str(srt)) as text, av.open(str(clip), "w") as out:
        streams = {"video": out.add_stream_from_template(video.streams.video[0]),
                   "subtitle": out.add_stream_from_template(text.streams.subtitles[0])}
        for source in (video, text):
            for packet in source.demux():
                if packet.dts is not None:
                    packet.stream = streams[packet.stream.type]
                    out.mux(packet)
    result = run("harmonize", clip, "-m", still_mask, "-o", tmp_path / "out.mkv", "--params", look)
    assert result.code == 0, result.err
    assert "1 subtitle track was not copied" in result.err


def test_data_tracks_left_out_are_said(run, tmp_path, look, still_mask):
    """A GoPro's telemetry track (gpmd, which FFmpeg reads as bin_data) has no place in the output: said, not
    dropped silently; a timecode track is a data track too, but its timecode is carried, so it is not named."""
    import av

    from harmcli.io.video import data_streams

    comps, _, _ = make_clip(4)
    clip = tmp_path / "gopro.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        telemetry = out.add_data_stream("bin_data")  # the mp4 muxer writes it as a gpmd track, "GoPro MET"
        telemetry.time_base = Fraction(1, 12)
        for i, image in enumerate(comps):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
            packet = av.Packet(b"DEVC" + bytes(12))
            packet.stream, packet.pts, packet.dts, packet.time_base = telemetry, i, i, Fraction(1, 12)
            out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    assert data_streams(clip) == ["bin_data 'GoPro MET'"]
    result = run("harmonize", clip, "-m", still_mask, "-o", tmp_path / "out.mp4", "--params", look)
    assert result.code == 0, result.err
    assert "1 data track (bin_data 'GoPro MET') was not copied into" in result.err
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [s.type for s in container.streams] == ["video"]

    timed = _encode(tmp_path / "tc.mov", comps, "libx264", "yuv420p", timecode="01:00:00:00")
    with av.open(str(timed)) as container:
        assert [s.type for s in container.streams] == ["video", "data"]  # QuickTime's tmcd track
    assert data_streams(timed) == []
    result = run("harmonize", timed, "-m", still_mask, "-o", tmp_path / "tc_out.mov", "--params", look)
    assert result.code == 0, result.err
    assert "data track" not in result.err


# ------------------------------------------------------------------------------------------------ damage


def test_an_mp4_cut_before_its_index_says_so(run, tmp_path, look, still_mask):
    comps, _, _ = make_clip(12)
    whole = write_video(tmp_path / "whole.mp4", comps, codec="h264")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # the index (moov) is written last
    result = run("harmonize", cut, "-m", still_mask, "-o", tmp_path / "o.mp4", "--params", look)
    assert_one_error(result, 1, "cut.mp4", "cut short")
    assert not (tmp_path / "o.mp4").exists()


def test_a_file_with_no_frames_is_an_error_and_writes_nothing(run, tmp_path, look, still_mask):
    """With --params only one pass runs: a video with no frames wrote an empty 0-frame file and exited 0."""
    comps, _, _ = make_clip(4)
    data = write_video(tmp_path / "whole.mkv", comps, codec="h264").read_bytes()
    (tmp_path / "whole.mkv").unlink()
    cluster = data.find(bytes.fromhex("1F43B675"))  # Matroska's Cluster ID: the header ends, the frames begin
    clip = tmp_path / "empty.mkv"
    clip.write_bytes(data[: cluster + 4])  # the header and a video stream, no frame
    for target in ("o.mp4", "frames"):
        result = run("harmonize", clip, "-m", still_mask, "-o", tmp_path / target, "--params", look)
        assert_one_error(result, 1, "empty.mkv", "no frames")
    assert files_in(tmp_path) == ["empty.mkv", "look.json", "mask.png"]
    clip.write_bytes(data[:cluster])  # cut inside the header
    result = run("harmonize", clip, "-m", still_mask, "-o", tmp_path / "o.mp4", "--params", look)
    assert_one_error(result, 1, "empty.mkv", "ends before its first frame")


def test_a_video_cut_short_is_said_with_params_too(run, tmp_path, look):
    """A faststart .mp4 cut mid-stream still has its index: the frames that decode are written, and the run says
    the file promised more (as the network path does)."""
    import av

    rng = np.random.default_rng(0)
    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 255
    result = run("harmonize", cut, "-m", write_image(tmp_path / "m.png", mask), "-o", tmp_path / "o.mp4",
                 "--params", look)
    assert result.code == 0, result.err
    assert "cut.mp4: the file says 24 frames but" in result.err and "could be decoded" in result.err


def test_a_matroska_cut_short_is_said_by_its_duration(run, tmp_path, look, still_mask):
    """Matroska and WebM state no frame count, but their header states the duration, which a cut file keeps: the
    frames that decode are written and the run says the file promised more; a whole file says nothing."""
    comps, _, _ = make_clip(24)
    whole = write_video(tmp_path / "whole.mkv", comps)  # 2 s at 12 fps
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = run("harmonize", cut, "-m", still_mask, "-o", tmp_path / "o.mkv", "--params", look)
    assert result.code == 0, result.err
    assert "cut.mkv: the file says 2 s (about 24 frames) but" in result.err and "could be decoded" in result.err
    import av

    with av.open(str(tmp_path / "o.mkv")) as container:
        written = sum(1 for _ in container.decode(video=0))
    assert 0 < written < 23
    assert f"but {written} frames could be decoded" in result.err
    result = run("harmonize", whole, "-m", still_mask, "-o", tmp_path / "w.mkv", "--params", look)
    assert result.code == 0, result.err
    assert "could be decoded" not in result.err
