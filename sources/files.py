"""The files source: market data people already have on disk, read into the raw contract.

`FilesSource(root)` reads a folder with any of these subfolders (each is searched recursively,
following symlinks; names starting with `.` or `~` are skipped, and so are non-CSV files, with a
note):

- `prices/`: one CSV per ticker, the file name stem is the ticker (`BRK_B.csv` -> BRK-B; the
  stem wins over any ticker written inside). Headers are matched loosely (lower case, letters
  and digits only): date, open, high, low, close, adj close, volume, dividends, stock splits,
  in any order and spelling (`Adj Close`, `adj_close`, `AdjClose`), extra columns ignored. The
  three-line header of `yf.download(...).to_csv()` (`Price,...` / `Ticker,...` / `Date,,,`) is
  recognised; a multi-ticker download keeps the columns of the file's own ticker.
  `close` is the close as written (split-adjusted, as traded when the vendor has both);
  `adj_close` is the Adj Close column, or the close when there is only one; `dividend` is 0
  when absent; `split_ratio` is the Stock Splits value when > 0, else 1 (yfinance writes 0).
  Dates keep the calendar day as written (`2025-01-27 00:00:00-05:00` is 2025-01-27). Prices
  and dividends lose float32 noise (599.3699951171875 is 599.37, see
  `contract.float32_denoised`) and are rounded to 6 decimals.
- `putcall/`: CBOE put/call files, parsed by `sources.cboe_format.parse_cboe_putcall`; a
  parent folder named after a scope (`putcall/equity/x.csv`) is the scope hint.
- `options/`: yfinance `option_chain` tables (`contractSymbol,lastTradeDate,strike,...`),
  calls and puts together or apart, with or without an index column and added columns.
  Ticker: a ticker column, else the OCC root of the contract symbol
  (ROOT + YYMMDD + C/P + strike x 1000 in 8 digits), else the file name. Expiry, type and
  strike: their columns, else decoded from the symbol; a row whose columns contradict its own
  symbol is refused. Every contract is kept as delivered (stale quotes and 1e-5 IVs included:
  judging them is the checks layer's job). `last_trade_at` is read as UTC (naive times are
  taken as UTC, which is what yfinance writes); `snapshot_at` is NULL unless the file has a
  snapshot-time column.
- `fundamentals/`, `valuation/`: tidy CSVs with the columns of `raw.fundamentals_quarterly` /
  `raw.valuation_snapshots`, matched by name (a few common aliases such as `totalRevenue`,
  `epsDiluted`, `fiscalDateEnding` are understood). A missing `ticker` column is read from
  the file name's first word, a missing valuation `snapshot_date` from a date in the file
  name; other missing required columns refuse the file. Columns not in the contract are
  ignored and named in a note.

Snapshot date of an option file, first match wins:
1. an explicit statement: the `snapshot_dates` argument (keys: file name, or path relative
   to `options/`), else a `snapshot_dates.csv` sidecar in the same folder as the chain, with
   the columns `file,snapshot_date` (one line per chain file; the CLI only takes a folder, so
   this is how a user states it there). A stated date wins over the file's own, with a note
   when they differ;
2. a snapshot-date column (`snapshot_date`, `quote_date`, `as_of_date`, `date`, ...);
3. a date in the file name or its folders: `NVDA_2025-02-03.csv`,
   `2024_11_11_NVDA_calls.csv`, `2024_11_11/...`, `20250203`;
otherwise the file is refused ("no snapshot date ...").

Errors: a missing root folder is a `ContractError`. A missing subfolder gives an empty batch
with a note. A file that cannot be read at all (empty, binary, no date or close column,
unknown put/call layout) becomes one reject row (line NA) with the reason, plus a note, and
the other files still load. Bad rows are refused by `conform` (or here, for contradictions
it cannot see) with file, 1-based physical line and reason. A last line that has fewer cells
than the header and no line break after it (a file cut off mid-row) is refused too: its
missing cells are unknown, not blank. Rows are filtered to the date window and tickers after
conforming; refused rows whose date is outside the window are not reported (they were not
asked for), refused rows without a date `conform` can read always are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sources.base import ticker_from_stem
from sources.cboe_format import (
    NAN_SPELLINGS,
    csv_cells,
    extra_cells,
    header_line,
    norm,
    parse_cboe_putcall,
    physical_lines,
    split_line,
)
from sources.contract import (
    FUNDAMENTALS,
    OPTION_QUOTES,
    PRICES,
    PUTCALL,
    PUTCALL_SCOPES,
    VALUATION,
    Batch,
    ContractError,
    Dataset,
    conform,
    float32_denoised,
    empty_batch,
    empty_rejects,
    row_json,
)
from sources.contract import given_mask, read_dates, typed_frame  # the contract's own reading

SIDECAR = "snapshot_dates.csv"
PRICE_DECIMALS = 6

_PRICE_ALIASES = {
    "date": "trade_date",
    "datetime": "trade_date",
    "tradedate": "trade_date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "volume": "volume",
    "dividends": "dividend",
    "dividend": "dividend",
    "stocksplits": "split_ratio",
    "splitratio": "split_ratio",
    "split": "split_ratio",
    "splits": "split_ratio",
}
_OPTION_ALIASES = {
    "contractsymbol": "contract_symbol",
    "optionsymbol": "contract_symbol",
    "occsymbol": "contract_symbol",
    "contract": "contract_symbol",
    "lasttradedate": "last_trade_at",
    "lasttradeat": "last_trade_at",
    "lasttradetime": "last_trade_at",
    "strike": "strike",
    "strikeprice": "strike",
    "lastprice": "last_price",
    "last": "last_price",
    "bid": "bid",
    "ask": "ask",
    "volume": "volume",
    "openinterest": "open_interest",
    "impliedvolatility": "implied_volatility",
    "iv": "implied_volatility",
    "expirationdate": "expiration_date",
    "expiration": "expiration_date",
    "expiry": "expiration_date",
    "expirydate": "expiration_date",
    "expdate": "expiration_date",
    "optiontype": "option_type",
    "type": "option_type",
    "putcall": "option_type",
    "callput": "option_type",
    "cp": "option_type",
    "right": "option_type",
    "snapshotdate": "snapshot_date",
    "quotedate": "snapshot_date",
    "asofdate": "snapshot_date",
    "asof": "snapshot_date",
    "datadate": "snapshot_date",
    "date": "snapshot_date",
    "snapshotat": "snapshot_at",
    "fetchedat": "snapshot_at",
    "retrievedat": "snapshot_at",
    "downloadedat": "snapshot_at",
    "ticker": "ticker",
    "underlying": "ticker",
    "underlyingsymbol": "ticker",
}
# yfinance columns outside the contract: ignored without a note, since every chain has them.
_OPTION_KNOWN_EXTRA = {"change", "percentchange", "inthemoney", "contractsize", "currency", "", "index"}
_TIDY_ALIASES = {
    FUNDAMENTALS.name: {
        "symbol": "ticker",
        "fiscaldateending": "period_end",
        "periodenddate": "period_end",
        "reporteddate": "report_date",
        "filingdate": "report_date",
        "releasedate": "report_date",
        "period": "fiscal_period",
        "totalrevenue": "revenue",
        "costofrevenue": "cost_of_revenue",
        "costofgoodsandservicessold": "cost_of_revenue",
        "epsdiluted": "diluted_eps",
        "sharesdiluted": "diluted_shares",
        "weightedaveragedilutedshares": "diluted_shares",
    },
    VALUATION.name: {
        "symbol": "ticker",
        "date": "snapshot_date",
        "asofdate": "snapshot_date",
        "marketcapitalization": "market_cap",
        "pricetosalestrailing12months": "price_to_sales_ttm",
        "pricetosales": "price_to_sales_ttm",
        "trailingpe": "trailing_pe",
        "forwardpe": "forward_pe",
    },
}
_OCC = r"^(?P<root>[A-Z0-9.]+?)(?P<yymmdd>\d{6})(?P<letter>[CP])(?P<strike>\d{8})$"
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?!\d)")
_NAME_WORDS = {"calls", "call", "puts", "put", "options", "option", "chain", "chains", "opts", "raw", "data"}
_TYPE_WORDS = {"call": "call", "calls": "call", "c": "call", "put": "put", "puts": "put", "p": "put"}


class _Refused(Exception):
    """This file is not read at all; the message is the reason."""


class FilesSource:
    """Market data from a folder of CSV files (see the module docstring for the layouts)."""

    name = "files"

    def __init__(self, root: Path | str, snapshot_dates: Mapping[str, dt.date | str] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ContractError(f"files source: folder {self.root} does not exist")
        self.snapshot_dates: dict[str, dt.date] = {}
        for name, value in (snapshot_dates or {}).items():
            day = _as_date(value)
            if day is None:
                raise ContractError(f"snapshot_dates[{name!r}]: {value!r} is not a date")
            self.snapshot_dates[str(name).replace("\\", "/")] = day

    # -- the Source protocol -------------------------------------------------------------

    def prices(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        wanted = _wanted(tickers)
        gather = _Gather(PRICES)
        folder = self._folder("prices", gather)
        if folder is None:
            return gather.batch(start, end, wanted)
        by_ticker: dict[str, list[str]] = {}
        for path in self._csv_files(folder, gather):
            try:
                ticker = ticker_from_stem(_stem(path))
            except ValueError:
                gather.refuse_file(path, "the file name gives no ticker")
                continue
            if wanted is not None and ticker not in wanted:
                continue
            by_ticker.setdefault(ticker, []).append(str(path))
            gather.read(path, lambda p, t=ticker: _price_rows(p, t), ticker=ticker)
        for ticker, paths in by_ticker.items():
            if len(paths) > 1:
                gather.notes.append(
                    f"prices: {ticker} is in {len(paths)} files ({', '.join(paths)}); identical rows "
                    "collapse, differing rows for one date are refused"
                )
        batch = gather.batch(start, end, wanted)
        for c in ("open", "high", "low", "close", "adj_close", "dividend"):
            batch.frame[c] = float32_denoised(batch.frame[c]).round(PRICE_DECIMALS)
        return batch

    def putcall(self, start: dt.date, end: dt.date) -> Batch:
        gather = _Gather(PUTCALL)
        folder = self._folder("putcall", gather)
        if folder is not None:
            for path in self._csv_files(folder, gather):
                hint = path.parent.name.lower() if path.parent.name.lower() in PUTCALL_SCOPES else None
                gather.read(path, lambda p, h=hint: _putcall_rows(p, h))
        return gather.batch(start, end, None)

    def option_quotes(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        wanted = _wanted(tickers)
        gather = _Gather(OPTION_QUOTES)
        folder = self._folder("options", gather)
        if folder is not None:
            stated = self._stated_snapshot_dates(folder, gather)
            for path in self._csv_files(folder, gather, skip_names={SIDECAR}):
                relative = path.relative_to(folder)
                day = (
                    self.snapshot_dates.get(relative.as_posix())
                    or self.snapshot_dates.get(path.name)
                    or stated.get(path)
                )
                gather.read(path, lambda p, d=day, r=relative: _option_rows(p, r, d))
        return gather.batch(start, end, wanted)

    def fundamentals(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return self._tidy(FUNDAMENTALS, "fundamentals", tickers, start, end)

    def valuation_snapshots(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return self._tidy(VALUATION, "valuation", tickers, start, end)

    # -- helpers -------------------------------------------------------------------------

    def _tidy(self, dataset: Dataset, sub: str, tickers, start, end) -> Batch:
        wanted = _wanted(tickers)
        gather = _Gather(dataset)
        folder = self._folder(sub, gather)
        if folder is not None:
            for path in self._csv_files(folder, gather):
                gather.read(path, lambda p: _tidy_rows(p, dataset))
        return gather.batch(start, end, wanted)

    def _folder(self, sub: str, gather: _Gather) -> Path | None:
        if not self.root.is_dir():
            raise ContractError(f"files source: folder {self.root} does not exist")
        folder = self.root / sub
        if not folder.is_dir():
            gather.notes.append(f"files: no {sub}/ folder under {self.root}; nothing to read")
            return None
        return folder

    def _csv_files(self, folder: Path, gather: _Gather, skip_names: set[str] = frozenset()) -> list[Path]:
        found, skipped = [], []
        for here, dirs, files in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "~")))
            for name in sorted(files):
                if name.startswith((".", "~")) or name in skip_names:
                    continue
                path = Path(here) / name
                if name.lower().endswith((".csv", ".csv.gz")):
                    found.append(path)
                else:
                    skipped.append(str(path))
        if skipped:
            gather.notes.append(
                f"{gather.dataset.name}: skipped {len(skipped)} non-CSV file(s): {', '.join(skipped)}"
            )
        if not found:
            gather.notes.append(f"{gather.dataset.name}: no CSV files under {folder}")
        return found

    def _stated_snapshot_dates(self, folder: Path, gather: _Gather) -> dict[Path, dt.date]:
        """Entries of every `snapshot_dates.csv` sidecar under options/, keyed by chain path."""
        stated: dict[Path, dt.date] = {}
        for here, dirs, files in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "~")))
            if SIDECAR not in files:
                continue
            sidecar = Path(here) / SIDECAR
            try:
                lines = physical_lines(_read_text(sidecar))
                names = [norm(h) for h in split_line(lines[0])] if lines else []
                file_at = next((i for i, n in enumerate(names) if n in {"file", "filename", "name"}), None)
                date_at = next((i for i, n in enumerate(names) if n in {"snapshotdate", "date"}), None)
                if file_at is None or date_at is None:
                    raise _Refused(f"a {SIDECAR} needs the columns file,snapshot_date")
            except _Refused as exc:
                gather.refuse_file(sidecar, str(exc))
                continue
            cells = csv_cells(lines, 1)
            for name, value, line in zip(cells[file_at], cells[date_at], cells["_line"]):
                day = _as_date(value)
                if day is None or not name:
                    reason = f"cannot read a file name and snapshot date from {lines[line - 1]!r}"
                    gather.refuse_file(sidecar, reason, line=line)
                else:
                    stated[Path(here) / name] = day
        return stated


class _Gather:
    """Loose rows and refusals of one dataset across files, turned into one Batch."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.frames: list[pd.DataFrame] = []
        self.rejects: list[pd.DataFrame] = []
        self.notes: list[str] = []

    def refuse_file(self, path: Path, reason: str, ticker: str | None = None, line: int | None = None) -> None:
        self.rejects.append(
            pd.DataFrame(
                {
                    "dataset": [self.dataset.name],
                    "source_ref": [str(path)],
                    "line": pd.array([line], dtype="Int64"),
                    "ticker": [ticker],
                    "key": [None],
                    "reason": [reason],
                    "row_json": [None],
                }
            )
        )
        self.notes.append(f"{path}{f':{line}' if line else ''}: not read: {reason}")

    def read(
        self, path: Path, rows: Callable[[Path], tuple[pd.DataFrame, list[str]]], ticker: str | None = None
    ) -> None:
        try:
            loose, notes = rows(path)
        except (_Refused, ContractError) as exc:
            reason = str(exc)
            prefix = f"{path}: "
            self.refuse_file(path, reason[len(prefix):] if reason.startswith(prefix) else reason, ticker)
            return
        except (OSError, UnicodeError, ValueError, pd.errors.ParserError) as exc:
            self.refuse_file(path, f"cannot be read as CSV ({type(exc).__name__}: {exc})", ticker)
            return
        self.notes.extend(notes)
        if len(loose):
            self.frames.append(loose)
        else:
            self.notes.append(f"{path}: no data rows")

    def batch(self, start: dt.date, end: dt.date, wanted: set[str] | None) -> Batch:
        dataset = self.dataset
        if self.frames:
            loose = pd.concat(self.frames, ignore_index=True)
            problem = loose.pop("_problem") if "_problem" in loose else pd.Series("", index=loose.index)
            bad = problem.fillna("") != ""
            if bad.any():
                self.rejects.append(_refuse_rows(dataset, loose[bad], problem[bad]))
            batch = conform(dataset, self._merge_across_files(loose[~bad]))
        else:
            batch = empty_batch(dataset)
        frame = batch.frame
        day = frame[dataset.date_column]
        keep = (day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))
        if wanted is not None and "ticker" in frame:
            keep &= frame["ticker"].isin(wanted)
        rejects = [r for r in (*self.rejects, batch.rejects) if len(r)]
        rejects = pd.concat(rejects, ignore_index=True) if rejects else empty_rejects()
        if len(rejects):
            rejects = rejects[_rejects_wanted(rejects, dataset.date_column, start, end, wanted)]
            rejects = rejects.sort_values(["source_ref", "line"], kind="stable", na_position="first")
        return Batch(
            dataset=dataset,
            frame=frame[keep].reset_index(drop=True),
            rejects=rejects.reset_index(drop=True),
            notes=self.notes + batch.notes,
            lineage=batch.lineage_frame()[keep.to_numpy()].reset_index(drop=True),
        )

    def _merge_across_files(self, loose: pd.DataFrame) -> pd.DataFrame:
        """One row for a key that several files give with agreeing values.

        Files overlap (an official CBOE archive and a collector's table of the same ratios).
        Where every value present in both is equal, the rows are one fact: keep the first
        file's row, filled in with values only the others have (e.g. volumes), and say so.
        Rows that disagree are left for `conform` to refuse, each with its file and line.
        """
        dataset = self.dataset
        if loose.empty or loose["_source_ref"].nunique() < 2:
            return loose
        key = list(dataset.key)
        key_only = dataclasses.replace(dataset, columns={k: dataset.columns[k] for k in key})
        keys = typed_frame(loose[key], key_only).dropna()
        files = loose.loc[keys.index, "_source_ref"].groupby([keys[c] for c in key]).transform("nunique")
        candidates = files.index[files > 1]
        if not len(candidates):
            return loose
        values = loose.loc[candidates, list(dataset.columns)]
        typed = typed_frame(values, dataset)
        clean = pd.Series(True, index=values.index)
        for c, kind in dataset.columns.items():
            clean &= ~(given_mask(values[c], kind) & typed[c].isna())
        for c in dataset.required:
            clean &= typed[c].notna()
        typed = typed[clean]
        files = loose.loc[typed.index, "_source_ref"].groupby([typed[c] for c in key]).transform("nunique")
        shared = files.index[files > 1]
        if not len(shared):
            return loose
        sub = typed.loc[shared]
        group = sub.groupby(key, sort=False).ngroup()
        agree = pd.Series(True, index=np.unique(group.to_numpy()))
        for c in dataset.value_columns:
            agree &= sub[c].groupby(group).nunique(dropna=True) <= 1
        rows = group[group.map(agree)]
        if rows.empty:
            return loose
        primary = rows.index.to_series().groupby(rows).transform("min")
        loose = loose.copy()
        for c in dataset.value_columns:
            has = typed.loc[rows.index, c].notna()
            donor = rows.index.to_series()[has].groupby(rows[has]).min()
            target = primary.groupby(rows).first().reindex(donor.index)
            need = typed.loc[target.to_numpy(), c].isna().to_numpy()
            if need.any():
                loose[c] = loose[c].astype(object)
                loose.loc[target.to_numpy()[need], c] = loose.loc[donor.to_numpy()[need], c].to_numpy()
        dropped = rows.index[rows.index != primary.to_numpy()]
        by_file = loose.loc[dropped, "_source_ref"].value_counts()
        kept_from = sorted(set(loose.loc[primary.unique(), "_source_ref"]))
        self.notes.append(
            f"{dataset.name}: {len(dropped)} row(s) also given, with agreeing values, by an earlier file "
            f"({', '.join(kept_from)}) were merged into it: "
            + ", ".join(f"{n} from {f}" for f, n in by_file.items())
        )
        return loose.drop(index=dropped)


