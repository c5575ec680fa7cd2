"""harmcli.io.psd: a layered Photoshop file read as subject + background (+ the layers above), and written back
with the subject harmonized. The files are built here with psd-tools (tests/io/psdmake.py)."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from harmcli.errors import ImageReadError, ImageWriteError
from harmcli.io import psd as psdio
from harmcli.ops.adjustment import Adjustment

from .icc import ADOBE_RGB, build_gray_profile, build_rgb_profile
from .psdmake import GroupSpec, Layer, new_document, on_canvas, over, resolution_info, save, with_resources

W, H = 40, 30


def photo(rng, height, width, channels=3, dtype=np.uint8):
    top = np.iinfo(dtype).max
    return rng.integers(0, top, (height, width, channels), endpoint=True).astype(dtype)


def cutout(rng, height, width, dtype=np.uint8):
    """RGB + a soft elliptical alpha (0 at the corners, opaque in the middle)."""
    top = np.iinfo(dtype).max
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot((xx - width / 2 + 0.5) / (width / 2), (yy - height / 2 + 0.5) / (height / 2))
    alpha = np.rint(np.clip((1.05 - r) / 0.3, 0, 1) * top).astype(dtype)
    return np.dstack([photo(rng, height, width, 3, dtype), alpha])


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def two_layers(tmp_path, rng, *, depth=8, left=7, top=5, name="a.psd", **subject):
    dtype = np.uint16 if depth == 16 else np.uint8
    bg, fg = photo(rng, H, W, dtype=dtype), cutout(rng, 12, 14, dtype)
    psd = new_document((W, H), [Layer("Background", bg), Layer("Subject", fg, left=left, top=top, **subject)], depth=depth)
    return save(psd, tmp_path / name, preview=bg), bg, fg


# ------------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("depth", [8, 16])
def test_subject_over_background_at_its_offset(tmp_path, rng, depth):
    path, bg, fg = two_layers(tmp_path, rng, depth=depth)
    read = psdio.read_psd(path, max_pixels=10_000)
    dtype = np.uint16 if depth == 16 else np.uint8
    assert read.subject == "Subject" and read.bit_depth == depth and not read.gray
    assert read.foreground.dtype == dtype and read.foreground.shape == (H, W, 3)
    np.testing.assert_array_equal(read.background, bg)  # one opaque layer: bit for bit
    assert read.background_alpha is None and read.overlay is None
    np.testing.assert_array_equal(read.foreground, on_canvas(fg[..., :3], 7, 5, H, W))
    np.testing.assert_array_equal(read.coverage, on_canvas(fg[..., 3], 7, 5, H, W))  # its transparency, exactly
    assert read.coverage[:5].max() == 0 and read.coverage[:, :7].max() == 0
    np.testing.assert_array_equal(read.present, on_canvas(np.where(fg[..., 3] > 0, 255, 0).astype(np.uint8), 7, 5, H, W))


def test_a_layer_hanging_over_the_edge_is_cut_to_the_canvas(tmp_path, rng):
    path, bg, fg = two_layers(tmp_path, rng, left=-4, top=24)
    read = psdio.read_psd(path, max_pixels=10_000)
    np.testing.assert_array_equal(read.coverage, on_canvas(fg[..., 3], -4, 24, H, W))
    np.testing.assert_array_equal(read.foreground[24:, :10], fg[:6, 4:, :3])


def test_layer_mask_opacity_and_fill_multiply_the_coverage(tmp_path, rng):
    mask = np.zeros((8, 20), np.uint8)
    mask[:, 10:] = 255
    mask[:, 5:10] = 100
    # The mask's rectangle starts 2 px left of the layer and ends above its bottom; below it the stored background
    # value (255) holds.
    path, bg, fg = two_layers(
        tmp_path, rng, mask=mask, mask_at=(5, 5), mask_background=255, opacity=204, fill=153
    )
    read = psdio.read_psd(path, max_pixels=10_000)
    full_mask = np.full((12, 14), 255.0)
    full_mask[:8] = mask[:, 2:16]
    expected = fg[..., 3] * (full_mask / 255) * (204 / 255) * (153 / 255)
    got = read.coverage[5:17, 7:21].astype(float)
    assert np.abs(got - expected).max() <= 0.5 + 1e-6  # rounded once, at the document's depth
    assert read.coverage[5:13, 7:10].max() == 0  # masked out
    # the layer mask hides, it does not remove: the pixels are still the layer's
    assert read.present[5:13, 7:10].any()


def test_disabled_layer_mask_is_ignored(tmp_path, rng):
    mask = np.zeros((12, 14), np.uint8)
    path, _, fg = two_layers(tmp_path, rng, mask=mask)
    psd = psdio._open(path.read_bytes(), 10_000)
    list(psd)[1].mask.disabled = True
    save(psd, path)
    read = psdio.read_psd(path, max_pixels=10_000)
    np.testing.assert_array_equal(read.coverage[5:17, 7:21], fg[..., 3])


def test_background_layers_are_composited(tmp_path, rng):
    """Two layers below the subject: a half-transparent one (opacity + its own alpha) in a pass-through group over a
    bottom layer that does not cover the whole canvas; the result has the alpha of the union."""
    bottom = photo(rng, 20, W)
    middle = np.dstack([photo(rng, H, 20), np.full((H, 20), 200, np.uint8)])
    subject = cutout(rng, 6, 6)
    psd = new_document(
        (W, H),
        [Layer("bottom", bottom), GroupSpec("grp", [Layer("middle", middle, left=20, opacity=128)]), Layer("s", subject, left=2, top=2)],
    )
    path = save(psd, tmp_path / "a.psd")
    read = psdio.read_psd(path, max_pixels=10_000)
    canvas = (np.zeros((H, W, 3)), np.zeros((H, W)))
    canvas = over(canvas, on_canvas(bottom, 0, 0, H, W) / 255, on_canvas(np.ones((20, W)), 0, 0, H, W))
    canvas = over(canvas, on_canvas(middle[..., :3], 20, 0, H, W) / 255, on_canvas(middle[..., 3] / 255 * 128 / 255, 20, 0, H, W))
    np.testing.assert_allclose(read.background_alpha, np.rint(canvas[1] * 255), atol=1)
    shown = canvas[1] > 0
    np.testing.assert_allclose(read.background[shown], np.rint(canvas[0] * 255)[shown], atol=1)
    assert read.background_alpha[25, 5] == 0 and read.background_alpha[5, 5] == 255


def test_layers_above_the_subject_become_the_overlay(tmp_path, rng):
    bg, subject = photo(rng, H, W), cutout(rng, 12, 14)
    label = np.dstack([np.full((4, 10, 3), 250, np.uint8), np.full((4, 10), 255, np.uint8)])
    hidden = np.dstack([np.zeros((H, W, 3), np.uint8), np.full((H, W), 255, np.uint8)])
    psd = new_document(
        (W, H),
        [Layer("bg", bg), Layer("subject", subject, left=7, top=5), Layer("label", label, left=1, top=1, opacity=128),
         Layer("top", hidden, visible=False)],
    )
    path = save(psd, tmp_path / "a.psd")
    read = psdio.read_psd(path, max_pixels=10_000, layer="subject")
    assert read.subject == "subject" and read.overlay is not None
    rgb, alpha = read.overlay.draw(read.background.copy(), None)
    assert alpha is None
    expected = np.rint(250 * 128 / 255 + bg[1:5, 1:11] * (1 - 128 / 255))
    np.testing.assert_allclose(rgb[1:5, 1:11], expected, atol=1)
    np.testing.assert_array_equal(rgb[6:], bg[6:])  # the hidden layer draws nothing
    # without --layer, the top visible pixel layer is the label
    assert psdio.read_psd(path, max_pixels=10_000).subject == "label"


def test_subject_inside_a_group_gets_the_groups_lower_layers_as_background(tmp_path, rng):
    bg, low, subject = photo(rng, H, W), photo(rng, 10, 10), cutout(rng, 8, 8)
    psd = new_document((W, H), [Layer("bg", bg), GroupSpec("g", [Layer("low", low, left=20, top=10), Layer("subject", subject)])])
    read = psdio.read_psd(save(psd, tmp_path / "a.psd"), max_pixels=10_000)
    assert read.subject == "subject"
    np.testing.assert_array_equal(read.background, np.where(on_canvas(np.ones((10, 10, 1), bool), 20, 10, H, W), on_canvas(low, 20, 10, H, W), bg))


def test_grayscale_document(tmp_path, rng):
    bg = rng.integers(0, 256, (H, W, 1)).astype(np.uint8)
    subject = np.dstack([rng.integers(0, 256, (6, 6)), np.full((6, 6), 255)]).astype(np.uint8)
    gray_icc = build_gray_profile("Gray Gamma 2.2 (test)")
    psd = new_document((W, H), [Layer("bg", bg), Layer("s", subject, left=3, top=3)], mode="L")
    path = save(psd, tmp_path / "g.psd", resources={1039: gray_icc})
    read = psdio.read_psd(path, max_pixels=10_000)
    assert read.gray and read.background.shape == (H, W, 3)
    np.testing.assert_array_equal(read.background[..., 1], bg[..., 0])
    np.testing.assert_array_equal(read.foreground[3:9, 3:9, 2], subject[..., 0])
    assert read.metadata.gray_icc == gray_icc and read.metadata.icc is None


def test_metadata_from_the_image_resources(tmp_path, rng):
    icc = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
    exif = b"MM\x00*\x00\x00\x00\x08\x00\x01" + struct.pack(">HHII", 271, 2, 6, 26) + b"\x00\x00\x00\x00" + b"Canon\x00"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    path, _, _ = two_layers(tmp_path, rng)
    path.write_bytes(with_resources(path.read_bytes(), {1039: icc, 1058: exif, 1060: xmp, 1005: resolution_info(300)}))
    meta = psdio.read_psd(path, max_pixels=10_000).metadata
    assert meta.icc == icc and meta.gray_icc is None
    assert meta.exif is not None and b"Canon" in meta.exif
    assert meta.xmp is not None and b"xmpmeta" in meta.xmp
    assert meta.dpi == pytest.approx((300.0, 300.0))


# ------------------------------------------------------------------------------------------- which layer, errors


def test_layer_by_name_and_the_errors_that_name_layers(tmp_path, rng):
    bg, a, b = photo(rng, H, W), cutout(rng, 6, 6), cutout(rng, 6, 6)
    psd = new_document((W, H), [Layer("Background", bg), Layer("car", a), Layer("sky", b, visible=False), Layer("car ", b)])
    path = save(psd, tmp_path / "a.psd")
    assert psdio.read_psd(path, max_pixels=10_000, layer="car").subject == "car"
    with pytest.raises(psdio.PsdLayerError, match=r"no layer named 'tree'; its layers, top to bottom: 'car ', 'sky', 'car', 'Background'"):
        psdio.read_psd(path, max_pixels=10_000, layer="tree")
    with pytest.raises(psdio.PsdLayerError, match="'sky' is hidden"):
        psdio.read_psd(path, max_pixels=10_000, layer="sky")
    # the bottom layer has nothing below it
    with pytest.raises(psdio.PsdLayerError, match="no visible layer lies below the subject 'Background'.*own layer"):
        psdio.read_psd(path, max_pixels=10_000, layer="Background")


def test_a_single_layer_is_an_error(tmp_path, rng):
    path = save(new_document((W, H), [Layer("only", photo(rng, H, W))]), tmp_path / "one.psd")
    with pytest.raises(psdio.PsdLayerError, match="needs the subject on its own layer above the background"):
        psdio.read_psd(path, max_pixels=10_000)


@pytest.mark.parametrize(
    "below, fragment",
    [
        (dict(blend="MULTIPLY"), "layer 'under' uses the multiply blend mode"),
        (dict(clipping=True), "layer 'under' is a clipping mask"),
    ],
)
def test_layers_that_are_not_composited_are_named(tmp_path, rng, below, fragment):
    psd = new_document(
        (W, H), [Layer("bg", photo(rng, H, W)), Layer("under", cutout(rng, 8, 8), **below), Layer("s", cutout(rng, 6, 6))]
    )
    with pytest.raises(psdio.PsdLayerError, match=fragment + ".*flatten"):
        psdio.read_psd(save(psd, tmp_path / "a.psd"), max_pixels=10_000)


# Blend If ranges as psd-tools holds them ((this layer, underlying layer) for the gray composite, then per channel):
# the default passes everything; "this layer" black at 64 hides the layer's dark pixels; "underlying" white at 192
# on green lets the layer show only over pixels whose green is below it.
_PASS = (0, 65535)
_DEFAULT_RANGES = ([_PASS, _PASS], [[_PASS, _PASS] for _ in range(4)])
_DARK_HIDDEN = ([(0x4040, 65535), _PASS], [[_PASS, _PASS] for _ in range(4)])
_UNDER_GREEN = ([_PASS, _PASS], [[_PASS, _PASS], [_PASS, (0, 0xC0C0)], [_PASS, _PASS], [_PASS, _PASS]])


@pytest.mark.parametrize("ranges", [_DARK_HIDDEN, _UNDER_GREEN], ids=["composite", "channel"])
def test_a_layer_with_blend_if_is_named_below_and_above(tmp_path, rng, ranges):
    bg, s = photo(rng, H, W), cutout(rng, 6, 6)
    below = new_document((W, H), [Layer("bg", bg), Layer("under", cutout(rng, 8, 8), blend_if=ranges), Layer("s", s)])
    with pytest.raises(psdio.PsdLayerError, match=r"layer 'under' uses Blend If \(Blending Options\).*flatten"):
        psdio.read_psd(save(below, tmp_path / "below.psd"), max_pixels=10_000)
    above = new_document(
        (W, H), [Layer("bg", bg), Layer("s", s), Layer("title", cutout(rng, 8, 8), blend_if=ranges)]
    )
    with pytest.raises(psdio.PsdLayerError, match=r"layer 'title' uses Blend If"):
        psdio.read_psd(save(above, tmp_path / "above.psd"), max_pixels=10_000, layer="s")
    group = new_document(
        (W, H), [Layer("bg", bg), GroupSpec("grp", [Layer("inside", cutout(rng, 8, 8))], blend_if=ranges), Layer("s", s)]
    )
    with pytest.raises(psdio.PsdLayerError, match=r"layer 'grp' is a group that uses Blend If.*flatten"):
        psdio.read_psd(save(group, tmp_path / "group.psd"), max_pixels=10_000)
    hidden = new_document((W, H), [Layer("bg", bg), Layer("under", cutout(rng, 8, 8), blend_if=ranges, visible=False), Layer("s", s)])
    np.testing.assert_array_equal(psdio.read_psd(save(hidden, tmp_path / "hidden.psd"), max_pixels=10_000).background, bg)


@pytest.mark.parametrize(
    "ranges",
    [_DEFAULT_RANGES, ([(0, 0), (0, 0)], [[(0, 0), (0, 0)] for _ in range(4)]), (None, None), ([_PASS, _PASS], [])],
    ids=["default", "all-zero", "empty", "no-channels"],
)
def test_blend_if_left_at_its_default_is_composited(tmp_path, rng, ranges):
    """The pass-everything ranges, the zeros some non-Adobe writers store and an empty block all mean "not set"."""
    bg, under, s = photo(rng, H, W), photo(rng, 8, 8), cutout(rng, 6, 6)
    psd = new_document(
        (W, H),
        [Layer("bg", bg, blend_if=ranges), GroupSpec("grp", [Layer("under", under, left=20, top=10, blend_if=ranges)], blend_if=ranges),
         Layer("s", s, blend_if=ranges)],
    )
    read = psdio.read_psd(save(psd, tmp_path / "a.psd"), max_pixels=10_000)
    assert read.subject == "s"
    expected = bg.copy()
    expected[10:18, 20:28] = under
    np.testing.assert_array_equal(read.background, expected)


def test_a_subject_with_blend_if_or_in_a_group_with_it_is_refused(tmp_path, rng):
    bg = photo(rng, H, W)
    psd = new_document((W, H), [Layer("bg", bg), Layer("s", cutout(rng, 6, 6), blend_if=_DARK_HIDDEN)])
    with pytest.raises(psdio.PsdLayerError, match=r"the subject 's' uses Blend If \(Blending Options\).*reset its Blend If"):
        psdio.read_psd(save(psd, tmp_path / "a.psd"), max_pixels=10_000)
    psd = new_document((W, H), [Layer("bg", bg), GroupSpec("g", [Layer("s", cutout(rng, 6, 6))], blend_if=_UNDER_GREEN)])
    with pytest.raises(psdio.PsdLayerError, match=r"group 'g', which uses Blend If \(Blending Options\); move the subject"):
        psdio.read_psd(save(psd, tmp_path / "b.psd"), max_pixels=10_000)


def test_subject_in_a_faded_group_is_refused(tmp_path, rng):
    psd = new_document((W, H), [Layer("bg", photo(rng, H, W)), GroupSpec("faded", [Layer("s", cutout(rng, 6, 6))], opacity=128)])
    with pytest.raises(psdio.PsdLayerError, match="group 'faded', which has 50 % opacity"):
        psdio.read_psd(save(psd, tmp_path / "a.psd"), max_pixels=10_000)


@pytest.mark.parametrize("mode, depth, fragment", [("CMYK", 8, "CMYK"), ("LAB", 8, "Lab"), ("RGB", 32, "32-bit")])
def test_other_colour_modes_and_depths_are_refused(tmp_path, mode, depth, fragment):
    from psd_tools import PSDImage

    path = save(PSDImage.new(mode, (8, 8), depth=depth), tmp_path / "x.psd")
    with pytest.raises(ImageReadError, match=fragment):
        psdio.read_psd(path, max_pixels=10_000)


def test_max_pixels_is_checked_from_the_header_before_anything_is_parsed(tmp_path):
    # A header announcing 30000 x 30000 and nothing after it: refused for its size, not as damaged.
    path = tmp_path / "big.psd"
    path.write_bytes(b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 30000, 30000, 8, 3))
    with pytest.raises(ImageReadError, match="30000x30000.*--max-pixels"):
        psdio.read_psd(path, max_pixels=100_000_000)


def test_a_layer_larger_than_max_pixels_is_refused_before_decoding(tmp_path, rng):
    psd = new_document((20, 20), [Layer("bg", photo(rng, 20, 20)), Layer("huge", cutout(rng, 40, 40), left=-10, top=-10)])
    with pytest.raises(ImageReadError, match="layer 'huge' is 40x40"):
        psdio.read_psd(save(psd, tmp_path / "a.psd"), max_pixels=1000)


def test_damaged_files(tmp_path, rng):
    path, _, _ = two_layers(tmp_path, rng)
    data = path.read_bytes()
    bad = tmp_path / "bad.psd"
    for cut in (20, 200, len(data) // 2, len(data) - 10):
        bad.write_bytes(data[:cut])
        with pytest.raises(ImageReadError, match="truncated|damaged"):
            psdio.read_psd(bad, max_pixels=10_000)
    bad.write_bytes(b"not a psd at all")
    with pytest.raises(ImageReadError, match="not a Photoshop file"):
        psdio.read_psd(bad, max_pixels=10_000)


def test_missing_psd_tools_is_one_line_naming_the_extra(tmp_path, rng, monkeypatch):
    path, _, _ = two_layers(tmp_path, rng)
    monkeypatch.setitem(sys.modules, "psd_tools", None)  # import psd_tools now raises ImportError
    with pytest.raises(psdio.PsdSupportMissing, match=r"pip install 'psd-tools>=1.26,<2'"):
        psdio.read_psd(path, max_pixels=10_000)


# ------------------------------------------------------------------------------------------- writing


def halve_red() -> Adjustment:
    ys = np.stack([np.linspace(0, 0.5, 32), np.linspace(0, 1, 32), np.linspace(0, 1, 32)]).astype(np.float32)
    return Adjustment.from_uniform(ys)


def _channels(psd):
    return {
        (layer.name, int(info.id)): data.data
        for layer in psd.descendants()
        for info, data in zip(layer._record.channel_info, layer._channels)
    }


@pytest.mark.parametrize("depth", [8, 16])
def test_write_replaces_the_subjects_colour_only(tmp_path, rng, depth):
    from harmcli.ops.apply import mask_to_float
    from harmcli.ops.paste import make_composite

    top = 65535 if depth == 16 else 255
    mask = np.full((12, 14), 255, np.uint8)
    mask[:, :4] = 0
    path, bg, fg = two_layers(tmp_path, rng, depth=depth, mask=mask)
    source = psdio.read_psd(path, max_pixels=10_000)
    composite = make_composite(source.foreground, source.background, mask_to_float(source.coverage))
    # the file again, its merged preview now the flattened picture (as Photoshop stores it)
    psd = psdio._open(path.read_bytes(), 10_000)
    path = save(psd, path, preview=composite)
    source = psdio.read_psd(path, max_pixels=10_000)
    out = psdio.write_psd(tmp_path / "out.psd", source, halve_red(), composite=composite, alpha=None)

    before, after = psdio._open(path.read_bytes(), 10_000), psdio._open(out.read_bytes(), 10_000)
    assert [layer.name for layer in after] == ["Background", "Subject"] and after.depth == depth
    old, new = _channels(before), _channels(after)
    assert old.keys() == new.keys()
    changed = sorted(key for key in old if old[key] != new[key])
    assert changed == [("Subject", 0)]  # red only: green and blue, transparency (-1) and the layer mask (-2) kept
    layer = list(after)[1]
    red = np.rint(layer.numpy("color")[..., 0] * top)
    has_pixels = fg[..., 3] > 0
    np.testing.assert_allclose(red[has_pixels], fg[..., 0][has_pixels] / 2, atol=1)  # also where the mask hides it
    np.testing.assert_array_equal(red[~has_pixels], fg[..., 0][~has_pixels])  # pixels with no alpha are left alone
    # the merged preview: the flattened document with the new layer
    coverage = mask_to_float(source.coverage)[..., None]
    new_subject = source.foreground.astype(float)
    new_subject[..., 0] /= 2
    expected = np.rint(coverage * new_subject + (1 - coverage) * bg)
    np.testing.assert_allclose(np.rint(after.numpy() * top), expected, atol=1)
    # and psd-tools reads it back as a layered file harmcli reads again
    again = psdio.read_psd(out, max_pixels=10_000)
    np.testing.assert_array_equal(again.coverage, source.coverage)


def test_write_without_adjustment_copies_the_file_and_strips_metadata_on_request(tmp_path, rng):
    path, _, _ = two_layers(tmp_path, rng)
    icc = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
    path.write_bytes(with_resources(path.read_bytes(), {1039: icc}))
    source = psdio.read_psd(path, max_pixels=10_000)
    same = psdio.write_psd(tmp_path / "same.psd", source, None, composite=source.background, alpha=None)
    assert same.read_bytes() == path.read_bytes()
    stripped = psdio.write_psd(tmp_path / "s.psd", source, None, composite=source.background, alpha=None, strip_metadata=True)
    assert psdio.read_psd(stripped, max_pixels=10_000).metadata.icc is None


def test_write_refuses_a_smart_object_subject_and_never_an_input(tmp_path, rng):
    path, _, _ = two_layers(tmp_path, rng)
    source = psdio.read_psd(path, max_pixels=10_000)
    with pytest.raises(ImageWriteError, match="input"):
        psdio.write_psd(path, source, halve_red(), composite=source.background, alpha=None, protect=(path,), overwrite=True)
    source.smart_object = True
    with pytest.raises(ImageWriteError, match="smart object"):
        psdio.write_psd(tmp_path / "x.psd", source, halve_red(), composite=source.background, alpha=None)
    assert not (tmp_path / "x.psd").exists()
