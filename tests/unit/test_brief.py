"""The brief's text: every section present, and a missing figure said, never dropped."""

import datetime as dt
import re

from transforms.brief import brief_markdown


def test_an_empty_day_still_has_every_section_saying_what_is_missing():
    text = brief_markdown({"trade_date": dt.date(2025, 1, 27), "sources": ["files"]})
    assert text.startswith("# Bellwether brief for 2025-01-27\n") and "synthetic" not in text.splitlines()[0]
    for line in (
        "No index proxy prices for this date.",
        "**Biggest dollar losers:** none",
        "No support levels for this date (the focus tickers have no prices).",
        "No CBOE put/call reading for this date.",
        "Market value change: no stock was priced this session.",
        "No stock has a 50-day average for this date, so no ranking of the largest names.",
        "No valuation: no stock has a market cap and the multiples' inputs for this date.",
        "No option chains were snapshotted for this date.",
        "No score for this date (0 of 7 components available).",
    ):
        assert line in text


def test_figures_are_formatted_with_signs_units_and_their_source():
    brief = {
        "trade_date": dt.date(2025, 1, 27), "sources": ["sample"],
        "index_moves": [{"ticker": "QQQ", "close": 514.21, "return_1d_pct": -2.967, "sigma_move": -2.4}],
        "market_cap_change_usd": -1.99e12, "market_cap_return_pct": -3.1, "market_cap_n_stocks": 500,
        "market_cap_n_members": 500, "market_cap_n_without": 0, "market_cap_coverage_pct": 100.0,
        "biggest_losers": [{"ticker": "NVDA", "return_1d_pct": -16.97, "market_cap_change_usd": -5.995e11}],
        "putcall_total_ratio": 0.8, "putcall_total_pct_rank_252": 12.0, "putcall_total_regime": "complacent",
        "fear_greed_score": 41.3, "fear_greed_label": "fear", "fear_greed_components_used": 7,
    }
    text = brief_markdown(brief)
    assert "(synthetic sample data)" in text.splitlines()[0] and "not real market data" in text
    assert "| QQQ | 514.21 | -2.97% | -2.4 |" in text
    assert "Market value change of all 500 stocks: -1,990.0 bn USD (-3.10%)." in text
    assert "**Biggest dollar losers:** NVDA -16.97% (-599.5 bn USD)" in text
    assert "Total 0.80, percentile 12 of the last year" in text and "complacent" in text
    assert "41 / 100, fear (7 of 7 components)." in text


def test_a_page_without_any_data_has_every_chart_saying_so():
    import pandas as pd

    from transforms.report import render

    empty = pd.DataFrame()
    page = render({"brief": {"trade_date": dt.date(2025, 1, 27), "sources": ["files"]}, "day": dt.date(2025, 1, 27),
                   "closes": pd.DataFrame(columns=["ticker"]), "putcall": empty, "valuation": empty, "top_n": empty,
                   "fundamentals": empty, "fear_greed": empty, "most_active": empty})
    assert "No fear &amp; greed reading for 2025-01-27." in page and page.count("No option chains were snapshotted") == 1
    assert page.count("<figure") == 9 and page.count("No data for this chart: ") == 9 and "<svg" not in page
    assert page.count('data-points="0"') == 9
    assert "No data for this chart: no forward P/E up to 2025-01-27: forward EPS comes only from the nightly" in page


def test_the_market_value_change_says_which_stocks_it_covers():
    from transforms.brief import market_value_sentence

    day = {"market_cap_change_usd": -5.986e11, "market_cap_return_pct": -17.0}
    assert market_value_sentence(day | {"market_cap_n_stocks": 16, "market_cap_n_members": 1, "market_cap_n_without": 15}) == (
        "Market value change of 1 of 16 stocks (share of market cap unknown: 15 have no market cap): -598.6 bn USD (-17.00%).")
    assert market_value_sentence(day | {"market_cap_n_stocks": 503, "market_cap_n_members": 487, "market_cap_n_without": 0,
                                        "market_cap_coverage_pct": 96.4}) == (
        "Market value change of 487 of 503 stocks (96% of their market cap): -598.6 bn USD (-17.00%).")
    assert market_value_sentence(day | {"market_cap_n_stocks": 2, "market_cap_n_members": 2, "market_cap_n_without": 0,
                                        "market_cap_coverage_pct": 100.0}).startswith("Market value change of all 2 stocks:")
    none = market_value_sentence({"market_cap_n_stocks": 3, "market_cap_n_members": 0, "market_cap_n_without": 3})
    assert none == "Market value change: unknown, none of the 3 stocks has a market cap and a previous close (3 have no market cap at all)."


