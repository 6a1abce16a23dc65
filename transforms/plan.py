"""What a run fetches: the date window of each dataset.

A nightly run re-fetches a trailing window of sessions (providers restate recent days). A
dataset with nothing in the warehouse yet gets a first history instead, so that the moving
averages have something to average on a new machine. Snapshot datasets (option chains,
valuation fields) exist only as taken on the night, so their window is the run date alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import duckdb
import pandas as pd

from sources import calendar
from sources.contract import DATASETS

NIGHTLY_DATASETS = ("prices_daily", "putcall_daily", "fundamentals_quarterly", "option_quotes", "valuation_snapshots")


@dataclasses.dataclass(frozen=True)
class DatasetWindow:
    dataset: str
    start: dt.date
    end: dt.date
    tickers: tuple[str, ...] | None = None  # None: every ticker (or a market-wide dataset)
    first_history: bool = False


def tickers_with_rows(con: duckdb.DuckDBPyConnection, dataset: str, on_or_before: dt.date) -> set[str]:
    ds = DATASETS[dataset]
    if "ticker" not in ds.columns:
        has = con.execute(f"select count(*) from raw.{ds.name} where {ds.date_column} <= ?", [on_or_before]).fetchone()[0]
        return {"*"} if has else set()
    rows = con.execute(
        f"select distinct ticker from raw.{ds.name} where {ds.date_column} <= ?", [on_or_before]
    ).fetchall()
    return {r[0] for r in rows}


def plan_nightly(
    con: duckdb.DuckDBPyConnection,
    *,
    run_date: dt.date,
    tickers: tuple[str, ...] | None,
    lookback_sessions: int,
    history_sessions: int,
    datasets: tuple[str, ...] = NIGHTLY_DATASETS,
) -> list[DatasetWindow]:
    """One window per dataset; a ticker new to the warehouse gets its first history in a window of its own."""
    if not calendar.is_session(run_date):
        raise ValueError(f"{run_date} is not an NYSE session")
    trailing = calendar.sessions_back(run_date, lookback_sessions)
    history = calendar.sessions_back(run_date, max(history_sessions, lookback_sessions))
    plans = []
    for name in datasets:
        ds = DATASETS[name]
        if ds.snapshot_only:
            plans.append(DatasetWindow(name, run_date, run_date, tickers))
            continue
        known = tickers_with_rows(con, name, run_date)
        if "ticker" not in ds.columns:
            first = not known
            plans.append(DatasetWindow(name, history if first else trailing, run_date, None, first))
            continue
        if tickers is None:
            first = not known
            plans.append(DatasetWindow(name, history if first else trailing, run_date, None, first))
            continue
        new = tuple(t for t in tickers if t not in known)
        old = tuple(t for t in tickers if t in known)
        if old:
            plans.append(DatasetWindow(name, trailing, run_date, old))
        if new:
            plans.append(DatasetWindow(name, history, run_date, new, True))
    return plans


@dataclasses.dataclass(frozen=True)
class RetryPlan:
    """What a retry of a night fetches again: per dataset, the tickers whose last fetch for that
    night failed in a way a later try may fix; the unknown or delisted ones are left out."""

    run_date: dt.date
    windows: list[DatasetWindow]
    retried: dict[str, tuple[str, ...]]
    not_retried: dict[str, tuple[str, ...]]

    def describe(self) -> str:
        def listing(by_dataset: dict[str, tuple[str, ...]]) -> str:
            return "; ".join(f"{d}: {', '.join(t)}" for d, t in by_dataset.items())

        if not self.retried:
            text = f"nothing to retry for {self.run_date}: no nightly run of that date has a retryable failed fetch"
        else:
            text = f"retrying the failed fetches of {self.run_date}: {listing(self.retried)}"
        if self.not_retried:
            text += f"; not retried, unknown or delisted: {listing(self.not_retried)}"
        return text


def plan_retry(
    con: duckdb.DuckDBPyConnection,
    *,
    run_date: dt.date,
    outcomes: list[dict],
    lookback_sessions: int,
    history_sessions: int,
) -> RetryPlan:
    """The windows that fetch again what the night's last outcomes (`audit.last_fetch_outcomes`)
    left failed, each dataset asking only for its failed tickers, over the window the night
    plans for them (a ticker still without rows gets its first history). A market-wide dataset
    (put/call ratios, one outcome per session) is fetched again over its night's window."""
    retried: dict[str, list[str]] = {}
    not_retried: dict[str, list[str]] = {}
    for o in outcomes:
        if o["status"] == "failed":
            (retried if o["retryable"] else not_retried).setdefault(o["dataset"], []).append(o["ticker"])
    # Nightly datasets only (the outcomes are the nightly runs'), in the night's order.
    in_order = [d for d in NIGHTLY_DATASETS if d in retried]
    windows: list[DatasetWindow] = []
    for name in in_order:
        # A market-wide dataset (no ticker column) is planned over its night's window whatever
        # tickers are passed.
        windows += plan_nightly(
            con, run_date=run_date, tickers=tuple(sorted(retried[name])),
            lookback_sessions=lookback_sessions, history_sessions=history_sessions, datasets=(name,),
        )
    return RetryPlan(
        run_date=run_date, windows=windows,
        retried={d: tuple(sorted(retried[d])) for d in in_order},
        not_retried={d: tuple(sorted(not_retried[d])) for d in NIGHTLY_DATASETS if d in not_retried},
    )


