"""The `bellwether` command line.

Exit codes: 0 success; 1 the run or command failed (the message says why); 2 bad usage;
3 the warehouse is busy (another writer) or missing; 4 the run finished partial: it quarantined
rows or some tickers' fetches failed (the message names every one).
Prefect and Great Expectations are imported only by the commands that need them, so `--help`
and `query` start fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

import flows  # noqa: F401  (sets Prefect's local-mode defaults before Prefect is imported)
from flows.settings import Settings
from flows.settings import get_settings as _get_settings

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_PARTIAL = 1, 2, 3, 4

app = typer.Typer(
    name="bellwether",
    help=(
        "Bellwether: a nightly warehouse of market valuation and sentiment.\n\n"
        "Start with `bellwether run` (the nightly flow on the bundled synthetic market), then "
        "`bellwether query \"select * from marts.technicals_daily where ticker = 'SPY' order by trade_date desc limit 5\"`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Off a terminal (cron, CI, a pipe) Rich would wrap tables at 80 columns; logs read better wide.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class SourceName(str, Enum):
    sample = "sample"
    files = "files"
    live = "live"


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class ReportFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


def _parse_date(value: Optional[str], what: str) -> Optional[dt.date]:
    if value is None:
        return None
    from sources.calendar import parse_date

    try:
        return parse_date(value, what)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def get_settings(**overrides) -> Settings:
    """Settings from flags and BELLWETHER_* variables; a bad value is a usage error, not a traceback."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from sources.contract import ContractError

    try:
        settings = _get_settings(**overrides)
        settings.live_config()
        return settings
    except SettingsError as exc:  # a value that is not even parseable, e.g. bad JSON
        field = str(exc).split('"')[1] if '"' in str(exc) else "?"
        _fail(f"bad setting BELLWETHER_{field.upper()}: {exc.__cause__ or exc} (dicts are JSON)", EXIT_USAGE)
    except (ValidationError, ContractError) as exc:
        text = str(exc) if isinstance(exc, ContractError) else "; ".join(
            f"BELLWETHER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"bad setting: {text}", EXIT_USAGE)


WarehouseOpt = Annotated[
    Optional[str],
    typer.Option("--warehouse", "-w", help="ducklake:sqlite:PATH, ducklake:postgres:CONNINFO or a DuckDB file [env BELLWETHER_WAREHOUSE; default ducklake:sqlite:warehouse/bellwether.sqlite]"),
]
AsOfOpt = Annotated[
    Optional[str],
    typer.Option("--as-of", help="read the warehouse as a run published it (its run id), as it stood at a time (ISO 8601, UTC unless an offset is given, e.g. 2025-01-28T08:00-05:00), or at a snapshot number"),
]
WaitOpt = Annotated[
    Optional[float],
    typer.Option("--wait", min=0, help="seconds to wait for another writer before giving up [env BELLWETHER_LOCK_WAIT_S; default 60]"),
]
SourceOpt = Annotated[Optional[SourceName], typer.Option(help="sample (synthetic), files (a folder, with --path) or live (Yahoo + CBOE)")]
PathOpt = Annotated[Optional[str], typer.Option(help="folder for --source files (subfolders prices/, putcall/, options/, fundamentals/, valuation/)")]
UniverseOpt = Annotated[Optional[str], typer.Option(help="the universe: default (24 names), sp500 (the S&P 500 constituents and the index proxies) or a CSV file [default: default]")]


class RunnerName(str, Enum):
    threads = "threads"
    dask = "dask"


RunnerOpt = Annotated[Optional[RunnerName], typer.Option("--runner", help="where fetches fan out: threads (default) or dask [env BELLWETHER_RUNNER]")]
DaskAddressOpt = Annotated[Optional[str], typer.Option("--dask-address", help="an existing Dask scheduler, tcp://host:8786 [default: a LocalCluster]")]
DaskWorkersOpt = Annotated[Optional[int], typer.Option("--dask-workers", min=1, help="workers of the Dask LocalCluster [default 2]")]


def _with_runner(flow_obj, settings: Settings):
    """The flow with the task runner the settings name (flags or BELLWETHER_RUNNER)."""
    from flows.runners import task_runner

    try:
        runner = task_runner(settings.runner, address=settings.dask_address, workers=settings.dask_workers)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    return flow_obj.with_options(task_runner=runner)


def _check_source(settings: Settings) -> object:
    """The source object, or a usage error (before Prefect starts) on one that cannot work."""
    from sources.contract import ContractError
    from sources.registry import make_source

    try:
        return make_source(settings.source, settings.path, settings.universe, settings.live_config(), settings.sample_start)
    except ContractError as exc:
        _fail(str(exc), EXIT_USAGE)


def _check_warehouse(settings: Settings) -> None:
    """Fail fast, before Prefect starts, on a warehouse a run must not write (exit 3)."""
    from warehouse.connect import WarehouseMissing, preflight

    try:
        preflight(settings.warehouse)
    except WarehouseMissing as exc:
        _fail(str(exc), EXIT_BUSY)


@app.command()
def run(
    source: SourceOpt = None,
    path: PathOpt = None,
    date: Annotated[Optional[str], typer.Option("--date", help="session to load, YYYY-MM-DD [default: the last completed NYSE session]")] = None,
    lookback_days: Annotated[Optional[int], typer.Option(min=0, help="sessions before --date fetched again [default 5]")] = None,
    history_sessions: Annotated[Optional[int], typer.Option(min=0, help="history loaded for tickers new to the warehouse [default 756]")] = None,
    warehouse: WarehouseOpt = None,
    universe: UniverseOpt = None,
    wait: WaitOpt = None,
    runner: RunnerOpt = None,
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="fetch again only the tickers whose fetches for --date failed and may work now (per dataset; unknown or delisted ones are not retried), then load and build")] = False,
) -> None:
    """Run the nightly flow once: ingest, load into raw, build the marts, print a summary.

    A date the NYSE was closed is reported and nothing is loaded (exit 0). A night whose
    fetches failed for some tickers ends partial (exit 4) naming them; `--retry-failed` with
    the same --date fetches just the retryable ones again."""
    run_date = _parse_date(date, "--date")
    settings = get_settings(
        source=source.value if source else None, path=path, lookback_days=lookback_days,
        history_sessions=history_sessions, warehouse=warehouse, universe=universe, lock_wait_s=wait,
        runner=runner.value if runner else None, dask_address=dask_address, dask_workers=dask_workers,
    )
    from warehouse.connect import WarehouseBusy, WarehouseMissing

    _check_source(settings)  # fail fast, before Prefect starts, on a source that cannot work
    _check_warehouse(settings)
    from flows.nightly import nightly

    flow_obj = _with_runner(nightly, settings)
    console.print(f"Running the nightly flow on the [bold]{settings.source}[/] source into {settings.warehouse} ...", highlight=False)
    try:
        summary = flow_obj(
            run_date=run_date, source=settings.source, path=settings.path, lookback_days=settings.lookback_days,
            history_sessions=settings.history_sessions, warehouse=settings.warehouse, universe=settings.universe,
            lock_wait_s=settings.lock_wait_s, retry_failed=retry_failed,
        )
    except (WarehouseBusy, WarehouseMissing) as exc:
        _fail(str(exc), EXIT_BUSY)
    except Exception as exc:  # the flow has recorded the failure in audit.runs
        _fail(f"nightly run failed: {type(exc).__name__}: {exc}", EXIT_FAILED)
    _print_summary(summary)
    if summary["status"] == "partial":
        raise typer.Exit(EXIT_PARTIAL)


