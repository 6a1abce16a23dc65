"""Corrupted files through the files source and the load path, property-based (Hypothesis).

Hypothesis writes small valid files in the layouts `sources/files.py` reads: prices as
yfinance's `history()` and `download()` exports and as a plain lower-case table, CBOE put/call
files (the official archive with its disclaimer and PRODUCT lines, and plain exports whose scope
comes from the file name or folder), yfinance option chains (with and without the index column)
and tidy fundamentals tables. It then corrupts them: truncation at any byte (mid-line,
mid-quoted-field, inside the header), wrong-typed cells, NaN / empty / inf cells, negative
values, duplicated rows (same values or not, in one file or across two), swapped columns
(headers kept or swapped with them), extra cells and blank lines, in any combination. Each case
runs the real `FilesSource` and the real `warehouse.load.land_check_publish` (with the real
`sql/raw/*.checks.yml`, Great Expectations included) into a file warehouse that already holds
valid rows. The properties:

1. No traceback: the source and the load finish, or raise `ContractError` /
   `checks.CheckFailed` naming the file or table.
2. Never a half-written batch: a load that raises leaves every raw and audit table as it was.
   A load that finishes put every passed row in raw with the values the file holds, every
   refused row in audit.quarantine with a reason, logged counts that add up
   (delivered = inserted + updated + unchanged + rejected), no value the checks forbid
   (negative volume, NaN or non-positive close, ...), and left every other row as it was.
3. Nothing dropped silently: each data line of each file is in raw, in audit.quarantine
   (file and line), or collapsed into a row that gives the same values (the exact repeats and
   cross-file merges `sources/files.py` documents, counted in the batch notes), or its file is
   refused as a whole with a reason, and only a file whose bytes or header were damaged
   (truncated, or its first column moved with its header) may be refused.

The oracle reads the written files with the `csv` module and its own small rules for dates and
numbers (below), never with the code under test. A truncated last line is judged on the cells
the cut left whole: a cell the cut went through may read either way, and a line the cut left
with fewer cells than the header must not load (the file is visibly cut short).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from sources.contract import Batch, ContractError
from sources.files import FilesSource
from tests.conftest import copy_lake, lake_target
from warehouse import checks
from warehouse.connect import writer
from warehouse.load import land_check_publish

RUN_DATE = dt.date(2025, 1, 31)
LOADED_AT = dt.datetime(2025, 1, 31, 23, 0, tzinfo=dt.UTC)
RUN_ID = "corrupted"
# NYSE sessions of January 2025 (closed on the 1st, on the 9th for the national day of
# mourning and on the 20th for Martin Luther King Jr. Day), written out so that the oracle does
# not lean on sources.calendar.
SESSIONS = tuple(dt.date(2025, 1, d) for d in (2, 3, 6, 7, 8, 10, 13, 14, 15, 16, 17, 21, 22, 23, 24, 27, 28, 29, 30, 31))
SNAPSHOTS = (dt.date(2025, 1, 24), dt.date(2025, 1, 27), dt.date(2025, 1, 28))
EXPIRIES = (dt.date(2025, 1, 31), dt.date(2025, 2, 7), dt.date(2025, 2, 21))
STRIKES = (100.0, 102.5, 105.0, 110.0, 115.0, 120.0, 125.0, 150.0)
QUARTERS = (dt.date(2023, 10, 29), dt.date(2024, 1, 28), dt.date(2024, 4, 28), dt.date(2024, 7, 28), dt.date(2024, 10, 27))
WINDOWS = {
    "prices_daily": (dt.date(2025, 1, 1), RUN_DATE),
    "putcall_daily": (dt.date(2025, 1, 1), RUN_DATE),
    "option_quotes": (dt.date(2025, 1, 1), RUN_DATE),
    "fundamentals_quarterly": (dt.date(2023, 1, 1), RUN_DATE),
}
KEYS = {
    "prices_daily": ("ticker", "trade_date"),
    "putcall_daily": ("trade_date", "scope"),
    "option_quotes": ("snapshot_date", "contract_symbol"),
    "fundamentals_quarterly": ("ticker", "period_end", "report_date"),
}
RAW_TABLES = ("raw.prices_daily", "raw.putcall_daily", "raw.option_quotes", "raw.fundamentals_quarterly", "raw.valuation_snapshots", "raw.universe")
AUDIT_TABLES = ("audit.quarantine", "audit.load_batches", "audit.check_results", "audit.runs", "audit.fetch_outcomes", "audit.backfill_chunks", "audit.schema_version")

# Text a cell should not hold: realistic spreadsheet and export debris, dates where numbers go
# and numbers where dates go (`1000`, `2025` are fine numbers and no dates).
WRONG_TYPED = ("abc", "12abc", "1.2.3", "#N/A", "#VALUE!", "TRUE", "$12.50", "0x1F", "12:30", "2025-13-45", "--", "1e400", "n.a.", "1000", "2025")
NAN_LIKE = ("", " ", "nan", "NaN", "NULL", "None", "N/A", "NA", "-", "inf", "-inf", "Infinity")
# Well-typed values the checks must refuse: numbers no price, volume or ratio may take, and
# dates off the calendar (Martin Luther King Jr. Day, a Saturday, the national day of
# mourning), after the run date, or before the window asked for.
BAD_NUMBERS = ("0", "-1", "-0.5", "-250000")
BAD_DAYS = (dt.date(2025, 1, 20), dt.date(2025, 1, 25), dt.date(2025, 1, 9), dt.date(2025, 2, 3), dt.date(2024, 12, 31))

PROPERTY_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)


# -- the oracle's reading of a cell ----------------------------------------------------------


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


INVALID = _Marker("invalid")  # the cell cannot be read as its column's type: the row must not load
CUT = _Marker("cut")  # a truncation went through the cell: any reading is right

# The contract's missing numbers (`sources.contract.given_mask`); the files source's own blank
# cells (dividends, splits, strikes, put/call ratios: `sources.cboe_format.NAN_SPELLINGS`) add `na`.
NULLS = {"", "nan", "none", "null", "n/a", "-"}
BLANKS = NULLS | {"na"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")
_US_DAY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2})?$")
_OCC = re.compile(r"^(?P<root>[A-Z0-9.]+?)(?P<yymmdd>\d{6})(?P<letter>[CP])(?P<strike>\d{8})$")


def number(text: str):
    """A decimal number (thousands commas allowed), None when not given, INVALID otherwise."""
    t = text.strip().replace(",", "")
    if t.lower() in NULLS:
        return None
    if not _NUMBER.match(t):
        return INVALID
    x = float(t)
    return x if math.isfinite(x) else INVALID


def count(text: str):
    x = number(text)
    if x is None or x is INVALID:
        return x
    return int(x) if x == int(x) and abs(x) < 2**63 else INVALID


def loose_float(text: str) -> float:
    """What a lenient numeric parse makes of a cell (NaN when nothing): for the rules that look
    at a value before the contract does (a split ratio <= 0 means no split)."""
    t = text.strip().replace(",", "").lower()
    if _NUMBER.match(t):
        return float(t)
    if t in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if t in ("-inf", "-infinity"):
        return -math.inf
    return math.nan


def day(text: str):
    """A calendar day written as YYYY-MM-DD (a time after it is ignored) or M/D/YYYY."""
    t = text.strip()
    if t == "":
        return None
    for pattern, order in ((_ISO_DAY, (0, 1, 2)), (_US_DAY, (2, 0, 1))):
        m = pattern.match(t)
        if m:
            parts = [int(g) for g in m.groups()[:3]]
            try:
                return dt.date(parts[order[0]], parts[order[1]], parts[order[2]])
            except ValueError:
                return INVALID
    return INVALID


def stamp(text: str):
    t = text.strip()
    if t == "":
        return None
    if not _STAMP.match(t):
        return INVALID
    value = dt.datetime.fromisoformat(t)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def text_value(text: str):
    t = text.strip()
    return t or None


def yahoo(text: str) -> str:
    t = text.strip().upper()
    return t[:1] + re.sub(r"[_.]", "-", t[1:])


def _read(reader, text):
    if text is CUT:
        return CUT
    return None if text is None else reader(text)


# -- files as the generator writes them -------------------------------------------------------


@dataclasses.dataclass
class Sheet:
    """One CSV file: `head` lines (not data), then `rows`; `names` are the column names the
    oracle reads the rows by (kept in step with the header when columns are swapped)."""

    path: str  # relative to the source root
    dataset: str
    layout: str
    head: list[list[str]]
    rows: list[list[str]]
    names: list[str]
    aligned: tuple[int, ...]  # head lines whose cells line up with the columns
    fixed: dict  # what the file gives outside its cells: the ticker of its name, a scope, a snapshot date
    newline: str = "\n"
    quote_all: bool = False
    final_newline: bool = True
    cut: int | None = None  # truncated to this many bytes
    header_broken: bool = False  # the first column moved with its header: the layout is no longer recognisable
    history: list[str] = dataclasses.field(default_factory=list)

    def full_bytes(self) -> bytes:
        lines = [_csv_line(cells, self.quote_all) for cells in self.head + self.rows]
        return (self.newline.join(lines) + (self.newline if self.final_newline else "")).encode()

    def data(self) -> bytes:
        full = self.full_bytes()
        return full if self.cut is None else full[: self.cut]

    @property
    def may_be_refused(self) -> bool:
        return self.cut is not None or self.header_broken

    def __repr__(self) -> str:
        return f"Sheet({self.path}, {self.layout}, corruptions={self.history}, bytes={self.data()!r})"

    def _repr_pretty_(self, printer, cycle) -> None:  # Hypothesis prints failing cases with this
        printer.text(repr(self))


def _csv_line(cells: list[str], quote_all: bool) -> str:
    out = []
    for c in cells:
        if quote_all or any(ch in c for ch in ',"\r\n'):
            out.append('"' + c.replace('"', '""') + '"')
        else:
            out.append(c)
    return ",".join(out)


def _physical(text: str) -> list[str]:
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _cells(line: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([line], skipinitialspace=True), [])]


@dataclasses.dataclass
class DataLine:
    number: int  # 1-based physical line
    cells: list[str]
    cut: bool  # the last line, shortened by a truncation


def data_lines(sheet: Sheet) -> tuple[list[DataLine], int]:
    """The lines of the written file that hold data, and how many lines the file has."""
    full = _physical(sheet.full_bytes().decode("ascii"))
    lines = _physical(sheet.data().decode("ascii"))
    out = []
    for i, line in enumerate(lines):
        if i < len(sheet.head):
            continue
        cells = _cells(line)
        if all(c == "" for c in cells):
            continue
        out.append(DataLine(i + 1, cells, cut=(i == len(lines) - 1 and line != full[i])))
    return out, len(lines)


# -- corruptions -------------------------------------------------------------------------------

_index = st.integers(0, 63)
CORRUPTION = st.one_of(
    st.tuples(st.just("cell"), _index, _index, st.sampled_from(WRONG_TYPED)),
    st.tuples(st.just("cell"), _index, _index, st.sampled_from(NAN_LIKE)),
    st.tuples(st.just("negate"), _index, _index),
    st.tuples(st.just("duplicate"), _index, _index, st.booleans(), _index),
    st.tuples(st.just("swap"), _index, _index, st.booleans()),
    st.tuples(st.just("extra"), _index, st.sampled_from(("7", "x", "1,5"))),
    st.tuples(st.just("blank"), _index),
    st.tuples(st.just("value"), _index, _index, st.sampled_from(BAD_NUMBERS)),
    st.tuples(st.just("day"), _index, _index, st.sampled_from(BAD_DAYS)),
)


def _changed(text: str) -> str:
    x = number(text)
    if x is None or x is INVALID:
        return "7"
    return str(int(x) * 2 + 1) if re.fullmatch(r"[+-]?\d+", text.strip().replace(",", "")) else f"{x * 1.5 + 0.25:.2f}"


def corrupt(sheet: Sheet, ops, cut) -> Sheet:
    """Apply the drawn corruptions in order (indices wrap around), then the truncation."""
    width = len(sheet.names)
    for op in ops:
        rows = [i for i, r in enumerate(sheet.rows) if r]
        kind = op[0]
        if kind in ("cell", "negate") and rows:
            r, c = rows[op[1] % len(rows)], op[2] % width
            cells = sheet.rows[r]
            if c < len(cells):
                cells[c] = op[3] if kind == "cell" else "-" + cells[c]
                sheet.history.append(f"{kind} row {r} col {c}: {cells[c]!r}")
        elif kind == "duplicate" and rows:
            r = rows[op[1] % len(rows)]
            copy = list(sheet.rows[r])
            if op[3]:  # same key, another value in a column outside the key
                values = [i for i, n in enumerate(sheet.names) if n in VALUE_NAMES[sheet.dataset] and i < len(copy)]
                if values:
                    c = values[op[4] % len(values)]
                    copy[c] = _changed(copy[c])
            at = op[2] % (len(sheet.rows) + 1)
            sheet.rows.insert(at, copy)
            sheet.history.append(f"duplicate row {r} at {at}{' changed' if op[3] else ''}")
        elif kind == "swap":
            i, j = op[1] % width, op[2] % width
            if i == j:
                continue
            for cells in sheet.rows:
                if max(i, j) < len(cells):
                    cells[i], cells[j] = cells[j], cells[i]
            if op[3]:
                for h in sheet.aligned:
                    sheet.head[h][i], sheet.head[h][j] = sheet.head[h][j], sheet.head[h][i]
                sheet.names[i], sheet.names[j] = sheet.names[j], sheet.names[i]
                if 0 in (i, j) and sheet.layout in FIRST_COLUMN_LAYOUTS:
                    sheet.header_broken = True
            sheet.history.append(f"swap cols {i},{j}{' with header' if op[3] else ''}")
        elif kind == "extra" and rows:
            r = rows[op[1] % len(rows)]
            sheet.rows[r] = sheet.rows[r] + [op[2]]
            sheet.history.append(f"extra cell in row {r}")
        elif kind == "blank":
            at = op[1] % (len(sheet.rows) + 1)
            sheet.rows.insert(at, [])
            sheet.history.append(f"blank line at {at}")
        elif kind in ("value", "day") and rows:
            wanted = NUMBER_NAMES[sheet.dataset] if kind == "value" else DAY_NAMES[sheet.dataset]
            columns = [i for i, n in enumerate(sheet.names) if n in wanted]
            if columns:
                r, c = rows[op[1] % len(rows)], columns[op[2] % len(columns)]
                sheet.rows[r][c] = op[3] if kind == "value" else DAY_STYLES[sheet.layout](op[3])
                sheet.history.append(f"{kind} row {r} col {c}: {sheet.rows[r][c]!r}")
    if cut is not None:
        sheet.cut = cut % (len(sheet.full_bytes()) + 1)
        sheet.history.append(f"cut at byte {sheet.cut}")
    return sheet


# How each layout writes a day (its date column; an option chain's is the last trade time).
DAY_STYLES = {
    "history": lambda d: f"{d} 00:00:00-05:00",
    "download": dt.date.isoformat,
    "plain": dt.date.isoformat,
    "cboe_archive": lambda d: _us(d),
    "cboe_plain": lambda d: _us(d),
    "chain": lambda d: f"{d} 15:30:00+00:00",
    "tidy": dt.date.isoformat,
}
# Layouts recognised by their first column: moving it (with its header) breaks the layout.
FIRST_COLUMN_LAYOUTS = {"download", "cboe_archive", "cboe_plain"}


# -- prices --------------------------------------------------------------------------------------

PRICE_NAMES = {
    "Date": "trade_date", "date": "trade_date", "Price": "trade_date",
    "Open": "open", "open": "open", "High": "high", "high": "high", "Low": "low", "low": "low",
    "Close": "close", "close": "close", "Adj Close": "adj_close", "Volume": "volume", "volume": "volume",
    "Dividends": "dividend", "Stock Splits": "split_ratio",
}


@dataclasses.dataclass(frozen=True)
class Bar:
    day: dt.date
    open: int  # cents
    high: int
    low: int
    close: int
    adj_close: int
    volume: int


def _price(cents: int, noisy: bool) -> str:
    if noisy:  # yfinance writes float32 values: 142.6199951171875
        return repr(float(np.float32(cents / 100)))
    return f"{cents / 100:.2f}"


def price_sheet(ticker: str, layout: str, bars: list[Bar], *, folder: str = "", splits: bool = False, noisy: bool = False, thousands: bool = False) -> Sheet:
    path = f"prices/{folder}{ticker}.csv"
    if layout == "history":
        names = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"] + (["Dividends", "Stock Splits"] if splits else [])
        rows = [
            [f"{b.day} 00:00:00-05:00", *(_price(v, noisy) for v in (b.open, b.high, b.low, b.close, b.adj_close)), str(b.volume)]
            + (["0.0", "0.0"] if splits else [])
            for b in bars
        ]
        return Sheet(path, "prices_daily", layout, [list(names)], rows, names, (0,), {"ticker": ticker})
    if layout == "download":
        names = ["Price", "Adj Close", "Close", "High", "Low", "Open", "Volume"]
        head = [list(names), ["Ticker"] + [ticker] * 6, ["Date"] + [""] * 6]
        rows = [[b.day.isoformat(), *(_price(v, noisy) for v in (b.adj_close, b.close, b.high, b.low, b.open)), str(b.volume)] for b in bars]
        return Sheet(path, "prices_daily", layout, head, rows, names, (0, 1, 2), {"ticker": ticker})
    names = ["date", "open", "high", "low", "close", "volume"]
    rows = [
        [b.day.isoformat(), *(_price(v, noisy) for v in (b.open, b.high, b.low, b.close)), f"{b.volume:,}" if thousands else str(b.volume)]
        for b in bars
    ]
    return Sheet(path, "prices_daily", layout, [list(names)], rows, names, (0,), {"ticker": ticker})


@st.composite
def drawn_bars(draw, days: list[dt.date]) -> list[Bar]:
    out = []
    for d in days:
        close = draw(st.integers(1_000, 50_000))
        low = close - draw(st.integers(0, 500))
        high = close + draw(st.integers(0, 500))
        out.append(Bar(d, draw(st.integers(low, high)), high, low, close, close - draw(st.integers(0, 50)), draw(st.integers(0, 5_000_000))))
    return out


def price_record(sheet: Sheet, raw: dict) -> dict:
    rec = {"ticker": sheet.fixed["ticker"], "trade_date": _read(day, raw.get("trade_date", ""))}
    for c in ("open", "high", "low", "close"):
        rec[c] = _read(number, raw.get(c))
    rec["adj_close"] = _read(number, raw["adj_close"]) if "adj_close" in raw else rec["close"]
    rec["volume"] = _read(count, raw.get("volume"))
    dividend = raw.get("dividend")
    rec["dividend"] = CUT if dividend is CUT else 0.0 if dividend is None or dividend.strip().lower() in BLANKS else number(dividend)
    split = raw.get("split_ratio")
    if split is CUT:
        rec["split_ratio"] = CUT
    elif split is None or split.strip().lower() in BLANKS or loose_float(split) <= 0:
        rec["split_ratio"] = 1.0  # yfinance writes 0 for "no split" (documented)
    else:
        rec["split_ratio"] = number(split)
    return rec


# -- put/call --------------------------------------------------------------------------------------

PUTCALL_NAMES = {"DATE": "trade_date", "CALL": "call_volume", "CALLS": "call_volume", "PUT": "put_volume", "PUTS": "put_volume", "P/C Ratio": "ratio", "Ratio": "ratio"}
DISCLAIMER = "Cboe Volume and Put/Call Ratio data is compiled for the convenience of site visitors and is furnished without responsibility for accuracy."


@dataclasses.dataclass(frozen=True)
class Ratio:
    day: dt.date
    calls: int
    puts: int


def _us(d: dt.date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def putcall_sheet(layout: str, scope: str, ratios: list[Ratio], *, name: str = "") -> Sheet:
    rows = [[_us(r.day), str(r.calls), str(r.puts), str(r.calls + r.puts), f"{round(r.puts / r.calls, 2):.2f}"] for r in ratios]
    if layout == "cboe_archive":
        names = ["DATE", "CALL", "PUT", "TOTAL", "P/C Ratio"]
        head = [[DISCLAIMER, "", "", "", ""], ["", f"PRODUCT:{scope.upper()}", "", "EXCHANGE: Cboe", ""], list(names)]
        return Sheet(f"putcall/{name or 'cboe_export'}.csv", "putcall_daily", layout, head, rows, names, (2,), {"scope": scope})
    names = ["DATE", "CALLS", "PUTS", "TOTAL", "Ratio"]
    path = f"putcall/{scope}pc.csv" if layout == "cboe_plain" else f"putcall/{scope}/daily.csv"
    return Sheet(path, "putcall_daily", "cboe_plain", [list(names)], rows, names, (0,), {"scope": scope})


@st.composite
def drawn_ratios(draw, days: list[dt.date]) -> list[Ratio]:
    out = []
    for d in days:
        calls = draw(st.integers(1_000, 2_000_000))
        out.append(Ratio(d, calls, round(calls * draw(st.integers(30, 250)) / 100)))
    return out


def putcall_record(sheet: Sheet, raw: dict) -> dict:
    rec = {"trade_date": _read(day, raw.get("trade_date", "")), "scope": sheet.fixed["scope"]}
    rec["call_volume"] = _read(count, raw.get("call_volume"))
    rec["put_volume"] = _read(count, raw.get("put_volume"))
    ratio = raw.get("ratio")
    if ratio is CUT:
        rec["ratio"] = CUT
    elif ratio is None or ratio.strip().lower() in BLANKS:
        # Documented: a missing ratio is round(put / call, 2) when both volumes are there.
        calls, puts = raw.get("call_volume"), raw.get("put_volume")
        if CUT in (calls, puts):
            rec["ratio"] = CUT
        else:
            c, p = loose_float(calls or ""), loose_float(puts or "")
            rec["ratio"] = Approx(round(p / c, 2)) if math.isfinite(c) and math.isfinite(p) and c > 0 else None
    else:
        rec["ratio"] = number(ratio)
    return rec


@dataclasses.dataclass(frozen=True)
class Approx:
    """A value the source computes (rounded by its own arithmetic): equal within a cent."""

    value: float


# -- option chains ---------------------------------------------------------------------------------

OPTION_COLUMNS = ["contractSymbol", "lastTradeDate", "strike", "lastPrice", "bid", "ask", "change", "percentChange", "volume", "openInterest", "impliedVolatility", "inTheMoney", "contractSize", "currency"]
OPTION_NAMES = {
    "contractSymbol": "contract_symbol", "lastTradeDate": "last_trade_at", "strike": "strike", "lastPrice": "last_price",
    "bid": "bid", "ask": "ask", "volume": "volume", "openInterest": "open_interest", "impliedVolatility": "implied_volatility",
}


@dataclasses.dataclass(frozen=True)
class Quote:
    expiry: dt.date
    letter: str
    strike: float
    traded_days_before: int
    bid: int  # cents
    spread: int
    volume: int | None
    open_interest: int
    iv: int  # 1e-4

    def symbol(self, ticker: str) -> str:
        return f"{ticker}{self.expiry:%y%m%d}{self.letter}{round(self.strike * 1000):08d}"


def option_sheet(ticker: str, snapshot: dt.date, quotes: list[Quote], *, calls_only: bool, index: bool, folder: str = "") -> Sheet:
    names = ([""] if index else []) + list(OPTION_COLUMNS)
    rows = []
    for i, q in enumerate(quotes):
        traded = dt.datetime.combine(snapshot - dt.timedelta(days=q.traded_days_before), dt.time(15, 30, 29))
        ask = q.bid + q.spread
        cells = [
            q.symbol(ticker), f"{traded}+00:00", f"{q.strike:.1f}", f"{(q.bid + ask) / 200:.2f}", f"{q.bid / 100:.2f}",
            f"{ask / 100:.2f}", "-0.5", "-1.2", "" if q.volume is None else f"{q.volume}.0", f"{q.open_interest}.0",
            f"{q.iv / 10_000}", "True", "REGULAR", "USD",
        ]
        rows.append(([str(i)] if index else []) + cells)
    stem = f"{snapshot:%Y_%m_%d}_{ticker}_calls" if calls_only else f"{ticker}_{snapshot}"
    return Sheet(f"options/{folder}{stem}.csv", "option_quotes", "chain", [list(names)], rows, names, (0,), {"snapshot_date": snapshot})


@st.composite
def drawn_quotes(draw, calls_only: bool) -> list[Quote]:
    keys = draw(st.lists(st.tuples(st.sampled_from(EXPIRIES), st.sampled_from("C" if calls_only else "CP"), st.sampled_from(STRIKES)), min_size=1, max_size=4, unique=True))
    return [
        Quote(e, letter, strike, draw(st.integers(0, 3)), draw(st.integers(0, 2_000)), draw(st.integers(0, 50)),
              draw(st.none() | st.integers(0, 20_000)), draw(st.integers(0, 50_000)), draw(st.integers(500, 30_000)))
        for e, letter, strike in keys
    ]


def option_record(sheet: Sheet, raw: dict) -> dict:
    rec = {"snapshot_date": sheet.fixed["snapshot_date"]}
    symbol = raw.get("contract_symbol", "")
    if symbol is CUT:
        return rec | {c: CUT for c in ("ticker", "contract_symbol", "option_type", "expiration_date", "strike")}
    m = _OCC.match(re.sub(r"\s+", "", symbol).upper())
    if m is None:  # no expiry without an OCC symbol (the layout has no expiration column)
        return rec | {"contract_symbol": text_value(symbol), "expiration_date": None}
    rec["ticker"] = yahoo(m["root"])
    rec["contract_symbol"] = symbol.strip()
    rec["option_type"] = "call" if m["letter"] == "C" else "put"
    yymmdd = m["yymmdd"]
    rec["expiration_date"] = dt.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    implied = int(m["strike"]) / 1000
    written = raw.get("strike")
    if written is CUT:
        rec["strike"] = CUT
    elif written is None or written.strip().lower() in BLANKS:
        rec["strike"] = implied
    else:
        x = loose_float(written)
        # A strike contradicting the symbol is refused (documented); so is an unreadable one.
        rec["strike"] = INVALID if not math.isnan(x) and abs(x - implied) > 5e-4 else number(written)
    for c in ("last_price", "bid", "ask", "implied_volatility"):
        rec[c] = _read(number, raw.get(c))
    for c in ("volume", "open_interest"):
        rec[c] = _read(count, raw.get(c))
    rec["last_trade_at"] = _read(stamp, raw.get("last_trade_at"))
    rec["snapshot_at"] = None
    return rec


# -- fundamentals --------------------------------------------------------------------------------

FUNDAMENTAL_COLUMNS = ["ticker", "fiscal_period", "period_end", "report_date", "revenue", "cost_of_revenue", "gross_profit", "operating_income", "net_income", "diluted_eps", "diluted_shares"]


@dataclasses.dataclass(frozen=True)
class Quarter:
    period_end: dt.date
    report_days: int
    revenue: int  # millions
    cost_pct: int
    opex: int
    eps: int  # cents
    shares: int  # millions

    @property
    def report_date(self) -> dt.date:
        return self.period_end + dt.timedelta(days=self.report_days)

    def cells(self, ticker: str) -> list[str]:
        revenue = self.revenue * 1_000_000
        cost = revenue * self.cost_pct // 100
        gross = revenue - cost
        operating = gross - self.opex * 1_000_000
        return [
            ticker, f"FY{self.period_end.year}Q{(self.period_end.month - 1) // 3 + 1}", self.period_end.isoformat(),
            self.report_date.isoformat(), str(revenue), str(cost), str(gross), str(operating), str(operating * 8 // 10),
            f"{self.eps / 100:.2f}", str(self.shares * 1_000_000),
        ]


def fundamentals_sheet(ticker: str, quarters: list[Quarter]) -> Sheet:
    names = list(FUNDAMENTAL_COLUMNS)
    return Sheet(f"fundamentals/{ticker}_quarterly.csv", "fundamentals_quarterly", "tidy", [list(names)], [q.cells(ticker) for q in quarters], names, (0,), {})


BASE_QUARTERS = (Quarter(dt.date(2024, 7, 28), 31, 30_000, 25, 3_900, 67, 24_850), Quarter(dt.date(2024, 10, 27), 24, 35_000, 25, 4_200, 78, 24_770))


@st.composite
def drawn_quarters(draw) -> list[Quarter]:
    out = []
    keys = draw(st.lists(st.tuples(st.sampled_from(QUARTERS), st.sampled_from((24, 31, 60))), min_size=1, max_size=4, unique=True))
    for period_end, report_days in keys:
        base = [q for q in BASE_QUARTERS if q.period_end == period_end]
        if base and draw(st.booleans()):  # the same figures again, published later or not
            out.append(dataclasses.replace(base[0], report_days=report_days))
            continue
        revenue = draw(st.integers(1_000, 50_000))
        out.append(Quarter(period_end, report_days, revenue, draw(st.integers(10, 90)), draw(st.integers(0, revenue // 10)), draw(st.integers(-50, 500)), draw(st.integers(1_000, 30_000))))
    return out


def fundamentals_record(sheet: Sheet, raw: dict) -> dict:
    ticker = raw.get("ticker", "")
    rec = {"ticker": CUT if ticker is CUT else None if ticker.strip().lower() in BLANKS else yahoo(ticker)}
    rec["fiscal_period"] = _read(text_value, raw.get("fiscal_period"))
    for c in ("period_end", "report_date"):
        rec[c] = _read(day, raw.get(c, ""))
    for c in FUNDAMENTAL_COLUMNS[4:]:
        rec[c] = _read(number, raw.get(c))
    return rec


# -- per dataset ---------------------------------------------------------------------------------

NAMES = {"prices_daily": PRICE_NAMES, "putcall_daily": PUTCALL_NAMES, "option_quotes": OPTION_NAMES, "fundamentals_quarterly": {c: c for c in FUNDAMENTAL_COLUMNS}}
RECORDS = {"prices_daily": price_record, "putcall_daily": putcall_record, "option_quotes": option_record, "fundamentals_quarterly": fundamentals_record}
REQUIRED = {
    "prices_daily": ("ticker", "trade_date", "close", "adj_close", "dividend", "split_ratio"),
    "putcall_daily": ("trade_date", "scope", "ratio"),
    "option_quotes": ("snapshot_date", "ticker", "contract_symbol", "option_type", "expiration_date", "strike"),
    "fundamentals_quarterly": ("ticker", "period_end", "report_date"),
}
VALUE_NAMES = {
    ds: {name for name, column in names.items() if column not in KEYS[ds]} for ds, names in NAMES.items()
}
NUMBER_COLUMNS = {
    "open", "high", "low", "close", "adj_close", "volume", "dividend", "call_volume", "put_volume", "ratio", "strike",
    "last_price", "bid", "ask", "open_interest", "implied_volatility", *FUNDAMENTAL_COLUMNS[4:],
}
NUMBER_NAMES = {ds: {n for n, c in names.items() if c in NUMBER_COLUMNS} for ds, names in NAMES.items()}
DAY_NAMES = {ds: {n for n, c in names.items() if c in ("trade_date", "period_end", "report_date", "last_trade_at")} for ds, names in NAMES.items()}
# The column a request's window is on (sources.base): rows dated outside it are not asked for
# and not reported (documented in sources/files.py).
WINDOW_COLUMNS = {"prices_daily": "trade_date", "putcall_daily": "trade_date", "option_quotes": "snapshot_date", "fundamentals_quarterly": "report_date"}
# What no row of raw may hold after a load: the error checks of sql/raw/*.checks.yml, restated.
FORBIDDEN = {
    "prices_daily": """
        select * from raw.prices_daily
        where not (
            close > 0 and adj_close > 0 and coalesce(open > 0, true) and coalesce(high > 0, true)
            and coalesce(low > 0, true) and coalesce(volume >= 0, true) and dividend >= 0 and split_ratio > 0
            and isfinite(close) and isfinite(adj_close) and coalesce(isfinite(open) and isfinite(high) and isfinite(low), true)
            and trade_date <= $run_date and list_contains($sessions, trade_date)
            and coalesce(low - high <= 1e-6 * high and low - close <= 1e-6 * close and close - high <= 1e-6 * high, true)
            and coalesce(low - open <= 1e-6 * open and open - high <= 1e-6 * high, true)
        )""",
    "putcall_daily": """
        select * from raw.putcall_daily
        where not (
            ratio > 0 and ratio <= 5 and isfinite(ratio) and coalesce(call_volume >= 0, true) and coalesce(put_volume >= 0, true)
            and scope in ('total', 'equity', 'index', 'vix', 'spx', 'etp') and trade_date <= $run_date
            and not (
                call_volume is not null and put_volume is not null
                and (call_volume = 0 or abs(ratio - put_volume / call_volume) > 0.005 + 1e-9)
            )
        )""",
    "option_quotes": """
        select * from raw.option_quotes
        where not (
            strike > 0 and isfinite(strike) and option_type in ('call', 'put') and expiration_date >= snapshot_date
            and snapshot_date <= $run_date and coalesce(last_price >= 0, true) and coalesce(bid >= 0, true)
            and coalesce(ask >= 0, true) and coalesce(volume >= 0, true) and coalesce(open_interest >= 0, true)
            and coalesce(implied_volatility >= 0 and isfinite(implied_volatility), true)
        )""",
    "fundamentals_quarterly": """
        select * from raw.fundamentals_quarterly
        where not (
            coalesce(revenue >= 0, true) and coalesce(diluted_shares > 0, true) and report_date > period_end
            and report_date <= $run_date and coalesce(revenue >= gross_profit, true)
            and coalesce(isfinite(revenue) and isfinite(net_income) and isfinite(diluted_eps), true)
        )""",
}


def fetch(source: FilesSource, dataset: str):
    start, end = WINDOWS[dataset]
    if dataset == "prices_daily":
        return source.prices(None, start, end)
    if dataset == "putcall_daily":
        return source.putcall(start, end)
    if dataset == "option_quotes":
        return source.option_quotes(None, start, end)
    return source.fundamentals(None, start, end)


@dataclasses.dataclass
class Reading:
    """The oracle's reading of one data line."""

    sheet: Sheet
    line: DataLine
    record: dict
    bad: list[str]  # why the row must not load (empty: it may)
    unsure: bool  # a cut cell or a broken header: any reading is right

    @property
    def key(self):
        return tuple(self.record.get(k) for k in KEYS[self.sheet.dataset])


