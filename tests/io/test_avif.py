"""AVIF (web exports, some phones and cameras): read upright at 8 bits with their metadata, written back as AVIF.

The test files are made with Pillow's AVIF plugin directly (and a 10-bit one with PyAV's AV1 encoder),
independently of harmcli.io.avif."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from harmcli.errors import ImageReadError
from harmcli.io import avif, heif
from harmcli.io.images import output_bit_depth_for, read_image, write_image
from harmcli.io.metadata import ImageMetadata
from tests.cli import identity_weights, make_scene, run, write_image as write_plain  # noqa: F401
from tests.io.icc import DISPLAY_P3, build_rgb_profile

AvifImagePlugin = pytest.importorskip("PIL.AvifImagePlugin")
if not AvifImagePlugin.SUPPORTED:
    pytest.skip("this Pillow has no AVIF support", allow_module_level=True)

P3 = build_rgb_profile("Display P3 (test)", **DISPLAY_P3)
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/avif" dc:rights="(c) Ana"/>'
       b'</rdf:RDF></x:xmpmeta>')
_PLACEHOLDER_TAG = 0x0113  # unused by EXIF, one above Orientation (0x0112): keeps IFD0 sorted once renamed


def _patches(height=60, width=80, dtype=np.uint8) -> np.ndarray:
    """Four flat colour patches: no symmetry, and flat enough that AV1 keeps each colour within a few levels."""
    top = np.iinfo(dtype).max
    image = np.zeros((height, width, 3), dtype)
    colours = [(0.8, 0.1, 0.15), (0.1, 0.7, 0.35), (0.2, 0.3, 0.9), (0.9, 0.85, 0.2)]
    for i, colour in enumerate(colours):
        rows = slice(0, height // 2) if i < 2 else slice(height // 2, height)
        cols = slice(0, width // 2) if i % 2 == 0 else slice(width // 2, width)
        image[rows, cols] = np.rint(np.array(colour) * top).astype(dtype)
    return image


def _avif(path, rgb: np.ndarray, *, alpha=None, icc=None, exif_tags=None, xmp=None, quality=90, file_orientation=None):
    """An AVIF written by Pillow. An Orientation in ``exif_tags`` becomes the irot/imir boxes (Pillow moves it
    there and drops the tag); ``file_orientation`` is an Orientation tag left in the stored EXIF block itself."""
    pixels = rgb if alpha is None else np.dstack((rgb, alpha))
    options = {"quality": quality}
    if icc is not None:
        options["icc_profile"] = icc
    exif = Image.Exif()
    for tag, value in (exif_tags or {}).items():
        exif[tag] = value
    if file_orientation is not None:
        exif[_PLACEHOLDER_TAG] = file_orientation
    blob = exif.tobytes() if len(exif) else None
    if blob is not None:
        options["exif"] = blob
    if xmp is not None:
        options["xmp"] = xmp
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="AVIF", **options)
    data = out.getvalue()
    if file_orientation is not None:
        # Pillow would move an Orientation tag into the boxes, so the placeholder is renamed in the file instead.
        order = "<" if blob[6:8] == b"II" else ">"
        entry = struct.pack(order + "HHI", _PLACEHOLDER_TAG, 3, 1)
        assert data.count(entry) == 1
        data = data.replace(entry, struct.pack(order + "HHI", 274, 3, 1))
    path.write_bytes(data)
    return path


def _exif_tags(blob: bytes) -> dict:
    exif = Image.Exif()
    exif.load(b"Exif\x00\x00" + blob)
    return dict(exif)


def _centres(image: np.ndarray) -> np.ndarray:
    """The colour at the centre of each quadrant (away from edges, where 4:2:0 chroma blurs)."""
    h, w = image.shape[:2]
    return np.array([image[y, x] for y in (h // 4, 3 * h // 4) for x in (w // 4, 3 * w // 4)], np.float64)


# How stored pixels are shown for each EXIF Orientation (the meaning the irot/imir boxes are mapped to).
_SHOWN = {
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a.swapaxes(0, 1), 2),
    8: lambda a: np.rot90(a, 1),
}


def test_an_8_bit_avif_is_read_with_its_profile_exif_and_xmp(tmp_path):
    rgb = _patches()
    path = _avif(tmp_path / "export.AVIF", rgb, icc=P3, exif_tags={271: "Canon", 272: "EOS R5"}, xmp=XMP)
    loaded = read_image(path)
    assert loaded.rgb.dtype == np.uint8 and loaded.bit_depth == 8 and loaded.rgb.shape == rgb.shape
    assert loaded.alpha is None and loaded.notes == []
    assert np.abs(_centres(loaded.rgb) - _centres(rgb)).max() <= 4  # AV1 is lossy; flat patches keep their colour
    assert loaded.metadata.icc == P3
    tags = _exif_tags(loaded.metadata.exif)
    assert tags[271] == "Canon" and tags[272] == "EOS R5"
    assert loaded.metadata.xmp == XMP


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_a_rotated_avif_is_read_upright_once(tmp_path, orientation):
    # libavif hands out the stored pixels unturned; Pillow writes an EXIF Orientation as the irot/imir boxes
    # (removing the tag from the stored EXIF) and reads the boxes back as the Orientation of info["exif"]. So
    # the boxes are the only record of the turn, and reading must apply them once.
    rgb = _patches()
    path = _avif(tmp_path / "turned.avif", rgb, exif_tags={274: orientation, 271: "Camera"})
    data = path.read_bytes()
    assert b"irot" in data or b"imir" in data
    loaded = read_image(path)
    shown = _SHOWN[orientation](rgb)
    assert loaded.rgb.shape == shown.shape
    assert np.abs(_centres(loaded.rgb) - _centres(shown)).max() <= 4
    tags = _exif_tags(loaded.metadata.exif)
    assert tags.get(274, 1) == 1 and tags[271] == "Camera"


def test_an_avif_exif_orientation_is_not_applied_over_the_boxes(tmp_path):
    # As in HEIF, the boxes decide and an Orientation in the stored EXIF block is informational: with no box it
    # turns nothing, and alongside a box saying the same (as phones write both) the picture is turned once.
    rgb = _patches()
    path = _avif(tmp_path / "exif_only.avif", rgb, exif_tags={271: "Camera"}, file_orientation=6)
    assert b"irot" not in path.read_bytes() and b"imir" not in path.read_bytes()
    only_exif = read_image(path)
    assert only_exif.rgb.shape == rgb.shape
    assert np.abs(_centres(only_exif.rgb) - _centres(rgb)).max() <= 4
    assert _exif_tags(only_exif.metadata.exif).get(274, 1) == 1

    both = read_image(_avif(tmp_path / "both.avif", rgb, exif_tags={274: 6}, file_orientation=6))
    shown = np.rot90(rgb, -1)
    assert both.rgb.shape == shown.shape
    assert np.abs(_centres(both.rgb) - _centres(shown)).max() <= 4
    assert _exif_tags(both.metadata.exif).get(274, 1) == 1


def _ten_bit_avif(path, rgb16: np.ndarray):
    """A 10-bit AVIF written by PyAV (SVT-AV1 and FFmpeg's AVIF muxer): Pillow cannot write one."""
    av = pytest.importorskip("av")
    if "libsvtav1" not in av.codecs_available or "avif" not in av.formats_available:
        pytest.skip("this PyAV build has no 10-bit AV1 encoder or AVIF muxer")
    with av.open(str(path), "w", format="avif") as container:
        stream = container.add_stream("libsvtav1", rate=1, options={"crf": "20"})
        stream.width, stream.height, stream.pix_fmt = rgb16.shape[1], rgb16.shape[0], "yuv420p10le"
        frame = av.VideoFrame.from_ndarray(rgb16, format="rgb48le").reformat(format="yuv420p10le")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def test_a_10_bit_avif_is_read_at_8_bits_with_a_note(tmp_path):
    rgb16 = _patches(64, 96, dtype=np.uint16)
    path = _ten_bit_avif(tmp_path / "hdr.avif", rgb16)
    loaded = read_image(path)
    assert loaded.rgb.dtype == np.uint8 and loaded.bit_depth == 8
    assert np.abs(_centres(loaded.rgb) - _centres(rgb16) / 257).max() <= 4
    assert len(loaded.notes) == 1 and "10-bit" in loaded.notes[0] and "read at 8 bits" in loaded.notes[0]
    assert "hdr.avif" in loaded.notes[0]


def test_16_bit_data_is_written_as_8_bit_avif_and_gray_as_monochrome(tmp_path):
    assert output_bit_depth_for(tmp_path / "out.avif", 16) == 8
    rgb16 = _patches(dtype=np.uint16)
    out = write_image(tmp_path / "out.avif", rgb16)
    loaded = read_image(out)
    assert loaded.rgb.dtype == np.uint8 and loaded.notes == []  # an 8-bit file: nothing was left out reading it
    assert np.abs(_centres(loaded.rgb) - _centres(rgb16) / 257).max() <= 4

    gray = np.tile(np.linspace(20, 230, 80).astype(np.uint8)[None], (60, 1))
    out = write_image(tmp_path / "gray.avif", gray)
    assert Image.open(out).mode == "L"  # 4:0:0, no chroma planes
    loaded = read_image(out)
    assert loaded.rgb.shape == (60, 80, 3)
    assert all(np.array_equal(loaded.rgb[..., 0], loaded.rgb[..., c]) for c in (1, 2))
    assert np.abs(loaded.rgb[..., 0].astype(int) - gray).max() <= 4


def test_avif_written_keeps_alpha_and_metadata(tmp_path):
    rgb = _patches()
    alpha = np.full((60, 80), 200, np.uint8)
    alpha[:, :20] = 0
    exif = Image.Exif()
    exif[271] = "Camera"
    exif[274] = 1
    metadata = ImageMetadata(icc=P3, exif=exif.tobytes()[6:], dpi=(300.0, 300.0), xmp=XMP)
    out = write_image(tmp_path / "out.avif", rgb, alpha=alpha, metadata=metadata, jpeg_quality=90)
    data = out.read_bytes()
    assert b"irot" not in data and b"imir" not in data  # upright output: no turn recorded
    loaded = read_image(out)
    assert loaded.alpha is not None and loaded.alpha.dtype == np.uint8
    assert np.abs(loaded.alpha.astype(int) - alpha).max() <= 2
    assert np.abs(_centres(loaded.rgb) - _centres(rgb)).max() <= 4
    assert loaded.metadata.icc == P3
    tags = _exif_tags(loaded.metadata.exif)
    assert tags[271] == "Camera" and tags.get(274, 1) == 1
    assert loaded.metadata.dpi == (300.0, 300.0)  # EXIF is AVIF's only place for a resolution
    assert loaded.metadata.xmp == metadata.xmp


def test_a_damaged_avif_is_a_read_error(tmp_path):
    path = _avif(tmp_path / "whole.avif", np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    data = path.read_bytes()
    cut = tmp_path / "cut.avif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.avif.*truncated"):
        read_image(cut)
    fake = tmp_path / "fake.avif"
    fake.write_bytes(b"\x00\x00\x00\x18ftypavif" + b"\x00" * 40)
    with pytest.raises(ImageReadError, match=r"fake\.avif"):
        read_image(fake)


def test_heic_and_avif_files_are_told_apart(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    rgb = _patches()
    heic = tmp_path / "phone.heic"
    pillow_heif.from_bytes(mode="RGB", size=(80, 60), data=rgb.tobytes()).save(str(heic), format="HEIF")
    avif_file = _avif(tmp_path / "web.avif", rgb)
    heic_data, avif_data = heic.read_bytes(), avif_file.read_bytes()
    assert b"mif1" in heic_data[:64] and b"mif1" in avif_data[:64]  # the structural brand both list
    assert heif.is_heif(heic_data) and not avif.is_avif(heic_data)
    assert avif.is_avif(avif_data) and not heif.is_heif(avif_data)
    # A file whose major brand is the structural one and whose AV1 brand is only among the compatible ones.
    generic = b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif" + b"\x00" * 16
    assert avif.is_avif(generic) and not heif.is_heif(generic)
    for path in (heic, avif_file):
        assert np.abs(_centres(read_image(path).rgb) - _centres(rgb)).max() <= 4


def test_harmonize_reads_and_writes_avif(run, tmp_path, identity_weights):
    scene = make_scene()
    comp = _avif(tmp_path / "export.avif", scene.composite(), icc=P3, exif_tags={271: "Camera"})
    mask = write_plain(tmp_path / "mask.png", scene.mask)
    source = read_image(comp).rgb.astype(int)
    for name in ("out.avif", "out.png"):
        result = run("harmonize", comp, "-m", mask, "-o", tmp_path / name, "--weights", identity_weights)
        assert result.code == 0, result.err
        written = read_image(tmp_path / name)
        assert written.metadata.icc == P3 and _exif_tags(written.metadata.exif)[271] == "Camera"
        # Identity weights: the picture is the input (bit for bit in PNG), up to the codec's own loss.
        if name.endswith(".png"):
            assert np.array_equal(written.rgb, source)
        else:
            assert np.abs(written.rgb.astype(int) - source).mean() < 6

    # A folder of exports: outputs keep the .avif extension; a damaged file is one line, the others written.
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "done"
    photos.mkdir()
    for i in range(2):
        _avif(photos / f"web_{i}.avif", scene.composite())
        write_plain(masks / f"web_{i}.png", scene.mask)
    (photos / "web_9.avif").write_bytes(b"\x00\x00\x00\x18ftypavif" + b"\x00" * 40)
    write_plain(masks / "web_9.png", scene.mask)
    result = run("harmonize", photos, "-m", masks, "-o", out, "--weights", identity_weights)
    assert result.code == 1, result.err
    assert sorted(p.name for p in out.iterdir()) == ["web_0.avif", "web_1.avif"]
    assert "web_9.avif" in result.err and "Traceback" not in result.err
