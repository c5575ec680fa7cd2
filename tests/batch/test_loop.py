"""harmcli.batch.loop and jobs: the folder loop (threads, failures) and one harmonize job end to end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from harmcli import batch
from harmcli.errors import ImageReadError
from harmcli.io.images import WRITE_EXTENSIONS
from harmcli.ops.adjustment import Adjustment

from . import touch_image


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


def test_run_batch_interrupt_finishes_running_writes_and_reports_what_was_done():
    class StopAt(FakeJob):
        def predict(self, item):
            if item.stem == "s3":
                raise KeyboardInterrupt  # Ctrl-C (or SIGTERM as Interrupted) while the network runs on s3
            return super().predict(item)

    plan = batch.Plan([batch.Item(f"s{i}", "composite", Path(f"s{i}.png")) for i in range(6)])
    job = StopAt({}, delay=0.02)
    with pytest.raises(KeyboardInterrupt) as info:
        batch.run_batch(job, plan)
    summary = info.value.summary
    # s0..s2 were predicted before the interrupt: their writes finish and count; s3.. were not started.
    assert [r.stem for r in summary.results] == ["s0", "s1", "s2"]
    assert all(r.status == "done" for r in summary.results)
    assert summary.line().startswith("3 done, 0 skipped, 0 failed in ")


def test_summary_time_per_item_counts_failed_items():
    results = [batch.ItemResult("a", "done"), batch.ItemResult("b", "failed"), batch.ItemResult("c", "failed"),
               batch.ItemResult("d", "skipped")]
    line = batch.BatchSummary(results, unmatched=0, seconds=6.0).line()
    assert line == "1 done, 1 skipped, 2 failed in 6.0 s, 2.00 s per item"  # 6 s over the 3 items processed
    assert batch.BatchSummary([batch.ItemResult("d", "skipped")], 0, 0.5).line() == "0 done, 1 skipped, 0 failed in 0.5 s"