def read_line(sheet: Sheet, line: DataLine) -> Reading:
    aliases = NAMES[sheet.dataset]
    width = len(sheet.names)
    raw: dict = {}
    for i, name in enumerate(sheet.names):
        column = aliases.get(name)
        if column is None or column in raw:
            continue
        if i >= len(line.cells):
            raw[column] = ""
        elif line.cut and i == len(line.cells) - 1:
            raw[column] = CUT
        else:
            raw[column] = line.cells[i]
    record = RECORDS[sheet.dataset](sheet, raw)
    bad = [f"{c} unreadable" for c, v in record.items() if v is INVALID]
    bad += [f"{c} missing" for c in REQUIRED[sheet.dataset] if record.get(c) is None]
    if any(c != "" for c in line.cells[width:]):
        bad.append("more cells than the header")
    unsure = sheet.header_broken or any(v is CUT for v in record.values())
    # A last line left with fewer cells than the header is visibly cut off: whatever its cells
    # read as, it must not load.
    cut_short = ["cut short"] if line.cut and len(line.cells) < width else []
    return Reading(sheet, line, record, cut_short + ([] if unsure else bad), unsure)


def same(a, b, *, exact: bool = False) -> bool:
    if isinstance(a, Approx) or isinstance(b, Approx):
        x = a.value if isinstance(a, Approx) else a
        y = b.value if isinstance(b, Approx) else b
        return x is not None and y is not None and abs(x - y) <= 0.011
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return a == b if exact else math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a == b
    if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
        return False
    return a == b