def _print_failed(failed: list[dict]) -> None:
    """Every failed fetch of a run, one row each (the run's message names them per dataset)."""
    if not failed:
        return
    t = Table(title="Failed fetches (every one; audit.fetch_outcomes keeps them)", title_justify="left")
    for c in ("dataset", "ticker", "kind", "attempts", "reason"):
        t.add_column(c, justify="right" if c == "attempts" else "left", no_wrap=c != "reason")
    for f in failed:
        kind = "retryable" if f["retryable"] else "unknown or delisted"
        t.add_row(f["dataset"], f["ticker"], kind, "" if f["attempts"] is None else str(f["attempts"]), (f["reason"] or "")[:120])
    console.print(t)


def _print_summary(summary: dict) -> None:
    console.rule(f"Bellwether nightly {summary['run_date']} ({summary['source']}): {summary['status']}")
    if summary.get("retry"):
        console.print(summary["retry"], highlight=False)
    if summary.get("message"):
        console.print(summary["message"], highlight=False)
    if summary.get("loads"):
        t = Table(title="Loaded into raw", title_justify="left")
        for c in ("table", "window", "delivered", "inserted", "updated", "unchanged", "quarantined"):
            t.add_column(c, justify="left" if c in ("table", "window") else "right")
        for ld in summary["loads"]:
            t.add_row(ld["table"], ld["window"], *(f"{ld[k]:,}" for k in ("delivered", "inserted", "updated", "unchanged", "rejected")))
        console.print(t)
    _print_failed(summary.get("failed", []))
    for line in summary.get("rejects", [])[:10]:
        console.print(f"[yellow]quarantined[/] {line}", highlight=False)
    for note in summary.get("notes", [])[:10]:
        console.print(f"[yellow]note[/] {note}", highlight=False)
    if summary.get("builds"):
        t = Table(title="Built", title_justify="left")
        for c in ("table", "mode", "rows", "rows written"):
            t.add_column(c, justify="left" if c in ("table", "mode") else "right")
        for b in summary["builds"]:
            t.add_row(b["relation"], b["mode"], f"{b['rows']:,}", f"{b['rows_written']:,}")
        console.print(t)
    if summary.get("headline"):
        t = Table(title=f"Technicals on {summary['run_date']} (pct_to_sma_N: the average's distance from the close)", title_justify="left")
        for c in ("ticker", "close", "1d %", "SMA 50", "to 50 %", "SMA 100", "to 100 %", "SMA 200", "to 200 %"):
            t.add_column(c, justify="left" if c == "ticker" else "right")
        f = lambda v, d=2: "" if v is None or v != v else f"{v:,.{d}f}"  # noqa: E731
        for h in summary["headline"]:
            t.add_row(h["ticker"], f(h["close"]), f(h["return_1d_pct"]), f(h["sma_50"]), f(h["pct_to_sma_50"]),
                      f(h["sma_100"]), f(h["pct_to_sma_100"]), f(h["sma_200"]), f(h["pct_to_sma_200"]))
        console.print(t)
    _print_check_summary(summary.get("checks"), summary.get("data_docs"))
    if summary.get("report"):
        console.print(f"Morning brief: {summary['report']}", highlight=False)
    if summary.get("warehouse"):
        console.print(
            f"Warehouse: {summary['warehouse']}  run id: {summary['run_id']}\n"
            "Query it: bellwether query \"select * from marts.technicals_daily order by trade_date desc limit 10\"",
            highlight=False,
        )


