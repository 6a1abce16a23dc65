"""Every mart built from the real public files, checked against known events of January 2025
and against independent pandas computations from the files themselves."""

import re
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import fetch, scalar
from transforms.runner import discover

FRI, MON = dt.date(2025, 1, 24), dt.date(2025, 1, 27)


def one(path, sql, params=None):
    rows = fetch(path, sql, params)
    assert len(rows) == 1, rows
    return rows[0]


def test_every_mart_is_built_with_a_unique_grain(real_warehouse):
    path, _, _ = real_warehouse
    keys = {
        "technicals_daily": "ticker, trade_date", "support_levels": "ticker, trade_date", "market_caps_daily": "ticker, trade_date",
        "market_moves": "ticker, trade_date", "market_moves_cohorts": "trade_date, cohort", "cohort_sma_distance": "trade_date, cohort",
        "fundamentals_quarterly": "ticker, period_end", "valuation_multiples": "ticker, trade_date", "valuation_daily": "ticker, trade_date",
        "valuation_cohort_multiples": "trade_date, cohort", "valuation_cohorts": "trade_date, cohort",
        "putcall_sentiment": "trade_date, scope", "options_sentiment": "snapshot_date, ticker", "fear_greed_daily": "trade_date",
        "market_brief": "trade_date",
    }
    assert set(keys) == {m.name for m in discover() if m.layer == "marts"}
    for table, key in keys.items():
        n, distinct = one(path, f"select count(*), count(distinct ({key})) from marts.{table}")
        assert n > 0 and n == distinct, table


def test_spy_support_levels_on_the_friday_before(real_warehouse):
    path, _, _ = real_warehouse
    # "SPY's 50-day moving average support (about $596, 2% below the close) and 100-DMA (-3.9%)"
    row = one(path, "select close, nearest_support_sma, nearest_support_level, nearest_support_pct, supports "
                    "from marts.support_levels where ticker = 'SPY' and trade_date = ?", [FRI])
    assert row[0] == pytest.approx(607.97)
    assert row[1] == 50 and row[2] == pytest.approx(596.55, abs=0.01) and row[3] == pytest.approx(-1.88, abs=0.01)
    supports = {s["sma"]: s["pct"] for s in row[4]}
    assert supports[100] == pytest.approx(-3.96, abs=0.01)
    assert [s["pct"] for s in row[4]] == sorted(supports.values(), reverse=True)  # nearest first


def test_nvda_market_value_lost_on_the_selloff(real_warehouse, real_folder):
    path, _, _ = real_warehouse
    ret, change, rank, sigma = one(path, "select return_1d_pct, market_cap_change_usd, loser_rank, sigma_move from marts.market_moves where ticker = 'NVDA' and trade_date = ?", [MON])
    # Independently: the last diluted share count public on the 27th (FY2025Q3, reported 2024-11-20)
    # times the change in the close, from the files.
    fund = pd.read_csv(real_folder / "fundamentals" / "NVDA_quarterly_tidy.csv", parse_dates=["report_date"])
    shares = fund.loc[fund["report_date"] <= "2025-01-27"].sort_values("report_date")["diluted_shares"].iloc[-1]
    px = pd.read_csv(real_folder / "prices" / "NVDA.csv", parse_dates=["date"]).set_index("date")["close"]
    assert ret == pytest.approx(-16.97, abs=0.01)
    assert change == pytest.approx(shares * (px["2025-01-27"] - px["2025-01-24"]), rel=1e-6)  # the file's 6 decimals
    assert -600e9 < change < -580e9  # reported at the time: about $589bn, the largest one-day loss ever
    assert rank == 1 and sigma < -5
    brief = one(path, "select biggest_losers[1].ticker, market_cap_change_usd from marts.market_brief where trade_date = ?", [MON])
    assert brief[0] == "NVDA" and brief[1] <= change  # the universe lost at least NVDA's share


