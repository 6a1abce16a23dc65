"""A fake Yahoo Finance for yfinance: a real curl_cffi Session whose `request()` answers from
canned bodies, so yfinance's own code (handshake, retries, parsers) runs with no network.

`FakeYahooSession` passes yfinance's session check (it *is* a `curl_cffi.requests.Session`)
and overrides the one method every call goes through: `Session.get` and `post` both call
`request()`. It routes on (host, path, query) and builds genuine
`curl_cffi.requests.models.Response` objects, so `.json()`, `.text` and `.raise_for_status()`
behave as in production (a 404 raises curl_cffi's `HTTPError`, the class yfinance catches).

Routes (the names `fail()` takes): `cookie` (fc.yahoo.com), `crumb` (/v1/test/getcrumb),
`consent` (guce/consent.yahoo.com), `chart`, `options`, `quoteSummary`, `quote` (v7),
`timeseries` (fundamentals) and `earnings` (the earnings-calendar page). Anything else is
answered 404 and shows in `unrouted`.

Canned data lives in tests/fixtures/yahoo (built by make_bodies.py from real figures). A
symbol without a chart file is unknown to this Yahoo: chart and quoteSummary answer 404 with
Yahoo's error bodies, options an empty result, the timeseries meta-only entries.

Scripted failures, consumed in order by the matching requests (symbol "*" matches any):
    fake.fail("chart", "SPY", [429, 429])          # two 429s, then the canned body
    fake.fail("options", "NVDA", [500])             # an HTML error page
    fake.fail("chart", "NVDA", ["truncated"])       # the canned body cut in half, status 200
    fake.fail("quote", "*", ["timeout"])            # curl_cffi Timeout raised
Other specs: any HTTP status, "connection" (curl_cffi ConnectionError), "down" (Yahoo's "Will be
right back" page, status 200), "json500" (a 500 with Yahoo's JSON error body) and "ok"
(answer normally: to script a later request only).

A market of any size: `FakeYahooSession(market=FakeMarket(...))` (tests/fakes/market.py)
answers the data routes from a synthetic market of any number of tickers instead of the canned
bodies, with latency, a share of 429s and timeouts, delisted and broken tickers; scripted
failures still come first.

`trail` records every request (route, symbol, status, thread) for assertions. The module also
provides the pytest fixtures `yf_isolated` (fresh yfinance global state per test) and
`fake_yahoo`; tests/conftest.py registers this module as a plugin.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import http
import datetime as dt
import http.cookiejar
import json
import threading
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import pytest
from curl_cffi import requests as curl_requests
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import Timeout as CurlTimeout
from curl_cffi.requests.headers import Headers
from curl_cffi.requests.models import Request, Response

BODIES = Path(__file__).resolve().parent.parent / "fixtures" / "yahoo"
CRUMB = "Fake0Crumb.1"
JSON, HTML, TEXT = "application/json;charset=utf-8", "text/html;charset=utf-8", "text/plain;charset=utf-8"
SERVER_ERROR_PAGE = "<!DOCTYPE html><html><head><title>Yahoo</title></head><body><h1>{status} {phrase}</h1></body></html>"
DOWN_PAGE = "<!DOCTYPE html><html><body><h1>Will be right back...</h1><p>Thank you for your patience.</p></body></html>"


@dataclasses.dataclass(frozen=True)
class Call:
    method: str
    url: str
    route: str
    symbol: str
    query: dict
    status: int | str
    thread: str
    timeout: float | None = None  # the client's timeout for the request, in seconds


def _chart_not_found() -> dict:
    return {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}}


def _summary_not_found(symbol: str) -> dict:
    return {"quoteSummary": {"result": None, "error": {"code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}}}


class FakeYahooSession(curl_requests.Session):
    """A curl_cffi Session answering Yahoo's endpoints from canned bodies (see the module docstring)."""

    def __init__(self, bodies: Path = BODIES, market=None):
        super().__init__()
        self._bodies = bodies
        self.market = market
        self._lock = threading.Lock()
        self._script: dict[tuple[str, str], collections.deque] = collections.defaultdict(collections.deque)
        self.trail: list[Call] = []
        # Editable per test: symbol -> body.
        self.charts = self._load("chart_*.json")
        self.summaries = self._load("quoteSummary_*.json")
        self.quotes = self._load("quote_*.json")
        self.timeseries = self._load("timeseries_*.json")
        self.options = self._load_options()
        self.earnings_pages = {p.stem.split("_", 1)[1]: p.read_text() for p in bodies.glob("earnings_*.html")}

    # -- test API ------------------------------------------------------------------------------

    def fail(self, route: str, symbol: str, outcomes) -> "FakeYahooSession":
        """Answer the next len(outcomes) matching requests with these failures, in order."""
        with self._lock:
            self._script[(route, symbol.upper())].extend(outcomes)
        return self

    def calls(self, route: str | None = None, symbol: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.trail if (route is None or c.route == route) and (symbol is None or c.symbol == symbol)]

    @property
    def unrouted(self) -> list[Call]:
        return self.calls("unrouted")

    # -- transport -----------------------------------------------------------------------------

    def request(self, method, url, params=None, data=None, json=None, **kwargs):  # noqa: A002 - curl_cffi's names
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.update({k: _text(v) for k, v in dict(params or {}).items()})
        route, symbol = _route(parts.hostname or "", parts.path, query)
        full_url = parts._replace(query=urlencode(query)).geturl()
        scripted = self._next_failure(route, symbol)
        if scripted is None and self.market is not None:
            scripted = self.market.fate(route, symbol, query)
            if scripted == "timeout":
                self.market.hang(kwargs.get("timeout"))
            else:
                self.market.wait(route, symbol, query)
        timeout = kwargs.get("timeout")
        if scripted in ("timeout", "connection"):
            self._record(method, full_url, route, symbol, query, scripted, timeout)
            raise _transport_error(scripted, method, full_url)
        if scripted is None or scripted == "ok":
            status, body, ctype = self._answer(route, symbol, query)
        else:
            status, body, ctype = self._failure(scripted, route, symbol, query)
        self._record(method, full_url, route, symbol, query, status, timeout)
        return _response(method, full_url, status, body, ctype)

    def _next_failure(self, route: str, symbol: str):
        with self._lock:
            for key in ((route, symbol), (route, "*")):
                if self._script.get(key):
                    return self._script[key].popleft()
        return None

    def _record(self, method, url, route, symbol, query, status, timeout=None) -> None:
        call = Call(method, url, route, symbol, dict(query), status, threading.current_thread().name, timeout)
        with self._lock:
            self.trail.append(call)

    def _failure(self, spec, route, symbol, query) -> tuple[int, bytes, str]:
        if spec == "truncated":
            status, body, ctype = self._answer(route, symbol, query)
            return status, body[: len(body) // 2], ctype
        if spec == "down":
            return 200, DOWN_PAGE.encode(), HTML
        if spec == "json500":  # Yahoo's JSON flavour of a server error
            error = {"code": "Internal Server Error", "description": "Internal error, please retry"}
            return 500, _dumps({"finance": {"result": None, "error": error}}), JSON
        status = int(spec)
        if status == 429:
            return 429, b"Too Many Requests\r\n", TEXT
        if status == 404:
            return 404, _dumps(_chart_not_found() if route == "chart" else _summary_not_found(symbol)), JSON
        phrase = http.HTTPStatus(status).phrase
        return status, SERVER_ERROR_PAGE.format(status=status, phrase=phrase).encode(), HTML

    # -- canned answers ------------------------------------------------------------------------

    def _answer(self, route: str, symbol: str, query: dict) -> tuple[int, bytes, str]:
        if route == "cookie":
            # Yahoo answers fc.yahoo.com with a 404 that sets the A3 cookie, good for a year
            # (yfinance persists it and reads its expiry when it loads it again).
            self.cookies.jar.set_cookie(_a3_cookie())
            return 404, b"", HTML
        if route == "crumb":
            return 200, CRUMB.encode(), TEXT
        if route == "consent":
            return 200, b"<html><body>no consent form here</body></html>", HTML
        if self.market is not None and route != "unrouted":
            status, body = self.market.answer(route, symbol, query)
            if isinstance(body, str):
                return status, body.encode(), HTML
            return status, _dumps(body), JSON
        handler = {
            "chart": self._chart,
            "options": self._options,
            "quoteSummary": self._summary,
            "quote": self._quote,
            "timeseries": self._timeseries,
            "earnings": self._earnings,
        }.get(route)
        if handler is None:
            return 404, b"", HTML
        status, body = handler(symbol, query)
        if isinstance(body, str):
            return status, body.encode(), HTML
        return status, _dumps(body), JSON

    def _chart(self, symbol: str, query: dict):
        canned = self.charts.get(symbol)
        if canned is None:
            return 404, _chart_not_found()
        body = copy.deepcopy(canned)
        result = body["chart"]["result"][0]
        if "period1" in query:
            lo, hi = int(query["period1"]), int(query["period2"])
        else:  # range=1d: the timezone probe; the last bar is enough
            lo = hi = None
        _keep_bars(result, lo, hi)
        return 200, body

    def _options(self, symbol: str, query: dict):
        chains = self.options.get(symbol)
        if not chains:
            return 200, {"optionChain": {"result": [], "error": None}}
        wanted = query.get("date")
        if wanted is None:
            return 200, copy.deepcopy(chains[min(chains)])
        if int(wanted) in chains:
            return 200, copy.deepcopy(chains[int(wanted)])
        body = copy.deepcopy(chains[min(chains)])
        body["optionChain"]["result"][0]["options"] = []
        return 200, body

    def _summary(self, symbol: str, query: dict):
        canned = self.summaries.get(symbol)
        if canned is None:
            return 404, _summary_not_found(symbol)
        modules = set(query.get("modules", "").split(","))
        served = {k: v for k, v in canned["quoteSummary"]["result"][0].items() if k in modules}
        if not served:
            return 404, {"quoteSummary": {"result": None, "error": {
                "code": "Not Found", "description": f"No fundamentals data found for symbol: {symbol}"}}}
        return 200, {"quoteSummary": {"result": [copy.deepcopy(served)], "error": None}}

    def _quote(self, symbol: str, query: dict):
        canned = self.quotes.get(symbol)
        return 200, copy.deepcopy(canned) if canned else {"quoteResponse": {"result": [], "error": None}}

    def _timeseries(self, symbol: str, query: dict):
        types = [t for t in query.get("type", "").split(",") if t]
        canned = self.timeseries.get(symbol, {"timeseries": {"result": []}})
        by_type = {r["meta"]["type"][0]: r for r in canned["timeseries"]["result"]}
        # Like Yahoo: every requested type gets an entry; one without data is meta only.
        result = [copy.deepcopy(by_type.get(t, {"meta": {"symbol": [symbol], "type": [t]}})) for t in types]
        return 200, {"timeseries": {"result": result, "error": None}}

    def _earnings(self, symbol: str, query: dict):
        page = self.earnings_pages.get(symbol)
        return 200, page or "<!DOCTYPE html><html><body><p>We couldn't find any results.</p></body></html>"

    # -- loading -------------------------------------------------------------------------------

    def _load(self, pattern: str) -> dict[str, dict]:
        return {p.stem.split("_", 1)[1]: json.loads(p.read_text()) for p in self._bodies.glob(pattern)}

    def _load_options(self) -> dict[str, dict[int, dict]]:
        out: dict[str, dict[int, dict]] = collections.defaultdict(dict)
        for p in self._bodies.glob("options_*.json"):
            body = json.loads(p.read_text())
            result = body["optionChain"]["result"][0]
            out[result["underlyingSymbol"]][result["options"][0]["expirationDate"]] = body
        return dict(out)


def _route(host: str, path: str, query: dict) -> tuple[str, str]:
    tail = unquote(path.rstrip("/").rsplit("/", 1)[-1]).upper()
    if host == "fc.yahoo.com":
        return "cookie", ""
    if path == "/v1/test/getcrumb":
        return "crumb", ""
    if host.endswith(("guce.yahoo.com", "consent.yahoo.com")):
        return "consent", ""
    if path.startswith("/v8/finance/chart/"):
        return "chart", tail
    if path.startswith("/v7/finance/options/"):
        return "options", tail
    if path.startswith("/v10/finance/quoteSummary/"):
        return "quoteSummary", tail
    if path.rstrip("/") == "/v7/finance/quote":
        return "quote", query.get("symbols", "").upper()
    if path.startswith("/ws/fundamentals-timeseries/v1/finance/timeseries/"):
        return "timeseries", tail
    if host == "finance.yahoo.com" and path.startswith("/calendar/earnings"):
        return "earnings", query.get("symbol", "").upper()
    return "unrouted", tail


def _keep_bars(result: dict, lo: int | None, hi: int | None) -> None:
    """Keep the bars (and events) Yahoo would send for [period1, period2), or the last bar."""
    stamps = result.get("timestamp", [])
    keep = [i for i, t in enumerate(stamps) if lo is None or lo <= t < hi]
    if lo is None:
        keep = keep[-1:]
    quote = result["indicators"]["quote"][0]
    adj = result["indicators"].get("adjclose", [{}])[0]
    if not keep:  # a valid symbol with nothing in the window: meta and empty indicators
        result.pop("timestamp", None)
        result.pop("events", None)
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return
    result["timestamp"] = [stamps[i] for i in keep]
    result["indicators"]["quote"] = [{k: [v[i] for i in keep] for k, v in quote.items()}]
    if adj:
        result["indicators"]["adjclose"] = [{k: [v[i] for i in keep] for k, v in adj.items()}]
    events = result.get("events", {})
    for kind in list(events):
        events[kind] = {k: e for k, e in events[kind].items() if lo is None or lo <= int(k) < hi}
        if not events[kind]:
            del events[kind]
    if not events:
        result.pop("events", None)


def _a3_cookie() -> http.cookiejar.Cookie:
    expires = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).timestamp())
    return http.cookiejar.Cookie(
        version=0, name="A3", value="d=AQABBfake&S=AQAAAfake", port=None, port_specified=False,
        domain=".yahoo.com", domain_specified=True, domain_initial_dot=True, path="/", path_specified=True,
        secure=True, expires=expires, discard=False, comment=None, comment_url=None, rest={},
    )


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _dumps(body: dict) -> bytes:
    return json.dumps(body).encode()


