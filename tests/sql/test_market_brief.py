"""marts.market_brief: one row per session that quotes the detail marts for that same day.

The upstream marts are built empty and then given hand-written rows, so every expected value
here is a value written in the test, found in the right place of the brief."""

import datetime as dt

import pytest

from transforms.runner import build

RUN = dt.date(2026, 1, 2)
D1, D2, D3 = dt.date(2025, 1, 23), dt.date(2025, 1, 24), dt.date(2025, 1, 27)


def insert(con, table, rows):
    """rows: dicts; columns not given stay NULL."""
    for row in rows:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"insert into marts.{table} ({cols}) values ({marks})", list(row.values()))


@pytest.fixture
def marts(mem):
    build(mem, run_date=RUN)  # every model, on empty raw tables: empty marts to write into
    for table in ("technicals_daily", "market_moves", "market_moves_cohorts", "support_levels", "putcall_sentiment", "cohort_sma_distance", "valuation_cohorts", "options_sentiment", "fear_greed_daily"):
        mem.execute(f"delete from marts.{table}")
    tech = []
    for d in (D1, D2, D3):
        for t, close in (("XLK", 230.0), ("SPY", 600.0), ("QQQ", 510.0), ("NVDA", 120.0), ("AAPL", 229.0)):
            tech.append({"ticker": t, "trade_date": d, "close": close, "return_1d_pct": -1.0})
    insert(mem, "technicals_daily", tech)
    moves = [  # D3: seven stocks, six fell; ranks as market_moves assigns them
        ("NVDA", -17.0, -590e9, 1, None), ("AVGO", -17.4, -200e9, 2, None), ("MSFT", -2.1, -70e9, 3, None),
        ("GOOGL", -4.2, -90e9, 4, None), ("META", -1.0, -10e9, 5, None), ("TSLA", -2.3, -9e9, 6, None),
        ("AAPL", 3.2, 110e9, None, 1),
    ]
    insert(mem, "market_moves", [{"trade_date": D3, "ticker": t, "return_1d_pct": r, "market_cap_change_usd": c, "loser_rank": lr, "gainer_rank": gr} for t, r, c, lr, gr in moves])
    insert(mem, "market_moves", [{"trade_date": D3, "ticker": "SPY", "return_1d_pct": -1.46, "sigma_move": -1.9}])
    insert(mem, "market_moves_cohorts", [
        {"trade_date": D3, "cohort": "all", "total_market_cap_change_usd": -859e9, "cohort_return_pct": -3.1, "n_k_sigma_moves": 2},
        {"trade_date": D3, "cohort": "ai", "total_market_cap_change_usd": -960e9},
        {"trade_date": D3, "cohort": "non_ai", "total_market_cap_change_usd": 101e9},
    ])
    insert(mem, "support_levels", [
        {"ticker": "SPY", "trade_date": D2, "close": 607.97, "nearest_support_sma": 50, "nearest_support_level": 596.55, "nearest_support_pct": -1.88, "second_support_sma": 100, "second_support_level": 583.92, "second_support_pct": -3.96},
        {"ticker": "NVDA", "trade_date": D2, "close": 142.62, "nearest_support_sma": 50, "nearest_support_level": 137.0, "nearest_support_pct": -3.9},
        {"ticker": "AAPL", "trade_date": D2, "close": 222.78, "nearest_support_sma": 200},  # not a focus ticker
    ])
    insert(mem, "putcall_sentiment", [
        {"trade_date": D2, "scope": "total", "ratio": 0.79, "pct_rank_252": 12.0, "pct_rank_504": 8.5, "regime": "complacent"},
        {"trade_date": D2, "scope": "equity", "ratio": 0.52, "ratio_ma_5": 0.55, "pct_rank_252": 18.7, "regime": "complacent"},
        {"trade_date": D2, "scope": "index", "ratio": 1.1, "pct_rank_252": 50.0, "regime": "neutral"},
    ])
    insert(mem, "cohort_sma_distance", [
        {"trade_date": D2, "cohort": "top_n", "members": ["AAPL", "NVDA"], "n_members": 2, "mean_pct_to_sma_50": -5.65, "median_pct_to_sma_50": -4.0, "n_below_sma_50": 0},
        {"trade_date": D2, "cohort": "ai", "members": ["NVDA"], "n_members": 1, "mean_pct_to_sma_50": -3.9, "median_pct_to_sma_50": -3.9, "n_below_sma_50": 0},
    ])
    insert(mem, "valuation_cohorts", [
        {"trade_date": D2, "cohort": "all", "aggregate_forward_pe": 22.4, "aggregate_forward_pe_pct_rank": 97.0, "aggregate_trailing_pe": 28.0, "ai_to_non_ai_price_to_sales": 2.1},
        {"trade_date": D2, "cohort": "ai", "median_price_to_sales": 14.7, "ai_to_non_ai_price_to_sales": 2.1},
        {"trade_date": D2, "cohort": "non_ai", "median_price_to_sales": 7.0, "ai_to_non_ai_price_to_sales": 2.1},
    ])
    insert(mem, "options_sentiment", [
        {"snapshot_date": D3, "ticker": "NVDA", "put_call_volume_ratio": 0.75, "short_term_call_share_pct": 57.0},
        {"snapshot_date": D3, "ticker": "SPY", "put_call_volume_ratio": 1.3, "short_term_call_share_pct": 44.0},
        {"snapshot_date": D3, "ticker": "AAPL", "put_call_volume_ratio": 0.6},
    ])
    insert(mem, "fear_greed_daily", [
        {"trade_date": D2, "score": 58.5, "label": "greed", "components_used": 7},
        {"trade_date": D3, "score": 43.1, "label": "fear", "components_used": 6},
    ])
    return mem


