"""The nightly flow on the files source: the real public files, and bad input that must not
cost the good rows."""

import datetime as dt
import json

import pandas as pd
import pytest

from flows.nightly import nightly
from tests.conftest import lake_target
from tests.integration.conftest import fetch, scalar

PROVENANCE_TOTALPC_ROWS = 3253


def test_backfill_sized_load_of_the_real_files(real_warehouse, real_folder):
    path, first, second = real_warehouse
    # Every SPY row up to the second run date arrived (an independent read of the file).
    spy = pd.read_csv(real_folder / "prices" / "SPY.csv", parse_dates=["Date"])
    expected = int((spy["Date"] <= "2025-02-03").sum())
    assert scalar(path, "select count(*) from raw.prices_daily where ticker = 'SPY'") == expected
    assert scalar(path, "select min(trade_date) from raw.prices_daily where ticker = 'SPY'") == dt.date(2005, 1, 3)
    # As-traded close and dividend-adjusted close both land (PROVENANCE section 5).
    # (taeheon-kong writes float32 values such as 599.3699951171875: the noise is gone.)
    assert fetch(path, "select close, adj_close from raw.prices_daily where ticker = 'SPY' and trade_date = '2025-01-27'") == [(599.37, pytest.approx(590.7997, abs=1e-4))]
    assert fetch(path, "select close, adj_close from raw.prices_daily where ticker = 'NVDA' and trade_date = '2025-01-27'") == [(118.42, pytest.approx(118.2434, abs=1e-4))]
    # The put/call files: ratios from the dashboard, volumes from the official CBOE archives.
    pc = dict(fetch(path, "select scope, ratio from raw.putcall_daily where trade_date = '2025-01-27'"))
    assert pc == {"equity": 0.57, "total": 0.89, "index": 1.13}
    assert scalar(path, "select count(*) from raw.putcall_daily where scope = 'total' and call_volume is not null") == PROVENANCE_TOTALPC_ROWS
    # The fundamentals known by 2025-01-27, and the option chain of 2025-02-03 (second night).
    assert scalar(path, "select count(*) from raw.option_quotes where snapshot_date = '2025-02-03'") == 6533
    assert scalar(path, "select max(report_date) <= '2025-02-03' from raw.fundamentals_quarterly")


def test_technicals_on_the_real_files_match_the_commentary(real_warehouse, real_folder):
    path, _, _ = real_warehouse
    # "SPY's 50-day moving average support, about $596, 2% below the close; the 100-DMA -3.9%":
    # recomputed here independently with pandas from the vendor file.
    spy = pd.read_csv(real_folder / "prices" / "SPY.csv", parse_dates=["Date"]).set_index("Date")
    spy = spy.loc[:"2025-01-27"]
    want50 = spy["Close"].rolling(50).mean().loc["2025-01-24"]
    want100 = spy["Close"].rolling(100).mean().loc["2025-01-24"]
    sma50, sma100, p50, p100 = fetch(path, "select sma_50, sma_100, pct_to_sma_50, pct_to_sma_100 from marts.technicals_daily where ticker = 'SPY' and trade_date = '2025-01-24'")[0]
    # (The file holds float32 values that the source denoises, so agreement is to float32 precision.)
    assert sma50 == pytest.approx(want50, rel=1e-7) and sma50 == pytest.approx(596.55, abs=0.01)
    assert sma100 == pytest.approx(want100, rel=1e-7)
    assert p50 == pytest.approx(-1.88, abs=0.01) and p100 == pytest.approx(-3.96, abs=0.01)
    # NVDA's -16.97% on 2025-01-27, from the dividend-adjusted close.
    nvda = scalar(path, "select return_1d_pct from marts.technicals_daily where ticker = 'NVDA' and trade_date = '2025-01-27'")
    assert nvda == pytest.approx(-16.97, abs=0.01)


def test_real_defects_are_quarantined_not_dropped(real_warehouse):
    path, first, second = real_warehouse
    assert first["status"] == "partial"
    q = fetch(path, "select table_name, source_ref, line, reason from audit.quarantine where source_ref like '%NVDA_quarterly_tidy.csv'")
    assert q and all(r[0] == "raw.fundamentals_quarterly" and r[2] == 25 and "report_date is missing" in r[3] for r in q)
    runs = fetch(path, "select status, message from audit.runs order by started_at")
    assert [r[0] for r in runs] == ["partial", "partial"]
    assert "quarantined" in runs[0][1]


@pytest.fixture
def messy_folder(tmp_path):
    (tmp_path / "prices").mkdir()
    (tmp_path / "prices" / "GOOD.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2025-01-21,10,11,9,10.5,10.4,100\n2025-01-22,10,11,9,10.6,10.5,100\n2025-01-23,10,11,9,10.7,10.6,100\n"
    )
    (tmp_path / "prices" / "BAD.csv").write_text(
        "date,open,high,low,close,volume\n"
        "2025-01-21,10,11,9,10.5,100\n2025-01-22,10,11,9,abc,100\n2025-01-23,10,11,9,10.7,100\n"
    )
    (tmp_path / "prices" / "BROKEN.csv").write_text("when,what\n2025-01-21,1\n")
    universe = tmp_path / "universe.csv"
    universe.write_text("ticker,name,sector,cohort,role\nGOOD,Good,Tech,ai,stock\nBAD,Bad,Tech,non_ai,stock\nBROKEN,Broken,Tech,non_ai,stock\n")
    return tmp_path, universe


def test_a_bad_file_is_reported_without_losing_the_good_ones(messy_folder, tmp_path):
    folder, universe = messy_folder
    path = lake_target(tmp_path)
    summary = nightly(run_date=dt.date(2025, 1, 23), source="files", path=str(folder), universe=str(universe), warehouse=str(path))
    assert summary["status"] == "partial"
    assert fetch(path, "select ticker, count(*) from raw.prices_daily group by 1 order by 1") == [("BAD", 2), ("GOOD", 3)]
    q = fetch(path, "select source_ref, line, ticker, reason, row_json from audit.quarantine order by source_ref")
    assert len(q) == 2
    bad, broken = q
    assert bad[0].endswith("prices/BAD.csv") and bad[1] == 3 and bad[2] == "BAD" and "close" in bad[3]
    assert json.loads(bad[4])["close"] == "abc"
    assert broken[0].endswith("prices/BROKEN.csv") and broken[1] is None and "no date column" in broken[3]
    assert any("BAD.csv:3" in r for r in summary["rejects"])
