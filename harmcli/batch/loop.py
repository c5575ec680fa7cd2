"""Running jobs: :func:`run_one` for a single item (raises), :func:`run_batch` for many (keeps going).

The folder loop overlaps I/O with compute: a small thread pool reads the next item and applies + writes
finished ones while the network runs on the current one in the calling thread (OpenCV, NumPy and torch release
the GIL for the heavy parts). Every item's result depends only on its own inputs, so the order in which items
finish does not change any output.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from harmcli.batch.inputs import Item, Plan
from harmcli.batch.jobs import _Job
from harmcli.batch.summary import BatchSummary, ItemResult, failure_message


def run_batch(
    job: _Job,
    plan: Plan,
    *,
    on_result: Callable[[ItemResult], None] | None = None,
    workers: int = 2,
    prefetch: int = 1,
    max_pending_writes: int = 1,
) -> BatchSummary:
    """Process every item of ``plan``; a failing item is recorded and the loop goes on.

    The network runs in the calling thread; reading (up to ``prefetch`` items ahead) and apply + write run on
    ``workers`` threads. With the defaults at most three items are in memory at once (the one being predicted,
    the next being read, the previous being written); a 100-megapixel 8-bit input holds about 1 GB per item.
    ``on_result`` is called in the calling thread, once per item, as items finish.
    Errors that concern every item (weights, device) raise from :meth:`_Job.prepare` before any item is done.

    An interrupt (Ctrl-C, or SIGTERM turned into :class:`~harmcli.errors.Interrupted` by the CLI) stops the
    loop: items not started are dropped, writes already running finish (so every output is whole and no
    temporary file is left), and the interrupt is raised again with ``.summary`` set to what was done.
    """
    started = time.perf_counter()
    results: list[ItemResult] = []

    def emit(result: ItemResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for failure in plan.failures:
        emit(failure)
    todo = deque(plan.items)
    reads: deque[tuple[Item, Future, float]] = deque()
    writes: deque[tuple[Item, Future, float]] = deque()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="harmcli-io")

    def schedule_reads() -> None:
        while todo and len(reads) < prefetch:
            item = todo.popleft()
            t0 = time.perf_counter()
            try:
                skipped = job.check(item)
            except Exception as exc:
                emit(ItemResult(item.stem, "failed", message=failure_message(exc)))
                continue
            if skipped is not None:
                emit(skipped)
                continue
            reads.append((item, pool.submit(job.load, item), t0))

    def write_result(item: Item, future: Future, t0: float) -> ItemResult:
        try:
            result = future.result()
        except Exception as exc:
            result = ItemResult(item.stem, "failed", message=failure_message(exc))
        result.seconds = time.perf_counter() - t0
        return result

    def collect_writes(keep: int) -> None:
        while len(writes) > keep or (writes and writes[0][1].done()):
            result = write_result(*writes[0])
            writes.popleft()  # only now: an interrupt while waiting above leaves the write to the clean-up
            emit(result)

    try:
        schedule_reads()  # the first reads overlap loading the network
        job.prepare()
        while reads:
            item, future, t0 = reads.popleft()
            schedule_reads()
            try:
                inputs = future.result()
                adjustment = job.predict(inputs)
            except Exception as exc:
                emit(ItemResult(item.stem, "failed", message=failure_message(exc), seconds=time.perf_counter() - t0))
                continue
            writes.append((item, pool.submit(job.finish, inputs, adjustment), t0))
            del inputs  # the write task holds the only reference; memory stays bounded by the queues
            collect_writes(keep=max_pending_writes)
        collect_writes(keep=0)
    except KeyboardInterrupt as interrupt:
        pool.shutdown(wait=True, cancel_futures=True)  # running writes complete; queued ones are dropped
        for item, future, t0 in writes:
            if not future.cancelled():
                emit(write_result(item, future, t0))
        interrupt.summary = BatchSummary(results, len(plan.unmatched), time.perf_counter() - started)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return BatchSummary(results, len(plan.unmatched), time.perf_counter() - started)


def run_one(job: _Job, item: Item) -> ItemResult:
    """Process one item in the calling thread; any problem raises (a :class:`HarmcliError` for the user's)."""
    started = time.perf_counter()
    skipped = job.check(item)
    if skipped is not None:
        return skipped
    inputs = job.load(item)  # read first: a bad input fails before the network is loaded
    job.prepare()
    result = job.finish(inputs, job.predict(inputs))
    result.seconds = time.perf_counter() - started
    return result
