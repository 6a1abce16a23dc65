"""The raw contract: what every source adapter returns, dataset by dataset.

A source hands back a `Batch`: a DataFrame with exactly the contract's columns and types,
plus the rows it could not accept (`rejects`), each with where it came from (file and line,
or ticker), the reason and the original values. `conform()` is the one place that turns an
adapter's loosely typed frame into that shape, so every source rejects bad rows the same way
and no row disappears without a trace.

Adapters may add two private columns that `conform()` consumes: `_source_ref` (a file path or
a ticker) and `_line` (the 1-based line number in that file).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

# Column types, as DuckDB names them. `conform()` coerces to the pandas equivalents.
STRING, DATE, DOUBLE, BIGINT, TIMESTAMPTZ = "VARCHAR", "DATE", "DOUBLE", "BIGINT", "TIMESTAMPTZ"

LINEAGE_COLUMNS = ("source", "run_id", "loaded_at")
REJECT_COLUMNS = ("dataset", "source_ref", "line", "ticker", "key", "reason", "row_json")


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str                      # raw table name
    columns: Mapping[str, str]     # column -> DuckDB type, in table order (lineage excluded)
    key: tuple[str, ...]
    required: tuple[str, ...]      # must be present and not null on every row
    date_column: str               # the column a load window is expressed in
    snapshot_only: bool = False    # providers serve it only "as of now"
    # For datasets that keep every publication of a figure (fundamentals: one row per report),
    # what identifies the figure; `date_column` then dates each publication.
    published_as: tuple[str, ...] = ()

    @property
    def value_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.key)


PRICES = Dataset(
    name="prices_daily",
    columns={
        "ticker": STRING,
        "trade_date": DATE,
        "open": DOUBLE,
        "high": DOUBLE,
        "low": DOUBLE,
        "close": DOUBLE,
        "adj_close": DOUBLE,
        "volume": BIGINT,
        "dividend": DOUBLE,
        "split_ratio": DOUBLE,
    },
    key=("ticker", "trade_date"),
    required=("ticker", "trade_date", "close", "adj_close", "dividend", "split_ratio"),
    date_column="trade_date",
)

OPTION_QUOTES = Dataset(
    name="option_quotes",
    columns={
        "snapshot_date": DATE,
        "ticker": STRING,
        "contract_symbol": STRING,
        "option_type": STRING,
        "expiration_date": DATE,
        "strike": DOUBLE,
        "last_price": DOUBLE,
        "bid": DOUBLE,
        "ask": DOUBLE,
        "volume": BIGINT,
        "open_interest": BIGINT,
        "implied_volatility": DOUBLE,
        "last_trade_at": TIMESTAMPTZ,
        "snapshot_at": TIMESTAMPTZ,
    },
    key=("snapshot_date", "contract_symbol"),
    required=("snapshot_date", "ticker", "contract_symbol", "option_type", "expiration_date", "strike"),
    date_column="snapshot_date",
    snapshot_only=True,
)

PUTCALL = Dataset(
    name="putcall_daily",
    columns={
        "trade_date": DATE,
        "scope": STRING,
        "call_volume": BIGINT,
        "put_volume": BIGINT,
        "ratio": DOUBLE,
    },
    key=("trade_date", "scope"),
    required=("trade_date", "scope", "ratio"),
    date_column="trade_date",
)

FUNDAMENTALS = Dataset(
    name="fundamentals_quarterly",
    columns={
        "ticker": STRING,
        "period_end": DATE,
        "report_date": DATE,
        "fiscal_period": STRING,
        "revenue": DOUBLE,
        "cost_of_revenue": DOUBLE,
        "gross_profit": DOUBLE,
        "operating_income": DOUBLE,
        "net_income": DOUBLE,
        "diluted_eps": DOUBLE,
        "diluted_shares": DOUBLE,
    },
    key=("ticker", "period_end", "report_date"),
    required=("ticker", "period_end", "report_date"),
    date_column="report_date",
    published_as=("ticker", "period_end"),
)

VALUATION = Dataset(
    name="valuation_snapshots",
    columns={
        "snapshot_date": DATE,
        "ticker": STRING,
        "market_cap": DOUBLE,
        "shares_outstanding": DOUBLE,
        "forward_eps": DOUBLE,
        "trailing_eps": DOUBLE,
        "forward_pe": DOUBLE,
        "trailing_pe": DOUBLE,
        "price_to_sales_ttm": DOUBLE,
        "sector": STRING,
        "industry": STRING,
    },
    key=("snapshot_date", "ticker"),
    required=("snapshot_date", "ticker"),
    date_column="snapshot_date",
    snapshot_only=True,
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (PRICES, OPTION_QUOTES, PUTCALL, FUNDAMENTALS, VALUATION)}
PUTCALL_SCOPES = ("total", "equity", "index", "vix", "spx", "etp")
OPTION_TYPES = ("call", "put")


class ContractError(ValueError):
    """A whole input cannot be read: a missing column, an unreadable file, an unknown layout."""


@dataclasses.dataclass
class Batch:
    """One dataset's rows from one source for one request, and the rows it refused."""

    dataset: Dataset
    frame: pd.DataFrame
    rejects: pd.DataFrame = dataclasses.field(default_factory=lambda: empty_rejects())
    notes: list[str] = dataclasses.field(default_factory=list)
    # One row per ticker (or market-wide request) a network source tried: see `outcome_frame`.
    outcomes: pd.DataFrame = dataclasses.field(default_factory=lambda: empty_outcomes())
    # Where each row of `frame` came from (source_ref: file or ticker, line), row for row; None
    # when the source did not say. Checks that refuse a landed row quote it.
    lineage: pd.DataFrame | None = None

    def lineage_frame(self) -> pd.DataFrame:
        """`lineage`, or one of NULLs, aligned with `frame`."""
        if self.lineage is not None and len(self.lineage) == len(self.frame):
            return self.lineage.reset_index(drop=True)
        return pd.DataFrame(
            {"source_ref": pd.Series([None] * len(self.frame), dtype=object), "line": pd.array([pd.NA] * len(self.frame), dtype="Int64")}
        )

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def failed(self) -> pd.DataFrame:
        return self.outcomes[self.outcomes["status"] == FAILED]

    def concat(self, other: "Batch") -> "Batch":
        if other.dataset.name != self.dataset.name:
            raise ValueError("cannot combine batches of different datasets")
        return Batch(
            dataset=self.dataset,
            frame=pd.concat([self.frame, other.frame], ignore_index=True) if len(other.frame) else self.frame,
            rejects=pd.concat([self.rejects, other.rejects], ignore_index=True)
            if len(other.rejects)
            else self.rejects,
            notes=self.notes + other.notes,
            outcomes=pd.concat([self.outcomes, other.outcomes], ignore_index=True)
            if len(other.outcomes)
            else self.outcomes,
            lineage=pd.concat([self.lineage_frame(), other.lineage_frame()], ignore_index=True)
            if self.lineage is not None or other.lineage is not None
            else None,
        )


