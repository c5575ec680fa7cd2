"""Videos of more than 8 bits per channel: read as 16-bit, written back with their extra bits where the codec
has them (and a note where it does not). The sources are written with PyAV directly."""

from __future__ import annotations


import numpy as np
import pytest

from harmcli.io.video import probe
from tests.cli import identity_weights, run  # noqa: F401 (fixtures)

from . import jittery_weights, make_clip, write_encoded, write_video  # noqa: F401


def _deep_frames(n: int = 8):
    """16-bit RGB frames whose values are not 8-bit values scaled up (an 8-bit path would lose them), and masks."""
    comps, _, masks = make_clip(n)
    rng = np.random.default_rng(1)
    deep = [np.clip(c.astype(np.int32) * 257 + rng.integers(-120, 120, c.shape), 0, 65535).astype(np.uint16)
            for c in comps]
    return deep, masks


def _decoded(path, fmt="rgb48le"):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pix = stream.codec_context.pix_fmt
        return pix, [f.to_ndarray(format=fmt) for f in container.decode(stream)]


def test_a_16_bit_lossless_video_keeps_every_bit(run, tmp_path, identity_weights, jittery_weights):
    deep, masks = _deep_frames()
    clip = write_encoded(tmp_path / "deep.mkv", deep, "ffv1", "gbrp16le")
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / "same.mkv"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "ffv1", "--weights", identity_weights)
    assert result.code == 0, result.err
    pix, frames = _decoded(out)
    assert pix == "gbrp16le" and len(frames) == len(deep)
    for got, src in zip(frames, deep):
        assert np.array_equal(got, src)  # an identity adjustment through a lossless 16-bit master: bit for bit

    out = tmp_path / "adjusted.mkv"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "ffv1", "--weights", jittery_weights)
    assert result.code == 0, result.err
    _, frames = _decoded(out)
    for got, src, m in zip(frames, deep, masks):
        assert np.array_equal(got[m == 0], src[m == 0])  # the background keeps its 16-bit values
        assert np.abs(got[m == 255].astype(int) - src[m == 255]).mean() > 2 * 257  # the subject was adjusted
        assert np.mean(got[m == 255] % 257 != 0) > 0.5  # in 16-bit steps, not 8-bit values scaled up


def test_a_10_bit_video_stays_10_bit_and_the_8_bit_only_codec_says_so(run, tmp_path, identity_weights):
    deep, masks = _deep_frames(6)
    clip = write_encoded(tmp_path / "hevc10.mp4", deep, "libx265", "yuv420p10le",
                         options={"x265-params": "log-level=error"})
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / "out.mp4"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "h264", "--weights", identity_weights)
    assert result.code == 0, result.err
    pix, frames = _decoded(out)
    assert pix == "yuv420p10le" and len(frames) == 6
    assert "High 10" in result.err  # where 10-bit H.264 does not play, said once
    _, source = _decoded(clip)
    assert np.abs(frames[3].astype(float) - source[3]).mean() < 2 * 257  # the identity through a lossy codec

    out = tmp_path / "out_hevc.mkv"  # no --codec: the source's HEVC, 10 bits
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert _decoded(out)[0] == "yuv420p10le" and "High 10" not in result.err
    assert probe(out).codec == "hevc"

    out = tmp_path / "out.webm"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert _decoded(out, "rgb24")[0] == "yuv420p"
    assert "8 bits per channel" in result.err


@pytest.mark.parametrize("codec", ["h264", "ffv1"])
def test_an_8_bit_video_is_written_8_bit_as_before(run, tmp_path, identity_weights, codec):
    comps, _, masks = make_clip(6)
    clip = write_video(tmp_path / "clip.mkv", comps, codec=codec)
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / "out.mkv"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", codec, "--weights", identity_weights)
    assert result.code == 0, result.err
    pix, frames = _decoded(out, "rgb24")
    assert pix == {"h264": "yuv420p", "ffv1": "bgr0"}[codec]
    assert "bits" not in result.err
    if codec == "ffv1":
        assert all(np.array_equal(a, b) for a, b in zip(frames, comps))