def concrete(v) -> bool:
    return v is not None and v is not INVALID and v is not CUT


def agree(a: dict, b: dict) -> bool:
    """Two readings give the same fact: equal wherever both hold a value."""
    return all(same(a[c], b[c], exact=True) for c in a if c in b and concrete(a[c]) and concrete(b[c]))


# -- the warehouse ---------------------------------------------------------------------------------


def snapshot(con) -> dict:
    return {t: con.execute(f"select * from {t} order by all").fetchall() for t in RAW_TABLES + AUDIT_TABLES}


def raw_rows(con, dataset: str) -> dict:
    cur = con.execute(f"select * from raw.{dataset}")
    names = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        rec = dict(zip(names, row))
        out[tuple(rec[k] for k in KEYS[dataset])] = rec
    return out


@dataclasses.dataclass
class Env:
    tmp: Path
    base: Path
    checks: dict
    expectations: checks.Expectations
    before: dict  # snapshot() of the prepared warehouse: every case starts from a copy of it
    before_raw: dict  # raw_rows() of each dataset in it

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(f"Env({self.base})")


def write(root: Path, sheets: list[Sheet]) -> None:
    for sheet in sheets:
        path = root / sheet.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sheet.data())


def base_sheets() -> list[Sheet]:
    """The valid rows the warehouse holds before each case: keys the cases draw from too."""
    return [
        price_sheet("AAA", "plain", [Bar(SESSIONS[i], 10_000 + i, 10_100 + i, 9_900, 10_050, 10_000, 1_000 * (i + 1)) for i in (13, 14, 15)]),
        price_sheet("BBB", "history", [Bar(SESSIONS[i], 5_000, 5_100, 4_900, 5_050, 5_040, 700) for i in (14, 15, 16)]),
        putcall_sheet("cboe_plain", "total", [Ratio(SESSIONS[i], 100_000, 90_000 + i) for i in (13, 14, 15)]),
        putcall_sheet("cboe_archive", "equity", [Ratio(SESSIONS[i], 50_000, 30_000) for i in (14, 15)]),
        option_sheet("ZZZ", SNAPSHOTS[0], [Quote(EXPIRIES[0], "C", 105.0, 1, 150, 20, 12, 300, 4_500), Quote(EXPIRIES[1], "P", 110.0, 0, 300, 10, None, 40, 6_000)], calls_only=False, index=True),
        fundamentals_sheet("ZZZ", list(BASE_QUARTERS)),
    ]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    tmp = tmp_path_factory.mktemp("corrupted")
    root = tmp / "valid"
    write(root, base_sheets())
    found = checks.discover_checks()
    expectations = checks.Expectations()
    base = lake_target(tmp, "base")  # the default storage: a DuckLake
    source = FilesSource(root)
    with writer(base, holder="pytest") as con:
        for dataset in KEYS:
            batch = fetch(source, dataset)
            assert batch.rejects.empty and len(batch.frame), (dataset, batch.notes)
            result, outcome = land_check_publish(
                con, batch, checks_file=found[f"raw.{dataset}"], expectations=expectations, run_date=RUN_DATE,
                source="files", run_id="base", loaded_at=LOADED_AT - dt.timedelta(days=1), window=WINDOWS[dataset],
            )
            assert (result.inserted, result.rejected, outcome.held) == (len(batch.frame), 0, False), dataset
    # Read once here, not again in each case's copy (a copy holds the same rows; reading the
    # 13 tables back cost a third of a case).
    with writer(base, holder="pytest") as con:
        before, before_raw = snapshot(con), {dataset: raw_rows(con, dataset) for dataset in KEYS}
    return Env(tmp, base, found, expectations, before, before_raw)


