"""harmcli.batch.outputs: where outputs go."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmcli import batch
from harmcli.errors import ImageWriteError, UsageError
from harmcli.io.images import WRITE_EXTENSIONS

from . import touch_image


def test_plan_output_rules(tmp_path):
    fg, bg, mask = (touch_image(tmp_path / n) for n in ("fg.png", "bg.png", "mask.png"))
    single = batch.InputSpec.from_args([fg, bg, mask])
    layout = batch.plan_output(single, tmp_path / "o.tif", extension=None, allowed=WRITE_EXTENSIONS)
    assert not layout.is_folder and layout.output_for(batch.Item("fg", "layers", fg))[0] == tmp_path / "o.tif"
    # an existing folder receives STEM.EXT
    layout = batch.plan_output(single, tmp_path, extension=None, allowed=WRITE_EXTENSIONS)
    assert layout.output_for(batch.Item("fg", "layers", fg))[0] == tmp_path / "fg.png"
    layout = batch.plan_output(single, tmp_path, extension="JPG", allowed=WRITE_EXTENSIONS)
    assert layout.output_for(batch.Item("fg", "layers", fg))[0] == tmp_path / "fg.jpg"
    bad = ((tmp_path / "o.gif", None), (tmp_path / "o", None), (tmp_path / "o.png", "jpg"), (tmp_path / "x", "gif"))
    for output, ext in bad:
        with pytest.raises(UsageError):
            batch.plan_output(single, output, extension=ext, allowed=WRITE_EXTENSIONS)

    touch_image(tmp_path / "fgs" / "a.png")
    folder = batch.InputSpec.from_args([tmp_path / "fgs", bg, mask])
    with pytest.raises(ImageWriteError, match="input folder"):
        batch.plan_output(folder, tmp_path / "fgs" / ".." / "fgs", extension=None, allowed=WRITE_EXTENSIONS)
    with pytest.raises(UsageError, match="must be a folder"):
        batch.plan_output(folder, fg, extension=None, allowed=WRITE_EXTENSIONS)
    layout = batch.plan_output(folder, tmp_path / "out", extension=None, allowed=(".png", ".jpg"))
    assert layout.is_folder and not (tmp_path / "out").exists()  # created only when processing starts
    path, note = layout.output_for(batch.Item("a", "layers", tmp_path / "fgs" / "a.JPG"))
    assert path == tmp_path / "out" / "a.JPG" and note is None  # the input's own extension, as spelled
    path, note = layout.output_for(batch.Item("a", "layers", tmp_path / "fgs" / "a.bmp"))
    assert path == tmp_path / "out" / "a.png" and ".bmp" in note  # not writable here: PNG instead


def test_written_with_lists_json_shading_map():
    assert batch.written_with(Path("d/a.json")) == [Path("d/a.json"), Path("d/a.shading.tif")]
    assert batch.written_with(Path("d/a.cube")) == [Path("d/a.cube")]
