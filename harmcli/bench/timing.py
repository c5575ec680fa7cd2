"""Untimed warm-up, then timed runs: median, min and max."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float
    runs: int

    def as_dict(self) -> dict:
        return {"median_ms": self.median_ms, "min_ms": self.min_ms, "max_ms": self.max_ms, "runs": self.runs}


def time_call(fn: Callable[[], object], runs: int, warmup: int, sync: Callable[[], None] | None = None) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times timed; ``sync`` runs before each timestamp."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return Timing(statistics.median(samples), min(samples), max(samples), runs)
