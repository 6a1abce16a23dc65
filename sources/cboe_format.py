"""The CBOE put/call CSV format, as a pure function over text.

`parse_cboe_putcall(text, source_ref, scope_hint)` turns one put/call file into a loosely typed
long frame (`trade_date, scope, call_volume, put_volume, ratio, _source_ref, _line`) for
`sources.contract.conform(PUTCALL, frame)`. It does no I/O, so the files source and a live CBOE
client read the same way.

Layouts recognised (the header is the first line, among the first 30, whose first cell is
`DATE` / `trade_date`, case-insensitive):
- the official CBOE archive (`totalpc.csv`, `indexpc.csv`, `equitypc.csv`, ...): disclaimer
  line(s), a `, PRODUCT:INDEX,,EXCHANGE: Cboe,` line, then `DATE,CALL,PUT,TOTAL,P/C Ratio`;
- the same with the disclaimer lines removed and the header spelled `DATE,CALLS,PUTS,TOTAL,Ratio`;
- wide tables with one ratio column per scope (`date,equity_pc_ratio,total_pc_ratio,...`): the
  scope is the prefix before `_pc_ratio` / `_ratio`; the table is melted to one row per cell.

- CBOE's SPX archive (`spxpc.csv`): one disclaimer line, then
  `Date,SPX Put/Call Ratio,SPX Put Volume,SPX Call Volume,Total SPX Options Volume`: a long
  table whose call, put and ratio columns carry the scope as a prefix (puts before calls).
  Recognised when one scope prefixes both a call and a put volume column, so wide tables
  (ratio columns only) are not mistaken for it.

Scope of a long (one-scope) file: the PRODUCT line, else the scope prefixing its columns,
else the file name stem (starting with a scope, `totalpc`, `indexpc`, `equitypcarchive`, or
holding `<scope>pc`, `cboe_totalpc`), else `scope_hint`; else the layout is unrecognised.
A product named inside a broader phrase is that product: `CBOE VOLATILITY INDEX (VIX)` is
vix and `S&P 500 INDEX (SPX)` is spx, not index.

Rules:
- Lines are physical 1-based file lines, header and disclaimer lines included, so `file:line`
  opens the row in an editor. CRLF, CR and LF endings are all accepted.
- Blank lines are not rows. In a wide table a blank (or NaN-spelled) cell means "not
  published that day" and yields no row; a present but unparseable value is kept so that
  `conform` refuses it with its line.
- In a long table a row with a date but no ratio is kept (conform refuses it), except that a
  missing ratio is computed as round(put / call, 2) when both volumes are there.
- Volumes stay as text for `conform` to read as integers; dates stay as written (M/D/YYYY and
  MM/DD/YYYY both occur) for `conform` to parse. TOTAL is not a contract column and is ignored.
- A line with more non-blank cells than the header cannot be read safely (an unquoted
  thousands separator shifts every value); it is kept with its raw text in `ratio`, so
  `conform` refuses it ("ratio: cannot read double") and the reject shows the line.
- Notes on the file (ignored columns) are returned in `frame.attrs["notes"]`.

`physical_lines` and `csv_cells` are the line-numbered CSV reading shared with `sources.files`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import PurePath

import pandas as pd

from sources.contract import PUTCALL_SCOPES, ContractError

OUTPUT_COLUMNS = ("trade_date", "scope", "call_volume", "put_volume", "ratio", "_source_ref", "_line")
HEADER_SEARCH_LINES = 30
NAN_SPELLINGS = ("nan", "none", "null", "n/a", "na", "-")

_NEWLINE = re.compile(r"\r\n|\r|\n")
_PRODUCT = re.compile(r"PRODUCT\s*:\s*([^,]*)", re.IGNORECASE)
_LONG_RATIO = {"ratio", "pcratio", "putcallratio", "pc", "putcall"}
_CALLS = {"call", "calls", "callvolume", "callsvolume"}
_PUTS = {"put", "puts", "putvolume", "putsvolume"}
_DATES = {"date", "tradedate"}
_WIDE = re.compile(r"^\s*([a-z0-9]+?)[\s_\-]*(?:p/?c|put[\s_\-/]*call)?[\s_\-]*ratio\s*$", re.IGNORECASE)
# Words CBOE uses in PRODUCT lines and file names, in the order they must be tried: named
# products first, because CBOE spells them inside broader words ("CBOE VOLATILITY INDEX (VIX)").
_SCOPE_WORDS = (
    ("vix", "vix"),
    ("spx", "spx"),
    ("etp", "etp"),
    ("exchange traded", "etp"),
    ("exchangetraded", "etp"),
    ("total", "total"),
    ("equity", "equity"),
    ("equities", "equity"),
    ("index", "index"),
)


def norm(name: object) -> str:
    """A column name compared loosely: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def physical_lines(text: str) -> list[str]:
    """The file's lines as an editor numbers them (index i is line i + 1); no trailing empty line."""
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def split_line(line: str) -> list[str]:
    """One CSV line's cells, stripped."""
    return [c.strip() for c in next(csv.reader([line], skipinitialspace=True), [])]


