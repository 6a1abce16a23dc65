"""The CBOE source, offline: canned daily-statistics JSON and archive CSVs served by a fake
curl_cffi session (real Response objects), with scripted rate limits, errors and bad bodies.

Expected ratios are PROVENANCE.md's (section 2a table; 2b/2c for the 2019-10-04 archive rows),
typed here by hand; volumes are read from the canned bodies with the json / csv modules, not
through the code under test. Retries wait through an injected `sleep`: nothing here sleeps.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import json
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import ReadTimeout

from sources.base import Source
from sources.cboe import ARCHIVE_FILES, CboeSource, MalformedResponse, parse_daily_statistics
from sources.cboe_format import parse_cboe_putcall
from sources.contract import EMPTY, FAILED, OK, OUTCOME_COLUMNS, PUTCALL, PUTCALL_SCOPES, conform
from sources.retry import RetryPolicy
from tests.fakes.cboe import (
    FIXTURES,
    S3_ACCESS_DENIED,
    TRUNCATED,
    FakeCboeSession,
    Reply,
    archive_url,
    daily_url,
)

NY = ZoneInfo("America/New_York")
POLICY = RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=30.0)
D = dt.date

# PROVENANCE.md section 2a: (equity, total, index) as CBOE published them.
PROVENANCE_2A = {
    D(2025, 1, 23): (0.53, 0.78, 0.97),
    D(2025, 1, 24): (0.52, 0.76, 1.00),
    D(2025, 1, 27): (0.57, 0.89, 1.13),
    D(2025, 1, 28): (0.53, 0.75, 0.98),
}


class Waits(list):
    """An injected `sleep` that records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> FakeCboeSession:
    return FakeCboeSession.with_fixtures()


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def source(fake, waits) -> CboeSource:
    return CboeSource(session=fake, policy=POLICY, sleep=waits)


def canned(day: dt.date) -> dict:
    return json.loads((FIXTURES / f"{day.isoformat()}_daily_options.json").read_text())


def canned_volumes(day: dt.date) -> dict[str, tuple[int, int]]:
    """scope -> (calls, puts) read straight from the canned JSON."""
    doc = canned(day)
    sections = {
        "total": "SUM OF ALL PRODUCTS", "index": "INDEX OPTIONS", "etp": "EXCHANGE TRADED PRODUCTS",
        "equity": "EQUITY OPTIONS", "vix": "CBOE VOLATILITY INDEX (VIX)", "spx": "SPX + SPXW",
    }
    out = {}
    for scope, section in sections.items():
        volume = next(r for r in doc[section] if r["name"] == "VOLUME")
        out[scope] = (volume["call"], volume["put"])
    return out


def rows_of(batch) -> dict[tuple[dt.date, str], tuple[int | None, int | None, float]]:
    return {
        (r.trade_date.date(), r.scope): (
            None if pd.isna(r.call_volume) else int(r.call_volume),
            None if pd.isna(r.put_volume) else int(r.put_volume),
            r.ratio,
        )
        for r in batch.frame.itertuples()
    }


def outcome(batch, what: str) -> dict:
    found = batch.outcomes[batch.outcomes["ticker"] == f"CBOE:{what}"]
    assert len(found) == 1, batch.outcomes
    return found.iloc[0].to_dict()


def requested_days(fake: FakeCboeSession) -> list[str]:
    return [u.rsplit("/", 1)[1][:10] for _, u in fake.trail if u.endswith("_daily_options")]


# -- a normal night and a backfill ------------------------------------------------------------


def test_a_normal_night_takes_the_last_completed_session_in_one_request(source, fake, waits):
    batch = source.putcall_night(dt.datetime(2025, 1, 27, 22, 0, tzinfo=NY))
    assert fake.trail == [("GET", daily_url(D(2025, 1, 27)))]
    assert batch.rejects.empty and waits == []
    got = rows_of(batch)
    assert sorted(s for _, s in got) == ["equity", "etp", "index", "spx", "total", "vix"]
    day = D(2025, 1, 27)
    assert (got[(day, "equity")][2], got[(day, "total")][2], got[(day, "index")][2]) == PROVENANCE_2A[day]
    for scope, (calls, puts) in canned_volumes(D(2025, 1, 27)).items():
        assert got[(D(2025, 1, 27), scope)][:2] == (calls, puts)
    assert list(batch.outcomes.columns) == list(OUTCOME_COLUMNS)
    assert outcome(batch, "2025-01-27") == {
        "dataset": "putcall_daily", "ticker": "CBOE:2025-01-27", "status": OK, "rows": 6, "attempts": 1, "reason": None,
        "retryable": None,
    }
    assert list(batch.frame.columns) == list(PUTCALL.columns)


