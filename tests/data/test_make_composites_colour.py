"""make-composites reads its photos colour-managed: every photo, after/ photo and composite tagged with another RGB
profile is converted to sRGB; untagged and sRGB files are used bit for bit; an unusable profile skips the photo."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import ImageCms

from harmcli.data.composites import make_composites, read_manifest
from harmcli.io.colour import convert
from harmcli.io.images import write_image
from harmcli.io.metadata import ImageMetadata
from tests.cli import files_in, run  # noqa: F401  (fixture)
from tests.conftest import object_mask, synthetic_photo
from tests.io.icc import ADOBE_RGB, PROPHOTO_RGB, build_rgb_profile

ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
PROPHOTO = build_rgb_profile("ProPhoto RGB (test)", **PROPHOTO_RGB)
SIZE = (48, 64)


def _srgb_from_another_vendor() -> bytes:
    """An sRGB profile whose bytes differ from harmcli's own (another creation date): the same space."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = b"\x07\xe8\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05"
    return bytes(profile)


def _damaged(profile: bytes) -> bytes:
    """An RGB profile whose header is fine but whose tag table is gone: LittleCMS cannot build a transform."""
    return profile[:132] + bytes(len(profile) - 132)


def _photos(count: int = 4, seed: int = 5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    h, w = SIZE
    out = {}
    for i in range(count):
        y0, x0 = int(rng.integers(4, h // 3)), int(rng.integers(4, w // 3))
        # Kept off the channel extremes, as in most photos: there an 8-bit export in a wider space loses the most.
        photo = (24 + synthetic_photo(rng, h, w) * (200 / 255)).astype(np.uint8)
        out[f"p{i}"] = (photo, object_mask(h, w, (y0, y0 + h // 2, x0, x0 + w // 3)))
    return out


def _tagged(path, srgb: np.ndarray, profile: bytes | None, *, depth: int = 8) -> None:
    """``srgb`` (uint8) saved as the same colours in ``profile`` (converted with harmcli.io.colour, and tagged)."""
    pixels = srgb if depth == 8 else srgb.astype(np.uint16) * np.uint16(257)
    if profile is not None:
        pixels, _ = convert(pixels, None, profile)
    write_image(path, pixels, metadata=ImageMetadata(icc=profile) if profile is not None else None)


def _source(root, photos, *, profiles: dict | None = None, after: dict | None = None) -> None:
    """``root/images`` (untagged 8-bit PNGs, except where ``profiles`` gives {stem: (profile, extension, depth)}),
    ``root/masks`` and, with ``after`` (the same form), ``root/after``: each photo unchanged, in that profile."""
    for sub in ("images", "masks") + (("after",) if after else ()):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for stem, (rgb, mask) in photos.items():
        profile, ext, depth = (profiles or {}).get(stem, (None, "png", 8))
        _tagged(root / "images" / f"{stem}.{ext}", rgb, profile, depth=depth)
        cv2.imwrite(str(root / "masks" / f"{stem}.png"), mask)
        if after:
            profile, ext, depth = after[stem]
            _tagged(root / "after" / f"{stem}.{ext}", rgb, profile, depth=depth)


def _pixels(path) -> np.ndarray:
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return data[..., ::-1].astype(np.int32) if data.ndim == 3 else data.astype(np.int32)


def _outputs(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in files_in(folder)}


@pytest.mark.parametrize(
    "profile, ext, depth", [(ADOBE, "png", 8), (PROPHOTO, "tif", 16)], ids=["adobe-rgb-8-bit-png", "prophoto-16-bit-tiff"]
)
def test_an_after_photo_exported_in_another_profile_is_an_identity_edit(tmp_path, profile, ext, depth):
    photos = _photos()
    src = tmp_path / "src"
    _source(src, photos, after={stem: (profile, ext, depth) for stem in photos})
    scale = 257.0 if depth == 16 else 1.0
    # The exports' numbers are far from the photos' (read as they are, this would be a strong colour edit)...
    raw = _pixels(src / "after" / f"p0.{ext}")
    assert np.abs(raw / scale - photos["p0"][0]).mean() > 5
    rows = make_composites(src, tmp_path / "out", modes=("pairs",), seed=0, val_fraction=0.0)
    assert sorted(row["id"] for row in rows) == sorted(f"pairs_{side}_{stem}_0" for side in ("fg", "bg") for stem in photos)
    for row in rows:
        stem = row["sources"][0]
        before = photos[stem][0].astype(np.int32)
        target = _pixels(tmp_path / "out" / row["target"])
        if row["mode"] == "pairs_fg":  # the target is the (untagged) photo itself, bit for bit
            assert np.array_equal(target, before)
            continue
        # ...but the edited side's target, the export, is the photo's colours: exactly what colour.py makes of the
        # file in sRGB, and the photo to within the rounding of the export's own bit depth (an 8-bit Adobe RGB
        # export, made by LittleCMS, comes back a fraction of a level off on average, a few levels in its
        # worst saturated pixels; 16 bits within one level).
        export = _pixels(src / "after" / f"{stem}.{ext}").astype(np.uint16 if depth == 16 else np.uint8)
        in_srgb = convert(export, profile, None)[0] / scale
        assert np.abs(target - np.rint(in_srgb)).max() <= (0 if depth == 8 else 1)
        diff = np.abs(target - before)
        most, worst = (2, 8) if depth == 8 else (1, 1)
        assert diff.mean() < 0.3 and np.percentile(diff, 99) <= most and diff.max() <= worst, (stem, diff.max(), diff.mean())
        # The composite is the photo inside the mask and the export outside (a blend of the two on the mask's
        # edge): the same colours on both sides, no edit to learn.
        composite = _pixels(tmp_path / "out" / row["composite"])
        assert np.abs(composite - before).mean() < 0.3
        assert (composite >= np.minimum(before, target) - 1).all() and (composite <= np.maximum(before, target) + 1).all()


def test_a_folder_mixing_profiles_gives_what_an_all_srgb_folder_gives(tmp_path):
    photos = _photos()
    _source(tmp_path / "srgb", photos)
    # One photo an 8-bit Adobe RGB export, one a 16-bit ProPhoto TIFF, the rest untagged: the same colours.
    _source(tmp_path / "mixed", photos, profiles={"p0": (ADOBE, "png", 8), "p2": (PROPHOTO, "tif", 16)})
    assert not np.array_equal(_pixels(tmp_path / "mixed" / "images" / "p0.png"), photos["p0"][0])
    modes = ("retouch", "illuminant", "composites")
    a = make_composites(tmp_path / "srgb", tmp_path / "a", modes=modes, seed=4, val_fraction=0.0)
    b = make_composites(tmp_path / "mixed", tmp_path / "b", modes=modes, seed=4, val_fraction=0.0)
    assert a == b  # the same samples, edits drawn and files
    for row in a:
        for key in ("composite", "background", "target"):
            if row[key] is not None:
                diff = np.abs(_pixels(tmp_path / "a" / row[key]) - _pixels(tmp_path / "b" / row[key]))
                # Within the rounding of the 8-bit exports (see the pairs test above); untagged photos exactly.
                if set(row["sources"]) <= {"p1", "p3"}:
                    assert diff.max() == 0, row["id"]
                assert diff.mean() < 0.3 and np.percentile(diff, 99) <= 2 and diff.max() <= 8, (row["id"], key, diff.max())


def test_untagged_and_srgb_tagged_photos_give_the_same_bytes(tmp_path):
    photos = _photos()
    _source(tmp_path / "untagged", photos, after={stem: (None, "png", 8) for stem in photos})
    _source(tmp_path / "srgb", photos, profiles=dict.fromkeys(photos, (_srgb_from_another_vendor(), "png", 8)),
            after={stem: (_srgb_from_another_vendor(), "png", 8) for stem in photos})
    # A CMYK profile describes nothing in an RGB file: it is dropped on reading (as harmonize does), so the file
    # counts as untagged.
    cmyk = ADOBE[:16] + b"CMYK" + ADOBE[20:]
    write_image(tmp_path / "srgb" / "images" / "p1.png", photos["p1"][0], metadata=ImageMetadata(icc=cmyk))
    modes = ("real", "retouch", "transfer", "illuminant", "pairs")
    make_composites(tmp_path / "untagged", tmp_path / "a", modes=modes, seed=2, val_fraction=0.3)
    make_composites(tmp_path / "srgb", tmp_path / "b", modes=modes, seed=2, val_fraction=0.3)
    first, second = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    assert len(first) > 30 and first == second
    # The photos' pixels are used as they are: a foreground-side pair's target is the photo, bit for bit.
    for row in read_manifest(tmp_path / "a"):
        if row["mode"] in ("retouch_fg", "pairs_fg"):
            assert np.array_equal(_pixels(tmp_path / "a" / row["target"]), photos[row["sources"][0]][0])


def test_a_profile_that_cannot_be_used_skips_the_photo(run, tmp_path):
    photos = _photos()
    src = tmp_path / "src"
    _source(src, photos, after={stem: (None, "png", 8) for stem in photos})
    write_image(src / "images" / "p1.png", photos["p1"][0], metadata=ImageMetadata(icc=_damaged(ADOBE)))
    write_image(src / "after" / "p3.png", photos["p3"][0], metadata=ImageMetadata(icc=_damaged(PROPHOTO)))
    result = run("make-composites", src, "-o", tmp_path / "out", "--mode", "retouch,pairs", "--val-fraction", "0")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    lines = result.err_lines
    skipped = [line for line in lines if line.startswith("skipped")]
    # p1's photo is skipped once (by every mode), p3 only where its after/ photo is read (pairs).
    assert len(skipped) == 2, lines
    assert skipped[0].startswith("skipped p1:") and f"{src / 'images' / 'p1.png'}: its colour profile cannot be used" in skipped[0]
    assert skipped[1].startswith("skipped p3:") and f"{src / 'after' / 'p3.png'}: its colour profile cannot be used" in skipped[1]
    assert lines[-1].startswith(f"wrote 10 samples to {tmp_path / 'out'}") and lines[-1].endswith("2 photo(s) skipped")
    rows = list(read_manifest(tmp_path / "out"))
    assert sorted({(row["mode"], row["sources"][0]) for row in rows}) == [
        (mode, stem) for mode in ("pairs_bg", "pairs_fg") for stem in ("p0", "p2")
    ] + [(mode, stem) for mode in ("retouch_bg", "retouch_fg") for stem in ("p0", "p2", "p3")]


def test_the_same_seed_gives_the_same_folder_from_tagged_photos(tmp_path):
    photos = _photos()
    _source(tmp_path / "src", photos, profiles={"p0": (ADOBE, "png", 8), "p1": (PROPHOTO, "tif", 16)},
            after={"p0": (PROPHOTO, "tif", 16), "p1": (None, "png", 8), "p2": (ADOBE, "png", 8), "p3": (ADOBE, "tif", 16)})
    modes = ("real", "retouch", "transfer", "illuminant", "pairs")
    make_composites(tmp_path / "src", tmp_path / "a", modes=modes, seed=9)
    shutil.copytree(tmp_path / "src", tmp_path / "copy")
    make_composites(tmp_path / "copy", tmp_path / "b", modes=modes, seed=9)
    first, second = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    assert first == second
    assert json.loads(first["manifest.jsonl"].splitlines()[0])["seed"] == 9
