"""A curl_cffi session that answers CBOE URLs from canned bodies, with scripted failures.

`FakeCboeSession` is a real `curl_cffi.requests.Session` whose `request()` never reaches
libcurl: it builds a real `curl_cffi.requests.models.Response` from a canned body, so the code
under test reads status codes, reasons, headers and content exactly as it would from CBOE.

    fake = FakeCboeSession.with_fixtures()            # every file in tests/fixtures/cboe
    fake.script(daily_url(day), 429, 429)              # two rate limits, then the canned body
    fake.script(url, 500, Reply(403, b"<html>blocked</html>"), TRUNCATED, ReadTimeout("slow"))
    fake.trail                                         # [("GET", url), ...] in request order

A scripted step is used once, in order; when a URL's steps run out it gets its canned body,
and a URL with no canned body gets `missing` (404 by default; CBOE's CDN is known to answer
a missing file with S3's 403 AccessDenied, see `S3_ACCESS_DENIED`). Safe across threads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import deque
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path

from curl_cffi.requests import Session
from curl_cffi.requests.headers import Headers
from curl_cffi.requests.models import Request, Response

from sources.cboe import ARCHIVE_URL, DAILY_URL

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cboe"
S3_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
    b"<RequestId>0000000000000000</RequestId><HostId>fake</HostId></Error>"
)
TRUNCATED = object()  # a scripted step: the canned body cut in half, with status 200


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


def daily_url(day: dt.date | str) -> str:
    return DAILY_URL.format(date=day.isoformat() if isinstance(day, dt.date) else day)


def archive_url(name: str) -> str:
    return ARCHIVE_URL.format(name=name)


def make_response(url: str, reply: Reply, method: str = "GET") -> Response:
    """A real curl_cffi Response, filled in as curl_cffi fills one after a transfer."""
    response = Response(request=Request(url, Headers({}), method))
    response.url = url
    response.status_code = reply.status
    response.reason = _phrase(reply.status)
    response.ok = 200 <= reply.status < 400
    response.content = reply.body
    response.headers = Headers(dict(reply.headers))
    response.http_version = 2
    return response


class FakeCboeSession(Session):
    def __init__(self, bodies: Mapping[str, bytes | str] | None = None, *, missing: Reply = Reply(404, b"Not Found")):
        super().__init__()
        self.bodies: dict[str, bytes] = {}
        self.steps: dict[str, deque] = {}
        self.trail: list[tuple[str, str]] = []
        self.missing = missing
        self._guard = threading.Lock()
        for url, body in (bodies or {}).items():
            self.serve(url, body)

    @classmethod
    def with_fixtures(cls, folder: Path = FIXTURES, **kwargs) -> "FakeCboeSession":
        """Every `<date>_daily_options.json` at its daily URL and every `*.csv` at its archive URL."""
        fake = cls(**kwargs)
        for path in sorted(folder.glob("*_daily_options.json")):
            fake.serve(daily_url(path.name[:10]), path.read_bytes())
        for path in sorted(folder.glob("*.csv")):
            fake.serve(archive_url(path.name), path.read_bytes())
        return fake

    def serve(self, url: str, body: bytes | str) -> None:
        self.bodies[url] = body.encode("utf-8") if isinstance(body, str) else body

    def script(self, url: str, *steps) -> None:
        """Queue steps for `url`: an HTTP status, a `Reply`, an exception to raise, or TRUNCATED."""
        self.steps.setdefault(url, deque()).extend(steps)

    def requests_for(self, url: str) -> int:
        return sum(1 for _, u in self.trail if u == url)

    def request(self, method, url, *args, **kwargs) -> Response:  # noqa: D102 - see the class docstring
        with self._guard:
            self.trail.append((str(method).upper(), url))
            queue = self.steps.get(url)
            step = queue.popleft() if queue else None
        if isinstance(step, BaseException):
            raise step
        if step is TRUNCATED:
            body = self.bodies[url]
            return make_response(url, Reply(200, body[: len(body) // 2]), method)
        if isinstance(step, int):
            return make_response(url, Reply(step, _phrase(step).encode()), method)
        if isinstance(step, Reply):
            return make_response(url, step, method)
        if url in self.bodies:
            return make_response(url, Reply(200, self.bodies[url], {"Content-Type": _content_type(url)}), method)
        return make_response(url, self.missing, method)


def _content_type(url: str) -> str:
    return "text/csv" if url.endswith(".csv") else "application/json"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