def test_a_night_before_the_close_takes_the_previous_session(source, fake):
    source.putcall_night(dt.datetime(2025, 1, 27, 10, 0, tzinfo=NY))  # Monday morning -> Friday
    assert requested_days(fake) == ["2025-01-24"]


def test_a_backfill_gets_every_session_and_provenance_figures(source, fake):
    batch = source.putcall(D(2025, 1, 23), D(2025, 1, 28))
    assert requested_days(fake) == ["2025-01-23", "2025-01-24", "2025-01-27", "2025-01-28"]  # no weekend
    got = rows_of(batch)
    for day, (equity, total, index) in PROVENANCE_2A.items():
        assert (got[(day, "equity")][2], got[(day, "total")][2], got[(day, "index")][2]) == (equity, total, index)
        # the ratio as published is put / call rounded, on the canned volumes
        for scope, (calls, puts) in canned_volumes(day).items():
            assert got[(day, scope)] == (calls, puts, round(puts / calls, 2))
    assert batch.outcomes["status"].tolist() == [OK] * 4
    assert batch.outcomes["ticker"].tolist() == [f"CBOE:{d.isoformat()}" for d in PROVENANCE_2A]
    assert len(batch.frame) == 24 and batch.rejects.empty


def test_the_2025_01_09_closure_is_never_requested(source, fake):
    body = (FIXTURES / "2025-01-27_daily_options.json").read_bytes()
    for day in ("2025-01-08", "2025-01-10"):
        fake.serve(daily_url(day), body)
    batch = source.putcall(D(2025, 1, 8), D(2025, 1, 10))
    assert requested_days(fake) == ["2025-01-08", "2025-01-10"]
    assert set(batch.frame["trade_date"].dt.date) == {D(2025, 1, 8), D(2025, 1, 10)}
    assert "CBOE:2025-01-09" not in set(batch.outcomes["ticker"])


def test_parallel_requests_ask_for_each_session_once(fake, waits):
    source = CboeSource(session=fake, policy=POLICY, sleep=waits, max_workers=4)
    batch = source.putcall(D(2025, 1, 20), D(2025, 1, 31))  # 2025-01-20 is MLK day
    days = requested_days(fake)
    assert sorted(days) == [f"2025-01-{d:02d}" for d in (21, 22, 23, 24, 27, 28, 29, 30, 31)]
    assert len(days) == len(set(days))
    by_status = batch.outcomes.groupby("status")["ticker"].apply(list).to_dict()
    assert by_status[OK] == [f"CBOE:{d.isoformat()}" for d in PROVENANCE_2A]
    assert len(by_status[EMPTY]) == 5  # no canned body: the fake answers 404


# -- retries ---------------------------------------------------------------------------------


def test_one_429_is_absorbed(source, fake, waits):
    url = daily_url(D(2025, 1, 27))
    fake.script(url, 429)
    batch = source.putcall(D(2025, 1, 27), D(2025, 1, 27))
    assert fake.requests_for(url) == 2 and len(waits) == 1 and 0 <= waits[0] <= 1.0
    assert outcome(batch, "2025-01-27")["status"] == OK
    assert outcome(batch, "2025-01-27")["attempts"] == 2
    assert len(batch.frame) == 6


def test_repeated_429s_are_retried_with_growing_jittered_waits_then_succeed(source, fake, waits):
    url = daily_url(D(2025, 1, 27))
    fake.script(url, 429, 429, 429)
    batch = source.putcall(D(2025, 1, 27), D(2025, 1, 27))
    assert fake.requests_for(url) == 4
    assert len(waits) == 3 and all(0 <= w <= cap for w, cap in zip(waits, (1, 2, 4)))
    assert (outcome(batch, "2025-01-27")["status"], outcome(batch, "2025-01-27")["attempts"]) == (OK, 4)


