"""The training data's image pool: each distinct picture stored once, and a cache folder shared between runs."""

import numpy as np
import torch

from harmcli.data.composites import make_composites
from harmcli.train.data import TrainingData, discover_samples
from tests.data.test_make_composites import write_source


def _folder(tmp_path):
    src = write_source(tmp_path / "src", np.random.default_rng(3), count=4, size=(40, 40))
    make_composites(src, tmp_path / "data", modes=("real", "retouch"), seed=0, val_fraction=0.3)
    return tmp_path / "data"


def _every_batch(data):
    return {key: data.batch(key, torch.arange(data.count(key))) for key in data.entries}


def test_identical_pictures_are_stored_once_and_batches_match_the_files(tmp_path):
    import cv2

    folder = _folder(tmp_path)
    samples = discover_samples(folder)
    data = TrainingData(samples, size=32)
    pool = data.pools[0]
    files = {str(p) for s in samples for p in (s.composite, s.background, s.target) if p is not None}
    distinct = {cv2.imread(f).tobytes() for f in files}
    # The retouch targets are also backgrounds: fewer rows than files, one per distinct picture.
    assert len(pool.rgb) == len(distinct) < len(files)
    key = "supervised"
    s = [x for x in samples if x.role == "supervised" and x.split == "train"][0]
    batch = data.batch(key, torch.tensor([0]))
    expected = cv2.cvtColor(cv2.resize(cv2.imread(str(s.target)), (32, 32), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert torch.equal((batch.target[0].permute(1, 2, 0) * 255).round().to(torch.uint8), torch.from_numpy(expected))


def test_the_cache_is_made_once_and_gives_the_same_batches(tmp_path):
    folder = _folder(tmp_path)
    cache = tmp_path / "cache"
    fresh = _every_batch(TrainingData.from_folders([folder], 32))
    first = TrainingData.from_folders([folder], 32, cache_dir=cache)
    made = sorted(p.name for p in cache.iterdir())
    assert sum(name.endswith(".npy") for name in made) == 2 and not any(".tmp" in name for name in made)
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*.npy")}
    second = TrainingData.from_folders([folder], 32, cache_dir=cache)
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.npy")} == stamps  # read, not remade
    assert isinstance(second.pools[0].rgb, np.memmap)
    for data in (first, second):
        for key, batch in _every_batch(data).items():
            for name in ("composite", "background", "mask", "target"):
                a, b = getattr(batch, name), getattr(fresh[key], name)
                assert (a is None and b is None) or torch.equal(a, b), (key, name)
    # Another size is another cache entry.
    TrainingData.from_folders([folder], 24, cache_dir=cache)
    assert len(list(cache.glob("*.json"))) == 2


def test_the_same_folder_named_another_way_finds_the_same_cache_entry(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    cache = tmp_path / "cache"
    TrainingData.from_folders([folder], 32, cache_dir=cache)
    monkeypatch.chdir(tmp_path)
    TrainingData.from_folders([folder.relative_to(tmp_path)], 32, cache_dir=cache)
    assert len(list(cache.glob("*.json"))) == 1


def test_a_changed_folder_replaces_its_old_cache_entry_and_leaves_other_folders_alone(tmp_path):
    folder = _folder(tmp_path)
    # A name with dots: each entry's files must keep the whole name (no suffix swapped for ".json").
    dotted = folder.rename(tmp_path / "photos.v2")
    other = tmp_path / "other"
    (other).mkdir()
    import shutil

    for item in dotted.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, other / item.name)
    cache = tmp_path / "cache"
    TrainingData.from_folders([dotted], 32, cache_dir=cache)
    TrainingData.from_folders([other], 32, cache_dir=cache)
    TrainingData.from_folders([dotted], 24, cache_dir=cache)  # another size: kept
    before = {p.name for p in cache.glob("*.json")}
    assert len(before) == 3 and all(name.startswith(("photos.v2-", "other-")) for name in before)

    manifest = dotted / "manifest.jsonl"
    manifest.write_text(manifest.read_text() + "\n")  # edited: the old stamp no longer matches
    fresh = TrainingData.from_folders([dotted], 32, cache_dir=cache)
    after = {p.name for p in cache.glob("*.json")}
    assert len(after) == 3
    (gone,) = before - after
    assert gone.startswith("photos.v2-32-")
    assert not list(cache.glob(gone.removesuffix(".json") + "*"))  # its arrays and files went with it
    assert {"rgb", "gray"} == {p.name.split(".")[-2] for p in cache.glob(next(iter(after - before)).removesuffix(".json") + ".*.npy")}
    assert fresh.count("supervised") > 0
