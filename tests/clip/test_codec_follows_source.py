"""Without --codec a clip keeps its source's codec where the output container holds it (ProRes with its profile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmcli.errors import UsageError
from harmcli.io.video import CODECS, choose_codec, probe, prores_codec
from tests.cli import identity_weights, run  # noqa: F401 (fixtures)

from . import make_clip, write_encoded, write_video


def _prores(path: Path, frames, profile: str) -> Path:
    alpha = frames[0].shape[2] == 4
    pix = "yuva444p10le" if alpha else ("yuv444p10le" if profile.startswith("4444") else "yuv422p10le")
    return write_encoded(path, frames, "prores_ks", pix, options={"profile": profile})


@pytest.mark.parametrize("profile, decoded", [("proxy", "Proxy"), ("lt", "LT"), ("standard", "Standard"), ("hq", "HQ"),
                                              ("4444", "4444"), ("4444xq", "XQ")])
def test_prores_profile_is_kept(run, tmp_path, identity_weights, profile, decoded):  # noqa: F811
    comps, _, masks = make_clip(4)
    clip = _prores(tmp_path / "clip.mov", comps, profile)
    assert probe(clip).profile == decoded
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / "out.mov"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    info = probe(out)
    assert (info.codec, info.profile) == ("prores", decoded)
    label = {"Standard": "422", "XQ": "4444 XQ", "4444": "4444"}.get(decoded, f"422 {decoded}")
    assert f"out.mov (ProRes {label}): 4 frames" in result.err  # the summary says what was chosen
    # --codec prores asked for by name keeps the profile too
    again = tmp_path / "again.mov"
    assert run("harmonize", clip, "-m", mask, "-o", again, "--codec", "prores", "--weights", identity_weights).code == 0
    assert probe(again).profile == decoded


def test_prores_422_with_alpha_frames_becomes_4444(run, tmp_path, identity_weights):  # noqa: F811
    comps, bgs, masks = make_clip(4)
    clip = _prores(tmp_path / "clip.mov", comps, "hq")
    background = write_video(tmp_path / "bg.mov", [np.dstack([b, np.full(b.shape[:2], 200, np.uint8)]) for b in bgs], codec="png")
    mask = write_video(tmp_path / "mask.mkv", masks)
    # FG BG MASK: the output takes the foreground's ProRes 422 HQ and the background's alpha
    out = tmp_path / "out.mov"
    result = run("harmonize", clip, background, mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    info = probe(out)
    assert (info.codec, info.profile, info.has_alpha) == ("prores", "4444", True)
    assert "ProRes 422 HQ holds no alpha channel" in result.err


@pytest.mark.parametrize("codec, ext", [("ffv1", ".mkv"), ("png", ".mov"), ("h264", ".mkv")])
def test_lossless_and_h264_sources_keep_their_codec(run, tmp_path, identity_weights, codec, ext):  # noqa: F811
    comps, _, masks = make_clip(4)
    clip = write_video(tmp_path / f"clip{ext}", comps, codec=codec)
    mask = write_video(tmp_path / "mask.mkv", masks)
    out = tmp_path / f"out{ext}"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert probe(out).codec == codec


def test_a_container_that_cannot_hold_the_source_codec_gets_its_default(tmp_path):
    comps, _, _ = make_clip(2)
    source = probe(write_video(tmp_path / "clip.mkv", comps, codec="ffv1"))
    assert choose_codec(tmp_path / "o.mp4", None, None, source)[0] is CODECS["h264"]
    assert choose_codec(tmp_path / "o.webm", None, None, source)[0] is CODECS["vp9"]
    # --codec wins over the source, and --crf is checked against what is chosen
    assert choose_codec(tmp_path / "o.mkv", "h264", 20, source) == (CODECS["h264"], 20)
    with pytest.raises(UsageError, match="--crf does not apply to ffv1, the source's codec .*give --codec too"):
        choose_codec(tmp_path / "o.mkv", None, 20, source)  # the source's FFV1 is lossless


def test_prores_codec_table():
    assert dict(prores_codec("HQ").options) == {"profile": "hq"} and prores_codec("HQ").pix_fmt == "yuv422p10le"
    assert dict(prores_codec("XQ").options) == {"profile": "4444xq"} and prores_codec("XQ").pix_fmt == "yuv444p10le"
    unknown = prores_codec(None)  # an unknown profile: 4444 as before
    assert (unknown.options, unknown.pix_fmt, unknown.alpha_pix_fmt) == (
        CODECS["prores"].options, CODECS["prores"].pix_fmt, CODECS["prores"].alpha_pix_fmt)
    assert (prores_codec("HQ").label, CODECS["hevc"].label) == ("ProRes 422 HQ", "hevc")


def test_an_hevc_source_stays_hevc_tagged_for_quicktime(run, tmp_path, identity_weights):  # noqa: F811
    import av

    comps, _, masks = make_clip(4)
    clip = write_encoded(tmp_path / "phone.mov", comps, "libx265", "yuv420p", options={"x265-params": "log-level=error"})
    mask = write_video(tmp_path / "mask.mkv", masks)
    for ext in (".mov", ".mp4"):
        out = tmp_path / f"out{ext}"
        result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
        assert result.code == 0, result.err
        with av.open(str(out)) as container:
            ctx = container.streams.video[0].codec_context
            # 'hvc1', not FFmpeg's default 'hev1', which QuickTime and iOS do not play
            assert (ctx.name, ctx.codec_tag) == ("hevc", "hvc1")
            assert len(list(container.decode(video=0))) == 4
