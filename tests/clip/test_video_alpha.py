"""Video outputs keep the frames' alpha channel where the codec holds it (PNG-in-MOV, FFV1, ProRes 4444, VP9),
and say once that it was dropped where it does not. Sources are written and outputs decoded with PyAV directly."""

from __future__ import annotations


import numpy as np
import pytest

from tests.cli import identity_weights, run, write_image  # noqa: F401 (fixtures)

from . import HEIGHT, WIDTH, jittery_weights, make_clip, write_encoded, write_video  # noqa: F401


def _alphas(n: int) -> list[np.ndarray]:
    """A straight alpha that differs in every frame: a ramp from fully transparent to opaque drifting across,
    with a fine pattern so that no two neighbouring values are equal."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return [np.clip(xx * 6 - 60 + 7 * t + (yy * 5 + xx * 3) % 11, 0, 255).astype(np.uint8) for t in range(n)]


def _rgba_clip(n: int = 8):
    comps, _, masks = make_clip(n)
    alphas = _alphas(n)
    return comps, alphas, masks


def _decode(path, fmt: str = "rgba", decoder: str | None = None):
    """(the decoded frames' pix_fmt, arrays in ``fmt``); ``decoder`` names one other than FFmpeg's default."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if decoder is None:
            frames = list(container.decode(stream))
        else:
            ctx = av.codec.CodecContext.create(decoder, "r")
            frames = [f for packet in container.demux(stream) for f in ctx.decode(packet)]
        return frames[0].format.name, [f.to_ndarray(format=fmt) for f in frames]


def _alpha_planes(path) -> tuple[str, list[np.ndarray]]:
    """(pix_fmt, each frame's alpha plane as stored, 0..1) of a YUVA video, without a conversion of its own
    (swscale's 12 -> 16-bit expansion adds up to 15/65535)."""
    import av

    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    fmt = frames[0].format
    bits = max(c.bits for c in fmt.components)
    planes = []
    for f in frames:
        plane = f.planes[3]
        values = np.frombuffer(plane, np.uint16 if bits > 8 else np.uint8).reshape(plane.height, -1)[:, : plane.width]
        planes.append(values / float((1 << bits) - 1))
    return fmt.name, planes


def _alpha_notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if "alpha channel" in line]


@pytest.mark.parametrize("codec, ext, pix", [("png", ".mov", "rgba"), ("ffv1", ".mkv", "bgra")])
def test_a_lossless_codec_keeps_alpha_bit_for_bit(run, tmp_path, jittery_weights, codec, ext, pix):
    comps, alphas, masks = _rgba_clip()
    clip = write_video(tmp_path / "clip.mov", [np.dstack([c, a]) for c, a in zip(comps, alphas)], codec="png")
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / f"out{ext}"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", codec, "--weights", jittery_weights)
    assert result.code == 0, result.err
    assert _alpha_notes(result.err) == []
    got_pix, frames = _decode(out)
    assert got_pix == pix and len(frames) == len(comps)
    for got, comp, alpha, m in zip(frames, comps, alphas, masks):
        assert np.array_equal(got[..., 3], alpha)
        rgb = got[..., :3]
        assert np.array_equal(rgb[m == 0], comp[m == 0])  # the background, transparent parts included
        assert np.abs(rgb[m == 255].astype(int) - comp[m == 255]).mean() > 2  # the subject was adjusted


@pytest.mark.parametrize("codec, ext, source_pix, pix", [("ffv1", ".mkv", "gbrap16le", "gbrap16le"),
                                                         ("png", ".mov", "rgba64be", "rgba64be")])
def test_a_16_bit_alpha_stays_16_bit(run, tmp_path, identity_weights, codec, ext, source_pix, pix):
    comps, alphas, masks = _rgba_clip(6)
    rng = np.random.default_rng(3)
    deep = [np.clip(np.dstack([c, a]).astype(np.int32) * 257 + rng.integers(-120, 120, (HEIGHT, WIDTH, 4)), 0, 65535)
            .astype(np.uint16) for c, a in zip(comps, alphas)]
    encoder = "ffv1" if codec == "ffv1" else "png"
    clip = write_encoded(tmp_path / f"deep{ext}", deep, encoder, source_pix)
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / f"out{ext}"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", codec, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert _alpha_notes(result.err) == [] and "bits" not in result.err
    got_pix, frames = _decode(out, "rgba64le")
    assert got_pix == pix and len(frames) == len(deep)
    for got, src in zip(frames, deep):
        assert np.array_equal(got, src)  # RGB and alpha, every bit (an identity adjustment)
        assert np.mean(got[..., 3] % 257 != 0) > 0.5  # 16-bit alpha steps, not 8-bit values scaled up


