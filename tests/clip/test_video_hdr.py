"""HDR10 static metadata (mastering display, content light level) of a source is carried into HEVC outputs."""

from __future__ import annotations

import pytest

from harmcli.io.video import HdrMetadata, VideoReader, _hdr_metadata
from tests.cli import identity_weights, run  # noqa: F401 (fixtures)

from . import make_clip, write_encoded, write_video

# A typical HDR10 grade: P3 primaries on a 1000-nit display, D65, MaxCLL 1000, MaxFALL 400.
MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
X265 = f"log-level=error:master-display={MASTER}:max-cll=1000,400:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"


def _first_frame_hdr(path):
    import av

    with av.open(str(path)) as container:
        return _hdr_metadata(next(container.decode(video=0)))


@pytest.fixture
def hdr_clip(tmp_path):
    comps, _, masks = make_clip(4)
    clip = write_encoded(tmp_path / "hdr10.mkv", comps, "libx265", "yuv420p10le", options={"x265-params": X265})
    return clip, write_video(tmp_path / "mask.mkv", masks)


def test_the_reader_parses_the_metadata(hdr_clip):
    hdr = _first_frame_hdr(hdr_clip[0])
    assert hdr.light_level == (1000, 400)
    assert hdr.mastering == pytest.approx((0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329, 0.0001, 1000.0))
    assert hdr.x265_params() == [f"master-display={MASTER}", "max-cll=1000,400"]  # round trip to x265's units
    reader = VideoReader(hdr_clip[0])
    next(iter(reader))
    assert reader.color.hdr == hdr and (reader.color.primaries, reader.color.trc) == (9, 16)  # BT.2020, PQ
    reader.close()


@pytest.mark.parametrize("ext", [".mkv", ".mov"])
def test_hevc_output_keeps_it(run, tmp_path, identity_weights, hdr_clip, ext):  # noqa: F811
    clip, mask = hdr_clip
    out = tmp_path / f"out{ext}"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert _first_frame_hdr(out) == _first_frame_hdr(clip)
    assert "HDR10" not in result.err


def test_other_codecs_say_they_drop_it(run, tmp_path, identity_weights, hdr_clip):  # noqa: F811
    clip, mask = hdr_clip
    out = tmp_path / "out.mkv"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--codec", "ffv1", "--weights", identity_weights)
    assert result.code == 0, result.err
    assert "HDR10 metadata (mastering display, light levels) is not carried by ffv1 (--codec hevc keeps it)" in result.err
    assert _first_frame_hdr(out) is None


def test_sdr_sources_have_none(tmp_path):
    comps, _, _ = make_clip(2)
    assert _first_frame_hdr(write_video(tmp_path / "sdr.mkv", comps, codec="h264")) is None
    assert HdrMetadata(light_level=(500, 100)).x265_params() == ["max-cll=500,100"]
