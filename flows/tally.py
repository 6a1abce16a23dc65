"""Shared by the nightly and backfill flows: fan fetches out, load in order, record a failed
run, and keep the figures the summary, audit.runs and the CLI report."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator

from sources.contract import Batch, describe_rejects
from transforms.plan import DatasetWindow
from warehouse.load import LoadResult


@dataclasses.dataclass
class Tally:
    loads: list[dict] = dataclasses.field(default_factory=list)
    rejects: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    # One per failed fetch outcome: dataset, ticker, window, retryable, attempts, reason.
    failed: list[dict] = dataclasses.field(default_factory=list)
    # The tickers (or market-wide requests) each dataset got an outcome for, failed or not.
    tried: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    rows_by_table: dict[str, int] = dataclasses.field(default_factory=dict)
    # The earliest date a load inserted or changed: where the incremental build starts.
    first_changed: dt.date | None = None

    def add_builds(self, builds) -> None:
        for b in builds:
            if b.mode != "view":
                self.rows_by_table[b.relation] = b.rows_written

    def add(self, window: DatasetWindow, batch: Batch, result: LoadResult) -> None:
        self.loads.append({
            "table": result.table, "window": f"{window.start}..{window.end}", "delivered": result.delivered,
            "inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
            "rejected": result.rejected,
        })
        self.rows_by_table[result.table] = self.rows_by_table.get(result.table, 0) + result.written
        if result.first_changed is not None:
            self.first_changed = min(filter(None, (self.first_changed, result.first_changed)))
        self.rejects += describe_rejects(batch.rejects, limit=5)
        self.failed += [
            {
                "dataset": window.dataset, "ticker": o.ticker, "window": f"{window.start}..{window.end}",
                "retryable": bool(o.retryable), "attempts": _count(o.attempts), "reason": o.reason,
            }
            for o in batch.failed.itertuples()
        ]
        self.tried.setdefault(window.dataset, set()).update(batch.outcomes["ticker"].dropna())
        self.notes += [f"{window.dataset} {window.start}..{window.end}: {n}" for n in batch.notes]

    @property
    def quarantined(self) -> int:
        return sum(ld["rejected"] for ld in self.loads)

    def problems(self, run_id: str, retry_hint: str | None = None) -> str | None:
        """What made a finished run partial, in one message (None: nothing did)."""
        out = []
        if self.failed:
            out.append(failed_fetches(self.failed, run_id, retry_hint))
        if self.quarantined:
            out.append(f"{self.quarantined:,} row(s) quarantined: see audit.quarantine for run {run_id}")
        return "; ".join(out) or None


def _count(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):  # NA
        return None


def failed_fetches(failed: Iterable[dict], run_id: str, retry_hint: str | None = None) -> str:
    """Every ticker whose fetch failed, per dataset, never cut short: the ones a later try may
    fetch apart from the ones the provider does not know (unknown or delisted), which no retry
    brings back. The reasons stay in audit.fetch_outcomes: one line per ticker would bury the
    names in a night of many failures."""
    by_dataset: dict[str, dict[bool, set[str]]] = {}
    for f in failed:
        by_dataset.setdefault(f["dataset"], {True: set(), False: set()})[bool(f["retryable"])].add(str(f["ticker"]))
    parts, total, retryable = [], 0, 0
    for dataset, kinds in by_dataset.items():
        named = []
        if kinds[True]:
            named.append(f"{len(kinds[True])} retryable ({', '.join(sorted(kinds[True]))})")
        if kinds[False]:
            named.append(f"{len(kinds[False])} unknown or delisted ({', '.join(sorted(kinds[False]))})")
        parts.append(f"{dataset}: {', '.join(named)}")
        total += len(kinds[True]) + len(kinds[False])
        retryable += len(kinds[True])
    text = f"{total} fetch(es) failed: {'; '.join(parts)} (reasons and attempts: audit.fetch_outcomes, run {run_id})"
    if retry_hint and retryable:
        text += f"; {retry_hint}"
    return text


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


def fetch_and_load(
    settings, windows: list[DatasetWindow], *, run_id: str, docs_dir: str, tally: Tally, bar,
    run_date_of: Callable[[DatasetWindow], dt.date], loaded_at: dt.datetime | None = None,
    chunk_source: str | None = None, on_loaded: Callable[[int, DatasetWindow, LoadResult], None] | None = None,
) -> None:
    """Fetch every window on the task runner (at most `settings.fetch_ahead` ahead) and land ->
    check -> publish each batch through the single writer, in plan order."""
    from flows import tasks

    def submit(window: DatasetWindow):
        return tasks.fetch.submit(settings.source, settings.path, settings.universe, window, settings.live_config(), settings.sample_start)

    for i, (window, batch) in enumerate(fetch_in_order(windows, submit, settings.fetch_ahead), start=1):
        result = tasks.load_batch(
            settings.warehouse, batch, source=settings.source, run_id=run_id, loaded_at=loaded_at or dt.datetime.now(dt.UTC),
            window=window, run_date=run_date_of(window), docs_dir=docs_dir, chunk_source=chunk_source,
        )
        tally.add(window, batch, result)
        if on_loaded:
            on_loaded(i, window, result)
        bar.advance(description=f"loaded {window.dataset} {window.start}..{window.end}")


def fail_run(warehouse: str, exc: Exception, *, run_id: str, docs_dir: str, tally: Tally, when_blocked: str) -> None:
    """Record a run that raised as failed, naming the failure (and the Data Docs of its checks)."""
    from flows import tasks
    from warehouse.audit import FAILED
    from warehouse.checks import CheckFailed

    docs = tasks.data_docs(docs_dir)
    message = f"blocked by data checks, {when_blocked}: {exc}" if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
    if docs:
        message += f"; data docs: {docs}"
    tasks.finish_run(warehouse, run_id=run_id, status=FAILED, ended_at=dt.datetime.now(dt.UTC),
                     rows_by_table=tally.rows_by_table, message=message)


def finish_run(
    warehouse: str, *, run_id: str, docs_dir: str, tally: Tally, problems: Iterable[str] = (), retry_hint: str | None = None,
) -> dict:
    """Close a run that went through: Data Docs, the checks' summary, and the outcome (partial
    when rows were quarantined, fetches failed or `problems` name something else; `retry_hint`
    says how to fetch the retryable failures again)."""
    from flows import tasks
    from warehouse.audit import PARTIAL, SUCCEEDED

    docs = tasks.data_docs(docs_dir)
    checks = tasks.check_summary(warehouse, run_id=run_id)
    message = "; ".join(filter(None, [tally.problems(run_id, retry_hint), *problems])) or None
    status = PARTIAL if message else SUCCEEDED
    tasks.finish_run(warehouse, run_id=run_id, status=status, ended_at=dt.datetime.now(dt.UTC),
                     rows_by_table=tally.rows_by_table, message=message)
    return {"status": status, "message": message, "checks": checks, "data_docs": docs}
