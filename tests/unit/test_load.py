"""Loads are bulk, keyed (idempotent), atomic, and never lose a refused row."""

import datetime as dt
import json

import duckdb
import pandas as pd
import pytest

from sources.contract import PRICES, Batch, conform
from warehouse import lake
from warehouse.load import ARROW_CHUNK_ROWS, DuplicateKeys, load_batch, load_universe

T1 = dt.datetime(2025, 1, 27, 23, 30, tzinfo=dt.UTC)
T2 = dt.datetime(2025, 1, 28, 23, 30, tzinfo=dt.UTC)


def prices(rows):
    f = pd.DataFrame(rows, columns=["ticker", "trade_date", "close"])
    f["adj_close"] = f["close"]
    f["dividend"] = 0.0
    f["split_ratio"] = 1.0
    f["volume"] = 100
    return f


@pytest.fixture
def con(any_con):
    """Every load test runs on both storages: a DuckLake (no primary keys: the loader keeps
    keys unique) and a single DuckDB file."""
    return any_con


def table(con, name="raw.prices_daily"):
    return con.execute(f"select * from {name} order by all").fetchall()


def test_loading_the_same_batch_twice_leaves_identical_tables(con):
    b = conform(PRICES, prices([("NVDA", "2025-01-24", 142.62), ("NVDA", "2025-01-27", 118.42)]))
    r1 = load_batch(con, b, source="sample", run_id="r1", loaded_at=T1)
    before = table(con)
    r2 = load_batch(con, b, source="sample", run_id="r2", loaded_at=T2)
    assert (r1.inserted, r1.updated, r1.unchanged) == (2, 0, 0)
    assert (r2.inserted, r2.updated, r2.unchanged) == (0, 0, 2)
    assert table(con) == before  # lineage included: an unchanged row keeps its run_id and loaded_at


def test_a_restated_value_replaces_the_row_and_its_lineage(con):
    load_batch(con, conform(PRICES, prices([("NVDA", "2025-01-27", 118.0)])), source="sample", run_id="r1", loaded_at=T1)
    r = load_batch(con, conform(PRICES, prices([("NVDA", "2025-01-27", 118.42), ("NVDA", "2025-01-28", 128.99)])), source="sample", run_id="r2", loaded_at=T2)
    assert (r.inserted, r.updated, r.unchanged) == (1, 1, 0)
    rows = con.execute("select trade_date, close, run_id from raw.prices_daily order by trade_date").fetchall()
    assert rows == [(dt.date(2025, 1, 27), 118.42, "r2"), (dt.date(2025, 1, 28), 128.99, "r2")]


def test_a_load_reports_the_earliest_date_it_changed(con):
    """first_changed is where the incremental build must start: the earliest row inserted or
    restated, not the earliest row delivered (unchanged rows change nothing)."""
    first = load_batch(con, conform(PRICES, prices([("NVDA", "2025-01-24", 142.62), ("NVDA", "2025-01-27", 118.0)])),
                       source="sample", run_id="r1", loaded_at=T1)
    assert first.first_changed == dt.date(2025, 1, 24)  # all new: the earliest delivered
    window = [("NVDA", "2025-01-24", 142.62), ("NVDA", "2025-01-27", 118.42), ("NVDA", "2025-01-28", 128.99)]
    restated = load_batch(con, conform(PRICES, prices(window)), source="sample", run_id="r2", loaded_at=T2)
    assert (restated.inserted, restated.updated, restated.unchanged) == (1, 1, 1)
    assert restated.first_changed == dt.date(2025, 1, 27)  # 01-24 came again unchanged
    again = load_batch(con, conform(PRICES, prices(window)), source="sample", run_id="r3", loaded_at=T2 + dt.timedelta(days=1))
    assert (again.written, again.first_changed) == (0, None)


