"""The CBOE source: market-wide put/call ratios with call and put volumes, from CBOE's own files.

`CboeSource().putcall(start, end)` returns one `putcall_daily` row per scope (total, equity,
index, etp, vix, spx, as CBOE publishes them) for every NYSE session in [start, end]:

- sessions up to 2019-10-04 come from CBOE's archive CSVs, which stop that day:
  `https://cdn.cboe.com/resources/options/volume_and_call_put_ratios/<file>` for `totalpc.csv`,
  `equitypc.csv`, `indexpc.csv`, `etppc.csv`, `vixpc.csv` and `spxpc.csv`. Each file is fetched
  at most once per source object (cached after a good read; a failed fetch is tried again on
  the next call), parsed by `sources.cboe_format.parse_cboe_putcall` (the files source's parser)
  and cut to the window. History before a file's first row (2006-11-01 for most; the older
  `*archive.csv` files are not fetched) comes back empty.
- sessions from 2019-10-07 on come from CBOE's daily market statistics, one request per
  session: `https://cdn.cboe.com/data/us/options/market_statistics/daily/<YYYY-MM-DD>_daily_options`.
  Weekends and holidays are never requested (`sources.calendar`).

A night's fetch is `putcall_night(now)`: the last session completed at `now` (an aware
datetime the caller passes in). A backfill is `putcall(start, end)`.

The daily JSON, as public clients read it (the shape is not documented by CBOE):
    {"ratios": [{"name": "TOTAL PUT/CALL RATIO", "value": "0.89"}, ...],
     "SUM OF ALL PRODUCTS": [{"name": "VOLUME", "call": 16281300, "put": 14490357, "total": ...},
                             {"name": "OPEN INTEREST", "call": ..., "put": ..., "total": ...}],
     "INDEX OPTIONS": [...], "EXCHANGE TRADED PRODUCTS": [...], "EQUITY OPTIONS": [...],
     "CBOE VOLATILITY INDEX (VIX)": [...], "SPX + SPXW": [...], "OEX": [...], ...}
Ratio names and sections map to scopes: TOTAL / SUM OF ALL PRODUCTS -> total, INDEX -> index,
EXCHANGE TRADED PRODUCTS -> etp, EQUITY -> equity, CBOE VOLATILITY INDEX (VIX) -> vix,
SPX + SPXW -> spx; others (OEX, MRUT, ...) are ignored. A scope's row takes the ratio as
published and the VOLUME row's call and put; when CBOE publishes volumes but no ratio, the ratio
is round(put / call, 2). Values go through `contract.conform` with the URL as `_source_ref`.
The parser is strict: a body that is not JSON (a truncated download, an HTML page), is not an
object, lacks `ratios` or `SUM OF ALL PRODUCTS`, has a ratio that is not {name, value}, or a
known section without exactly one VOLUME row with call and put is "malformed CBOE response for
DATE: ..." and that session fails.

Where the shape and endpoints come from (public code, read 2026-11; how sure: the URL
pattern, the `ratios` list and the names above are used identically by several independent
clients, one of which fed the 2019-10-07.. part of PROVENANCE 2a; the volume sections are used
the same way by three; no client quotes a recorded body byte for byte, so key order, number
types (volumes are read here from JSON numbers or numeric strings) and other sections are not
confirmed):
- edwin-repo/market-signal-dashboard `scripts/update_putcall.py` @313e222: the daily URL above,
  `ratios` as {name: value} with "EQUITY/TOTAL/INDEX PUT/CALL RATIO", legacy CSVs to 2019-10-04
  and the JSON from 2019-10-07 (the updater behind PROVENANCE 2a);
- mortalbeing1987-ux/almanac `almanac/sources/cboe_pc.py` and its test @ea7ae01: the six
  sections above with VOLUME {call, put, total} and OPEN INTEREST rows, the six archive CSV
  names, the SPX archive's own layout (`Date,SPX Put/Call Ratio,SPX Put Volume,SPX Call
  Volume,...`, from a hand-made test body), and that a day without a file answers HTTP 403
  AccessDenied;
- other public clients of the same URL (an `arc` ingest module whose repository the index did
  not name, and several test fixtures) with the full ratio-name list, including "EXCHANGE
  TRADED PRODUCTS PUT/CALL RATIO", "CBOE VOLATILITY INDEX (VIX) PUT/CALL RATIO" and
  "SPX + SPXW PUT/CALL RATIO", and the note that the CDN (S3) answers 403 for a missing file.

Failures are classified, never swallowed:
- HTTP 429, HTTP 5xx, timeouts and dropped connections are `retry.Transient`, retried by
  `retry.call_with_retry` (exponential backoff with full jitter, `policy.max_attempts`);
  exhausting them fails that request, naming the last error and the attempts.
- HTTP 404 for a session, or HTTP 403 whose body is S3's AccessDenied / NoSuchKey: CBOE
  published no file for that day (it publishes nothing on some sessions): the session is
  `empty`, "CBOE published no statistics for DATE". Any other 4xx, including a 403 that is
  not S3's (a blocked client), fails.
- Malformed responses fail as above. An archive that cannot be fetched or read fails its own
  outcome row and every archive-era session that got no row because of it.

Outcomes (`Batch.outcomes`, dataset `putcall_daily`): one row per session requested, ticker
`CBOE:<YYYY-MM-DD>` (so each session is its own audit row), status ok / empty / failed, rows
(contract rows for that date), attempts (HTTP attempts for that date's request; 0 for
archive-era sessions, which make no request of their own) and the reason. Plus one row per
archive file fetched in the call, ticker `CBOE:<file>` (e.g. `CBOE:totalpc.csv`), rows = rows
the file holds. A cached archive adds no row.

The methodology may differ across the 2019-10-04 / 2019-10-07 splice (PROVENANCE 2a): a batch
spanning it says so in a note.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import pandas as pd
from curl_cffi import requests as curl_requests
from curl_cffi.requests import exceptions as curl_errors

from sources.calendar import last_completed_session, sessions
from sources.cboe_format import NAN_SPELLINGS, parse_cboe_putcall
from sources.contract import (
    EMPTY,
    FAILED,
    FUNDAMENTALS,
    OK,
    OPTION_QUOTES,
    PRICES,
    PUTCALL,
    VALUATION,
    Batch,
    ContractError,
    Dataset,
    conform,
    empty_batch,
    empty_frame,
    empty_rejects,
    outcome_frame,
)
from sources.retry import RetriesExhausted, RetryPolicy, Transient, call_with_retry

DAILY_URL = "https://cdn.cboe.com/data/us/options/market_statistics/daily/{date}_daily_options"
ARCHIVE_URL = "https://cdn.cboe.com/resources/options/volume_and_call_put_ratios/{name}"
ARCHIVE_LAST_DATE = dt.date(2019, 10, 4)   # the archive CSVs' last row
FEED_FIRST_DATE = dt.date(2019, 10, 7)     # the daily statistics' first file
ARCHIVE_FILES: dict[str, str] = {
    "total": "totalpc.csv",
    "equity": "equitypc.csv",
    "index": "indexpc.csv",
    "etp": "etppc.csv",
    "vix": "vixpc.csv",
    "spx": "spxpc.csv",
}
RATIO_NAMES: dict[str, str] = {
    "TOTAL PUT/CALL RATIO": "total",
    "INDEX PUT/CALL RATIO": "index",
    "EXCHANGE TRADED PRODUCTS PUT/CALL RATIO": "etp",
    "EQUITY PUT/CALL RATIO": "equity",
    "CBOE VOLATILITY INDEX (VIX) PUT/CALL RATIO": "vix",
    "SPX + SPXW PUT/CALL RATIO": "spx",
}
SECTIONS: dict[str, str] = {
    "total": "SUM OF ALL PRODUCTS",
    "index": "INDEX OPTIONS",
    "etp": "EXCHANGE TRADED PRODUCTS",
    "equity": "EQUITY OPTIONS",
    "vix": "CBOE VOLATILITY INDEX (VIX)",
    "spx": "SPX + SPXW",
}
SCOPE_ORDER = ("total", "equity", "index", "etp", "vix", "spx")
TIMEOUT_S = 30
IMPERSONATE = "chrome"  # CBOE's CDN serves browsers; curl_cffi sends a browser's TLS and headers
OUTCOME_PREFIX = "CBOE:"

# A 403 whose body is S3's error document means "no such file" (the CDN's bucket does not list).
_S3_MISSING = re.compile(rb"<Code>\s*(AccessDenied|NoSuchKey)\s*</Code>|<Error>\s*(AccessDenied|NoSuchKey)", re.I)
# Transport failures worth retrying; a certificate that does not verify is not one of them.
_TRANSIENT_ERRORS = (
    curl_errors.Timeout, curl_errors.ConnectionError, curl_errors.IncompleteRead, curl_errors.ChunkedEncodingError,
)


class MalformedResponse(ValueError):
    """CBOE answered, but not with the statistics' shape."""


