"""Adjustment files under faults: colour 'shading maps' refused, non-ASCII names, no replacement, both or neither."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from harmcli.errors import AdjustmentError, ImageWriteError, OutputExistsError
from harmcli.io import adjustment_files
from harmcli.io.adjustment_files import load_adjustment, save_adjustment
from harmcli.ops.adjustment import Adjustment


def curved(top: float = 0.6) -> Adjustment:
    return Adjustment.from_uniform(np.tile(np.linspace(0, top, 8, dtype=np.float32), (3, 1)))


def with_shading() -> Adjustment:
    adj = curved()
    return Adjustment(adj.curve_x, adj.curve_y, np.full((4, 4), 1.5, np.float32))


def test_a_colour_tiff_is_not_a_shading_map(tmp_path):
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "photo.tif", rng.integers(0, 65535, (8, 8, 3), dtype=np.uint16), photometric="rgb")
    with pytest.raises(AdjustmentError, match="colour image"):
        load_adjustment(tmp_path / "photo.tif")
    # a gray map saved as RGB by an editor (equal channels) is still read
    gray = np.full((8, 8), 32768 + 8192, np.uint16)  # gain 2
    tifffile.imwrite(tmp_path / "gray_rgb.tif", np.dstack([gray] * 3), photometric="rgb")
    np.testing.assert_allclose(load_adjustment(tmp_path / "gray_rgb.tif").shading, 2.0)


def test_a_truncated_shading_map_is_one_clear_error(tmp_path, monkeypatch):
    import logging
    import struct

    # A TIFF header whose first page directory lies past the end of the file (a cut download, a full disk).
    (tmp_path / "cut.tif").write_bytes(b"II*\x00" + struct.pack("<I", 4096) + bytes(64))
    # Python prints a library's log records itself when no handler takes them (pytest's own would hide that).
    printed = []
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging, "lastResort", type("Sink", (logging.Handler,), {"emit": lambda s, r: printed.append(r)})())
    with pytest.raises(AdjustmentError, match=r"cut\.tif.*truncated \(invalid offset to first page 4096\)"):
        load_adjustment(tmp_path / "cut.tif")
    assert printed == []  # tifffile's "invalid offset" record went into the message, not onto the terminal


@pytest.mark.parametrize("ext", [".json", ".cube", ".acv", ".tif", ".png"])
def test_non_ascii_names(tmp_path, ext):
    path = tmp_path / f"Ölook_été{ext}"
    written = save_adjustment(with_shading(), path)
    assert written[0] == path and path.is_file()
    if ext == ".cube":
        assert 'TITLE "Ölook_été"' in path.read_text(encoding="utf-8")
    if ext != ".png":
        loaded = load_adjustment(path)
        if ext != ".tif":
            np.testing.assert_allclose(loaded.lut(256), curved().lut(256), atol=2e-3)


def test_no_replacement_without_overwrite(tmp_path):
    path = tmp_path / "look.cube"
    save_adjustment(curved(0.6), path)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        save_adjustment(curved(0.9), path, overwrite=False)
    assert path.read_bytes() == before
    save_adjustment(curved(0.9), path, overwrite=True)
    assert path.read_bytes() != before


def test_json_and_its_shading_map_are_written_both_or_neither(tmp_path, monkeypatch):
    path = tmp_path / "look.json"
    path.write_text("{}")  # the JSON exists, its shading map does not: the map must not be left alone
    with pytest.raises(OutputExistsError):
        save_adjustment(with_shading(), path, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["look.json"] and path.read_text() == "{}"

    def failing_json(*args, **kwargs):
        raise ImageWriteError("disk full")

    monkeypatch.setattr(adjustment_files, "_json_text", failing_json)
    with pytest.raises(ImageWriteError):
        save_adjustment(with_shading(), tmp_path / "other.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["look.json"]
