"""Every mart built by the nightly flow from the sample market (three years of history, as
`make run` loads), the synthetic selloff's known shape, and an incremental night equal to a
full rebuild for every mart."""

import datetime as dt

import pytest

from flows.nightly import nightly
from tests.conftest import lake_target
from tests.integration.conftest import assert_marts_equal_a_full_rebuild, fetch, scalar
from transforms.runner import discover

SELLOFF = dt.date(2025, 1, 27)
MARTS = sorted(f"marts.{m.name}" for m in discover() if m.layer == "marts")


@pytest.fixture(scope="module")
def sample_marts(tmp_path_factory):
    path = lake_target(tmp_path_factory.mktemp("sample_marts"))
    first = nightly(run_date=SELLOFF, source="sample", warehouse=str(path))  # default history
    return path, first


def test_every_mart_has_rows_on_the_selloff(sample_marts):
    path, first = sample_marts
    assert first["status"] == "succeeded"
    built = {b["relation"] for b in first["builds"]}
    assert set(MARTS) <= built
    for table in MARTS:
        col = "period_end" if table == "marts.fundamentals_quarterly" else "snapshot_date" if table == "marts.options_sentiment" else "trade_date"
        cmp = "<=" if col == "period_end" else "="
        assert scalar(path, f"select count(*) from {table} where {col} {cmp} ?", [SELLOFF]) > 0, table


def test_the_synthetic_selloff_reads_as_designed(sample_marts):
    path, _ = sample_marts
    b = fetch(path, "select biggest_losers[1].ticker, ai_market_cap_change_usd, non_ai_market_cap_change_usd, ai_to_non_ai_price_to_sales, "
                    "fear_greed_components_used, index_moves[1].ticker, index_moves[2].return_1d_pct from marts.market_brief where trade_date = ?", [SELLOFF])[0]
    worst, ai, non_ai, ps_ratio, used, first_index, qqq = b
    assert worst == "NVDA" and ai < -1e12 and ai < non_ai
    assert 1.5 < ps_ratio < 3.5  # "AI stocks' price-to-sales twice that of the rest"
    assert used == 7  # three years of history: every component is ranked
    assert first_index == "SPY" and qqq < -2
    # The brief quotes the detail marts, never its own arithmetic.
    assert scalar(path, "select total_market_cap_change_usd from marts.market_moves_cohorts where cohort = 'ai' and trade_date = ?", [SELLOFF]) == ai
    # NVDA's short-dated calls: the sample is built to show about 57% on the selloff.
    share = scalar(path, "select short_term_call_share_pct from marts.options_sentiment where ticker = 'NVDA' and snapshot_date = ?", [SELLOFF])
    assert share == pytest.approx(57, abs=4)
    # NVDA's quarterly revenue from about 6.1B (Jan 2023) to 35.1B (Oct 2024) at about 72% margin.
    rev = dict(fetch(path, "select period_end, revenue from marts.fundamentals_quarterly where ticker = 'NVDA'"))
    assert rev[dt.date(2023, 1, 31)] == pytest.approx(6.1e9, rel=0.03)
    assert rev[dt.date(2024, 10, 31)] == pytest.approx(35.1e9, rel=0.03)
    gm8 = scalar(path, "select gross_margin_8q_avg_pct from marts.fundamentals_quarterly where ticker = 'NVDA' and period_end = '2024-10-31'")
    assert gm8 == pytest.approx(72, abs=3)


def test_next_night_incremental_equals_full_rebuild_for_every_mart(sample_marts, tmp_path):
    path, _ = sample_marts
    second = nightly(run_date=dt.date(2025, 1, 28), source="sample", warehouse=str(path))
    modes = {b["relation"]: b["mode"] for b in second["builds"]}
    assert modes["marts.technicals_daily"] == "incremental" and modes["marts.market_brief"] == "incremental"
    assert_marts_equal_a_full_rebuild(path, tmp_path, dt.date(2025, 1, 28))
