"""What a run tells its user: what it loaded, what it refused, what it built, and the headline."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd


def headline(con: duckdb.DuckDBPyConnection, run_date: dt.date, limit_movers: int = 3) -> pd.DataFrame:
    """Index proxies' technicals on the run date, then the day's biggest stock movers."""
    return con.execute(
        """
        with day as (
            select t.*, u.role, u.cohort
            from marts.technicals_daily as t
            inner join staging.stg_universe as u using (ticker)
            where t.trade_date = $run_date
        ),
        proxies as (
            select *, 0 as grp, 0 as rk from day where role in ('index_proxy', 'sector_proxy')
        ),
        movers as (
            select *, 1 as grp, row_number() over (order by abs(return_1d_pct) desc nulls last) as rk
            from day where role = 'stock'
        )
        select ticker, trade_date, close, return_1d_pct, sma_50, pct_to_sma_50, sma_100, pct_to_sma_100,
               sma_200, pct_to_sma_200
        from (select * from proxies union all select * from movers where rk <= $n)
        order by grp, rk, ticker
        """,
        {"run_date": run_date, "n": limit_movers},
    ).fetchdf()


def _fmt(v, digits=2, suffix=""):
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "n/a"
    return f"{v:,.{digits}f}{suffix}"


def _loads_table(loads: list[dict]) -> list[str]:
    lines = [
        "| table | window | delivered | inserted | updated | unchanged | quarantined |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for ld in loads:
        lines.append(
            f"| {ld['table']} | {ld['window']} | {ld['delivered']:,} | {ld['inserted']:,} | "
            f"{ld['updated']:,} | {ld['unchanged']:,} | {ld['rejected']:,} |"
        )
    return lines + [""]


def _sections(summary: dict) -> list[str]:
    """Quarantined rows, notes, data checks and builds: the parts every run reports alike."""
    lines: list[str] = []
    if summary.get("rejects"):
        lines += ["## Quarantined rows (first few)", ""] + [f"- {r}" for r in summary["rejects"]] + [""]
    if summary.get("failed"):
        lines += ["## Failed fetches", "", "| dataset | ticker | kind | attempts | reason |", "|---|---|---|---:|---|"]
        for f in summary["failed"]:
            kind = "retryable" if f["retryable"] else "unknown or delisted"
            reason = (f["reason"] or "").replace("|", "\\|")
            lines.append(f"| {f['dataset']} | {f['ticker']} | {kind} | {'' if f['attempts'] is None else f['attempts']} | {reason} |")
        lines.append("")
    if summary.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    checks = summary.get("checks")
    if checks:
        lines += [
            "## Data checks",
            "",
            f"{checks['checks_run']:,} run, {checks['passed']:,} passed, {checks['errors']} error check(s) failing, "
            f"{checks['warnings']} warning(s).",
            "",
        ]
        if checks["failing"]:
            lines += ["| severity | table | check | failing rows | e.g. |", "|---|---|---|---:|---|"]
            for f in checks["failing"]:
                sample = "; ".join(", ".join(f"{k}={v}" for k, v in key.items()) for key in f["sample"][:2])
                lines.append(f"| {f['severity']} | {f['table']} | {f['check']} | {f['rows']:,} | {sample} |")
            lines.append("")
        if summary.get("data_docs"):
            lines += [f"Great Expectations Data Docs: `{summary['data_docs']}`", ""]
    if summary.get("builds"):
        lines += ["## Built", "", "| table | mode | rows | rows written |", "|---|---|---:|---:|"]
        for b in summary["builds"]:
            lines.append(f"| {b['relation']} | {b['mode']} | {b['rows']:,} | {b['rows_written']:,} |")
        lines.append("")
    return lines


def _header(title: str, summary: dict) -> list[str]:
    lines = [
        f"# {title}",
        "",
        f"Source **{summary['source']}**{' (synthetic data)' if summary['source'] == 'sample' else ''}; "
        f"run `{summary['run_id']}`; status **{summary['status']}**.",
        "",
    ]
    if summary.get("message"):
        lines += [summary["message"], ""]
    return lines


def loads_by_table(loads: list[dict]) -> list[dict]:
    """A backfill's chunk loads summed per table, the window spanning its chunks."""
    out: dict[str, dict] = {}
    for ld in loads:
        lo, hi = ld["window"].split("..")
        row = out.setdefault(ld["table"], {"table": ld["table"], "lo": lo, "hi": hi, "chunks": 0} | dict.fromkeys(
            ("delivered", "inserted", "updated", "unchanged", "rejected"), 0))
        row["lo"], row["hi"] = min(row["lo"], lo), max(row["hi"], hi)
        row["chunks"] += 1
        for k in ("delivered", "inserted", "updated", "unchanged", "rejected"):
            row[k] += ld[k]
    return [r | {"window": f"{r.pop('lo')}..{r.pop('hi')}"} for r in out.values()]


def backfill_markdown(summary: dict) -> str:
    p = summary["parameters"]
    lines = _header(f"Bellwether backfill {p['start']}..{p['end']}", summary)
    lines += [
        f"Chunks: {summary['chunks_loaded']} loaded, {summary['chunks_skipped']} skipped (loaded by an earlier "
        f"backfill from this source); chunk size {p['chunk']}; {len(p['tickers'])} ticker(s); datasets "
        f"{', '.join(p['datasets'])}.",
        "",
    ]
    if summary.get("loads"):
        lines += ["## Loaded", ""] + _loads_table(loads_by_table(summary["loads"]))
    return "\n".join(lines + _sections(summary))


def summary_markdown(summary: dict) -> str:
    lines = _header(f"Bellwether nightly run for {summary['run_date']}", summary)
    if summary.get("loads"):
        lines += ["## Loaded", ""] + _loads_table(summary["loads"])
    lines += _sections(summary)
    if summary.get("headline"):
        lines += [
            f"## Technicals on {summary['run_date']}",
            "",
            "| ticker | close | 1d return | 50-DMA | vs close | 100-DMA | vs close | 200-DMA | vs close |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for h in summary["headline"]:
            lines.append(
                f"| {h['ticker']} | {_fmt(h['close'])} | {_fmt(h['return_1d_pct'], suffix='%')} | "
                f"{_fmt(h['sma_50'])} | {_fmt(h['pct_to_sma_50'], suffix='%')} | {_fmt(h['sma_100'])} | "
                f"{_fmt(h['pct_to_sma_100'], suffix='%')} | {_fmt(h['sma_200'])} | {_fmt(h['pct_to_sma_200'], suffix='%')} |"
            )
        lines.append("")
    return "\n".join(lines)
