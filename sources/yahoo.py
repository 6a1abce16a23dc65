"""The Yahoo Finance source, through yfinance 1.7: prices, option chains, valuation snapshots
and quarterly fundamentals in the raw contract, with every ticker's outcome recorded.

`YahooSource(session=None, policy=RetryPolicy(), max_workers=4, batch_size=50,
pause_between_batches_s=1.0, timeout_s=10.0, sleep=time.sleep, now=utc now)` implements the
Source protocol.
Each ticker is fetched on its own with `yf.Ticker(symbol, session=...)` (never `yf.download`,
which swallows errors and returns frames whose column order and types vary), so that each
failure can be told apart:

- `prices(tickers, start, end)`: `history(auto_adjust=False, actions=True, repair=False)`.
  Columns are taken by name: `close` is the close as traded (split-adjusted, not
  dividend-adjusted), `adj_close` is Adj Close (Close, with a note, if Yahoo left it out),
  `dividend` the Dividends column, `split_ratio` the Stock Splits value or 1.0 where yfinance
  writes 0; Capital Gains (ETFs) is ignored. `trade_date` is the exchange session date (the
  index is local midnight in the exchange's zone). Prices lose their float32 noise
  (`contract.float32_denoised`, then 6 decimals). A bar for a session not yet closed at `now()`
  is dropped with a note: an intraday price is not a close.
- `option_quotes` and `valuation_snapshots` are snapshots: Yahoo serves them only as of now,
  so they are served for one date, `calendar.last_completed_session(now())`, and only when
  the window includes it (otherwise an empty batch and the note `SNAPSHOT_ONLY`, which a
  backfill reads) and the market is not open (a quote taken mid-session is no close).
  Option chains: every listed expiry, calls and puts, every contract as delivered (stale or
  placeholder quotes are the checks' business); `snapshot_at` is when that expiry's chain
  came back. Valuation: market cap, shares outstanding, forward and trailing EPS and P/E,
  price-to-sales TTM, sector and industry from `Ticker.info`; a missing forward EPS of a
  stock is taken from the earnings-estimate table (next fiscal year's mean), with a note.
  Non-finite numbers (Yahoo's "Infinity" P/E) become NULL.
- `fundamentals`: the quarters of `get_income_stmt(freq="quarterly")` (Yahoo serves about
  five, dated by the month end). `report_date` comes from Yahoo's earnings dates
  (`get_earnings_dates`, a scrape of the earnings-calendar page): the first announcement
  within 91 days after the quarter's end. A quarter without one gets the session it was
  first seen, today's: never a guessed earlier date. Quarters are returned when their
  report_date is in [start, end]; their figures are Yahoo's current ones. `fiscal_period`
  is NULL (Yahoo does not label quarters).
- `putcall`: an empty batch with a note; market put/call ratios come from CBOE.

Failures are classified per ticker and dataset, and every ticker gets an outcome row
(`Batch.outcomes`: ok, empty, or failed with a reason naming the ticker and the cause, and
whether a later try may fetch it: `retryable` is false only for an unknown or delisted ticker):

- transient, retried, `failed` once the retries are used up: `YFRateLimitError` or HTTP 429;
  HTTP 5xx (which yfinance reports as a JSON parse error, a missing-prices error or an empty
  result); HTTP 401 (a rejected crumb); curl timeouts, connection and DNS errors; Yahoo's
  "Will be right back" page.
- terminal, `failed` at once, "unknown or delisted ticker": HTTP 404, `YFTickerMissingError`
  (`YFTzMissingError`, or `YFPricesMissingError` when Yahoo says delisted or not found).
- terminal, `failed` at once, "malformed response from Yahoo for TICKER (dataset)": JSON that
  does not parse (a truncated body), `KeyError`, `YFDataException`, other parse errors.
- `empty`, not a failure: a valid ticker with nothing for the request (no bars in the window,
  no listed expiries, no valuation fields, no quarterly statement, no report in the window).
  Yahoo answers an unknown symbol's option and fundamentals requests the same way as a
  valid one's without data, so there an unknown ticker is `empty` (prices and valuation
  say "unknown").

Transient failures are retried by `sources.retry.call_with_retry` (exponential backoff with
full jitter, `policy.max_attempts` tries); a terminal one is not retried. yfinance resends a
request once by itself after any status >= 400, so one 429 is absorbed before it is seen.
`attempts` in an outcome is the tries of the ticker's most-retried call. A night where some
tickers fail returns the others' rows, the failures as outcomes and a note naming them.

Request timeout
---------------
Every request to Yahoo, the cookie and crumb handshake included, gives up after `timeout_s`
seconds (`BELLWETHER_YAHOO_TIMEOUT_S`, default 10) and counts as a transient failure. yfinance
lets only `history()` take a timeout (its own default is 10 s); quoteSummary, options,
fundamentals and its handshake use 30 s. The session handed to yfinance sets the timeout of
every request it passes on, so a hung connection costs at most `timeout_s` per attempt.

How yfinance's errors are made visible
--------------------------------------
yfinance logs and returns empty results unless `yf.config.debug.hide_exceptions` is False.
That switch is process-global; it is turned off only while a yfinance call of this source
runs (reference-counted across threads) and restored after. Even then an HTTP 500 surfaces as
a JSON parse error (history, options, fundamentals) or an empty result, so the session
yfinance is given is `_StatusLog`: a curl_cffi Session that hands each request to the caller's
session and notes, per thread, the HTTP status of Yahoo's data responses. The status decides
first (429/5xx/401: retry; 404: unknown); the exception type second.

Concurrency and yfinance's shared state
---------------------------------------
Tickers run in a `ThreadPoolExecutor(max_workers)` in batches of `batch_size`, with
`sleep(pause_between_batches_s)` between batches (about 10 batches for an S&P 500 universe).
yfinance's `YfData` is a process-wide singleton shared by all threads:
- Its session is replaced by every `Ticker(session=...)`. All tickers here pass the same one;
  run one YahooSource per process at a time, since a second one's session would take over
  the first's requests (and their status log) mid-run.
- The cookie/crumb handshake runs under `YfData._cookie_lock`, so handshakes are serialised
  (and with no persisted cookie, fc.yahoo.com is fetched before each request, under the lock).
- Any response >= 400 on any thread switches the shared cookie strategy, dropping the crumb
  the other threads use; their next request may then get a 401 and switch it back. Keeping
  `max_workers` small bounds this churn; 401 is retried.
- After a 429 on getcrumb, yfinance keeps "Too Many Requests" as the crumb until the next
  response >= 400 resets it (a yfinance bug); the retries here get past it.
- `YfData.cache_get` caches Response objects, error responses included, for the life of the
  process (tz probe, past price windows, fundamentals). After any failed attempt this source
  clears that cache, or a retry would read the same cached HTTP 500.
- A failed fundamentals fetch sets `YfData.fundamentals_use_chunked` for the whole process
  (later fetches use 2 requests instead of 1).
- Only two timezone look-ups per process may fall back to `.info`
  (`yfinance.base._tz_info_fetch_ctr`); an unknown ticker raises an HTTP 404 for the first two
  and `YFTzMissingError` after: both are "unknown".
- `Ticker.info` marks itself fetched before fetching, so a Ticker whose info failed returns
  None ever after: each attempt here builds a fresh Ticker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pandas as pd
import yfinance as yf
from curl_cffi import requests as curl_requests
from curl_cffi.requests.exceptions import HTTPError, IncompleteRead, RequestException
from yfinance.data import YfData
from yfinance.exceptions import (
    YFDataException,
    YFException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTickerMissingError,
)

from sources import calendar
from sources.base import ticker_done
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
    DATASETS,
    ContractError,
    Dataset,
    conform,
    empty_batch,
    float32_denoised,
    outcome_frame,
)
from sources.retry import RetriesExhausted, RetryPolicy, Transient, call_with_retry

log = logging.getLogger(__name__)

PRICE_DECIMALS = 6
REPORT_WITHIN = dt.timedelta(days=91)  # an earnings date belongs to the quarter it follows within this
SNAPSHOT_ONLY = (
    "Yahoo serves {dataset} only as of now (the snapshot of session {session}); the window "
    "{start}..{end} does not include that session, and they cannot be backfilled from Yahoo"
)
VALUATION_FIELDS = {
    "marketCap": "market_cap",
    "sharesOutstanding": "shares_outstanding",
    "forwardEps": "forward_eps",
    "trailingEps": "trailing_eps",
    "forwardPE": "forward_pe",
    "trailingPE": "trailing_pe",
    "priceToSalesTrailing12Months": "price_to_sales_ttm",
}
INCOME_ROWS = {  # Yahoo's quarterly income-statement keys
    "TotalRevenue": "revenue",
    "CostOfRevenue": "cost_of_revenue",
    "GrossProfit": "gross_profit",
    "OperatingIncome": "operating_income",
    "NetIncome": "net_income",
    "DilutedEPS": "diluted_eps",
    "DilutedAverageShares": "diluted_shares",
}
_HANDSHAKE_HOSTS = ("fc.yahoo.com", "guce.yahoo.com", "consent.yahoo.com")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- failure classes ---------------------------------------------------------------------------


class UnknownTicker(Exception):
    """Yahoo does not know the ticker (or no longer lists it): terminal."""


class MalformedResponse(Exception):
    """Yahoo answered, but not in a shape yfinance could read: terminal."""


class NoData(Exception):
    """A valid ticker with nothing for the request: an `empty` outcome, not a failure."""


def _classified(exc: BaseException, status: int | None, symbol: str, dataset: str) -> BaseException:
    """The failure class of an exception raised by a yfinance call (see the module table)."""
    where = f"{symbol} ({dataset})"
    status = _status_of(exc) or status
    if isinstance(exc, YFRateLimitError) or status == 429:
        return Transient(f"rate limited by Yahoo (HTTP 429) for {where}")
    if status is not None and status >= 500:
        return Transient(f"HTTP {status} from Yahoo for {where}")
    if status == 401:  # yfinance re-minted the crumb once already; a later try starts afresh
        return Transient(f"HTTP 401 from Yahoo (crumb rejected) for {where}")
    if status == 404:
        return UnknownTicker(f"unknown or delisted ticker {where}: Yahoo answered HTTP 404 ({_short(exc)})")
    if _is_network_error(exc):
        return Transient(f"network error for {where}: {type(exc).__name__}: {_short(exc)}")
    if _is_down_page(exc):
        return Transient(f"Yahoo Finance is down ('Will be right back' page) for {where}")
    if isinstance(exc, YFPricesMissingError) and not _says_missing(exc.yahoo_reason):
        return NoData(f"no rows from Yahoo for {where}: {exc.rationale}")
    if isinstance(exc, YFTickerMissingError):
        return UnknownTicker(f"unknown or delisted ticker {where}: {exc}")
    if isinstance(exc, HTTPError):
        return MalformedResponse(f"HTTP {status} from Yahoo for {where}: {_short(exc)}")
    if isinstance(exc, (ValueError, KeyError, IndexError, TypeError, YFException)):
        return MalformedResponse(f"malformed response from Yahoo for {where}: {type(exc).__name__}: {_short(exc)}")
    return exc


def _from_status(status: int, symbol: str, dataset: str) -> BaseException:
    """A call that returned normally although Yahoo's last answer was an error (options, info)."""
    return _classified(HTTPError(f"HTTP Error {status}"), status, symbol, dataset)


