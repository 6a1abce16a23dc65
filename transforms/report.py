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

from transforms.brief import _usd_bn, brief_markdown, fmt_num, market_value_coverage, md_table, read_brief

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
        select trade_date, cohort, median_forward_pe, aggregate_forward_pe, n_forward_pe, median_price_to_sales,
            n_price_to_sales
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
    fear_greed = ["### By component", ""]
    fear_greed += md_table(components, ["component", "score (0 fear - 100 greed)"], lambda r: r, f"No fear & greed reading for {day}.")
    fear_greed += [f"As of {day}; source: marts.fear_greed_daily (a component without its inputs shows n/a).", ""]
    options = []
    if chains:  # with no chain at all, the section's one sentence says so
        options = ["### The most active chains", ""]
        options += md_table(chains, ["ticker", "contracts traded", "put/call volume", "short-dated call share", "near-the-money IV"],
                            lambda r: r, "")
        options += [f"As of {day}; source: marts.options_sentiment (the chains snapshotted that night).", ""]
    return brief_markdown(data["brief"], {"options": options, "fear_greed": fear_greed})


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


def _chart_cohorts(valuation: pd.DataFrame, column: str, count: str, title: str, unit: str) -> str | None:
    """One multiple's median, AI against non-AI over time, each line's legend saying how many
    stocks the latest median is of; None when no day has it (a chart of nothing would show
    empty axes with made-up ticks)."""
    if valuation.empty or column not in valuation or valuation[column].isna().all():
        return None
    fig, ax = _figure()
    for cohort, color in (("ai", "#d62728"), ("non_ai", "#1f77b4")):
        part = valuation[(valuation["cohort"] == cohort) & valuation[column].notna()]
        if not part.empty:
            n = int(part[count].iloc[-1]) if count in part and pd.notna(part[count].iloc[-1]) else 0
            label = f"{cohort.replace('_', '-').upper()}: {'1 stock' if n == 1 else f'{n:,} stocks'} on {part['trade_date'].iloc[-1]:%Y-%m-%d}"
            ax.plot(part["trade_date"], part[column], color=color, marker="o" if len(part) < 3 else None, label=label)
    days = pd.to_datetime(valuation.loc[valuation[column].notna(), "trade_date"])
    if days.max() - days.min() < pd.Timedelta(days=30):
        # A few nights of snapshots (forward P/E exists only from the first one): matplotlib
        # would spread one day over four years of axis. Show a month around them instead.
        ax.set_xlim(days.min() - pd.Timedelta(days=15), days.max() + pd.Timedelta(days=15))
        import matplotlib.dates as mdates

        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    return _finish(fig, ax, title, "trade date", unit)


def chart_forward_pe(valuation: pd.DataFrame) -> str | None:
    return _chart_cohorts(valuation, "median_forward_pe", "n_forward_pe", "Median forward P/E, AI against non-AI",
                          "price / forward EPS (x)")


def chart_price_to_sales(valuation: pd.DataFrame) -> str | None:
    return _chart_cohorts(valuation, "median_price_to_sales", "n_price_to_sales",
                          "Median price-to-sales (TTM), AI against non-AI", "market cap / TTM revenue (x)")


def chart_top_n(top_n: pd.DataFrame, target: int | None = None) -> str | None:
    if top_n.empty:
        return None
    fig, ax = _figure(height=0.3 * max(len(top_n), 3) + 1)
    colors = ["#d62728" if v > 0 else "#2ca02c" for v in top_n["pct_to_sma_50"]]
    ax.barh(top_n["ticker"], top_n["pct_to_sma_50"], color=colors, height=0.6)
    ax.set_ylim(-0.5, max(len(top_n), 3) - 0.5)  # one or two names keep a bar's thickness
    ax.axvline(0, color="black", linewidth=0.8)
    short = f" (only {len(top_n)} with a market cap, not {target})" if target and len(top_n) < target else ""
    ax.set_title(f"The largest names: the 50-day average's distance from the close{short}")
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
    # One legend for both axes, above the plot: inside it, it sat on the bars and the margin line
    # wherever they happened to be high.
    handles = ax.get_legend_handles_labels()[0] + margin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False)
    ax.set_title(f"{FUNDAMENTALS_TICKER}: revenue by quarter and gross margin, as reported by then", pad=20)
    return _svg(fig)


