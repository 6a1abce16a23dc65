"""The S&P 500 universe at night, on the sample source: the switch from the default universe is
recorded, every constituent is priced, a second share class is priced but never counted as a
company, and the brief's aggregates say what they cover."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import copy_lake
from tests.integration.conftest import fetch, scalar

NIGHT = dt.date(2025, 1, 27)


@pytest.fixture(scope="module")
def sp500_night(friday, tmp_path_factory):
    from flows.nightly import nightly

    target = copy_lake(friday, tmp_path_factory.mktemp("sp500"))  # the night before on the bundled universe
    first = dict(zip(("run_date", "status"), fetch(target, "select parameters->>'run_date', status from audit.runs")[0]))
    second = nightly(run_date=NIGHT, source="sample", warehouse=target, universe="sp500", history_sessions=70)
    return target, first, second


def test_switching_to_the_sp500_is_recorded_and_every_listing_is_loaded(sp500_night):
    target, first, second = sp500_night
    assert first == {"run_date": str(NIGHT - dt.timedelta(days=3)), "status": "succeeded"}
    assert second["status"] == "succeeded", second.get("message")
    assert scalar(target, "select count(*) from raw.universe") == 511
    assert scalar(target, "select count(*) from raw.universe where sub_industry is not null") == 503
    # 24 names before, 511 after: the default's 8 funds and 16 stocks (all S&P 500 members) stay.
    added, removed = fetch(target, "select tickers_added, tickers_removed from audit.universe_changes "
                                   "where run_id = ?", [second["run_id"]])[0]
    assert (added, removed) == (511 - 24, 0)
    priced = scalar(target, "select count(distinct ticker) from raw.prices_daily where trade_date = ?", [NIGHT])
    assert priced == 511


def test_a_second_share_class_is_priced_but_counted_once(sp500_night):
    target, _, _ = sp500_night
    goog = fetch(target, "select role, close is not null, market_cap from marts.market_moves where ticker = 'GOOG' and trade_date = ?", [NIGHT])
    assert goog == [("share_class", True, None)]
    stocks = fetch(target, "select n_stocks, n_members from marts.market_moves_cohorts where cohort = 'all' and trade_date = ?", [NIGHT])
    assert stocks == [(500, 500)]
    members = fetch(target, "select members from marts.cohort_sma_distance where cohort = 'top_n' and trade_date = ?", [NIGHT])[0][0]
    assert len(members) == 10 and not {"GOOG", "FOX", "NWS"} & set(members)


def test_the_brief_names_what_its_aggregates_cover(sp500_night):
    from transforms.brief import brief_markdown, read_brief
    from warehouse.connect import reader

    target, _, _ = sp500_night
    with reader(target) as con:
        text = brief_markdown(read_brief(con, NIGHT))
    assert "Market value change of all 500 stocks:" in text
    assert "AI " in text and "(17 of 17 stocks)" in text and "(483 of 483 stocks)" in text
    assert "The 10 largest (" in text and "k sigma" not in text