def test_prores_keeps_alpha_within_10_bits(run, tmp_path, identity_weights):
    comps, alphas, masks = _rgba_clip(6)
    clip = write_video(tmp_path / "clip.mov", [np.dstack([c, a]) for c, a in zip(comps, alphas)], codec="png")
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / "out.mov"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "prores", "--weights", identity_weights)
    assert result.code == 0, result.err
    assert _alpha_notes(result.err) == []
    got_pix, planes = _alpha_planes(out)
    assert got_pix == "yuva444p12le" and len(planes) == 6  # prores_ks writes 10 bits; FFmpeg decodes to 12
    # Rounded to the nearest 10-bit value (and the decoder's 10 -> 12-bit expansion, under 1/4095).
    tolerance = 0.5 / 1023 + 1 / 4095
    for plane, alpha in zip(planes, alphas):
        assert np.abs(plane - alpha / 255.0).max() <= tolerance
    _, frames = _decode(out, "rgba64le")
    for got, comp, alpha in zip(frames, comps, alphas):
        assert np.array_equal(np.rint(got[..., 3] / 257), alpha)  # an 8-bit alpha comes back exactly
        assert np.abs(got[..., :3] / 257 - comp).mean() < 1.0

    # A 16-bit alpha goes through the same 10 bits.
    rng = np.random.default_rng(4)
    deep = [np.clip(np.dstack([c, a]).astype(np.int32) * 257 + rng.integers(-120, 120, (HEIGHT, WIDTH, 4)), 0, 65535)
            .astype(np.uint16) for c, a in zip(comps, alphas)]
    clip = write_encoded(tmp_path / "deep.mkv", deep, "ffv1", "gbrap16le")
    out = tmp_path / "deep_out.mov"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "prores", "--weights", identity_weights)
    assert result.code == 0, result.err
    _, planes = _alpha_planes(out)
    for plane, src in zip(planes, deep):
        assert np.abs(plane - src[..., 3] / 65535.0).max() <= tolerance


def test_vp9_webm_keeps_alpha_and_harmcli_reads_it_back(run, tmp_path, identity_weights):
    comps, alphas, masks = _rgba_clip(6)
    clip = write_video(tmp_path / "clip.mov", [np.dstack([c, a]) for c, a in zip(comps, alphas)], codec="png")
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / "out.webm"  # VP9, the .webm default
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert _alpha_notes(result.err) == []
    assert _decode(out)[0] == "yuv420p"  # FFmpeg's own VP9 decoder does not read the alpha beside the frames
    got_pix, frames = _decode(out, decoder="libvpx-vp9")
    assert got_pix == "yuva420p" and len(frames) == 6
    for got, alpha in zip(frames, alphas):  # lossy, like the picture (measured: 0.7-1.0 on average, 11 at most)
        error = np.abs(got[..., 3].astype(int) - alpha)
        assert error.mean() < 1.5 and error.max() <= 16

    from harmcli.io.video import VideoReader, probe

    assert probe(out).has_alpha
    again = [image for image, _ in VideoReader(out, "rgba")]
    assert len(again) == 6 and all(np.array_equal(a[..., 3], f[..., 3]) for a, f in zip(again, frames))
    # ... and so the .webm is a composite whose alpha reaches the next output.
    result = run("harmonize", out, "-m", mask, "-o", tmp_path / "again.mov", "--codec", "png",
                 "--weights", identity_weights)
    assert result.code == 0, result.err
    assert all(np.array_equal(a[..., 3], f[..., 3]) for a, f in zip(_decode(tmp_path / "again.mov")[1], frames))