def test_a_changed_universe_owes_a_rebuild_of_every_day(con):
    """Cohorts and roles apply back through history, so a load that changes the universe (a
    ticker added, moved to another cohort, or removed) records that the marts owe a rebuild of
    every day, in its own transaction; a load changing nothing records nothing."""
    from warehouse import audit

    universe = pd.DataFrame({"ticker": ["NVDA", "WMT"], "name": ["NVIDIA", "Walmart"], "sector": ["Tech", "Staples"],
                             "cohort": ["ai", "non_ai"], "role": ["stock", "stock"]})

    def owed():
        return con.execute("select run_id, tickers_added, tickers_changed, tickers_removed from audit.universe_changes "
                           "where built_at is null order by changed_at").fetchall()

    load_universe(con, universe, source="u.csv", run_id="r1", loaded_at=T1)
    assert owed() == [("r1", 2, 0, 0)] and audit.universe_change_unbuilt(con) == "r1"
    audit.mark_built(con, loaded_before=T1, at=T2)
    assert owed() == [] and audit.universe_change_unbuilt(con) is None
    load_universe(con, universe, source="u.csv", run_id="r2", loaded_at=T2)
    # A new name, or the same file read from elsewhere, changes no cohort or role: nothing owed.
    renamed = load_universe(con, universe.assign(name=["Nvidia Corp", "Walmart"]), source="elsewhere/u.csv", run_id="r2", loaded_at=T2)
    assert renamed.updated == 2 and owed() == []
    load_universe(con, universe.assign(cohort=["ai", "ai"]), source="u.csv", run_id="r3", loaded_at=T2)
    load_universe(con, universe.iloc[:1], source="u.csv", run_id="r4", loaded_at=T2 + dt.timedelta(seconds=1))
    assert owed() == [("r3", 0, 1, 0), ("r4", 0, 0, 1)] and audit.universe_change_unbuilt(con) == "r3"


def test_rejects_go_to_quarantine_with_original_values(con):
    f = prices([("NVDA", "2025-01-27", "118.42"), ("NVDA", "2025-01-28", "abc")])
    f["_source_ref"] = "prices/NVDA.csv"
    f["_line"] = [2, 3]
    r = load_batch(con, conform(PRICES, f), source="files", run_id="r1", loaded_at=T1)
    assert (r.inserted, r.rejected, r.delivered) == (1, 1, 2)
    q = con.execute("select run_id, table_name, check_name, source_ref, line, ticker, reason, row_json from audit.quarantine").fetchall()
    assert len(q) == 1
    run_id, tbl, check, ref, line, ticker, reason, row = q[0]
    assert (run_id, tbl, check, ref, line, ticker) == ("r1", "raw.prices_daily", "raw_contract", "prices/NVDA.csv", 3, "NVDA")
    assert "close: cannot read double" in reason
    assert json.loads(row)["close"] == "abc"
    logged = con.execute("select rows_delivered, rows_inserted, rows_rejected from audit.load_batches").fetchall()
    assert logged == [(2, 1, 1)]


def test_a_failing_batch_leaves_the_warehouse_as_it_was(con):
    load_batch(con, conform(PRICES, prices([("NVDA", "2025-01-24", 142.62)])), source="sample", run_id="r1", loaded_at=T1)
    before = {t: table(con, t) for t in ("raw.prices_daily", "audit.quarantine", "audit.load_batches")}
    good = conform(PRICES, prices([("NVDA", "2025-01-27", 118.42)])).frame
    # A frame that bypassed the contract: its NULL close breaks the table's NOT NULL constraint
    # half-way through the batch, after a good row and with a reject to quarantine.
    broken = pd.concat([good, good.assign(trade_date=pd.Timestamp("2025-01-28"), close=float("nan"))], ignore_index=True)
    rejects = conform(PRICES, prices([("NVDA", "2025-01-29", "x")])).rejects
    with pytest.raises(duckdb.ConstraintException):
        load_batch(con, Batch(PRICES, broken, rejects), source="sample", run_id="r2", loaded_at=T2)
    assert {t: table(con, t) for t in before} == before


def test_a_batch_carrying_a_key_twice_is_refused_whole_naming_the_key(con):
    load_batch(con, conform(PRICES, prices([("NVDA", "2025-01-24", 142.62)])), source="sample", run_id="r1", loaded_at=T1)
    before = {t: table(con, t) for t in ("raw.prices_daily", "audit.load_batches")}
    good = conform(PRICES, prices([("NVDA", "2025-01-27", 118.42), ("SPY", "2025-01-27", 599.37)])).frame
    twice = pd.concat([good, good.iloc[[0]].assign(close=118.0)], ignore_index=True)  # bypassed the contract's dedupe
    with pytest.raises(DuplicateKeys, match=r"raw.prices_daily: the batch holds a key more than once \(ticker=NVDA, trade_date=2025-01-27 \(2 times\)\); nothing"):
        load_batch(con, Batch(PRICES, twice, good.iloc[0:0]), source="sample", run_id="r2", loaded_at=T2)
    assert {t: table(con, t) for t in before} == before