def test_nvda_fundamentals_as_known_at_each_report(real_warehouse, real_folder):
    path, _, _ = real_warehouse
    got = pd.DataFrame(
        fetch(path, "select period_end, revenue, gross_margin_pct, gross_margin_8q_avg_pct, revenue_yoy_pct from marts.fundamentals_quarterly where ticker = 'NVDA' order by period_end"),
        columns=["period_end", "revenue", "gm", "gm8", "yoy"],
    ).set_index("period_end")
    fund = pd.read_csv(real_folder / "fundamentals" / "NVDA_quarterly_tidy.csv", parse_dates=["period_end"]).dropna(subset=["report_date"])
    fund = fund.set_index(fund["period_end"].dt.date)
    gm = 100 * fund["gross_profit"] / fund["revenue"]
    # "Quarterly revenue from 6.1B to 35.1B": FY2023Q4 (Jan 2023) and FY2025Q3 (Oct 2024).
    assert got.loc[dt.date(2023, 1, 29), "revenue"] == pytest.approx(6.051e9)
    assert got.loc[dt.date(2024, 10, 27), "revenue"] == pytest.approx(35.082e9)
    # The 8-quarter average gross margin, recomputed from the file: about 72%.
    assert got.loc[dt.date(2024, 10, 27), "gm8"] == pytest.approx(gm.loc[:dt.date(2024, 10, 27)].tail(8).mean(), rel=1e-9)
    assert got.loc[dt.date(2024, 10, 27), "gm8"] == pytest.approx(72.0, abs=0.1)
    assert got.loc[dt.date(2024, 10, 27), "yoy"] == pytest.approx(100 * (35.082 / 18.12 - 1), abs=0.01)


def test_nvda_trailing_pe_from_split_adjusted_eps(real_warehouse, real_folder):
    path, _, _ = real_warehouse
    fund = pd.read_csv(real_folder / "fundamentals" / "NVDA_quarterly_tidy.csv", parse_dates=["report_date"])
    known = fund.loc[fund["report_date"] <= "2025-01-24"].tail(4)
    # The file's EPS is as published: quarters before the June 2024 10:1 split are per old share.
    eps = sum(e / 10 if r < pd.Timestamp("2024-06-10") else e for e, r in zip(known["diluted_eps"], known["report_date"], strict=True))
    pe = scalar(path, "select trailing_pe from marts.valuation_daily where ticker = 'NVDA' and trade_date = ?", [FRI])
    assert pe == pytest.approx(142.62 / eps, rel=1e-6)
    assert 50 < pe < 60


def test_putcall_percentiles_near_the_lows(real_warehouse):
    path, _, _ = real_warehouse
    # Recomputed with pandas from the loaded readings: days with a broken equity reading are out.
    pc = pd.DataFrame(fetch(path, "select trade_date, scope, ratio from raw.putcall_daily"), columns=["d", "scope", "ratio"])
    wide = pc.pivot(index="d", columns="scope", values="ratio").sort_index()
    good = wide.loc[~(wide["equity"] <= 0)]
    total = good["total"].dropna()
    window = total.loc[:FRI].tail(252)
    want = 100 * (window <= window.iloc[-1]).mean()
    ratio, rank, regime = one(path, "select ratio, pct_rank_252, regime from marts.putcall_sentiment where scope = 'total' and trade_date = ?", [FRI])
    assert ratio == pytest.approx(0.76)  # "a CBOE put/call ratio near 0.8"
    assert rank == pytest.approx(want)
    assert rank < 25  # near the lows of the year
    eq_rank, eq_regime = one(path, "select pct_rank_252, regime from marts.putcall_sentiment where scope = 'equity' and trade_date = ?", [FRI])
    assert eq_regime == "complacent" and eq_rank <= 20
    # The market-closed 2025-01-09 row (equity 0.00) does not become a reading.
    assert scalar(path, "select count(*) from marts.putcall_sentiment where trade_date = '2025-01-09'") == 0