CSS = """
body { font-family: system-ui, sans-serif; max-width: 92rem; margin: 1.2rem auto; padding: 0 1.2rem; color: #222; }
h1 { font-size: 1.45rem; margin-bottom: 0.3rem; } h2 { font-size: 1.1rem; border-bottom: 1px solid #ccc; margin: 1.2rem 0 0.5rem; }
h3 { font-size: 0.95rem; margin: 0.2rem 0; }
.asof { color: #555; font-size: 0.85rem; } .missing { color: #a33; font-style: italic; }
.cards { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 0.7rem; margin: 0.8rem 0 0.4rem; }
.card { border: 1px solid #ccd; border-radius: 6px; padding: 0.55rem 0.75rem; background: #f8f9fc; }
.card .label { font-size: 0.78rem; color: #555; text-transform: uppercase; letter-spacing: 0.03em; }
.card .value { font-size: 1.45rem; font-weight: 600; margin: 0.15rem 0; font-variant-numeric: tabular-nums; }
.card .value.down { color: #b22; } .card .value.up { color: #1a7f37; } .card .value.small { font-size: 1.05rem; }
.card .note { font-size: 0.8rem; color: #444; }
.sections { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); column-gap: 2rem; }
.sections section { min-width: 0; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1rem 2rem; }
figure { margin: 0; min-width: 0; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { border: 1px solid #ddd; padding: 0.15rem 0.45rem; }
td { text-align: right; font-variant-numeric: tabular-nums; } td:first-child { text-align: left; }
svg { max-width: 100%; height: auto; }
@media (max-width: 70rem) { .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .sections, .charts { grid-template-columns: minmax(0, 1fr); } }
@media print { body { max-width: none; margin: 0; } h2 { break-after: avoid; } figure, .card { break-inside: avoid; } }
"""


def _card(label: str, value: str, note: str, trend: float | None = None, small: bool = False) -> str:
    tone = "" if trend is None or trend == 0 else " down" if trend < 0 else " up"
    return (f'<div class="card"><div class="label">{html.escape(label)}</div>'
            f'<div class="value{tone}{" small" if small else ""}">{html.escape(value)}</div>'
            f'<div class="note">{html.escape(note)}</div></div>')


def summary_cards(brief: dict) -> str:
    """The five figures an analyst reads first, each with what it covers."""
    moves = brief.get("index_moves") or []
    index = (" · ".join(f"{m['ticker']} {fmt_num(m['return_1d_pct'], 1, '%', signed=True)}" for m in moves[:3]) if moves else "n/a")
    first = moves[0]["return_1d_pct"] if moves else None
    cards = [_card("Index moves, 1 day", index, "close to close" if moves else "no index proxy prices for this date",
                   first, small=True)]

    change = brief.get("market_cap_change_usd")
    value, note = _usd_bn(change), market_value_coverage(brief)
    cards.append(_card("Market value change", value, note, change))

    ratio = brief.get("putcall_total_ratio")
    rank = brief.get("putcall_total_pct_rank_504")
    cards.append(_card(
        "Put/call, CBOE total", fmt_num(ratio),
        "no CBOE reading for this date" if ratio is None else
        f"percentile {fmt_num(rank, 0)} of 2 years" + (f", {brief['putcall_total_regime']}" if brief.get("putcall_total_regime") else ""),
    ))

    members, target = brief.get("top_n_members") or [], brief.get("top_n_target") or 0
    mean = brief.get("top_n_mean_pct_to_sma_50")
    if not members:
        top_note = "no market caps: no ranking of the largest names"
    elif len(members) < target:
        with_cap = brief.get("top_n_n_with_market_cap") or len(members)
        top_note = f"only {with_cap} of {brief.get('top_n_n_stocks') or 0} stocks {'has' if with_cap == 1 else 'have'} a market cap"
    else:
        top_note = f"mean of the {len(members)} largest; {brief.get('top_n_n_below_sma_50') or 0} close below it"
    cards.append(_card("Largest names vs 50-DMA", fmt_num(mean, 2, "%", signed=True),
                       top_note + " (the average's distance from the close)" if members else top_note))

    score = brief.get("fear_greed_score")
    cards.append(_card(
        "Fear & greed", "n/a" if score is None else f"{score:.0f} / 100",
        f"{brief.get('fear_greed_components_used') or 0} of 7 components available" if score is None else
        f"{brief.get('fear_greed_label')}, {brief.get('fear_greed_components_used')} of 7 components",
    ))
    return f'<div class="cards" data-summary="cards">{"".join(cards)}</div>'