def _is_network_error(exc: BaseException) -> bool:
    """A timeout, a refused or dropped connection, a failed DNS look-up: no HTTP answer at all.

    curl_cffi attaches a Response with status 0 to these; an HTTPError carries a real status."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if not isinstance(exc, RequestException):
        return False
    return not isinstance(exc, HTTPError) or isinstance(exc, IncompleteRead) or not _status_of(exc)


def _status_of(exc: BaseException) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None) or None


def _is_down_page(exc: BaseException) -> bool:
    """Yahoo's outage page, as history reports it or as a JSON parser meets it."""
    if isinstance(exc, YFDataException) and "CURRENTLY DOWN" in str(exc):
        return True
    return isinstance(exc, ValueError) and "will be right back" in str(getattr(exc, "doc", "")).lower()


def _says_missing(reason: str | None) -> bool:
    text = (reason or "").lower()
    return "delisted" in text or "not found" in text


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- yfinance plumbing -------------------------------------------------------------------------


class _StatusLog(curl_requests.Session):
    """The caller's session, seen through: every request goes to it unchanged, and the HTTP
    status of each of Yahoo's data responses is noted for the calling thread.

    yfinance needs a curl_cffi (or requests) Session instance, and passes it everything; the
    cookie jar is the caller's session's, and proxies yfinance sets are passed on per request.
    """

    def __init__(self, inner: curl_requests.Session, timeout_s: float):
        if not isinstance(inner, curl_requests.Session):
            raise TypeError(f"session must be a curl_cffi.requests.Session, not {type(inner).__name__}")
        if getattr(inner, "cache", None) is not None:
            raise ValueError("a caching session cannot be used: yfinance caches responses itself")
        if not timeout_s > 0:
            raise ValueError(f"the Yahoo request timeout must be positive, not {timeout_s!r}")
        self.inner = inner
        self.timeout_s = timeout_s
        self._seen = threading.local()
        super().__init__()

    @property
    def cookies(self):
        return self.inner.cookies

    @cookies.setter
    def cookies(self, value) -> None:
        self.inner.cookies = value

    def request(self, method, url, *args, **kwargs):
        if self.proxies and "proxies" not in kwargs and "proxy" not in kwargs:
            kwargs["proxies"] = self.proxies
        kwargs["timeout"] = self.timeout_s  # the one timeout for every request (yfinance asks 10 or 30 s)
        response = self.inner.request(method, url, *args, **kwargs)
        parts = urlsplit(str(url))
        if parts.hostname not in _HANDSHAKE_HOSTS and not parts.path.endswith("/getcrumb"):
            self._statuses().append(response.status_code)
        return response

    def begin(self) -> None:
        self._seen.statuses = []

    def last_status(self) -> int | None:
        statuses = self._statuses()
        return statuses[-1] if statuses else None

    def _statuses(self) -> list[int]:
        if not hasattr(self._seen, "statuses"):
            self._seen.statuses = []
        return self._seen.statuses