def _print_check_summary(result: dict | None, docs: str | None) -> None:
    if result:
        console.print(
            f"Checks: {result['checks_run']:,} run, {result['passed']:,} passed, "
            f"{result['errors']} error check(s) failing, {result['warnings']} warning(s)",
            highlight=False,
        )
        if result["failing"]:
            t = Table(title="Failing checks (bellwether checks --run ID for all)", title_justify="left")
            for c in ("severity", "table", "check", "rows", "batches", "e.g."):
                t.add_column(c, justify="right" if c in ("rows", "batches") else "left")
            for f in result["failing"]:
                sample = ", ".join(" ".join(str(v) for v in k.values()) for k in f["sample"][:2])
                t.add_row(f["severity"], f["table"], f["check"], f"{f['rows']:,}", str(f["batches"]), sample)
            console.print(t)
    if docs:
        console.print(f"Data Docs: {docs}", highlight=False)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="first day of the range, YYYY-MM-DD")],
    end: Annotated[Optional[str], typer.Option("--end", help="last day of the range [default: the last completed NYSE session]")] = None,
    source: SourceOpt = None,
    path: PathOpt = None,
    tickers: Annotated[Optional[str], typer.Option(help="comma-separated tickers [default: every ticker of the universe]")] = None,
    datasets: Annotated[Optional[str], typer.Option(help="comma-separated: prices_daily, putcall_daily, fundamentals_quarterly, option_quotes, valuation_snapshots [default: all the source can backfill]")] = None,
    chunk: Annotated[str, typer.Option(help="chunk size: week, month, quarter, year or a number of sessions")] = "month",
    force: Annotated[bool, typer.Option("--force", help="load again the chunks an earlier backfill from this source already loaded")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan (chunks, tickers, rows already loaded) and change nothing")] = False,
    build_marts: Annotated[bool, typer.Option("--build/--no-build", help="rebuild the marts after the loads (--no-build: the next build owes it)")] = True,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="how --dry-run prints its plan: table, csv or json")] = OutputFormat.table,
    warehouse: WarehouseOpt = None,
    universe: UniverseOpt = None,
    wait: WaitOpt = None,
    runner: RunnerOpt = None,
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
) -> None:
    """Load a range of past sessions in chunks, then rebuild the marts once for the range.

    Resumable: run the same command again after a crash or Ctrl-C and it skips the chunks
    already loaded. Option chains and valuation snapshots cannot be backfilled from Yahoo (it
    serves them only as of now); load saved ones with --source files."""
    start_date = _parse_date(start, "--start")
    end_date = _parse_date(end, "--end")
    settings = get_settings(
        source=source.value if source else None, path=path, warehouse=warehouse, universe=universe, lock_wait_s=wait,
        runner=runner.value if runner else None, dask_address=dask_address, dask_workers=dask_workers,
    )
    _check_source(settings)
    _check_warehouse(settings)
    from flows.backfill import BackfillError, dry_run_summary, prepare
    from warehouse.connect import WarehouseBusy, WarehouseMissing

    try:  # every parameter checked before Prefect starts
        job = prepare(settings, start=start_date, end=end_date, tickers=tickers, datasets=datasets, chunk=chunk, force=force,
                      now=dt.datetime.now(dt.UTC))
    except BackfillError as exc:
        _fail(str(exc), EXIT_USAGE)
    for note in job.notes:
        err.print(f"[yellow]note[/] {note}", highlight=False)
    if dry_run:
        try:
            summary = dry_run_summary(settings, job)
        except WarehouseBusy as exc:
            _fail(str(exc), EXIT_BUSY)
        _print_plan(summary, format)
        return
    from flows.backfill import backfill as backfill_flow

    p = job.parameters
    console.print(
        f"Backfilling {p['start']}..{p['end']} from the [bold]{settings.source}[/] source into {settings.warehouse} "
        f"({len(p['tickers'])} ticker(s), {', '.join(p['datasets'])}; chunks of a {p['chunk']}) ...", highlight=False,
    )
    try:
        summary = _with_runner(backfill_flow, settings)(
            start=start_date, end=job.end, source=settings.source, path=settings.path, tickers=list(p["tickers"]),
            datasets=list(p["datasets"]), chunk=str(chunk), force=force, warehouse=settings.warehouse,
            universe=settings.universe, lock_wait_s=settings.lock_wait_s, build=build_marts,
        )
    except (WarehouseBusy, WarehouseMissing) as exc:
        _fail(str(exc), EXIT_BUSY)
    except Exception as exc:  # recorded in audit.runs; the chunks loaded so far stay loaded
        _fail(f"backfill failed: {type(exc).__name__}: {exc}\nChunks loaded before the failure are kept: run the same "
              "command again to resume.", EXIT_FAILED)
    _print_backfill(summary, shown=job.notes)
    if summary["status"] == "partial":
        raise typer.Exit(EXIT_PARTIAL)


def _print_plan(summary: dict, format: OutputFormat) -> None:
    import pandas as pd

    frame = pd.DataFrame(summary["plan"])
    if format == OutputFormat.csv:
        sys.stdout.write(frame.to_csv(index=False))
        return
    if format == OutputFormat.json:
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
        return
    p = summary["parameters"]
    console.rule(f"Backfill plan {p['start']}..{p['end']} ({summary['source']}): dry run")
    console.print(f"Tickers ({len(p['tickers'])}): {', '.join(p['tickers'])}", highlight=False)
    t = Table(title="Chunks", title_justify="left")
    for c in ("dataset", "window", "sessions", "tickers", "rows already loaded", "status"):
        t.add_column(c, justify="right" if c in ("sessions", "tickers", "rows already loaded") else "left")
    for row in summary["plan"]:
        style = {"done": "dim", "refused": "yellow"}.get(row["status"])
        t.add_row(row["dataset"], f"{row['start']}..{row['end']}", str(row["sessions"]), str(row["tickers"]),
                  f"{row['rows_present']:,}", row["status"], style=style)
    console.print(t)
    console.print(summary["message"], highlight=False)