def _sections(markdown_text: str) -> tuple[str, str]:
    """The page's text as HTML: (the lead paragraphs, the `##` sections laid out two abreast)."""
    parts = ("\n" + markdown_text).split("\n## ")
    lead = _MARKDOWN.render(parts[0].strip())
    sections = "".join(f"<section>{_MARKDOWN.render('## ' + part)}</section>" for part in parts[1:])
    return lead, f'<div class="sections">{sections}</div>'


def _points(frame: pd.DataFrame, columns: list[str], where: pd.Series | None = None) -> int:
    """How many values a chart draws (a figure records it, so an empty chart cannot hide)."""
    if frame.empty or not set(columns) <= set(frame.columns):
        return 0
    part = frame if where is None else frame[where]
    return int(part[columns].notna().sum().sum())


def render(data: dict) -> str:
    brief, day = data["brief"], data["day"]
    synthetic = brief.get("sources") == ["sample"]
    title = f"Bellwether morning brief, {day}" + (" (synthetic sample data)" if synthetic else "")
    text = report_markdown(data).split("\n", 1)[1]  # the page has its own <h1>
    closes, valuation = data["closes"], data["valuation"]
    putcall = data["putcall"]
    charts = [
        *[(f"{t} against its moving averages", chart_closes(closes, t), f"marts.technicals_daily, the 12 months to {day}",
           _points(closes, ["close"], closes["ticker"] == t) if "ticker" in closes else 0,
           f"no prices for {t} up to {day}") for t in FOCUS],
        ("Put/call ratio", chart_putcall(putcall), f"marts.putcall_sentiment, the 2 years to {day}",
         _points(putcall, ["ratio"]), f"no CBOE put/call ratios in the 2 years to {day}"),
        ("Forward P/E, AI against non-AI", chart_forward_pe(valuation), f"marts.valuation_cohorts, up to {day}",
         _points(valuation, ["median_forward_pe"]),
         f"no forward P/E up to {day}: forward EPS comes only from the nightly valuation snapshots, and none "
         "holds one for these dates"),
        ("Price-to-sales, AI against non-AI", chart_price_to_sales(valuation), f"marts.valuation_cohorts, up to {day}",
         _points(valuation, ["median_price_to_sales"]), f"no price-to-sales up to {day}: no stock has both a market cap and "
         "four quarters of revenue"),
        ("The largest names against their 50-day average", chart_top_n(data["top_n"], brief.get("top_n_target")), f"marts.cohort_sma_distance on {day}",
         _points(data["top_n"], ["pct_to_sma_50"]), f"no market caps on {day}, so no largest names"),
        (f"{FUNDAMENTALS_TICKER} fundamentals", chart_fundamentals(data["fundamentals"]),
         f"marts.fundamentals_quarterly, quarters reported by {day}", _points(data["fundamentals"], ["revenue"]),
         f"no {FUNDAMENTALS_TICKER} quarters reported by {day}"),
    ]
    figures = []
    for name, svg, asof, points, why in charts:
        body = svg if svg and points else f'<p class="missing">No data for this chart: {html.escape(why)}.</p>'
        figures.append(f'<figure data-chart="{html.escape(name)}" data-points="{points if svg else 0}">'
                       f"<h3>{html.escape(name)}</h3>{body}"
                       f'<figcaption class="asof">As of {day}; source: {html.escape(asof)}.</figcaption></figure>')
    lead, sections = _sections(text)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
        f"<h1>{html.escape(title)}</h1>{lead}{summary_cards(brief)}{sections}"
        f'<h2>Charts</h2><div class="charts">{"".join(figures)}</div></body></html>'
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