def test_repeated_429s_exhaust_the_retries_and_fail_only_that_session(source, fake, waits):
    url = daily_url(D(2025, 1, 27))
    fake.script(url, *[429] * 5)
    batch = source.putcall(D(2025, 1, 24), D(2025, 1, 28))
    assert fake.requests_for(url) == 5 and len(waits) == 4
    failed = outcome(batch, "2025-01-27")
    assert (failed["status"], failed["rows"], failed["attempts"], failed["retryable"]) == (FAILED, 0, 5, True)  # a later try may work
    assert failed["reason"].startswith("rate limited: HTTP 429 Too Many Requests")
    assert "gave up after 5 attempts" in failed["reason"]
    assert batch.failed["ticker"].tolist() == ["CBOE:2025-01-27"]
    assert set(batch.frame["trade_date"].dt.date) == {D(2025, 1, 24), D(2025, 1, 28)}


def test_http_500_is_retried_and_fails_when_it_persists(source, fake, waits):
    flaky, down = daily_url(D(2025, 1, 23)), daily_url(D(2025, 1, 24))
    fake.script(flaky, 500)
    fake.script(down, *[500] * 5)
    batch = source.putcall(D(2025, 1, 23), D(2025, 1, 24))
    assert (outcome(batch, "2025-01-23")["status"], outcome(batch, "2025-01-23")["attempts"]) == (OK, 2)
    failed = outcome(batch, "2025-01-24")
    assert (failed["status"], failed["attempts"]) == (FAILED, 5)
    assert "HTTP 500 Internal Server Error" in failed["reason"] and "after 5 attempts" in failed["reason"]
    assert fake.requests_for(down) == 5


def test_timeouts_and_dropped_connections_are_retried(source, fake, waits):
    url = daily_url(D(2025, 1, 27))
    fake.script(url, ReadTimeout("Operation timed out after 30000 milliseconds"), CurlConnectionError("Recv failure"))
    batch = source.putcall(D(2025, 1, 27), D(2025, 1, 27))
    assert (outcome(batch, "2025-01-27")["status"], outcome(batch, "2025-01-27")["attempts"]) == (OK, 3)
    assert len(waits) == 2


def test_timeouts_that_never_end_fail_naming_the_error(fake, waits):
    source = CboeSource(session=fake, policy=RetryPolicy(max_attempts=2), sleep=waits)
    url = daily_url(D(2025, 1, 27))
    fake.script(url, ReadTimeout("timed out"), ReadTimeout("timed out again"))
    failed = outcome(source.putcall(D(2025, 1, 27), D(2025, 1, 27)), "2025-01-27")
    assert (failed["status"], failed["attempts"]) == (FAILED, 2)
    assert "ReadTimeout" in failed["reason"] and "timed out again" in failed["reason"]


# -- what CBOE answers when it has nothing, and other 4xx -------------------------------------


def test_404_means_cboe_published_nothing_that_day(source, fake, waits):
    batch = source.putcall(D(2025, 1, 29), D(2025, 1, 29))  # no canned body: 404
    empty = outcome(batch, "2025-01-29")
    assert (empty["status"], empty["rows"], empty["attempts"]) == (EMPTY, 0, 1)
    assert empty["reason"].startswith("CBOE published no statistics for 2025-01-29")
    assert batch.failed.empty and waits == [] and batch.frame.empty


def test_s3_access_denied_403_is_a_missing_file_but_another_403_is_a_failure(fake, source):
    fake.script(daily_url(D(2025, 1, 29)), Reply(403, S3_ACCESS_DENIED, {"Content-Type": "application/xml"}))
    fake.script(daily_url(D(2025, 1, 30)), Reply(403, b"<html><body>Request blocked.</body></html>"))
    batch = source.putcall(D(2025, 1, 29), D(2025, 1, 30))
    assert outcome(batch, "2025-01-29")["status"] == EMPTY
    assert "AccessDenied" in outcome(batch, "2025-01-29")["reason"]
    blocked = outcome(batch, "2025-01-30")
    assert (blocked["status"], blocked["attempts"]) == (FAILED, 1)
    assert blocked["reason"].startswith("HTTP 403 Forbidden from https://cdn.cboe.com/")