def build_since(first_changed: dt.date | None, run_date: dt.date) -> dt.date:
    """Where a night's incremental build starts: the night itself, or the earliest row its loads
    changed (`LoadResult.first_changed`) when earlier: a price restated inside the look-back, a
    new ticker's history. Look-back rows that came back unchanged rebuild nothing. What earlier
    runs loaded and no build covered (a night whose build failed or was blocked) is owed too:
    the build reaches back to it (audit.unbuilt_since)."""
    return min(first_changed or run_date, run_date)


# -- backfills ---------------------------------------------------------------------------------

CHUNK_UNITS = ("week", "month", "quarter", "year")
TODO, DONE, REFUSED = "to load", "done", "refused"


def parse_chunk(value: str | int) -> str | int:
    """A chunk size: `week`, `month`, `quarter`, `year`, or a whole number of sessions."""
    text = str(value).strip().lower()
    if text in CHUNK_UNITS:
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ValueError(f"chunk {value!r} is not one of {', '.join(CHUNK_UNITS)} or a positive number of sessions")


def _period(day: dt.date, unit: str) -> tuple:
    if unit == "week":
        return tuple(day.isocalendar()[:2])
    if unit == "month":
        return (day.year, day.month)
    if unit == "quarter":
        return (day.year, (day.month - 1) // 3)
    return (day.year,)


def chunk_windows(start: dt.date, end: dt.date, chunk: str | int) -> list[tuple[dt.date, dt.date, int]]:
    """Split [start, end] into chunks of NYSE sessions: (window start, window end, sessions).

    The windows tile the whole calendar range with no gap (a chunk runs to the day before the
    next one's first session), so data dated on a weekend or holiday (a filing published on a
    Saturday) falls into exactly one chunk.
    """
    if end < start:
        raise ValueError(f"backfill end {end} is before its start {start}")
    days = calendar.sessions(start, end)
    if not days:
        raise ValueError(f"there is no NYSE session between {start} and {end}")
    chunk = parse_chunk(chunk)
    groups: list[list[dt.date]] = []
    for day in days:
        if groups and (
            len(groups[-1]) < chunk if isinstance(chunk, int) else _period(groups[-1][0], chunk) == _period(day, chunk)
        ):
            groups[-1].append(day)
        else:
            groups.append([day])
    out = []
    for i, group in enumerate(groups):
        lo = start if i == 0 else group[0]
        hi = end if i == len(groups) - 1 else groups[i + 1][0] - dt.timedelta(days=1)
        out.append((lo, hi, len(group)))
    return out


@dataclasses.dataclass(frozen=True)
class BackfillChunk:
    dataset: str
    start: dt.date
    end: dt.date
    sessions: int
    tickers: tuple[str, ...] | None   # None: a market-wide dataset
    status: str = TODO                 # to load | done | refused
    rows_present: int = 0              # rows raw already holds in this window (for every ticker asked for)
    reason: str | None = None

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.start}..{self.end}"


def done_records(con: duckdb.DuckDBPyConnection | None, source_ref: str) -> list[dict]:
    """The chunks earlier backfills recorded from this source (none for a missing table)."""
    if con is None:
        return []
    exists = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() and table_schema = 'audit' and table_name = 'backfill_chunks'"
    ).fetchall()[0][0]
    if not exists:
        return []
    rows = con.execute(
        "select dataset, chunk_start, chunk_end, tickers from audit.backfill_chunks where source_ref = ?", [source_ref]
    ).fetchall()
    return [{"dataset": d, "start": s, "end": e, "tickers": None if t is None else set(json.loads(t))} for d, s, e, t in rows]


