"""The land-stage checks on the real public files (../shared/data/real, PROVENANCE.md): their
documented defects are quarantined (errors) or flagged (warnings), and everything else loads.

The warehouse is the shared `real_warehouse`: a backfill-sized first night (2025-01-27) and a
second night with the NVDA option chain (2025-02-03). Expected counts are read from the files
here with pandas, independently of the sources and the checks."""

import json

import pandas as pd

from tests.integration.conftest import fetch, scalar

LAST_RUN = pd.Timestamp("2025-02-03")
STALE_DAYS = 5          # options_stale_days()
PLACEHOLDER_IV = 1e-4   # options_placeholder_iv()
PROVENANCE_PRE_SPLIT = 1326
PROVENANCE_PLACEHOLDER_IVS = 1585


def failing(path, run_id, table):
    """{check: (severity, unexpected rows, sample keys)} for the run's failing checks on table."""
    rows = fetch(
        path,
        """
        select check_name, any_value(severity), sum(unexpected_count), list(sample_keys::varchar)
        from audit.check_results
        where run_id = ? and table_name = ? and stage = 'land' and not success
        group by check_name
        """,
        [run_id, table],
    )
    return {
        name: (severity, int(n), [k for keys in samples if keys for k in json.loads(keys)])
        for name, severity, n, samples in rows
    }


def checked_tables(path, run_id):
    return {r[0] for r in fetch(path, "select distinct table_name from audit.check_results where run_id = ? and stage = 'land'", [run_id])}


def check_refusals(path, table=None):
    """Rows the data checks (not the raw contract) sent to audit.quarantine."""
    where = " and table_name = ?" if table else ""
    return fetch(
        path,
        f"select table_name, check_name, source_ref, line, row_key::varchar, row_json::varchar from audit.quarantine "
        f"where check_name <> 'raw_contract'{where} order by table_name, line",
        [table] if table else [],
    )


def test_every_landed_table_was_checked(real_warehouse):
    path, first, second = real_warehouse
    assert checked_tables(path, first["run_id"]) >= {
        "raw.universe", "raw.prices_daily", "raw.putcall_daily", "raw.fundamentals_quarterly",
    }
    assert "raw.option_quotes" in checked_tables(path, second["run_id"])


def test_the_closed_day_putcall_row_is_quarantined_and_flagged(real_warehouse, real_folder):
    path, first, _ = real_warehouse
    feed = real_folder / "putcall" / "edwin-repo_market-signal-dashboard" / "putcall.csv"
    lines = feed.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if text.startswith("2025-01-09,"))
    assert lines[line - 1] == "2025-01-09,0.0,1.73,1.73"  # PROVENANCE 2a

    # The 0.0 equity ratio is not a reading: refused with its file, line and original values.
    (refused,) = check_refusals(path, "raw.putcall_daily")
    table, check, source_ref, at_line, key, row = refused
    assert check == "ratio_is_a_reading" and source_ref.endswith("edwin-repo_market-signal-dashboard/putcall.csv")
    assert at_line == line
    assert json.loads(key) == {"trade_date": "2025-01-09", "scope": "equity"}
    assert json.loads(row)["ratio"] == 0.0
    assert scalar(path, "select count(*) from raw.putcall_daily where trade_date = '2025-01-09' and scope = 'equity'") == 0

    # The day itself is recorded as an anomaly; the index-option readings of that day load.
    flagged = failing(path, first["run_id"], "raw.putcall_daily")
    severity, n, keys = flagged["trade_date_is_session"]
    assert severity == "warn" and n == 3
    assert {(k["trade_date"], k["scope"]) for k in keys} == {("2025-01-09", s) for s in ("equity", "total", "index")}
    assert dict(fetch(path, "select scope, ratio from raw.putcall_daily where trade_date = '2025-01-09'")) == {"total": 1.73, "index": 1.73}


def test_putcall_gaps_are_flagged_and_everything_else_loads(real_warehouse, real_folder):
    path, first, second = real_warehouse
    flagged = failing(path, first["run_id"], "raw.putcall_daily")
    # PROVENANCE 2a: the feed misses 2003-10-20 (equity only then) and 2020-09-02 (all scopes).
    severity, n, keys = flagged["calendar_gap"]
    assert severity == "warn"
    assert {(k["trade_date"], k["scope"]) for k in keys} == {
        ("2003-10-20", "equity"), ("2020-09-02", "equity"), ("2020-09-02", "total"), ("2020-09-02", "index"),
    }
    assert set(flagged) == {"ratio_is_a_reading", "trade_date_is_session", "calendar_gap"}
    assert failing(path, second["run_id"], "raw.putcall_daily") == {}
    # Every reading of the feed up to the last run date is in raw, bar the refused one (the
    # CBOE volume archives cover dates the feed has, so they add volumes, not rows).
    feed = pd.read_csv(real_folder / "putcall" / "edwin-repo_market-signal-dashboard" / "putcall.csv", parse_dates=["date"])
    feed = feed[feed["date"] <= LAST_RUN]
    readings = int(feed[["equity_pc_ratio", "total_pc_ratio", "index_pc_ratio"]].notna().sum().sum())
    assert scalar(path, "select count(*) from raw.putcall_daily") == readings - 1


