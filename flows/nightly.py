"""The nightly flow: ingest every dataset, load it into `raw`, build the marts, report.

Schedule: weekdays at 18:30 America/New_York (cron `30 18 * * 1-5`), after the close; it runs
the last completed NYSE session. Run it by hand with `bellwether run`.

Parameters:
- run_date: the session to load (default: the last completed session at start time; on the
  schedule, the day the run was scheduled for). A date the market was closed is logged and the
  run ends successfully without loading anything.
- scheduled: set by the `nightly` deployment (see flows/deployments.py).
- lock_wait_s: how long to wait for another writer (a backfill) before failing.
- source: `sample` (synthetic market), `files` (a folder, with `path`) or `live`.
- path: the folder for the files source.
- lookback_days: sessions before run_date fetched again (providers restate recent days).
- history_sessions: sessions of history fetched for a ticker or dataset the warehouse lacks.
- warehouse: the warehouse target (default BELLWETHER_WAREHOUSE or the DuckLake
  ducklake:sqlite:warehouse/bellwether.sqlite; see warehouse/target.py).
- universe: the universe CSV.
- retry_failed: fetch again only what the night's fetches left failed: per dataset, the tickers
  whose last outcome for run_date (audit.fetch_outcomes, over that date's nightly runs) was a
  retryable failure, over the windows the night plans for them; load and build as a night does.
  Unknown or delisted tickers are not retried. With nothing to retry, it says so and records no
  run. (`bellwether run --date D --retry-failed`.)

A night whose fetches failed for some tickers loads everything else and ends partial, naming
every failed ticker per dataset (the retryable ones apart from the unknown or delisted ones).

Order: land -> check -> publish. Each fetched batch is checked (sql/raw/<table>.checks.yml)
before it is loaded: rows failing an error check are quarantined, the rest load. Then the
staging views and marts are built in one transaction, each checked as it is built; a blocking
failure rolls the whole build back (yesterday's marts stand) and the run fails naming the
table, check and keys. Every check result goes to audit.check_results, and the run's Great
Expectations Data Docs site to <artifacts>/data_docs/<run id>/index.html (<artifacts>: BELLWETHER_ARTIFACTS_DIR,
by default the warehouse's folder).

Writes: raw.prices_daily, raw.putcall_daily, raw.fundamentals_quarterly, raw.option_quotes,
raw.valuation_snapshots, raw.universe; audit.runs, audit.load_batches, audit.quarantine,
audit.check_results; the staging views and marts; the HTML morning brief
<artifacts>/reports/brief-<date>.html. Publishes the markdown artifacts
`nightly-summary` and `morning-brief`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows import progress, tasks
from flows.settings import default_task_runner, get_settings
from flows.tally import Tally, fail_run, fetch_and_load, finish_run
from flows.writers import writer_slot
from sources import calendar
from transforms.plan import build_since
from transforms.summary import summary_markdown
from warehouse.audit import SUCCEEDED, new_run_id
from warehouse.checks import data_docs_dir
from warehouse.connect import run_lock


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def session_to_run(run_date: dt.date | None, *, scheduled: bool, now: dt.datetime, scheduled_at: dt.datetime | None) -> dt.date:
    """The session a run loads. Given a date, that date. On the schedule, the day the run was
    scheduled for in New York (so a late start still loads its own day, and a holiday stays a
    holiday). By hand, the last completed session."""
    if run_date is not None:
        return run_date
    if scheduled:
        return (scheduled_at or now).astimezone(ZoneInfo(calendar.MARKET_TZ)).date()
    return calendar.last_completed_session(now)


def _not_fetched_again(retried: dict[str, tuple[str, ...]], tried: dict[str, set[str]]) -> list[str]:
    """Retried tickers the source gave no outcome for: it did not fetch them (a snapshot of a
    past session, say), so they still owe the night; the run's notes say why."""
    missing = {d: [t for t in tickers if t not in tried.get(d, set())] for d, tickers in retried.items()}
    missing = {d: t for d, t in missing.items() if t}
    if not missing:
        return []
    return ["not fetched again (see the notes): " + "; ".join(f"{d}: {', '.join(t)}" for d, t in missing.items())]


