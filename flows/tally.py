"""Bookkeeping shared by the nightly and backfill flows: fan fetches out, load in order, and
keep the figures the summary, audit.runs and the CLI report."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Iterator

from sources.contract import Batch, describe_rejects
from transforms.plan import DatasetWindow
from warehouse.load import LoadResult


@dataclasses.dataclass
class Tally:
    loads: list[dict] = dataclasses.field(default_factory=list)
    rejects: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    rows_by_table: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, window: DatasetWindow, batch: Batch, result: LoadResult) -> None:
        self.loads.append({
            "table": result.table, "window": f"{window.start}..{window.end}", "delivered": result.delivered,
            "inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
            "rejected": result.rejected,
        })
        self.rows_by_table[result.table] = self.rows_by_table.get(result.table, 0) + result.written
        self.rejects += describe_rejects(batch.rejects, limit=5)
        self.failures += [f"{window.dataset} {o.ticker} ({window.start}..{window.end}): {o.reason}" for o in batch.failed.itertuples()]
        self.notes += [f"{window.dataset} {window.start}..{window.end}: {n}" for n in batch.notes]

    @property
    def quarantined(self) -> int:
        return sum(ld["rejected"] for ld in self.loads)

    def problems(self, run_id: str) -> str | None:
        """What made a finished run partial, in one message (None: nothing did)."""
        out = []
        if self.failures:
            shown = "; ".join(self.failures[:10]) + (" ..." if len(self.failures) > 10 else "")
            out.append(f"{len(self.failures)} fetch(es) failed ({shown}): see audit.fetch_outcomes")
        if self.quarantined:
            out.append(f"{self.quarantined:,} row(s) quarantined: see audit.quarantine for run {run_id}")
        return "; ".join(out) or None


def fetch_in_order(
    windows: Iterable[DatasetWindow], submit: Callable[[DatasetWindow], object], max_in_flight: int
) -> Iterator[tuple[DatasetWindow, Batch]]:
    """Submit fetches to the task runner, at most `max_in_flight` ahead, and yield their batches
    in plan order (so loads stay sequential and deterministic, and memory stays bounded)."""
    pending: collections.deque = collections.deque()
    for window in windows:
        pending.append((window, submit(window)))
        if len(pending) >= max(1, max_in_flight):
            w, future = pending.popleft()
            yield w, future.result()
    while pending:
        w, future = pending.popleft()
        yield w, future.result()