_raise_lock = threading.Lock()
_raise_depth = 0
_raise_saved: bool | None = None


@contextlib.contextmanager
def _yfinance_raises() -> Iterator[None]:
    """`yf.config.debug.hide_exceptions = False` while any call of this source runs."""
    global _raise_depth, _raise_saved
    with _raise_lock:
        if _raise_depth == 0:
            _raise_saved = yf.config.debug.hide_exceptions
            yf.config.debug.hide_exceptions = False
        _raise_depth += 1
    try:
        yield
    finally:
        with _raise_lock:
            _raise_depth -= 1
            if _raise_depth == 0:
                yf.config.debug.hide_exceptions = _raise_saved


@dataclasses.dataclass
class _Fetch:
    """One ticker's work for one dataset: its calls, their tries, and notes."""

    source: "YahooSource"
    dataset: str
    symbol: str
    attempts: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def call(self, fn: Callable[[], object]):
        """One yfinance call, classified and retried; returns its value."""
        tries = 0

        def attempt():
            nonlocal tries
            tries += 1
            return self.source._attempt(fn, self.symbol, self.dataset)

        try:
            value, _ = call_with_retry(attempt, self.source.policy, sleep=self.source.sleep)
        finally:
            self.attempts = max(self.attempts, tries)
        return value

    def ticker(self) -> yf.Ticker:
        return yf.Ticker(self.symbol, session=self.source.session)


