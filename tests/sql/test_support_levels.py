"""marts.support_levels: hand-made moving averages -> supports and resistances worked out by hand;
an independent pandas check from prices; incremental builds equal to full ones."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import RUN, built_in_full, insert_prices, one_row
from transforms.runner import build

LENGTHS = (20, 50, 100, 125, 200)
FROM_PRICES = ["stg_prices_daily", "technicals_daily", "support_levels"]


def given_technicals(con, rows):
    """rows: (ticker, trade_date, close, {sma length: level}); marts.technicals_daily stands in
    for the real model, so the levels are chosen by hand."""
    con.execute(
        "create table marts.technicals_daily (ticker varchar, trade_date date, close double, "
        + ", ".join(f"sma_{n} double, pct_to_sma_{n} double" for n in LENGTHS) + ")"
    )
    for ticker, day, close, smas in rows:
        values = [ticker, day, close]
        for n in LENGTHS:
            level = smas.get(n)
            values += [level, None if level is None else 100 * (level / close - 1)]
        con.execute(f"insert into marts.technicals_daily values ({', '.join('?' * len(values))})", values)
    build(con, run_date=RUN, select=["support_levels"])


def levels(con, ticker, day):
    return one_row(con, "select * from marts.support_levels where ticker = ? and trade_date = ?", [ticker, day])


def pct(level, close):
    return 100 * (level / close - 1)


def test_levels_below_and_above_the_close_nearest_first(mem):
    # SPY closes at 608: the 50-DMA (596), 100-DMA (584.3) and 125-DMA (575) are below it,
    # the 20-DMA (612) and 200-DMA (620) above.
    day = dt.date(2025, 1, 27)
    given_technicals(mem, [("SPY", day, 608.0, {20: 612.0, 50: 596.0, 100: 584.3, 125: 575.0, 200: 620.0})])
    got = levels(mem, "SPY", day)
    assert (got["nearest_support_sma"], got["nearest_support_level"]) == (50, 596.0)
    assert got["nearest_support_pct"] == pytest.approx(-1.973684, abs=1e-6)  # 596/608 - 1
    assert (got["second_support_sma"], got["second_support_level"]) == (100, 584.3)
    assert got["second_support_pct"] == pytest.approx(-3.898026, abs=1e-6)  # 584.3/608 - 1
    assert (got["nearest_resistance_sma"], got["nearest_resistance_level"]) == (20, 612.0)
    assert got["nearest_resistance_pct"] == pytest.approx(0.657895, abs=1e-6)  # 612/608 - 1
    assert (got["second_resistance_sma"], got["second_resistance_level"]) == (200, 620.0)
    assert got["second_resistance_pct"] == pytest.approx(1.973684, abs=1e-6)
    assert (got["n_supports"], got["n_resistances"]) == (3, 2)
    assert [(s["sma"], s["level"]) for s in got["supports"]] == [(50, 596.0), (100, 584.3), (125, 575.0)]
    assert [s["pct"] for s in got["supports"]] == pytest.approx([pct(596, 608), pct(584.3, 608), pct(575, 608)])
    assert [(s["sma"], s["level"]) for s in got["resistances"]] == [(20, 612.0), (200, 620.0)]
    assert [s["pct"] for s in got["resistances"]] == pytest.approx([pct(612, 608), pct(620, 608)])


def test_missing_averages_ties_and_a_row_without_any(mem):
    d1, d2, d3 = dt.date(2025, 1, 2), dt.date(2025, 1, 3), dt.date(2025, 1, 6)
    given_technicals(mem, [
        ("X", d1, 50.0, {}),                                # no average yet: still a row
        ("X", d2, 50.0, {20: 50.0, 50: 50.0}),              # both at the close: supports, shorter first
        ("X", d3, 40.0, {20: 45.0, 50: 48.0, 100: 44.0}),   # below every average
    ])
    none = levels(mem, "X", d1)
    assert none["supports"] == [] and none["resistances"] == []
    assert (none["n_supports"], none["n_resistances"], none["n_supports_broken_1d"]) == (0, 0, 0)
    assert none["nearest_support_sma"] is None and none["nearest_resistance_level"] is None

    tie = levels(mem, "X", d2)
    assert [s["sma"] for s in tie["supports"]] == [20, 50] and tie["resistances"] == []
    assert (tie["nearest_support_sma"], tie["nearest_support_pct"]) == (20, 0.0)
    assert (tie["second_support_sma"], tie["second_support_pct"]) == (50, 0.0)
    assert tie["nearest_resistance_sma"] is None and tie["n_resistances"] == 0

    below = levels(mem, "X", d3)
    assert below["supports"] == [] and below["nearest_support_sma"] is None
    assert [s["sma"] for s in below["resistances"]] == [100, 20, 50]
    assert (below["nearest_resistance_sma"], below["nearest_resistance_pct"]) == (100, pytest.approx(10.0))
    assert (below["second_resistance_sma"], below["second_resistance_pct"]) == (20, pytest.approx(12.5))
    # Both averages known yesterday sat at the close (supports) and are above it today.
    assert (below["n_supports_broken_1d"], below["n_resistances_broken_1d"]) == (2, 0)


def test_averages_crossed_today(mem):
    d1, d2, d3 = dt.date(2025, 1, 2), dt.date(2025, 1, 3), dt.date(2025, 1, 6)
    given_technicals(mem, [
        ("X", d1, 100.0, {20: 99.0, 50: 98.0, 100: 101.0}),
        # Falls through the 20- and 50-DMA; the 100-DMA stays above; the 200-DMA is new (not a cross).
        ("X", d2, 97.0, {20: 99.2, 50: 97.5, 100: 100.8, 200: 120.0}),
        # Back above the 50-DMA only.
        ("X", d3, 98.0, {20: 99.1, 50: 97.6, 100: 100.6, 200: 119.0}),
        # Another ticker between X's rows must not be X's previous row.
        ("Y", d2, 10.0, {20: 20.0, 50: 30.0}),
        ("Y", d3, 50.0, {20: 20.0, 50: 30.0}),
    ])
    assert (levels(mem, "X", d1)["n_supports_broken_1d"], levels(mem, "X", d1)["n_resistances_broken_1d"]) == (0, 0)
    x2 = levels(mem, "X", d2)
    assert (x2["n_supports_broken_1d"], x2["n_resistances_broken_1d"]) == (2, 0)
    x3 = levels(mem, "X", d3)
    assert (x3["n_supports_broken_1d"], x3["n_resistances_broken_1d"]) == (0, 1)
    assert (x3["nearest_support_sma"], x3["nearest_resistance_sma"], x3["second_resistance_sma"]) == (50, 20, 100)
    y3 = levels(mem, "Y", d3)
    assert (y3["n_supports_broken_1d"], y3["n_resistances_broken_1d"]) == (0, 2)
    assert levels(mem, "Y", d2)["n_resistances_broken_1d"] == 0  # Y's first row


def synthetic(seed, n):
    rng = np.random.default_rng(seed)
    days = calendar.sessions("2023-01-03", "2026-12-31")[:n]
    out = []
    for t, drop in (("AAA", set()), ("BBB", set(rng.choice(n, 15, replace=False)))):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        out += [(t, days[i], float(close[i]), float(close[i])) for i in range(n) if i not in drop]
    return out


def pandas_levels(data):
    """Supports and resistances from prices, with pandas rolling means and Python sorting."""
    f = pd.DataFrame(data, columns=["ticker", "trade_date", "close", "adj_close"]).sort_values(["ticker", "trade_date"])
    smas = {n: f.groupby("ticker")["close"].transform(lambda s: s.rolling(n, min_periods=n).mean()) for n in LENGTHS}
    out = {}
    prev = {}
    for i, (ticker, day, close) in enumerate(zip(f["ticker"], f["trade_date"], f["close"])):
        known = {n: smas[n].iloc[i] for n in LENGTHS if not np.isnan(smas[n].iloc[i])}
        supports = sorted((n for n in known if known[n] <= close), key=lambda n: (close - known[n], n))
        resistances = sorted((n for n in known if known[n] > close), key=lambda n: (known[n] - close, n))
        p = prev.get(ticker)
        broken = sum(1 for n in known if p and n in p[1] and p[1][n] <= p[0] and known[n] > close)
        reclaimed = sum(1 for n in known if p and n in p[1] and p[1][n] > p[0] and known[n] <= close)
        out[(ticker, day)] = (supports, resistances, broken, reclaimed, {n: known[n] for n in known})
        prev[ticker] = (close, known)
    return out


def test_matches_an_independent_pandas_computation(mem):
    data = synthetic(seed=3, n=300)
    insert_prices(mem, data)
    build(mem, run_date=RUN, select=FROM_PRICES)
    want = pandas_levels(data)
    got = mem.execute(
        "select ticker, trade_date, close, supports, resistances, n_supports_broken_1d, n_resistances_broken_1d, "
        "nearest_support_sma, nearest_support_pct, second_resistance_sma, second_resistance_level "
        "from marts.support_levels order by ticker, trade_date"
    ).fetchall()
    assert len(got) == len(want) == len(data)
    crossings = 0
    for ticker, day, close, sup, res, broken, reclaimed, ns_sma, ns_pct, sr_sma, sr_level in got:
        w_sup, w_res, w_broken, w_reclaimed, w_level = want[(ticker, day)]
        assert [s["sma"] for s in sup] == w_sup and [s["sma"] for s in res] == w_res, (ticker, day)
        for s in sup + res:
            assert s["level"] == pytest.approx(w_level[s["sma"]], rel=1e-12)
            assert s["pct"] == pytest.approx(100 * (w_level[s["sma"]] / close - 1), rel=1e-9, abs=1e-9)
        assert (broken, reclaimed) == (w_broken, w_reclaimed), (ticker, day)
        assert ns_sma == (w_sup[0] if w_sup else None)
        if w_sup:
            assert ns_pct == pytest.approx(100 * (w_level[w_sup[0]] / close - 1), rel=1e-9, abs=1e-9)
        assert sr_sma == (w_res[1] if len(w_res) > 1 else None)
        if len(w_res) > 1:
            assert sr_level == pytest.approx(w_level[w_res[1]], rel=1e-12)
        crossings += broken + reclaimed
    assert crossings > 20  # the random walk crosses its averages: the counts are exercised


def test_incremental_build_equals_a_full_build(mem):
    data = synthetic(seed=4, n=300)
    cut = dt.date(2024, 1, 1)
    insert_prices(mem, [r for r in data if r[1] < cut])
    build(mem, run_date=RUN, select=FROM_PRICES)
    restated_day = max(r[1] for r in data if r[1] < cut)
    # Restated down through its averages: the crossing count on that day needs the row before it,
    # which only the lookback brings into an incremental build.
    mem.execute("update raw.prices_daily set close = close * 0.85 where trade_date = ?", [restated_day])
    insert_prices(mem, [r for r in data if r[1] >= cut])
    results = build(mem, run_date=RUN, since=restated_day, select=FROM_PRICES)
    result = next(r for r in results if r.relation == "marts.support_levels")
    assert result.mode == "incremental" and result.rows_written < result.rows

    query = "select * exclude (supports, resistances) from marts.support_levels order by ticker, trade_date"
    lists = "select supports, resistances from marts.support_levels order by ticker, trade_date"
    as_smas = lambda con: [([s["sma"] for s in a], [s["sma"] for s in b]) for a, b in con.execute(lists).fetchall()]  # noqa: E731
    with built_in_full(mem, FROM_PRICES) as full:
        inc, ful = mem.execute(query).df(), full.execute(query).df()
        # Equal to the last bits (window sums add up in an order that depends on the partition's start).
        pd.testing.assert_frame_equal(inc, ful, check_exact=False, rtol=1e-12, atol=1e-9)
        assert as_smas(mem) == as_smas(full)
    on_restated_day = inc[inc["trade_date"] == pd.Timestamp(restated_day)]
    assert (on_restated_day["n_supports_broken_1d"] > 0).all()
