"""marts.fear_greed_daily on a synthetic universe: every component recomputed independently with
pandas, the 504-session percentile scoring (inverted for put/call and volatility), NULL
components and components_used, the bands, and incremental builds equal to full ones.

The windows are long (a 252-session high/low feeding a 504-observation rank), so the series are
generated with numpy: 800 sessions for the values, 1,300 for the incremental build."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import RUN, built_in_full, insert_frame, insert_price_frame, insert_universe, new_warehouse
from transforms.runner import build, input_start_for, load_macros

DAYS = calendar.sessions("2022-01-03", "2027-06-30")
MODELS = ["stg_prices_daily", "stg_universe", "stg_putcall_daily", "technicals_daily", "fear_greed_daily"]
HOLIDAY = dt.date(2025, 1, 9)  # the market closed for President Carter; a put/call feed row exists anyway

STOCKS = ["S1", "S2", "S3", "S4", "S5", "S6"]
ROLES = {
    "SPY": "index_proxy",
    "QQQ": "index_proxy",  # SPY is preferred for momentum and safe haven
    "^VIX": "volatility",
    "TLT": "treasury",  # preferred for safe haven
    "IEF": "treasury",
    "HYG": "high_yield",
    "LQD": "investment_grade",  # preferred over IEF as the junk-bond benchmark
} | {s: "stock" for s in STOCKS}

SCORES = [
    "momentum_score", "price_strength_score", "breadth_score", "putcall_score",
    "volatility_score", "safe_haven_score", "junk_bond_score",
]
VALUES = [
    "momentum_pct", "price_strength_pct", "breadth_pct", "putcall_ratio_ma_5",
    "volatility_pct", "safe_haven_pct", "junk_bond_pct",
]


# ---------------------------------------------------------------------------------------------
# inputs


def synthetic_prices(n, seed, roles=ROLES):
    """Random walks for every ticker over the first n sessions (close, adj_close, volume)."""
    rng = np.random.default_rng(seed)
    days = np.array(DAYS[:n], dtype=object)
    frames = []
    for ticker in roles:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        keep = np.ones(n, dtype=bool)
        if ticker == "S5":
            keep[rng.choice(n, 40, replace=False)] = False  # a stock missing days: windows count its rows
        if ticker == "S6":
            keep[: n // 3] = False  # listed later: no 52-week history for a while
        if ticker == "TLT":
            keep[rng.choice(n // 2, 15, replace=False)] = False  # safe haven is NULL on those days
        frames.append(
            pd.DataFrame(
                {
                    "ticker": ticker,
                    "trade_date": days,
                    "close": close,
                    "adj_close": close * np.linspace(0.97, 1.0, n),  # dividends: returns differ from closes
                    "volume": rng.integers(1_000, 50_000, n),
                }
            )[keep]
        )
    return pd.concat(frames, ignore_index=True)


def synthetic_putcall(n, seed):
    rng = np.random.default_rng(seed)
    days = DAYS[:n]
    equity = rng.uniform(0.45, 0.85, n)
    total = rng.uniform(0.70, 1.20, n)
    rows = [(d, "equity", float(e)) for d, e in zip(days, equity)] + [(d, "total", float(t)) for d, t in zip(days, total)]
    # Equity missing on some late days: those days fall back to the total ratio.
    gaps = set(days[n - 40 : n - 30])
    rows = [r for r in rows if not (r[1] == "equity" and r[0] in gaps)]
    # A broken feed row (zero) on a session, and the real feed's row on a closed day.
    rows = [r for r in rows if not (r[1] == "equity" and r[0] == days[n - 60])] + [(days[n - 60], "equity", 0.0)]
    rows += [(HOLIDAY, "equity", 0.0), (HOLIDAY, "total", 1.73)]
    return pd.DataFrame(rows, columns=["trade_date", "scope", "ratio"])


def load(con, prices, putcall=None, roles=ROLES):
    insert_universe(con, [(t, r, "ai" if r == "stock" else None) for t, r in roles.items()])
    insert_price_frame(con, prices)
    if putcall is not None:
        insert_frame(con, "raw.putcall_daily", putcall)


def table(con):
    return con.execute("select * from marts.fear_greed_daily order by trade_date").df()


# ---------------------------------------------------------------------------------------------
# the independent computation


def band(score):
    """CNN's bands; a boundary belongs to the band nearer neutral (documented in the model)."""
    if score is None or np.isnan(score):
        return None
    if score < 25:
        return "extreme fear"
    if score < 45:
        return "fear"
    if score <= 55:
        return "neutral"
    if score <= 75:
        return "greed"
    return "extreme greed"


def rank_504(series, invert=False):
    """Share (0-100) of the last 504 readings <= today's (>= for an inverted component)."""
    x = series.dropna()
    return 100 * (-x if invert else x).rolling(504).rank(method="max", pct=True)