def test_h264_drops_alpha_with_one_note(run, tmp_path, identity_weights):
    comps, alphas, masks = _rgba_clip(6)
    clip = write_video(tmp_path / "clip.mov", [np.dstack([c, a]) for c, a in zip(comps, alphas)], codec="png")
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / "out.mov"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "h264", "--weights", identity_weights)
    assert result.code == 0, result.err
    assert _decode(out, "rgb24")[0] == "yuv420p"
    notes = _alpha_notes(result.err)
    assert len(notes) == 1 and "h264" in notes[0] and "--codec prores or png" in notes[0], result.err
    for got, comp in zip(_decode(out, "rgb24")[1], comps):  # the colours, within H.264's own error
        assert np.abs(got.astype(int) - comp).mean() < 3

    # PNG cannot go in an .mp4, so the source's codec gives way to the container's default, H.264
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / "out.mp4", "--weights", identity_weights)
    assert result.code == 0, result.err
    notes = _alpha_notes(result.err)
    assert len(notes) == 1 and ".mov" in notes[0], result.err  # no alpha codec goes in an .mp4: where to go


def test_rgb_input_gets_no_alpha_stream(run, tmp_path, identity_weights):
    comps, _, masks = make_clip(6)
    clip, mask = write_video(tmp_path / "clip.mkv", comps), write_video(tmp_path / "mask.mkv", masks)
    for codec, ext in (("prores", ".mov"), ("png", ".mov"), ("ffv1", ".mkv")):
        out = tmp_path / f"out_{codec}{ext}"
        result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", codec, "--weights", identity_weights)
        assert result.code == 0, result.err
        got_pix, _ = _decode(out, "rgb24")
        assert got_pix == {"prores": "yuv444p12le", "png": "rgb24", "ffv1": "bgr0"}[codec]
        assert _alpha_notes(result.err) == []


def test_background_video_alpha_under_a_pasted_foreground(run, tmp_path, identity_weights):
    """FG BG: the background video's alpha, with the pasted subject opaque over it."""
    comps, bgs, masks = make_clip(6)
    alphas = _alphas(6)
    fg = write_video(tmp_path / "fg.mov", [np.dstack([c, m]) for c, m in zip(comps, masks)], codec="png")
    bg = write_video(tmp_path / "bg.mov", [np.dstack([b, a]) for b, a in zip(bgs, alphas)], codec="png")
    out = tmp_path / "out.mov"
    result = run("harmonize", fg, bg, "-o", out, "--codec", "png", "--weights", identity_weights)
    assert result.code == 0, result.err
    _, frames = _decode(out)
    for got, a, m in zip(frames, alphas, masks):
        expected = a + (m / 255.0) * (255.0 - a)
        assert np.abs(got[..., 3] - expected).max() <= 0.5 + 1e-3
        assert np.array_equal(got[..., 3][m == 0], a[m == 0]) and np.all(got[..., 3][m == 255] == 255)


def test_the_first_frame_decides_for_the_clip(run, tmp_path, identity_weights):
    """Frame folders may mix frames with and without alpha: the first frame's kind is the clip's."""
    comps, alphas, masks = _rgba_clip(4)
    for i, m in enumerate(masks):
        write_image(tmp_path / "masks" / f"{i + 1:04d}.png", m)
    for first_has_alpha in (True, False):
        folder = tmp_path / f"frames_{first_has_alpha}"
        for i, c in enumerate(comps):
            with_alpha = (i == 0) == first_has_alpha
            write_image(folder / f"{i + 1:04d}.png", c, alphas[i] if with_alpha else None)
        out = tmp_path / f"out_{first_has_alpha}.mov"
        result = run("harmonize", folder, "-m", tmp_path / "masks", "--sequence", "--fps", "12", "-o", out,
                     "--codec", "png", "--weights", identity_weights)
        assert result.code == 0, result.err
        pix, frames = _decode(out)
        if first_has_alpha:  # the frames without alpha are written opaque
            assert pix == "rgba" and _alpha_notes(result.err) == []
            assert np.array_equal(frames[0][..., 3], alphas[0])
            assert all(np.all(f[..., 3] == 255) for f in frames[1:])
        else:  # later frames' alpha is not written, and the run says so once
            assert pix == "rgb24"
            assert len(_alpha_notes(result.err)) == 1 and "first has none" in result.err
