"""What a run fetches: the date window of each dataset.

A nightly run re-fetches a trailing window of sessions (providers restate recent days). A
dataset with nothing in the warehouse yet gets a first history instead, so that the moving
averages have something to average on a new machine. Snapshot datasets (option chains,
valuation fields) exist only as taken on the night, so their window is the run date alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb

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


def earliest_change(plans: list[DatasetWindow]) -> dt.date | None:
    """Where the incremental build starts: the earliest date any window touched."""
    return min((p.start for p in plans), default=None)