@dataclasses.dataclass
class _Outcome:
    frame: pd.DataFrame | None
    status: str
    attempts: int
    reason: str | None
    notes: list[str]
    retryable: bool | None = None


# -- the source --------------------------------------------------------------------------------


class YahooSource:
    """Yahoo Finance through yfinance (see the module docstring)."""

    name = "yahoo"

    def __init__(
        self,
        session: curl_requests.Session | None = None,
        policy: RetryPolicy = RetryPolicy(),
        max_workers: int = 4,
        batch_size: int = 50,
        pause_between_batches_s: float = 1.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = _utc_now,
    ):
        if max_workers < 1 or batch_size < 1:
            raise ValueError("max_workers and batch_size must be at least 1")
        self.session = _StatusLog(session if session is not None else curl_requests.Session(impersonate="chrome"), timeout_s)
        self.policy = policy
        self.max_workers = max_workers
        self.batch_size = batch_size
        self.pause_between_batches_s = pause_between_batches_s
        self.sleep = sleep
        self.now = now

    # -- the Source protocol ---------------------------------------------------------------------

    def backfill_refusal(self, dataset: str) -> str | None:
        """Why this dataset cannot be loaded for past dates (None: it can)."""
        if DATASETS[dataset].snapshot_only:
            return (
                f"Yahoo serves {dataset} only as of now: its history exists only as the nightly "
                "snapshots taken so far, so it cannot be backfilled from Yahoo. Saved snapshots can be "
                f"loaded with --source files --path DIR --datasets {dataset}"
            )
        return None

    def prices(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        if end < start:
            return empty_batch(PRICES, [f"empty window {start}..{end}: nothing asked for"])
        last = calendar.last_completed_session(self.now())
        return self._run(PRICES, tickers, lambda f: self._price_rows(f, start, end, last))

    def option_quotes(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        session, refusal = self._snapshot_session(OPTION_QUOTES, start, end)
        if refusal:
            return empty_batch(OPTION_QUOTES, [refusal])
        return self._run(OPTION_QUOTES, tickers, lambda f: self._option_rows(f, session))

    def valuation_snapshots(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        session, refusal = self._snapshot_session(VALUATION, start, end)
        if refusal:
            return empty_batch(VALUATION, [refusal])
        return self._run(VALUATION, tickers, lambda f: self._valuation_rows(f, session))

    def fundamentals(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        today = calendar.last_completed_session(self.now())
        batch = self._run(FUNDAMENTALS, tickers, lambda f: self._fundamental_rows(f, start, end, today))
        if end < today and batch.rows:
            batch.notes.append(
                f"Yahoo serves fundamentals as of now: the figures for reports in "
                f"{start}..{end} are Yahoo's current ones (later restatements included)"
            )
        return batch

    def putcall(self, start: dt.date, end: dt.date) -> Batch:
        return empty_batch(PUTCALL, [
            "Yahoo Finance has no market-wide put/call ratios: they come from CBOE (the cboe source)"
        ])

    # -- per dataset -----------------------------------------------------------------------------

    def _price_rows(self, fetch: _Fetch, start: dt.date, end: dt.date, last: dt.date) -> pd.DataFrame:
        def history() -> pd.DataFrame:
            frame = fetch.ticker().history(
                start=start.isoformat(), end=(end + dt.timedelta(days=1)).isoformat(), interval="1d",
                auto_adjust=False, actions=True, repair=False, prepost=False, keepna=False,
            )
            return _price_frame(frame, fetch)

        rows = fetch.call(history)
        rows = rows[(rows["trade_date"] >= pd.Timestamp(start)) & (rows["trade_date"] <= pd.Timestamp(end))]
        unfinished = rows["trade_date"] > pd.Timestamp(last)
        if unfinished.any():
            fetch.notes.append(
                f"{fetch.symbol}: dropped the bar of {', '.join(str(d.date()) for d in rows.loc[unfinished, 'trade_date'])}: "
                f"that session had not closed at {self.now():%Y-%m-%d %H:%M} UTC"
            )
            rows = rows[~unfinished]
        if rows.empty:
            raise NoData(f"no bars from Yahoo for {fetch.symbol} ({PRICES.name}) in {start}..{min(end, last)}")
        return rows

    def _option_rows(self, fetch: _Fetch, snapshot_date: dt.date) -> pd.DataFrame:
        ticker = fetch.ticker()  # one Ticker: it remembers the expiry list between calls
        expiries = fetch.call(lambda: ticker.options)
        if not expiries:
            raise NoData(f"Yahoo lists no option expiries for {fetch.symbol} (no listed options, or an unknown symbol)")
        chains = [
            fetch.call(lambda e=expiry: _chain_frame(ticker.option_chain(e), e, self.now(), snapshot_date))
            for expiry in expiries
        ]
        rows = pd.concat(chains, ignore_index=True)
        if rows.empty:
            raise NoData(f"Yahoo listed {len(expiries)} expiries for {fetch.symbol} but no contracts in them")
        return rows

    def _valuation_rows(self, fetch: _Fetch, snapshot_date: dt.date) -> pd.DataFrame:
        info = fetch.call(lambda: _info(fetch.ticker()))
        not_finite = [key for key in VALUATION_FIELDS if _is_nonfinite(info.get(key))]
        if not_finite:
            fetch.notes.append(f"{fetch.symbol}: {', '.join(not_finite)} not a finite number at Yahoo, stored as NULL")
        row = {column: _number(info.get(key)) for key, column in VALUATION_FIELDS.items()}
        if row["forward_eps"] is None and info.get("quoteType") == "EQUITY":
            row["forward_eps"] = self._forward_eps_estimate(fetch)
        row |= {"sector": info.get("sector"), "industry": info.get("industry")}
        if all(v is None for v in row.values()):
            raise NoData(f"Yahoo has no valuation fields for {fetch.symbol} (quote type {info.get('quoteType', 'unknown')})")
        return pd.DataFrame([{"snapshot_date": snapshot_date, **row}])

    def _forward_eps_estimate(self, fetch: _Fetch) -> float | None:
        try:
            table = fetch.call(lambda: fetch.ticker().earnings_estimate)
        except Exception as exc:  # the estimate only fills a gap: the snapshot stands without it
            fetch.notes.append(f"{fetch.symbol}: no forwardEps and no earnings estimate ({_short(_reason(exc))})")
            return None
        value = _number(table.loc["+1y", "avg"]) if "+1y" in table.index and "avg" in table.columns else None
        if value is not None:
            fetch.notes.append(f"{fetch.symbol}: forward_eps from the earnings estimate (next fiscal year's mean)")
        return value

    def _fundamental_rows(self, fetch: _Fetch, start: dt.date, end: dt.date, today: dt.date) -> pd.DataFrame:
        quarters = fetch.call(lambda: _quarters(fetch.ticker().get_income_stmt(freq="quarterly", pretty=False), fetch))
        announced = self._earnings_dates(fetch)
        quarters["report_date"] = [_report_date(p.date(), announced, today) for p in quarters["period_end"]]
        first_seen = [p.date() for p, r in zip(quarters["period_end"], quarters["report_date"]) if r is None]
        if first_seen:
            fetch.notes.append(
                f"{fetch.symbol}: no earnings date from Yahoo for the quarter(s) ending "
                f"{', '.join(map(str, first_seen))}: report_date is {today}, the session they were first seen"
            )
            quarters["report_date"] = quarters["report_date"].map(lambda r: today if r is None else r)
        reported = pd.to_datetime(quarters["report_date"])
        in_window = quarters[(reported >= pd.Timestamp(start)) & (reported <= pd.Timestamp(end))]
        if in_window.empty:
            raise NoData(
                f"none of the {len(quarters)} quarter(s) Yahoo serves for {fetch.symbol} was reported in {start}..{end}"
            )
        return in_window

    def _earnings_dates(self, fetch: _Fetch) -> list[dt.date]:
        """Announcement dates (exchange-local), or [] when Yahoo has none for the ticker.

        Rate limits and outages fail the ticker (retrying tomorrow gives the true dates);
        a page without a table or one yfinance cannot read counts as "Yahoo has none".
        """
        try:
            table = fetch.call(lambda: fetch.ticker().get_earnings_dates())
        except (UnknownTicker, MalformedResponse, NoData) as exc:
            fetch.notes.append(f"{fetch.symbol}: Yahoo's earnings dates could not be read ({_short(exc)})")
            return []
        if table is None or table.empty:
            return []
        return sorted({ts.date() for ts in pd.DatetimeIndex(table.index)})

    # -- machinery -------------------------------------------------------------------------------

    def _snapshot_session(self, dataset: Dataset, start: dt.date, end: dt.date) -> tuple[dt.date | None, str | None]:
        now = self.now()
        session = calendar.last_completed_session(now)
        if not start <= session <= end:
            return None, SNAPSHOT_ONLY.format(dataset=dataset.name, session=session, start=start, end=end)
        if _market_open(now):
            return None, (
                f"Yahoo serves {dataset.name} only as of now, and the NYSE is open at {now:%Y-%m-%d %H:%M} UTC: "
                f"a snapshot taken now would not be the close of {session}; take it after the close"
            )
        return session, None

    def _attempt(self, fn: Callable[[], object], symbol: str, dataset: str):
        self.session.begin()
        try:
            with _yfinance_raises():
                value = fn()
        except NoData:
            status = self.session.last_status()
            if status is not None and status >= 400:  # nothing, because Yahoo failed
                YfData.cache_get.cache_clear()
                raise _from_status(status, symbol, dataset) from None
            raise
        except Exception as exc:
            YfData.cache_get.cache_clear()  # it caches error responses too
            raise _classified(exc, self.session.last_status(), symbol, dataset) from exc
        status = self.session.last_status()
        if status is not None and status >= 400:
            YfData.cache_get.cache_clear()
            raise _from_status(status, symbol, dataset)
        return value

    def _run(self, dataset: Dataset, tickers: Sequence[str] | None, rows: Callable[[_Fetch], pd.DataFrame]) -> Batch:
        symbols = _symbols(tickers)
        outcomes: list[_Outcome] = []

        def one(symbol: str) -> _Outcome:
            outcome = self._fetch_one(dataset, symbol, rows)
            ticker_done(dataset.name, symbol)
            return outcome

        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="yahoo") as pool:
            for i in range(0, len(symbols), self.batch_size):
                if i:
                    self.sleep(self.pause_between_batches_s)
                chunk = symbols[i : i + self.batch_size]
                outcomes += pool.map(one, chunk)
        return _assemble(dataset, symbols, outcomes)

    def _fetch_one(self, dataset: Dataset, symbol: str, rows: Callable[[_Fetch], pd.DataFrame]) -> _Outcome:
        fetch = _Fetch(self, dataset.name, symbol)
        try:
            frame = rows(fetch)
        except NoData as exc:
            return _Outcome(None, EMPTY, fetch.attempts, str(exc), fetch.notes)
        except Exception as exc:
            reason = _reason(exc)
            log.warning("yahoo %s %s failed: %s", dataset.name, symbol, reason)
            return _Outcome(None, FAILED, fetch.attempts, reason, fetch.notes, retryable=not isinstance(exc, UnknownTicker))
        return _Outcome(frame.assign(ticker=symbol), OK, fetch.attempts, None, fetch.notes)


# -- shaping yfinance's frames -----------------------------------------------------------------


def _price_frame(history: pd.DataFrame, fetch: _Fetch) -> pd.DataFrame:
    if "Close" not in history.columns:
        raise KeyError(f"no Close column in Yahoo's history (columns: {', '.join(map(str, history.columns))})")
    if "Adj Close" not in history.columns:
        fetch.notes.append(f"{fetch.symbol}: Yahoo sent no Adj Close; adj_close is the close")

    def column(name: str, default: float | None = None) -> pd.Series:
        if name in history.columns:
            return pd.Series(history[name].to_numpy(dtype="float64"))
        return pd.Series(default, index=range(len(history)), dtype="float64")

    splits = column("Stock Splits", 0.0)
    frame = pd.DataFrame({
        "trade_date": _session_dates(history.index),
        "open": column("Open"),
        "high": column("High"),
        "low": column("Low"),
        "close": column("Close"),
        "adj_close": column("Adj Close") if "Adj Close" in history.columns else column("Close"),
        "volume": column("Volume"),
        "dividend": column("Dividends", 0.0).fillna(0.0),
        "split_ratio": splits.where(splits.notna() & (splits != 0), 1.0),
    })
    for c in ("open", "high", "low", "close", "adj_close", "dividend"):
        frame[c] = float32_denoised(frame[c]).round(PRICE_DECIMALS)
    return frame


def _session_dates(index: pd.Index) -> pd.Series:
    """The exchange session date: yfinance stamps daily bars at local midnight in the exchange's zone."""
    stamps = pd.DatetimeIndex(index)
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)
    return pd.Series(stamps.normalize().astype("datetime64[ns]"))


def _chain_frame(chain, expiry: str, taken_at: dt.datetime, snapshot_date: dt.date) -> pd.DataFrame:
    """One expiry's calls and puts as delivered, in the contract's names."""
    parts = []
    for kind, table in (("call", chain.calls), ("put", chain.puts)):
        if table is None or table.empty:
            continue
        table = table.reset_index(drop=True)
        parts.append(pd.DataFrame({
            "contract_symbol": table["contractSymbol"].astype(object),
            "option_type": kind,
            "expiration_date": expiry,
            "strike": table["strike"].astype("float64"),
            "last_price": table["lastPrice"].astype("float64"),
            "bid": table["bid"].astype("float64"),
            "ask": table["ask"].astype("float64"),
            "volume": table["volume"].astype("float64"),
            "open_interest": table["openInterest"].astype("float64"),
            "implied_volatility": table["impliedVolatility"].astype("float64"),
            "last_trade_at": pd.to_datetime(table["lastTradeDate"], utc=True),
        }))
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    frame["snapshot_at"] = pd.Timestamp(taken_at).tz_convert("UTC")
    frame["snapshot_date"] = snapshot_date
    return frame


def _info(ticker: yf.Ticker) -> dict:
    info = ticker.info
    if not isinstance(info, dict):
        raise TypeError(f"Ticker.info returned {type(info).__name__}, not a dict")
    return info


def _quarters(statement: pd.DataFrame, fetch: _Fetch) -> pd.DataFrame:
    if statement is None or statement.empty:
        raise NoData(f"Yahoo serves no quarterly income statement for {fetch.symbol}")
    table = statement.reindex(list(INCOME_ROWS)).T  # one row per quarter, columns in Yahoo's keys
    frame = table.rename(columns=INCOME_ROWS).astype("float64")
    frame.insert(0, "period_end", pd.to_datetime(table.index).normalize())
    frame["fiscal_period"] = None
    frame = frame[frame[list(INCOME_ROWS.values())].notna().any(axis=1)]  # a date with none of our rows
    if frame.empty:
        raise NoData(f"Yahoo's quarterly income statement for {fetch.symbol} has none of {', '.join(INCOME_ROWS)}")
    return frame.sort_values("period_end", ignore_index=True)


def _report_date(period_end: dt.date, announced: list[dt.date], today: dt.date) -> dt.date | None:
    """The first announcement after the quarter ended (within REPORT_WITHIN), if Yahoo has one."""
    for day in announced:
        if period_end < day <= period_end + REPORT_WITHIN:
            return day if day <= today else None
    return None


# -- small helpers -----------------------------------------------------------------------------


def _symbols(tickers: Sequence[str] | None) -> list[str]:
    if tickers is None:
        raise ContractError("the yahoo source needs the tickers to fetch: Yahoo has no list of every ticker")
    if isinstance(tickers, str):
        tickers = [tickers]
    seen: dict[str, None] = {}
    for t in tickers:
        symbol = str(t).strip().upper()
        if symbol:
            seen.setdefault(symbol, None)
    return list(seen)


def _number(value) -> float | None:
    """A finite number, or None (Yahoo writes "Infinity" for a P/E on zero earnings)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_nonfinite(value) -> bool:
    return value is not None and _number(value) is None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RetriesExhausted):
        return f"{exc.last}; gave up after {exc.attempts} attempts"
    if isinstance(exc, (Transient, UnknownTicker, MalformedResponse)):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {_short(exc)}"


def _market_open(now: dt.datetime) -> bool:
    moment = pd.Timestamp(now).tz_convert("UTC")
    day = pd.Timestamp(moment.tz_convert(calendar.MARKET_TZ).date())
    cal = calendar.nyse()
    return bool(cal.is_session(day)) and cal.session_open(day) <= moment < cal.session_close(day)


def _assemble(dataset: Dataset, symbols: list[str], outcomes: list[_Outcome]) -> Batch:
    frames = [o.frame.assign(_source_ref=s) for s, o in zip(symbols, outcomes) if o.frame is not None]
    if frames:
        batch = conform(dataset, pd.concat(frames, ignore_index=True))
        batch.frame = batch.frame.sort_values(list(dataset.key), ignore_index=True)
    else:
        batch = empty_batch(dataset)
    batch.notes += [n for o in outcomes for n in o.notes]
    batch.outcomes = outcome_frame(
        {
            "dataset": dataset.name, "ticker": s, "status": o.status,
            "rows": 0 if o.frame is None else len(o.frame), "attempts": o.attempts, "reason": o.reason,
            "retryable": o.retryable,
        }
        for s, o in zip(symbols, outcomes)
    )
    failed = [(s, o.reason) for s, o in zip(symbols, outcomes) if o.status == FAILED]
    if failed:
        batch.notes.append(
            f"partial: {len(failed)} of {len(symbols)} ticker(s) failed: "
            + "; ".join(f"{s} ({r})" for s, r in failed)
        )
    return batch