def pandas_fear_greed(prices, putcall):
    p = prices.sort_values(["ticker", "trade_date"])
    sessions = pd.Index(sorted(p["trade_date"].unique()))
    by = {t: g.set_index("trade_date") for t, g in p.groupby("ticker")}
    out = pd.DataFrame(index=sessions)

    def above_sma(ticker, n):
        c = by[ticker]["close"]
        return 100 * (c / c.rolling(n).mean() - 1)

    def return_20(ticker):
        a = by[ticker]["adj_close"]
        return 100 * (a / a.shift(20) - 1)

    out["momentum_pct"] = above_sma("SPY", 125)
    out["volatility_pct"] = above_sma("^VIX", 50)
    out["safe_haven_pct"] = return_20("SPY") - return_20("TLT")
    out["junk_bond_pct"] = return_20("HYG") - return_20("LQD")

    st = p[p["ticker"].isin(STOCKS)].copy()
    g = st.groupby("ticker")
    st["high"] = g["close"].transform(lambda c: c.rolling(252).max())
    st["low"] = g["close"].transform(lambda c: c.rolling(252).min())
    st["change"] = g["adj_close"].diff()
    st["has_year"] = st["high"].notna()
    st["at_high"] = st["has_year"] & (st["close"] >= st["high"])
    st["at_low"] = st["has_year"] & (st["close"] <= st["low"])
    st["up"] = st["volume"].where(st["change"] > 0, 0)
    st["down"] = st["volume"].where(st["change"] < 0, 0)
    d = st.groupby("trade_date").agg(
        n=("has_year", "sum"), highs=("at_high", "sum"), lows=("at_low", "sum"),
        up=("up", "sum"), down=("down", "sum"), changes=("change", "count"),
    )
    out["price_strength_pct"] = (100 * (d["highs"] - d["lows"]) / d["n"]).where(d["n"] > 0)
    b = d[d["changes"] > 0]
    up_21 = b["up"].rolling(21).sum()
    all_21 = (b["up"] + b["down"]).rolling(21).sum()
    out["breadth_pct"] = (100 * up_21 / all_21).where(all_21 > 0)

    pc = putcall[putcall["trade_date"].isin(sessions) & (putcall["ratio"] > 0)].sort_values("trade_date")
    ma = {s: g.set_index("trade_date")["ratio"].rolling(5).mean() for s, g in pc.groupby("scope")}
    equity, total = ma["equity"].reindex(sessions), ma["total"].reindex(sessions)
    out["putcall_ratio_ma_5"] = equity.where(equity.notna(), total)
    out["putcall_scope"] = np.where(equity.notna(), "equity", np.where(total.notna(), "total", None))

    for value, score in zip(VALUES, SCORES):
        if value != "putcall_ratio_ma_5":
            out[score] = rank_504(out[value], invert=value == "volatility_pct")
    eq_score = rank_504(equity, invert=True).reindex(sessions)
    tot_score = rank_504(total, invert=True).reindex(sessions)
    out["putcall_score"] = np.where(out["putcall_scope"] == "equity", eq_score, tot_score)
    out["score"] = out[SCORES].mean(axis=1, skipna=True)
    out["components_used"] = out[SCORES].notna().sum(axis=1)
    out["label"] = [band(s) for s in out["score"]]
    return out


# ---------------------------------------------------------------------------------------------
# tests


@pytest.fixture(scope="module")
def synthetic_build():
    n = 800
    prices = synthetic_prices(n, seed=7)
    last = DAYS[n - 1]
    # The last session, by hand: SPY doubles (the highest momentum reading of the window),
    # the VIX quintuples (its highest reading above the 50-DMA: the most fear) ...
    prices.loc[(prices.ticker == "SPY") & (prices.trade_date == last), ["close", "adj_close"]] *= 2
    prices.loc[(prices.ticker == "^VIX") & (prices.trade_date == last), ["close", "adj_close"]] *= 5
    putcall = synthetic_putcall(n, seed=8)
    # ... and the last five equity put/call ratios are the highest ever (the most fear).
    putcall.loc[(putcall.scope == "equity") & putcall.trade_date.isin(DAYS[n - 5 : n]), "ratio"] = 2.0
    con = new_warehouse()
    load(con, prices, putcall)
    build(con, run_date=RUN, select=MODELS)
    yield table(con), pandas_fear_greed(prices, putcall)
    con.close()


def test_components_and_scores_match_an_independent_pandas_computation(synthetic_build):
    got, want = synthetic_build
    got = got.set_index("trade_date")
    want.index = pd.to_datetime(want.index)
    assert list(got.index) == list(want.index)  # one row per session; the holiday is not one
    assert pd.Timestamp(HOLIDAY) not in got.index and DAYS[0] < HOLIDAY < DAYS[799]
    for c in VALUES + SCORES + ["score"]:
        np.testing.assert_allclose(got[c].astype(float), want[c].astype(float), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=c)
    assert list(got["components_used"]) == list(want["components_used"])
    assert list(got["putcall_scope"]) == list(want["putcall_scope"])
    assert list(got["label"]) == list(want["label"])
    # The test exercises what it claims: all seven components score by the end, the put/call
    # falls back to the total scope on the equity gaps, and the scores spread over the bands.
    assert got["components_used"].iloc[-45:].eq(7).all()
    assert (got["putcall_scope"] == "total").sum() == 11  # ten missing days and the broken zero
    assert got["price_strength_pct"].nunique() > 5
    assert got["label"].nunique() >= 3