# -- the properties ----------------------------------------------------------------------------------


NOTE_COUNTS = (re.compile(r"(\d+) exact repeated row\(s\) collapsed"), re.compile(r"(\d+) row\(s\) also given, with agreeing values"))


@dataclasses.dataclass
class Outcome:
    """What a case came to, for the example-based tests to look at more closely."""

    batch: Batch | None
    quarantined: list[tuple]  # audit.quarantine rows of the run: source_ref, line, check_name, reason, row_json
    raw: dict  # raw.<dataset> after the load, by key
    error: Exception | None = None


def run_case(env: Env, dataset: str, sheets: list[Sheet]) -> Outcome:
    """Write the sheets, read them with FilesSource, land-check-publish the batch into a copy of
    the prepared warehouse, and assert the three properties."""
    with tempfile.TemporaryDirectory(dir=env.tmp) as here:
        root = Path(here) / "files"
        write(root, sheets)
        refs = {str(root / s.path): s for s in sheets}
        try:
            batch = fetch(FilesSource(root), dataset)
        except ContractError as exc:  # property 1: a documented error, naming the file
            assert any(ref in str(exc) for ref in refs), f"ContractError names no file: {exc}"
            _event("source raised ContractError")
            return Outcome(None, [], {}, exc)
        db = copy_lake(env.base, Path(here), "w")
        with writer(db, holder="pytest") as con:
            before, before_raw = env.before, env.before_raw[dataset]
            try:
                result, outcome = land_check_publish(
                    con, batch, checks_file=env.checks[f"raw.{dataset}"], expectations=env.expectations, run_date=RUN_DATE,
                    source="files", run_id=RUN_ID, loaded_at=LOADED_AT, window=WINDOWS[dataset],
                )
            except (ContractError, checks.CheckFailed) as exc:
                _event(f"load raised {type(exc).__name__}")
                assert snapshot(con) == before, "a refused load changed the warehouse"
                assert dataset in str(exc) or any(ref in str(exc) for ref in refs), exc
                return Outcome(batch, [], before_raw, exc)
            except Exception:
                # Property 2 even for an unexpected error: nothing half-written. Then property 1 fails.
                assert snapshot(con) == before, "a failed load left a half-written batch"
                raise
            after = snapshot(con)
            after_raw = raw_rows(con, dataset)
            quarantined = con.execute(
                "select source_ref, line, check_name, reason, row_json from audit.quarantine where run_id = ? order by quarantine_id",
                [RUN_ID],
            ).fetchall()
            logged = con.execute(
                "select rows_delivered, rows_inserted, rows_updated, rows_unchanged, rows_rejected from audit.load_batches where run_id = ?",
                [RUN_ID],
            ).fetchall()
            forbidden = con.execute(FORBIDDEN[dataset], {"run_date": RUN_DATE, "sessions": list(SESSIONS)} if dataset == "prices_daily" else {"run_date": RUN_DATE}).fetchall()

        # Property 2: the counts add up, other tables and other keys are as they were.
        assert result.delivered == len(batch.frame) + len(batch.rejects)
        assert result.delivered == result.inserted + result.updated + result.unchanged + result.rejected
        assert result.rejected == len(quarantined)
        assert logged == [(result.delivered, result.inserted, result.updated, result.unchanged, result.rejected)]
        for table in RAW_TABLES + ("audit.runs", "audit.fetch_outcomes", "audit.backfill_chunks", "audit.schema_version"):
            if table != f"raw.{dataset}":
                assert after[table] == before[table], f"{table} changed"
        for table in ("audit.quarantine", "audit.load_batches", "audit.check_results"):
            assert not collections.Counter(before[table]) - collections.Counter(after[table]), f"{table} lost rows"
        assert forbidden == [], f"raw.{dataset} holds rows its checks forbid: {forbidden}"
        lineage = batch.lineage_frame()
        refused_rows = set(outcome.refused_rows)
        passed_keys = set()
        passed = collections.Counter()  # (file, line) of each row that passed the checks
        for i, row in enumerate(batch.frame.to_dict(orient="records")):
            if i in refused_rows:
                continue
            key = tuple(_plain(row[k]) for k in KEYS[dataset])
            passed_keys.add(key)
            passed[(lineage.source_ref[i], None if lineage.line.isna()[i] else int(lineage.line[i]))] += 1
            stored = after_raw.get(key) or _republished(after_raw, dataset, {k: _plain(v) for k, v in row.items()})
            assert stored, f"passed row {key} is not in raw"
            if key in after_raw:  # raw holds exactly what the batch passed
                mismatched = {c: (v, stored[c]) for c, v in row.items() if not _identical(_plain(v), _plain(stored[c]))}
                assert not mismatched, f"raw row {key} differs from the batch: {mismatched}"
        assert len(after_raw) == len(before_raw) + result.inserted
        assert set(after_raw) <= set(before_raw) | passed_keys, "raw holds a key the batch did not pass"
        changed = [k for k in before_raw if after_raw.get(k) != before_raw[k]]
        assert all(k in passed_keys for k in changed), f"rows outside the batch changed: {changed}"
        assert len(changed) == result.updated
        for source_ref, line, check_name, reason, row_json in quarantined:
            assert reason and check_name, (source_ref, line)
            assert source_ref in refs, f"quarantined row names no file of the case: {source_ref}"
            if line is not None:
                assert row_json is not None, (source_ref, line, reason)

        # Property 3: every data line is accounted for.
        notes = " | ".join(batch.notes)
        collapsed_in_notes = sum(int(m) for pattern in NOTE_COUNTS for m in pattern.findall(notes))
        merged = bool(NOTE_COUNTS[1].search(notes))
        _event(f"held by a check: {outcome.held}")
        _event(f"rows refused by the contract: {_some(len(batch.rejects))}")
        _event(f"rows refused by a check: {_some(len(outcome.refused))}")
        _event(f"rows written: {_some(result.inserted + result.updated)}, unchanged: {_some(result.unchanged)}")
        _event(f"files refused whole: {_some(sum(q[1] is None for q in quarantined))}")
        _event(f"lines collapsed per the notes: {_some(collapsed_in_notes)}")
        readings: list[Reading] = []
        passed_readings: list[Reading] = []
        by_check: list[Reading] = []
        unaccounted: list[Reading] = []
        for ref, sheet in refs.items():
            lines, n_lines = data_lines(sheet)
            whole = [q for q in quarantined if q[0] == ref and q[1] is None]
            rows = [q for q in quarantined if q[0] == ref and q[1] is not None]
            mine = {line: n for (r, line), n in passed.items() if r == ref}
            if whole:
                assert sheet.may_be_refused, f"{ref} refused although intact: {whole[0][3]}"
                assert len(whole) == 1 and not rows and not mine, f"{ref} refused and read at once"
                assert whole[0][3].strip() and ref in notes, f"{ref}: refusal without a reason or note"
                continue
            quarantined_lines = collections.Counter(q[1] for q in rows)
            assert max(mine.values(), default=1) == 1 and max(quarantined_lines.values(), default=1) == 1, f"{ref}: a line taken twice"
            assert not set(mine) & set(quarantined_lines), f"{ref}: a line both loaded and quarantined"
            assert all(1 <= n <= n_lines for n in list(mine) + list(quarantined_lines)), f"{ref}: a line the file does not have"
            checked = {q[1] for q in rows if q[2] != "raw_contract"}
            data = {dl.number for dl in lines}
            if not sheet.header_broken:
                assert set(mine) <= data, f"{ref}: loaded a line that holds no data: {sorted(set(mine) - data)}"
            for dl in lines:
                reading = read_line(sheet, dl)
                readings.append(reading)
                if dl.number in mine:
                    assert not reading.bad, f"{ref}:{dl.number} loaded although {reading.bad}: {dl.cells}"
                    passed_readings.append(reading)
                elif dl.number in checked:
                    by_check.append(reading)
                elif dl.number not in quarantined_lines:
                    unaccounted.append(reading)
        start, end = WINDOWS[dataset]
        dated = [r for r in unaccounted if concrete(r.record.get(WINDOW_COLUMNS[dataset]))]
        asked = [r for r in dated if start <= r.record[WINDOW_COLUMNS[dataset]] <= end]
        # Lines dated outside the window may go unreported; every other missing line is a
        # repeat the notes count (some repeats may be of lines outside the window too).
        assert len(asked) <= collapsed_in_notes <= len(unaccounted), (
            f"{len(unaccounted)} line(s) neither loaded nor quarantined ({len(asked)} dated in the window), "
            f"{collapsed_in_notes} collapsed per the notes: "
            + "; ".join(f"{r.sheet.path}:{r.line.number} {r.line.cells}" for r in unaccounted)
        )
        for r in asked:  # collapsed into a kept row with the same key and values
            twins = [t for t in passed_readings + by_check if t is not r and t.key == r.key and agree(t.record, r.record)]
            assert twins or r.unsure, f"{r.sheet.path}:{r.line.number} {r.line.cells} was dropped: it repeats no row that was kept"
        for r in passed_readings:
            # A key given twice with differing values is refused whole (documented).
            rivals = [
                o for o in readings
                if o is not r and not o.bad and not o.unsure and not r.unsure and o.key == r.key
                and any(concrete(r.record[c]) and concrete(o.record.get(c)) and not same(r.record[c], o.record[c], exact=True) for c in r.record)
            ]
            assert not rivals, f"{r.sheet.path}:{r.line.number} loaded although {rivals[0].sheet.path}:{rivals[0].line.number} gives its key other values"
            if r.unsure:
                continue
            stored = after_raw.get(r.key)
            republished = stored is None and _republished(after_raw, dataset, r.record)
            stored = stored or republished
            assert stored, f"{r.sheet.path}:{r.line.number} passed but raw has no row {r.key}"
            for column, value in r.record.items():
                if republished and column == "report_date":
                    continue  # the earlier publication of the same figures stays (documented)
                if value is None and merged:
                    continue  # a merged row takes the values only the other file has
                assert same(value, _plain(stored[column])) or (value is None and stored[column] is None), (
                    f"{r.sheet.path}:{r.line.number} {column}: file says {value!r}, raw holds {stored[column]!r}"
                )
    return Outcome(batch, quarantined, after_raw)


