"""The morning brief as one self-contained HTML page with charts (issue 7, first part).

`write_report(con, day, folder)` reads the marts as they stood for `day` (every series ends at
`day`: nothing from later), draws the charts with matplotlib as inline SVG (no scripts, no
network: the file opens offline and prints), and writes `brief-<day>.html`. Each section states
its as-of date and source, and a section without data says so instead of vanishing.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from pathlib import Path

import duckdb
import pandas as pd
from markdown_it import MarkdownIt

from transforms.brief import brief_markdown, fmt_num, md_table, read_brief

FOCUS = ("SPY", "QQQ", "XLK", "NVDA")
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML in the text is escaped
FUNDAMENTALS_TICKER = "NVDA"


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pd.DataFrame:
    try:
        return con.execute(sql, params).fetchdf()
    except duckdb.CatalogException:  # a mart not built yet: the section says it has no data
        return pd.DataFrame()


def gather(con: duckdb.DuckDBPyConnection, day: dt.date | None = None) -> dict:
    """Everything the page shows, as of `day` (default the latest brief)."""
    brief = read_brief(con, day)
    day = pd.Timestamp(brief["trade_date"]).date()
    out = {"brief": brief, "day": day}
    out["closes"] = _frame(con, """
        select ticker, trade_date, close, sma_50, sma_100, sma_200 from marts.technicals_daily
        where ticker in (select unnest(?::varchar[])) and trade_date <= ? and trade_date > ? - interval 365 day
        order by ticker, trade_date""", [list(FOCUS), day, day])
    out["putcall"] = _frame(con, """
        select trade_date, scope, ratio, ratio_ma_5, pct_rank_504 from marts.putcall_sentiment
        where scope in ('total', 'equity') and trade_date <= ? and trade_date > ? - interval 730 day
        order by scope, trade_date""", [day, day])
    out["valuation"] = _frame(con, """
        select trade_date, cohort, median_forward_pe, aggregate_forward_pe, median_price_to_sales
        from marts.valuation_cohorts where cohort in ('ai', 'non_ai') and trade_date <= ? order by cohort, trade_date""", [day])
    out["top_n"] = _frame(con, """
        select t.ticker, t.pct_to_sma_50 from marts.cohort_sma_distance c, unnest(c.members) as m(ticker)
        join marts.technicals_daily t on t.ticker = m.ticker and t.trade_date = c.trade_date
        where c.cohort = 'top_n' and c.trade_date = ? order by t.pct_to_sma_50""", [day])
    out["fundamentals"] = _frame(con, """
        select fiscal_period, period_end, report_date, revenue, gross_margin_pct, gross_margin_8q_avg_pct
        from marts.fundamentals_quarterly where ticker = ? and report_date <= ? order by period_end""", [FUNDAMENTALS_TICKER, day])
    out["fear_greed"] = _frame(con, "select * from marts.fear_greed_daily where trade_date = ?", [day])
    out["most_active"] = _frame(con, """
        select ticker, call_volume + put_volume as volume, put_call_volume_ratio, short_term_call_share_pct, atm_iv_nearest_pct
        from marts.options_sentiment where snapshot_date = ? order by volume desc nulls last limit 8""", [day])
    return out


COMPONENTS = (
    ("momentum", "Market momentum (S&P 500 proxy vs its 125-session average)"),
    ("price_strength", "Stock price strength (52-week highs minus lows)"),
    ("breadth", "Stock price breadth (up volume share, 21 sessions)"),
    ("putcall", "Put/call options (5-day average)"),
    ("volatility", "Market volatility (VIX vs its 50-session average)"),
    ("safe_haven", "Safe-haven demand (stocks minus Treasuries, 20 sessions)"),
    ("junk_bond", "Junk-bond demand (high yield minus investment grade, 20 sessions)"),
)


def report_markdown(data: dict) -> str:
    """The page's text and tables as markdown: the body of the HTML page, and the run's
    `morning-brief` artifact."""
    day, fg, active = data["day"], data["fear_greed"], data["most_active"]
    components = [] if fg.empty else [[label, fmt_num(_value(fg.iloc[0].get(f"{key}_score")), 0)] for key, label in COMPONENTS]
    chains = [] if active.empty else [
        [r.ticker, fmt_num(_value(r.volume), 0), fmt_num(_value(r.put_call_volume_ratio)), fmt_num(_value(r.short_term_call_share_pct), 0, "%"),
         fmt_num(_value(r.atm_iv_nearest_pct), 1, "%")] for r in active.itertuples()
    ]
    lines = [brief_markdown(data["brief"]), "## Fear & greed by component", ""]
    lines += md_table(components, ["component", "score (0 fear - 100 greed)"], lambda r: r, f"No fear & greed reading for {day}.")
    lines += [f"As of {day}; source: marts.fear_greed_daily (a component without its inputs shows n/a).", "",
              "## Options: the most active chains", ""]
    lines += md_table(chains, ["ticker", "contracts traded", "put/call volume", "short-dated call share", "near-the-money IV"],
                    lambda r: r, f"No option chains were snapshotted for {day}.")
    lines += [f"As of {day}; source: marts.options_sentiment (the chains snapshotted that night).", ""]
    return "\n".join(lines)


def _value(v):
    """A pandas cell as a number or None (NaN and NA read as missing)."""
    return None if pd.isna(v) else v


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(width=7.5, height=2.6, ncols=1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 8, "axes.spines.top": False, "axes.spines.right": False})
    return plt.subplots(1, ncols, figsize=(width, height))


def _finish(fig, ax, title: str, xlabel: str, ylabel: str) -> str:
    """Title, axis labels with units, legend: every chart has them."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", frameon=False)
    return _svg(fig)


