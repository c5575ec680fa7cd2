"""ICC profiles for tests, built from primaries (Pillow's ImageCms.createProfile only makes sRGB, LAB and XYZ).

A version 2 matrix/TRC display profile: colorants adapted to the D50 connection space with the Bradford
transform, as the ICC specification asks, and one gamma tone curve shared by the three channels. And a version 2
gray display profile (what Photoshop's "Gray Gamma 2.2" is): one gray tone curve (kTRC), data colour space GRAY.
"""

from __future__ import annotations

import struct

import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])

ADOBE_RGB = dict(primaries=((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), white=(0.3127, 0.3290), gamma=563 / 256)
PROPHOTO_RGB = dict(primaries=((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), white=(0.3457, 0.3585), gamma=1.8)
DISPLAY_P3 = dict(primaries=((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), white=(0.3127, 0.3290), gamma=2.2)


def _xyz(xy) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def colorants(primaries, white) -> np.ndarray:
    """3 x 3 matrix (columns R, G, B) of D50-adapted XYZ colorants, as stored in rXYZ/gXYZ/bXYZ."""
    p = np.stack([_xyz(xy) for xy in primaries], axis=1)
    w = _xyz(white)
    matrix = p * np.linalg.solve(p, w)[None, :]
    cone_src, cone_dst = _BRADFORD @ w, _BRADFORD @ D50
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(cone_dst / cone_src) @ _BRADFORD
    return adapt @ matrix


def _s15(values) -> bytes:
    return b"".join(struct.pack(">i", int(round(v * 65536))) for v in values)


def build_rgb_profile(name: str, *, primaries, white, gamma: float) -> bytes:
    """The bytes of an RGB display profile named ``name``."""
    m = colorants(primaries, white)
    curve = _gamma_curve(gamma)
    tags = _common_tags(name) + [
        (b"rXYZ", b"XYZ " + bytes(4) + _s15(m[:, 0])),
        (b"gXYZ", b"XYZ " + bytes(4) + _s15(m[:, 1])),
        (b"bXYZ", b"XYZ " + bytes(4) + _s15(m[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    return _profile(b"RGB ", tags)


def build_gray_profile(name: str, *, gamma: float = 2.2) -> bytes:
    """The bytes of a gray display profile named ``name`` (data colour space GRAY, a gamma kTRC)."""
    return _profile(b"GRAY", _common_tags(name) + [(b"kTRC", _gamma_curve(gamma))])


def _common_tags(name: str) -> list[tuple[bytes, bytes]]:
    text = name.encode("ascii") + b"\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    return [
        (b"desc", desc),
        (b"cprt", b"text" + bytes(4) + b"no copyright, test data\x00"),
        (b"wtpt", b"XYZ " + bytes(4) + _s15(D50)),
    ]


def _gamma_curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, int(round(gamma * 256))) + bytes(2)


def _profile(space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """Header (data colour space ``space``, connection space XYZ) + tag table + tag data."""
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = [], []
    for sig, data in tags:
        entries.append(struct.pack(">4sII", sig, offset, len(data)))
        padded = data + bytes(-len(data) % 4)
        blobs.append(padded)
        offset += len(padded)
    body = struct.pack(">I", len(tags)) + b"".join(entries) + b"".join(blobs)
    size = 128 + len(body)
    header = struct.pack(">I4sI4s4s4s", size, b"none", 0x02100000, b"mntr", space, b"XYZ ")
    header += bytes(12) + b"acsp" + b"APPL" + bytes(4) + bytes(4) + bytes(4) + bytes(8) + bytes(4)
    header += _s15(D50) + b"none" + bytes(128 - 84)
    assert len(header) == 128, len(header)
    return header + body