def csv_cells(lines: list[str], start: int) -> pd.DataFrame:
    """Cells of lines[start:] as strings (blank is ""), columns 0..n-1, plus `_line`.

    Every physical line maps to a row, so `_line` is exact; fully blank lines are dropped.
    Rows can be wider than any header; callers compare widths.
    """
    body = lines[start:]
    if not body:
        return pd.DataFrame({"_line": pd.Series([], dtype="int64")})
    width = max(line.count(",") for line in body) + 1
    joined = "\n".join(body)
    frame = pd.read_csv(
        io.StringIO(joined),
        header=None,
        names=range(width),
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skipinitialspace=True,
        skip_blank_lines=False,
        engine="c",
    )
    if len(frame) == len(body):
        frame["_line"] = range(start + 1, start + 1 + len(body))
    else:
        # A quoted cell spans lines: count lines the slow way, but only for such files.
        rows, numbers, reader = [], [], csv.reader(io.StringIO(joined), skipinitialspace=True)
        previous = 0
        for row in reader:
            rows.append(row + [""] * (width - len(row)))
            numbers.append(start + previous + 1)
            previous = reader.line_num
        frame = pd.DataFrame(rows, columns=range(width), dtype=str)
        frame["_line"] = numbers
    cells = [c for c in frame.columns if c != "_line"]
    for c in cells:
        frame[c] = frame[c].str.strip()
    blank = (frame[cells] == "").all(axis=1)
    return frame[~blank].reset_index(drop=True)


def extra_cells(frame: pd.DataFrame, width: int) -> pd.Series:
    """How many non-blank cells each row has beyond the header's `width` columns."""
    beyond = [c for c in frame.columns if c != "_line" and c >= width]
    if not beyond:
        return pd.Series(0, index=frame.index)
    return (frame[beyond] != "").sum(axis=1)


def scope_from_words(text: str | None) -> str | None:
    """total / equity / index / vix / spx / etp named in a PRODUCT line or file stem, or None."""
    if not text:
        return None
    low = str(text).strip().lower()
    for word, scope in _SCOPE_WORDS:
        if word in low:
            return scope
    return None


def _scope_of_stem(stem: str) -> str | None:
    """`totalpc`, `indexPC`, `equitypcarchive`, `cboe_totalpc` -> the scope; else None."""
    low = stem.lower()
    for word, scope in _SCOPE_WORDS:
        if low.startswith(word) or f"{word}pc" in low:
            return scope
    return None


def _scope_prefixed_columns(names: list[str]) -> tuple[int | None, int | None, int | None, str | None]:
    """Call, put and ratio columns named `<scope> call volume` etc. (CBOE's SPX archive), and the scope.

    Only when exactly one call and one put volume column carry the same scope prefix;
    otherwise (None, None, None, None) and the header is read as before.
    """

    def prefixed(wanted: set[str]) -> list[tuple[int, str]]:
        found = []
        for i, n in enumerate(names):
            for scope in PUTCALL_SCOPES:
                if n.startswith(scope) and n[len(scope):] in wanted:
                    found.append((i, scope))
        return found

    calls, puts = prefixed(_CALLS), prefixed(_PUTS)
    if len(calls) != 1 or len(puts) != 1 or calls[0][1] != puts[0][1]:
        return None, None, None, None
    scope = calls[0][1]
    ratios = [i for i, s in prefixed(_LONG_RATIO) if s == scope]
    return calls[0][0], puts[0][0], ratios[0] if len(ratios) == 1 else None, scope


def _is_total_column(name: str) -> bool:
    """TOTAL, Total Volume, Total SPX Options Volume: the sum of calls and puts, not a contract column."""
    return name in {"total", "totalvolume"} or (name.startswith("total") and name.endswith("volume"))


def _blank(series: pd.Series) -> pd.Series:
    low = series.str.strip().str.lower()
    return (low == "") | low.isin(NAN_SPELLINGS)


def _raw_lines(lines: list[str], numbers: pd.Series) -> list[str]:
    return [lines[n - 1] for n in numbers]


def header_line(lines: list[str]) -> int | None:
    """Where a put/call file's header is: the first of its first HEADER_SEARCH_LINES lines whose
    first cell is DATE (or trade_date); None when there is none."""
    for i, line in enumerate(lines[:HEADER_SEARCH_LINES]):
        cells = split_line(line)
        if cells and norm(cells[0]) in _DATES:
            return i
    return None


