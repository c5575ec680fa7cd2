"""ICC profiles for tests, built from primaries (Pillow's ImageCms.createProfile only makes sRGB, LAB and XYZ).

A version 2 matrix/TRC display profile: colorants adapted to the D50 connection space with the Bradford
transform, as the ICC specification asks, and one gamma tone curve shared by the three channels.
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
    text = name.encode("ascii") + b"\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    tags = [
        (b"desc", desc),
        (b"cprt", b"text" + bytes(4) + b"no copyright, test data\x00"),
        (b"wtpt", b"XYZ " + bytes(4) + _s15(D50)),
        (b"rXYZ", b"XYZ " + bytes(4) + _s15(m[:, 0])),
        (b"gXYZ", b"XYZ " + bytes(4) + _s15(m[:, 1])),
        (b"bXYZ", b"XYZ " + bytes(4) + _s15(m[:, 2])),
        (b"rTRC", b"curv" + bytes(4) + struct.pack(">IH", 1, int(round(gamma * 256))) + bytes(2)),
    ]
    tags += [(b"gTRC", tags[-1][1]), (b"bTRC", tags[-1][1])]
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
    header = struct.pack(">I4sI4s4s4s", size, b"none", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
    header += bytes(12) + b"acsp" + b"APPL" + bytes(4) + bytes(4) + bytes(4) + bytes(8) + bytes(4)
    header += _s15(D50) + b"none" + bytes(128 - 84)
    assert len(header) == 128, len(header)
    return header + body