def brief(con, d, *cols):
    return con.execute(f"select {', '.join(cols)} from marts.market_brief where trade_date = ?", [d]).fetchone()


def test_one_row_per_session_with_technicals(marts):
    build(marts, run_date=RUN, select=["market_brief"])
    assert marts.execute("select trade_date from marts.market_brief order by 1").fetchall() == [(D1,), (D2,), (D3,)]


def test_index_moves_follow_the_macro_order(marts):
    build(marts, run_date=RUN, select=["market_brief"])
    (moves,) = brief(marts, D3, "index_moves")
    assert [m["ticker"] for m in moves] == ["SPY", "QQQ", "XLK"]  # NVDA and AAPL are not index proxies
    assert moves[0] == {"ticker": "SPY", "close": 600.0, "return_1d_pct": -1.0, "sigma_move": -1.9}
    assert moves[1]["sigma_move"] is None  # QQQ has no market_moves row that day


def test_movers_are_cut_at_the_macro_count_in_rank_order(marts):
    build(marts, run_date=RUN, select=["market_brief"])
    losers, gainers, total, ai, non_ai, k = brief(marts, D3, "biggest_losers", "biggest_gainers", "market_cap_change_usd", "ai_market_cap_change_usd", "non_ai_market_cap_change_usd", "n_k_sigma_moves")
    assert [m["ticker"] for m in losers] == ["NVDA", "AVGO", "MSFT", "GOOGL", "META"]  # TSLA is sixth: cut
    assert losers[0] == {"ticker": "NVDA", "return_1d_pct": -17.0, "market_cap_change_usd": -590e9}
    assert [m["ticker"] for m in gainers] == ["AAPL"]
    assert (total, ai, non_ai, k) == (-859e9, -960e9, 101e9, 2)
    # A day with no moves rows: empty lists, NULL totals.
    assert brief(marts, D1, "biggest_losers", "biggest_gainers", "market_cap_change_usd") == ([], [], None)


def test_readings_are_taken_from_the_same_day_only(marts):
    build(marts, run_date=RUN, select=["market_brief"])
    cols = ("putcall_total_ratio", "putcall_total_pct_rank_504", "putcall_equity_ratio_ma_5", "putcall_equity_regime", "top_n_mean_pct_to_sma_50", "top_n_members", "aggregate_forward_pe", "ai_median_price_to_sales", "non_ai_median_price_to_sales", "ai_to_non_ai_price_to_sales", "fear_greed_label")
    assert brief(marts, D2, *cols) == (0.79, 8.5, 0.55, "complacent", -5.65, ["AAPL", "NVDA"], 22.4, 14.7, 7.0, 2.1, "greed")
    # The 27th has no put/call, SMA-distance or valuation rows: NULL, not the 24th's readings.
    assert brief(marts, D3, *cols) == (None,) * 10 + ("fear",)


def test_focus_tickers_only_in_macro_order(marts):
    build(marts, run_date=RUN, select=["market_brief"])
    supports, options = brief(marts, D2, "support_levels", "options_sentiment")
    assert [s["ticker"] for s in supports] == ["SPY", "NVDA"]
    assert supports[0]["nearest_support_level"] == 596.55 and supports[0]["second_support_pct"] == -3.96
    assert options is None
    (options,) = brief(marts, D3, "options_sentiment")
    assert [(o["ticker"], o["short_term_call_share_pct"]) for o in options] == [("SPY", 44.0), ("NVDA", 57.0)]


def test_incremental_build_equals_full(marts):
    build(marts, run_date=RUN, select=["market_brief"])
    full = marts.execute("select * from marts.market_brief order by trade_date").fetchall()
    marts.execute("update marts.market_brief set fear_greed_score = -1 where trade_date >= ?", [D2])
    build(marts, run_date=RUN, select=["market_brief"], since=D2)
    assert marts.execute("select * from marts.market_brief order by trade_date").fetchall() == full
    assert marts.execute("select count(*) from marts.market_brief where trade_date = ?", [D1]).fetchone()[0] == 1
