"""Training reads folders it did not make (iHarmony4 layout) colour-managed: a picture tagged with another RGB
profile is converted to sRGB; untagged files are decoded as OpenCV decodes them; an unusable profile is one error."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from harmcli.errors import DatasetError
from harmcli.io.colour import convert
from harmcli.io.images import write_image
from harmcli.io.metadata import ImageMetadata
from harmcli.train.data import TrainingData, discover_samples
from tests.eval.conftest import make_iharmony
from tests.io.icc import ADOBE_RGB, PROPHOTO_RGB, build_rgb_profile

ADOBE = build_rgb_profile("Adobe RGB (1998) (test)", **ADOBE_RGB)
PROPHOTO = build_rgb_profile("ProPhoto RGB (test)", **PROPHOTO_RGB)
SIZE = 32


def _pool_pictures(folder) -> dict[str, np.ndarray]:
    """Every composite and target of ``folder`` as the training pool holds it (uint8 RGB, SIZE x SIZE)."""
    samples = discover_samples(folder)
    data = TrainingData(samples, size=SIZE)
    out = {}
    for key in data.entries:
        batch = data.batch(key, torch.arange(data.count(key)))
        for s, composite, target in zip([s for s in samples if s.split == ("val" if key == "val" else "train")],
                                        batch.composite, batch.target):
            out[s.composite.name] = (composite.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
            out[s.target.name] = (target.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return out


def _retag(path, profile: bytes, *, depth: int) -> None:
    """The picture at ``path`` saved again as the same colours in ``profile`` (converted and tagged), as a
    photographer's export in that space would be."""
    rgb = cv2.imread(str(path))[..., ::-1]
    pixels = rgb if depth == 8 else rgb.astype(np.uint16) * np.uint16(257)
    encoded, _ = convert(np.ascontiguousarray(pixels), None, profile)
    path.unlink()
    write_image(path.with_suffix(".tif" if depth == 16 else ".png"), encoded, metadata=ImageMetadata(icc=profile))


def test_an_iharmony_folder_in_other_profiles_trains_on_the_same_colours(tmp_path):
    make_iharmony(tmp_path / "plain" / "Tiny", count=5)
    shutil.copytree(tmp_path / "plain", tmp_path / "tagged")
    tagged = tmp_path / "tagged" / "Tiny"
    # The ground truths as 16-bit ProPhoto TIFFs (under their .png names: the layout pairs files by name, and the
    # reader goes by content), two composites as 8-bit Adobe RGB PNGs.
    for path in sorted((tagged / "real_images").iterdir()):
        _retag(path, PROPHOTO, depth=16)
        path.with_suffix(".tif").rename(path)
    for name in ("p0_1_1", "p2_1_1"):
        _retag(tagged / "composite_images" / f"{name}.png", ADOBE, depth=8)
    raw = cv2.imread(str(tagged / "real_images" / "p0.png"), cv2.IMREAD_UNCHANGED)[..., ::-1] / 257.0
    plain_p0 = cv2.imread(str(tmp_path / "plain" / "Tiny" / "real_images" / "p0.png"))[..., ::-1]
    assert np.abs(raw - plain_p0).mean() > 5  # read by their numbers, these would be other colours

    plain, converted = _pool_pictures(tmp_path / "plain" / "Tiny"), _pool_pictures(tagged)
    assert plain.keys() == converted.keys() and len(plain) == 10
    for name, picture in plain.items():
        diff = np.abs(converted[name].astype(int) - picture.astype(int))
        # Within the rounding of the 8-bit exports (averaged by the resize to the training size); 16 bits within 1.
        assert diff.mean() < 0.3 and diff.max() <= 3, (name, diff.max(), diff.mean())


def test_untagged_pictures_are_decoded_as_opencv_decodes_them(tmp_path):
    make_iharmony(tmp_path / "Tiny", count=5)
    for name, picture in _pool_pictures(tmp_path / "Tiny").items():
        folder = "composite_images" if name.count("_") == 2 else "real_images"
        expected = cv2.resize(cv2.imread(str(tmp_path / "Tiny" / folder / name)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        assert np.array_equal(picture, expected[..., ::-1]), name


def test_a_profile_that_cannot_be_used_is_one_error_naming_the_file(tmp_path):
    make_iharmony(tmp_path / "Tiny", count=5)
    path = tmp_path / "Tiny" / "real_images" / "p1.png"
    rgb = cv2.imread(str(path))[..., ::-1]
    damaged = ADOBE[:132] + bytes(len(ADOBE) - 132)  # the header of an RGB profile, its tag table gone
    write_image(path, np.ascontiguousarray(rgb), metadata=ImageMetadata(icc=damaged))
    with pytest.raises(DatasetError) as info:
        TrainingData(discover_samples(tmp_path / "Tiny"), size=SIZE)
    message = str(info.value)
    assert f"{path}: its colour profile cannot be used" in message and "\n" not in message