@flow(name="nightly", validate_parameters=True, task_runner=default_task_runner())
def nightly(
    run_date: dt.date | None = None,
    source: str | None = None,
    path: str | None = None,
    lookback_days: int | None = None,
    history_sessions: int | None = None,
    warehouse: str | None = None,
    universe: str | None = None,
    scheduled: bool = False,
    lock_wait_s: float | None = None,
    retry_failed: bool = False,
) -> dict:
    settings = get_settings(
        source=source, path=path, lookback_days=lookback_days, history_sessions=history_sessions,
        warehouse=warehouse, universe=universe, lock_wait_s=lock_wait_s,
    )
    logger = get_run_logger()
    started_at = _utc_now()
    day = session_to_run(run_date, scheduled=scheduled, now=started_at, scheduled_at=flow_run.scheduled_start_time if flow_run.id else None)
    run_id = str(flow_run.id) if flow_run.id else new_run_id("nightly", started_at)
    base = {"run_id": run_id, "run_date": str(day), "source": settings.source}
    if not calendar.is_session(day):
        message = f"the NYSE was closed on {day} ({day:%A}): nothing to load"
        logger.info(message)
        return base | {"status": SUCCEEDED, "message": message, "loads": [], "builds": []}

    parameters = {
        "run_date": str(day), "source": settings.source, "path": settings.path,
        "lookback_days": settings.lookback_days, "history_sessions": settings.history_sessions,
        "universe": settings.universe, "scheduled": scheduled, "retry_failed": retry_failed,
    }
    tally = Tally()
    docs_dir = str(data_docs_dir(settings.artifacts_folder, run_id))
    retry = None
    with writer_slot(timeout_s=settings.lock_wait_s, holder=f"nightly run {run_id}", warehouse=settings.warehouse), \
            run_lock(settings.warehouse, holder=f"nightly run {run_id}", wait_s=settings.lock_wait_s):
        if retry_failed:
            retry = tasks.plan_retry(
                settings.warehouse, run_date=day, lookback_sessions=settings.lookback_days,
                history_sessions=settings.history_sessions,
            )
            if not retry.windows:
                return base | {"status": SUCCEEDED, "retry": retry.describe(), "loads": [], "builds": []}
        tasks.start_run(settings.warehouse, run_id=run_id, flow="nightly", parameters=parameters, started_at=started_at)
        try:
            universe_frame = tasks.load_universe_table(
                settings.warehouse, settings.universe, run_id=run_id, loaded_at=started_at, run_date=day, docs_dir=docs_dir,
            )
            if retry is not None:
                windows = retry.windows
            else:
                windows = tasks.plan_nightly(
                    settings.warehouse, run_date=day, tickers=tuple(universe_frame["ticker"]),
                    lookback_sessions=settings.lookback_days, history_sessions=settings.history_sessions,
                )
            with progress.display() as show:
                fetch_and_load(
                    settings, windows, run_id=run_id, docs_dir=docs_dir, tally=tally, loaded_at=started_at,
                    bar=show.bar(f"nightly {day}: datasets", total=len(windows)), run_date_of=lambda _: day,
                )
            builds = tasks.build_marts(settings.warehouse, run_date=day, since=build_since(tally.first_changed, day), run_id=run_id, docs_dir=docs_dir)
            tally.add_builds(builds)
            top = tasks.headline(settings.warehouse, run_date=day)
            report = tasks.morning_brief(settings.warehouse, run_date=day, folder=str(settings.artifacts_folder))
        except Exception as exc:
            fail_run(settings.warehouse, exc, run_id=run_id, docs_dir=docs_dir, tally=tally,
                     when_blocked="nothing built was published (yesterday's marts stand)")
            raise
        problems = [] if report else ["the morning brief could not be written (see the run's log)"]
        if retry is not None:
            problems += _not_fetched_again(retry.retried, tally.tried)
        outcome = finish_run(
            settings.warehouse, run_id=run_id, docs_dir=docs_dir, tally=tally, problems=problems,
            retry_hint=f"`bellwether run --date {day} --retry-failed` fetches the retryable ones again",
        )
        tasks.maintain_lake(settings.warehouse)

    summary = base | outcome | {
        "warehouse": settings.warehouse, "loads": tally.loads, "rejects": tally.rejects,
        "failed": tally.failed, "notes": tally.notes, "headline": top, "report": report,
        "builds": [{"relation": b.relation, "mode": b.mode, "rows": b.rows, "rows_written": b.rows_written} for b in builds],
    } | ({"retry": retry.describe()} if retry is not None else {})
    create_markdown_artifact(key="nightly-summary", markdown=summary_markdown(summary), description=f"Bellwether nightly {day}")
    return summary