def owed_tickers(
    records: list[dict], dataset: str, start: dt.date, end: dt.date, tickers: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    """The tickers of `tickers` that no recorded chunk of `dataset` whose window contains
    [start, end] holds: () when every one is loaded. A market-wide dataset (tickers None) is
    owed whole (None) unless a market-wide record covers the window."""
    holding = [r for r in records if r["dataset"] == dataset and r["start"] <= start and r["end"] >= end]
    if any(r["tickers"] is None for r in holding):
        return ()
    if tickers is None:
        return None
    have: set[str] = set().union(*(r["tickers"] for r in holding)) if holding else set()
    return tuple(t for t in tickers if t not in have)


def is_covered(records: list[dict], dataset: str, start: dt.date, end: dt.date, tickers: tuple[str, ...] | None) -> bool:
    """True when recorded chunks of `dataset` whose windows contain [start, end] together hold
    every ticker asked for (a market-wide record covers everything)."""
    return owed_tickers(records, dataset, start, end, tickers) == ()


def rows_present(con: duckdb.DuckDBPyConnection | None, dataset: str, windows: list[tuple[dt.date, dt.date]], tickers: tuple[str, ...] | None) -> list[int]:
    """Rows raw.<dataset> holds in each window (for these tickers): one grouped query."""
    if con is None or not windows:
        return [0] * len(windows)
    ds = DATASETS[dataset]
    exists = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() and table_schema = 'raw' and table_name = ?", [ds.name]
    ).fetchall()[0][0]
    if not exists:
        return [0] * len(windows)
    frame = pd.DataFrame({"i": range(len(windows)), "lo": [w[0] for w in windows], "hi": [w[1] for w in windows]})
    con.register("bellwether_backfill_windows", frame)
    try:
        ticker_filter = "and r.ticker in (select unnest(?::varchar[]))" if tickers is not None and "ticker" in ds.columns else ""
        params = [list(tickers)] if ticker_filter else []
        counts = dict(con.execute(
            f"""
            select w.i, count(r.{ds.date_column})
            from bellwether_backfill_windows w
            left join raw.{ds.name} r on r.{ds.date_column} between w.lo::date and w.hi::date {ticker_filter}
            group by w.i
            """,
            params,
        ).fetchall())
    finally:
        con.unregister("bellwether_backfill_windows")
    return [int(counts.get(i, 0)) for i in range(len(windows))]


def plan_backfill(
    con: duckdb.DuckDBPyConnection | None,
    *,
    start: dt.date,
    end: dt.date,
    datasets: tuple[str, ...],
    tickers: tuple[str, ...],
    chunk: str | int,
    source_ref: str,
    refused: dict[str, str] | None = None,
    force: bool = False,
) -> list[BackfillChunk]:
    """Every (dataset, chunk) of a backfill with its status: done (an earlier backfill from the
    same source covered it; `force` loads it again), refused (the source cannot serve that
    dataset for past dates: the reason says why), or to load. A chunk an earlier backfill
    loaded for some tickers only (the others' fetches failed) is to load for the tickers it
    still owes, and only those are fetched. `con` may be None (no warehouse yet) or read-only:
    planning never writes."""
    windows = chunk_windows(start, end, chunk)
    # Rows dated by session are covered by a record spanning the window's sessions; a filing can
    # be dated any day, so fundamentals need the whole calendar window.
    session_spans = [(days[0], days[-1]) for days in (calendar.sessions(lo, hi) for lo, hi, _ in windows)]
    records = [] if force else done_records(con, source_ref)
    refused = refused or {}
    out = []
    for name in datasets:
        ds = DATASETS[name]
        wanted = tickers if "ticker" in ds.columns else None
        present = rows_present(con, name, [(lo, hi) for lo, hi, _ in windows], wanted)
        for (lo, hi, n), sessions_span, rows in zip(windows, session_spans, present):
            span = (lo, hi) if ds.published_as else sessions_span
            owed = owed_tickers(records, name, *span, wanted)
            chunk_tickers = wanted
            if name in refused:
                status, reason = REFUSED, refused[name]
            elif owed == ():
                status, reason = DONE, "loaded by an earlier backfill from this source"
            elif owed is not None and len(owed) < len(wanted):
                chunk_tickers = owed
                status, reason = TODO, f"{len(owed)} of {len(wanted)} ticker(s) still owed: an earlier backfill loaded the others"
            else:
                status, reason = TODO, None
            out.append(BackfillChunk(name, lo, hi, n, chunk_tickers, status, rows, reason))
    return out
