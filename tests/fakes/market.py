"""A fake Yahoo Finance market of any size, served through `FakeYahooSession` (tests/fakes/yahoo.py).

`FakeMarket(source, today=...)` answers Yahoo's data routes for every ticker of a
`sources.sample.SampleSource` (the deterministic synthetic market of the sample source and the
benchmarks), as Yahoo would answer them after the close of `today`. The bodies have the shapes
of the canned fixtures in tests/fixtures/yahoo, so yfinance's own parsers read them:

- chart: the sample's bars as Yahoo sends them (float32 prices written as doubles, bars
  stamped at the 09:30 New York open, dividends and splits as events), cut to the request's
  [period1, period2); `range=1d` (the timezone probe) gets the last bar;
- options: without `date`, the expiration list (every expiry the sample lists on `today`: 4
  weeklies and 3 monthlies for a stock or an index or sector fund) and the first expiry's
  chain; with `date`, that expiry's calls and puts; a ticker without options lists none;
- quoteSummary (info's modules) and the v7 quote: the sample's valuation snapshot of `today`
  (market cap, shares, forward and trailing EPS and P/E, price to sales, sector, industry);
  funds and indexes carry no valuation fields, as at Yahoo;
- timeseries: the last five quarters the sample reported by `today` (revenue, cost of
  revenue, gross profit, operating and net income, diluted EPS and shares), dated by the
  quarter's end, every other requested type as a meta-only entry;
- earnings: the earnings-calendar page with the last eight report dates and the next one.

How real it is, all seeded (a request's fate depends on the seed, the request and how often
it was asked before, never on which thread asked first, so a night is repeatable):
- `latency_s=(lo, hi)`: every request, the cookie and crumb handshake included, waits a
  uniform [lo, hi) seconds (really slept) before its answer;
- `rate_limit_share`: that share of data requests is answered HTTP 429 "Too Many Requests";
- `timeout_share`: that share never answers: curl_cffi's Timeout is raised after
  `timeout_wait_s` seconds (None: the request's own timeout, as a hung connection costs);
- `delisted`: tickers Yahoo no longer knows: chart answers 404 "No data found, symbol may
  be delisted", quoteSummary 404 "Quote not found", the v7 quote an empty result, options no
  expiries, timeseries meta-only entries, the earnings page no table;
- `broken`: tickers whose every data request fails with an HTTP 500 page, until `heal()`.
The shares are per request: unlike a real Yahoo, this one does not rate-limit harder when it is
pushed harder, so more workers never cost more 429s here.

`requests(trail)` and `retries(trail)` count a session's trail: a retry is a data request made
again (same route, symbol and parameters, the crumb and the time-dependent period bounds of
the fundamentals aside) after a failed answer to it, whether yfinance resent it by itself or
the adapter tried again.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import html
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from sources import calendar
from sources.sample import OPTION_ROLES, SampleSource

NEW_YORK = ZoneInfo(calendar.MARKET_TZ)
DATA_ROUTES = ("chart", "options", "quoteSummary", "quote", "timeseries", "earnings")
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
QUARTERS_SERVED = 5        # Yahoo's quarterly statement holds about five quarters
EARNINGS_ROWS = 8          # report dates on the earnings page before the next one
PRICE_SPAN_SESSIONS = 40   # bars kept ready by warm(); a window outside them is generated on demand
INCOME_TYPES = {
    "quarterlyTotalRevenue": "revenue",
    "quarterlyCostOfRevenue": "cost_of_revenue",
    "quarterlyGrossProfit": "gross_profit",
    "quarterlyOperatingIncome": "operating_income",
    "quarterlyNetIncome": "net_income",
    "quarterlyDilutedEPS": "diluted_eps",
    "quarterlyDilutedAverageShares": "diluted_shares",
}
INSTRUMENT = {"stock": "EQUITY", "volatility": "INDEX"}  # every other role is a fund
# Query parameters that are not part of what is asked: the crumb changes when yfinance
# re-mints it, and the fundamentals' bounds follow the wall clock.
_VOLATILE_PARAMS = ("crumb", "period1", "period2")


def f32(x: float) -> float:
    """A price as Yahoo serves it: the float32 nearest the price, written as a double."""
    return float(np.float32(x))


def bar_start(day: dt.date) -> int:
    """Yahoo stamps a daily US bar with its 09:30 New York open (epoch seconds)."""
    return int(dt.datetime(day.year, day.month, day.day, 9, 30, tzinfo=NEW_YORK).timestamp())


def utc_midnight(day: dt.date) -> int:
    """How Yahoo writes an expiry or a quarter's end: 00:00 UTC of the day (epoch seconds)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _number(value) -> float | None:
    """A JSON number, or None where the sample has none (Yahoo leaves the field out)."""
    if value is None or value is pd.NA:
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _unit(*parts: object) -> float:
    """A uniform [0, 1) fixed by `parts` alone: the same request gets the same draw in any thread order."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def request_key(route: str, symbol: str, query: dict) -> tuple:
    """What a data request asks for, whatever crumb or wall-clock bounds it carries."""
    kept = tuple(sorted((k, v) for k, v in query.items() if k not in _VOLATILE_PARAMS))
    bounds = tuple(sorted(k for k in query if k in ("period1", "period2")))
    return (route, symbol, kept, bounds)


@dataclasses.dataclass
class _Ticker:
    """One ticker's answers, generated once from the sample market."""

    role: str
    name: str
    prices: pd.DataFrame                 # trade_date, open, ..., split_ratio over the warm span
    chains: dict[int, dict]              # expiry (00:00 UTC epoch) -> {"calls": [...], "puts": [...]}
    spot: float | None
    valuation: dict | None               # the sample's snapshot of `today`
    quarters: pd.DataFrame               # reported by `today`, oldest first
    report_days: list[dt.date]           # past reports (up to today) and the next one


