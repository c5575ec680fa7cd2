"""harmcli.batch.inputs: input forms and stem matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmcli import batch
from harmcli.errors import ImageReadError, InputMismatchError, UsageError
from harmcli.io.images import READ_EXTENSIONS

from . import touch_image


def test_input_forms():
    a, b, c = Path("a.png"), Path("b.png"), Path("c.png")
    assert batch.InputSpec.from_args([a, b, c]) == batch.InputSpec("layers", a, b, c)
    assert batch.InputSpec.from_args([a, b]) == batch.InputSpec("alpha", a, b, None)
    assert batch.InputSpec.from_args([a, b], mask=c) == batch.InputSpec("layers", a, b, c)
    assert batch.InputSpec.from_args([a], mask=c) == batch.InputSpec("composite", a, None, c)
    assert [role for role, _ in batch.InputSpec.from_args([a], mask=c).roles()] == ["composite", "mask"]
    for paths, mask in (([a], None), ([a, b, c], c), ([a, b, c, c], None)):
        with pytest.raises(UsageError):
            batch.InputSpec.from_args(paths, mask)


# ------------------------------------------------------------------------------------------- matching


def test_match_by_stem_with_shared_file_unmatched_and_ambiguous(tmp_path):
    for stem in ("a", "b", "c", "dup"):
        touch_image(tmp_path / "fg" / f"{stem}.png")
    touch_image(tmp_path / "fg" / "dup.jpg")  # two files for one stem
    (tmp_path / "fg" / "readme.txt").write_text("x")
    touch_image(tmp_path / "fg" / ".hidden.png")
    for stem in ("a", "b", "dup", "extra"):
        touch_image(tmp_path / "mask" / f"{stem}.png", channels=1)
    bg = touch_image(tmp_path / "bg.jpg")
    spec = batch.InputSpec.from_args([tmp_path / "fg", bg, tmp_path / "mask"])
    assert spec.is_folder
    plan = batch.match_items(spec, READ_EXTENSIONS)
    assert [item.stem for item in plan.items] == ["a", "b"]
    assert plan.items[0] == batch.Item("a", "layers", tmp_path / "fg" / "a.png", bg, tmp_path / "mask" / "a.png")
    assert sorted(u.stem for u in plan.unmatched) == ["c", "extra"]
    c = next(u for u in plan.unmatched if u.stem == "c")
    assert c.missing == ("mask",) and "no mask" in c.describe() and "c.png" in c.describe()
    assert [f.stem for f in plan.failures] == ["dup"] and "dup.jpg" in plan.failures[0].message


def test_match_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    touch_image(tmp_path / "a" / "x.png")
    touch_image(tmp_path / "b" / "y.png")
    with pytest.raises(ImageReadError, match="no images"):
        batch.match_items(batch.InputSpec.from_args([tmp_path / "empty"], mask=tmp_path / "b"), READ_EXTENSIONS)
    with pytest.raises(InputMismatchError, match="no file stem"):
        batch.match_items(batch.InputSpec.from_args([tmp_path / "a"], mask=tmp_path / "b"), READ_EXTENSIONS)
    with pytest.raises(ImageReadError, match="no such file"):
        batch.match_items(batch.InputSpec.from_args([tmp_path / "nope.png"], mask=tmp_path / "b"), READ_EXTENSIONS)


def test_single_item_plan(tmp_path):
    comp, mask = touch_image(tmp_path / "photo.jpg"), touch_image(tmp_path / "m.png", channels=1)
    plan = batch.match_items(batch.InputSpec.from_args([comp], mask=mask), READ_EXTENSIONS)
    assert plan.items == [batch.Item("photo", "composite", comp, None, mask)] and not plan.unmatched
