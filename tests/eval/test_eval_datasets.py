"""Dataset discovery: iHarmony4 (with list files), the iHarmony4 root, the plain layout, and the errors."""

from pathlib import Path

import pytest

from harmcli.errors import DatasetError
from harmcli.data.layouts import discover


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # discovery never decodes images


def _iharmony(root: Path, composites=("a1_1_1.jpg", "a1_1_2.jpg", "a2_1_1.jpg", "b_x3_2_1.png")) -> Path:
    for name in composites:
        _touch(root / "composite_images" / name)
        photo, obj, _ = Path(name).stem.rsplit("_", 2)
        _touch(root / "masks" / f"{photo}_{obj}.png")
        _touch(root / "real_images" / f"{photo}.jpg")
    _touch(root / "composite_images" / ".DS_Store")
    (root / "notes.md").write_text("not a list")
    return root


def test_iharmony_without_list_uses_every_composite(tmp_path):
    items = discover(_iharmony(tmp_path))
    assert [i.name for i in items] == ["a1_1_1", "a1_1_2", "a2_1_1", "b_x3_2_1"]
    item = items[-1]  # an underscore inside NAME: mask NAME_K, real NAME
    assert item.mask_path == tmp_path / "masks" / "b_x3_2.png"
    assert item.target_path == tmp_path / "real_images" / "b_x3.jpg"
    assert item.composite_path == tmp_path / "composite_images" / "b_x3_2_1.png"
    assert item.background_path is None


def test_iharmony_test_list_filters(tmp_path):
    root = _iharmony(tmp_path)
    (root / "HSet_test.txt").write_text("a1_1_2.jpg\nHSet/composite_images/a2_1_1.jpg\n\n")
    (root / "HSet_train.txt").write_text("a1_1_1.jpg\n")
    assert [i.name for i in discover(root)] == ["a1_1_2", "a2_1_1"]
    assert [i.name for i in discover(root, "train")] == ["a1_1_1"]
    assert [i.name for i in discover(root, "HSet_train.txt")] == ["a1_1_1"]
    assert [i.name for i in discover(root, str(root / "HSet_train.txt"))] == ["a1_1_1"]
    assert len(discover(root, "all")) == 4


def test_iharmony_list_errors(tmp_path):
    root = _iharmony(tmp_path)
    (root / "A_test.txt").write_text("a1_1_1.jpg\n")
    (root / "B_test.txt").write_text("a1_1_2.jpg\n")
    with pytest.raises(DatasetError, match="several test lists.*A_test.txt"):
        discover(root)
    (root / "B_test.txt").unlink()
    (root / "A_test.txt").write_text("a1_1_1.jpg\nzz_9_9.jpg\n")
    with pytest.raises(DatasetError, match="zz_9_9.jpg"):
        discover(root)
    with pytest.raises(DatasetError, match=r"no '\*_val.txt'"):
        discover(root, "val")
    with pytest.raises(DatasetError, match="not found"):
        discover(root, "missing.txt")


def test_iharmony_missing_mask_and_real_are_listed(tmp_path):
    root = _iharmony(tmp_path)
    (root / "masks" / "a2_1.png").unlink()
    (root / "real_images" / "a1.jpg").unlink()
    with pytest.raises(DatasetError) as info:
        discover(root)
    message = str(info.value)
    assert "masks/a2_1.png" in message and "real_images/a1.jpg" in message and "2 file(s) missing" in message


def test_iharmony_root_with_subsets(tmp_path):
    _iharmony(tmp_path / "HAdobe5k", ("a1_1_1.jpg", "a2_1_1.jpg"))
    _iharmony(tmp_path / "HCOCO", ("c1_1_1.jpg",))
    (tmp_path / "HAdobe5k" / "HAdobe5k_test.txt").write_text("a2_1_1.jpg\n")
    assert [i.name for i in discover(tmp_path)] == ["HAdobe5k/a2_1_1", "HCOCO/c1_1_1"]
    (tmp_path / "IHD_test.txt").write_text("HCOCO/composite_images/c1_1_1.jpg\nHAdobe5k/composite_images/a1_1_1.jpg\n")
    assert [i.name for i in discover(tmp_path, "IHD_test.txt")] == ["HAdobe5k/a1_1_1", "HCOCO/c1_1_1"]


def test_plain_layout_matches_by_stem(tmp_path):
    for stem in ("one", "two"):
        _touch(tmp_path / "composites" / f"{stem}.png")
        _touch(tmp_path / "masks" / f"{stem}.png")
        _touch(tmp_path / "gt" / f"{stem}.jpg")
    _touch(tmp_path / "gt" / "extra.jpg")  # ground truth without a composite: ignored
    items = discover(tmp_path)
    found = [(i.name, i.target_path.name, i.background_path) for i in items]
    assert found == [("one", "one.jpg", None), ("two", "two.jpg", None)]
    _touch(tmp_path / "backgrounds" / "one.png")
    _touch(tmp_path / "backgrounds" / "two.tif")
    assert [i.background_path.name for i in discover(tmp_path)] == ["one.png", "two.tif"]
    (tmp_path / "gt" / "two.jpg").unlink()
    with pytest.raises(DatasetError, match=r"gt/two\.\*"):
        discover(tmp_path)


def test_unrecognised_layout_says_what_was_expected(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError) as info:
        discover(tmp_path)
    assert "composite_images/" in str(info.value) and "composites/" in str(info.value) and "gt/" in str(info.value)
    with pytest.raises(DatasetError, match="not found"):
        discover(tmp_path / "nope")


def test_nothing_to_evaluate(tmp_path):
    for name in ("composite_images", "masks", "real_images"):
        (tmp_path / name).mkdir()
    with pytest.raises(DatasetError, match="no composites"):
        discover(tmp_path)


def test_a_file_is_not_a_dataset_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        discover(tmp_path / "notes.txt")


def test_manifest_without_the_split_names_the_splits_it_has(tmp_path):
    import json

    rows = [{"id": f"s{i}", "role": "supervised", "split": "train", "composite": "c.png", "background": "b.png",
             "mask": "m.png", "target": "t.png"} for i in range(3)]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DatasetError, match=r"split 'val' \(train: 3\); pass --split train"):
        discover(tmp_path)
    assert len(discover(tmp_path, "train")) == 3