def test_new_dates_append_and_a_batch_reaching_into_loaded_dates_upserts(con):
    """A batch whose dates the table does not hold yet is appended in one insert; one that
    reaches a loaded date (a new ticker on it) goes through the keyed upsert. Both count and
    date what they wrote the same way."""
    load_batch(con, conform(PRICES, prices([("NVDA", "2025-01-24", 142.62)])), source="sample", run_id="r1", loaded_at=T1)
    appended = load_batch(con, conform(PRICES, prices([("NVDA", "2025-01-27", 118.42), ("SPY", "2025-01-27", 599.37)])),
                          source="sample", run_id="r2", loaded_at=T2)
    assert (appended.inserted, appended.updated, appended.first_changed) == (2, 0, dt.date(2025, 1, 27))
    assert type(appended.first_changed) is dt.date
    mixed = load_batch(con, conform(PRICES, prices([("SPY", "2025-01-24", 607.97), ("NVDA", "2025-01-27", 118.42),
                                                   ("NVDA", "2025-01-28", 128.99)])), source="sample", run_id="r3", loaded_at=T2)
    assert (mixed.inserted, mixed.updated, mixed.unchanged, mixed.first_changed) == (2, 0, 1, dt.date(2025, 1, 24))
    assert con.execute("select ticker, trade_date, close, run_id from raw.prices_daily order by trade_date, ticker").fetchall() == [
        ("NVDA", dt.date(2025, 1, 24), 142.62, "r1"), ("SPY", dt.date(2025, 1, 24), 607.97, "r3"),
        ("NVDA", dt.date(2025, 1, 27), 118.42, "r2"), ("SPY", dt.date(2025, 1, 27), 599.37, "r2"),
        ("NVDA", dt.date(2025, 1, 28), 128.99, "r3"),
    ]