def test_the_market_value_card_names_the_same_coverage_as_the_sentence():
    """The card once cut its note out of the sentence and called priced stocks without a
    market cap "no stock was priced"."""
    from transforms.report import summary_cards

    def card(brief):
        return re.search(r'Market value change</div><div class="value[^"]*">(.*?)</div><div class="note">(.*?)</div>',
                         summary_cards(brief)).groups()

    assert card({"market_cap_n_stocks": 3, "market_cap_n_members": 0, "market_cap_n_without": 3}) == (
        "n/a", "none of the 3 stocks has a market cap and a previous close (3 have no market cap at all)")
    assert card({"market_cap_n_stocks": 0}) == ("n/a", "no stock was priced this session")
    assert card({"market_cap_change_usd": -5.986e11, "market_cap_n_stocks": 16, "market_cap_n_members": 1,
                 "market_cap_n_without": 15}) == (
        "-598.6 bn USD", "1 of 16 stocks (share of market cap unknown: 15 have no market cap)")


def test_sigma_largest_names_and_valuation_name_their_counts():
    from transforms.brief import largest_names_sentence, sigma_sentence, valuation_sentence

    assert sigma_sentence({"n_k_sigma_moves": 2, "n_with_sigma": 16, "market_cap_n_stocks": 16, "k_sigma_threshold": 3}) == (
        "2 of 16 stocks moved 3 sigma or more.")
    assert sigma_sentence({"n_k_sigma_moves": 1, "n_with_sigma": 14, "market_cap_n_stocks": 16, "k_sigma_threshold": 3}) == (
        "1 of 14 stocks moved 3 sigma or more (2 with under 63 sessions of returns not counted).")
    one = {"top_n_members": ["NVDA"], "top_n_target": 10, "top_n_n_stocks": 16, "top_n_n_with_market_cap": 1,
           "top_n_mean_pct_to_sma_50": 14.17, "top_n_median_pct_to_sma_50": 14.17, "top_n_n_below_sma_50": 1}
    assert largest_names_sentence(one).startswith(
        "Not the 10 largest names: only 1 of the 16 stocks with a 50-day average has a market cap (NVDA): mean +14.17%")
    ten = one | {"top_n_members": list("ABCDEFGHIJ"), "top_n_n_with_market_cap": 12, "top_n_mean_pct_to_sma_50": -5.65}
    assert largest_names_sentence(ten).startswith("The 10 largest (A, B, C, D, E, F, G, H, I, J): mean -5.65%")
    valuation = {"valuation_n_stocks": 16, "aggregate_forward_pe": None, "aggregate_forward_pe_n": 0,
                 "aggregate_trailing_pe": 48.2, "aggregate_trailing_pe_n": 1, "aggregate_trailing_pe_pct_rank": None,
                 "ai_median_price_to_sales": 27.5, "ai_price_to_sales_n": 1, "non_ai_median_price_to_sales": None,
                 "non_ai_price_to_sales_n": 0}
    assert valuation_sentence(valuation) == (
        "Aggregate forward P/E n/a (none of the 16 stocks has one); trailing P/E 48.2 over 1 of 16 stocks (too short a "
        "history for a percentile). Median price-to-sales: AI 27.5 (1 stock), non-AI n/a (0 stocks), ratio n/a.")


def test_a_cohort_chart_of_a_few_nights_shows_the_month_around_them_not_years():
    """Forward P/E exists only from the first valuation snapshot: a chart of one night must not
    spread it over matplotlib's default four years of axis (every tick date near the night)."""
    import pandas as pd

    from transforms import report

    day = pd.Timestamp("2026-12-04")
    valuation = pd.DataFrame({
        "trade_date": [day, day], "cohort": ["ai", "non_ai"], "median_forward_pe": [16.8, 11.0], "n_forward_pe": [6, 10],
    })
    svg = report.chart_forward_pe(valuation)
    dates = [pd.Timestamp(f"{y}-{m}-{d or '01'}") for y, m, d in re.findall(r"\b(20\d\d)-(\d\d)(?:-(\d\d))?\b", svg)]
    assert len(dates) >= 3  # the ticks and the legends' dates
    assert max(abs(d - day) for d in dates) <= pd.Timedelta(days=31), sorted(set(dates))