def test_other_4xx_fail_at_once_without_retrying(source, fake, waits):
    url = daily_url(D(2025, 1, 27))
    fake.script(url, 400)
    failed = outcome(source.putcall(D(2025, 1, 27), D(2025, 1, 27)), "2025-01-27")
    assert (failed["status"], failed["attempts"]) == (FAILED, 1)
    assert failed["reason"] == f"HTTP 400 Bad Request from {url}"
    assert waits == [] and fake.requests_for(url) == 1


# -- malformed responses ----------------------------------------------------------------------


def test_truncated_json_fails_clearly_and_is_not_retried(source, fake, waits):
    url = daily_url(D(2025, 1, 27))
    fake.script(url, TRUNCATED)
    batch = source.putcall(D(2025, 1, 27), D(2025, 1, 27))
    failed = outcome(batch, "2025-01-27")
    assert (failed["status"], failed["attempts"]) == (FAILED, 1)
    assert failed["reason"].startswith("malformed CBOE response for 2025-01-27: not JSON")
    assert fake.requests_for(url) == 1 and waits == [] and batch.frame.empty


@pytest.mark.parametrize(
    "body, says",
    [
        (b"<!DOCTYPE html><html><head><title>Cboe</title></head><body>Maintenance</body></html>", "not JSON"),
        (b"", "the body is empty"),
        (b"[1, 2, 3]", "expected a JSON object, got list"),
        (b'{"data": {}}', "no 'ratios' list"),
        (b'{"ratios": []}', "no 'SUM OF ALL PRODUCTS' section"),
        (b'{"ratios": ["TOTAL 0.89"], "SUM OF ALL PRODUCTS": []}', "ratios[0] is not a {name, value} object"),
        (b'{"ratios": [], "SUM OF ALL PRODUCTS": [{"name": "OPEN INTEREST", "call": 1, "put": 2}]}', "0 VOLUME rows"),
        (b'{"ratios": [], "SUM OF ALL PRODUCTS": [{"name": "VOLUME", "call": 1}]}', "has no put"),
        (b'{"ratios": [], "SUM OF ALL PRODUCTS": {"VOLUME": 1}}', "is not a list"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_a_malformed_page_fails_that_session_with_a_clear_error(source, fake, body, says):
    fake.script(daily_url(D(2025, 1, 27)), Reply(200, body))
    failed = outcome(source.putcall(D(2025, 1, 27), D(2025, 1, 27)), "2025-01-27")
    assert failed["status"] == FAILED
    assert failed["reason"].startswith("malformed CBOE response for 2025-01-27: ")
    assert says in failed["reason"]


def test_the_ratio_is_taken_as_published_and_computed_only_when_absent():
    doc = canned(D(2025, 1, 27))
    doc["ratios"] = [r for r in doc["ratios"] if not r["name"].startswith("SPX")]  # SPX: volumes only
    for r in doc["ratios"]:
        if r["name"] == "EQUITY PUT/CALL RATIO":
            r["value"] = "0.60"  # as published, even where the volumes say otherwise
        if r["name"].startswith("CBOE VOLATILITY"):
            r["value"] = "n/a"  # a NaN spelling is absent too
    calls, puts = canned_volumes(D(2025, 1, 27))["spx"]
    vix_calls, vix_puts = canned_volumes(D(2025, 1, 27))["vix"]
    batch = conform(PUTCALL, parse_daily_statistics(json.dumps(doc).encode(), D(2025, 1, 27), "u"))
    got = {s: r for (_, s), r in rows_of(batch).items()}
    assert got["spx"] == (calls, puts, round(puts / calls, 2))
    assert got["vix"][2] == round(vix_puts / vix_calls, 2)
    assert got["equity"][2] == 0.60


def test_a_ratio_without_volumes_and_volumes_as_text_are_read():
    doc = {
        "ratios": [{"name": "TOTAL PUT/CALL RATIO", "value": "0.89"}, {"name": "OEX PUT/CALL RATIO", "value": "2.05"},
                   {"name": "EXCHANGE TRADED PRODUCTS PUT/CALL RATIO", "value": 1.53}],
        "SUM OF ALL PRODUCTS": [{"name": "VOLUME", "call": "16,281,300", "put": "14,490,357", "total": "30,771,657"}],
    }
    batch = conform(PUTCALL, parse_daily_statistics(json.dumps(doc), D(2025, 1, 27), "u"))
    assert rows_of(batch) == {
        (D(2025, 1, 27), "total"): (16281300, 14490357, 0.89),
        (D(2025, 1, 27), "etp"): (None, None, 1.53),  # OEX is not a contract scope
    }


def test_an_unreadable_value_is_refused_with_the_url_not_dropped(source, fake):
    doc = canned(D(2025, 1, 27))
    doc["ratios"][0]["value"] = "0.8x9"
    url = daily_url(D(2025, 1, 27))
    fake.serve(url, json.dumps(doc))
    batch = source.putcall(D(2025, 1, 27), D(2025, 1, 27))
    assert batch.rejects[["source_ref", "reason"]].values.tolist() == [[url, "ratio: cannot read double from value"]]
    assert (outcome(batch, "2025-01-27")["status"], outcome(batch, "2025-01-27")["reason"]) == (OK, "1 row(s) refused")
    assert "total" not in set(batch.frame["scope"])


def test_malformed_response_is_a_value_error_naming_the_date():
    with pytest.raises(MalformedResponse, match=r"^malformed CBOE response for 2019-10-07: not JSON"):
        parse_daily_statistics(b'{"ratios": [{"name": "TOTAL', D(2019, 10, 7), "u")


# -- an empty window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, end",
    [(D(2025, 1, 25), D(2025, 1, 26)), (D(2025, 1, 9), D(2025, 1, 9)), (D(2019, 10, 5), D(2019, 10, 6)),
     (D(2025, 1, 28), D(2025, 1, 27))],
)
def test_an_empty_window_requests_nothing(fake, start, end):
    source = CboeSource(session=fake, policy=POLICY, sleep=Waits())
    batch = source.putcall(start, end)
    assert fake.trail == []
    assert batch.frame.empty and batch.outcomes.empty and batch.rejects.empty
    assert batch.notes == [f"cboe: no NYSE session in {start}..{end}; nothing requested"]


def test_no_session_is_created_until_a_request_is_needed():
    source = CboeSource()
    source.putcall(D(2025, 1, 25), D(2025, 1, 26))
    source.prices(["NVDA"], D(2025, 1, 27), D(2025, 1, 27))
    assert source._session is None


# -- the archive CSVs and the splice ------------------------------------------------------------


def test_a_range_across_the_splice_feeds_one_batch_from_both(source, fake):
    batch = source.putcall(D(2019, 10, 2), D(2019, 10, 8))
    archive_urls = [archive_url(n) for n in ARCHIVE_FILES.values()]
    assert sorted(u for _, u in fake.trail if u.endswith(".csv")) == sorted(archive_urls)
    assert requested_days(fake) == ["2019-10-07", "2019-10-08"]  # nothing before the feed began
    got = rows_of(batch)
    assert sorted({d for d, _ in got}) == [D(2019, 10, d) for d in (2, 3, 4, 7, 8)]
    # PROVENANCE 2b / 2c: the last archive rows.
    assert got[(D(2019, 10, 4), "total")] == (2175006, 2289715, 1.05)
    assert got[(D(2019, 10, 4), "index")] == (783827, 1180047, 1.51)
    # The SPX archive has its own layout, puts before calls.
    assert got[(D(2019, 10, 4), "spx")] == (437756, 1015727, 2.32)
    for day in (D(2019, 10, 7), D(2019, 10, 8)):
        for scope, (calls, puts) in canned_volumes(day).items():
            assert got[(day, scope)][:2] == (calls, puts)
    assert {s for (d, s) in got if d == D(2019, 10, 3)} == set(ARCHIVE_FILES)
    assert batch.rejects.empty
    assert any("splice" in n for n in batch.notes)
    sessions = batch.outcomes[batch.outcomes["ticker"].str.match(r"CBOE:\d{4}-")]
    assert sessions[["ticker", "status", "rows", "attempts"]].values.tolist() == [
        ["CBOE:2019-10-02", OK, 6, 0], ["CBOE:2019-10-03", OK, 6, 0], ["CBOE:2019-10-04", OK, 6, 0],
        ["CBOE:2019-10-07", OK, 6, 1], ["CBOE:2019-10-08", OK, 6, 1],
    ]
    files = batch.outcomes[batch.outcomes["ticker"].str.endswith(".csv")]
    assert sorted(files["ticker"]) == sorted(f"CBOE:{n}" for n in ARCHIVE_FILES.values())
    assert set(files["status"]) == {OK} and set(files["attempts"]) == {1}


def test_archive_values_match_an_independent_csv_reading(source):
    batch = source.putcall(D(2019, 10, 1), D(2019, 10, 4))
    got = rows_of(batch)
    for scope, name in ARCHIVE_FILES.items():
        text = (FIXTURES / name).read_bytes().decode()
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.upper().startswith("DATE,"))
        for rec in csv.reader(io.StringIO("\n".join(lines[at + 1:])), skipinitialspace=True):
            day = dt.datetime.strptime(rec[0], "%m/%d/%Y").date()
            if not D(2019, 10, 1) <= day <= D(2019, 10, 4):
                continue
            if name == "spxpc.csv":
                expected = (int(rec[3]), int(rec[2]), float(rec[1]))
            else:
                expected = (int(rec[1]), int(rec[2]), float(rec[4]))
            assert got[(day, scope)] == expected


def test_archives_are_fetched_once_per_source_object(source, fake):
    source.putcall(D(2019, 10, 1), D(2019, 10, 2))
    again = source.putcall(D(2006, 11, 1), D(2006, 11, 2))
    assert len([u for _, u in fake.trail if u.endswith(".csv")]) == len(ARCHIVE_FILES)
    assert not again.outcomes["ticker"].str.endswith(".csv").any()  # nothing fetched this time
    first = rows_of(again)
    assert first[(D(2006, 11, 1), "total")] == (1401036, 1271445, 0.91)  # PROVENANCE 2b's first row
    assert {s for d, s in first if d == D(2006, 11, 1)} == {"total", "equity", "index", "etp"}  # vix from 2006-02-24
    assert outcome(again, "2006-11-02")["status"] == EMPTY  # the canned archives skip that day
    assert "archive CSVs" in outcome(again, "2006-11-02")["reason"]


def test_a_failed_archive_fails_its_row_keeps_the_others_and_is_tried_again(source, fake, waits):
    vix = archive_url("vixpc.csv")
    fake.script(vix, *[503] * 5)
    batch = source.putcall(D(2019, 10, 4), D(2019, 10, 4))
    failed = outcome(batch, "vixpc.csv")
    assert (failed["status"], failed["attempts"]) == (FAILED, 5)
    assert "HTTP 503 Service Unavailable" in failed["reason"]
    day = outcome(batch, "2019-10-04")
    assert (day["status"], day["rows"]) == (OK, 5)
    assert day["reason"].startswith("scope(s) vix missing: vixpc.csv (")
    assert "vix" not in set(batch.frame["scope"])
    again = source.putcall(D(2019, 10, 4), D(2019, 10, 4))
    assert fake.requests_for(vix) == 6
    assert again.outcomes[again.outcomes["ticker"].str.endswith(".csv")]["ticker"].tolist() == ["CBOE:vixpc.csv"]
    assert "vix" in set(again.frame["scope"])


def test_when_every_archive_fails_the_sessions_fail(fake, waits):
    for name in ARCHIVE_FILES.values():
        fake.script(archive_url(name), 404)
    source = CboeSource(session=fake, policy=POLICY, sleep=waits)
    batch = source.putcall(D(2019, 10, 3), D(2019, 10, 4))
    assert batch.frame.empty and waits == []
    assert set(batch.outcomes["status"]) == {FAILED}
    reason = outcome(batch, "2019-10-03")["reason"]
    assert reason.startswith("no rows: CBOE archive(s) failed: totalpc.csv (HTTP 404 Not Found")


def test_an_archive_that_is_not_a_put_call_file_fails_clearly(source, fake):
    fake.script(archive_url("etppc.csv"), Reply(200, b"<html><body>Page moved</body></html>"))
    batch = source.putcall(D(2019, 10, 4), D(2019, 10, 4))
    failed = outcome(batch, "etppc.csv")
    assert failed["status"] == FAILED
    assert failed["reason"].startswith(f"malformed CBOE archive {archive_url('etppc.csv')}: ")
    assert "unrecognised put/call layout" in failed["reason"]


def test_an_archive_stating_another_scope_is_refused(source, fake):
    text = (FIXTURES / "indexpc.csv").read_bytes().decode()
    fake.script(archive_url("vixpc.csv"), Reply(200, text.encode()))
    failed = outcome(source.putcall(D(2019, 10, 4), D(2019, 10, 4)), "vixpc.csv")
    assert failed["status"] == FAILED and "states scope index, expected vix" in failed["reason"]


def test_values_agree_with_the_real_edwin_file_around_the_splice(source, real_data):
    path = real_data / "putcall" / "edwin-repo_market-signal-dashboard" / "putcall.csv"
    with path.open(newline="") as fh:
        real = {r["date"]: r for r in csv.DictReader(fh)}
    batch = source.putcall(D(2019, 10, 1), D(2019, 10, 8))
    got = rows_of(batch)
    for day in sorted({d for d, _ in got}):
        r = real[day.isoformat()]
        for scope in ("equity", "total", "index"):
            assert got[(day, scope)][2] == float(r[f"{scope}_pc_ratio"]), (day, scope)


# -- the rest of the Source protocol ----------------------------------------------------------


def test_it_is_a_source_and_serves_only_put_call(source, fake):
    assert isinstance(source, Source) and source.name == "cboe"
    for method in (source.prices, source.option_quotes, source.valuation_snapshots, source.fundamentals):
        batch = method(["NVDA"], D(2025, 1, 27), D(2025, 1, 27))
        assert batch.frame.empty and batch.outcomes.empty
        assert batch.notes[0].startswith("cboe: CBOE provides only market put/call ratios here")
    assert fake.trail == []


# -- the CBOE layouts the shared parser learnt for the archives ---------------------------------


def test_the_shared_parser_reads_the_spx_archive_layout():
    text = (FIXTURES / "spxpc.csv").read_bytes().decode()
    frame = parse_cboe_putcall(text, "https://cdn.cboe.com/x/spxpc.csv", None)
    batch = conform(PUTCALL, frame)
    assert set(batch.frame["scope"]) == {"spx"} and batch.rejects.empty
    assert frame.attrs["notes"] == []  # Total SPX Options Volume is the TOTAL column, not a stray one
    first = batch.frame.iloc[0]
    assert (first.trade_date.date(), int(first.call_volume), int(first.put_volume), first.ratio) == (
        D(2010, 7, 6), 233843, 446308, 1.91,
    )
    assert frame["_line"].tolist()[:2] == [3, 4]


def test_a_product_named_inside_a_broader_phrase_is_that_product():
    for product, scope in [("CBOE VOLATILITY INDEX (VIX)", "vix"), ("S&P 500 INDEX (SPX)", "spx"), ("INDEX", "index")]:
        text = (
            f"disclaimer,,,,\r\n, PRODUCT: {product},,EXCHANGE: Cboe,\r\n"
            "DATE,CALL,PUT,TOTAL,P/C Ratio\r\n1/3/2011,10,20,30,2.00\r\n"
        )
        assert parse_cboe_putcall(text, "x.csv", None)["scope"].tolist() == [scope]


def test_wide_tables_are_not_taken_for_the_prefixed_long_layout():
    text = "date,spx_pc_ratio,vix_pc_ratio\n2025-01-27,1.19,0.47\n"
    frame = parse_cboe_putcall(text, "wide.csv", None)
    assert sorted(frame["scope"]) == ["spx", "vix"]


def test_every_scope_in_the_feed_is_a_contract_scope():
    assert set(ARCHIVE_FILES) <= set(PUTCALL_SCOPES)


def test_the_canned_bodies_are_what_the_script_writes():
    spec = importlib.util.spec_from_file_location("make_bodies", FIXTURES / "make_bodies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for day in module.PUBLISHED:
        assert json.loads((FIXTURES / f"{day}_daily_options.json").read_text()) == module.daily_body(day)
    for name in module.ARCHIVES:
        assert (FIXTURES / name).read_bytes() == module.archive_text(name).encode()
        assert b"\r\n" in (FIXTURES / name).read_bytes()