def test_bulk_load_handles_a_large_batch(con):
    n = 200_000
    f = pd.DataFrame({
        "ticker": [f"T{i % 100:03d}" for i in range(n)],
        "trade_date": pd.Timestamp("2000-01-03") + pd.to_timedelta([i // 100 for i in range(n)], unit="D"),
        "close": 1.0, "adj_close": 1.0, "dividend": 0.0, "split_ratio": 1.0, "volume": 1,
    })
    r = load_batch(con, conform(PRICES, f), source="sample", run_id="big", loaded_at=T1)
    assert r.inserted == n
    assert con.execute("select count(*), count(distinct ticker) from raw.prices_daily").fetchone() == (n, 100)
    # Handed to DuckDB in several Arrow record batches: every row arrives once, in its place.
    assert n > 4 * ARROW_CHUNK_ROWS
    assert con.execute(
        "select count(distinct (ticker, trade_date)), min(trade_date), max(trade_date) from raw.prices_daily"
    ).fetchone() == (n, dt.date(2000, 1, 3), dt.date(2000, 1, 3) + dt.timedelta(days=n // 100 - 1))
    if lake.is_lake(con):
        # The lake writes raw's files in row groups both cores encode (lake.RAW_ROW_GROUP_ROWS).
        files = [r[0] for r in con.execute("select data_file from ducklake_list_files('bellwether', 'prices_daily', schema => 'raw')").fetchall()]
        groups = con.execute(
            "select row_group_num_rows from parquet_metadata($files) group by file_name, row_group_id, row_group_num_rows",
            {"files": files},
        ).fetchall()
        assert sum(g for (g,) in groups) == n
        assert max(g for (g,) in groups) == lake.RAW_ROW_GROUP_ROWS


def test_a_key_twice_in_different_chunks_of_a_large_batch_is_refused(con):
    """The batch's own keys are checked across every Arrow record batch it is handed over in."""
    n = 3 * ARROW_CHUNK_ROWS
    f = pd.DataFrame({
        "ticker": [f"T{i:06d}" for i in range(n)], "trade_date": pd.Timestamp("2000-01-03"),
        "close": 1.0, "adj_close": 1.0, "dividend": 0.0, "split_ratio": 1.0, "volume": 1,
    })
    f.loc[n - 1, "ticker"] = "T000000"  # the first row's key again, two chunks later
    with pytest.raises(DuplicateKeys, match=r"ticker=T000000, trade_date=2000-01-03 \(2 times\)"):
        load_batch(con, Batch(PRICES, f), source="sample", run_id="big", loaded_at=T1)
    assert con.execute("select count(*) from raw.prices_daily").fetchone()[0] == 0


def test_fetch_outcomes_are_recorded_with_the_batch(con):
    from sources.contract import outcome_frame

    b = conform(PRICES, prices([("NVDA", "2025-01-27", 118.42)]))
    b.outcomes = outcome_frame([
        {"dataset": "prices_daily", "ticker": "NVDA", "status": "ok", "rows": 1, "attempts": 1, "reason": None},
        {"dataset": "prices_daily", "ticker": "SPY", "status": "failed", "rows": 0, "attempts": 5, "reason": "rate limited (HTTP 429) after 5 attempts"},
        {"dataset": "prices_daily", "ticker": "ZZZQ", "status": "failed", "rows": 0, "attempts": 1, "reason": "unknown or delisted ticker ZZZQ",
         "retryable": False},
    ])
    r = load_batch(con, b, source="live", run_id="r1", loaded_at=T1)
    assert r.failed == ("SPY", "ZZZQ")
    got = con.execute("select ticker, status, attempts, reason, retryable from audit.fetch_outcomes order by ticker").fetchall()
    assert got == [
        ("NVDA", "ok", 1, None, None),
        ("SPY", "failed", 5, "rate limited (HTTP 429) after 5 attempts", True),  # a failure that does not say is retryable
        ("ZZZQ", "failed", 1, "unknown or delisted ticker ZZZQ", False),
    ]


def test_a_figure_seen_again_under_a_later_date_is_not_a_new_publication(con):
    from sources.contract import FUNDAMENTALS

    def quarter(report_date, revenue):
        return conform(FUNDAMENTALS, pd.DataFrame({
            "ticker": ["NVDA"], "period_end": ["2024-10-31"], "report_date": [report_date],
            "revenue": [revenue], "gross_profit": [26.156e9],
        }))

    load_batch(con, quarter("2024-12-02", 35.082e9), source="yahoo", run_id="r1", loaded_at=T1)
    r = load_batch(con, quarter("2024-12-03", 35.082e9), source="yahoo", run_id="r2", loaded_at=T2)
    assert (r.inserted, r.unchanged) == (0, 1)  # the same figures, seen the next night
    r = load_batch(con, quarter("2025-01-15", 35.1e9), source="yahoo", run_id="r3", loaded_at=T2)
    assert r.inserted == 1  # a restatement is a new publication
    got = con.execute("select report_date, revenue from raw.fundamentals_quarterly order by report_date").fetchall()
    assert got == [(dt.date(2024, 12, 2), 35.082e9), (dt.date(2025, 1, 15), 35.1e9)]


def test_loads_no_build_covered_are_owed_from_the_first_row_they_changed(con):
    """A night whose build failed or was blocked leaves its loads unbuilt: the next build
    reaches back to the earliest row they changed (a restatement inside the look-back
    included); a load that changed nothing owes nothing; a build marks what loaded before it."""
    from warehouse import audit

    t3 = T2 + dt.timedelta(days=1)
    day = prices([("NVDA", "2025-01-27", "118.42")])
    assert audit.unbuilt_since(con) is None
    assert load_batch(con, conform(PRICES, day), source="s", run_id="r1", loaded_at=T1).first_changed == dt.date(2025, 1, 27)
    assert audit.unbuilt_since(con) == dt.date(2025, 1, 27)
    audit.mark_built(con, loaded_before=T1, at=T1)
    assert audit.unbuilt_since(con) is None
    # The same row again (a night's look-back) changes nothing: nothing owed.
    load_batch(con, conform(PRICES, day), source="s", run_id="r2", loaded_at=T2)
    assert audit.unbuilt_since(con) is None
    # The close restated and a new day: owed from the restated day until a build covers it.
    restated = prices([("NVDA", "2025-01-27", "118.52"), ("NVDA", "2025-01-28", "128.99")])
    load_batch(con, conform(PRICES, restated), source="s", run_id="r3", loaded_at=t3)
    assert audit.unbuilt_since(con) == dt.date(2025, 1, 27)
    audit.mark_built(con, loaded_before=T2, at=t3)  # a build that started before r3 loaded
    assert audit.unbuilt_since(con) == dt.date(2025, 1, 27)
    audit.mark_built(con, loaded_before=t3, at=t3)
    assert audit.unbuilt_since(con) is None
    assert con.execute("select run_id, first_changed from audit.load_batches order by loaded_at").fetchall() == [
        ("r1", dt.date(2025, 1, 27)), ("r2", None), ("r3", dt.date(2025, 1, 27))]
