"""The sample source: determinism, the contract's shape, and the market story it promises.

Expected values are computed here independently (by hand, from the calendar, or from other
columns of the output), never copied from the generator's own intermediate results.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from sources.base import Source, load_universe
from sources.contract import FUNDAMENTALS, OPTION_QUOTES, PRICES, PUTCALL, VALUATION, conform
from sources.sample import HORIZON_END, SampleSource

D = dt.date
SELLOFF = D(2025, 1, 27)
BEFORE = D(2025, 1, 24)
AI = ["NVDA", "MSFT", "AMZN", "GOOGL", "META", "AVGO"]
NON_AI = ["AAPL", "TSLA", "BRK-B", "JPM", "LLY", "XOM", "JNJ", "PG", "KO", "WMT"]


@pytest.fixture(scope="module")
def source() -> SampleSource:
    return SampleSource()


@pytest.fixture(scope="module")
def prices(source) -> pd.DataFrame:
    """Every ticker, 2019 to 2030: enough for splits, dividends, the selloff and the horizon."""
    return source.prices(None, D(2019, 1, 1), HORIZON_END).frame


def _closes(frame: pd.DataFrame, field: str = "close") -> pd.DataFrame:
    return frame.pivot(index="trade_date", columns="ticker", values=field)


def _selloff_returns(prices: pd.DataFrame) -> pd.Series:
    wide = _closes(prices)
    return wide.loc[pd.Timestamp(SELLOFF)] / wide.loc[pd.Timestamp(BEFORE)] - 1


def _key_merge(a: pd.DataFrame, b: pd.DataFrame, key: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    common = a[key].merge(b[key], on=key)
    left = common.merge(a, on=key, how="left").sort_values(key).reset_index(drop=True)
    right = common.merge(b, on=key, how="left").sort_values(key).reset_index(drop=True)
    return left, right


# ---------------------------------------------------------------------------- the protocol


def test_is_a_source_named_sample(source):
    assert isinstance(source, Source)
    assert source.name == "sample"
    assert source.tickers == list(load_universe()["ticker"])


# ---------------------------------------------------------------------------- determinism


WINDOW_A, WINDOW_B = (D(2025, 1, 2), D(2025, 1, 31)), (D(2025, 1, 21), D(2025, 2, 14))


@pytest.mark.parametrize(
    "dataset, fetch, key",
    [
        (PRICES, lambda s, w: s.prices(None, *w), ["ticker", "trade_date"]),
        (OPTION_QUOTES, lambda s, w: s.option_quotes(["NVDA", "SPY", "BRK-B", "KO"], *w), ["snapshot_date", "contract_symbol"]),
        (VALUATION, lambda s, w: s.valuation_snapshots(None, *w), ["snapshot_date", "ticker"]),
        (FUNDAMENTALS, lambda s, w: s.fundamentals(None, *w), ["ticker", "period_end", "report_date"]),
        (PUTCALL, lambda s, w: s.putcall(*w), ["trade_date", "scope"]),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_overlapping_windows_are_bit_identical(source, dataset, fetch, key):
    # The second window comes from a fresh instance, so nothing can leak through a shared cache.
    a = fetch(source, WINDOW_A).frame
    b = fetch(SampleSource(), WINDOW_B).frame
    left, right = _key_merge(a, b, key)
    assert len(left) > 0
    overlap_days = pd.Timestamp(WINDOW_B[0]), pd.Timestamp(WINDOW_A[1])
    date_col = dataset.date_column
    expected = a[(a[date_col] >= overlap_days[0]) & (a[date_col] <= overlap_days[1])]
    assert len(left) == len(expected)
    pd.testing.assert_frame_equal(left, right, check_exact=True)


def test_a_ticker_is_the_same_whichever_tickers_are_asked_for(source):
    window = (D(2024, 12, 2), D(2025, 2, 7))
    alone = SampleSource()  # a fresh instance that has generated nothing else
    for fetch in (
        lambda s, t: s.prices(t, *window).frame,
        lambda s, t: s.valuation_snapshots(t, *window).frame,
        lambda s, t: s.fundamentals(t, D(2020, 1, 1), window[1]).frame,
        lambda s, t: s.option_quotes(t, D(2025, 1, 24), D(2025, 1, 28)).frame,
    ):
        one = fetch(alone, ["NVDA"])
        everyone = fetch(source, None)
        pd.testing.assert_frame_equal(one, everyone[everyone["ticker"] == "NVDA"].reset_index(drop=True), check_exact=True)


def test_extra_tickers_change_nothing_for_the_others():
    base = SampleSource().prices(["NVDA", "SPY", "^VIX"], D(2025, 1, 1), D(2025, 3, 1)).frame
    more = SampleSource(n_extra_tickers=5)
    assert more.tickers[-5:] == ["SYN001", "SYN002", "SYN003", "SYN004", "SYN005"]
    pd.testing.assert_frame_equal(base, more.prices(["NVDA", "SPY", "^VIX"], D(2025, 1, 1), D(2025, 3, 1)).frame)


def test_same_seed_same_market_and_another_seed_another(source):
    window = (D(2024, 1, 1), D(2025, 3, 1))
    a = source.prices(None, *window).frame
    pd.testing.assert_frame_equal(a, SampleSource(seed=7).prices(None, *window).frame, check_exact=True)
    pd.testing.assert_frame_equal(
        source.putcall(*window).frame, SampleSource(seed=7).putcall(*window).frame, check_exact=True
    )
    other = SampleSource(seed=8).prices(None, *window).frame
    assert list(other["trade_date"]) == list(a["trade_date"])
    differs = (other["close"] != a["close"]).mean()
    assert differs > 0.9
    # Calibrated levels hold for any seed: SPY closes at its anchor the session before the selloff.
    spy = other[(other["ticker"] == "SPY") & (other["trade_date"] == pd.Timestamp(BEFORE))]
    assert spy["close"].item() == pytest.approx(607.97)


# ---------------------------------------------------------------------------- calendar and window


def test_dates_are_exactly_the_nyse_sessions(source):
    frame = source.prices(["SPY", "NVDA"], D(2024, 12, 20), D(2025, 1, 31)).frame
    expected = [pd.Timestamp(d) for d in calendar.sessions(D(2024, 12, 20), D(2025, 1, 31))]
    for ticker in ("SPY", "NVDA"):
        assert list(frame.loc[frame["ticker"] == ticker, "trade_date"]) == expected
    days = set(frame["trade_date"])
    assert pd.Timestamp("2025-01-09") not in days  # national day of mourning: market closed
    assert pd.Timestamp("2024-12-25") not in days
    assert pd.Timestamp("2025-01-10") in days
    putcall = source.putcall(D(2025, 1, 6), D(2025, 1, 10)).frame
    assert sorted(set(putcall["trade_date"])) == [pd.Timestamp(d) for d in ("2025-01-06", "2025-01-07", "2025-01-08", "2025-01-10")]


def test_the_horizon_and_the_history_start_are_explicit(source):
    past = source.prices(["SPY"], D(2031, 1, 2), D(2031, 1, 31))
    assert past.rows == 0 and any("2030-12-31" in n for n in past.notes)
    straddle = source.prices(["SPY"], D(2030, 12, 20), D(2031, 1, 31))
    assert straddle.frame["trade_date"].max() == pd.Timestamp("2030-12-31")
    assert any("ends on 2030-12-31" in n for n in straddle.notes)
    early = source.prices(["SPY"], D(2014, 12, 1), D(2015, 1, 7))
    assert early.frame["trade_date"].min() == pd.Timestamp("2015-01-02")
    assert any("starts on 2015-01-02" in n for n in early.notes)
    assert source.prices(["SPY"], D(2010, 1, 1), D(2010, 12, 31)).rows == 0
    unknown = source.prices(["SPY", "NOPE"], D(2025, 1, 2), D(2025, 1, 3))
    assert set(unknown.frame["ticker"]) == {"SPY"} and any("NOPE" in n for n in unknown.notes)
    assert source.prices("spy", D(2025, 1, 2), D(2025, 1, 3)).rows == 2


# ---------------------------------------------------------------------------- the contract


@pytest.mark.parametrize(
    "dataset, fetch",
    [
        (PRICES, lambda s: s.prices(None, D(2024, 5, 1), D(2025, 2, 1))),
        (OPTION_QUOTES, lambda s: s.option_quotes(None, D(2024, 6, 6), D(2024, 6, 11))),
        (VALUATION, lambda s: s.valuation_snapshots(None, D(2024, 12, 1), D(2025, 2, 1))),
        (FUNDAMENTALS, lambda s: s.fundamentals(None, D(2013, 1, 1), HORIZON_END)),
        (PUTCALL, lambda s: s.putcall(D(2024, 1, 1), D(2025, 2, 1))),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_frames_are_exactly_what_conform_produces(source, dataset, fetch):
    batch = fetch(source)
    assert batch.rows > 0
    assert list(batch.frame.columns) == list(dataset.columns)
    conformed = conform(dataset, batch.frame)
    assert len(conformed.rejects) == 0 and conformed.notes == []
    pd.testing.assert_frame_equal(batch.frame, conformed.frame, check_exact=True)
    assert not batch.frame.duplicated(list(dataset.key)).any()
    assert "source" not in batch.frame.columns and "run_id" not in batch.frame.columns


def test_empty_batches_keep_the_contract_shape(source):
    for batch, dataset in (
        (source.prices(None, D(2031, 1, 1), D(2031, 2, 1)), PRICES),
        (source.option_quotes(["^VIX", "TLT"], D(2025, 1, 2), D(2025, 1, 3)), OPTION_QUOTES),
        (source.fundamentals(["SPY"], D(2020, 1, 1), D(2025, 1, 1)), FUNDAMENTALS),
        (source.putcall(D(2025, 1, 4), D(2025, 1, 5)), PUTCALL),
    ):
        assert batch.rows == 0
        assert list(batch.frame.columns) == list(dataset.columns)


# ---------------------------------------------------------------------------- prices


def test_ohlc_is_consistent_and_positive(prices):
    p = prices
    assert (p["low"] > 0).all()
    assert (p["low"] <= p[["open", "close"]].min(axis=1)).all()
    assert (p["high"] >= p[["open", "close"]].max(axis=1)).all()
    assert (p["adj_close"] > 0).all()
    stocks = p[p["ticker"] != "^VIX"]
    assert stocks["volume"].notna().all() and (stocks["volume"] > 0).all()
    assert p.loc[p["ticker"] == "^VIX", "volume"].isna().all()  # an index has no traded volume
    # rounded to at most 4 decimals (VIX to 2)
    assert np.allclose(stocks["close"], stocks["close"].round(4), rtol=0, atol=1e-9)
    vix = p[p["ticker"] == "^VIX"]
    assert np.allclose(vix["close"], vix["close"].round(2), rtol=0, atol=1e-9)


def test_split_shows_as_a_ratio_and_close_stays_continuous(prices):
    nvda = prices[prices["ticker"] == "NVDA"].set_index("trade_date")
    splits = nvda.loc[nvda["split_ratio"] != 1.0, "split_ratio"]
    assert splits.to_dict() == {pd.Timestamp("2021-07-20"): 4.0, pd.Timestamp("2024-06-10"): 10.0}
    day = nvda.index.get_loc(pd.Timestamp("2024-06-10"))
    move = nvda["close"].iloc[day] / nvda["close"].iloc[day - 1] - 1
    assert abs(move) < 0.15  # split-adjusted close: no 90% "drop"


def test_dividends_make_adj_close_differ_only_at_ex_dates(prices):
    for ticker in ("KO", "SPY", "TLT", "NVDA"):
        t = prices[prices["ticker"] == ticker].sort_values("trade_date").reset_index(drop=True)
        ex = t.index[t["dividend"] > 0]
        assert len(ex) >= (20 if ticker != "TLT" else 100)
        first = ex[0]
        ex = ex[ex > 0]  # the window's first day has no previous close in the frame
        ratio = t["adj_close"] / t["close"]
        step = ratio.shift(1) / ratio  # what the day before is scaled by, relative to the day
        quiet = step.drop(index=list(ex) + [0], errors="ignore")
        assert np.allclose(quiet, 1.0, rtol=0, atol=2e-6), ticker
        # Yahoo's rule, computed from the output columns: ratio(t-1) = ratio(t) * (1 - D / close(t-1))
        expected = 1 - t["dividend"].iloc[ex] / t["close"].iloc[ex - 1].to_numpy()
        assert np.allclose(step.iloc[ex], expected, rtol=0, atol=2e-6), ticker
        assert (ratio.iloc[:first] < 1).all()
        # back-adjusted from the horizon's end: after the last ex-date adj_close equals close
        assert np.allclose(t["adj_close"].iloc[ex[-1]:], t["close"].iloc[ex[-1]:], rtol=0, atol=1e-6)
    amzn = prices[prices["ticker"] == "AMZN"]
    assert (amzn["dividend"] == 0).all() and (amzn["adj_close"] == amzn["close"]).all()
    googl = prices[(prices["ticker"] == "GOOGL") & (prices["dividend"] > 0)]
    assert googl["trade_date"].min() >= pd.Timestamp("2024-06-01")  # first dividend in June 2024


def test_the_ai_selloff(prices):
    r = _selloff_returns(prices)
    assert -0.20 <= r["NVDA"] <= -0.12
    assert r["NVDA"] == min(r[AI])
    assert all(-0.20 <= r[t] <= -0.07 for t in AI)
    assert -0.045 <= r["QQQ"] <= -0.02
    assert -0.025 <= r["SPY"] <= -0.005
    assert r["XLK"] < r["QQQ"] < r["SPY"]
    assert (r[NON_AI] > 0).sum() >= 5 and r[NON_AI].mean() > 0
    assert r["^VIX"] > 0.05
    assert r["TLT"] > 0.003
    volume = _closes(prices, "volume").astype(float)
    normal = volume.loc[pd.Timestamp("2024-12-20"):pd.Timestamp(BEFORE)].median()
    assert volume.loc[pd.Timestamp(SELLOFF), "NVDA"] > 2 * normal["NVDA"]
    assert (volume.loc[pd.Timestamp(SELLOFF), ["SPY", "QQQ"] + AI] > normal[["SPY", "QQQ"] + AI]).all()


def test_selloff_story_holds_for_other_seeds():
    for seed in (1, 2, 3):
        r = _selloff_returns(SampleSource(seed=seed).prices(None, BEFORE, SELLOFF).frame)
        assert -0.20 <= r["NVDA"] <= -0.12 and -0.045 <= r["QQQ"] <= -0.02 and -0.025 <= r["SPY"] <= -0.005, seed


def test_the_selloff_date_is_a_parameter():
    with pytest.raises(ValueError, match="not an NYSE session"):
        SampleSource(selloff_date=D(2025, 1, 25))
    calm = _selloff_returns(SampleSource(selloff_date=None).prices(None, BEFORE, SELLOFF).frame)
    assert calm["NVDA"] > -0.12
    later = SampleSource(selloff_date=D(2025, 3, 3)).prices(None, D(2025, 2, 28), D(2025, 3, 3)).frame
    move = _closes(later).pct_change().iloc[-1]
    assert -0.20 <= move["NVDA"] <= -0.12 and -0.045 <= move["QQQ"] <= -0.02


def test_levels_near_january_2025(prices):
    close = _closes(prices).loc[pd.Timestamp(BEFORE)]
    assert 550 < close["SPY"] < 650 and 120 < close["NVDA"] < 150 and 12 <= close["^VIX"] <= 18


def test_market_structure(source, prices):
    full = source.prices(["SPY", "QQQ", "XLK", "AAPL", "KO", "TLT", "^VIX"], D(2015, 1, 1), D(2024, 12, 31)).frame
    ret = _closes(full).pct_change().dropna()
    assert ret["SPY"].corr(ret["QQQ"]) > 0.8 and ret["SPY"].corr(ret["XLK"]) > 0.8
    for stock in ("AAPL", "KO"):
        beta = np.cov(ret[stock], ret["SPY"])[0, 1] / ret["SPY"].var()
        assert 0.6 < beta < 1.5, stock
    assert ret["TLT"].corr(ret["SPY"]) < 0.1
    assert ret["^VIX"].corr(ret["SPY"]) < -0.3  # VIX rises when the market falls
    vix = _closes(full)["^VIX"]
    assert 9 < vix.min() and vix.max() < 80 and 14 < vix.mean() < 22
    assert 0.6 < (vix.between(12, 35)).mean()


# ---------------------------------------------------------------------------- fundamentals and valuation


@pytest.fixture(scope="module")
def fundamentals(source) -> pd.DataFrame:
    return source.fundamentals(None, D(2000, 1, 1), HORIZON_END).frame


def test_fundamentals_identities(source, fundamentals):
    f = fundamentals
    stocks = set(load_universe().query("role == 'stock'")["ticker"])
    assert set(f["ticker"]) == stocks
    assert (f["cost_of_revenue"] == f["revenue"] - f["gross_profit"]).all()
    assert (f["diluted_eps"] == f["net_income"] / f["diluted_shares"]).all()
    assert (f["report_date"] > f["period_end"]).all()
    lag = (f["report_date"] - f["period_end"]).dt.days
    assert lag.between(22, 50).all()
    assert set(f.loc[f["report_date"] >= "2015-01-02", "report_date"].dt.date) <= set(source.sessions(D(2015, 1, 1), HORIZON_END))
    margin = f["gross_profit"] / f["revenue"]
    assert margin.between(0.375, 0.805).all()
    assert f["fiscal_period"].str.fullmatch(r"FY\d{4}Q[1-4]").all()
    assert (f["period_end"] + pd.offsets.MonthEnd(0) == f["period_end"]).all()
    nvda = f[f["ticker"] == "NVDA"].set_index("fiscal_period")
    assert nvda.loc["FY2025Q3", "period_end"] == pd.Timestamp("2024-10-31")
    assert 5.5e9 < nvda.loc["FY2023Q4", "revenue"] < 6.8e9
    assert 34e9 < nvda.loc["FY2025Q3", "revenue"] < 36e9
    recent = nvda.loc["FY2024Q1":"FY2025Q4"]
    assert 0.69 < (recent["gross_profit"].sum() / recent["revenue"].sum()) < 0.75
    aapl = f[f["ticker"] == "AAPL"].set_index("fiscal_period")
    assert aapl.loc["FY2025Q1", "period_end"] == pd.Timestamp("2024-12-31")  # September fiscal year
    # a window selects by report_date
    window = source.fundamentals(None, D(2025, 1, 1), D(2025, 3, 31)).frame
    assert window["report_date"].between("2025-01-01", "2025-03-31").all()
    assert len(window) == f["report_date"].between("2025-01-01", "2025-03-31").sum()


def test_valuation_is_point_in_time(source, fundamentals):
    days = (D(2023, 5, 1), D(2025, 3, 14))
    v = source.valuation_snapshots(None, *days).frame
    closes = source.prices(None, *days).frame[["ticker", "trade_date", "close"]]
    v = v.merge(closes, left_on=["ticker", "snapshot_date"], right_on=["ticker", "trade_date"], how="left")
    assert v["close"].notna().all()
    stocks = load_universe().query("role == 'stock'")
    assert set(v["ticker"]) == set(stocks["ticker"])
    assert (v["sector"] == v["ticker"].map(stocks.set_index("ticker")["sector"])).all()
    assert v["industry"].notna().all()
    assert (v["market_cap"] == v["close"] * v["shares_outstanding"]).all()
    # Trailing EPS recomputed from the fundamentals frame: the last four quarters reported by the day.
    sample = v[v["snapshot_date"].isin(pd.to_datetime(["2023-05-01", "2024-02-20", "2024-11-20", "2025-01-27", "2025-03-14"]))]
    assert len(sample) == 5 * len(stocks)
    for row in sample.itertuples():
        known = fundamentals[(fundamentals["ticker"] == row.ticker) & (fundamentals["report_date"] <= row.snapshot_date)]
        last4 = known.sort_values("period_end").tail(4)
        assert len(last4) == 4
        assert row.trailing_eps == pytest.approx(last4["diluted_eps"].sum(), rel=1e-12)
        assert row.price_to_sales_ttm == pytest.approx(row.market_cap / last4["revenue"].sum(), rel=1e-12)
        if row.trailing_eps > 0:
            assert row.trailing_pe == pytest.approx(row.close / row.trailing_eps, rel=1e-12)
        assert row.forward_pe == pytest.approx(row.close / row.forward_eps, rel=1e-12)
    # Trailing EPS moves only on report dates.
    nvda = v[v["ticker"] == "NVDA"].set_index("snapshot_date")["trailing_eps"]
    changes = set(nvda.index[nvda.ne(nvda.shift()) & nvda.shift().notna()])
    reports = set(fundamentals.loc[fundamentals["ticker"] == "NVDA", "report_date"])
    assert changes and changes <= reports
    nv = v[(v["ticker"] == "NVDA") & (v["snapshot_date"] == pd.Timestamp(BEFORE))].iloc[0]
    assert 2.5e12 < nv.market_cap < 4.5e12 and nv.forward_eps > nv.trailing_eps > 0


# ---------------------------------------------------------------------------- option chains


@pytest.fixture(scope="module")
def chains(source) -> pd.DataFrame:
    return source.option_quotes(None, D(2025, 1, 21), D(2025, 1, 28)).frame


def test_option_symbols_decode_to_their_columns(chains):
    o = chains
    root = o["contract_symbol"].str[:-15]
    assert (root == o["ticker"].str.replace(r"[^A-Z0-9]", "", regex=True)).all()
    assert (pd.to_datetime(o["contract_symbol"].str[-15:-9], format="%y%m%d") == o["expiration_date"]).all()
    assert (o["contract_symbol"].str[-9].map({"C": "call", "P": "put"}) == o["option_type"]).all()
    assert (o["contract_symbol"].str[-8:].astype(int) == (o["strike"] * 1000).round().astype(int)).all()
    assert "BRKB" in set(root)


def test_option_chains_are_sane(source, chains):
    o = chains
    roles = load_universe().set_index("ticker")["role"]
    assert set(o["ticker"]) == set(roles[roles.isin(["stock", "index_proxy", "sector_proxy"])].index)
    assert (o["expiration_date"] >= o["snapshot_date"]).all()
    assert (o["bid"] < o["ask"]).all() and (o["bid"] >= 0).all()
    assert (o["last_price"] > 0).all() and (o["strike"] > 0).all()
    assert (o["volume"] >= 0).all() and (o["open_interest"] >= 0).all()
    assert o["implied_volatility"].between(0.05, 3.0).all()
    assert (o["last_trade_at"] <= o["snapshot_at"]).all()
    closes = {d: pd.Timestamp(calendar.session_close(d.date())) for d in o["snapshot_date"].drop_duplicates()}
    assert (o["snapshot_at"] == o["snapshot_date"].map(closes)).all()
    per_chain = o.groupby(["snapshot_date", "ticker"])
    assert per_chain.size().between(100, 300).all()
    assert per_chain["expiration_date"].nunique().between(6, 8).all()
    # Expiries are Fridays, or the Thursday before a Friday holiday, and never a closed day.
    expiries = o["expiration_date"].drop_duplicates()
    assert expiries.dt.day_of_week.isin([3, 4]).all()
    assert all(calendar.is_session(d.date()) for d in expiries)
    # Strikes bracket the spot, about +/-20%.
    close = source.prices(None, D(2025, 1, 21), D(2025, 1, 28)).frame.set_index(["trade_date", "ticker"])["close"]
    spot = o.set_index(["snapshot_date", "ticker"]).index.map(close)
    moneyness = o["strike"].to_numpy() / spot.to_numpy()
    assert (moneyness >= 0.8 - 1e-9).all() and (moneyness <= 1.2 + 1e-9).all()
    per_expiry = o.groupby(["snapshot_date", "ticker", "expiration_date", "option_type"]).size()
    assert per_expiry.between(10, 21).all()
    # A smile: out-of-the-money puts are dearer than out-of-the-money calls.
    nvda = o[(o["ticker"] == "NVDA") & (o["snapshot_date"] == pd.Timestamp(BEFORE))]
    first = nvda[nvda["expiration_date"] == nvda["expiration_date"].max()]
    lo, hi = first["strike"].min(), first["strike"].max()
    assert first.loc[first["strike"] == lo, "implied_volatility"].mean() > first.loc[first["strike"] == hi, "implied_volatility"].mean()


def test_selloff_day_options(chains):
    o = chains
    nvda = o[o["ticker"] == "NVDA"]
    iv = nvda.groupby("snapshot_date")["implied_volatility"].median()
    assert iv[pd.Timestamp(SELLOFF)] > iv[pd.Timestamp(BEFORE)]
    volume = nvda.groupby("snapshot_date")["volume"].sum()
    assert volume[pd.Timestamp(SELLOFF)] > 1.5 * volume[pd.Timestamp(BEFORE)]
    short = nvda[(nvda["snapshot_date"] == pd.Timestamp(SELLOFF)) & (nvda["expiration_date"] <= pd.Timestamp("2025-02-07"))]
    call_share = short.loc[short["option_type"] == "call", "volume"].sum() / short["volume"].sum()
    assert 0.5 < call_share < 0.65


def test_option_strikes_are_as_traded_before_a_split(source):
    o = source.option_quotes(["NVDA"], D(2024, 6, 7), D(2024, 6, 10)).frame
    p = source.prices(["NVDA"], D(2024, 6, 7), D(2024, 6, 10)).frame.set_index("trade_date")["close"]
    mid = o.groupby("snapshot_date")["strike"].median()
    assert 8 < mid[pd.Timestamp("2024-06-07")] / p[pd.Timestamp("2024-06-07")] < 12
    assert 0.8 < mid[pd.Timestamp("2024-06-10")] / p[pd.Timestamp("2024-06-10")] < 1.2


# ---------------------------------------------------------------------------- put/call


def test_putcall_ratios(source):
    pcf = source.putcall(D(2015, 1, 1), D(2025, 6, 30)).frame
    assert set(pcf["scope"]) == {"total", "equity", "index", "vix", "spx", "etp"}
    assert (pcf["ratio"] == (pcf["put_volume"] / pcf["call_volume"]).round(2)).all()
    assert (pcf["call_volume"] > 0).all() and (pcf["put_volume"] > 0).all()
    wide = {c: pcf.pivot(index="trade_date", columns="scope", values=c) for c in ("call_volume", "put_volume", "ratio")}
    for c in ("call_volume", "put_volume"):
        assert (wide[c]["total"] == wide[c]["equity"] + wide[c]["index"] + wide[c]["etp"]).all()
        assert (wide[c]["index"] >= wide[c]["spx"] + wide[c]["vix"]).all()
    ratio = wide["ratio"]
    assert 0.55 < ratio["equity"].mean() < 0.70 and ratio["equity"].quantile(0.02) > 0.4 and ratio["equity"].quantile(0.98) < 0.9
    assert 0.75 < ratio["total"].mean() < 0.95
    assert 0.9 < ratio["index"].mean() < 1.6
    # Complacent into the selloff, afraid on the day.
    jan = ratio.loc["2025-01-13":"2025-01-24"]
    assert jan["equity"].mean() < 0.55 and jan["total"].mean() < 0.82
    assert jan["equity"].mean() < ratio.loc["2022-01-01":"2024-12-31", "equity"].quantile(0.2)
    assert ratio.loc[pd.Timestamp(SELLOFF), "equity"] > ratio.loc[pd.Timestamp(BEFORE), "equity"] + 0.1
    assert ratio.loc[pd.Timestamp(SELLOFF), "total"] > ratio.loc[pd.Timestamp(BEFORE), "total"]


# ---------------------------------------------------------------------------- scale


def test_scaled_universe_shape():
    u = SampleSource.scaled_universe(60)
    assert len(u) == 60 and u["ticker"].is_unique
    assert list(u["ticker"][:24]) == list(load_universe()["ticker"])
    assert set(u["role"][24:]) == {"stock"} and set(u["cohort"][24:]) <= {"ai", "non_ai"}
    assert list(SampleSource.scaled_universe(10)["ticker"]) == list(load_universe()["ticker"][:10])


def test_synthetic_tickers_serve_every_dataset():
    s = SampleSource.scaled(n_tickers=30, years=3, end=D(2025, 3, 31))
    assert s.history_start == D(2022, 4, 1)
    window = (D(2025, 1, 21), D(2025, 1, 28))
    syn = [t for t in s.tickers if t.startswith("SYN")]
    assert len(syn) == 6
    for dataset, batch in (
        (PRICES, s.prices(syn, *window)),
        (OPTION_QUOTES, s.option_quotes(syn, *window)),
        (VALUATION, s.valuation_snapshots(syn, *window)),
        (FUNDAMENTALS, s.fundamentals(syn, D(2022, 1, 1), window[1])),
    ):
        assert set(batch.frame["ticker"]) == set(syn), dataset.name
        pd.testing.assert_frame_equal(batch.frame, conform(dataset, batch.frame).frame, check_exact=True)


@pytest.mark.slow
def test_scaled_market_has_benchmark_size():
    began = time.perf_counter()
    s = SampleSource.scaled(n_tickers=500, years=20)
    batch = s.prices(None, s.history_start, D(2025, 12, 31))
    seconds = time.perf_counter() - began
    print(f"\n500 tickers x 20 years: {batch.rows:,} price rows in {seconds:.1f} s")
    assert batch.frame["ticker"].nunique() == 500
    assert 2_400_000 < batch.rows < 2_600_000
    # How long it takes is the benchmarks' business (bench/), never asserted in a test.
