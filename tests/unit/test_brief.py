"""The brief's text: every section present, and a missing figure said, never dropped."""

import datetime as dt

from transforms.brief import brief_markdown


def test_an_empty_day_still_has_every_section_saying_what_is_missing():
    text = brief_markdown({"trade_date": dt.date(2025, 1, 27), "sources": ["files"]})
    assert text.startswith("# Bellwether brief for 2025-01-27\n") and "synthetic" not in text.splitlines()[0]
    for line in (
        "No index proxy prices for this date.",
        "**Biggest dollar losers:** none",
        "No support levels for this date (the focus tickers have no prices).",
        "No CBOE put/call reading for this date.",
        "No market caps for this date, so no ranking of the largest names.",
        "Aggregate forward P/E n/a",
        "No option chains were snapshotted for this date.",
        "No score for this date (0 of 7 components available).",
    ):
        assert line in text


def test_figures_are_formatted_with_signs_units_and_their_source():
    brief = {
        "trade_date": dt.date(2025, 1, 27), "sources": ["sample"],
        "index_moves": [{"ticker": "QQQ", "close": 514.21, "return_1d_pct": -2.967, "sigma_move": -2.4}],
        "market_cap_change_usd": -1.99e12, "market_cap_return_pct": -3.1,
        "biggest_losers": [{"ticker": "NVDA", "return_1d_pct": -16.97, "market_cap_change_usd": -5.995e11}],
        "putcall_total_ratio": 0.8, "putcall_total_pct_rank_252": 12.0, "putcall_total_regime": "complacent",
        "fear_greed_score": 41.3, "fear_greed_label": "fear", "fear_greed_components_used": 7,
    }
    text = brief_markdown(brief)
    assert "(synthetic sample data)" in text.splitlines()[0] and "not real market data" in text
    assert "| QQQ | 514.21 | -2.97% | -2.4 |" in text
    assert "Universe market value: -1,990.0 bn USD (-3.10%)" in text
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
    assert "No fear &amp; greed reading for 2025-01-27." in page and "No option chains were snapshotted for 2025-01-27." in page
    assert page.count("<figure") == 8 and page.count("No data for this chart as of 2025-01-27.") == 8 and "<svg" not in page