_EMPTY_DTYPES = {STRING: "str", DATE: "datetime64[ns]", DOUBLE: "float64", BIGINT: "Int64", TIMESTAMPTZ: "datetime64[ns, UTC]"}


def empty_frame(dataset: Dataset) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=_EMPTY_DTYPES[t]) for c, t in dataset.columns.items()})


OK, EMPTY, FAILED = "ok", "empty", "failed"
OUTCOME_COLUMNS = ("dataset", "ticker", "status", "rows", "attempts", "reason", "retryable")


def outcome_frame(records: Iterable[Mapping]) -> pd.DataFrame:
    """Per-ticker fetch outcomes: status ok (rows came), empty (the provider had none for the
    window) or failed (with the reason: rate limited after N attempts, unknown ticker, ...).

    `retryable` says of a failure whether a later try may fetch it; a failure that does not say
    is taken to be (only a provider can tell that it does not know a ticker). It is NULL for ok
    and empty outcomes."""
    frame = pd.DataFrame(list(records), columns=list(OUTCOME_COLUMNS))
    bad = set(frame["status"]) - {OK, EMPTY, FAILED}
    if bad:
        raise ValueError(f"unknown outcome status(es): {', '.join(sorted(map(str, bad)))}")
    failed = frame["status"] == FAILED
    stated = frame["retryable"].astype("boolean")
    frame["retryable"] = stated.where(~failed | stated.notna(), True).where(failed, pd.NA)
    return frame.astype({"dataset": object, "ticker": object, "status": object, "rows": "Int64", "attempts": "Int64", "reason": object})


