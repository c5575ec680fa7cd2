"""Inputs whose stated frame rates differ: paired in order when they hold the same number of frames, else refused."""

from __future__ import annotations

from fractions import Fraction

from harmcli.io.video import probe
from tests.cli import identity_weights, run  # noqa: F401 (fixtures)

from . import make_clip, write_video


def test_same_frame_count_at_another_rate_is_paired_in_order(run, tmp_path, identity_weights):  # noqa: F811
    comps, _, masks = make_clip(6)
    # a phone clip's average rate, and a mask another tool wrote at the nominal rate
    clip = write_video(tmp_path / "phone.mov", comps, codec="png", rate=Fraction(1800000, 60037))
    mask = write_video(tmp_path / "mask.mov", masks, codec="png", rate=Fraction(30))
    out = tmp_path / "out.mov"
    result = run("harmonize", clip, "-m", mask, "-o", out, "--weights", identity_weights)
    assert result.code == 0, result.err
    assert "both have 6 frames, paired in order" in result.err and "phone.mov's timing" in result.err
    info = probe(out)
    assert info.rate == probe(clip).rate and info.frames == 6  # the composite's timing


def test_another_count_at_another_rate_is_refused(run, tmp_path, identity_weights):  # noqa: F811
    comps, _, masks = make_clip(6)
    clip = write_video(tmp_path / "clip.mov", comps, codec="png", rate=Fraction(24))
    mask = write_video(tmp_path / "mask.mov", masks[:5], codec="png", rate=Fraction(20))
    result = run("harmonize", clip, "-m", mask, "-o", tmp_path / "out.mov", "--weights", identity_weights)
    assert result.code == 1
    assert "runs at 20 fps but" in result.err and "convert one so that frames correspond" in result.err
    assert not (tmp_path / "out.mov").exists()
