"""marts.options_sentiment on a handful of hand-made contracts: what is left out and counted,
volume and open-interest ratios, the short-term call share, near-the-money IV; incremental == full."""

import datetime as dt

import pytest

from tests.sql.conftest import RUN, built_in_full, insert_prices, insert_rows, one_row
from transforms.runner import build, input_start_for

MODELS = ["stg_option_quotes", "stg_prices_daily", "options_sentiment"]
MON, SAT, FRI = dt.date(2025, 1, 27), dt.date(2025, 1, 25), dt.date(2025, 1, 24)
QUOTE_COLUMNS = (
    "snapshot_date", "ticker", "contract_symbol", "option_type", "expiration_date", "strike",
    "volume", "open_interest", "implied_volatility", "last_trade_at",
)


def at(day, hour=18):
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def insert_quotes(con, snapshot_date, ticker, contracts):
    """contracts: (option_type, expiration_date, strike, volume, open_interest, iv, last_trade_at)."""
    rows = []
    for i, (kind, expiry, strike, volume, oi, iv, last_trade) in enumerate(contracts):
        symbol = f"{ticker}{expiry:%y%m%d}{kind[0].upper()}{int(strike * 1000):08d}-{i}"
        rows.append((snapshot_date, ticker, symbol, kind, expiry, strike, volume, oi, iv, last_trade))
    insert_rows(con, "raw.option_quotes", rows, QUOTE_COLUMNS)


E0, E1, E2, E3 = dt.date(2025, 1, 27), dt.date(2025, 1, 31), dt.date(2025, 2, 21), dt.date(2025, 3, 21)
D30, D31 = dt.date(2025, 2, 26), dt.date(2025, 2, 27)  # 30 and 31 days after Monday's snapshot
MONDAY_CHAIN = [
    # kind,  expiry, strike, volume, oi, iv, last trade
    ("call", E1, 115.0, 1000, 5000, 0.80, at(MON)),             # 1 used, short-term
    ("call", E1, 120.0, 3000, 8000, 0.70, at(MON)),             # 2 used: the near-the-money call
    ("put", E1, 115.0, 2500, 6000, 0.85, at(MON)),              # 3 used
    ("put", E1, 120.0, 500, 2000, 0.90, at(MON)),               # 4 used
    ("call", E1, 118.0, 50, 100, 1e-5, at(MON)),                # 5 placeholder IV: volume counts, IV does not
    ("call", E3, 125.0, 400, 3000, 0.60, at(MON)),              # 6 used, 53 days out
    ("put", E3, 110.0, 600, 4000, 0.65, at(MON)),               # 7 used, 53 days out
    ("call", E2, 200.0, 999, 50, 0.90, at(dt.date(2025, 1, 15))),  # 8 stale: 12 days
    ("put", E2, 100.0, 77, 10, 0.50, None),                     # 9 stale: never traded
    ("call", FRI, 140.0, 10000, 0, 0.40, at(FRI)),              # 10 expired on Friday
    ("put", E0, 118.0, 700, 100, 1.50, at(MON)),                # 11 used, expires today: short-term, not for IV
    ("call", E2, 118.0, 100, 1000, None, at(MON)),              # 12 missing IV: a placeholder
    ("put", E1, 119.0, 20, 30, 0.88, at(dt.date(2025, 1, 22))),  # 13 five days: not yet stale; near the money
    ("call", E1, 130.0, 5, 0, 0.75, at(dt.date(2025, 1, 21))),   # 14 six days: stale
    ("put", D30, 118.0, 130, 0, 0.60, at(MON)),                 # 15 30 days: short-term
    ("call", D31, 118.0, 170, 0, 0.60, at(MON)),                # 16 31 days: not short-term
]


def row(con, day, ticker):
    return one_row(con, "select * from marts.options_sentiment where snapshot_date = ? and ticker = ?", [day, ticker])


@pytest.fixture
def chains(mem):
    insert_prices(mem, [("NVDA", FRI, 142.62, 142.62), ("NVDA", MON, 118.42, 118.42)])
    insert_quotes(mem, MON, "NVDA", MONDAY_CHAIN)
    # A chain saved on Saturday holds Friday's quotes: its reference is Friday's close, 142.62.
    insert_quotes(mem, SAT, "NVDA", [
        ("call", E1, 140.0, 10, 10, 0.50, at(FRI)),
        ("call", E1, 145.0, 10, 10, 0.55, at(FRI)),
        ("put", E1, 140.0, 10, 10, 0.60, at(FRI)),
        ("put", E1, 145.0, 10, 10, 0.62, at(FRI)),
    ])
    # No price at all: the reference is the median strike, 25, halfway between 20 and 30.
    insert_quotes(mem, MON, "ZZZ", [
        ("call", E1, s, 1, 1, iv, at(MON)) for s, iv in ((10.0, 0.9), (20.0, 0.4), (30.0, 0.5), (40.0, 0.6))
    ] + [("put", E1, s, 0, 0, iv, at(MON)) for s, iv in ((20.0, 0.3), (30.0, 0.7))])
    # Every contract stale: the row stays, with zeros and no ratios.
    insert_quotes(mem, MON, "OLD", [("put", E2, 50.0, 5, 5, 0.5, at(dt.date(2025, 1, 2)))])
    build(mem, run_date=RUN, select=MODELS)
    return mem