def chart_closes(closes: pd.DataFrame, ticker: str) -> str | None:
    frame = closes[closes["ticker"] == ticker]
    if frame.empty:
        return None
    fig, ax = _figure()
    ax.plot(frame["trade_date"], frame["close"], color="black", linewidth=1.2, label="close")
    for col, color in (("sma_50", "#1f77b4"), ("sma_100", "#ff7f0e"), ("sma_200", "#d62728")):
        ax.plot(frame["trade_date"], frame[col], color=color, linewidth=0.9, label=f"{col.split('_')[1]}-day average")
    return _finish(fig, ax, f"{ticker}: close and moving averages, last 12 months", "trade date", "price (USD)")


def chart_putcall(putcall: pd.DataFrame) -> str | None:
    if putcall.empty:
        return None
    scope = "total" if (putcall["scope"] == "total").any() else "equity"
    frame = putcall[putcall["scope"] == scope].dropna(subset=["ratio"])
    if frame.empty:
        return None
    low, high = frame["ratio"].quantile([0.1, 0.9])
    fig, ax = _figure()
    ax.axhspan(low, high, color="#dddddd", label=f"10th-90th percentile of the period ({low:.2f}-{high:.2f})")
    ax.plot(frame["trade_date"], frame["ratio"], color="#999999", linewidth=0.7, label="daily ratio")
    ax.plot(frame["trade_date"], frame["ratio_ma_5"], color="black", linewidth=1.2, label="5-day average")
    return _finish(fig, ax, f"CBOE {scope} put/call ratio, last two years", "trade date", "puts / calls (volume)")


def chart_valuation(valuation: pd.DataFrame) -> str | None:
    if valuation.empty or valuation[["median_forward_pe", "median_price_to_sales"]].isna().all().all():
        return None
    fig, (left, right) = _figure(ncols=2)
    for cohort, color in (("ai", "#d62728"), ("non_ai", "#1f77b4")):
        part = valuation[valuation["cohort"] == cohort]
        left.plot(part["trade_date"], part["median_forward_pe"], color=color, label=cohort.replace("_", "-").upper())
        right.plot(part["trade_date"], part["median_price_to_sales"], color=color, label=cohort.replace("_", "-").upper())
    left.set_title("median forward P/E")
    right.set_title("median price-to-sales (TTM)")
    for ax, unit in ((left, "price / forward EPS (x)"), (right, "market cap / TTM revenue (x)")):
        ax.set_xlabel("trade date")
        ax.set_ylabel(unit)
        ax.legend(frameon=False)
        ax.tick_params(axis="x", labelrotation=30)
    return _svg(fig)


