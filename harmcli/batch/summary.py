"""What happened to each item, and the line that sums a run up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harmcli.errors import HarmcliError

Status = Literal["done", "skipped", "failed"]


@dataclass
class BatchSummary:
    results: list[ItemResult]
    unmatched: int
    seconds: float

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def line(self) -> str:
        done = self.count("done")
        parts = [f"{done} done", f"{self.count('skipped')} skipped", f"{self.failed} failed"]
        if self.unmatched:
            parts.append(f"{self.unmatched} unmatched")
        # Per item processed (done or failed): skipped items cost nothing, failed ones took their share of time.
        processed = done + self.failed
        per_item = f", {self.seconds / processed:.2f} s per item" if processed else ""
        return f"{', '.join(parts)} in {self.seconds:.1f} s{per_item}"


def failure_message(exc: BaseException) -> str:
    """One line for a failed item: the library's own message, or the exception type for anything else."""
    if isinstance(exc, HarmcliError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass
class ItemResult:
    """What happened to one item. ``message`` is why it was skipped or failed, or a warning when done."""

    stem: str
    status: Status
    outputs: tuple[Path, ...] = ()
    message: str = ""
    seconds: float = 0.0