def test_left_out_contracts_are_counted(chains):
    got = row(chains, MON, "NVDA")
    assert got["n_contracts"] == 16
    assert got["n_expired_excluded"] == 1      # 10
    assert got["n_stale_excluded"] == 3        # 8, 9, 14
    assert got["n_contracts_used"] == 12
    assert got["n_placeholder_iv_excluded"] == 2  # 5, 12: used for volume, not for IV
    old = row(chains, MON, "OLD")
    assert (old["n_contracts"], old["n_stale_excluded"], old["n_contracts_used"]) == (1, 1, 0)
    assert (old["call_volume"], old["put_volume"], old["call_open_interest"], old["put_open_interest"]) == (0, 0, 0, 0)
    assert old["put_call_volume_ratio"] is None and old["short_term_call_share_pct"] is None
    assert old["atm_iv_nearest_pct"] is None and old["atm_reference_price"] is None


def test_volume_and_open_interest_ratios(chains):
    got = row(chains, MON, "NVDA")
    # Calls 1, 2, 5, 6, 12, 16; puts 3, 4, 7, 11, 13, 15.
    assert got["call_volume"] == 1000 + 3000 + 50 + 400 + 100 + 170 == 4720
    assert got["put_volume"] == 2500 + 500 + 600 + 700 + 20 + 130 == 4450
    assert got["put_call_volume_ratio"] == pytest.approx(4450 / 4720)
    assert got["call_open_interest"] == 5000 + 8000 + 100 + 3000 + 1000 == 17100
    assert got["put_open_interest"] == 6000 + 2000 + 4000 + 100 + 30 == 12130
    assert got["put_call_oi_ratio"] == pytest.approx(12130 / 17100)


def test_short_term_call_share(chains):
    # Within 30 days (0DTE and the 30-day put included, the 31-day call and March out):
    # calls 1, 2, 5, 12 = 4150; puts 3, 4, 11, 13, 15 = 3850.
    got = row(chains, MON, "NVDA")
    assert got["short_term_call_share_pct"] == pytest.approx(100 * 4150 / (4150 + 3850))
    assert got["short_term_call_share_pct"] == pytest.approx(51.875)
    zzz = row(chains, MON, "ZZZ")
    assert zzz["short_term_call_share_pct"] == 100.0  # four calls of one contract each, puts traded none


def test_near_the_money_iv_for_the_nearest_expiry(chains):
    got = row(chains, MON, "NVDA")
    # Nearest expiry at least a day out: 31 January. Reference: Monday's close 118.42. Calls with
    # a usable IV: 115 (3.42 away), 120 (1.58); the 118 call's IV is a placeholder. Puts: 115, 119
    # (0.58), 120. (0.70 + 0.88) / 2 = 79%.
    assert got["atm_expiration_date"] == E1
    assert got["atm_reference_price"] == 118.42
    assert got["atm_iv_nearest_pct"] == pytest.approx(79.0)
    sat = row(chains, SAT, "NVDA")
    # Friday's close 142.62: 145 is 2.38 away, 140 2.62. (0.55 + 0.62) / 2 = 58.5%.
    assert sat["atm_reference_price"] == 142.62
    assert sat["atm_iv_nearest_pct"] == pytest.approx(58.5)
    zzz = row(chains, MON, "ZZZ")
    # Median strike of the calls and puts (10, 20, 20, 30, 30, 40) is 25: 20 and 30 tie, the lower
    # wins. (0.4 + 0.3) / 2 = 35%.
    assert zzz["atm_reference_price"] == 25.0
    assert zzz["atm_iv_nearest_pct"] == pytest.approx(35.0)
    assert zzz["put_call_volume_ratio"] == 0.0


def test_incremental_build_equals_a_full_build(mem):
    insert_prices(mem, [("NVDA", FRI, 142.62, 142.62), ("NVDA", MON, 118.42, 118.42)])
    insert_quotes(mem, FRI, "NVDA", [(k, E1, s, 10, 10, 0.5, at(FRI)) for k in ("call", "put") for s in (140.0, 145.0)])
    build(mem, run_date=RUN, select=MODELS)
    before = mem.execute("select * from marts.options_sentiment where snapshot_date = ?", [FRI]).fetchall()
    # A later night loads Saturday's and Monday's chains; Saturday's reference close is Friday's,
    # which only the lookback brings into the incremental build.
    insert_quotes(mem, SAT, "NVDA", [(k, E1, s, 10, 10, 0.5 + s / 1000, at(FRI)) for k in ("call", "put") for s in (140.0, 145.0)])
    insert_quotes(mem, MON, "NVDA", MONDAY_CHAIN)
    assert input_start_for(SAT, 5) <= FRI < SAT
    results = build(mem, run_date=RUN, since=SAT, select=MODELS)
    result = next(r for r in results if r.relation == "marts.options_sentiment")
    assert result.mode == "incremental" and result.rows_written == 2 and result.rows == 3
    query = "select * from marts.options_sentiment order by snapshot_date, ticker"
    incremental = mem.execute(query).fetchall()
    assert mem.execute("select * from marts.options_sentiment where snapshot_date = ?", [FRI]).fetchall() == before

    with built_in_full(mem, MODELS) as full:
        assert incremental == full.execute(query).fetchall()
    assert row(mem, SAT, "NVDA")["atm_reference_price"] == 142.62