def parse_cboe_putcall(text: str, source_ref: str, scope_hint: str | None = None) -> pd.DataFrame:
    """One CBOE put/call file as loose contract rows; `ContractError` for an unrecognised layout."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = physical_lines(text)
    header_at = header_line(lines)
    if header_at is None:
        raise ContractError(
            f"{source_ref}: unrecognised put/call layout: no header line starting with DATE "
            f"in the first {min(len(lines), HEADER_SEARCH_LINES)} line(s)"
        )
    header = split_line(lines[header_at])
    names = [norm(h) for h in header]
    notes: list[str] = []

    product_scope = None
    for line in lines[:header_at]:
        m = _PRODUCT.search(line)
        if m:
            product_scope = scope_from_words(m.group(1))
            if product_scope is None:
                notes.append(f"{source_ref}: PRODUCT {m.group(1).strip()!r} is not a known scope")
            break

    calls = next((i for i, n in enumerate(names) if n in _CALLS), None)
    puts = next((i for i, n in enumerate(names) if n in _PUTS), None)
    ratio = next((i for i, n in enumerate(names) if n in _LONG_RATIO), None)
    column_scope = None
    if calls is None and puts is None and ratio is None:
        calls, puts, ratio, column_scope = _scope_prefixed_columns(names)
    wide: dict[int, str] = {}
    if ratio is None and column_scope is None:
        for i, h in enumerate(header[1:], start=1):
            m = _WIDE.match(h)
            if m and norm(m.group(1)) not in {"p", "pc", "putcall", ""}:
                scope = norm(m.group(1))
                if scope in PUTCALL_SCOPES:
                    wide[i] = scope
                else:
                    notes.append(f"{source_ref}: column {h!r} is not a known put/call scope; ignored")

    cells = csv_cells(lines, header_at + 1)
    width = len(header)
    for c in range(width):
        if c not in cells.columns:
            cells[c] = ""
    extra = extra_cells(cells, width)
    ref = str(source_ref)

    if wide:
        used = {0, *wide}
        ignored = [h for i, h in enumerate(header) if i not in used and h]
        if ignored:
            notes.append(f"{source_ref}: ignored column(s) {', '.join(ignored)}")
        parts = []
        for i, scope in wide.items():
            value = cells[i]
            keep = ~_blank(value) & (extra == 0)
            parts.append(
                pd.DataFrame(
                    {
                        "trade_date": cells.loc[keep, 0],
                        "scope": scope,
                        "call_volume": None,
                        "put_volume": None,
                        "ratio": value[keep],
                        "_source_ref": ref,
                        "_line": cells.loc[keep, "_line"],
                    }
                )
            )
        bad = extra > 0
        if bad.any():
            first_scope = next(iter(wide.values()))
            parts.append(_unreadable(cells[bad], lines, width, first_scope, ref))
        out = pd.concat(parts).sort_values("_line", kind="stable") if parts else _empty()
        return _finish(out, notes)

    if ratio is None and (calls is None or puts is None):
        raise ContractError(
            f"{source_ref}: unrecognised put/call layout: header {header} has no ratio column "
            f"(P/C Ratio, Ratio or <scope>_pc_ratio) and no CALL and PUT columns"
        )
    scope = product_scope or column_scope or _scope_of_stem(PurePath(ref).stem) or (
        scope_hint.strip().lower() if scope_hint and scope_hint.strip() else None
    )
    if scope is None:
        raise ContractError(
            f"{source_ref}: unrecognised put/call layout: cannot tell the scope (no PRODUCT line, "
            f"the file name does not start with one of {', '.join(PUTCALL_SCOPES)}, no scope hint)"
        )
    used = {0, calls, puts, ratio} - {None}
    ignored = [h for i, h in enumerate(header) if h and i not in used and not _is_total_column(norm(h))]
    if ignored:
        notes.append(f"{source_ref}: ignored column(s) {', '.join(ignored)}")
    empty = pd.Series("", index=cells.index, dtype="str")
    call_text = cells[calls] if calls is not None else empty
    put_text = cells[puts] if puts is not None else empty
    ratio_text = cells[ratio].copy() if ratio is not None else empty.copy()
    missing = _blank(ratio_text)
    if missing.any():
        call_num = pd.to_numeric(call_text.str.replace(",", "", regex=False), errors="coerce")
        put_num = pd.to_numeric(put_text.str.replace(",", "", regex=False), errors="coerce")
        computable = missing & call_num.notna() & put_num.notna() & (call_num > 0)
        if computable.any():
            ratio_text = ratio_text.astype(object)
            ratio_text[computable] = (put_num[computable] / call_num[computable]).round(2)
    out = pd.DataFrame(
        {
            "trade_date": cells[0],
            "scope": scope,
            "call_volume": call_text,
            "put_volume": put_text,
            "ratio": ratio_text,
            "_source_ref": ref,
            "_line": cells["_line"],
        }
    )
    bad = extra > 0
    if bad.any():
        out = out.astype({"ratio": object})
        out.loc[bad, "ratio"] = [
            f"unreadable line ({width + n} or more cells, header has {width}): {raw}"
            for n, raw in zip(extra[bad], _raw_lines(lines, cells.loc[bad, "_line"]))
        ]
    return _finish(out, notes)


def _unreadable(rows: pd.DataFrame, lines: list[str], width: int, scope: str, ref: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_date": rows[0],
            "scope": scope,
            "call_volume": None,
            "put_volume": None,
            "ratio": [
                f"unreadable line (more cells than the header's {width}): {raw}"
                for raw in _raw_lines(lines, rows["_line"])
            ],
            "_source_ref": ref,
            "_line": rows["_line"],
        }
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in OUTPUT_COLUMNS})


def _finish(out: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    out = out[list(OUTPUT_COLUMNS)].reset_index(drop=True)
    out["_line"] = out["_line"].astype("int64")
    out.attrs["notes"] = notes
    return out