def _rejects_wanted(rejects: pd.DataFrame, date_column: str, start, end, wanted: set[str] | None) -> pd.Series:
    """Refused rows asked for: date in the window or unreadable, ticker wanted or unknown.

    The date is read as `conform` reads it, so a value the contract could not read (a volume
    of 1000 in the date column) is unreadable here too and reported, not taken for the year
    1000 and left out as outside the window."""
    days = rejects["key"].map(lambda k: json.loads(k).get(date_column) if isinstance(k, str) else None)
    parsed = read_dates(days.astype(object))
    keep = parsed.isna() | ((parsed >= pd.Timestamp(start)) & (parsed <= pd.Timestamp(end)))
    if wanted is not None:
        tickers = rejects["ticker"].map(lambda t: _yahoo_one(t) if isinstance(t, str) and t.strip() else None)
        keep &= tickers.isna() | tickers.isin(wanted)
    return keep.fillna(True).astype(bool).to_numpy()


def _refuse_rows(dataset: Dataset, rows: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    """Rejects for rows refused here (contradictions conform cannot see), in conform's shape."""
    values = rows[[c for c in dataset.columns if c in rows]]
    return pd.DataFrame(
        {
            "dataset": dataset.name,
            "source_ref": rows["_source_ref"].astype(object).to_numpy(),
            "line": pd.array(rows["_line"].to_numpy(), dtype="Int64"),
            "ticker": values["ticker"].astype(object).to_numpy() if "ticker" in values else None,
            "key": [row_json({k: r.get(k) for k in dataset.key}) for r in values.to_dict("records")],
            "reason": reasons.to_numpy(),
            "row_json": [row_json(r) for r in values.to_dict("records")],
        }
    )


# -- reading files ---------------------------------------------------------------------------


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise _Refused(f"not a readable gzip file ({exc})") from None
    if not data.strip():
        raise _Refused("file is empty")
    if b"\x00" in data[:8192]:
        raise _Refused("not a text file (binary content); expected CSV")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise _Refused("not a text file (neither UTF-8 nor Windows-1252); expected CSV") from None
    return text


def _lines(path: Path) -> tuple[list[str], bool]:
    """The file's lines (trailing blank ones dropped), and whether it ends without a line break."""
    lines, open_end = _text_lines(_read_text(path))
    if not lines:
        raise _Refused("file is empty")
    return lines, open_end


def _text_lines(text: str) -> tuple[list[str], bool]:
    lines = physical_lines(text)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines, not text.rstrip(" \t").endswith(("\n", "\r"))


def _cut_off(lines: list[str], open_end: bool, width: int) -> str:
    """Why the last line cannot be read, when it looks cut off: the file ends inside it (no
    line break after it) and it has fewer cells than the header's `width`, as a download or a
    copy stopped mid-row leaves it. Its missing cells are unknown, not blank. "" otherwise."""
    if not open_end or not lines:
        return ""
    n = len(split_line(lines[-1]))
    if n >= width:
        return ""
    return f"the last line has {n} of the header's {width} cells and no line break after it: the file looks cut off"


def _listing(names: Sequence[str], limit: int = 15) -> str:
    shown = ", ".join(str(n) for n in names[:limit])
    more = f", ... ({len(names)} columns)" if len(names) > limit else ""
    return f"[{shown}{more}]"


def _columns(names: Sequence[str], aliases: Mapping[str, str], keep: Sequence[int] | None = None):
    """Map header cells to contract columns: ({column: index}, [ignored names], [duplicates])."""
    found: dict[str, int] = {}
    ignored, duplicate = [], []
    for i, name in enumerate(names):
        if keep is not None and i not in keep:
            continue
        target = aliases.get(norm(name))
        if target is None:
            ignored.append(name)
        elif target in found:
            duplicate.append(name)
        else:
            found[target] = i
    return found, ignored, duplicate


def _blank(series: pd.Series) -> pd.Series:
    low = series.astype("str").str.strip().str.lower()
    return (low == "") | low.isin(NAN_SPELLINGS)


def _date_text(series: pd.Series) -> pd.Series:
    """The calendar day as written: drop a time and zone (`2025-01-27 00:00:00-05:00`)."""
    return series.str.replace(r"[T ]+\d{1,2}:\d{2}.*$", "", regex=True).str.strip()


def _date_text_one(value: str) -> str:
    return re.sub(r"[T ]+\d{1,2}:\d{2}.*$", "", value).strip()


def _yahoo(series: pd.Series) -> pd.Series:
    """Tickers in Yahoo's spelling (see `ticker_from_stem`), vectorised."""
    s = series.astype("str").str.strip().str.upper()
    return s.str[:1] + s.str[1:].str.replace(r"[_.]", "-", regex=True)


def _yahoo_one(value: str) -> str:
    return ticker_from_stem(value)


def _wanted(tickers: Sequence[str] | None) -> set[str] | None:
    if tickers is None:
        return None
    if isinstance(tickers, str):
        tickers = [tickers]
    return {ticker_from_stem(t) for t in tickers if str(t).strip()}


def _as_date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        parsed = pd.to_datetime(_date_text_one(str(value)), format="mixed")
    except (ValueError, TypeError):
        return None
    return None if pd.isna(parsed) else parsed.date()


def _width_problem(cells: pd.DataFrame, width: int, lines: list[str], open_end: bool) -> pd.Series:
    extra = extra_cells(cells, width)
    problem = pd.Series(
        np.where(extra > 0, f"the line has more cells than the header's {width}", ""), index=cells.index
    )
    cut = _cut_off(lines, open_end, width)
    if cut:
        problem[cells["_line"] == len(lines)] = cut
    return problem


def _column(cells: pd.DataFrame, index: int | None) -> pd.Series | None:
    if index is None:
        return None
    if index not in cells:
        return pd.Series("", index=cells.index, dtype="str")
    return cells[index]


def _price_rows(path: Path, ticker: str) -> tuple[pd.DataFrame, list[str]]:
    lines, open_end = _lines(path)
    notes: list[str] = []
    first = split_line(lines[0])
    second = split_line(lines[1]) if len(lines) > 1 else []
    keep = None
    heads = {norm(first[0]) if first else "", norm(second[0]) if second else ""}
    if heads == {"price", "ticker"}:
        # yf.download(...).to_csv(): field names, tickers, then a `Date,,,` line.
        names_row, ticker_row = (first, second) if norm(first[0]) == "price" else (second, first)
        start = 2
        if len(lines) > 2:
            third = split_line(lines[2])
            if third and norm(third[0]) in {"date", "datetime"} and not any(third[1:]):
                start = 3
        names = ["Date", *names_row[1:]]
        in_file = [ticker_from_stem(t) if t else "" for t in ticker_row[1:]]
        distinct = sorted(set(in_file) - {""})
        if len(distinct) > 1:
            keep = [0] + [i + 1 for i, t in enumerate(in_file) if t == ticker]
            if len(keep) == 1:
                raise _Refused(f"holds tickers {', '.join(distinct)}, none of them {ticker} (the file name's)")
            notes.append(f"{path}: holds tickers {', '.join(distinct)}; read the {ticker} columns")
        elif distinct and distinct[0] != ticker:
            notes.append(
                f"{path}: header names ticker {distinct[0]}, the file name says {ticker}; used {ticker}"
            )
    else:
        names, start = first, 1
    found, ignored, duplicate = _columns(names, _PRICE_ALIASES, keep)
    if "trade_date" not in found and names and not names[0].strip():
        found["trade_date"] = 0  # an unnamed first column (a DataFrame index) holds the dates
        ignored = [n for n in ignored if n.strip()]
    if "trade_date" not in found:
        raise _Refused(f"no date column among {_listing(names)}")
    if "close" not in found:
        raise _Refused(f"no close column among {_listing(names)}")
    ignored = [n for n in ignored if n.strip()]
    if ignored or duplicate:
        notes.append(
            f"{path}: ignored column(s) {', '.join(ignored + [f'{d} (repeated)' for d in duplicate])}"
        )
    cells = csv_cells(lines, start)
    col = {c: _column(cells, i) for c, i in found.items()}
    close = col["close"]
    dividend = col.get("dividend")
    dividend = "0" if dividend is None else dividend.mask(_blank(dividend), "0")
    split = col.get("split_ratio")
    if split is None:
        split = "1.0"
    else:
        value = pd.to_numeric(split.str.replace(",", "", regex=False), errors="coerce")
        split = split.mask(_blank(split) | (value <= 0), "1.0")
    loose = pd.DataFrame(
        {
            "ticker": ticker,
            "trade_date": _date_text(col["trade_date"]),
            "open": col.get("open"),
            "high": col.get("high"),
            "low": col.get("low"),
            "close": close,
            "adj_close": col.get("adj_close", close),
            "volume": col.get("volume"),
            "dividend": dividend,
            "split_ratio": split,
            "_source_ref": str(path),
            "_line": cells["_line"],
            "_problem": _width_problem(cells, len(names), lines, open_end),
        },
        index=cells.index,
    )
    return loose, notes


def _putcall_rows(path: Path, hint: str | None) -> tuple[pd.DataFrame, list[str]]:
    text = _read_text(path)
    frame = parse_cboe_putcall(text, str(path), hint)
    notes = list(frame.attrs.get("notes", []))
    lines, open_end = _text_lines(text)
    at = header_line(lines)  # parse_cboe_putcall found it, or refused the file
    cut = _cut_off(lines, open_end, len(split_line(lines[at]))) if at is not None else ""
    if cut:
        frame = frame.assign(_problem=np.where(frame["_line"] == len(lines), cut, ""))
    return frame, notes


def _date_in_name(relative: Path) -> dt.date | None:
    """A YYYY-MM-DD / YYYY_MM_DD / YYYYMMDD date in the file name, else in its folders."""
    for part in [_stem(relative), *reversed(relative.parent.parts)]:
        for m in _NAME_DATE.finditer(part):
            try:
                day = dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
            except ValueError:
                continue
            if 1990 <= day.year <= 2100:
                return day
    return None


def _name_words(relative: Path) -> list[str]:
    stem = _NAME_DATE.sub(" ", _stem(relative))
    return [w for w in re.split(r"[\s_\-.]+", stem) if w]


def _ticker_in_name(relative: Path) -> str | None:
    words = [w for w in _name_words(relative) if w.lower() not in _NAME_WORDS and not w.isdigit()]
    return ticker_from_stem("-".join(words)) if words else None


def _type_in_name(relative: Path) -> str | None:
    words = [w.lower() for w in _name_words(relative)]
    kinds = {_TYPE_WORDS[w] for w in words if w in {"calls", "call", "puts", "put"}}
    return kinds.pop() if len(kinds) == 1 else None


def _option_rows(path: Path, relative: Path, stated: dt.date | None) -> tuple[pd.DataFrame, list[str]]:
    lines, open_end = _lines(path)
    names = split_line(lines[0])
    notes: list[str] = []
    found, ignored, duplicate = _columns(names, _OPTION_ALIASES)
    if "contract_symbol" not in found:
        raise _Refused(f"no contractSymbol column among {_listing(names)}")
    noted = [n for n in ignored if norm(n) not in _OPTION_KNOWN_EXTRA and not norm(n).startswith("unnamed")]
    if noted or duplicate:
        notes.append(f"{path}: ignored column(s) {', '.join(noted + [f'{d} (repeated)' for d in duplicate])}")
    cells = csv_cells(lines, 1)
    col = {c: _column(cells, i) for c, i in found.items()}
    problem = _width_problem(cells, len(names), lines, open_end)

    def complain(mask: pd.Series, text: pd.Series | str) -> None:
        nonlocal problem
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        text = text if isinstance(text, pd.Series) else pd.Series(text, index=problem.index)
        joined = problem.where(problem == "", problem + "; ") + text
        problem = problem.mask(mask, joined)

    symbol = col["contract_symbol"].str.replace(r"\s+", "", regex=True).str.upper()
    occ = symbol.str.extract(_OCC)
    decoded = occ["yymmdd"].notna()

    # Snapshot date: stated > column > file name.
    named = _date_in_name(relative)
    if stated is not None:
        snapshot = pd.Series(stated.isoformat(), index=cells.index)
        own = named
        if "snapshot_date" in col:
            days = pd.to_datetime(_date_text(col["snapshot_date"]), errors="coerce", format="mixed").dropna()
            own = days.iloc[0].date() if len(days) and days.nunique() == 1 else own
        if own is not None and own != stated:
            notes.append(f"{path}: stated snapshot date {stated} used; the file itself says {own}")
    elif "snapshot_date" in col:
        snapshot = _date_text(col["snapshot_date"])
    elif named is not None:
        snapshot = pd.Series(named.isoformat(), index=cells.index)
    else:
        raise _Refused(
            "no snapshot date: no snapshot-date column, no YYYY-MM-DD or YYYY_MM_DD date in the file "
            f"name, and no entry for {relative.as_posix()} in snapshot_dates or a {SIDECAR} sidecar"
        )

    ticker = occ["root"]
    if ticker.isna().any():
        from_name = _ticker_in_name(relative)
        ticker = ticker.fillna(from_name) if from_name else ticker
    if "ticker" in col:
        given = col["ticker"].where(~_blank(col["ticker"]))
        ticker = given.fillna(ticker)
    ticker = _yahoo(ticker).where(ticker.notna())

    symbol_expiry = ("20" + occ["yymmdd"].str[:2] + "-" + occ["yymmdd"].str[2:4] + "-" + occ["yymmdd"].str[4:])
    if "expiration_date" in col:
        written = _date_text(col["expiration_date"])
        given = ~_blank(written)
        expiry = written.where(given, symbol_expiry)
        a = pd.to_datetime(written.where(given), errors="coerce", format="mixed")
        b = pd.to_datetime(symbol_expiry, errors="coerce", format="%Y-%m-%d")
        complain(
            a.notna() & b.notna() & (a != b),
            "expiration_date " + written + " disagrees with the contract symbol ("
            + symbol_expiry.fillna("") + ")",
        )
    else:
        expiry = symbol_expiry

    symbol_type = occ["letter"].map({"C": "call", "P": "put"})
    if "option_type" in col:
        raw = col["option_type"]
        given = ~_blank(raw)
        typed = raw.str.strip().str.lower().map(_TYPE_WORDS)
        complain(given & typed.isna(), "option_type " + raw + " is neither call nor put")
        complain(
            typed.notna() & symbol_type.notna() & (typed != symbol_type),
            "option_type " + raw + " disagrees with the contract symbol (" + symbol_type.fillna("") + ")",
        )
        option_type = typed.fillna(symbol_type)
    else:
        option_type = symbol_type
    name_type = _type_in_name(relative)
    if name_type is not None:
        option_type = option_type.fillna(name_type)

    symbol_strike = pd.to_numeric(occ["strike"], errors="coerce") / 1000
    if "strike" in col:
        written = col["strike"]
        given = ~_blank(written)
        number = pd.to_numeric(written.str.replace(",", "", regex=False), errors="coerce")
        complain(
            number.notna() & symbol_strike.notna() & ((number - symbol_strike).abs() > 5e-4),
            "strike " + written + " disagrees with the contract symbol (" + symbol_strike.astype("str") + ")",
        )
        strike = written.where(given, symbol_strike.astype("str").where(symbol_strike.notna()))
    else:
        strike = symbol_strike
    if not decoded.all():
        n = int((~decoded).sum())
        notes.append(f"{path}: {n} contract symbol(s) are not OCC symbols; their fields come from columns")

    loose = pd.DataFrame(
        {
            "snapshot_date": snapshot,
            "ticker": ticker,
            "contract_symbol": col["contract_symbol"].str.strip(),
            "option_type": option_type,
            "expiration_date": expiry,
            "strike": strike,
            "last_price": col.get("last_price"),
            "bid": col.get("bid"),
            "ask": col.get("ask"),
            "volume": col.get("volume"),
            "open_interest": col.get("open_interest"),
            "implied_volatility": col.get("implied_volatility"),
            "last_trade_at": col.get("last_trade_at"),
            "snapshot_at": col.get("snapshot_at"),
            "_source_ref": str(path),
            "_line": cells["_line"],
            "_problem": problem,
        },
        index=cells.index,
    )
    return loose, notes


def _tidy_rows(path: Path, dataset: Dataset) -> tuple[pd.DataFrame, list[str]]:
    lines, open_end = _lines(path)
    names = split_line(lines[0])
    aliases = {norm(c): c for c in dataset.columns} | _TIDY_ALIASES.get(dataset.name, {})
    found, ignored, duplicate = _columns(names, aliases)
    notes: list[str] = []
    cells = csv_cells(lines, 1)
    col = {c: _column(cells, i) for c, i in found.items()}
    if "ticker" not in col:
        words = [w for w in re.split(r"[\s_\-.]+", _stem(path)) if w]
        if not words:
            raise _Refused(f"no ticker column among {_listing(names)} and no ticker in the file name")
        col["ticker"] = pd.Series(words[0], index=cells.index)
        notes.append(f"{path}: no ticker column; ticker {ticker_from_stem(words[0])} taken from the file name")
    if dataset is VALUATION and "snapshot_date" not in col:
        named = _date_in_name(Path(path.name))
        if named is not None:
            col["snapshot_date"] = pd.Series(named.isoformat(), index=cells.index)
            notes.append(f"{path}: no snapshot_date column; {named} taken from the file name")
    missing = [c for c in dataset.required if c not in col]
    if missing:
        raise _Refused(f"no {', '.join(missing)} column(s) among {_listing(names)}")
    ignored = [n for n in ignored if n.strip()]
    if ignored or duplicate:
        notes.append(
            f"{path}: ignored column(s) not in {dataset.name}: "
            f"{', '.join(ignored + [f'{d} (repeated)' for d in duplicate])}"
        )
    data = {}
    for c, kind in dataset.columns.items():
        value = col.get(c)
        if value is not None and kind == "DATE":
            value = _date_text(value)
        data[c] = value
    loose = pd.DataFrame(data, index=cells.index)
    loose["ticker"] = _yahoo(loose["ticker"]).where(~_blank(loose["ticker"]), "")
    loose["_source_ref"] = str(path)
    loose["_line"] = cells["_line"]
    loose["_problem"] = _width_problem(cells, len(names), lines, open_end)
    return loose, notes
