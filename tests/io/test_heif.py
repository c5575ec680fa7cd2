"""HEIF/HEIC (phones' photos): read upright at their bit depth with their metadata, written back as HEIC.

The test files are made with pillow-heif directly (independently of harmcli.io.heif)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harmcli.errors import ImageReadError
from harmcli.io.images import read_image, write_image
from harmcli.io.metadata import ImageMetadata
from tests.cli import identity_weights, make_scene, run, write_image as write_plain  # noqa: F401 (fixtures)
from tests.io.icc import DISPLAY_P3, build_rgb_profile

pillow_heif = pytest.importorskip("pillow_heif")
P3 = build_rgb_profile("Display P3 (test)", **DISPLAY_P3)
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/heic" dc:rights="(c) Ana"/>'
       b'</rdf:RDF></x:xmpmeta>')


def _patches(height=60, width=80, dtype=np.uint8) -> np.ndarray:
    """Four flat colour patches: no symmetry, and flat enough that HEVC keeps each colour within a few levels."""
    top = np.iinfo(dtype).max
    image = np.zeros((height, width, 3), dtype)
    colours = [(0.8, 0.1, 0.15), (0.1, 0.7, 0.35), (0.2, 0.3, 0.9), (0.9, 0.85, 0.2)]
    for i, colour in enumerate(colours):
        rows = slice(0, height // 2) if i < 2 else slice(height // 2, height)
        cols = slice(0, width // 2) if i % 2 == 0 else slice(width // 2, width)
        image[rows, cols] = np.rint(np.array(colour) * top).astype(dtype)
    return image


def _heic(path, rgb: np.ndarray, *, alpha=None, icc=None, exif_tags=None, xmp=None, quality=95):
    pixels = rgb if alpha is None else np.dstack((rgb, alpha))
    mode = ("RGBA" if pixels.shape[2] == 4 else "RGB") + (";16" if pixels.dtype == np.uint16 else "")
    image = pillow_heif.from_bytes(mode=mode, size=(pixels.shape[1], pixels.shape[0]), data=pixels.tobytes())
    options = {"quality": quality}
    if icc is not None:
        options["icc_profile"] = icc
    if exif_tags:
        exif = Image.Exif()
        for tag, value in exif_tags.items():
            exif[tag] = value
        options["exif"] = exif.tobytes()
    if xmp is not None:
        options["xmp"] = xmp
    image.save(str(path), format="HEIF", **options)
    return path


def _exif_tags(blob: bytes) -> dict:
    exif = Image.Exif()
    exif.load(b"Exif\x00\x00" + blob)
    return dict(exif)


def _centres(image: np.ndarray) -> np.ndarray:
    """The colour at the centre of each quadrant (away from edges, where 4:2:0 chroma blurs)."""
    h, w = image.shape[:2]
    return np.array([image[y, x] for y in (h // 4, 3 * h // 4) for x in (w // 4, 3 * w // 4)], np.float64)


def test_an_8_bit_heic_is_read_with_its_profile_exif_and_xmp(tmp_path):
    rgb = _patches()
    path = _heic(tmp_path / "IMG_0001.HEIC", rgb, icc=P3, exif_tags={271: "Apple", 272: "iPhone"}, xmp=XMP)
    loaded = read_image(path)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == rgb.shape and loaded.alpha is None
    assert np.abs(_centres(loaded.rgb) - _centres(rgb)).max() <= 4  # HEVC is lossy; flat patches keep their colour
    assert loaded.metadata.icc == P3
    tags = _exif_tags(loaded.metadata.exif)
    assert tags[271] == "Apple" and tags[272] == "iPhone"
    assert loaded.metadata.xmp == XMP


def test_a_rotated_heic_is_read_upright_and_its_orientation_not_applied_twice(tmp_path):
    rgb = _patches()
    # pillow-heif stores an EXIF orientation 6 as the HEIF rotation box (irot), as phones do: shown turned a
    # quarter clockwise. The EXIF block still says 6.
    path = _heic(tmp_path / "portrait.heic", rgb, exif_tags={274: 6, 271: "Apple"})
    loaded = read_image(path)
    shown = np.rot90(rgb, -1)
    assert loaded.rgb.shape == shown.shape
    assert np.abs(_centres(loaded.rgb) - _centres(shown)).max() <= 4
    assert _exif_tags(loaded.metadata.exif).get(274, 1) == 1


def test_a_10_bit_heic_is_read_as_16_bit_and_written_back_with_10_bits(tmp_path):
    rgb = _patches(dtype=np.uint16)
    rgb[0, 0] = 65535  # white must read back as 65535, not 65472 (1023 shifted up)
    path = _heic(tmp_path / "hdr.heic", rgb)
    loaded = read_image(path)
    assert loaded.rgb.dtype == np.uint16 and loaded.bit_depth == 16
    assert np.abs(_centres(loaded.rgb) - _centres(rgb)).max() <= 4 * 257
    assert loaded.rgb.max() == 65535

    out = write_image(tmp_path / "out.heic", loaded.rgb)
    assert pillow_heif.open_heif(str(out), convert_hdr_to_8bit=False).info["bit_depth"] == 10
    again = read_image(out)
    assert np.abs(_centres(again.rgb) - _centres(loaded.rgb)).max() <= 4 * 257
    assert len({int(v) % 257 for v in again.rgb[..., 0].ravel()}) > 1  # 10-bit steps, not 8-bit values scaled


def test_heic_written_keeps_alpha_and_metadata(tmp_path):
    rgb, alpha = _patches(), np.full((60, 80), 200, np.uint8)
    exif = Image.Exif()
    exif[271] = "Camera"
    metadata = ImageMetadata(icc=P3, exif=exif.tobytes()[6:], dpi=(300.0, 300.0), xmp=XMP)
    out = write_image(tmp_path / "out.heic", rgb, alpha=alpha, metadata=metadata)
    loaded = read_image(out)
    assert loaded.alpha is not None and abs(int(loaded.alpha.mean()) - 200) <= 2
    assert loaded.metadata.icc == P3 and _exif_tags(loaded.metadata.exif)[271] == "Camera"
    assert loaded.metadata.xmp == metadata.xmp
    assert loaded.metadata.dpi == pytest.approx((300.0, 300.0))  # in EXIF, HEIF's only place for it


def test_a_damaged_heic_is_a_read_error(tmp_path):
    path = _heic(tmp_path / "whole.heic", _patches())
    cut = tmp_path / "cut.heic"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ImageReadError, match="cut.heic"):
        read_image(cut)
    fake = tmp_path / "fake.heic"
    fake.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40)
    with pytest.raises(ImageReadError, match="fake.heic"):
        read_image(fake)


def test_harmonize_reads_and_writes_heic(run, tmp_path, identity_weights):
    scene = make_scene()
    comp = _heic(tmp_path / "IMG_0002.heic", scene.composite(), icc=P3, exif_tags={271: "Apple"})
    mask = write_plain(tmp_path / "mask.png", scene.mask)
    for name in ("out.heic", "out.jpg", "out.png"):
        result = run("harmonize", comp, "-m", mask, "-o", tmp_path / name, "--weights", identity_weights)
        assert result.code == 0, result.err
        written = read_image(tmp_path / name)
        assert written.metadata.icc == P3 and _exif_tags(written.metadata.exif)[271] == "Apple"
        source = read_image(comp).rgb.astype(int)
        # Identity weights: the picture is the input (bit for bit in PNG), up to a lossy codec's own loss.
        if name.endswith(".png"):
            assert np.array_equal(written.rgb, source)
        else:
            assert np.abs(written.rgb.astype(int) - source).mean() < 6

    # A folder of phone photos: outputs keep the .heic extension; a damaged file is one line, the others written.
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "done"
    photos.mkdir()
    for i in range(2):
        _heic(photos / f"IMG_{i}.heic", scene.composite())
        write_plain(masks / f"IMG_{i}.png", scene.mask)
    (photos / "IMG_9.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40)
    write_plain(masks / "IMG_9.png", scene.mask)
    result = run("harmonize", photos, "-m", masks, "-o", out, "--weights", identity_weights)
    assert result.code == 1, result.err
    assert sorted(p.name for p in out.iterdir()) == ["IMG_0.heic", "IMG_1.heic"]
    assert "IMG_9.heic" in result.err and "Traceback" not in result.err


def test_phone_photos_feed_make_composites_and_eval(run, tmp_path):
    """HEIC photos (with their masks as PNG) are source photos like any other: composites are made from them,
    and an evaluation folder holding HEIC files is read (discover lists them, the runner decodes them)."""
    scene = make_scene(size=(96, 128))
    (tmp_path / "src" / "images").mkdir(parents=True)
    for i in range(4):
        _heic(tmp_path / "src" / "images" / f"IMG_{i}.heic", np.roll(scene.composite(), 9 * i, axis=1))
        write_plain(tmp_path / "src" / "masks" / f"IMG_{i}.png", np.roll(scene.mask, 9 * i, axis=1))
    result = run("make-composites", tmp_path / "src", "-o", tmp_path / "made", "--mode", "retouch")
    assert result.code == 0, result.err
    assert len(list((tmp_path / "made" / "composites").iterdir())) >= 4

    data = tmp_path / "evalset"
    for sub in ("composites", "masks", "gt"):
        (data / sub).mkdir(parents=True)
    _heic(data / "composites" / "a.heic", scene.composite())
    _heic(data / "gt" / "a.heic", scene.bg)
    write_plain(data / "masks" / "a.png", scene.mask)
    result = run("eval", data, "-m", "identity", "--csv", tmp_path / "scores.csv")
    assert result.code == 0, result.err
    import csv

    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert len(rows) == 1 and rows[0]["name"] == "a"
    assert rows[0]["method"] == "identity" and float(rows[0]["fMSE"]) > 100  # the composite's own error against the background photo


def test_premultiplied_alpha_is_read_as_straight_alpha(tmp_path):
    stored = np.zeros((16, 16, 4), np.uint8)
    stored[..., 0], stored[..., 3] = 100, 128  # red 100 premultiplied by alpha 128: straight red is 199
    image = pillow_heif.from_bytes(mode="RGBa", size=(16, 16), data=stored.tobytes())
    image.save(str(tmp_path / "pre.heic"), quality=-1)  # -1: lossless
    loaded = read_image(tmp_path / "pre.heic")
    assert abs(int(loaded.alpha[8, 8]) - 128) <= 1
    assert abs(int(loaded.rgb[8, 8, 0]) - 199) <= 2 and loaded.rgb[8, 8, 1:].max() <= 2


def test_a_picture_too_wide_for_hevc_is_refused_with_the_limit(tmp_path):
    with pytest.raises(Exception, match="side over 16384 pixels") as caught:
        write_image(tmp_path / "wide.heic", np.zeros((8, 16385, 3), np.uint8))
    assert type(caught.value).__name__ == "ImageWriteError"
    assert not list(tmp_path.iterdir())  # nothing half-written
