import json

import cv2
import numpy as np
import pytest

from harmcli.data.composites import foreground_box, make_composites, paste_into_box, read_manifest
from harmcli.data.retouch import random_retouch
from harmcli.errors import DatasetError, UsageError
from tests.conftest import object_mask, synthetic_photo


def write_source(root, rng, count=6, size=(64, 80)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    h, w = size
    for i in range(count):
        photo = synthetic_photo(rng, h, w)
        y0, x0 = rng.integers(4, h // 3), rng.integers(4, w // 3)
        mask = object_mask(h, w, (y0, y0 + h // 2, x0, x0 + w // 3))
        cv2.imwrite(str(root / "images" / f"p{i}.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"p{i}.png"), mask)
    return root


def test_paste_stays_inside_target_box(rng):
    photo = synthetic_photo(rng, 60, 90).astype(np.float32) / 255
    mask = object_mask(60, 90, (5, 50, 10, 40)).astype(np.float32) / 255
    box = (20, 50, 50, 80)
    for _ in range(10):
        _, moved = paste_into_box(photo, mask, box, (60, 90), rng)
        y0, y1, x0, x1 = foreground_box(moved)
        assert y0 >= box[0] - 1 and y1 <= box[1] + 1 and x0 >= box[2] - 1 and x1 <= box[3] + 1
        assert (moved > 0.5).sum() > 0.3 * (mask > 0.5).sum() * 0  # non-empty
        assert (moved > 0.5).any()


def test_make_composites_real_and_retouch(tmp_path, rng):
    src = write_source(tmp_path / "src", rng)
    out = tmp_path / "out"
    rows = make_composites(src, out, modes=("real", "retouch"), seed=3, val_fraction=0.0)
    manifest = list(read_manifest(out))
    assert manifest == json.loads(json.dumps(rows))
    roles = {r["role"] for r in rows}
    assert roles == {"real", "adversarial", "supervised"}
    for row in rows:
        comp = cv2.imread(str(out / row["composite"]))
        mask = cv2.imread(str(out / row["mask"]), cv2.IMREAD_GRAYSCALE)
        bg = cv2.imread(str(out / row["background"]))
        assert comp.shape[:2] == mask.shape == bg.shape[:2]
        outside = mask == 0
        if row["role"] in ("adversarial", "real"):
            # The composite is the inpainted background wherever the pasted mask is 0.
            assert np.abs(comp[outside].astype(int) - bg[outside].astype(int)).max() <= 1
        if row["role"] == "supervised":
            target = cv2.imread(str(out / row["target"]))
            # Outside the mask the composite already equals the target; inside it differs.
            assert np.abs(comp[outside].astype(int) - target[outside].astype(int)).max() <= 1
            inside = mask > 200
            assert np.abs(comp[inside].astype(int) - target[inside].astype(int)).mean() > 1


def test_inpainted_background_removes_the_old_object(tmp_path, rng):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    photo = np.full((64, 64, 3), 40, np.uint8)
    photo[20:44, 20:44] = (250, 20, 20)  # a saturated red object on a dark gray background
    mask = np.zeros((64, 64), np.uint8)
    mask[20:44, 20:44] = 255
    for i in range(2):
        cv2.imwrite(str(src / "images" / f"q{i}.png"), photo)
        cv2.imwrite(str(src / "masks" / f"q{i}.png"), mask)
    rows = make_composites(src, tmp_path / "out", modes=("real",), seed=0, val_fraction=0.0)
    bg = cv2.imread(str(tmp_path / "out" / rows[0]["background"]))
    assert np.abs(bg[24:40, 24:40].astype(int) - 40).max() < 20  # filled with the surroundings, not red


def test_same_seed_same_output(tmp_path, rng):
    src = write_source(tmp_path / "src", rng)
    a = make_composites(src, tmp_path / "a", modes=("retouch",), seed=7)
    b = make_composites(src, tmp_path / "b", modes=("retouch",), seed=7)
    for ra, rb in zip(a, b):
        assert np.array_equal(cv2.imread(str(tmp_path / "a" / ra["composite"])), cv2.imread(str(tmp_path / "b" / rb["composite"])))


def test_bad_source_is_skipped_and_reported(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=3)
    (src / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    (src / "masks" / "broken.png").write_bytes(b"")
    skipped = []
    rows = make_composites(src, tmp_path / "out", modes=("retouch",), on_skip=lambda stem, why: skipped.append(stem))
    assert skipped == ["broken"]
    assert len(rows) == 6


def test_missing_layout_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="images/ and masks/"):
        make_composites(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    "case, error, fragment",
    [
        ("missing-src", DatasetError, "no such folder"),
        ("src-is-a-file", DatasetError, "is a file"),
        ("output-is-a-file", DatasetError, "is a file"),
        ("unknown-mode", UsageError, "unknown mode 'nope'"),
        ("no-mode", UsageError, "no mode"),
        ("limit-0", UsageError, "--limit"),
        ("limit-negative", UsageError, "--limit"),
        ("pairs-without-after", DatasetError, "after/"),
    ],
)
def test_a_bad_start_leaves_nothing_behind(tmp_path, rng, case, error, fragment):
    src = write_source(tmp_path / "src", rng, count=2)
    out = tmp_path / "out"
    kwargs = {}
    if case == "missing-src":
        src = tmp_path / "nowhere"
    elif case == "src-is-a-file":
        src = src / "images" / "p0.jpg"
    elif case == "output-is-a-file":
        out.write_text("my notes")
    elif case == "unknown-mode":
        kwargs["modes"] = ("real", "nope")
    elif case == "no-mode":
        kwargs["modes"] = ()
    elif case == "pairs-without-after":
        kwargs["modes"] = ("pairs",)
    else:
        kwargs["limit"] = 0 if case == "limit-0" else -1
    with pytest.raises(error, match=fragment):
        make_composites(src, out, **kwargs)
    if case == "output-is-a-file":
        assert out.read_text() == "my notes"
    else:
        assert not out.exists()


def test_photos_without_a_mask_are_reported_and_skipped(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=3)
    (src / "masks" / "p1.png").unlink()
    skipped = []
    rows = make_composites(src, tmp_path / "out", modes=("retouch",), on_skip=lambda stem, why: skipped.append((stem, why)))
    assert [stem for stem, _ in skipped] == ["p1"]
    assert "p1.jpg" in skipped[0][1] and "no mask" in skipped[0][1]
    assert sorted({row["sources"][0] for row in rows}) == ["p0", "p2"]


def test_unusable_mask_names_the_mask_file(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=3)
    cv2.imwrite(str(src / "masks" / "p2.png"), np.zeros((64, 80), np.uint8))
    skipped = []
    make_composites(src, tmp_path / "out", modes=("retouch",), on_skip=lambda stem, why: skipped.append((stem, why)))
    assert len(skipped) == 1 and str(src / "masks" / "p2.png") in skipped[0][1] and "0.0%" in skipped[0][1]


def test_no_usable_photo_is_an_error_and_writes_nothing(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=2)
    for path in (src / "images").iterdir():
        path.write_bytes(b"not a jpeg")
    skipped = []
    with pytest.raises(DatasetError, match="nothing written"):
        make_composites(src, tmp_path / "out", on_skip=lambda stem, why: skipped.append(stem))
    assert skipped == ["p0", "p1"]
    assert not (tmp_path / "out").exists()


def test_pairs_of_different_sizes_name_both_files(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=2)
    (src / "after").mkdir()
    cv2.imwrite(str(src / "after" / "p0.jpg"), synthetic_photo(rng, 64, 80))
    cv2.imwrite(str(src / "after" / "p1.jpg"), synthetic_photo(rng, 40, 80))
    skipped = []
    rows = make_composites(src, tmp_path / "out", modes=("pairs",), on_skip=lambda stem, why: skipped.append((stem, why)))
    assert {row["sources"][0] for row in rows} == {"p0"}
    assert skipped[0][0] == "p1"
    assert str(src / "after" / "p1.jpg") in skipped[0][1] and "80x40" in skipped[0][1]


def test_a_repeated_mode_is_written_once(tmp_path, rng):
    src = write_source(tmp_path / "src", rng, count=2)
    rows = make_composites(src, tmp_path / "out", modes=("retouch", "retouch"))
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)) == 4


def test_random_retouch_changes_image_within_range(rng):
    photo = synthetic_photo(rng, 32, 32).astype(np.float32) / 255
    edited = random_retouch(photo, rng)
    assert edited.shape == photo.shape and edited.dtype == np.float32
    assert 0 <= edited.min() and edited.max() <= 1
    assert np.abs(edited - photo).mean() > 0.005


def test_photos_with_another_colour_profile_are_brought_into_srgb(tmp_path):
    from harmcli.data.composites import load_photo
    from harmcli.io.colour import convert
    from harmcli.io.images import write_image
    from harmcli.io.metadata import ImageMetadata

    from tests.io.icc import ADOBE_RGB, build_rgb_profile

    adobe = build_rgb_profile("Adobe RGB (test)", **ADOBE_RGB)
    srgb = np.zeros((20, 24, 3), np.uint8)
    srgb[:] = (40, 160, 90)
    write_image(tmp_path / "plain.png", srgb)
    encoded, _ = convert(srgb, None, adobe)
    write_image(tmp_path / "adobe.png", encoded, metadata=ImageMetadata(icc=adobe))
    mask = np.full((20, 24), 255, np.uint8)
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    plain, _ = load_photo(tmp_path / "plain.png", tmp_path / "mask.png")
    tagged, _ = load_photo(tmp_path / "adobe.png", tmp_path / "mask.png")
    assert np.abs(plain - srgb / 255.0).max() < 1e-6  # untagged: sRGB already, untouched
    assert np.abs(encoded / 255.0 - srgb / 255.0).max() > 0.05  # the file's numbers differ...
    assert np.abs(tagged - plain).max() <= 2 / 255  # ...its colours do not
