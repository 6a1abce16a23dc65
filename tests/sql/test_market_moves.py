"""marts.market_moves and marts.market_moves_cohorts on inline rows: dollar changes on the
shares in force that day, sigma moves against the 63 returns before the day, the day's loser and
gainer ranks, the cohort roll-up worked by hand, and incremental builds equal to full ones.

Market caps come from marts.market_caps_daily, built by the runner from filings (diluted shares
reported before the prices start, so market_cap = shares * close)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import (
    RUN, built_in_full, insert_fundamentals, insert_many_prices, insert_universe, models_up_to, new_warehouse,
)
from transforms.runner import build, input_start_for

D = dt.date
DAYS = calendar.sessions("2024-01-02", "2025-12-31")
MODELS = models_up_to("market_moves", "market_moves_cohorts")
FILINGS = ("ticker", "period_end", "report_date", "diluted_shares")  # the column order of the inline filings below
MOVE_COLS = (
    "trade_date, ticker, role, cohort, close, prev_close, return_1d_pct, return_stdev_63d_pct, sigma_move, "
    "is_k_sigma_move, shares_outstanding, market_cap_prev, market_cap, market_cap_change_usd, loser_rank, gainer_rank"
)


def run(con, **kw):
    return build(con, run_date=RUN, select=MODELS, **kw)


def moves(con, where="true"):
    return con.execute(f"select {MOVE_COLS} from marts.market_moves where {where} order by trade_date, ticker").df()


def cohorts(con, where="true"):
    return con.execute(f"select * from marts.market_moves_cohorts where {where} order by trade_date, cohort").df()


# ---------------------------------------------------------------------------------------------


def test_dollar_change_uses_the_shares_in_force_that_day(mem):
    insert_universe(mem, [("A", "stock", "ai"), ("IDX", "index_proxy", None)])
    # 1,000 shares; a new filing public on Jan 7 says 1,100 (issuance, not a split).
    insert_fundamentals(mem, [("A", D(2024, 9, 30), D(2024, 11, 1), 1_000.0), ("A", D(2024, 12, 31), D(2025, 1, 7), 1_100.0)], FILINGS)
    insert_fundamentals(mem, [("IDX", D(2024, 9, 30), D(2024, 11, 1), 50.0)], FILINGS)  # even with a count, an index proxy has no dollar change
    closes = {D(2025, 1, 2): 10.0, D(2025, 1, 3): 11.0, D(2025, 1, 6): 10.5, D(2025, 1, 7): 10.0, D(2025, 1, 8): 12.0}
    insert_many_prices(mem, [("A", d, c, c) for d, c in closes.items()] + [("IDX", d, 2 * c, 2 * c) for d, c in closes.items()])
    run(mem)
    a = moves(mem, "ticker = 'A'").set_index("trade_date")
    first = a.iloc[0]
    assert pd.isna(first["market_cap_change_usd"]) and pd.isna(first["return_1d_pct"]) and pd.isna(first["market_cap_prev"])
    assert first["market_cap"] == pytest.approx(10_000.0)
    jan3, jan7, jan8 = (a.loc[pd.Timestamp(d)] for d in (D(2025, 1, 3), D(2025, 1, 7), D(2025, 1, 8)))
    assert jan3["market_cap_change_usd"] == pytest.approx(1_000 * (11 - 10))
    assert (jan3["market_cap_prev"], jan3["market_cap"]) == pytest.approx((10_000.0, 11_000.0))
    assert jan3["return_1d_pct"] == pytest.approx(10.0)
    # Jan 7: the new count is in force: 1,100 * (10 - 10.5), not the change in market cap
    # (11,000 - 10,500 = +500, which is issuance, not a price move).
    assert jan7["market_cap_change_usd"] == pytest.approx(-550.0)
    assert (jan7["market_cap_prev"], jan7["market_cap"], jan7["shares_outstanding"]) == pytest.approx((10_500.0, 11_000.0, 1_100.0))
    assert jan8["market_cap_change_usd"] == pytest.approx(1_100 * 2.0)
    assert pd.isna(jan3["loser_rank"]) and jan3["gainer_rank"] == 1
    assert jan7["loser_rank"] == 1 and pd.isna(jan7["gainer_rank"])

    idx = moves(mem, "ticker = 'IDX'")
    assert idx["return_1d_pct"].iloc[1] == pytest.approx(10.0)  # returns, yes
    for c in ("shares_outstanding", "market_cap_prev", "market_cap", "market_cap_change_usd", "loser_rank", "gainer_rank"):
        assert idx[c].isna().all(), c
    assert (idx["role"] == "index_proxy").all() and idx["cohort"].isna().all()


def walk(rng, n, start, sd):
    return start * np.exp(np.cumsum(np.r_[0.0, rng.normal(0, sd, n - 1)]))


@pytest.fixture(scope="module")
def selloff():
    """70 sessions of noise, then a last day worked by hand:
    ticker  cohort   shares  close day 68 -> 69   change     prev cap
    A       ai        1,000    100 -> 83          -17,000    100,000
    B       ai        2,000     50 -> 49           -2,000    100,000
    C       non_ai    5,000     20 -> 20.2         +1,000    100,000
    D       non_ai    1,000     40 -> 39.8           -200     40,000
    E       (none)    3,000     10 -> 10.3           +900     30,000
    SPY     index proxy: a return and a sigma only.
    """
    rng = np.random.default_rng(5)
    n = 70
    days = DAYS[:n]
    spec = {"A": (1_000, 100, 83, 0.01), "B": (2_000, 50, 49, 0.015), "C": (5_000, 20, 20.2, 0.01), "D": (1_000, 40, 39.8, 0.01), "E": (3_000, 10, 10.3, 0.01), "SPY": (None, 500, 490, 0.005)}
    rows = []
    for t, (_, c68, c69, sd) in spec.items():
        path = walk(rng, n - 1, 1.0, sd)
        close = np.r_[c68 * path / path[-1], c69]
        adj = close * (np.linspace(0.98, 1.0, n) if t == "E" else 1.0)  # E pays dividends
        rows += [(t, d, float(c), float(a)) for d, c, a in zip(days, close, adj)]
    con = new_warehouse()
    insert_universe(con, [("A", "stock", "ai"), ("B", "stock", "ai"), ("C", "stock", "non_ai"), ("D", "stock", "non_ai"), ("E", "stock", None), ("SPY", "index_proxy", None)])
    insert_fundamentals(con, [(t, D(2023, 9, 30), D(2023, 11, 1), float(s)) for t, (s, *_) in spec.items() if s], FILINGS)
    insert_many_prices(con, rows)
    run(con)
    yield con, pd.DataFrame(rows, columns=["ticker", "trade_date", "close", "adj_close"]), days
    con.close()


def test_the_selloff_day_by_hand(selloff):
    con, _, days = selloff
    last = moves(con, f"trade_date = '{days[-1]}'").set_index("ticker")
    assert last["market_cap_change_usd"].drop("SPY").to_dict() == pytest.approx({"A": -17_000.0, "B": -2_000.0, "C": 1_000.0, "D": -200.0, "E": 900.0})
    assert pd.isna(last.loc["SPY", "market_cap_change_usd"])
    assert last["market_cap_prev"].drop("SPY").to_dict() == pytest.approx({"A": 100_000.0, "B": 100_000.0, "C": 100_000.0, "D": 40_000.0, "E": 30_000.0})
    assert last["loser_rank"].dropna().to_dict() == {"A": 1, "B": 2, "D": 3}
    assert last["gainer_rank"].dropna().to_dict() == {"C": 1, "E": 2}
    assert last.loc["A", "return_1d_pct"] == pytest.approx(-17.0)
    assert last.loc["SPY", "return_1d_pct"] == pytest.approx(-2.0) and not pd.isna(last.loc["SPY", "sigma_move"])
    # E pays dividends: its return is over adj_close, its dollar change over close.
    e_adj = np.linspace(0.98, 1.0, 70)[-2:]
    assert last.loc["E", "return_1d_pct"] == pytest.approx(100 * (10.3 * e_adj[1] / (10 * e_adj[0]) - 1))
    assert last.loc["E", "return_1d_pct"] != pytest.approx(3.0)


def test_sigma_move_against_the_63_returns_before_the_day(selloff):
    con, prices, _ = selloff
    got = moves(con)
    want = prices.sort_values(["ticker", "trade_date"]).copy()
    want["ret"] = 100 * (want["adj_close"] / want.groupby("ticker")["adj_close"].shift(1) - 1)
    # The stdev of the previous 63 returns, today excluded; NULL with fewer.
    want["stdev"] = want.groupby("ticker")["ret"].transform(lambda r: r.shift(1).rolling(63, min_periods=63).std(ddof=1))
    want["sigma"] = want["ret"] / want["stdev"]
    want = want.sort_values(["trade_date", "ticker"]).reset_index(drop=True)
    np.testing.assert_allclose(got["return_stdev_63d_pct"].astype(float), want["stdev"], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["sigma_move"].astype(float), want["sigma"], rtol=1e-9, equal_nan=True)
    # Session 63 (0-based) has only 62 earlier returns: NULL; session 64 has 63.
    per = got[got.ticker == "A"].reset_index(drop=True)
    assert pd.isna(per.loc[63, "sigma_move"]) and not pd.isna(per.loc[64, "sigma_move"])
    assert per["is_k_sigma_move"].iloc[:64].isna().all()
    flags = dict(zip(want["ticker"] + want["trade_date"].astype(str), want["sigma"].abs() >= 3))
    for _, r in got.dropna(subset=["sigma_move"]).iterrows():
        assert r["is_k_sigma_move"] == flags[r["ticker"] + str(r["trade_date"].date())]
    last = got[got.trade_date == got.trade_date.max()].set_index("ticker")
    assert last.loc["A", "is_k_sigma_move"] and last.loc["A", "sigma_move"] < -3  # -17% on ~1% noise
    assert not last.loc["B", "is_k_sigma_move"]  # -2% on 1.5% noise


def test_cohort_roll_up_by_hand(selloff):
    con, _, days = selloff
    got = cohorts(con, f"trade_date = '{days[-1]}'").set_index("cohort")
    assert list(got.index) == ["ai", "all", "non_ai"]
    assert got["n_members"].to_dict() == {"ai": 2, "all": 5, "non_ai": 2}
    assert got["total_market_cap_change_usd"].to_dict() == pytest.approx({"ai": -19_000.0, "all": -17_300.0, "non_ai": 800.0})
    assert got["total_market_cap_prev_usd"].to_dict() == pytest.approx({"ai": 200_000.0, "all": 370_000.0, "non_ai": 140_000.0})
    assert got["cohort_return_pct"].to_dict() == pytest.approx({"ai": -9.5, "all": 100 * -17_300 / 370_000, "non_ai": 100 * 800 / 140_000})
    assert got["biggest_loser_ticker"].to_dict() == {"ai": "A", "all": "A", "non_ai": "D"}
    assert got["biggest_loser_change_usd"].to_dict() == pytest.approx({"ai": -17_000.0, "all": -17_000.0, "non_ai": -200.0})
    assert got.loc["ai", "biggest_gainer_ticker"] is None or pd.isna(got.loc["ai", "biggest_gainer_ticker"])  # no AI stock gained
    assert pd.isna(got.loc["ai", "biggest_gainer_change_usd"])
    assert got.loc["all", "biggest_gainer_ticker"] == "C" and got.loc["non_ai", "biggest_gainer_change_usd"] == pytest.approx(1_000.0)
    # k-sigma moves, counted against market_moves' own flags for the members.
    flags = moves(con, f"trade_date = '{days[-1]}' and role = 'stock'").set_index("ticker")["is_k_sigma_move"]
    assert got.loc["ai", "n_k_sigma_moves"] == int(flags[["A", "B"]].sum()) >= 1
    assert got.loc["all", "n_k_sigma_moves"] == int(flags.sum())
    # The first session: no previous close, so no members, and a row for each cohort anyway.
    first = cohorts(con, f"trade_date = '{days[0]}'")
    assert first["n_members"].tolist() == [0, 0, 0] and first["total_market_cap_change_usd"].isna().all()
    assert first["n_k_sigma_moves"].tolist() == [0, 0, 0]


def test_coverage_names_the_stocks_counted_and_their_share_of_market_cap(mem):
    """Worked by hand, on the third session:
    ticker  role         cohort  shares  closes          market cap
    A       stock        ai       1,000  10, 11, 12      prev 11,000, change +1,000: a member
    B       stock        non_ai   2,000  5, 5, 4         prev 10,000, change -2,000: a member
    N       stock        non_ai     500  -, -, 20        listed on day 3: 10,000 today, no previous
    X       stock        ai          -   7, 7, 8         no shares known: no market cap at all
    A2      share_class  ai       1,000  9.9, 10.9, 11.9 A's second class: priced, never a stock
    """
    d1, d2, d3 = DAYS[:3]
    insert_universe(mem, [("A", "stock", "ai"), ("B", "stock", "non_ai"), ("N", "stock", "non_ai"), ("X", "stock", "ai"),
                          ("A2", "share_class", "ai")])
    insert_fundamentals(mem, [(t, D(2023, 9, 30), D(2023, 11, 1), s) for t, s in
                              (("A", 1_000.0), ("B", 2_000.0), ("N", 500.0), ("A2", 1_000.0))], FILINGS)
    closes = {"A": (10, 11, 12), "B": (5, 5, 4), "N": (None, None, 20), "X": (7, 7, 8), "A2": (9.9, 10.9, 11.9)}
    insert_many_prices(mem, [(t, d, float(c), float(c)) for t, cs in closes.items() for d, c in zip((d1, d2, d3), cs) if c])
    run(mem)
    got = cohorts(mem, f"trade_date = '{d3}'").set_index("cohort")
    assert got["n_stocks"].to_dict() == {"ai": 2, "all": 4, "non_ai": 2}  # A2 is no stock
    assert got["n_members"].to_dict() == {"ai": 1, "all": 2, "non_ai": 1}
    assert got["n_without_market_cap"].to_dict() == {"ai": 1, "all": 1, "non_ai": 0}
    # Known only where every stock has a market cap: B's 10,000 of B's and N's 20,000.
    assert pd.isna(got.loc["ai", "market_cap_coverage_pct"]) and pd.isna(got.loc["all", "market_cap_coverage_pct"])
    assert got.loc["non_ai", "market_cap_coverage_pct"] == pytest.approx(50.0)
    assert got["total_market_cap_change_usd"].to_dict() == pytest.approx({"ai": 1_000.0, "all": -1_000.0, "non_ai": -2_000.0})
    assert got["total_market_cap_prev_usd"].to_dict() == pytest.approx({"ai": 11_000.0, "all": 21_000.0, "non_ai": 10_000.0})
    assert got["n_with_sigma"].tolist() == [0, 0, 0]  # three sessions: no 63-return yardstick yet
    second = cohorts(mem, f"trade_date = '{d2}'").set_index("cohort")
    assert second.loc["non_ai", ["n_stocks", "n_members"]].tolist() == [1, 1]  # N is not priced yet
    assert second.loc["non_ai", "market_cap_coverage_pct"] == pytest.approx(100.0)
    a2 = moves(mem, "ticker = 'A2'")
    assert a2["return_1d_pct"].notna().sum() == 2 and a2["market_cap"].isna().all()  # priced, never counted


def test_incremental_build_equals_a_full_build(mem):
    rng = np.random.default_rng(9)
    n, cut = 300, 280
    days = DAYS[:n]
    tickers = {"N1": ("stock", "ai"), "N2": ("stock", "ai"), "N3": ("stock", "non_ai"), "N4": ("stock", None), "SPY": ("index_proxy", None)}
    rows = []
    for t in tickers:
        close = walk(rng, n, 100, 0.02)
        keep = rng.random(n) > 0.05  # missing days: windows count the ticker's rows
        rows += [(t, d, float(c), float(c) * 0.99) for d, c, k in zip(days, close, keep) if k]
    insert_universe(mem, [(t, r, c) for t, (r, c) in tickers.items()])
    insert_fundamentals(mem, [(t, D(2023, 9, 30), D(2023, 11, 1), 1e9) for t, (r, _) in tickers.items() if r == "stock"], FILINGS)
    insert_fundamentals(mem, [("N1", D(2024, 9, 30), DAYS[cut + 5], 1.1e9)], FILINGS)  # a count that changes after the cut
    insert_many_prices(mem, [r for r in rows if r[1] < days[cut]])
    run(mem)
    since = days[cut - 3]
    assert input_start_for(since, 64) > days[0]
    mem.execute("update raw.prices_daily set close = close * 1.05 where trade_date = ? and ticker = 'N2'", [since])
    insert_many_prices(mem, [r for r in rows if r[1] >= days[cut]])
    results = {r.relation: r for r in run(mem, since=since)}
    for rel in ("marts.market_moves", "marts.market_moves_cohorts"):
        assert results[rel].mode == "incremental" and 0 < results[rel].rows_written < results[rel].rows
    incremental = (moves(mem), cohorts(mem))

    with built_in_full(mem, MODELS) as full:
        pd.testing.assert_frame_equal(incremental[0], moves(full))
        pd.testing.assert_frame_equal(incremental[1], cohorts(full))
    assert incremental[0]["sigma_move"].notna().sum() > 800
