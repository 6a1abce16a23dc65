"""Prefect tasks: each is one call into sources/, warehouse/ or transforms/ plus a log line.

Tasks pass DataFrames and connections' targets (paths), never live connections, and opt out of
Prefect's input caching (their inputs are frames and source objects, and every night is new).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from sources import registry
from sources.base import load_universe
from sources.contract import Batch, describe_rejects
from sources.live import LiveConfig
from transforms import plan as plans
from transforms import runner, summary
from warehouse import audit, checks, load
from warehouse.connect import writer

TASK_OPTS = dict(cache_policy=NO_CACHE, persist_result=False)


def _log_failed_checks(logger, results) -> None:
    for r in results:
        if not r.success:
            (logger.error if r.blocking else logger.warning)(
                "check %s on %s: %d row(s) failed%s", r.check, r.table, r.unexpected_count,
                f" (e.g. {r.sample_keys[:2]})" if r.sample_keys else "",
            )


@task(name="start-run", **TASK_OPTS)
def start_run(warehouse: str, *, run_id: str, flow: str, parameters: dict, started_at: dt.datetime) -> None:
    with writer(warehouse) as con:
        audit.start_run(con, run_id=run_id, flow=flow, parameters=parameters, started_at=started_at)
    get_run_logger().info("run %s started (%s)", run_id, parameters)


@task(name="finish-run", **TASK_OPTS)
def finish_run(warehouse: str, *, run_id: str, status: str, ended_at: dt.datetime, rows_by_table: dict, message: str | None) -> None:
    with writer(warehouse) as con:
        audit.finish_run(con, run_id=run_id, status=status, ended_at=ended_at, rows_by_table=rows_by_table, message=message)
    get_run_logger().info("run %s %s%s", run_id, status, f": {message}" if message else "")


@task(name="load-universe", **TASK_OPTS)
def load_universe_table(
    warehouse: str, universe_path: str, *, run_id: str, loaded_at: dt.datetime, run_date: dt.date, docs_dir: str | None = None,
) -> pd.DataFrame:
    """Check the universe file, then load it; a universe failing an error check stops the run
    (every later step depends on it), with the file, check and tickers named."""
    universe = load_universe(universe_path)
    with writer(warehouse) as con:
        outcome = checks.check_batch(
            con, universe, checks.discover_checks().get("raw.universe"), run_date=run_date, batch_ref=universe_path,
            expectations=checks.expectations_for(docs_dir),
        )
        checks.record_results(con, outcome.results, run_id=run_id, at=loaded_at)
        _log_failed_checks(get_run_logger(), outcome.results)
        blocking = [r for r in outcome.results if r.blocking]
        if blocking:
            raise checks.CheckFailed(blocking)
        result = load.load_universe(con, universe, source=universe_path, run_id=run_id, loaded_at=loaded_at)
    get_run_logger().info("universe: %d tickers (%d new, %d changed, %d removed)", len(universe), result.inserted, result.updated, result.removed)
    return universe


@task(name="plan-nightly", **TASK_OPTS)
def plan_nightly(warehouse: str, *, run_date: dt.date, tickers: tuple[str, ...], lookback_sessions: int, history_sessions: int) -> list[plans.DatasetWindow]:
    with writer(warehouse) as con:
        result = plans.plan_nightly(con, run_date=run_date, tickers=tickers, lookback_sessions=lookback_sessions, history_sessions=history_sessions)
    for p in result:
        get_run_logger().info(
            "plan: %s %s..%s for %s%s", p.dataset, p.start, p.end,
            "all tickers" if p.tickers is None else f"{len(p.tickers)} ticker(s)",
            " (first history)" if p.first_history else "",
        )
    return result


@task(name="plan-retry", **TASK_OPTS)
def plan_retry(warehouse: str, *, run_date: dt.date, lookback_sessions: int, history_sessions: int) -> plans.RetryPlan:
    """What a retry of the night of `run_date` fetches again, from its fetch outcomes."""
    with writer(warehouse) as con:
        outcomes = audit.last_fetch_outcomes(con, run_date)
        result = plans.plan_retry(
            con, run_date=run_date, outcomes=outcomes, lookback_sessions=lookback_sessions, history_sessions=history_sessions,
        )
    get_run_logger().info(result.describe())
    return result


@task(name="plan-backfill", **TASK_OPTS)
def plan_backfill(warehouse: str, **kwargs) -> list[plans.BackfillChunk]:
    with writer(warehouse) as con:
        chunks = plans.plan_backfill(con, **kwargs)
    logger = get_run_logger()
    counts = {s: sum(c.status == s for c in chunks) for s in (plans.TODO, plans.DONE, plans.REFUSED)}
    logger.info("backfill plan: %d chunk(s) to load, %d done by an earlier backfill (skipped), %d refused",
                counts[plans.TODO], counts[plans.DONE], counts[plans.REFUSED])
    return chunks


@task(name="builds-owed", **TASK_OPTS)
def builds_owed(warehouse: str) -> bool:
    """True when backfilled chunks or a changed universe wait for the marts to be rebuilt."""
    with writer(warehouse) as con:
        return audit.unbuilt_since(con) is not None or audit.universe_change_unbuilt(con) is not None


@task(name="fetch", **TASK_OPTS)
def fetch(
    source_name: str, source_path: str | None, universe_path: str, window: plans.DatasetWindow, live: LiveConfig | None = None,
    sample_start: dt.date | None = None,
) -> Batch:
    source = registry.make_source(source_name, source_path, universe_path, live, sample_start)
    batch = registry.fetch(source, window.dataset, window.tickers, window.start, window.end)
    logger = get_run_logger()
    logger.info("fetched %s %s..%s from %s: %d rows, %d refused", window.dataset, window.start, window.end, source_name, batch.rows, len(batch.rejects))
    for note in batch.notes:
        logger.warning("%s: %s", window.dataset, note)
    for o in batch.failed.itertuples():
        logger.warning("%s %s failed after %s attempt(s): %s", window.dataset, o.ticker, o.attempts, o.reason)
    return batch


@task(name="load", **TASK_OPTS)
def load_batch(
    warehouse: str, batch: Batch, *, source: str, run_id: str, loaded_at: dt.datetime, window: plans.DatasetWindow,
    run_date: dt.date, docs_dir: str | None = None, chunk_source: str | None = None,
) -> load.LoadResult:
    """Land -> check -> publish one fetched batch. With `chunk_source` (a backfill), the chunk
    is recorded in audit.backfill_chunks in the same transaction, for the tickers that did not
    fail (a failed ticker stays owed and the next run of the backfill fetches it)."""
    checks_file = checks.discover_checks().get(f"raw.{batch.dataset.name}")

    def record(con, result: load.LoadResult) -> None:
        failed = set(result.failed)
        audit.record_chunk(
            con, run_id=run_id, dataset=window.dataset, source_ref=chunk_source, start=window.start, end=window.end,
            tickers=None if window.tickers is None else [t for t in window.tickers if t not in failed],
            delivered=result.delivered, inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
            rejected=result.rejected, loaded_at=loaded_at,
        )

    with writer(warehouse) as con:
        result, outcome = load.land_check_publish(
            con, batch, checks_file=checks_file, expectations=checks.expectations_for(docs_dir), run_date=run_date,
            source=source, run_id=run_id, loaded_at=loaded_at, window=(window.start, window.end),
            before_commit=record if chunk_source else None,
        )
    logger = get_run_logger()
    logger.info("loaded %s: %d inserted, %d updated, %d unchanged, %d quarantined", result.table, result.inserted, result.updated, result.unchanged, result.rejected)
    for line in describe_rejects(batch.rejects):
        logger.warning("quarantined %s", line)
    _log_failed_checks(logger, outcome.results)
    if outcome.held:
        logger.error("%s batch %s..%s held in quarantine by its checks", batch.dataset.name, window.start, window.end)
    return result


@task(name="build-marts", **TASK_OPTS)
def build_marts(
    warehouse: str, *, run_date: dt.date | None, since: dt.date | None, select: list[str] | None = None, full_refresh: bool = False,
    run_id: str | None = None, docs_dir: str | None = None,
) -> list[runner.BuildResult]:
    """Build staging and marts, checking each built table before anything is published; record
    every check's result whether or not the build went through. `run_date` None: the latest
    session with prices (a backfill's build).

    The window also reaches back to any backfilled chunk the marts were not rebuilt over yet (a
    backfill killed after its loads), and to the beginning after a change to the universe not
    yet built (cohorts apply back through history): the build owes them, and marks them built
    once published."""
    logger = get_run_logger()
    collected: list[checks.CheckResult] = []
    with writer(warehouse) as con:
        started = dt.datetime.now(dt.UTC)
        run_date = run_date or runner.latest_trade_date(con)
        owed = audit.unbuilt_since(con)
        if owed is not None and since is not None and owed < since and not full_refresh:
            logger.info("build reaches back to %s: backfilled rows not yet built into the marts", owed)
            since = owed
        changed_by = audit.universe_change_unbuilt(con)
        if changed_by is not None and since is not None:
            logger.info("the universe changed (run %s): every day of the marts is rebuilt", changed_by)
            since = None
        hook = checks.build_hook(
            checks.discover_checks(), since=None if full_refresh else since, run_date=run_date,
            expectations=checks.expectations_for(docs_dir), collected=collected,
            planned=[m.relation for m in runner.select_models(runner.discover(), select)],
        )
        try:
            results = runner.build(con, run_date=run_date, since=since, select=select, full_refresh=full_refresh, after_model=hook)
        finally:
            if run_id:
                checks.record_results(con, collected, run_id=run_id, at=dt.datetime.now(dt.UTC))
            _log_failed_checks(logger, collected)
        if select is None:
            audit.mark_built(con, loaded_before=started, at=dt.datetime.now(dt.UTC))
    for r in results:
        logger.info("built %s (%s): %d rows, %d written in %.2f s", r.relation, r.mode, r.rows, r.rows_written, r.seconds)
    return results


@task(name="maintain-lake", **TASK_OPTS)
def maintain_lake(warehouse: str) -> dict | None:
    """Compact a DuckLake warehouse once a table has gathered many small files (nightly writes
    make one or two per table). Maintenance changes no data; a failure is logged and never
    fails a run whose data is published."""
    from warehouse import lake
    from warehouse.target import parse

    if not parse(warehouse).is_lake:
        return None
    logger = get_run_logger()
    try:
        with writer(warehouse) as con:
            if not lake.maintenance_due(con):
                return None
            done = lake.maintain(con, now=dt.datetime.now(dt.UTC))
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logger.warning("lake maintenance failed (the run's data is published; `bellwether maintain` retries): %s: %s",
                       type(exc).__name__, exc)
        return None
    logger.info("lake maintenance: %s", done)
    return done


@task(name="data-docs", **TASK_OPTS)
def data_docs(docs_dir: str | None) -> str | None:
    """Render the run's Great Expectations Data Docs site; its index.html, or None."""
    index = checks.expectations_for(docs_dir).build_docs() if docs_dir else None
    if index:
        get_run_logger().info("data docs: %s", index)
    return str(index) if index else None


@task(name="check-summary", **TASK_OPTS)
def check_summary(warehouse: str, *, run_id: str) -> dict:
    with writer(warehouse) as con:
        result = checks.summarize(con, run_id)
    get_run_logger().info(
        "checks: %d run, %d passed, %d failing error check(s), %d warning(s)",
        result["checks_run"], result["passed"], result["errors"], result["warnings"],
    )
    return result


@task(name="headline", **TASK_OPTS)
def headline(warehouse: str, *, run_date: dt.date) -> list[dict]:
    with writer(warehouse) as con:
        frame = summary.headline(con, run_date)
    get_run_logger().info("headline: %d rows for %s", len(frame), run_date)
    return frame.to_dict(orient="records")


@task(name="morning-brief", **TASK_OPTS)
def morning_brief(warehouse: str, *, run_date: dt.date, folder: str) -> str | None:
    """Write the night's HTML brief beside the warehouse and publish its text as an artifact.
    A brief that cannot be written is logged and reported, never fails a night whose data loaded."""
    from prefect.artifacts import create_markdown_artifact

    from transforms.report import report_folder, write_report

    logger = get_run_logger()
    try:
        with writer(warehouse) as con:
            path, text = write_report(con, run_date, report_folder(folder))
    except Exception as exc:  # noqa: BLE001 - reported in the run's message
        logger.error("the morning brief for %s could not be written: %s: %s", run_date, type(exc).__name__, exc)
        return None
    create_markdown_artifact(key="morning-brief", markdown=text, description=f"Bellwether morning brief {run_date}")
    logger.info("morning brief: %s", path)
    return str(path)