class FakeMarket:
    """Yahoo's data routes for a sample market (see the module docstring)."""

    def __init__(
        self,
        source: SampleSource,
        *,
        today: dt.date,
        seed: int = 0,
        latency_s: tuple[float, float] = (0.0, 0.0),
        rate_limit_share: float = 0.0,
        timeout_share: float = 0.0,
        timeout_wait_s: float | None = 0.0,
        delisted: Iterable[str] = (),
        broken: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not calendar.is_session(today):
            raise ValueError(f"the fake market's today {today} is not an NYSE session")
        lo, hi = latency_s
        if not 0 <= lo <= hi:
            raise ValueError(f"latency_s {latency_s}: want 0 <= low <= high")
        if not (0 <= rate_limit_share and 0 <= timeout_share and rate_limit_share + timeout_share <= 1):
            raise ValueError("rate_limit_share and timeout_share must be shares (0..1) adding up to at most 1")
        known = set(source.tickers)
        unknown = sorted({t.upper() for t in (*delisted, *broken)} - known)
        if unknown:
            raise ValueError(f"delisted or broken ticker(s) {', '.join(unknown)} are not in the sample market's universe")
        self.source = source
        self.today = today
        self.seed = seed
        self.latency_s = (float(lo), float(hi))
        self.rate_limit_share = rate_limit_share
        self.timeout_share = timeout_share
        self.timeout_wait_s = timeout_wait_s
        self.delisted = {t.upper() for t in delisted}
        self.broken = {t.upper() for t in broken}
        self.sleep = sleep
        self._rows = {r.ticker: r for r in source.universe.itertuples(index=False)}
        self._tickers: dict[str, _Ticker] = {}
        self._asked: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    # -- what the tests and the benchmark read -----------------------------------------------------

    @property
    def tickers(self) -> list[str]:
        return self.source.tickers

    def heal(self) -> None:
        """Yahoo answers the broken tickers again (their outage is over)."""
        self.broken = set()

    def warm(self, tickers: Sequence[str] | None = None) -> None:
        """Generate every ticker's answers now, in a few bulk calls to the sample market, so
        that serving a request costs no generation (the benchmark times the night, not this)."""
        wanted = [t for t in (tickers or self.tickers) if t not in self._tickers]
        if not wanted:
            return
        built = self._build(wanted)
        with self._lock:
            for t, answers in built.items():
                self._tickers.setdefault(t, answers)

    def cboe_bodies(self, start: dt.date, end: dt.date) -> dict[str, bytes]:
        """CBOE's daily market statistics for the sessions in [start, end], from the sample's
        put/call ratios, at their URLs (for `FakeCboeSession`)."""
        from tests.fakes.cboe import daily_url

        frame = self.source.putcall(start, end).frame
        out = {}
        for day, rows in frame.groupby("trade_date"):
            out[daily_url(day.date())] = _cboe_body(rows)
        return out

    # -- the transport's side (FakeYahooSession calls these) ---------------------------------------

    def wait(self, route: str, symbol: str, query: dict) -> None:
        """A request's time on the wire."""
        lo, hi = self.latency_s
        if hi > 0:
            n = self._count(("latency", *request_key(route, symbol, query)))
            self.sleep(lo + (hi - lo) * _unit(self.seed, "latency", route, symbol, request_key(route, symbol, query), n))

    def fate(self, route: str, symbol: str, query: dict) -> int | str | None:
        """How a data request fails: an HTTP status, "timeout", or None (it is answered)."""
        if route not in DATA_ROUTES:
            return None
        key = request_key(route, symbol, query)
        n = self._count(key)
        if symbol in self.broken:
            return 500
        u = _unit(self.seed, "fate", key, n)
        if u < self.rate_limit_share:
            return 429
        if u < self.rate_limit_share + self.timeout_share:
            return "timeout"
        return None

    def hang(self, timeout) -> None:
        """A request that never answers, as the client's timeout ends it."""
        wait = self.timeout_wait_s
        if wait is None:
            wait = float(timeout) if isinstance(timeout, (int, float)) else 30.0
        if wait > 0:
            self.sleep(wait)

    def answer(self, route: str, symbol: str, query: dict) -> tuple[int, dict | str]:
        """The body Yahoo answers a data request with: (status, JSON dict or HTML text)."""
        if symbol in self.delisted or symbol not in self._rows:
            return _unknown(route, symbol, query)
        t = self._ticker(symbol)
        if route == "chart":
            return 200, self._chart(symbol, t, query)
        if route == "options":
            return 200, self._options(symbol, t, query)
        if route == "quoteSummary":
            return _summary(symbol, t, set(query.get("modules", "").split(",")))
        if route == "quote":
            return 200, {"quoteResponse": {"result": [_quote_row(symbol, t)], "error": None}}
        if route == "timeseries":
            return 200, _timeseries(symbol, t, [x for x in query.get("type", "").split(",") if x])
        if route == "earnings":
            return 200, _earnings_page(symbol, t)
        raise ValueError(f"not a data route: {route}")

    # -- counting a trail --------------------------------------------------------------------------

    @staticmethod
    def retries(trail) -> int:
        failed: set[tuple] = set()
        count = 0
        for call in trail:
            if call.route not in DATA_ROUTES:
                continue
            key = request_key(call.route, call.symbol, call.query)
            if key in failed:
                count += 1
            if isinstance(call.status, str) or (call.status >= 400):
                failed.add(key)
            else:
                failed.discard(key)
        return count

    # -- generation --------------------------------------------------------------------------------

    def _count(self, key: tuple) -> int:
        with self._lock:
            n = self._asked[key]
            self._asked[key] = n + 1
        return n

    def _ticker(self, symbol: str) -> _Ticker:
        with self._lock:
            found = self._tickers.get(symbol)
        if found is None:
            self.warm([symbol])
            with self._lock:
                found = self._tickers[symbol]
        return found

    def _build(self, tickers: list[str]) -> dict[str, _Ticker]:
        src, today = self.source, self.today
        span_start = calendar.sessions_back(today, PRICE_SPAN_SESSIONS)
        prices = _by_ticker(src.prices(tickers, span_start, today).frame)
        options = _by_ticker(src.option_quotes(tickers, today, today).frame)
        valuation = _by_ticker(src.valuation_snapshots(tickers, today, today).frame)
        # Two years of reports, and the next one after today (the earnings page lists it).
        reports = _by_ticker(src.fundamentals(tickers, today - dt.timedelta(days=730), today + dt.timedelta(days=120)).frame)
        out = {}
        for t in tickers:
            row = self._rows[t]
            bars = prices.get(t, pd.DataFrame())
            spot = float(bars["close"].iloc[-1]) if len(bars) else None
            chains = _chains(options[t], spot) if t in options and row.role in OPTION_ROLES else {}
            snap = valuation.get(t)
            quarters = reports.get(t, pd.DataFrame(columns=["report_date"]))
            reported = quarters[quarters["report_date"] <= pd.Timestamp(today)] if len(quarters) else quarters
            report_days = sorted({d.date() for d in quarters["report_date"]}) if len(quarters) else []
            past = [d for d in report_days if d <= today][-EARNINGS_ROWS:]
            future = [d for d in report_days if d > today][:1]
            out[t] = _Ticker(
                role=row.role, name=row.name, prices=bars.reset_index(drop=True), chains=chains, spot=spot,
                valuation=None if snap is None or snap.empty else snap.iloc[0].to_dict(),
                quarters=reported.tail(QUARTERS_SERVED).reset_index(drop=True), report_days=past + future,
            )
        return out

    def _chart(self, symbol: str, t: _Ticker, query: dict) -> dict:
        if "period1" in query:
            lo, hi = int(query["period1"]), int(query["period2"])
            first = dt.datetime.fromtimestamp(lo, NEW_YORK).date()
            last = dt.datetime.fromtimestamp(hi - 1, NEW_YORK).date()
            bars = self._bars(symbol, t, first, min(last, self.today))
            bars = bars[[lo <= bar_start(d) < hi for d in bars["trade_date"].dt.date]] if len(bars) else bars
        else:  # range=1d: the timezone probe; the last bar is enough
            bars = t.prices.tail(1)
        return _chart_body(symbol, t, bars, self.today)

    def _bars(self, symbol: str, t: _Ticker, first: dt.date, last: dt.date) -> pd.DataFrame:
        if last < first:
            return t.prices.head(0)
        have = t.prices["trade_date"]
        if len(have) and have.iloc[0].date() <= first:
            return t.prices[(have >= pd.Timestamp(first)) & (have <= pd.Timestamp(last))]
        return self.source.prices([symbol], first, last).frame  # a first history: further back than warm() keeps

    def _options(self, symbol: str, t: _Ticker, query: dict) -> dict:
        expiries = sorted(t.chains)
        result = {
            "underlyingSymbol": symbol, "expirationDates": expiries,
            "strikes": sorted({c["strike"] for chain in t.chains.values() for c in chain["calls"] + chain["puts"]}),
            "hasMiniOptions": False, "quote": _quote_row(symbol, t), "options": [],
        }
        wanted = int(query["date"]) if "date" in query else (expiries[0] if expiries else None)
        if wanted in t.chains:
            chain = t.chains[wanted]
            result["options"] = [{"expirationDate": wanted, "hasMiniOptions": False, "calls": chain["calls"], "puts": chain["puts"]}]
        return {"optionChain": {"result": [result], "error": None}}


def pick_failing(universe: pd.DataFrame, n_delisted: int, n_broken: int) -> tuple[set[str], set[str]]:
    """The last synthetic stocks of a universe: `n_delisted` delisted, then `n_broken` broken."""
    synthetic = [t for t in universe["ticker"] if t.startswith("SYN")]
    if n_delisted + n_broken > len(synthetic):
        raise ValueError(f"{n_delisted} delisted and {n_broken} broken tickers need that many synthetic stocks; "
                         f"the universe has {len(synthetic)}")
    chosen = synthetic[len(synthetic) - n_delisted - n_broken:]
    return set(chosen[:n_delisted]), set(chosen[n_delisted:])


def _by_ticker(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if frame.empty:
        return {}
    return {str(t): rows.drop(columns="ticker") for t, rows in frame.groupby("ticker", sort=False)}


def _unknown(route: str, symbol: str, query: dict) -> tuple[int, dict | str]:
    """How Yahoo answers a symbol it does not know."""
    if route == "chart":
        return 404, {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}}
    if route == "quoteSummary":
        return 404, {"quoteSummary": {"result": None, "error": {"code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}}}
    if route == "options":
        return 200, {"optionChain": {"result": [], "error": None}}
    if route == "quote":
        return 200, {"quoteResponse": {"result": [], "error": None}}
    if route == "timeseries":  # every type asked for, each without data
        return 200, {"timeseries": {"result": [
            {"meta": {"symbol": [symbol], "type": [kind]}} for kind in query.get("type", "").split(",") if kind
        ], "error": None}}
    return 200, "<!DOCTYPE html><html><body><p>We couldn't find any results.</p></body></html>"


def _chart_body(symbol: str, t: _Ticker, bars: pd.DataFrame, today: dt.date) -> dict:
    last_close = t.prices["close"].iloc[-1] if len(t.prices) else None
    offset = int(dt.datetime(today.year, today.month, today.day, 12, tzinfo=NEW_YORK).utcoffset().total_seconds())
    meta = {
        "currency": "USD", "symbol": symbol, "exchangeName": "NYQ", "fullExchangeName": "NYSE",
        "instrumentType": INSTRUMENT.get(t.role, "ETF"), "firstTradeDate": 631290600,
        "regularMarketTime": int(calendar.session_close(today).timestamp()), "hasPrePostMarketData": True,
        "gmtoffset": offset, "timezone": "EDT" if offset == -14400 else "EST",
        "exchangeTimezoneName": calendar.MARKET_TZ, "regularMarketPrice": None if last_close is None else f32(last_close),
        "longName": t.name, "shortName": t.name, "priceHint": 2, "dataGranularity": "1d", "range": "",
        "validRanges": VALID_RANGES,
    }
    result: dict = {"meta": meta}
    if bars.empty:  # a valid symbol with nothing in the window: meta and empty indicators
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return {"chart": {"result": [result], "error": None}}
    days = list(bars["trade_date"].dt.date)
    stamps = [bar_start(d) for d in days]
    volume = [None if v is pd.NA or v != v else int(v) for v in bars["volume"]]
    result["timestamp"] = stamps
    result["indicators"] = {
        "quote": [{
            "open": [f32(x) for x in bars["open"]], "high": [f32(x) for x in bars["high"]],
            "low": [f32(x) for x in bars["low"]], "close": [f32(x) for x in bars["close"]], "volume": volume,
        }],
        "adjclose": [{"adjclose": [f32(x) for x in bars["adj_close"]]}],
    }
    events: dict = {}
    for stamp, amount in zip(stamps, bars["dividend"]):
        if amount and amount > 0:
            events.setdefault("dividends", {})[str(stamp)] = {"amount": float(amount), "date": stamp}
    for stamp, ratio in zip(stamps, bars["split_ratio"]):
        if ratio and ratio != 1.0:
            events.setdefault("splits", {})[str(stamp)] = {
                "date": stamp, "numerator": float(ratio), "denominator": 1.0, "splitRatio": f"{ratio:g}:1"}
    if events:
        result["events"] = events
    return {"chart": {"result": [result], "error": None}}


def _chains(rows: pd.DataFrame, spot: float | None) -> dict[int, dict]:
    """Contracts by expiry, in Yahoo's contract shape (strike order within calls and puts)."""
    out: dict[int, dict] = {}
    rows = rows.sort_values(["expiration_date", "option_type", "strike"])
    for expiry, chain in rows.groupby("expiration_date", sort=True):
        stamp = utc_midnight(expiry.date())
        sides = {"calls": [], "puts": []}
        for r in chain.itertuples(index=False):
            is_call = r.option_type == "call"
            contract = {
                "contractSymbol": r.contract_symbol, "strike": float(r.strike), "currency": "USD",
                "lastPrice": float(r.last_price), "change": 0.0, "percentChange": 0.0,
                "openInterest": int(r.open_interest), "bid": float(r.bid), "ask": float(r.ask),
                "contractSize": "REGULAR", "expiration": stamp,
                "lastTradeDate": int(r.last_trade_at.timestamp()), "impliedVolatility": float(r.implied_volatility),
                "inTheMoney": spot is not None and (r.strike < spot if is_call else r.strike > spot),
            }
            if r.volume is not pd.NA and r.volume == r.volume and int(r.volume) > 0:
                contract["volume"] = int(r.volume)  # Yahoo leaves volume out for a contract not traded
            sides["calls" if is_call else "puts"].append(contract)
        out[stamp] = sides
    return out


def _valuation_fields(t: _Ticker) -> dict:
    v = t.valuation or {}
    return {
        "marketCap": _number(v.get("market_cap")), "sharesOutstanding": _number(v.get("shares_outstanding")),
        "forwardEps": _number(v.get("forward_eps")), "trailingEps": _number(v.get("trailing_eps")),
        "forwardPE": _number(v.get("forward_pe")), "trailingPE": _number(v.get("trailing_pe")),
        "priceToSalesTrailing12Months": _number(v.get("price_to_sales_ttm")),
        "sector": _text(v.get("sector")), "industry": _text(v.get("industry")),
    }


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _present(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _summary(symbol: str, t: _Ticker, modules: set[str]) -> tuple[int, dict]:
    f = _valuation_fields(t)
    kind = INSTRUMENT.get(t.role, "ETF")
    available = {
        "quoteType": {"exchange": "NYQ", "quoteType": kind, "symbol": symbol, "longName": t.name, "shortName": t.name,
                      "timeZoneFullName": calendar.MARKET_TZ, "maxAge": 1},
        "summaryDetail": _present({
            "currency": "USD", "previousClose": t.spot, "marketCap": f["marketCap"], "trailingPE": f["trailingPE"],
            "forwardPE": f["forwardPE"], "priceToSalesTrailing12Months": f["priceToSalesTrailing12Months"], "maxAge": 1,
        }),
        "defaultKeyStatistics": _present({
            "forwardEps": f["forwardEps"], "trailingEps": f["trailingEps"], "sharesOutstanding": f["sharesOutstanding"],
            "priceHint": 2, "maxAge": 1,
        }),
        "assetProfile": _present({"sector": f["sector"], "industry": f["industry"], "maxAge": 86400}),
        "financialData": _present({"currentPrice": t.spot, "financialCurrency": "USD", "maxAge": 86400}),
    }
    served = {k: v for k, v in available.items() if k in modules}
    if not served:  # earningsTrend and the like: the sample has no analysts' estimates
        return 404, {"quoteSummary": {"result": None, "error": {
            "code": "Not Found", "description": f"No fundamentals data found for symbol: {symbol}"}}}
    return 200, {"quoteSummary": {"result": [served], "error": None}}


def _quote_row(symbol: str, t: _Ticker) -> dict:
    f = _valuation_fields(t)
    return _present({
        "symbol": symbol, "quoteType": INSTRUMENT.get(t.role, "ETF"), "currency": "USD", "longName": t.name,
        "shortName": t.name, "exchange": "NYQ", "exchangeTimezoneName": calendar.MARKET_TZ, "marketState": "CLOSED",
        "regularMarketPrice": t.spot, "marketCap": f["marketCap"], "sharesOutstanding": f["sharesOutstanding"],
        "trailingPE": f["trailingPE"], "forwardPE": f["forwardPE"], "epsForward": f["forwardEps"],
        "epsTrailingTwelveMonths": f["trailingEps"],
    })


def _timeseries(symbol: str, t: _Ticker, types: list[str]) -> dict:
    result = []
    for kind in types:
        entry: dict = {"meta": {"symbol": [symbol], "type": [kind]}}
        column = INCOME_TYPES.get(kind)
        if column is not None and len(t.quarters):
            ends = [d.date() for d in t.quarters["period_end"]]
            entry["timestamp"] = [utc_midnight(d) for d in ends]
            entry[kind] = [
                {"asOfDate": d.isoformat(), "currencyCode": "USD", "dataId": 20100, "periodType": "3M",
                 "reportedValue": {"raw": float(v), "fmt": f"{float(v):,.2f}"}}
                for d, v in zip(ends, t.quarters[column])
            ]
        result.append(entry)
    return {"timeseries": {"result": result, "error": None}}


def _earnings_page(symbol: str, t: _Ticker) -> str:
    if not t.report_days:
        return "<!DOCTYPE html><html><body><p>We couldn't find any results.</p></body></html>"
    rows = []
    for day in sorted(t.report_days, reverse=True):
        at = dt.datetime(day.year, day.month, day.day, 16, tzinfo=NEW_YORK)
        zone = "EDT" if at.utcoffset() == dt.timedelta(hours=-4) else "EST"
        when = f"{at:%B} {day.day}, {day.year} at 4 PM {zone}"
        rows.append(f"<tr><td>{symbol}</td><td>{html.escape(t.name)}</td><td>{when}</td><td>-</td><td>-</td><td>-</td></tr>")
    head = "<tr><th>Symbol</th><th>Company</th><th>Earnings Date</th><th>EPS Estimate</th><th>Reported EPS</th><th>Surprise (%)</th></tr>"
    return (f"<!DOCTYPE html><html><head><title>{symbol} earnings dates</title></head><body><table><thead>{head}</thead>"
            f"<tbody>{''.join(rows)}</tbody></table></body></html>")


_CBOE_SECTIONS = (
    ("total", "SUM OF ALL PRODUCTS", "TOTAL PUT/CALL RATIO"),
    ("index", "INDEX OPTIONS", "INDEX PUT/CALL RATIO"),
    ("etp", "EXCHANGE TRADED PRODUCTS", "EXCHANGE TRADED PRODUCTS PUT/CALL RATIO"),
    ("equity", "EQUITY OPTIONS", "EQUITY PUT/CALL RATIO"),
    ("vix", "CBOE VOLATILITY INDEX (VIX)", "CBOE VOLATILITY INDEX (VIX) PUT/CALL RATIO"),
    ("spx", "SPX + SPXW", "SPX + SPXW PUT/CALL RATIO"),
)


def _cboe_body(rows: pd.DataFrame) -> bytes:
    import json

    by_scope = {r.scope: r for r in rows.itertuples(index=False)}
    body: dict = {"ratios": []}
    for scope, section, ratio_name in _CBOE_SECTIONS:
        r = by_scope.get(scope)
        if r is None:
            continue
        body["ratios"].append({"name": ratio_name, "value": f"{r.ratio:.2f}"})
        call, put = int(r.call_volume), int(r.put_volume)
        body[section] = [{"name": "VOLUME", "call": call, "put": put, "total": call + put}]
    return json.dumps(body).encode()