def night_session(now: dt.datetime) -> dt.date:
    """The session a night's fetch at `now` (timezone-aware) takes: the last completed one."""
    return last_completed_session(now)


def parse_daily_statistics(body: bytes | str, day: dt.date, source_ref: str) -> pd.DataFrame:
    """One day's daily-statistics JSON as loose contract rows for `conform(PUTCALL, ...)`.

    Columns: trade_date (ISO text), scope, call_volume, put_volume, ratio (as published),
    _source_ref. Notes in `frame.attrs["notes"]`. `MalformedResponse` when the body is not the
    shape described in the module docstring.
    """
    where = f"malformed CBOE response for {day.isoformat()}"
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedResponse(
                f"{where}: the body is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
    else:
        text = body
    if not text.strip():
        raise MalformedResponse(f"{where}: the body is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedResponse(
            f"{where}: not JSON ({exc.msg} at character {exc.pos} of {len(text)}; truncated or not the "
            f"statistics file?) starting {text[:60]!r}"
        ) from None
    if not isinstance(doc, dict):
        raise MalformedResponse(f"{where}: expected a JSON object, got {type(doc).__name__}")
    ratios = doc.get("ratios")
    if not isinstance(ratios, list):
        raise MalformedResponse(f"{where}: no 'ratios' list (keys: {_listing(doc)})")
    if SECTIONS["total"] not in doc:
        raise MalformedResponse(f"{where}: no {SECTIONS['total']!r} section (keys: {_listing(doc)})")

    published: dict[str, object] = {}
    for i, item in enumerate(ratios):
        if not isinstance(item, dict) or "name" not in item or "value" not in item:
            raise MalformedResponse(f"{where}: ratios[{i}] is not a {{name, value}} object: {item!r:.80}")
        scope = RATIO_NAMES.get(str(item["name"]).strip().upper())
        if scope is None:
            continue
        if scope in published and published[scope] != item["value"]:
            raise MalformedResponse(f"{where}: {item['name']!r} is published twice with different values")
        published[scope] = item["value"]

    volumes: dict[str, tuple[object, object]] = {}
    for scope, section in SECTIONS.items():
        if section not in doc:
            continue
        rows = doc[section]
        if not isinstance(rows, list):
            raise MalformedResponse(f"{where}: section {section!r} is not a list")
        found = [r for r in rows if isinstance(r, dict) and str(r.get("name", "")).strip().upper() == "VOLUME"]
        if len(found) != 1:
            raise MalformedResponse(f"{where}: section {section!r} has {len(found)} VOLUME rows, expected 1")
        missing = [k for k in ("call", "put") if k not in found[0]]
        if missing:
            raise MalformedResponse(f"{where}: the VOLUME row of {section!r} has no {' or '.join(missing)}")
        volumes[scope] = (found[0]["call"], found[0]["put"])

    notes: list[str] = []
    records = []
    for scope in SCOPE_ORDER:
        if scope not in published and scope not in volumes:
            continue
        call, put = volumes.get(scope, (None, None))
        ratio = published.get(scope)
        if _absent(ratio):
            calls, puts = _number(call), _number(put)
            if calls is None or puts is None or calls <= 0:
                notes.append(f"{source_ref}: {scope} has no published ratio and no call volume to compute one; no row")
                continue
            ratio = round(puts / calls, 2)
        records.append(
            {"trade_date": day.isoformat(), "scope": scope, "call_volume": call, "put_volume": put, "ratio": ratio,
             "_source_ref": source_ref}
        )
    frame = pd.DataFrame.from_records(
        records, columns=["trade_date", "scope", "call_volume", "put_volume", "ratio", "_source_ref"]
    ).astype(object)
    frame.attrs["notes"] = notes
    return frame


@dataclasses.dataclass
class _Fetch:
    """One request's result: the response (None when it failed) and how it went."""

    url: str
    response: curl_requests.Response | None
    attempts: int
    error: str | None = None


@dataclasses.dataclass
class _Archive:
    scope: str
    url: str
    batch: Batch | None          # the whole file, conformed
    attempts: int
    fetched: bool                # False: served from the cache
    error: str | None = None


@dataclasses.dataclass
class _Day:
    day: dt.date
    url: str
    frame: pd.DataFrame | None   # loose rows, when the file came and parsed
    attempts: int
    status: str | None = None    # EMPTY / FAILED before conforming; None when rows came
    reason: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


class CboeSource:
    """Market put/call ratios from CBOE (see the module docstring). The other datasets are empty."""

    name = "cboe"

    def __init__(
        self,
        session: curl_requests.Session | None = None,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        max_workers: int = 2,
    ):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._session = session
        self._owns_session = False
        self.policy = policy
        self.sleep = sleep
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._archive_locks = {scope: threading.Lock() for scope in ARCHIVE_FILES}
        self._archives: dict[str, Batch] = {}

    @property
    def session(self) -> curl_requests.Session:
        with self._lock:
            if self._session is None:
                self._session = curl_requests.Session(impersonate=IMPERSONATE, timeout=TIMEOUT_S)
                self._owns_session = True
            return self._session

    def close(self) -> None:
        """Close the HTTP session if this object created it."""
        with self._lock:
            if self._session is not None and self._owns_session:
                self._session.close()
                self._session = None
                self._owns_session = False

    # -- the Source protocol -------------------------------------------------------------

    def putcall(self, start: dt.date, end: dt.date) -> Batch:
        days = sessions(start, end)
        if not days:
            return empty_batch(PUTCALL, [f"cboe: no NYSE session in {start}..{end}; nothing requested"])
        archive_days = [d for d in days if d <= ARCHIVE_LAST_DATE]
        feed_days = [d for d in days if d > ARCHIVE_LAST_DATE]
        scopes = list(ARCHIVE_FILES) if archive_days else []
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="cboe") as pool:
            archive_jobs = [pool.submit(self._archive, scope) for scope in scopes]
            day_jobs = [pool.submit(self._day, day) for day in feed_days]
            archives = [job.result() for job in archive_jobs]
            fetched_days = [job.result() for job in day_jobs]

        notes: list[str] = []
        if archive_days and feed_days:
            notes.append(
                f"cboe: the window spans CBOE's splice from its archive CSVs (to {ARCHIVE_LAST_DATE}) to its "
                f"daily statistics (from {FEED_FIRST_DATE}); methodology may differ across it"
            )
        archive_part = self._archive_part(archives, archive_days, pd.Timestamp(start), notes)
        feed_part, feed_outcomes = self._feed_part(fetched_days, notes)

        frames = [p.frame for p in (archive_part, feed_part) if len(p.frame)]
        frame = pd.concat(frames, ignore_index=True) if frames else empty_frame(PUTCALL)
        frame = frame.sort_values(["trade_date", "scope"], kind="stable").reset_index(drop=True)
        rejects = [p.rejects for p in (archive_part, feed_part) if len(p.rejects)]
        return Batch(
            dataset=PUTCALL,
            frame=frame,
            rejects=pd.concat(rejects, ignore_index=True) if rejects else empty_rejects(),
            notes=notes + archive_part.notes + feed_part.notes,
            outcomes=outcome_frame([*_archive_outcomes(archives, archive_part.frame, archive_days), *feed_outcomes]),
        )

    def putcall_night(self, now: dt.datetime) -> Batch:
        """The night's fetch: the last session completed at `now` (timezone-aware)."""
        day = night_session(now)
        return self.putcall(day, day)

    def prices(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return _not_here(PRICES)

    def option_quotes(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return _not_here(OPTION_QUOTES)

    def valuation_snapshots(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return _not_here(VALUATION)

    def fundamentals(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return _not_here(FUNDAMENTALS)

    # -- HTTP ------------------------------------------------------------------------------

    def _get(self, url: str) -> _Fetch:
        """GET with retries; a failed request is a `_Fetch` with no response and the reason."""
        tries = 0

        def once() -> curl_requests.Response:
            nonlocal tries
            tries += 1
            try:
                response = self.session.get(url, timeout=TIMEOUT_S)
            except curl_errors.RequestException as exc:
                if _transient(exc):
                    raise Transient(f"{type(exc).__name__} from {url}: {exc}") from exc
                raise
            if response.status_code == 429 or response.status_code >= 500:
                raise Transient(f"{_status(response)} from {url}")
            return response

        try:
            response, attempts = call_with_retry(once, self.policy, sleep=self.sleep)
        except RetriesExhausted as exc:
            kind = "rate limited" if "HTTP 429" in str(exc.last) else "gave up"
            return _Fetch(url, None, exc.attempts, f"{kind}: {exc}")
        except curl_errors.RequestException as exc:
            return _Fetch(url, None, tries, f"{type(exc).__name__} from {url}: {exc}")
        return _Fetch(url, response, attempts)

    # -- the archive CSVs ------------------------------------------------------------------

    def _archive(self, scope: str) -> _Archive:
        name = ARCHIVE_FILES[scope]
        url = ARCHIVE_URL.format(name=name)
        with self._archive_locks[scope]:
            cached = self._archives.get(scope)
            if cached is not None:
                return _Archive(scope, url, cached, 0, fetched=False)
            got = self._get(url)
            if got.response is None:
                return _Archive(scope, url, None, got.attempts, True, got.error)
            status = got.response.status_code
            if not 200 <= status < 300:
                return _Archive(scope, url, None, got.attempts, True, f"{_status(got.response)} from {url}")
            try:
                batch = _read_archive(got.response.content, url, scope)
            except MalformedResponse as exc:
                return _Archive(scope, url, None, got.attempts, True, str(exc))
            self._archives[scope] = batch
            return _Archive(scope, url, batch, got.attempts, True)

    def _archive_part(
        self, archives: list[_Archive], days: list[dt.date], start: pd.Timestamp, notes: list[str]
    ) -> Batch:
        if not days:
            return empty_batch(PUTCALL)
        first, last = start, pd.Timestamp(min(days[-1], ARCHIVE_LAST_DATE))
        frames, rejects, batch_notes = [], [], []
        for a in archives:
            if a.batch is None:
                continue
            f = a.batch.frame
            frames.append(f[(f["trade_date"] >= first) & (f["trade_date"] <= last)])
            if len(a.batch.rejects):
                rejects.append(a.batch.rejects[_rejects_in_window(a.batch.rejects, first, last)])
            if a.fetched:
                batch_notes.extend(a.batch.notes)
        frames = [f for f in frames if len(f)]
        frame = pd.concat(frames, ignore_index=True) if frames else empty_frame(PUTCALL)
        off = sorted({d.date() for d in frame["trade_date"]} - set(days))
        if off:
            notes.append(
                f"cboe: archive rows on {len(off)} date(s) that were not NYSE sessions are kept as delivered: "
                f"{', '.join(map(str, off[:5]))}{' ...' if len(off) > 5 else ''}"
            )
        rejects = [r for r in rejects if len(r)]
        return Batch(
            dataset=PUTCALL,
            frame=frame,
            rejects=pd.concat(rejects, ignore_index=True) if rejects else empty_rejects(),
            notes=batch_notes,
        )

    # -- the daily statistics --------------------------------------------------------------

    def _day(self, day: dt.date) -> _Day:
        url = DAILY_URL.format(date=day.isoformat())
        got = self._get(url)
        if got.response is None:
            return _Day(day, url, None, got.attempts, FAILED, got.error)
        response = got.response
        status = response.status_code
        if status == 404 or (status == 403 and _s3_missing(response.content)):
            how = "HTTP 404" if status == 404 else "HTTP 403 AccessDenied, the CDN's answer for a missing file"
            reason = f"CBOE published no statistics for {day.isoformat()} ({how})"
            return _Day(day, url, None, got.attempts, EMPTY, reason)
        if not 200 <= status < 300:
            return _Day(day, url, None, got.attempts, FAILED, f"{_status(response)} from {url}")
        try:
            frame = parse_daily_statistics(response.content, day, url)
        except MalformedResponse as exc:
            return _Day(day, url, None, got.attempts, FAILED, str(exc))
        return _Day(day, url, frame, got.attempts, notes=list(frame.attrs.get("notes", [])))

    def _feed_part(self, days: list[_Day], notes: list[str]) -> tuple[Batch, list[dict]]:
        loose = [d.frame for d in days if d.frame is not None and len(d.frame)]
        batch = conform(PUTCALL, pd.concat(loose, ignore_index=True)) if loose else empty_batch(PUTCALL)
        for d in days:
            batch.notes.extend(d.notes)
        counts = batch.frame.groupby(batch.frame["trade_date"].dt.date).size() if len(batch.frame) else {}
        refused = None
        if len(batch.rejects):
            refused = batch.rejects.groupby("source_ref").agg(n=("reason", "size"), first=("reason", "first"))
        outcomes = []
        for d in days:
            rows = int(counts.get(d.day, 0)) if len(batch.frame) else 0
            status, reason = d.status, d.reason
            if status is None:
                n_refused = int(refused.loc[d.url, "n"]) if refused is not None and d.url in refused.index else 0
                if rows:
                    status = OK
                    reason = f"{n_refused} row(s) refused" if n_refused else None
                elif n_refused:
                    status, reason = FAILED, f"all {n_refused} row(s) refused: {refused.loc[d.url, 'first']}"
                else:
                    status = EMPTY
                    reason = f"CBOE published no statistics for {d.day.isoformat()} (its file has no put/call row)"
            outcomes.append(_outcome(d.day.isoformat(), status, rows, d.attempts, reason))
        return batch, outcomes


# -- helpers ---------------------------------------------------------------------------------


def _read_archive(content: bytes, url: str, scope: str) -> Batch:
    """A whole archive CSV, parsed by the files source's parser and conformed."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("latin-1")  # CBOE's older archives carry a few Latin-1 bytes
    try:
        frame = parse_cboe_putcall(text, url, scope)
    except ContractError as exc:
        raise MalformedResponse(f"malformed CBOE archive {url}: {exc}") from None
    stated = sorted(set(frame["scope"]) - {scope})
    if stated:
        raise MalformedResponse(f"malformed CBOE archive {url}: it states scope {', '.join(stated)}, expected {scope}")
    batch = conform(PUTCALL, frame)
    if not len(batch.frame) and not len(batch.rejects):
        raise MalformedResponse(f"malformed CBOE archive {url}: no rows under its header")
    batch.notes = list(frame.attrs.get("notes", [])) + batch.notes
    return batch


def _archive_outcomes(archives: list[_Archive], frame: pd.DataFrame, days: list[dt.date]) -> list[dict]:
    out = []
    for a in archives:
        if not a.fetched:
            continue
        name = ARCHIVE_FILES[a.scope]
        if a.batch is None:
            out.append(_outcome(name, FAILED, 0, a.attempts, a.error))
        else:
            f = a.batch.frame
            span = f"{f['trade_date'].min().date()}..{f['trade_date'].max().date()}" if len(f) else "no readable rows"
            out.append(_outcome(name, OK, len(f), a.attempts, f"{len(f)} row(s) {span}; cached for this source object"))
    failed = [f"{ARCHIVE_FILES[a.scope]} ({a.error})" for a in archives if a.batch is None]
    missing = [a.scope for a in archives if a.batch is None]
    counts = frame.groupby(frame["trade_date"].dt.date).size() if len(frame) else {}
    for day in days:
        rows = int(counts.get(day, 0)) if len(frame) else 0
        if rows:
            reason = f"scope(s) {', '.join(missing)} missing: {'; '.join(failed)}" if failed else None
            out.append(_outcome(day.isoformat(), OK, rows, 0, reason))
        elif failed:
            out.append(_outcome(day.isoformat(), FAILED, 0, 0, f"no rows: CBOE archive(s) failed: {'; '.join(failed)}"))
        else:
            files = ", ".join(ARCHIVE_FILES.values())
            reason = f"CBOE published no statistics for {day.isoformat()} in its archive CSVs ({files})"
            out.append(_outcome(day.isoformat(), EMPTY, 0, 0, reason))
    return out


def _outcome(what: str, status: str, rows: int, attempts: int, reason: str | None) -> dict:
    return {
        "dataset": PUTCALL.name, "ticker": OUTCOME_PREFIX + what, "status": status, "rows": rows,
        "attempts": attempts, "reason": reason,
    }


def _rejects_in_window(rejects: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> list[bool]:
    """Refused archive rows asked for: date in the window, or no readable date at all."""
    keep = []
    for key in rejects["key"]:
        try:
            written = json.loads(key).get("trade_date") if isinstance(key, str) else None
        except ValueError:
            written = None
        day = pd.to_datetime(written, errors="coerce", format="mixed") if isinstance(written, str) else pd.NaT
        keep.append(bool(pd.isna(day) or first <= day <= last))
    return keep


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, curl_errors.CertificateVerifyError):
        return False
    # A bare RequestException is a read/write error on the connection.
    return isinstance(exc, _TRANSIENT_ERRORS) or type(exc) is curl_errors.RequestException


def _status(response: curl_requests.Response) -> str:
    """`HTTP 429 Too Many Requests`; HTTP/2 sends no reason phrase, so the standard one stands in."""
    reason = (response.reason or "").strip()
    if not reason:
        try:
            reason = HTTPStatus(response.status_code).phrase
        except ValueError:
            reason = ""
    return f"HTTP {response.status_code} {reason}".strip()


def _s3_missing(content: bytes) -> bool:
    return bool(_S3_MISSING.search(content[:4096]))


def _absent(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        text = value.strip().lower()
        return text == "" or text in NAN_SPELLINGS
    return False


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        return None


def _listing(doc: dict, limit: int = 8) -> str:
    keys = [str(k) for k in doc]
    return ", ".join(keys[:limit]) + (" ..." if len(keys) > limit else "") if keys else "none"


def _not_here(dataset: Dataset) -> Batch:
    return empty_batch(dataset, [f"cboe: CBOE provides only market put/call ratios here; no {dataset.name}"])


