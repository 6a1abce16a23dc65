"""The source interface and the universe file.

A source is an object with one method per dataset. Each takes explicit tickers and dates and
returns a `Batch` in the raw contract (see `sources.contract`). No Prefect and no DuckDB here.

Date arguments are inclusive windows:
- `prices(tickers, start, end)`: sessions with trade_date in [start, end];
- `option_quotes` / `valuation_snapshots(tickers, start, end)`: snapshots taken on dates in
  [start, end] (a live provider can only serve today's, start == end == the run date);
- `fundamentals(tickers, start, end)`: quarters whose figures were published (report_date) in
  [start, end], as known on `end`;
- `putcall(start, end)`: market-wide ratios with trade_date in [start, end].
`tickers=None` means every ticker the source has.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from sources.contract import Batch, ContractError

COHORTS = ("ai", "non_ai")
ROLES = (
    "stock",
    # A second listed share class of a company already in the universe (GOOG beside GOOGL): priced
    # and charted, but left out of market-value totals, the largest names and valuation cohorts,
    # since Yahoo's market cap for either class is the whole company's (counting both would count
    # the company twice).
    "share_class",
    "index_proxy",
    "sector_proxy",
    "volatility",
    "treasury",
    "high_yield",
    "investment_grade",
)
UNIVERSE_COLUMNS = ("ticker", "name", "sector", "cohort", "role")
OPTIONAL_UNIVERSE_COLUMNS = ("sub_industry",)  # GICS sub-industry; empty when the file has none
CONFIG = Path(__file__).resolve().parent.parent / "config"
DEFAULT_UNIVERSE = CONFIG / "universe.csv"
# Universes shipped in config/, by the name `--universe` takes (any other value is a file path).
NAMED_UNIVERSES = {"default": DEFAULT_UNIVERSE, "sp500": CONFIG / "sp500.csv"}


def universe_path(name_or_path: str | Path) -> Path:
    """The universe file `--universe` names: `default` (24 names, quick), `sp500` (the S&P 500
    constituents and the index proxies), or a path."""
    text = str(name_or_path).strip()
    if text.lower() in NAMED_UNIVERSES:
        return NAMED_UNIVERSES[text.lower()]
    return Path(text).expanduser().resolve()


@runtime_checkable
class Source(Protocol):
    name: str

    def prices(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch: ...

    def option_quotes(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch: ...

    def valuation_snapshots(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch: ...

    def fundamentals(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch: ...

    def putcall(self, start: dt.date, end: dt.date) -> Batch: ...


def backfill_refusal(source: object, dataset: str) -> str | None:
    """Why `source` cannot serve `dataset` for past dates, or None when it can.

    Sources that serve a dataset only "as of now" (Yahoo's option chains and valuation fields)
    say so through an optional `backfill_refusal(dataset)` method; the sample market and saved
    files can serve any date they hold.
    """
    method = getattr(source, "backfill_refusal", None)
    return method(dataset) if method is not None else None


# Per-ticker progress: network sources call `ticker_done` after each ticker they fetch; a
# progress display (flows/progress.py) subscribes. Listeners must be cheap and thread-safe.
_ticker_listeners: list[Callable[[str, str], None]] = []


def add_ticker_listener(listener: Callable[[str, str], None]) -> None:
    _ticker_listeners.append(listener)


def remove_ticker_listener(listener: Callable[[str, str], None]) -> None:
    with contextlib.suppress(ValueError):
        _ticker_listeners.remove(listener)


def ticker_done(dataset: str, ticker: str) -> None:
    for listener in list(_ticker_listeners):
        listener(dataset, ticker)


def ticker_from_stem(raw: str) -> str:
    """A file name's ticker in Yahoo's spelling: upper case, `_` and `.` read as `-` (BRK_B -> BRK-B)."""
    t = str(raw).strip().upper()
    if not t:
        raise ValueError("empty ticker")
    head, rest = t[:1], t[1:]
    return head + rest.replace("_", "-").replace(".", "-")


def load_universe(path: Path | str | None = None) -> pd.DataFrame:
    """Read and validate the universe file users edit (ticker, name, sector, cohort, role, and
    optionally sub_industry); `path` may be a named universe (`sp500`)."""
    path = universe_path(path) if path else DEFAULT_UNIVERSE
    if not path.exists():
        raise ContractError(f"universe file {path} does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ContractError(f"universe file {path}: cannot be read as CSV ({exc})") from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in UNIVERSE_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"universe file {path}: missing column(s) {', '.join(missing)}")
    for c in OPTIONAL_UNIVERSE_COLUMNS:
        if c not in frame.columns:
            frame[c] = ""
    columns = UNIVERSE_COLUMNS + OPTIONAL_UNIVERSE_COLUMNS
    frame = frame[list(columns)].copy()
    for c in columns:
        frame[c] = frame[c].astype(str).str.strip()
    leading = 0  # '#' lines before the header (a shipped universe's provenance) shift line numbers
    with open(path, encoding="utf-8", errors="replace") as f:
        for text in f:
            if not text.startswith("#"):
                break
            leading += 1
    problems = []
    for i, row in frame.iterrows():
        line = i + 2 + leading
        if not row.ticker:
            problems.append(f"line {line}: ticker is empty")
            continue
        frame.at[i, "ticker"] = row.ticker.upper()
        if row.cohort and row.cohort not in COHORTS:
            problems.append(f"line {line} ({row.ticker}): cohort {row.cohort!r} is not one of {', '.join(COHORTS)}")
        if row.role not in ROLES:
            problems.append(f"line {line} ({row.ticker}): role {row.role!r} is not one of {', '.join(ROLES)}")
        if row.role == "stock" and not row.cohort:
            problems.append(f"line {line} ({row.ticker}): a stock needs a cohort ({' or '.join(COHORTS)})")
    dup = frame["ticker"][frame["ticker"].duplicated()].tolist()
    if dup:
        problems.append(f"ticker(s) listed twice: {', '.join(sorted(set(dup)))}")
    if problems:
        raise ContractError(f"universe file {path}: " + "; ".join(problems))
    for c in ("cohort", *OPTIONAL_UNIVERSE_COLUMNS):
        frame[c] = frame[c].replace("", None)
    return frame.reset_index(drop=True)
