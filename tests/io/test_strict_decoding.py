"""Strict decoding: damaged data is an error, library log lines never reach the terminal, and what the reader
leaves out or interprets (frames, channels, 0/1 masks, CMYK + alpha) is said in a note. Files made here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from harmcli.errors import ImageReadError
from harmcli.io import images
from harmcli.io.images import read_image, read_mask
from harmcli.io.native_log import decoder_messages, is_corruption, readable


def gradient(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def scan_start(data: bytes) -> int:
    """Where the entropy-coded data of a baseline JPEG begins (after the SOS header)."""
    sos = data.find(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def damaged_jpeg(path: Path) -> Path:
    """Scan data overwritten in the middle, markers intact (SOI ... EOI): libjpeg only warns."""
    data = bytearray(jpeg_bytes(gradient()))
    start = scan_start(bytes(data))
    for k in range(start + 20, len(data) - 8, 5):
        if data[k] != 0xFF and data[k - 1] != 0xFF:
            data[k] = 0x55
    path.write_bytes(bytes(data))
    return path


def cut_jpeg(path: Path) -> Path:
    """Half the scan data, then an end-of-image marker: passes the header check, 'premature end of data'."""
    data = jpeg_bytes(gradient())
    start = scan_start(data)
    path.write_bytes(data[: start + (len(data) - start) // 2] + b"\xff\xd9")
    return path


def crc_broken_png(path: Path) -> Path:
    ok, encoded = cv2.imencode(".png", gradient())
    data = bytearray(encoded.tobytes())
    idat = data.find(b"IDAT")
    data[idat + 30 : idat + 60] = bytes(30)
    path.write_bytes(bytes(data))
    return path


def damaged_lzw_tiff(path: Path) -> Path:
    from PIL import Image

    buffer = Path(str(path) + ".ok.tif")
    Image.fromarray(gradient()).save(buffer, compression="tiff_lzw")
    data = bytearray(buffer.read_bytes())
    buffer.unlink()
    for k in range(20, 400, 3):  # inside the strip, which starts at byte 8
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------------------------------- capture


def test_decoder_messages_catches_fd2_and_passes_other_lines_on(capfd):
    with decoder_messages() as messages:
        os.write(2, b"Corrupt JPEG data: bad Huffman code\n")
        os.write(2, b"progress 3/10\n")  # not a library line: shown, once the decode is over
        os.write(2, b"libpng warning: iCCP: known incorrect sRGB profile\n")
    assert messages == ["Corrupt JPEG data: bad Huffman code", "libpng warning: iCCP: known incorrect sRGB profile"]
    assert capfd.readouterr().err == "progress 3/10\n"
    assert [is_corruption(m) for m in messages] == [True, False]
    assert is_corruption("[ERROR:0@0.051] global grfmt_tiff.cpp:117 TIFF_Error Using code not yet in table")
    assert not is_corruption("Warning: unknown JFIF revision number 1.03")
    assert readable("[ERROR:0@0.051] global grfmt_tiff.cpp:117 TIFF_Error Using code") == "TIFF_Error Using code"


def test_the_empty_line_ending_an_opencv_error_is_not_printed(capfd):
    # OpenCV ends a failed decode's multi-line error with an empty line; it belongs to the caught message.
    with decoder_messages() as messages:
        os.write(2, b"[ERROR:0@0.007] global grfmt_tiff.cpp:117 TIFF_Error Sorry, can not handle image\n")
        os.write(2, b"[ERROR:0@0.007] global loadsave.cpp:1412 imdecode_ imdecode_(''): can't read data: OpenCV(5.1.0) "
                    b"grfmt_tiff.cpp:933: error: (-2:Unspecified error) OpenCV TIFF: failed in function 'readData'\n\n")
        os.write(2, b"progress 3/10\n\n")  # not a library's: passed on, its empty line too
    assert len(messages) == 2
    assert capfd.readouterr().err == "progress 3/10\n\n"


def test_a_tiff_libtiff_cannot_convert_is_unsupported_not_corrupt_and_prints_nothing(tmp_path, capfd):
    # 16-bit YCbCr: OpenCV's libtiff RGBA path refuses it ("Sorry, can not handle image"); the file is intact.
    rng = np.random.default_rng(5)
    tifffile.imwrite(tmp_path / "ycc.tif", rng.integers(0, 65535, (12, 16, 3), dtype=np.uint16), photometric="ycbcr",
                     subsampling=(1, 1))
    capfd.readouterr()
    with pytest.raises(ImageReadError, match=r"ycc\.tif.*unsupported TIFF layout \(YCBCR, NONE, 16-bit") as info:
        read_image(tmp_path / "ycc.tif")
    assert "corrupt" not in str(info.value)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    "make, fragment",
    [
        (damaged_jpeg, "Corrupt JPEG data"),
        (cut_jpeg, "premature end of data segment"),
        (crc_broken_png, "libpng error"),
        (damaged_lzw_tiff, "TIFF_Error"),
    ],
    ids=["jpeg-huffman", "jpeg-cut", "png-crc", "tiff-lzw"],
)
def test_damaged_data_is_an_error_and_nothing_raw_is_printed(tmp_path, capfd, make, fragment):
    suffix = {"damaged_jpeg": ".jpg", "cut_jpeg": ".jpg", "crc_broken_png": ".png", "damaged_lzw_tiff": ".tif"}
    path = make(tmp_path / f"bad{suffix[make.__name__]}")
    capfd.readouterr()
    with pytest.raises(ImageReadError, match="corrupt") as info:
        read_image(path)
    assert str(path) in str(info.value) and fragment.lower() in str(info.value).lower()
    with pytest.raises(ImageReadError):
        read_mask(path)
    assert capfd.readouterr().err == ""  # the libraries' own lines never reach the terminal


def test_a_tiff_without_its_page_directory_is_one_line_and_tifffile_prints_nothing(tmp_path, monkeypatch):
    import logging
    import struct

    # The first page directory lies past the end of the file (a cut download): tifffile logs "invalid offset to
    # first page" and finds no page. Python prints such a record itself when no handler takes it (pytest's own
    # handler would hide that here).
    path = tmp_path / "cut.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 4096) + bytes(64))
    printed = []
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging, "lastResort", type("Sink", (logging.Handler,), {"emit": lambda s, r: printed.append(r)})())
    with pytest.raises(ImageReadError, match=r"cut\.tif.*not a readable TIFF \(invalid offset to first page 4096\)"):
        read_image(path)
    assert printed == []


def test_intact_files_still_read_with_nothing_printed(tmp_path, capfd):
    rgb = gradient()
    (tmp_path / "ok.jpg").write_bytes(jpeg_bytes(rgb))
    from PIL import Image

    Image.fromarray(rgb).save(tmp_path / "ok.tif", compression="tiff_lzw")
    assert np.abs(read_image(tmp_path / "ok.jpg").rgb.astype(int) - rgb).max() < 12
    np.testing.assert_array_equal(read_image(tmp_path / "ok.tif").rgb, rgb)
    assert capfd.readouterr().err == ""


# ------------------------------------------------------------------------------------------- notes


def test_zero_one_mask_is_binary_with_a_note(tmp_path):
    mask = np.zeros((12, 16), np.uint8)
    mask[2:8, 3:9] = 1
    cv2.imwrite(str(tmp_path / "m01.png"), mask)
    notes: list[str] = []
    read = read_mask(tmp_path / "m01.png", notes=notes)
    np.testing.assert_array_equal(read, mask.astype(np.float32))
    assert len(notes) == 1 and "0 and 1" in notes[0] and "m01.png" in notes[0]
    cv2.imwrite(str(tmp_path / "m16.png"), mask.astype(np.uint16))  # 16-bit 0/1 too
    np.testing.assert_array_equal(read_mask(tmp_path / "m16.png"), mask.astype(np.float32))
    # an ordinary mask: no note, values / 255
    cv2.imwrite(str(tmp_path / "m255.png"), mask * 200)
    notes = []
    assert read_mask(tmp_path / "m255.png", notes=notes).max() == pytest.approx(200 / 255) and notes == []


def test_cmyk_with_alpha_is_read_like_cmyk(tmp_path, capfd):
    rng = np.random.default_rng(3)
    cmyka = rng.integers(0, 256, (12, 16, 5), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "cmyka.tif", cmyka, photometric="separated", extrasamples=["unassalpha"])
    tifffile.imwrite(tmp_path / "cmyk.tif", cmyka[..., :4], photometric="separated")
    capfd.readouterr()
    with_alpha, without = read_image(tmp_path / "cmyka.tif"), read_image(tmp_path / "cmyk.tif")
    np.testing.assert_array_equal(with_alpha.rgb, without.rgb)  # the same conversion as OpenCV's libtiff
    np.testing.assert_array_equal(with_alpha.alpha, cmyka[..., 4])
    assert without.alpha is None  # libtiff's opaque alpha is not the file's: an RGB output stays RGB
    c, m, y, k = (cmyka[..., i].astype(int) for i in range(4))
    np.testing.assert_array_equal(with_alpha.rgb[..., 0], (255 - k) * (255 - c) // 255)
    assert with_alpha.notes == [] and capfd.readouterr().err == ""


def test_16_bit_cmyk_tiff_is_read_at_16_bits_like_8_bit_cmyk(tmp_path, capfd):
    # Photoshop's 16-bit CMYK TIFF: OpenCV's libtiff converts 8-bit CMYK only ("Sorry, can not handle image").
    rng = np.random.default_rng(6)
    cmyk = rng.integers(0, 65536, (12, 16, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "cmyk16.tif", cmyk, photometric="separated")
    tifffile.imwrite(tmp_path / "cmyk8.tif", (cmyk >> 8).astype(np.uint8), photometric="separated")
    capfd.readouterr()
    deep, flat = read_image(tmp_path / "cmyk16.tif"), read_image(tmp_path / "cmyk8.tif")  # flat: OpenCV's libtiff
    assert deep.bit_depth == 16 and deep.alpha is None and deep.notes == []
    c, k = cmyk[..., 0].astype(np.int64), cmyk[..., 3].astype(np.int64)
    np.testing.assert_array_equal(deep.rgb[..., 0], (65535 - k) * (65535 - c) // 65535)
    assert np.abs((deep.rgb.astype(int) >> 8) - flat.rgb.astype(int)).max() <= 2  # the same conversion
    assert capfd.readouterr().err == ""


def test_cmyk_tiffs_harmcli_cannot_decode_say_why(tmp_path):
    import struct

    cmyk = np.zeros((12, 16, 4), np.uint16)
    tifffile.imwrite(tmp_path / "lzw16.tif", cmyk, photometric="separated", compression="zlib")
    data = bytearray((tmp_path / "lzw16.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "lzw16.tif") as tif:
        offset = tif.pages[0].tags[259].valueoffset
    struct.pack_into("<H", data, offset, 5)  # Compression: LZW, which tifffile decodes only with imagecodecs
    (tmp_path / "lzw16.tif").write_bytes(bytes(data))
    if importlib.util.find_spec("imagecodecs") is None:
        with pytest.raises(ImageReadError, match=r"lzw16\.tif.*a 16-bit CMYK TIFF compressed with LZW.*save it as RGB"):
            read_image(tmp_path / "lzw16.tif")
    tifffile.imwrite(tmp_path / "inks.tif", cmyk.astype(np.uint8), photometric="separated", extratags=[(332, 3, 1, 2, True)])
    with pytest.raises(ImageReadError, match=r"inks\.tif.*separated TIFF whose 4 inks are not CMYK"):
        read_image(tmp_path / "inks.tif")


def test_extra_channels_and_pages_are_noted(tmp_path):
    rng = np.random.default_rng(4)
    six = rng.integers(0, 256, (12, 16, 6), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "six.tif", six, photometric="rgb", extrasamples=["unassalpha", "unspecified", "unspecified"])
    loaded = read_image(tmp_path / "six.tif")
    np.testing.assert_array_equal(loaded.rgb, six[..., :3])
    np.testing.assert_array_equal(loaded.alpha, six[..., 3])
    assert len(loaded.notes) == 1 and "6 channels" in loaded.notes[0] and "other 2" in loaded.notes[0]

    pages = np.stack([gradient(12, 16), 255 - gradient(12, 16)])
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="rgb")
    loaded = read_image(tmp_path / "pages.tif")
    np.testing.assert_array_equal(loaded.rgb, pages[0])
    assert len(loaded.notes) == 1 and "2 pages" in loaded.notes[0]

    assert len(read_image(tmp_path / "six.tif").notes) == 1  # one page: no page note


@pytest.mark.parametrize("ext", [".png", ".webp"])
def test_animations_are_noted(tmp_path, ext):
    from PIL import Image

    if ext == ".webp" and ".webp" not in images.READ_EXTENSIONS:
        pytest.skip("this OpenCV build has no WebP")
    frames = [Image.fromarray(np.roll(gradient(), 9 * k, axis=1)) for k in range(3)]
    path = tmp_path / f"anim{ext}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    loaded = read_image(path)
    assert len(loaded.notes) == 1 and "3 frames" in loaded.notes[0] and "first frame" in loaded.notes[0]
    np.testing.assert_array_equal(loaded.rgb, gradient())  # the first frame
    frames[0].save(tmp_path / f"still{ext}", lossless=True)
    assert read_image(tmp_path / f"still{ext}").notes == []


# ------------------------------------------------------------------------------------------- pixel cap


def test_opencv_pixel_cap_is_refused_with_a_clear_line(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", gradient())[1].tobytes())
    monkeypatch.setattr(images, "_OPENCV_MAX_PIXELS", 1000)  # as if cv2 had been loaded before harmcli
    with pytest.raises(ImageReadError, match="more than OpenCV in this process decodes") as info:
        read_image(tmp_path / "a.png", max_pixels=10**9)
    assert "OPENCV_IO_MAX_IMAGE_PIXELS" in str(info.value) and "Assertion" not in str(info.value)


def test_harmcli_lifts_opencvs_cap_before_cv2_loads():
    code = "import os, harmcli, cv2; print(harmcli.OPENCV_PIXEL_CAP_LIFTED, os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", str(1 << 40)]
    code = "import cv2, harmcli; from harmcli.io import images; print(harmcli.OPENCV_PIXEL_CAP_LIFTED, images._OPENCV_MAX_PIXELS)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", str(1 << 30)]  # cv2 first: OpenCV's default stands, and harmcli knows it


@pytest.mark.parametrize("photometric", ["cielab", "icclab"])
def test_a_lab_tiff_is_refused_not_converted_without_colour_management(tmp_path, photometric):
    """libtiff's own Lab conversion came out about 12 levels off, silently; Lab is refused as a Lab .psd is."""
    path = tmp_path / "lab.tif"
    lab = np.zeros((16, 16, 3), np.uint8)
    lab[..., 0] = 117
    tifffile.imwrite(path, lab, photometric=photometric)
    with pytest.raises(ImageReadError, match=r"a Lab TIFF .*convert it to RGB"):
        read_image(path)