def empty_outcomes() -> pd.DataFrame:
    return outcome_frame([])


def empty_rejects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": pd.Series([], dtype=object),
            "source_ref": pd.Series([], dtype=object),
            "line": pd.Series([], dtype="Int64"),
            "ticker": pd.Series([], dtype=object),
            "key": pd.Series([], dtype=object),
            "reason": pd.Series([], dtype=object),
            "row_json": pd.Series([], dtype=object),
        }
    )


def empty_batch(dataset: Dataset, notes: Iterable[str] = ()) -> Batch:
    return Batch(dataset=dataset, frame=empty_frame(dataset), notes=list(notes))


def _json_value(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        if v.tzinfo is None and v.hour == v.minute == v.second == v.microsecond == 0:
            return v.date().isoformat()
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if v is pd.NaT or (not isinstance(v, (str, bytes)) and pd.isna(v)):
        return None
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def row_json(row: Mapping) -> str:
    return json.dumps({str(k): _json_value(v) for k, v in row.items()}, sort_keys=True)


def _as_text(series: pd.Series) -> pd.Series:
    # pandas calls an object column a "string dtype" even when it holds dates: convert those too.
    return series if isinstance(series.dtype, pd.StringDtype) else series.astype("string")


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def _clean_number_text(series: pd.Series) -> pd.Series:
    if not _is_text(series):
        return series
    return series.astype("string").str.replace(",", "", regex=False).str.strip()


def _coerce(series: pd.Series, kind: str) -> pd.Series:
    """Coerce a column; unparseable values become NA (the caller compares to find them)."""
    if kind == STRING:
        text = _as_text(series).str.strip()
        return text.where(text != "")
    if kind == DATE:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            parsed = series.dt.tz_localize(None)
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            parsed = series
        else:
            parsed = _parse_dates_as_written(series)
        return _nanoseconds(parsed.dt.normalize())
    if kind == TIMESTAMPTZ:
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        if _is_text(series):  # the date part read as DATE reads it
            text = _as_text(series).str.strip()
            iso = text.str.match(r"^\d{4}-\d{2}-\d{2}").fillna(False).astype(bool)
            parsed = parsed.where(iso | _states_a_day(text))
        return _nanoseconds(parsed).astype("datetime64[ns, UTC]")
    if kind == DOUBLE:
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            return series.astype("float64")
        return pd.to_numeric(_clean_number_text(series), errors="coerce").astype("float64")
    if kind == BIGINT:
        num = pd.to_numeric(_clean_number_text(series), errors="coerce").astype("float64")
        # A volume of 1234.0 is fine; 1234.5 is not a count, and neither is inf or a number
        # BIGINT cannot hold (`1e400` in a volume cell).
        num = num.mask(num.notna() & ((num != num.round()) | ~np.isfinite(num) | (num.abs() >= 2.0**63)))
        return num.round().astype("Int64")
    raise ValueError(f"unknown column type {kind}")


def _parse_dates_as_written(series: pd.Series) -> pd.Series:
    """Calendar dates as written: `2025-01-27 00:00:00-05:00` is the 27th, whatever its zone."""
    if series.dtype == object:  # Python dates and datetimes as well as text
        series = series.map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
    text = series.astype("string").str.strip()
    iso = text.str.match(r"^\d{4}-\d{2}-\d{2}").fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    if iso.any():
        out[iso] = _nanoseconds(pd.to_datetime(text[iso].str[:10], errors="coerce", format="%Y-%m-%d"))
    rest = ~iso & _states_a_day(text)
    if rest.any():
        try:
            other = pd.to_datetime(text[rest], errors="coerce", format="mixed")
        except ValueError:  # mixed time zones
            other = pd.to_datetime(text[rest], errors="coerce", format="mixed", utc=True)
        if isinstance(other.dtype, pd.DatetimeTZDtype):
            other = other.dt.tz_localize(None)
        out[rest] = _nanoseconds(other)
    return out


_TIME_OF_DAY = r"[T ]+\d{1,2}:\d{2}.*$"
_DAY_PARTS = r"^[A-Za-z0-9]+(?:[/.\-\s,]+[A-Za-z0-9]+){2,3}$"
_FOUR_DIGIT_YEAR = r"(?<!\d)\d{4}(?!\d)"


def _states_a_day(text: pd.Series) -> pd.Series:
    """Non-ISO text that names a day, a month and a four-digit year (`1/27/2025`,
    `27-Jan-2025`, `Jan 27, 2025`, `20250127`), a time of day after it allowed. dateutil reads
    far more, filling what is missing from today's date: `1.2.3` is 2003-01-02, `2025` is
    1 January and `12:30` is today; such a cell is unreadable instead, and refused."""
    day = text.str.replace(_TIME_OF_DAY, "", regex=True).str.strip()
    shaped = day.str.match(_DAY_PARTS) & day.str.contains(_FOUR_DIGIT_YEAR)
    return (shaped | day.str.fullmatch(r"\d{8}")).fillna(False).astype(bool)


def _nanoseconds(parsed: pd.Series) -> pd.Series:
    """Parsed times as nanosecond timestamps (zone kept). A time they cannot hold, before 1677
    or after 2262 (a volume of `1000` or a negated `-2025-01-17` in a date cell), is
    unreadable: NaT, for the caller to refuse, rather than an OutOfBoundsDatetime error."""
    zone = parsed.dt.tz
    naive = parsed.dt.tz_localize(None) if zone is not None else parsed
    held = naive.notna() & (naive >= pd.Timestamp.min) & (naive <= pd.Timestamp.max)
    out = naive.where(held).astype("datetime64[ns]")
    return out.dt.tz_localize(zone) if zone is not None else out


def read_dates(series: pd.Series) -> pd.Series:
    """Dates read as the contract reads a DATE column (NaT where unreadable)."""
    return _coerce(series, DATE)


def given_mask(raw: pd.Series, kind: str) -> pd.Series:
    """Where the input holds a value at all (blank strings and NaN spellings are absent)."""
    if not _is_text(raw):
        return raw.notna()
    text = _as_text(raw).str.strip()
    given = text.notna() & (text != "")
    if kind in (DOUBLE, BIGINT):
        given &= ~text.str.lower().isin(["nan", "none", "null", "n/a", "-"]).fillna(False)
    return given.fillna(False).astype(bool)


def typed_frame(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    return pd.DataFrame({c: _coerce(frame[c], t) for c, t in dataset.columns.items()})


def conform(dataset: Dataset, frame: pd.DataFrame, *, default_ref: str = "") -> Batch:
    """Cast an adapter's frame to the contract, rejecting (never dropping) rows it cannot use.

    Rejected: a value that does not parse as its column's type (a date must be ISO or name a
    day, a month and a four-digit year, see `_states_a_day`), a missing required value, a NaN
    or infinite number, and every row of a key that appears more than once with differing
    values, exact repeats of those included (other exact repeats collapse to one row, and a
    note says so).
    """
    missing = [c for c in dataset.required if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{default_ref or dataset.name}: missing required column(s) {', '.join(missing)} "
            f"for {dataset.name}"
        )
    frame = frame.reset_index(drop=True)
    refs = frame["_source_ref"] if "_source_ref" in frame else pd.Series(default_ref, index=frame.index)
    lines = frame["_line"] if "_line" in frame else pd.Series(pd.NA, index=frame.index, dtype="Int64")
    original = frame.drop(columns=[c for c in ("_source_ref", "_line") if c in frame.columns])
    for c, kind in dataset.columns.items():
        if c not in original.columns:
            original[c] = empty_frame(dataset)[c].reindex(original.index)
    typed = typed_frame(original, dataset)

    reasons = pd.Series("", index=frame.index, dtype=object)

    def flag(mask: pd.Series, text: str) -> None:
        mask = mask.fillna(False).astype(bool)
        reasons[mask] = reasons[mask].map(lambda r: f"{r}; {text}" if r else text)

    for c, kind in dataset.columns.items():
        bad = given_mask(original[c], kind) & typed[c].isna()
        if bad.any():
            flag(bad, f"{c}: cannot read {kind.lower()} from value")
        if kind == DOUBLE:
            inf = pd.Series(np.isinf(typed[c].to_numpy()), index=typed.index)
            if inf.any():
                flag(inf, f"{c} is infinite")
    for c in dataset.required:
        missing_value = typed[c].isna() & (reasons == "")
        if missing_value.any():
            flag(missing_value, f"{c} is missing")

    ok = reasons == ""
    # Exact repeats collapse; conflicting repeats are all refused. A key whose rows differ is
    # refused whole, exact repeats among them included: collapsing those would leave a line
    # of the conflict in no reject at all.
    notes: list[str] = []
    key = list(dataset.key)
    candidates = typed[ok]
    dup_mask = candidates.duplicated(subset=key, keep=False)
    if dup_mask.any():
        dups = candidates[dup_mask]
        exact = dups.duplicated(keep="first")
        distinct = dups[~exact]
        differing = distinct[distinct.duplicated(subset=key, keep=False)][key]
        conflict = pd.Series(
            pd.MultiIndex.from_frame(dups[key]).isin(pd.MultiIndex.from_frame(differing)), index=dups.index
        )
        repeat = exact & ~conflict
        n_exact = int(repeat.sum())
        if n_exact:
            notes.append(f"{dataset.name}: {n_exact} exact repeated row(s) collapsed")
            exact_idx = repeat[repeat].index
            ok[exact_idx] = False  # not refused: identical to a kept row
            reasons[exact_idx] = "__repeat__"
        conflict_idx = conflict[conflict].index
        if len(conflict_idx):
            clash = dups.loc[conflict_idx, key].copy()
            where = pd.Series(
                [f"line {lines[j]}" if not pd.isna(lines[j]) else f"row {j + 1}" for j in conflict_idx],
                index=conflict_idx,
            )
            group = clash.groupby(key, sort=False, dropna=False).ngroup()
            places = where.groupby(group).agg(", ".join)
            heads = clash.groupby(group).head(1)
            label = {
                g: json.dumps({k: _json_value(v) for k, v in rec.items()}).replace('"', "'")
                for g, rec in zip(group[heads.index], heads.to_dict(orient="records"))
            }
            reasons[conflict_idx] = [
                f"duplicate key {label[g]} with differing values ({places[g]})" for g in group.values
            ]
            ok[conflict_idx] = False

    good = typed[ok].reset_index(drop=True)
    refused = ~ok & (reasons != "__repeat__")
    rejects = empty_rejects()
    if refused.any():
        idx = refused[refused].index
        records = original.loc[idx].to_dict(orient="records")
        rejects = pd.DataFrame(
            {
                "dataset": dataset.name,
                "source_ref": refs[idx].astype(object).values,
                "line": pd.array(lines[idx].values, dtype="Int64"),
                "ticker": [_json_value(r.get("ticker")) for r in records],
                "key": [json.dumps({k: _json_value(r[k]) for k in dataset.key}, sort_keys=True) for r in records],
                "reason": reasons[idx].values,
                "row_json": [row_json(r) for r in records],
            }
        )
    lineage = pd.DataFrame(
        {"source_ref": refs[ok].astype(object).values, "line": pd.array(lines[ok].values, dtype="Int64")}
    )
    return Batch(dataset=dataset, frame=good, rejects=rejects, notes=notes, lineage=lineage)


def float32_denoised(series: pd.Series) -> pd.Series:
    """Undo float32 noise: 599.3699951171875 (or a vendor's 599.369995) is 599.37.

    Yahoo keeps prices as float32, so exports carry the float32 nearest 599.37, sometimes
    rounded again to 6 decimals. A value within half a float32 step (plus 6-decimal rounding)
    of its float32's shortest decimal is taken to be that decimal. A value that is not, keeps
    its digits; the change is below float32's resolution (about 6e-8 relative) either way.
    """
    x = series.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(x)
    if not finite.any():
        return series
    f32 = x[finite].astype(np.float32)
    shortest = f32.astype(str).astype(np.float64)
    tolerance = np.spacing(np.abs(f32)).astype(np.float64) / 2 + 5e-7
    out = x.copy()
    out[finite] = np.where(np.abs(x[finite] - shortest) <= tolerance, shortest, x[finite])
    return pd.Series(out, index=series.index, name=series.name)


def describe_rejects(rejects: pd.DataFrame, limit: int = 5) -> list[str]:
    """Human-readable lines naming the file/line or ticker and the reason."""
    out = []
    for r in rejects.head(limit).itertuples(index=False):
        where = r.source_ref or r.dataset
        if not pd.isna(r.line):
            where = f"{where}:{int(r.line)}"
        out.append(f"{where}: {r.reason}")
    if len(rejects) > limit:
        out.append(f"... and {len(rejects) - limit} more")
    return out