def test_scores_by_hand_on_the_last_session(synthetic_build):
    got, _ = synthetic_build
    last = got.iloc[-1]
    assert last["momentum_score"] == pytest.approx(100.0)  # the highest of 504: greed
    # Inverted: the highest VIX stretch and put/call average are the lowest scores, 1 of 504.
    assert last["volatility_score"] == pytest.approx(100 / 504)
    assert last["putcall_ratio_ma_5"] == pytest.approx(2.0)
    assert last["putcall_scope"] == "equity"
    assert last["putcall_score"] == pytest.approx(100 / 504)
    parts = [last[c] for c in SCORES]
    assert last["score"] == pytest.approx(sum(parts) / 7)


def test_null_components_and_components_used(mem):
    # No put/call feed, a VIX with no prices, HYG with no benchmark, no treasury: four NULL
    # components. Positions by hand: breadth's first 21-session reading is on session 21 (the
    # first change is on session 1) and its 504th on 524; the 125-DMA's first on 124, 504th on
    # 627; the 52-week high/low's first on 251, 504th on 754 (0-based).
    roles = {"SPY": "index_proxy", "^VIX": "volatility", "HYG": "high_yield", "S1": "stock", "S2": "stock", "S3": "stock"}
    prices = synthetic_prices(760, seed=3, roles={t: r for t, r in roles.items() if t != "^VIX"})
    load(mem, prices, roles=roles)
    build(mem, run_date=RUN, select=MODELS)
    got = table(mem)
    assert len(got) == 760
    used = got["components_used"].tolist()
    assert used[523] == 0 and used[524] == 1 and used[626] == 1 and used[627] == 2 and used[753] == 2
    assert used[754:] == [3] * 6
    assert got["score"].iloc[:524].isna().all() and got["label"].iloc[:524].isna().all()
    assert got["score"].iloc[600] == pytest.approx(got["breadth_score"].iloc[600])
    row = got.iloc[-1]
    assert row["score"] == pytest.approx((row["momentum_score"] + row["price_strength_score"] + row["breadth_score"]) / 3)
    for c in ("putcall_ratio_ma_5", "putcall_scope", "putcall_score", "volatility_pct", "volatility_score",
              "safe_haven_pct", "safe_haven_score", "junk_bond_pct", "junk_bond_score"):
        assert got[c].isna().all(), c
    # A reading exists long before its score: 503 earlier readings are needed.
    assert got["momentum_pct"].notna().iloc[124] and got["momentum_score"].isna().iloc[626]


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (0, "extreme fear"), (24.99, "extreme fear"), (25, "fear"), (44.99, "fear"), (45, "neutral"),
        (50, "neutral"), (55, "neutral"), (55.01, "greed"), (75, "greed"), (75.01, "extreme greed"),
        (100, "extreme greed"), (None, None),
    ],
)
def test_bands(mem, score, label):
    load_macros(mem)
    assert mem.execute("select fear_greed_label(cast(? as double))", [score]).fetchone()[0] == label


def test_incremental_build_equals_a_full_build(mem):
    n, cut = 1300, 1250
    prices = synthetic_prices(n, seed=11)
    putcall = synthetic_putcall(n, seed=12)
    early = prices[prices.trade_date < DAYS[cut]]
    load(mem, early, putcall[putcall.trade_date < DAYS[cut]])
    build(mem, run_date=RUN, select=MODELS)  # the first build is full
    # A later night: new sessions and put/call rows arrive, and a recent SPY close is restated.
    since = DAYS[cut - 5]
    assert input_start_for(since, 756) > DAYS[0]  # the incremental build really reads a shorter history
    mem.execute("update raw.prices_daily set close = close * 1.02, adj_close = adj_close * 1.02 where ticker = 'SPY' and trade_date = ?", [since])
    insert_price_frame(mem, prices[prices.trade_date >= DAYS[cut]])
    insert_frame(mem, "raw.putcall_daily", putcall[putcall.trade_date >= DAYS[cut]])
    results = build(mem, run_date=RUN, since=since, select=MODELS)
    fg = next(r for r in results if r.relation == "marts.fear_greed_daily")
    assert fg.mode == "incremental" and 0 < fg.rows_written < fg.rows
    incremental = table(mem)
    assert incremental["components_used"].iloc[-1] == 7

    with built_in_full(mem, MODELS) as full:
        pd.testing.assert_frame_equal(incremental, table(full))
