"""The checks engine: reading checks files, the land stage (quarantine rows, hold batches,
warnings), the build stage (blocking), and recording results. Runs Great Expectations for real
on small DataFrames and the SQL asserts on real DuckDB."""

import datetime as dt
import json
import textwrap

import duckdb
import pandas as pd
import pytest

from sources.contract import PRICES, Batch, typed_frame
from warehouse import checks, load, schema

RUN = dt.date(2025, 1, 28)
AT = dt.datetime(2025, 1, 28, 23, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def gx():
    return checks.Expectations()


def checks_file(tmp_path, layer, table, body, sql="select 1"):
    folder = tmp_path / layer
    folder.mkdir(exist_ok=True)
    (folder / f"{table}.sql").write_text(sql)
    path = folder / f"{table}.checks.yml"
    path.write_text(textwrap.dedent(body))
    return path


PRICES_CHECKS = """
    table: raw.prices_daily
    key: [ticker, trade_date]
    expectations:
      - ExpectColumnValuesToBeBetween: {column: close, min_value: 0, strict_min: true}
      - ExpectColumnValuesToNotBeNull: {column: volume, severity: warn, name: volume_given}
    asserts:
      no_future_dates: select _row, ticker, trade_date from batch where trade_date > $run_date
      on_a_session:
        severity: warn
        sql: select _row, ticker, trade_date from batch where trade_date::date not in (select session from sessions)
"""


def prices(rows):
    frame = pd.DataFrame(rows, columns=["ticker", "trade_date", "close", "adj_close", "volume"]).assign(dividend=0.0, split_ratio=1.0)
    for c in PRICES.columns:
        if c not in frame:
            frame[c] = None
    return typed_frame(frame[list(PRICES.columns)], PRICES)


def test_reading_a_checks_file(tmp_path):
    cf = checks.parse_checks_file(checks_file(tmp_path, "raw", "prices_daily", PRICES_CHECKS))
    assert cf.table == "raw.prices_daily" and cf.stage == checks.LAND and cf.key == ("ticker", "trade_date")
    assert [(c.name, c.severity, c.on_fail) for c in cf.checks] == [
        ("expect_column_values_to_be_between:close", "error", "quarantine"),
        ("volume_given", "warn", "record"),
        ("no_future_dates", "error", "quarantine"),
        ("on_a_session", "warn", "record"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("table: raw.prices\n", "guards 'raw.prices' but sits beside raw.prices_daily"),
        ("table: raw.prices_daily\nexpectations:\n  - ExpectNothing: {column: x}\n", "unknown Great Expectations class 'ExpectNothing'"),
        ("table: raw.prices_daily\nexpectations:\n  - ExpectColumnValuesToBeBetween: {colum: x}\n", "does not take these arguments"),
        ("table: raw.prices_daily\nseverity: fatal\nasserts:\n  a: select 1\n", "severity must be error or warn, not 'fatal'"),
        ("table: raw.prices_daily\nasserts:\n  a: {sql: select 1, on_fail: shrug}\n", "on_fail must be quarantine or hold, not 'shrug'"),
        ("table: raw.prices_daily\nwindow: trade_date\n", "window applies to build-stage checks only"),
        ("table: raw.prices_daily\nasserts:\n  a:\n    severity: warn\n", "asserts.a: needs sql"),
        ("table: [\n", "not valid YAML"),
    ],
)
def test_a_bad_checks_file_is_named_with_what_is_wrong(tmp_path, body, message):
    path = checks_file(tmp_path, "raw", "prices_daily", body)
    with pytest.raises(checks.ChecksFileError, match="prices_daily.checks.yml") as exc:
        checks.parse_checks_file(path)
    assert message in str(exc.value)


def test_land_quarantines_failing_rows_and_loads_the_rest(tmp_path, gx):
    cf = checks.parse_checks_file(checks_file(tmp_path, "raw", "prices_daily", PRICES_CHECKS))
    con = duckdb.connect()
    schema.ensure(con)
    frame = prices([
        ("SPY", "2025-01-24", 607.97, 607.97, 1e6),
        ("SPY", "2025-01-27", -1.0, 599.37, 1e6),      # close <= 0: error
        ("SPY", "2025-01-29", 601.0, 601.0, 1e6),      # after the run date: error
        ("QQQ", "2025-01-25", 520.0, 520.0, None),     # a Saturday and no volume: two warnings
    ])
    lineage = pd.DataFrame({"source_ref": ["a.csv"] * 4, "line": pd.array([2, 3, 4, 5], dtype="Int64")})
    batch = Batch(dataset=PRICES, frame=frame, lineage=lineage)
    result, outcome = load.land_check_publish(
        con, batch, checks_file=cf, expectations=gx, run_date=RUN, source="test", run_id="r1", loaded_at=AT,
        window=(dt.date(2025, 1, 24), RUN),
    )
    assert not outcome.held and outcome.refused_rows == [1, 2]
    assert result.inserted == 2 and result.rejected == 2
    assert con.execute("select ticker, trade_date::varchar from raw.prices_daily order by all").fetchall() == [("QQQ", "2025-01-25"), ("SPY", "2025-01-24")]
    q = con.execute("select check_name, reason, source_ref, line, ticker, row_json->>'close' from audit.quarantine order by line").fetchall()
    assert q == [
        ("expect_column_values_to_be_between:close", "failed expect_column_values_to_be_between:close", "a.csv", 3, "SPY", "-1.0"),
        ("no_future_dates", "failed no_future_dates", "a.csv", 4, "SPY", "601.0"),
    ]
    res = {r[0]: r[1:] for r in con.execute("select check_name, success, unexpected_count, sample_keys::varchar, batch_ref from audit.check_results").fetchall()}
    assert res["on_a_session"][:2] == (False, 1) and json.loads(res["on_a_session"][2]) == [{"ticker": "QQQ", "trade_date": "2025-01-25"}]
    assert res["volume_given"][:2] == (False, 1)
    assert res["expect_column_values_to_be_between:close"][:2] == (False, 1)
    assert res["no_future_dates"][3] == "prices_daily 2025-01-24..2025-01-28"


def test_a_table_level_failure_holds_the_whole_batch(tmp_path, gx):
    cf = checks.parse_checks_file(checks_file(tmp_path, "raw", "prices_daily", """
        table: raw.prices_daily
        expectations:
          - ExpectTableRowCountToBeBetween: {min_value: 3, on_fail: hold}
        asserts:
          not_all_one_ticker:
            severity: warn
            sql: select count(distinct ticker) as n from batch having count(distinct ticker) < 2
    """))
    con = duckdb.connect()
    schema.ensure(con)
    frame = prices([("SPY", "2025-01-24", 607.97, 607.97, 1e6), ("SPY", "2025-01-27", 599.37, 599.37, 1e6)])
    result, outcome = load.land_check_publish(con, Batch(dataset=PRICES, frame=frame), checks_file=cf, expectations=gx, run_date=RUN, source="t", run_id="r", loaded_at=AT)
    assert outcome.held and result.inserted == 0 and result.rejected == 2
    reasons = [r[0] for r in con.execute("select reason from audit.quarantine").fetchall()]
    assert all(r.startswith("batch held: expect_table_row_count_to_be_between") for r in reasons)
    assert con.execute("select count(*) from raw.prices_daily").fetchone()[0] == 0


def test_build_checks_block_on_error_and_name_the_keys(tmp_path, gx):
    cf = checks.parse_checks_file(checks_file(tmp_path, "marts", "scores", """
        table: marts.scores
        key: [trade_date]
        window: trade_date
        expectations:
          - ExpectColumnValuesToBeBetween: {column: score, min_value: 0, max_value: 100}
        asserts:
          every_session_present: |
            select session from sessions
            where session >= $start_date and session not in (select trade_date from marts.scores)
    """))
    con = duckdb.connect()
    schema.ensure(con)
    con.execute("create table marts.scores as select * from (values (date '2025-01-24', 50.0), (date '2025-01-27', 140.0), (date '2025-01-28', 20.0)) t(trade_date, score)")
    results = checks.check_built(con, cf, start_date=dt.date(2025, 1, 27), run_date=RUN, expectations=gx)
    by = {r.check: r for r in results}
    assert by["expect_column_values_to_be_between:score"].unexpected_count == 1
    assert by["expect_column_values_to_be_between:score"].sample_keys == [{"trade_date": "2025-01-27"}]
    assert by["expect_column_values_to_be_between:score"].rows_checked == 2  # only the window
    assert by["every_session_present"].success
    with pytest.raises(checks.CheckFailed, match=r"marts.scores failed check expect_column_values_to_be_between:score: 1 row\(s\) \(e.g. \{\"trade_date\": \"2025-01-27\"\}\)"):
        checks.enforce(results)
    # The window start decides what is checked: from the 28th, nothing is wrong.
    checks.enforce(checks.check_built(con, cf, start_date=RUN, run_date=RUN, expectations=gx))
    con.execute("delete from marts.scores where trade_date = '2025-01-28'")
    missing = checks.check_built(con, cf, start_date=RUN, run_date=RUN, expectations=gx)
    assert [(r.check, r.unexpected_count) for r in missing if not r.success] == [("every_session_present", 1)]


def test_a_large_window_is_validated_in_chunks_with_the_same_results(tmp_path, gx, monkeypatch):
    """Great Expectations validates a built table's window a chunk at a time (a full build at
    scale would hold the whole table in pandas several times over). The chunks never split one
    window date, so a duplicate key is still found, and the results are the whole window's."""
    cf = checks.parse_checks_file(checks_file(tmp_path, "marts", "levels", """
        table: marts.levels
        key: [ticker, trade_date]
        window: trade_date
        expectations:
          - ExpectCompoundColumnsToBeUnique: {column_list: [ticker, trade_date]}
          - ExpectColumnValuesToBeBetween: {column: level, min_value: 0}
          - ExpectColumnValuesToNotBeNull: {column: ticker}
    """))
    con = duckdb.connect()
    schema.ensure(con)
    con.execute(
        """
        create table marts.levels as
        select t.ticker, d::date as trade_date, 1.0 as level, [1.0, 2.0] as unchecked_list
        from range(date '2024-01-01', date '2024-03-01', interval 1 day) as r(d), (values ('A'), ('B'), ('C')) as t(ticker)
        """
    )
    con.execute("update marts.levels set level = -1 where trade_date in ('2024-01-03', '2024-02-20') and ticker = 'B'")
    con.execute("insert into marts.levels values ('C', '2024-02-10', 1.0, []), (null, null, 5.0, [])")  # a duplicate key; a row without a date

    def run(chunk_rows):
        monkeypatch.setattr(checks, "VALIDATION_CHUNK_ROWS", chunk_rows)
        calls = []
        real = gx.validate
        monkeypatch.setattr(gx, "validate", lambda frame, *a, **k: calls.append((len(frame), list(frame.columns))) or real(frame, *a, **k))
        found = {r.check: (r.success, r.rows_checked, r.unexpected_count, r.sample_keys)
                 for r in checks.check_built(con, cf, start_date=dt.date(2024, 1, 2), run_date=RUN, expectations=gx)}
        monkeypatch.undo()
        return found, calls

    whole, whole_calls = run(10_000)
    chunked, chunked_calls = run(20)
    assert chunked == whole
    assert len(whole_calls) == 2 and len(chunked_calls) > 10  # (a second pass names the failing rows)
    assert max(n for n, _ in chunked_calls) <= 21  # none above the limit, but for the row without a date
    # Only the columns the expectations read, and the key: pandas never holds the list column.
    assert {tuple(cols) for _, cols in whole_calls + chunked_calls} == {("ticker", "trade_date", "level")}
    assert whole["expect_column_values_to_be_between:level"] == (False, 3 * 59 + 2, 2, [
        {"ticker": "B", "trade_date": "2024-01-03"}, {"ticker": "B", "trade_date": "2024-02-20"}])
    assert whole["expect_compound_columns_to_be_unique:ticker+trade_date"][:3] == (False, 3 * 59 + 2, 2)
    assert whole["expect_column_values_to_not_be_null:ticker"][:3] == (False, 3 * 59 + 2, 1)


def test_a_failing_assert_sql_is_a_clear_error(tmp_path, gx):
    cf = checks.parse_checks_file(checks_file(tmp_path, "marts", "scores", """
        table: marts.scores
        asserts:
          broken: select * from marts.nowhere where d > $when
    """))
    con = duckdb.connect()
    schema.ensure(con)
    con.execute("create table marts.scores (d date)")
    with pytest.raises(checks.ChecksFileError, match=r"scores.checks.yml: asserts.broken: unknown parameter\(s\) \$when"):
        checks.check_built(con, cf, start_date=RUN, run_date=RUN, expectations=gx)


def test_results_are_recorded_and_summarized(tmp_path):
    con = duckdb.connect()
    schema.ensure(con)
    mk = lambda check, ok, sev, n: checks.CheckResult("build", "marts.t", check, "assert", sev, "block" if sev == "error" else "record", ok, 10, n, [{"k": 1}] if n else [])  # noqa: E731
    checks.record_results(con, [mk("a", True, "error", 0), mk("b", False, "warn", 2), mk("c", False, "error", 3)], run_id="r", at=AT)
    s = checks.summarize(con, "r")
    assert (s["checks_run"], s["passed"], s["errors"], s["warnings"]) == (3, 1, 1, 1)
    assert s["failing"][0] == {"table": "marts.t", "check": "c", "severity": "error", "rows": 3, "batches": 1, "sample": [{"k": 1}]}


def test_data_docs_site_is_written(tmp_path):
    gx = checks.Expectations(tmp_path / "docs")
    c = checks.Check("x", "expectation", "error", "quarantine", "ExpectColumnValuesToBeBetween", {"column": "v", "min_value": 0})
    assert gx.validate(pd.DataFrame({"v": [1.0, -1.0]}), [c], suite_name="raw.t")[0]["rows"] == [1]
    index = gx.build_docs()
    assert index == tmp_path / "docs" / "index.html" and "raw.t" in index.read_text()


def test_validated_frames_are_not_kept_by_the_context(tmp_path):
    """Great Expectations' execution engine caches every batch it loads for the context's life:
    a run's checks over a full build held every chunk (3 GiB at 500 tickers). No frame holding
    the checked column may outlive its validation, and Data Docs still render every one."""
    import gc

    gx = checks.Expectations(tmp_path / "docs")
    column = "checked_and_then_freed"
    c = checks.Check("x", "expectation", "error", "quarantine", "ExpectColumnValuesToBeBetween", {"column": column, "min_value": 0})
    for table in ("marts.a", "marts.b"):
        assert gx.validate(pd.DataFrame({column: [1.0, 2.0, -3.0]}), [c], suite_name=table)[0]["success"] is False
    gc.collect()
    kept = [o for o in gc.get_objects() if isinstance(o, pd.DataFrame) and column in o.columns]
    assert kept == []
    text = gx.build_docs().read_text()
    assert "marts.a" in text and "marts.b" in text


def test_results_map_to_their_checks_whatever_order_gx_returns(gx):
    # Great Expectations groups results by column: the close > 0 failure must not be reported
    # as the adj_close check's.
    mk = lambda name, cls, **kw: checks.Check(name, "expectation", "error", "quarantine", cls, kw)  # noqa: E731
    cs = [
        mk("close_given", "ExpectColumnValuesToNotBeNull", column="close"),
        mk("adj_given", "ExpectColumnValuesToNotBeNull", column="adj_close"),
        mk("close_positive", "ExpectColumnValuesToBeBetween", column="close", min_value=0, strict_min=True),
    ]
    frame = pd.DataFrame({"close": [1.0, -1.0, 2.0, 3.0], "adj_close": [1.0, 1.0, None, 3.0]})
    got = gx.validate(frame, cs, suite_name="raw.order")
    assert [(r["success"], r["rows"]) for r in got] == [(True, []), (False, [2]), (False, [1])]


def test_a_null_date_in_a_failing_key_is_sampled_as_null(tmp_path, gx):
    cf = checks.parse_checks_file(checks_file(tmp_path, "raw", "prices_daily", """
        table: raw.prices_daily
        key: [ticker, trade_date]
        expectations:
          - ExpectColumnValuesToNotBeNull: {column: trade_date}
    """))
    frame = prices([("SPY", None, 1.0, 1.0, 1.0)])
    (r,) = checks.check_batch(duckdb.connect(), frame, cf, run_date=RUN, expectations=gx).results
    assert not r.success and r.sample_keys == [{"ticker": "SPY", "trade_date": None}]


def test_the_expectation_lookups_on_one_configuration_equal_great_expectations_own(gx):
    """`checks.lookups_on_one_configuration` replaces two of Great Expectations' methods for
    speed on the releases it was checked against (the pinned one among them: this fails when
    Great Expectations is upgraded, to be checked again). For every expectation of every checks
    file, both give the same dicts as the originals."""
    from great_expectations.expectations.expectation import Expectation

    assert checks.lookups_on_one_configuration(), "Great Expectations was upgraded: compare its two methods again"
    original_domain, original_success = Expectation._bellwether_original_lookups
    assert Expectation._get_success_kwargs is not original_success
    compared = set()
    for cf in checks.discover_checks().values():
        for c in cf.expectations:
            e = checks._expectation_class(c.expectation)(**dict(c.kwargs or {}), meta={"bellwether_i": 0})
            assert e._get_domain_kwargs() == original_domain(e), (cf.table, c.name)
            got, want = e._get_success_kwargs(), original_success(e)
            assert got == want and list(got) == list(want), (cf.table, c.name)
            compared.add(c.expectation)
    assert len(compared) >= 8, compared  # every kind of expectation the checks use
