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


def _stocks(n: int | None) -> str:
    return f"{n or 0:,} stock" + ("" if n == 1 else "s")


def market_value_coverage(brief: dict) -> str:
    """Which stocks the day's market value change covers: "all 500 stocks", "487 of 503 stocks
    (96% of their market cap)", "4 of 16 stocks (share of market cap unknown: 12 have no
    market cap)", or why there is no figure. Never "the universe" when one name had a cap."""
    n, m = brief.get("market_cap_n_stocks") or 0, brief.get("market_cap_n_members") or 0
    without, coverage = brief.get("market_cap_n_without") or 0, brief.get("market_cap_coverage_pct")
    if n == 0:
        return "no stock was priced this session"
    if m == 0:
        return f"none of the {_stocks(n)} has a market cap and a previous close ({without:,} have no market cap at all)"
    if m == n:
        return f"all {_stocks(n)}"
    if without:
        return f"{m:,} of {_stocks(n)} (share of market cap unknown: {without:,} {'has' if without == 1 else 'have'} no market cap)"
    return f"{m:,} of {_stocks(n)} ({fmt_num(coverage, 0)}% of their market cap)"


def market_value_sentence(brief: dict) -> str:
    """The day's market value change, saying which stocks it covers (market_value_coverage)."""
    coverage = market_value_coverage(brief)
    if not (brief.get("market_cap_n_stocks") and brief.get("market_cap_n_members")):
        return f"Market value change: {'unknown, ' if brief.get('market_cap_n_stocks') else ''}{coverage}."
    change = f"{_usd_bn(brief.get('market_cap_change_usd'))} ({fmt_num(brief.get('market_cap_return_pct'), suffix='%', signed=True)})"
    return f"Market value change of {coverage}: {change}."


def _cohort_change(brief: dict, cohort: str) -> str:
    m, n = brief.get(f"{cohort}_market_cap_n_members") or 0, brief.get(f"{cohort}_market_cap_n_stocks") or 0
    return f"{_usd_bn(brief.get(f'{cohort}_market_cap_change_usd'))} ({m:,} of {_stocks(n)})"


def sigma_sentence(brief: dict) -> str:
    k, n, total = brief.get("n_k_sigma_moves") or 0, brief.get("n_with_sigma") or 0, brief.get("market_cap_n_stocks") or 0
    threshold = fmt_num(brief.get("k_sigma_threshold"), 0)
    if n == 0:
        return f"No stock has the 63 sessions of returns a {threshold}-sigma yardstick needs."
    short = total - n
    tail = f" ({short:,} with under 63 sessions of returns not counted)" if short > 0 else ""
    return f"{k:,} of {_stocks(n)} moved {threshold} sigma or more{tail}."


def _trade_below(n: int, of: int) -> str:
    if of == 1:
        return "it closed below its average" if n else "it closed above its average"
    return f"{n} of them {'closes' if n == 1 else 'close'} below their average"


def largest_names_sentence(brief: dict) -> str:
    members = brief.get("top_n_members") or []
    target, n_stocks = brief.get("top_n_target") or 0, brief.get("top_n_n_stocks") or 0
    stats = (f"mean {fmt_num(brief.get('top_n_mean_pct_to_sma_50'), suffix='%', signed=True)}, "
             f"median {fmt_num(brief.get('top_n_median_pct_to_sma_50'), suffix='%', signed=True)} to the 50-DMA "
             f"(the average's distance from the close); {_trade_below(brief.get('top_n_n_below_sma_50') or 0, len(members))}.")
    if not members:
        if not n_stocks:
            return "No stock has a 50-day average for this date, so no ranking of the largest names."
        return (f"No market caps for this date among the {_stocks(n_stocks)} with a 50-day average, "
                "so no ranking of the largest names.")
    if len(members) < target:
        with_cap = brief.get("top_n_n_with_market_cap") or len(members)
        return (f"Not the {target} largest names: only {with_cap:,} of the {_stocks(n_stocks)} with a 50-day average "
                f"{'has' if with_cap == 1 else 'have'} a market cap ({', '.join(members)}): {stats}")
    return f"The {len(members)} largest ({', '.join(members)}): {stats}"


def valuation_sentence(brief: dict) -> str:
    n = brief.get("valuation_n_stocks") or 0
    if n == 0:
        return "No valuation: no stock has a market cap and the multiples' inputs for this date."

    def aggregate(kind: str) -> str:
        value, count = brief.get(f"aggregate_{kind}_pe"), brief.get(f"aggregate_{kind}_pe_n") or 0
        if value is None:
            return f"{kind} P/E n/a ({'the one stock with a market cap has none' if n == 1 else f'none of the {n:,} stocks has one'})"
        rank = brief.get(f"aggregate_{kind}_pe_pct_rank")
        history = (f"percentile {fmt_num(rank, 0)} of its own history" if rank is not None
                   else "too short a history for a percentile")
        return f"{kind} P/E {fmt_num(value, 1)} over {count:,} of {_stocks(n)} ({history})"

    def median(cohort: str, label: str) -> str:
        count = brief.get(f"{cohort}_price_to_sales_n") or 0
        return f"{label} {fmt_num(brief.get(f'{cohort}_median_price_to_sales'), 1)} ({_stocks(count)})"

    return (f"Aggregate {aggregate('forward')}; {aggregate('trailing')}. Median price-to-sales: "
            f"{median('ai', 'AI')}, {median('non_ai', 'non-AI')}, ratio {fmt_num(brief.get('ai_to_non_ai_price_to_sales'), 2, 'x')}.")


def brief_markdown(brief: dict, extras: dict[str, list[str]] | None = None) -> str:
    """The brief as markdown. `extras`: lines to end a section with (`options`, `fear_greed`),
    the page's detail tables, kept in the section they belong to."""
    extras = extras or {}
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
        f"{market_value_sentence(brief)} AI {_cohort_change(brief, 'ai')}, non-AI {_cohort_change(brief, 'non_ai')}. "
        f"{sigma_sentence(brief)}",
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
    lines += [largest_names_sentence(brief), ""]
    lines += [
        "## Valuation",
        "",
        valuation_sentence(brief),
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
    lines += extras.get("options", [])
    lines += ["## Fear & greed", ""]
    if brief.get("fear_greed_score") is None:
        lines += [f"No score for this date ({brief.get('fear_greed_components_used') or 0} of 7 components available).", ""]
    else:
        lines += [f"{fmt_num(brief['fear_greed_score'], 0)} / 100, {brief.get('fear_greed_label')} "
                  f"({brief.get('fear_greed_components_used')} of 7 components).", ""]
    lines += extras.get("fear_greed", [])
    return "\n".join(lines)
