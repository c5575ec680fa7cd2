"""Styles and scenes are plain data: these run without Blender."""

import math

import numpy as np
import pytest

from harmcli.render.scenes import FOREGROUND_KINDS, make_scene
from harmcli.render.styles import STYLES, kelvin_to_rgb, sample_style, sky_luminance, style_label


def test_ten_styles_three_weathers_three_times_and_night():
    assert len(STYLES) == 10 and STYLES[-1] == "night"
    for weather in ("clear", "partly_cloudy", "cloudy"):
        assert {f"{weather}_{time}" for time in ("sunrise_sunset", "noon", "other")} <= set(STYLES)


def test_style_label_is_one_hot_for_a_target_and_mixed_by_area_for_a_composite():
    target = style_label("night", "night", 0.3)
    assert target == [0.0] * 9 + [1.0]
    label = style_label("clear_noon", "night", 0.2)
    assert label[STYLES.index("clear_noon")] == pytest.approx(0.2)
    assert label[STYLES.index("night")] == pytest.approx(0.8)
    assert sum(label) == pytest.approx(1.0)


def test_each_style_is_a_range_drawn_reproducibly():
    for style in STYLES:
        a = sample_style(style, np.random.default_rng(1))
        b = sample_style(style, np.random.default_rng(1))
        c = sample_style(style, np.random.default_rng(2))
        assert a == b
        assert a != c
    noon = [sample_style("clear_noon", np.random.default_rng(i)).sun.elevation for i in range(20)]
    dusk = [sample_style("clear_sunrise_sunset", np.random.default_rng(i)) for i in range(40)]
    assert 55 <= min(noon) and max(noon) <= 80 and max(noon) - min(noon) > 5
    dusk_suns = [d.sun.elevation for d in dusk if d.sun is not None]
    assert dusk_suns and max(dusk_suns) <= 8
    assert any(d.world == "hdr" for d in dusk) and any(d.world == "sky" for d in dusk)  # sky model and HDR photos
    night = sample_style("night", np.random.default_rng(0))
    assert night.world == "hdr" and night.hdr == "night.exr" and night.lamps and night.exposure > 0  # brightened, not black


def test_low_sun_is_warm_and_clouds_soften_the_sun():
    warm, cool = kelvin_to_rgb(2500), kelvin_to_rgb(9000)
    assert warm[0] > warm[2] and cool[2] > cool[0]
    for rgb in (warm, cool):
        assert 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] == pytest.approx(1.0)
    clear = [sample_style("clear_other", np.random.default_rng(i)) for i in range(30)]
    cloudy = [sample_style("cloudy_other", np.random.default_rng(i)) for i in range(30)]
    assert max(s.sun.angle for s in clear if s.sun) < min(s.sun.angle for s in cloudy if s.sun)
    assert max(s.sun.strength for s in cloudy if s.sun) < min(s.sun.strength for s in clear if s.sun)


def test_sky_tables_grow_with_the_sun():
    for model in ("MULTIPLE_SCATTERING", "HOSEK_WILKIE"):
        levels = [sky_luminance(e, model) for e in (0, 10, 45, 90)]
        assert levels == sorted(levels) and levels[0] > 0


def test_scene_is_a_pure_function_of_its_seed():
    a = make_scene("s", np.random.default_rng(5), max_objects=3)
    b = make_scene("s", np.random.default_rng(5), max_objects=3)
    assert [m.name for m in a.meshes] == [m.name for m in b.meshes]
    for ma, mb in zip(a.meshes, b.meshes):
        assert ma.location == mb.location and ma.material == mb.material
        if ma.verts is not None:
            assert np.array_equal(ma.verts, mb.verts)
    assert a.camera == b.camera


def test_scenes_hold_one_to_n_foreground_objects_of_many_kinds_with_valid_meshes():
    kinds, counts = set(), set()
    for seed in range(40):
        scene = make_scene("s", np.random.default_rng(seed), max_objects=3)
        fg = scene.foreground
        counts.add(len(fg))
        kinds |= {m.kind for m in fg}
        for mesh in scene.meshes:
            if mesh.verts is None:
                continue
            assert np.isfinite(mesh.verts).all()
            assert all(0 <= i < len(mesh.verts) for face in mesh.faces for i in face)
        # foreground objects do not overlap: their footprints are apart
        for i, a in enumerate(fg):
            for b in fg[i + 1:]:
                assert math.dist(a.location[:2], b.location[:2]) > 0.05
        # the camera stands outside the group, above the ground, looking at it
        cam = np.array(scene.camera.location)
        assert min(math.dist(cam[:2], m.location[:2]) for m in fg) > 0.5 and cam[2] > 0.3
    assert counts == {1, 2, 3}
    assert len(kinds) >= 6 and kinds <= set(FOREGROUND_KINDS)