def _print_backfill(summary: dict, shown: list[str] = ()) -> None:
    from transforms.summary import loads_by_table

    p = summary["parameters"]
    console.rule(f"Bellwether backfill {p['start']}..{p['end']} ({summary['source']}): {summary['status']}")
    if summary.get("message"):
        console.print(summary["message"], highlight=False)
    console.print(
        f"Chunks: {summary['chunks_loaded']} loaded, {summary['chunks_skipped']} skipped (loaded before).", highlight=False
    )
    if summary.get("loads"):
        t = Table(title="Loaded into raw", title_justify="left")
        for c in ("table", "window", "chunks", "delivered", "inserted", "updated", "unchanged", "quarantined"):
            t.add_column(c, justify="left" if c in ("table", "window") else "right")
        for ld in loads_by_table(summary["loads"]):
            t.add_row(ld["table"], ld["window"], *(f"{ld[k]:,}" for k in ("chunks", "delivered", "inserted", "updated", "unchanged", "rejected")))
        console.print(t)
    _print_failed(summary.get("failed", []))
    for line in summary.get("rejects", [])[:10]:
        console.print(f"[yellow]quarantined[/] {line}", highlight=False)
    for note in [n for n in summary.get("notes", []) if n not in shown][:10]:
        console.print(f"[yellow]note[/] {note}", highlight=False)
    if summary.get("builds"):
        built = [b for b in summary["builds"] if b["mode"] != "view"]
        console.print(f"Marts rebuilt: {len(built)} table(s), {sum(b['rows_written'] for b in built):,} rows written.", highlight=False)
    _print_check_summary(summary.get("checks"), summary.get("data_docs"))
    console.print(f"Warehouse: {summary['warehouse']}  run id: {summary['run_id']}", highlight=False)


@app.command()
def serve(
    source: SourceOpt = None,
    path: PathOpt = None,
    warehouse: WarehouseOpt = None,
    universe: UniverseOpt = None,
    runner: RunnerOpt = None,
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
    port: Annotated[int, typer.Option(help="port of the local Prefect server started when PREFECT_API_URL is not set")] = 4200,
) -> None:
    """Serve the `nightly` (weekdays 18:30 New York) and `backfill` deployments until Ctrl-C.

    Uses the Prefect server at PREFECT_API_URL, or starts a local one (UI on --port) for as long
    as it runs. Trigger a backfill from the UI or with
    prefect deployment run 'backfill/backfill' --param start=2024-01-01 --param end=2024-03-31"""
    import os

    settings = get_settings(
        source=source.value if source else None, path=path, warehouse=warehouse, universe=universe,
        runner=runner.value if runner else None, dask_address=dask_address, dask_workers=dask_workers,
    )
    _check_source(settings)
    _check_warehouse(settings)
    from flows.runners import task_runner

    try:
        task_runner(settings.runner, address=settings.dask_address, workers=settings.dask_workers)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    # The runs serve starts are new processes: they read the runner from the environment.
    os.environ["BELLWETHER_RUNNER"] = settings.runner
    os.environ["BELLWETHER_DASK_WORKERS"] = str(settings.dask_workers)
    if settings.dask_address:
        os.environ["BELLWETHER_DASK_ADDRESS"] = settings.dask_address
    from flows import deployments
    from flows.writers import ensure_writer_limit

    try:
        with deployments.prefect_api(port=port) as (api_url, started):
            made = deployments.make_deployments(
                source=settings.source, path=settings.path, warehouse=settings.warehouse, universe=settings.universe,
            )
            limit = ensure_writer_limit()
            ui = api_url[: -len("/api")] if api_url.endswith("/api") else api_url
            console.print(
                f"Serving against {api_url} ({'a local Prefect server started for this session' if started else 'PREFECT_API_URL'}); UI {ui}\n"
                f"  nightly/nightly   cron '{deployments.NIGHTLY_CRON}' {deployments.MARKET_TZ}: {settings.source} -> {settings.warehouse}\n"
                f"  backfill/backfill by hand: prefect deployment run 'backfill/backfill' --param start=YYYY-MM-DD --param end=YYYY-MM-DD\n"
                f"  {limit}; fetches on {settings.runner}\n"
                "Stop with Ctrl-C (the schedule is paused until you serve again).",
                highlight=False,
            )
            deployments.serve(made)
    except deployments.ServeError as exc:
        _fail(str(exc), EXIT_FAILED)


