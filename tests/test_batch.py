"""harmcli.batch: input forms, stem matching, output rules, reading, and the folder loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from harmcli import batch
from harmcli.errors import ImageReadError, ImageWriteError, InputMismatchError, UsageError
from harmcli.io.images import READ_EXTENSIONS, WRITE_EXTENSIONS
from harmcli.ops.adjustment import Adjustment


def touch_image(path: Path, value: int = 128, size=(12, 16), dtype=np.uint8, channels: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if channels == 1 else (*size, channels)
    data = np.full(shape, value, dtype)
    assert cv2.imwrite(str(path), data)
    return path


# ------------------------------------------------------------------------------------------- InputSpec


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


# ------------------------------------------------------------------------------------------- outputs


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


# ------------------------------------------------------------------------------------------- reading


def test_promote_and_over():
    rgb8 = np.array([[[0, 128, 255]]], np.uint8)
    np.testing.assert_array_equal(batch._promote(rgb8, np.dtype(np.uint16)), [[[0, 32896, 65535]]])
    alpha = np.array([[0, 255, 100]], np.uint8)
    mask = np.array([[1.0, 0.0, 0.5]], np.float32)
    np.testing.assert_array_equal(batch._over(mask, alpha), [[255, 255, 178]])


def test_reader_mixed_depths_alpha_and_shared_mask(tmp_path):
    fg16 = tmp_path / "fg.png"
    fga = np.dstack([np.full((12, 16, 3), 40000, np.uint16), np.full((12, 16), 65535, np.uint16)])
    fga[:, :8, 3] = 0
    assert cv2.imwrite(str(fg16), fga)
    bg = touch_image(tmp_path / "bg.png", value=10)
    reader = batch.InputReader(max_pixels=10_000)
    loaded = reader.load(batch.Item("fg", "alpha", fg16, bg))
    assert loaded.composite.dtype == np.uint16 and loaded.bit_depth == 16
    assert (loaded.composite[:, :8] == 10 * 257).all() and (loaded.composite[:, 8:] == 40000).all()
    assert loaded.mask_name.endswith("(alpha channel)") and loaded.alpha is None
    # one mask file for many composites: read once, size checked per item
    mask = touch_image(tmp_path / "mask.png", value=0, channels=1)
    spec = batch.InputSpec.from_args([tmp_path], mask=mask)
    reader.preload(spec)
    small = touch_image(tmp_path / "small.png", size=(6, 8))
    with pytest.raises(InputMismatchError, match="mask.png"):
        reader.load(batch.Item("small", "composite", small, None, mask))
    assert reader.load(batch.Item("bg", "composite", bg, None, mask)).mask_is_empty


def test_reader_refuses_all_foreground(tmp_path):
    comp = touch_image(tmp_path / "c.png")
    mask = touch_image(tmp_path / "m.png", value=255, channels=1)
    with pytest.raises(InputMismatchError, match="foreground everywhere"):
        batch.InputReader(max_pixels=10_000).load(batch.Item("c", "composite", comp, None, mask))


# ------------------------------------------------------------------------------------------- the loop


class FakeJob:
    """Records which thread does what; fails on request at a given stage."""

    def __init__(self, fail: dict[str, str], delay: float = 0.0):
        self.fail, self.delay = fail, delay
        self.prepared = False
        self.threads: dict[str, set[str]] = {"load": set(), "predict": set(), "finish": set()}

    def _maybe_fail(self, stage: str, stem: str):
        self.threads[stage].add(threading.current_thread().name)
        if self.fail.get(stem) == stage:
            raise (ValueError if stage == "finish" else ImageReadError)(f"{stem}: broken at {stage}")

    def prepare(self):
        self.prepared = True

    def check(self, item):
        if self.fail.get(item.stem) == "check":
            return batch.ItemResult(item.stem, "skipped", message="exists")
        return None

    def load(self, item):
        time.sleep(self.delay)
        self._maybe_fail("load", item.stem)
        return item

    def predict(self, item):
        assert self.prepared
        self._maybe_fail("predict", item.stem)
        return item.stem.upper()

    def finish(self, item, adjustment):
        time.sleep(self.delay)
        self._maybe_fail("finish", item.stem)
        return batch.ItemResult(item.stem, "done", (Path(f"{adjustment}.png"),))


def test_run_batch_keeps_going_and_reports_every_item():
    stems = [f"s{i}" for i in range(9)]
    plan = batch.Plan([batch.Item(s, "composite", Path(f"{s}.png")) for s in stems])
    plan.failures.append(batch.ItemResult("dup", "failed", message="ambiguous"))
    plan.unmatched.append(batch.Unmatched("u", {"composite": Path("u.png")}, ("mask",)))
    job = FakeJob({"s1": "load", "s4": "predict", "s6": "finish", "s7": "check"}, delay=0.01)
    seen, main_thread = [], threading.current_thread().name
    summary = batch.run_batch(job, plan, on_result=lambda r: seen.append((r.stem, threading.current_thread().name)))
    by_stem = {r.stem: r for r in summary.results}
    assert sorted(by_stem) == sorted(stems + ["dup"])
    assert {s for s, r in by_stem.items() if r.status == "failed"} == {"dup", "s1", "s4", "s6"}
    assert by_stem["s7"].status == "skipped" and by_stem["s0"].outputs == (Path("S0.png"),)
    assert "broken at load" in by_stem["s1"].message and by_stem["s6"].message.startswith("ValueError")
    assert all(thread == main_thread for _, thread in seen)
    assert job.threads["predict"] == {main_thread}  # the network runs in the caller's thread
    assert main_thread not in job.threads["load"] | job.threads["finish"]  # I/O on the pool
    assert summary.line().startswith("5 done, 1 skipped, 4 failed, 1 unmatched in ")


def test_run_batch_prepare_errors_abort():
    class Broken(FakeJob):
        def prepare(self):
            raise batch.HarmcliError("weights are bad")

    with pytest.raises(batch.HarmcliError, match="weights"):
        batch.run_batch(Broken({}), batch.Plan([batch.Item("a", "composite", Path("a.png"))]))


def test_fixed_predictor_and_empty_mask_rule(tmp_path):
    adjustment = Adjustment.from_uniform(np.tile(np.linspace(0, 0.5, 8, dtype=np.float32), (3, 1)))
    comp = touch_image(tmp_path / "c.png", value=200)
    mask = np.zeros((12, 16), np.uint8)
    mask[2:6, 2:6] = 255
    assert cv2.imwrite(str(tmp_path / "m.png"), mask)
    spec = batch.InputSpec.from_args([comp], mask=tmp_path / "m.png")
    layout = batch.plan_output(spec, tmp_path / "o.png", extension=None, allowed=WRITE_EXTENSIONS)
    reader = batch.InputReader(max_pixels=10_000)
    job = batch.HarmonizeJob(reader=reader, layout=layout, predictor=batch.FixedPredictor(adjustment))
    result = batch.run_one(job, batch.Item("c", "composite", comp, None, tmp_path / "m.png"))
    assert result.status == "done" and result.outputs == (tmp_path / "o.png",) and not result.message
    out = cv2.imread(str(tmp_path / "o.png"))
    assert (out[2:6, 2:6] == 100).all() and (out[mask == 0] == 200).all()
    # an empty mask: the input, unchanged, with a note
    assert cv2.imwrite(str(tmp_path / "m.png"), np.zeros((12, 16), np.uint8))
    job.existing = "overwrite"
    result = batch.run_one(job, batch.Item("c", "composite", comp, None, tmp_path / "m.png"))
    assert "empty" in result.message and (cv2.imread(str(tmp_path / "o.png")) == 200).all()