def _transport_error(kind: str, method: str, url: str) -> Exception:
    """What curl_cffi raises when no HTTP answer came: the error carries a Response of status 0."""
    empty = Response(request=Request(url, Headers(), method))
    empty.status_code, empty.url = 0, url
    if kind == "timeout":
        return CurlTimeout(f"Failed to perform, curl: (28) Operation timed out (fake) for {url}", 28, empty)
    return CurlConnectionError(f"Failed to perform, curl: (7) Failed to connect (fake) for {url}", 7, empty)


def _response(method: str, url: str, status: int, body: bytes, content_type: str) -> Response:
    response = Response(request=Request(url, Headers(), method))
    response.url = url
    response.status_code = status
    response.reason = http.HTTPStatus(status).phrase
    response.ok = 200 <= status < 400
    response.headers = Headers({"content-type": content_type})
    response.content = body
    return response


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
def yf_isolated(monkeypatch):
    """Fresh yfinance process state for one test, restored afterwards.

    yfinance keeps process-wide state that leaks between tests: the YfData singleton (its
    session, crumb and cookie strategy, the sticky chunked-fundamentals flag), the LRU cache
    of responses behind `YfData.cache_get`, the on-disk timezone/cookie/ISIN caches, the
    counter allowing two timezone look-ups through `.info` per process, and the
    `hide_exceptions` switch.
    """
    import yfinance as yf
    from yfinance import base, cache
    from yfinance.data import SingletonMeta, YfData

    def reset() -> None:
        SingletonMeta._instances.pop(YfData, None)
        YfData.cache_get.cache_clear()

    reset()
    monkeypatch.setattr(cache._TzCacheManager, "_tz_cache", cache._TzCacheDummy())
    monkeypatch.setattr(cache._CookieCacheManager, "_Cookie_cache", cache._CookieCacheDummy())
    monkeypatch.setattr(cache._ISINCacheManager, "_isin_cache", cache._ISINCacheDummy())
    monkeypatch.setattr(base, "_tz_info_fetch_ctr", 0)
    hide = yf.config.debug.hide_exceptions
    yield
    yf.config.debug.hide_exceptions = hide
    reset()


@pytest.fixture
def fake_yahoo(yf_isolated) -> FakeYahooSession:
    return FakeYahooSession()