def chart_top_n(top_n: pd.DataFrame) -> str | None:
    if top_n.empty:
        return None
    fig, ax = _figure(height=0.3 * len(top_n) + 1)
    colors = ["#d62728" if v > 0 else "#2ca02c" for v in top_n["pct_to_sma_50"]]
    ax.barh(top_n["ticker"], top_n["pct_to_sma_50"], color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_title("The largest names: the 50-day average's distance from the close")
    ax.set_xlabel("50-day average vs close (%; positive: the close is below its average)")
    ax.set_ylabel("ticker")
    return _svg(fig)


def chart_fundamentals(fundamentals: pd.DataFrame) -> str | None:
    if fundamentals.empty:
        return None
    fig, ax = _figure()
    labels = fundamentals["fiscal_period"].fillna(fundamentals["period_end"].astype(str))
    ax.bar(labels, fundamentals["revenue"] / 1e9, color="#1f77b4", label="revenue")
    ax.set_ylabel("revenue (USD bn)")
    ax.set_xlabel("fiscal quarter")
    ax.tick_params(axis="x", labelrotation=60)
    margin = ax.twinx()
    margin.plot(labels, fundamentals["gross_margin_pct"], color="#d62728", marker="o", label="gross margin")
    margin.plot(labels, fundamentals["gross_margin_8q_avg_pct"], color="#d62728", linestyle="--", label="8-quarter average")
    margin.set_ylabel("gross margin (%)")
    margin.legend(loc="upper left", frameon=False)
    ax.set_title(f"{FUNDAMENTALS_TICKER}: revenue by quarter and gross margin, as reported by then")
    return _svg(fig)


CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #ccc; margin-top: 2rem; }
.asof { color: #555; font-size: 0.85rem; } .missing { color: #a33; font-style: italic; }
table { border-collapse: collapse; font-size: 0.9rem; } td, th { border: 1px solid #ddd; padding: 0.2rem 0.5rem; }
td { text-align: right; } td:first-child { text-align: left; } svg { max-width: 100%; height: auto; }
@media print { body { max-width: none; margin: 0; } h2 { break-after: avoid; } figure { break-inside: avoid; } }
"""


def render(data: dict) -> str:
    brief, day = data["brief"], data["day"]
    synthetic = brief.get("sources") == ["sample"]
    title = f"Bellwether morning brief, {day}" + (" (synthetic sample data)" if synthetic else "")
    text = report_markdown(data).split("\n", 1)[1]  # the page has its own <h1>
    charts = [
        *[(f"{t} against its moving averages", chart_closes(data["closes"], t),
           f"marts.technicals_daily, the 12 months to {day}") for t in FOCUS],
        ("Put/call ratio", chart_putcall(data["putcall"]), f"marts.putcall_sentiment, the 2 years to {day}"),
        ("AI against non-AI valuation", chart_valuation(data["valuation"]), f"marts.valuation_cohorts, up to {day}"),
        ("The largest names against their 50-day average", chart_top_n(data["top_n"]), f"marts.cohort_sma_distance on {day}"),
        (f"{FUNDAMENTALS_TICKER} fundamentals", chart_fundamentals(data["fundamentals"]),
         f"marts.fundamentals_quarterly, quarters reported by {day}"),
    ]
    figures = []
    for name, svg, asof in charts:
        body = svg if svg else f'<p class="missing">No data for this chart as of {day}.</p>'
        figures.append(f'<figure data-chart="{html.escape(name)}"><h3>{html.escape(name)}</h3>{body}'
                       f'<figcaption class="asof">As of {day}; source: {html.escape(asof)}.</figcaption></figure>')
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"{_MARKDOWN.render(text)}<h2>Charts</h2>{''.join(figures)}</body></html>"
    )


def report_folder(artifacts: str | Path) -> Path:
    """Where the nightly flow writes the pages: `reports/` in the artifacts folder
    (Settings.artifacts_folder: beside a local warehouse by default)."""
    return Path(artifacts) / "reports"


def write_report(con: duckdb.DuckDBPyConnection, day: dt.date | None, folder: Path) -> tuple[Path, str]:
    """Write the page; (its path, its markdown text)."""
    data = gather(con, day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"brief-{data['day']}.html"
    path.write_text(render(data), encoding="utf-8")
    return path, report_markdown(data)
