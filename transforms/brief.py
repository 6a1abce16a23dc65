"""The morning brief as text: one session's `marts.market_brief` row, written for a person.

`bellwether report` prints it; a missing figure says that it is missing (and why, where that
is known) instead of vanishing. Every figure comes from the brief row, which quotes the marts
that own them, so the text always agrees with the tables.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import duckdb


class NoBrief(LookupError):
    """There is no brief row for the date asked (or none at all)."""


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_brief(con: duckdb.DuckDBPyConnection, day: dt.date | None = None) -> dict:
    """The brief row for `day` (default: the latest), as plain Python values, with the sources
    the day's prices came from."""
    has = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() and table_schema = 'marts' and table_name = 'market_brief'"
    ).fetchall()[0][0]
    if not has:
        raise NoBrief("the warehouse has no marts.market_brief yet: run `bellwether run` first")
    latest = con.execute("select max(trade_date) from marts.market_brief").fetchall()[0][0]
    if latest is None:
        raise NoBrief("marts.market_brief is empty: run `bellwether run` first")
    day = day or latest
    cur = con.execute("select * from marts.market_brief where trade_date = ?", [day])
    columns = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        from sources import calendar

        why = "the NYSE was closed that day" if not calendar.is_session(day) else "that session is not loaded"
        first = con.execute("select min(trade_date) from marts.market_brief").fetchall()[0][0]
        raise NoBrief(f"no brief for {day}: {why} (the brief covers {first} to {latest})")
    brief = {c: _plain(v) for c, v in zip(columns, rows[0])}
    brief["sources"] = [r[0] for r in con.execute(
        "select distinct source from raw.prices_daily where trade_date = ? order by 1", [day]
    ).fetchall()]
    return brief


def fmt_num(v, digits=2, suffix="", signed=False) -> str:
    if v is None:
        return "n/a"
    return f"{v:+,.{digits}f}{suffix}" if signed else f"{v:,.{digits}f}{suffix}"


def md_table(rows: list, header: list[str], row: Callable[[object], list[str]], missing: str) -> list[str]:
    """A markdown table of `rows`, or the sentence saying why there is none."""
    if not rows:
        return [missing, ""]
    align = "|".join("---" if i == 0 or h.startswith("nearest") else "---:" for i, h in enumerate(header))
    return ["| " + " | ".join(header) + " |", f"|{align}|"] + ["| " + " | ".join(row(r)) + " |" for r in rows] + [""]


def _sma(v, none: str) -> str:
    return none if v is None else f"{v}-day average"


def _usd_bn(v) -> str:
    return "n/a" if v is None else f"{v / 1e9:+,.1f} bn USD"