def test_stale_contracts_and_placeholder_ivs_are_flagged_not_dropped(real_warehouse, real_folder):
    path, _, second = real_warehouse
    chain = pd.read_csv(real_folder / "options" / "ansabs" / "nvda_options.csv")
    traded = pd.to_datetime(chain["lastTradeDate"], utc=True).dt.tz_localize(None).dt.normalize()
    stale = (LAST_RUN - traded).dt.days > STALE_DAYS
    pre_split = (chain["strike"] > 400) & (traded <= pd.Timestamp("2024-06-07"))
    assert int(pre_split.sum()) == PROVENANCE_PRE_SPLIT and bool(stale[pre_split].all())
    placeholders = chain["impliedVolatility"] < PLACEHOLDER_IV
    assert int(placeholders.sum()) == PROVENANCE_PLACEHOLDER_IVS

    flagged = failing(path, second["run_id"], "raw.option_quotes")
    assert set(flagged) == {"stale_contract", "placeholder_implied_volatility"}
    assert flagged["stale_contract"][:2] == ("warn", int(stale.sum()))
    assert flagged["placeholder_implied_volatility"][:2] == ("warn", PROVENANCE_PLACEHOLDER_IVS)
    # Every contract loads (the 60 IVs above 10 are all on stale pre-split contracts: not errors).
    assert check_refusals(path, "raw.option_quotes") == []
    assert scalar(path, "select count(*) from raw.option_quotes where snapshot_date = '2025-02-03'") == len(chain)
    assert int((chain["impliedVolatility"] > 10).sum()) == int(((chain["impliedVolatility"] > 10) & stale).sum()) > 0


def test_unrestated_share_counts_are_flagged(real_warehouse, real_folder):
    path, first, _ = real_warehouse
    # PROVENANCE 4a: share counts as reported, not split-adjusted (4:1 in 2021, 10:1 in 2024).
    severity, n, keys = failing(path, first["run_id"], "raw.fundamentals_quarterly")["share_count_discontinuity"]
    assert severity == "warn" and n == 2
    assert {k["period_end"] for k in keys} == {"2021-08-01", "2024-07-28"}
    assert set(failing(path, first["run_id"], "raw.fundamentals_quarterly")) == {"share_count_discontinuity"}
    tidy = pd.read_csv(real_folder / "fundamentals" / "NVDA_quarterly_tidy.csv", parse_dates=["report_date"])
    assert scalar(path, "select count(*) from raw.fundamentals_quarterly") == int((tidy["report_date"] <= LAST_RUN).sum())
    assert check_refusals(path, "raw.fundamentals_quarterly") == []


def test_clean_price_files_load_whole_with_no_check_failing(real_warehouse, real_folder):
    path, first, second = real_warehouse
    # PROVENANCE 1b, 1c: no gaps, no weekend dates, no OHLC violations; no move beyond 25%
    # (AVGO's +24.4% on 2024-12-13 is the largest).
    for run in (first, second):
        assert failing(path, run["run_id"], "raw.prices_daily") == {}
        assert failing(path, run["run_id"], "raw.universe") == {}
    expected = 0
    for f in sorted((real_folder / "prices").glob("*.csv")):
        dates = pd.to_datetime(pd.read_csv(f, usecols=[0]).iloc[:, 0].astype(str).str[:10])
        expected += int((dates <= LAST_RUN).sum())
    assert scalar(path, "select count(*) from raw.prices_daily") == expected
    assert check_refusals(path, "raw.prices_daily") == []


def test_only_documented_defects_are_refused(real_warehouse):
    path, first, second = real_warehouse
    refused = check_refusals(path)
    assert [(r[0], r[1]) for r in refused] == [("raw.putcall_daily", "ratio_is_a_reading")]
    errors = fetch(
        path,
        "select run_id, table_name, check_name from audit.check_results where stage = 'land' and severity = 'error' and not success",
    )
    assert errors == [(first["run_id"], "raw.putcall_daily", "ratio_is_a_reading")]
    assert first["status"] == second["status"] == "partial"