def _event(text: str) -> None:
    """A Hypothesis event (shown by --hypothesis-show-statistics), when inside a drawn case."""
    if currently_in_test_context():
        event(text)


def _identical(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _some(n: int) -> str:
    return "none" if n == 0 else "one" if n == 1 else "several"


def _plain(value):
    """DuckDB and pandas values in the oracle's terms (dates as dates, NULL as None)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.date()
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__module__ == "numpy":
        return value.item()
    return value


def _republished(raw: dict, dataset: str, record: dict):
    """A fundamentals row repeating the latest earlier publication is not stored again (documented)."""
    if dataset != "fundamentals_quarterly":
        return None
    earlier = [r for k, r in raw.items() if k[0] == record["ticker"] and k[1] == record["period_end"] and k[2] < record["report_date"]]
    return max(earlier, key=lambda r: r["report_date"]) if earlier else None


# -- strategies ----------------------------------------------------------------------------------

CUTS = st.one_of(st.none(), st.none(), st.integers(0, 100_000))
OPS = st.lists(CORRUPTION, max_size=4)


@st.composite
def price_cases(draw) -> list[Sheet]:
    sheets = []
    for ticker in draw(st.lists(st.sampled_from(("AAA", "BBB", "CCC")), min_size=1, max_size=2, unique=True)):
        days = sorted(draw(st.lists(st.sampled_from(SESSIONS[10:]), min_size=1, max_size=5, unique=True)))
        layout = draw(st.sampled_from(("history", "download", "plain")))
        values = draw(drawn_bars(days))
        sheet = price_sheet(
            ticker, layout, values, splits=draw(st.booleans()), noisy=draw(st.booleans()), thousands=draw(st.booleans()),
        )
        sheet.quote_all = draw(st.booleans())
        sheet.newline = draw(st.sampled_from(("\n", "\r\n")))
        sheet.final_newline = draw(st.booleans())
        if draw(st.booleans()):  # the same ticker in a second file, in another layout
            again = draw(st.lists(st.sampled_from(values), min_size=1, unique=True))
            sheets.append(corrupt(price_sheet(ticker, draw(st.sampled_from(("history", "download", "plain"))), again, folder="more/"), draw(OPS), draw(CUTS)))
        sheets.append(corrupt(sheet, draw(OPS), draw(CUTS)))
    return sheets


@st.composite
def putcall_cases(draw) -> list[Sheet]:
    sheets = []
    used = set()
    for layout, scope in draw(st.lists(st.tuples(st.sampled_from(("cboe_archive", "cboe_plain", "hint")), st.sampled_from(("total", "equity", "index"))), min_size=1, max_size=3, unique=True)):
        days = sorted(draw(st.lists(st.sampled_from(SESSIONS[10:]), min_size=1, max_size=5, unique=True)))
        sheet = putcall_sheet(layout, scope, draw(drawn_ratios(days)), name=f"cboe_export_{len(sheets)}")
        if sheet.path in used:
            continue
        used.add(sheet.path)
        sheet.quote_all = draw(st.booleans())
        sheet.newline = draw(st.sampled_from(("\n", "\r\n")))
        sheets.append(corrupt(sheet, draw(OPS), draw(CUTS)))
    return sheets


@st.composite
def option_cases(draw) -> list[Sheet]:
    sheets = []
    for n in range(draw(st.integers(1, 2))):
        calls_only = draw(st.booleans())
        snapshot = draw(st.sampled_from(SNAPSHOTS))
        sheet = option_sheet("ZZZ", snapshot, draw(drawn_quotes(calls_only)), calls_only=calls_only, index=draw(st.booleans()), folder=f"f{n}/")
        sheet.quote_all = draw(st.booleans())
        sheets.append(corrupt(sheet, draw(OPS), draw(CUTS)))
    return sheets


@st.composite
def fundamentals_cases(draw) -> list[Sheet]:
    sheets = []
    for ticker in draw(st.lists(st.sampled_from(("ZZZ", "YYY")), min_size=1, max_size=2, unique=True)):
        sheet = fundamentals_sheet(ticker, draw(drawn_quarters()))
        sheet.quote_all = draw(st.booleans())
        sheets.append(corrupt(sheet, draw(OPS), draw(CUTS)))
    return sheets


@settings(max_examples=16, **PROPERTY_SETTINGS)
@given(sheets=price_cases())
def test_corrupted_price_files_load_or_quarantine_every_line(env, sheets):
    run_case(env, "prices_daily", sheets)


@settings(max_examples=13, **PROPERTY_SETTINGS)
@given(sheets=putcall_cases())
def test_corrupted_putcall_files_load_or_quarantine_every_line(env, sheets):
    run_case(env, "putcall_daily", sheets)


@settings(max_examples=13, **PROPERTY_SETTINGS)
@given(sheets=option_cases())
def test_corrupted_option_chains_load_or_quarantine_every_line(env, sheets):
    run_case(env, "option_quotes", sheets)


@settings(max_examples=10, **PROPERTY_SETTINGS)
@given(sheets=fundamentals_cases())
def test_corrupted_fundamentals_load_or_quarantine_every_line(env, sheets):
    run_case(env, "fundamentals_quarterly", sheets)


# -- the bugs these properties found, as plain examples (each also checks the three properties) --


def _quarantined(outcome: Outcome, path: str) -> dict:
    """The quarantine's reasons for one file of a case, by line (None: the file as a whole)."""
    return {line: reason for ref, line, _, reason, _ in outcome.quarantined if ref.endswith(path)}


def _bar(i: int, *, close: int = 10_000, volume: int = 500) -> Bar:
    return Bar(SESSIONS[i], close, close + 100, close - 100, close, close, volume)


def test_a_date_a_timestamp_cannot_hold_is_a_quarantined_row_not_a_traceback(env):
    # Was: pandas' OutOfBoundsDatetime out of FilesSource.prices (nanosecond timestamps span
    # 1677-2262), so a negated date or the year 9999 stopped the whole dataset.
    sheet = price_sheet("AAA", "history", [_bar(15), _bar(16), _bar(17)])
    sheet.rows[0][0] = "-2025-01-27 00:00:00-05:00"
    sheet.rows[1][0] = "9999-12-31"
    out = run_case(env, "prices_daily", [sheet])
    assert _quarantined(out, "prices/AAA.csv") == {2: "trade_date: cannot read date from value", 3: "trade_date: cannot read date from value"}
    assert out.raw[("AAA", SESSIONS[17])]["close"] == 100.0


def test_a_count_that_is_infinite_or_too_big_for_bigint_is_a_quarantined_row_not_a_traceback(env):
    # Was: OverflowError (inf, 1e400) or TypeError (1e19) from the BIGINT cast in sources.contract.
    sheet = price_sheet("AAA", "plain", [_bar(15), _bar(16), _bar(17), _bar(18)])
    for row, text in zip(sheet.rows, ("inf", "1e400", "1e19")):
        row[5] = text
    out = run_case(env, "prices_daily", [sheet])
    assert _quarantined(out, "prices/AAA.csv") == {n: "volume: cannot read bigint from value" for n in (2, 3, 4)}
    assert out.raw[("AAA", SESSIONS[18])]["volume"] == 500


def test_rows_with_a_number_in_the_date_column_are_reported_not_dropped(env):
    # Was: with the date and volume columns swapped, conform could not read the dates 1000 and
    # 1500, but the window filter of the rejects read them as the years 1000 and 1500, outside
    # the window: the rows were in neither raw nor the quarantine.
    sheet = price_sheet("AAA", "plain", [_bar(15, volume=1_000), _bar(16, volume=1_500)])
    for row in sheet.rows:
        row[0], row[5] = row[5], row[0]
    out = run_case(env, "prices_daily", [sheet])
    why = "trade_date: cannot read date from value; volume: cannot read bigint from value"
    assert _quarantined(out, "prices/AAA.csv") == {2: why, 3: why}


def test_exact_repeats_of_a_key_given_differing_values_are_quarantined_with_it(env):
    # Was: of rows A, A, B for one key the second A was collapsed as a repeat of the first, then
    # A and B were refused as a conflict: line 3 was in neither raw nor the quarantine.
    rows = [_bar(15), _bar(15), _bar(15, close=10_200), _bar(16), _bar(16)]
    out = run_case(env, "prices_daily", [price_sheet("AAA", "plain", rows)])
    clash = "duplicate key {'ticker': 'AAA', 'trade_date': '2025-01-27'} with differing values (line 2, line 3, line 4)"
    assert _quarantined(out, "prices/AAA.csv") == {2: clash, 3: clash, 4: clash}
    assert "prices_daily: 1 exact repeated row(s) collapsed" in out.batch.notes  # lines 5 and 6 agree: one row
    assert ("AAA", SESSIONS[16]) in out.raw


def test_a_date_dateutil_would_guess_is_quarantined(env):
    # Was: read through dateutil, `2025` loaded as 2025-01-01 (a holiday, which put/call rows
    # may be on), `1.2.3` became 2003-01-02 and fell silently outside the window, and `12:30`
    # became the day the code ran.
    sheet = putcall_sheet("cboe_plain", "total", [Ratio(SESSIONS[i], 100_000, 80_000) for i in (15, 16, 17, 18)])
    for row, text in zip(sheet.rows, ("2025", "1.2.3", "12:30")):
        row[0] = text
    out = run_case(env, "putcall_daily", [sheet])
    assert _quarantined(out, "putcall/totalpc.csv") == {n: "trade_date: cannot read date from value" for n in (2, 3, 4)}
    assert (SESSIONS[18], "total") in out.raw and (dt.date(2025, 1, 1), "total") not in out.raw


def test_a_time_without_a_date_is_one_quarantined_contract_not_a_held_chain(env):
    # Was: `12:30` in lastTradeDate read as 12:30 today, after the snapshot, so the check for
    # trades after the snapshot held the whole chain: the outcome depended on the clock.
    quotes = [Quote(EXPIRIES[1], "C", 105.0, 0, 100, 10, 5, 50, 5_000), Quote(EXPIRIES[1], "P", 110.0, 1, 200, 10, 5, 50, 6_000)]
    sheet = option_sheet("ZZZ", SNAPSHOTS[1], quotes, calls_only=False, index=False)
    sheet.rows[0][1] = "12:30"
    out = run_case(env, "option_quotes", [sheet])
    assert _quarantined(out, "options/ZZZ_2025-01-27.csv") == {2: "last_trade_at: cannot read timestamptz from value"}
    assert (SNAPSHOTS[1], quotes[1].symbol("ZZZ")) in out.raw


def test_a_last_line_cut_off_mid_row_is_quarantined(env):
    # Was: the cells a truncation took off the last line read as blanks. An option chain cut after
    # its `change` cell loaded the contract without volume, open interest or IV; a put/call file
    # cut inside the PUT cell loaded the ratio of what was left of it (12 / 1000, 0.01).
    quotes = [Quote(EXPIRIES[1], "C", 105.0, 0, 100, 10, 5, 50, 5_000), Quote(EXPIRIES[1], "P", 110.0, 1, 200, 10, 5, 50, 6_000)]
    chain = option_sheet("ZZZ", SNAPSHOTS[1], quotes, calls_only=False, index=False)
    chain.cut = chain.full_bytes().rindex(b",-0.5,") + len(b",-0.5")
    out = run_case(env, "option_quotes", [chain])
    cut = "the last line has {} of the header's {} cells and no line break after it: the file looks cut off"
    assert _quarantined(out, "options/ZZZ_2025-01-27.csv") == {3: cut.format(7, 14)}
    assert (SNAPSHOTS[1], quotes[0].symbol("ZZZ")) in out.raw

    ratios = putcall_sheet("cboe_plain", "equity", [Ratio(SESSIONS[16], 1_000, 1_200), Ratio(SESSIONS[17], 1_000, 1_200)])
    ratios.cut = ratios.full_bytes().rindex(b",1200,") + len(b",12")
    whole = putcall_sheet("cboe_plain", "index", [Ratio(SESSIONS[17], 1_000, 1_200)])
    whole.final_newline = False  # a complete last line without a line break is fine
    out = run_case(env, "putcall_daily", [ratios, whole])
    assert _quarantined(out, "putcall/equitypc.csv") == {3: cut.format(3, 5)}
    assert _quarantined(out, "putcall/indexpc.csv") == {}
    assert out.raw[(SESSIONS[17], "index")]["ratio"] == 1.2 and (SESSIONS[17], "equity") not in out.raw


def test_a_chain_with_a_trade_after_its_snapshot_is_held_whole_and_nothing_else_changes(env):
    # Not a bug: the hold path, which drawn cases reach rarely. A last trade after the snapshot
    # means the snapshot date is wrong for the whole chain: every contract is quarantined.
    quotes = [Quote(EXPIRIES[1], "C", 105.0, 0, 100, 10, 5, 50, 5_000), Quote(EXPIRIES[0], "C", 105.0, 1, 150, 20, 12, 300, 4_500)]
    sheet = option_sheet("ZZZ", SNAPSHOTS[0], quotes, calls_only=True, index=True)
    sheet.rows[0][2] = DAY_STYLES["chain"](dt.date(2025, 2, 3))
    out = run_case(env, "option_quotes", [sheet])
    reasons = _quarantined(out, "options/2025_01_24_ZZZ_calls.csv")
    assert set(reasons) == {2, 3} and all(r.startswith("batch held: last_trade_after_snapshot") for r in reasons.values())
    assert len(out.raw) == 2  # the prepared warehouse's two contracts, as they were