def brief_markdown(brief: dict) -> str:
    day = brief["trade_date"]
    synthetic = brief.get("sources") == ["sample"]
    source = ", ".join(brief.get("sources") or []) or "unknown"
    lines = [
        f"# Bellwether brief for {day}{' (synthetic sample data)' if synthetic else ''}",
        "",
        (f"All figures as of the close of {day}, from Bellwether's bundled synthetic market (source `sample`): "
         "not real market data." if synthetic else
         f"All figures as of the close of {day}: prices from source `{source}`, put/call ratios from CBOE, "
         "valuations from the nightly snapshots and the filings known that day."),
        "",
        "## Headline moves",
        "",
    ]
    lines += md_table(
        brief.get("index_moves") or [], ["index proxy", "close", "1-day", "sigma"],
        lambda m: [m["ticker"], fmt_num(m["close"]), fmt_num(m["return_1d_pct"], suffix="%", signed=True), fmt_num(m["sigma_move"], 1)],
        "No index proxy prices for this date.",
    )
    lines += [
        f"Universe market value: {_usd_bn(brief.get('market_cap_change_usd'))} "
        f"({fmt_num(brief.get('market_cap_return_pct'), suffix='%', signed=True)}); AI {_usd_bn(brief.get('ai_market_cap_change_usd'))}, "
        f"non-AI {_usd_bn(brief.get('non_ai_market_cap_change_usd'))}; {brief.get('n_k_sigma_moves') or 0} stock(s) moved k sigma or more.",
        "",
    ]
    for title, key in (("Biggest dollar losers", "biggest_losers"), ("Biggest dollar gainers", "biggest_gainers")):
        rows = brief.get(key) or []
        lines += [f"**{title}:** " + ("; ".join(
            f"{r['ticker']} {fmt_num(r['return_1d_pct'], suffix='%', signed=True)} ({_usd_bn(r['market_cap_change_usd'])})" for r in rows
        ) or "none"), ""]
    lines += ["## Support levels (moving averages below and above the close)", ""]
    lines += md_table(
        brief.get("support_levels") or [],
        ["ticker", "close", "nearest support", "level", "distance", "nearest resistance", "level", "distance"],
        lambda s: [s["ticker"], fmt_num(s["close"]), _sma(s.get("nearest_support_sma"), "none below"), fmt_num(s.get("nearest_support_level")),
                   fmt_num(s.get("nearest_support_pct"), suffix="%", signed=True), _sma(s.get("nearest_resistance_sma"), "none above"),
                   fmt_num(s.get("nearest_resistance_level")), fmt_num(s.get("nearest_resistance_pct"), suffix="%", signed=True)],
        "No support levels for this date (the focus tickers have no prices).",
    )
    lines += ["## Put/call (CBOE)", ""]
    if brief.get("putcall_total_ratio") is None and brief.get("putcall_equity_ratio") is None:
        lines += ["No CBOE put/call reading for this date.", ""]
    else:
        lines += [
            f"Total {fmt_num(brief.get('putcall_total_ratio'))}, percentile {fmt_num(brief.get('putcall_total_pct_rank_252'), 0)} of the last "
            f"year and {fmt_num(brief.get('putcall_total_pct_rank_504'), 0)} of two ({brief.get('putcall_total_regime') or 'regime n/a'}); "
            f"equity {fmt_num(brief.get('putcall_equity_ratio'))} (5-day average {fmt_num(brief.get('putcall_equity_ratio_ma_5'))}, "
            f"percentile {fmt_num(brief.get('putcall_equity_pct_rank_252'), 0)}, {brief.get('putcall_equity_regime') or 'regime n/a'}).",
            "",
        ]
    lines += ["## The largest names against their 50-day average", ""]
    members = brief.get("top_n_members") or []
    if members:
        lines += [
            f"{len(members)} largest ({', '.join(members)}): mean {fmt_num(brief.get('top_n_mean_pct_to_sma_50'), suffix='%', signed=True)}, "
            f"median {fmt_num(brief.get('top_n_median_pct_to_sma_50'), suffix='%', signed=True)} to the 50-DMA "
            f"(the average's distance from the close); {brief.get('top_n_n_below_sma_50')} trade below it.",
            "",
        ]
    else:
        lines += ["No market caps for this date, so no ranking of the largest names.", ""]
    lines += [
        "## Valuation",
        "",
        f"Aggregate forward P/E {fmt_num(brief.get('aggregate_forward_pe'), 1)} (percentile {fmt_num(brief.get('aggregate_forward_pe_pct_rank'), 0)} "
        f"of its own history), trailing {fmt_num(brief.get('aggregate_trailing_pe'), 1)} (percentile "
        f"{fmt_num(brief.get('aggregate_trailing_pe_pct_rank'), 0)}). Median price-to-sales: AI {fmt_num(brief.get('ai_median_price_to_sales'), 1)}, "
        f"non-AI {fmt_num(brief.get('non_ai_median_price_to_sales'), 1)}, ratio {fmt_num(brief.get('ai_to_non_ai_price_to_sales'), 2, 'x')}.",
        "",
        "## Options sentiment (chains snapshotted that night)",
        "",
    ]
    lines += md_table(
        brief.get("options_sentiment") or [], ["ticker", "put/call volume", "short-dated call share", "near-the-money IV"],
        lambda o: [o["ticker"], fmt_num(o["put_call_volume_ratio"]), fmt_num(o["short_term_call_share_pct"], 0, "%"),
                   fmt_num(o["atm_iv_nearest_pct"], 1, "%")],
        "No option chains were snapshotted for this date.",
    )
    lines += ["## Fear & greed", ""]
    if brief.get("fear_greed_score") is None:
        lines += [f"No score for this date ({brief.get('fear_greed_components_used') or 0} of 7 components available).", ""]
    else:
        lines += [f"{fmt_num(brief['fear_greed_score'], 0)} / 100, {brief.get('fear_greed_label')} "
                  f"({brief.get('fear_greed_components_used')} of 7 components).", ""]
    return "\n".join(lines)