@app.command()
def report(
    date: Annotated[Optional[str], typer.Option("--date", help="session, YYYY-MM-DD [default: the latest in the warehouse]")] = None,
    format: Annotated[Optional[ReportFormat], typer.Option("--format", "-f", help="text [default on a terminal], markdown [default otherwise] or json")] = None,
    html: Annotated[bool, typer.Option("--html", help="write the self-contained HTML page with charts instead of printing")] = False,
    out: Annotated[Optional[str], typer.Option("--out", help="folder for --html [default: reports/ beside the warehouse]")] = None,
    as_of: AsOfOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Print the morning brief for a session: index moves, dollar losers, support levels,
    put/call, the largest names against their 50-DMA, valuation, options, fear & greed.

    With --html: write it as one self-contained page with charts (opens offline, prints).
    With --as-of: the brief as the warehouse held it then (before a later restatement)."""
    import json
    from pathlib import Path

    from transforms.brief import NoBrief, brief_markdown, read_brief

    day = _parse_date(date, "--date")
    settings = get_settings(warehouse=warehouse)
    with _reading(settings, as_of) as con:
        try:
            brief = read_brief(con, day)
            if html:
                from transforms.report import report_folder, write_report

                path, _ = write_report(con, day, Path(out) if out else report_folder(settings.artifacts_folder))
        except NoBrief as exc:
            _fail(str(exc), EXIT_FAILED)
    if html:
        console.print(f"Report: {path}", highlight=False)
        return
    format = format or (ReportFormat.text if sys.stdout.isatty() else ReportFormat.markdown)
    if format == ReportFormat.json:
        sys.stdout.write(json.dumps(brief, default=str, indent=1) + "\n")
    elif format == ReportFormat.markdown:
        sys.stdout.write(brief_markdown(brief) + "\n")
    else:
        from rich.markdown import Markdown

        console.print(Markdown(brief_markdown(brief)))


@app.command()
def build(
    select: Annotated[Optional[list[str]], typer.Option("--select", "-s", help="model to build (repeatable); NAME+ adds everything downstream")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="rebuild incremental models from all history")] = False,
    since: Annotated[Optional[str], typer.Option(help="recompute incremental models from this date on (YYYY-MM-DD)")] = None,
    warehouse: WarehouseOpt = None,
    wait: WaitOpt = None,
) -> None:
    """Build the staging views and marts from raw (no fetching), checking each table as it is built.

    A failing error check publishes nothing and exits 1."""
    settings = get_settings(warehouse=warehouse, lock_wait_s=wait)
    since_date = _parse_date(since, "--since")
    params = {"select": select, "since": str(since_date) if since_date else None, "full_refresh": full_refresh or since_date is None}
    _checked_build(settings, flow="build", select=select, since=since_date, full_refresh=full_refresh or since_date is None,
                   parameters=params)


def _checked_build(settings: Settings, *, flow: str, select, since, full_refresh: bool, parameters: dict, prepare=None):
    """Build (and check) the models as one run recorded in audit.runs, whose end publishes it;
    `prepare(con)` runs first under the same writer lock (a migration's copy). Prints the
    outcome; exits 1 when the build failed."""
    from transforms.runner import ModelError, discover, latest_trade_date, select_models
    from transforms.runner import build as run_build
    from warehouse import audit, checks
    from warehouse.connect import WarehouseBusy, WarehouseMissing, writer

    started = dt.datetime.now(dt.UTC)
    run_id = audit.new_run_id(flow, started)
    collected: list = []
    expectations = checks.Expectations(checks.data_docs_dir(settings.artifacts_folder, run_id))
    prepared = None
    try:
        with writer(settings.warehouse, holder=f"bellwether {flow}", wait_s=settings.lock_wait_s) as con:
            if prepare is not None:
                prepared = prepare(con)
            last = latest_trade_date(con)
            audit.start_run(con, run_id=run_id, flow=flow, parameters=parameters, started_at=started)
            status, message, results = audit.FAILED, None, []
            try:
                hook = checks.build_hook(
                    checks.discover_checks(), since=since, run_date=last, expectations=expectations, collected=collected,
                    planned=[m.relation for m in select_models(discover(), select)],
                )
                results = run_build(con, run_date=last, since=since, select=select, full_refresh=full_refresh, after_model=hook)
                if select is None and full_refresh:  # a full build covers every backfilled chunk
                    audit.mark_built(con, loaded_before=started, at=dt.datetime.now(dt.UTC))
                status = audit.SUCCEEDED
            except (ModelError, checks.CheckFailed, checks.ChecksFileError) as exc:
                message = str(exc)
            finally:
                checks.record_results(con, collected, run_id=run_id, at=dt.datetime.now(dt.UTC))
                snapshot = audit.finish_run(
                    con, run_id=run_id, status=status, ended_at=dt.datetime.now(dt.UTC), message=message,
                    rows_by_table={r.relation: r.rows_written for r in results if r.mode != "view"},
                )
                summary = checks.summarize(con, run_id)
    except (WarehouseBusy, WarehouseMissing) as exc:
        _fail(str(exc), EXIT_BUSY)
    docs = expectations.build_docs()
    if message:
        _print_check_summary(summary, str(docs) if docs else None)
        _fail(f"{flow} failed, no mart was changed: {message}", EXIT_FAILED)
    t = Table(title="Built", title_justify="left")
    for c in ("table", "mode", "rows", "rows written", "seconds"):
        t.add_column(c)
    for r in results:
        t.add_row(r.relation, r.mode, f"{r.rows:,}", f"{r.rows_written:,}", f"{r.seconds:.2f}")
    console.print(t)
    _print_check_summary(summary, str(docs) if docs else None)
    console.print(f"run id: {run_id}" + (f"  published snapshot: {snapshot}" if snapshot is not None else ""), highlight=False)
    return prepared


@app.command()
def checks(
    run: Annotated[Optional[str], typer.Option("--run", help="run id [default: the latest run that ran checks]")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="only the checks that failed")] = False,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, csv or json")] = OutputFormat.table,
    warehouse: WarehouseOpt = None,
) -> None:
    """Show a run's data checks: severity, rows checked and failing, sample failing keys.

    Without --run: the latest run that ran checks."""
    settings = get_settings(warehouse=warehouse)
    with _reading(settings) as con:
        run_id = run or (con.execute(
            "select run_id from audit.check_results group by run_id order by max(checked_at) desc limit 1"
        ).fetchone() or [None])[0]
        if run_id is None:
            _fail("no checks have run in this warehouse yet: run `bellwether run` first", EXIT_FAILED)
        frame = con.execute(
            f"""
            select stage, table_name as "table", check_name as "check", severity, action,
                   case when success then 'pass' else 'FAIL' end as result,
                   sum(rows_checked) as rows_checked, sum(unexpected_count) as failing_rows, count(*) as batches,
                   any_value(sample_keys::varchar order by unexpected_count desc) as sample_keys
            from audit.check_results
            where run_id = ? {"and not success" if failed else ""}
            group by all
            order by stage desc, "table", result, "check"
            """,
            [run_id],
        ).fetchdf()
        known = con.execute("select count(*) from audit.runs where run_id = ?", [run_id]).fetchone()[0]
    if frame.empty and not failed:
        _fail(f"no check results for run {run_id}{'' if known else ' (no such run)'}", EXIT_FAILED)
    if format == OutputFormat.csv:
        sys.stdout.write(frame.to_csv(index=False))
        return
    if format == OutputFormat.json:
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
        return
    t = Table(title=f"Checks of run {run_id}", title_justify="left")
    for c in frame.columns:
        t.add_column(c, justify="right" if frame[c].dtype.kind in "iuf" else "left")
    for row in frame.itertuples(index=False):
        style = None if row.result == "pass" else "red" if row.severity == "error" else "yellow"
        t.add_row(*("" if v is None or v != v else f"{v:,}" if isinstance(v, (int, float)) else str(v)[:80] for v in row), style=style)
    console.print(t)
    from warehouse.checks import data_docs_dir

    docs = data_docs_dir(settings.artifacts_folder, run_id) / "index.html"
    if docs.exists():
        console.print(f"Data Docs: {docs}", highlight=False)


@contextlib.contextmanager
def _reading(settings: Settings, as_of: str | None = None, at=None):
    """A read-only connection for a command, failures mapped to exit codes: busy or missing 3,
    a bad --as-of 2, a snapshot that cannot be read 1. With --as-of, says on stderr which
    publication it reads."""
    from warehouse import lake
    from warehouse.connect import AsOfError, WarehouseBusy, WarehouseMissing, open_reader

    try:
        con = open_reader(settings.warehouse, at=as_of or at)
    except (WarehouseMissing, WarehouseBusy) as exc:
        _fail(str(exc), EXIT_BUSY)
    except AsOfError as exc:
        _fail(str(exc), EXIT_USAGE)
    except lake.LakeError as exc:
        _fail(str(exc), EXIT_FAILED)
    try:
        if as_of:
            info = lake.snapshot_info(con)
            err.print(f"as of snapshot {info['snapshot_id']}, {'published' if info['published'] else 'committed (not published)'} "
                      f"{info['at']:%Y-%m-%d %H:%M:%S %Z}"
                      + (f" by run {info['run_id']}" if info.get("run_id") else ""), highlight=False)
        yield con
    finally:
        con.close()


@app.command()
def status(
    runs: Annotated[int, typer.Option(min=1, help="how many recent runs to show")] = 5,
    warehouse: WarehouseOpt = None,
) -> None:
    """Show what the warehouse holds: each table's latest date against the latest session, recent
    runs, quarantined rows; on a DuckLake also the snapshot readers see and who is writing now."""
    from sources import calendar
    from sources.contract import DATASETS
    from warehouse import audit, lake
    from warehouse.connect import current_writer
    from warehouse.target import parse

    settings = get_settings(warehouse=warehouse)
    expected = calendar.last_completed_session(dt.datetime.now(dt.UTC))
    tables = {f"raw.{name}": ds.date_column for name, ds in DATASETS.items()}
    tables |= {"marts.technicals_daily": "trade_date", "marts.market_brief": "trade_date"}
    target = parse(settings.warehouse)
    with _reading(settings) as con:
        present = {f"{a}.{b}" for a, b in con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = current_database()"
        ).fetchall()}
        fresh = audit.freshness(con, expected, {t: c for t, c in tables.items() if t in present})
        recent = audit.recent_runs(con, runs)
        waiting = audit.quarantine_waiting(con)
        published = lake.snapshot_info(con) if target.is_lake else None
    if published:
        console.print(
            f"Warehouse: {target.describe()} (DuckLake). Readers see snapshot {published['snapshot_id']}, published "
            f"{published['at']:%Y-%m-%d %H:%M:%S %Z}" + (f" by run {published['run_id']}" if published.get("run_id") else "") + ".",
            highlight=False,
        )
    else:
        console.print(f"Warehouse: {target.describe()} (one DuckDB file).", highlight=False)
    writing = current_writer(settings.warehouse)
    if writing:
        console.print(f"Writing now: {writing}; readers see its results when it finishes.", highlight=False)
    t = Table(title=f"Tables (latest completed NYSE session: {expected})", title_justify="left")
    for c in ("table", "rows", "latest", "sessions behind"):
        t.add_column(c, justify="right" if c in ("rows", "sessions behind") else "left")
    for f in fresh:
        quarterly = f["table"] == "raw.fundamentals_quarterly"  # dated by report: not daily
        behind = "" if f["sessions_behind"] is None or quarterly else str(f["sessions_behind"])
        style = "yellow" if f["sessions_behind"] and not quarterly else None
        t.add_row(f["table"], f"{f['rows']:,}", str(f["latest"] or "-"), behind, style=style)
    console.print(t)
    t = Table(title="Recent runs (published)" if published else "Recent runs", title_justify="left")
    for c in ("run id", "flow", "status", "started", "snapshot", "message"):
        t.add_column(c)
    for r in recent:
        style = {"failed": "red", "partial": "yellow"}.get(r["status"])
        snap = "" if r.get("snapshot_id") is None else str(r["snapshot_id"])
        t.add_row(r["run_id"], r["flow"], r["status"], f"{r['started_at']:%Y-%m-%d %H:%M}", snap, (r["message"] or "")[:100], style=style)
    console.print(t)
    if waiting:
        t = Table(title="Quarantined rows (audit.quarantine)", title_justify="left")
        for c in ("table", "check", "rows", "last run"):
            t.add_column(c, justify="right" if c == "rows" else "left")
        for q in waiting:
            t.add_row(q["table_name"], q["check_name"], f"{q['rows']:,}", q["last_run"])
        console.print(t)
    else:
        console.print("No quarantined rows.")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run, e.g. \"select * from marts.technicals_daily limit 5\"")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, csv or json")] = OutputFormat.table,
    limit: Annotated[int, typer.Option(help="rows shown in table format (csv and json print all)")] = 50,
    as_of: AsOfOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run a read-only SQL query against the warehouse.

    On a DuckLake it reads what the last finished run published, and answers at once while a
    run writes; --as-of reads an earlier publication (time travel)."""
    import duckdb

    settings = get_settings(warehouse=warehouse)
    with _reading(settings, as_of) as con:
        try:
            frame = con.execute(sql).fetchdf()
        except duckdb.Error as exc:
            _fail(str(exc), EXIT_FAILED)
    if format == OutputFormat.csv:
        sys.stdout.write(frame.to_csv(index=False))
    elif format == OutputFormat.json:
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=1) + "\n")
    else:
        t = Table(show_lines=False)
        for c in frame.columns:
            t.add_column(str(c), justify="right" if frame[c].dtype.kind in "iuf" else "left")
        for row in frame.head(limit).itertuples(index=False):
            t.add_row(*("" if v is None or (isinstance(v, float) and v != v) else (f"{v:,.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)) for v in row))
        console.print(t)
        if len(frame) > limit:
            console.print(f"({len(frame):,} rows; showing {limit}: use --limit or --format csv)")


@app.command()
def attach(
    as_of: AsOfOpt = None,
    latest: Annotated[bool, typer.Option("--latest", help="the newest commit instead of the last published run (may be half a run)")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Print the SQL that opens the warehouse read-only in a plain DuckDB client (the duckdb CLI,
    a notebook, a BI tool), at the snapshot the last finished run published.

    duckdb -init <(bellwether attach)   or, in Python:   con.execute(open(FILE).read())"""
    from warehouse import lake
    from warehouse.target import parse

    settings = get_settings(warehouse=warehouse)
    target = parse(settings.warehouse)
    if not target.is_lake:
        if as_of:
            _fail("time travel needs a DuckLake warehouse; this one is a single DuckDB file", EXIT_USAGE)
        sys.stdout.write(f"ATTACH '{target.location}' AS bellwether (READ_ONLY);\nUSE bellwether;\n")
        return
    from warehouse.connect import LATEST

    with _reading(settings, as_of, at=LATEST if latest else None) as con:
        info = lake.snapshot_info(con)
        data_path = lake.data_path_of(con)
    lines = [
        f"-- Bellwether {target.describe()}: snapshot {info['snapshot_id']} ("
        + (f"published by run {info['run_id']}" if info["published"] else "not published: the newest commit")
        + f", {info['at']:%Y-%m-%d %H:%M:%S %Z}). DuckDB {__import__('duckdb').__version__} reads it.",
    ]
    lines += [f"LOAD '{lake.extension_path(name)}';" for name in lake.extensions_for(target, data_path)]
    if "://" in (data_path or ""):
        lines.append("-- the data files are on object storage: CREATE SECRET (TYPE s3, KEY_ID '...', SECRET '...', ...) first")
    lines.append(lake.attach_sql(target, read_only=True, snapshot=None if latest else info["snapshot_id"]) + ";")
    lines.append("USE bellwether;")
    sys.stdout.write("\n".join(lines) + "\n")


@app.command()
def init(
    data_path: Annotated[Optional[str], typer.Option("--data-path", help="where the lake's Parquet files go, e.g. s3://bucket/bellwether/ (PostgreSQL catalogs; a SQLite lake keeps them beside its catalog)")] = None,
    warehouse: WarehouseOpt = None,
    wait: WaitOpt = None,
) -> None:
    """Create an empty warehouse (schemas and tables) and publish it.

    Needed once for a DuckLake with its catalog in PostgreSQL (the team set-up): it fixes where the
    data files go. A SQLite lake or a DuckDB file is created by the first run without it."""
    from warehouse import audit, lake
    from warehouse.connect import WarehouseBusy, create_lake
    from warehouse.target import SQLITE, parse

    settings = get_settings(warehouse=warehouse, lock_wait_s=wait)
    target = parse(settings.warehouse)
    if target.is_lake and target.catalog == SQLITE and data_path:
        _fail("a SQLite lake keeps its data files beside its catalog (<name>.files/): --data-path is for PostgreSQL catalogs", EXIT_USAGE)
    if target.is_lake and target.catalog != SQLITE and not data_path:
        _fail("a DuckLake with its catalog in PostgreSQL needs --data-path (e.g. s3://bucket/bellwether/)", EXIT_USAGE)
    now = dt.datetime.now(dt.UTC)
    run_id = audit.new_run_id("init", now)
    try:
        created, snapshot = create_lake(settings.warehouse, data_path=data_path, run_id=run_id, now=now, wait_s=settings.lock_wait_s)
    except WarehouseBusy as exc:
        _fail(str(exc), EXIT_BUSY)
    except lake.LakeError as exc:
        _fail(str(exc), EXIT_FAILED)
    console.print(
        f"{'Created' if created else 'Already there'}: {target.describe()}"
        + (f" (data files: {created})" if isinstance(created, str) else "")
        + (f"; published snapshot {snapshot}" if snapshot is not None else ""),
        highlight=False,
    )


@app.command()
def maintain(
    keep_days: Annotated[Optional[float], typer.Option("--keep-days", min=0, help="expire published snapshots older than this many days (time travel stops there) [default: keep them all]")] = None,
    grace_hours: Annotated[float, typer.Option("--grace-hours", min=0, help="keep unreferenced files and unpublished snapshots this long (readers that began before may still use them)")] = 24.0,
    warehouse: WarehouseOpt = None,
    wait: WaitOpt = None,
) -> None:
    """Compact a DuckLake warehouse: merge small files, rewrite files mostly deleted, expire
    snapshots no run published, delete files nothing needs. Readers keep reading meanwhile.

    The nightly run does this by itself when a table has gathered many files."""
    from warehouse import lake
    from warehouse.connect import WarehouseBusy, WarehouseMissing, writer
    from warehouse.target import parse

    settings = get_settings(warehouse=warehouse, lock_wait_s=wait)
    if not parse(settings.warehouse).is_lake:
        _fail("maintain compacts a DuckLake warehouse; a single DuckDB file needs none (DuckDB checkpoints it)", EXIT_USAGE)
    try:
        with writer(settings.warehouse, holder="bellwether maintain", wait_s=settings.lock_wait_s) as con:
            done = lake.maintain(
                con, now=dt.datetime.now(dt.UTC), grace=dt.timedelta(hours=grace_hours),
                keep_published=None if keep_days is None else dt.timedelta(days=keep_days),
            )
    except (WarehouseBusy, WarehouseMissing) as exc:
        _fail(str(exc), EXIT_BUSY)
    t = Table(title="Maintenance", title_justify="left")
    t.add_column("step")
    t.add_column("count", justify="right")
    for k, v in done.items():
        t.add_row(k.replace("_", " "), f"{v:,}")
    console.print(t)


@app.command()
def migrate(
    from_: Annotated[str, typer.Option("--from", help="the old warehouse: a DuckDB file of any version, a folder of <schema>.<table>.parquet, or another DuckLake (ducklake:sqlite:PATH, read at its published snapshot)")],
    warehouse: WarehouseOpt = None,
    wait: WaitOpt = None,
) -> None:
    """Move a warehouse into the (new, empty) DuckLake warehouse: every raw and audit row, then
    the marts rebuilt from raw and checked, published as one run. The old one is only read.

    bellwether migrate --from warehouse/bellwether.duckdb                 (an earlier single file)
    bellwether migrate --from ducklake:sqlite:warehouse/bellwether.sqlite --warehouse 'ducklake:postgres:...'"""
    from pathlib import Path

    from warehouse.migrate import MigrationError, copy_tables
    from warehouse.target import TargetError, parse

    settings = get_settings(warehouse=warehouse, lock_wait_s=wait)
    if from_.strip().lower().startswith("ducklake:"):
        try:
            old = str(parse(from_))
        except TargetError as exc:
            _fail(str(exc), EXIT_USAGE)
        if old == settings.warehouse:
            _fail(f"--from names the warehouse being migrated into ({parse(old).describe()})", EXIT_USAGE)
    else:
        old = Path(from_).expanduser().resolve()
    console.print(f"Migrating {old} into {parse(settings.warehouse).describe()} ...", highlight=False)
    try:
        copied = _checked_build(
            settings, flow="migrate", select=None, since=None, full_refresh=True,
            parameters={"from": str(old)}, prepare=lambda con: copy_tables(con, old),
        )
    except MigrationError as exc:
        _fail(str(exc), EXIT_FAILED)
    t = Table(title=f"Copied from {old}", title_justify="left")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for c in copied or []:
        t.add_row(c.table, f"{c.rows:,}")
    console.print(t)


universe_app = typer.Typer(help="Build the universe files in config/ from public constituent lists.", no_args_is_help=True)
app.add_typer(universe_app, name="universe")
SP500_SOURCE = ("datasets/s-and-p-500-companies, data/constituents.csv (compiled from Wikipedia's "
                "\"List of S&P 500 companies\"); Open Data Commons PDDL 1.0")


@universe_app.command("sp500")
def universe_sp500(
    from_: Annotated[str, typer.Option("--from", help="a constituents CSV in the layout of datasets/s-and-p-500-companies (Symbol, Security, GICS Sector, GICS Sub-Industry, ..., CIK)")],
    out: Annotated[Optional[str], typer.Option(help="where the universe file goes [default: config/sp500.csv]")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="the list's date [default: the date in its file name]")] = None,
    source: Annotated[str, typer.Option(help="where the list comes from, written into the file's header")] = SP500_SOURCE,
) -> None:
    """Write the S&P 500 universe (`--universe sp500`): the index proxies and macro funds, then
    every constituent with its GICS sector and sub-industry, the AI cohort (sources/sp500.py) and
    a company's second share class marked `share_class`."""
    from pathlib import Path

    from sources import sp500
    from sources.base import NAMED_UNIVERSES, load_universe
    from sources.contract import ContractError

    day = _parse_date(as_of, "--as-of") or sp500.as_of_from_name(from_)
    if day is None:
        _fail(f"{from_}: its file name carries no date (YYYY-MM-DD): give the list's date with --as-of", EXIT_USAGE)
    try:
        universe = sp500.build(sp500.read_constituents(from_))
        path = sp500.write(universe, Path(out) if out else NAMED_UNIVERSES["sp500"], source=source, as_of=day)
        load_universe(path)  # what runs will read: refuse to leave a file they would refuse
    except ContractError as exc:
        _fail(str(exc), EXIT_USAGE)
    roles = universe["role"].value_counts()
    console.print(
        f"Wrote {path}: {roles.get('stock', 0)} stocks ({(universe['cohort'].eq('ai') & universe['role'].eq('stock')).sum()} in the AI "
        f"cohort), {roles.get('share_class', 0)} second share classes "
        f"({', '.join(universe.loc[universe['role'] == 'share_class', 'ticker'])}), "
        f"{len(universe) - roles.get('stock', 0) - roles.get('share_class', 0)} index proxies and funds; as of {day}.",
        highlight=False,
    )
    absent = sp500.ai_names_absent(universe)
    if absent:
        err.print(f"warning: the AI cohort (sources/sp500.py AI_COHORT) names {', '.join(absent)}, which this list does not hold",
                  highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