def test_nvda_option_chain_sentiment_leaves_stale_pre_split_contracts_out(real_warehouse):
    path, _, _ = real_warehouse
    row = one(path, "select n_contracts, n_contracts_used, n_stale_excluded, put_call_volume_ratio, short_term_call_share_pct "
                    "from marts.options_sentiment where ticker = 'NVDA' and snapshot_date = '2025-02-03'")
    n, used, stale, pcr, short_calls = row
    assert n == 6533
    # PROVENANCE: 1,326 pre-split contracts (strike > 400, last traded by 2024-06-07) are among the stale.
    pre_split = scalar(path, "select count(*) from raw.option_quotes where snapshot_date = '2025-02-03' and strike > 400 and last_trade_at < '2024-06-08'")
    assert pre_split == 1326 and stale >= pre_split
    assert used < n - stale + 1
    assert 0 < pcr < 2 and 40 < short_calls < 80


def test_fear_greed_uses_what_exists_and_says_so(real_warehouse):
    path, _, _ = real_warehouse
    score, label, used = one(path, "select score, label, components_used from marts.fear_greed_daily where trade_date = ?", [MON])
    # The real files have no VIX, Treasury or credit funds, and the stock files start on
    # 2024-08-20: too short for 52-week highs or a 504-reading rank of breadth. Momentum (SPY
    # since 2005) and put/call remain: two of the seven components, and the row says so.
    assert used == 2 and 0 <= score <= 100 and label in {"extreme fear", "fear", "neutral", "greed", "extreme greed"}
    assert scalar(path, "select fear_greed_components_used from marts.market_brief where trade_date = ?", [MON]) == 2


def test_every_score_and_rank_is_in_range(real_warehouse):
    path, _, _ = real_warehouse
    checks = {
        "putcall_sentiment": ["pct_rank_252", "pct_rank_504"],
        "fear_greed_daily": ["score", "momentum_score", "putcall_score"],
        "valuation_daily": ["trailing_pe_pct_rank", "price_to_sales_pct_rank"],
        "options_sentiment": ["short_term_call_share_pct"],
    }
    for table, cols in checks.items():
        for col in cols:
            lo, hi = one(path, f"select min({col}), max({col}) from marts.{table}")
            assert lo is None or (0 <= lo and hi <= 100), (table, col, lo, hi)
    assert np.isfinite(scalar(path, "select sum(market_cap) from marts.market_caps_daily"))


def test_the_morning_brief_page_for_the_selloff(real_warehouse):
    """The nightly run wrote the HTML brief for 2025-01-27 from the real files: the headline
    figures are in it, every chart has its figure, and nothing claims to be synthetic."""
    path, first, _ = real_warehouse
    page = open(first["report"], encoding="utf-8").read()
    assert first["report"].endswith("reports/brief-2025-01-27.html")
    assert "<title>Bellwether morning brief, 2025-01-27</title>" in page and "synthetic" not in page
    assert "NVDA -16.97% (-599.5 bn USD)" in page  # the day's biggest dollar loser
    figures = re.findall(r'<figure data-chart="([^"]+)" data-points="(\d+)">(.*?)</figure>', page, flags=re.S)
    assert [name for name, _, _ in figures] == [
        "SPY against its moving averages", "QQQ against its moving averages", "XLK against its moving averages",
        "NVDA against its moving averages", "Put/call ratio", "Forward P/E, AI against non-AI",
        "Price-to-sales, AI against non-AI", "The largest names against their 50-day average", "NVDA fundamentals",
    ]
    for name, points, body in figures:
        assert "As of 2025-01-27; source: marts." in body
        assert ("<svg" in body and int(points) > 0) or ("No data for this chart: " in body and points == "0"), name
    drawn = {name for name, _, body in figures if "<svg" in body}
    assert {"SPY against its moving averages", "NVDA against its moving averages", "Put/call ratio", "NVDA fundamentals"} <= drawn
    assert "<script" not in page and "http" not in page.split("</style>")[1].split("<svg")[0]  # offline: nothing fetched
