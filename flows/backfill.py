"""The backfill flow: load a range of past sessions by hand, in chunks, resumably.

Run it with `bellwether backfill --start 2024-01-01 --end 2024-12-31`, from the Prefect UI, or
`prefect deployment run 'backfill/backfill' --param start=2024-01-01 --param end=2024-12-31`
against `bellwether serve`.

Parameters:
- start, end: the calendar range (end defaults to the last completed NYSE session).
- source, path: `sample`, `files` (with the folder) or `live`.
- tickers: default every ticker of the universe file (a list, or "SPY,NVDA").
- datasets: default every dataset the source can serve for past dates.
- chunk: `week`, `month` (default), `quarter`, `year`, or a number of sessions.
- force: load chunks again that an earlier backfill from the same source already loaded.
- dry_run: plan only: print the chunks, tickers and what raw already holds; change nothing.
- lock_wait_s: how long to wait for another writer (the nightly run) before failing.
- build: rebuild the marts after the loads (default). With False the loaded chunks stay owed a
  build, and the next build (the nightly run's, a later backfill's, `bellwether build`) reaches
  back to them: useful to run several backfills and build once.

How it works: the range is split into chunks over NYSE sessions, one per dataset. Each chunk is
fetched (fetches fan out on the task runner), then checked and loaded by the single writer in
one transaction that also records the chunk in audit.backfill_chunks. Loads are keyed upserts,
so a chunk loaded twice changes nothing. After a crash or a kill, the same backfill run again
skips the recorded chunks (unless `force`) and loads the rest. Tickers that failed to fetch are
left out of their chunk's record, so a re-run fetches them again. When the loads are done, the
marts are rebuilt once, incrementally, from the earliest chunk loaded (or owed by a killed run).

Datasets a source serves only "as of now" (Yahoo's option chains and valuation fields) are
refused for past dates: asking for them explicitly is an error that says why and how to load
saved snapshots with the `files` source; by default they are skipped with a note.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows import progress, tasks
from flows.settings import default_task_runner, get_settings
from flows.tally import Tally, fail_run, fetch_and_load, finish_run
from flows.writers import writer_slot
from sources import calendar, registry
from sources.base import backfill_refusal, load_universe
from sources.contract import DATASETS, ContractError
from transforms import plan as plans
from transforms.summary import backfill_markdown
from warehouse.audit import new_run_id
from warehouse.checks import data_docs_dir
from warehouse.connect import WarehouseMissing, reader, run_lock

BACKFILL_DATASETS = ("prices_daily", "putcall_daily", "fundamentals_quarterly", "option_quotes", "valuation_snapshots")


class BackfillError(ValueError):
    """A backfill asked for something that cannot be done (bad range, dataset, ticker)."""


def _names(value: list[str] | str | None) -> list[str] | None:
    """A list parameter given as a list or as "A,B" (how `--param` passes it on a command line)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    out = [str(v).strip() for v in items if str(v).strip()]
    return out or None


def source_ref(source: str, path: str | None) -> str:
    """What identifies a source's data for resuming: its name, and the folder for `files`."""
    from pathlib import Path

    return f"files:{Path(path).resolve()}" if source == "files" and path else source


def resolve(
    *, start: dt.date, end: dt.date | None, source, universe_path: str,
    tickers: list[str] | str | None, datasets: list[str] | str | None, now: dt.datetime,
) -> tuple[dt.date, tuple[str, ...], tuple[str, ...], dict[str, str], list[str]]:
    """Validate a backfill's parameters: (end, tickers, datasets, refused datasets, notes)."""
    notes = []
    last = calendar.last_completed_session(now)
    end = end or last
    if end > last:
        notes.append(f"end {end} is after the last completed session {last}: the backfill stops at {last}")
        end = last
    if end < start:
        raise BackfillError(f"backfill end {end} is before its start {start}")
    asked = _names(datasets)
    unknown = [d for d in asked or [] if d not in DATASETS]
    if unknown:
        raise BackfillError(f"unknown dataset(s) {', '.join(unknown)}: choose from {', '.join(BACKFILL_DATASETS)}")
    chosen = tuple(asked or BACKFILL_DATASETS)
    refused = {d: r for d in chosen if (r := backfill_refusal(source, d))}
    if asked and refused:
        raise BackfillError(" ".join(f"{d}: {r}." for d, r in refused.items()))
    for d, r in refused.items():
        notes.append(f"{d} skipped: {r}")
    universe = load_universe(universe_path)
    known = tuple(universe["ticker"])
    wanted = tuple(t.upper() for t in _names(tickers) or known)
    missing = [t for t in wanted if t not in known]
    if missing:
        raise BackfillError(
            f"ticker(s) {', '.join(missing)} are not in the universe file {universe_path}: add them there first "
            "(the marts only know the universe's tickers)"
        )
    return end, wanted, chosen, refused, notes


@dataclasses.dataclass(frozen=True)
class Job:
    """A validated backfill: what to plan, what to record as its parameters."""

    end: dt.date
    source_ref: str
    plan_args: dict
    parameters: dict
    notes: list[str]


def prepare(
    settings, *, start: dt.date, end: dt.date | None, tickers, datasets, chunk: str | int, force: bool, now: dt.datetime,
) -> Job:
    """Validate a backfill before anything runs; BackfillError names what is wrong."""
    src = registry.make_source(settings.source, settings.path, settings.universe, settings.live_config(), settings.sample_start)
    try:
        chunk = plans.parse_chunk(chunk)
        end, wanted, chosen, refused, notes = resolve(
            start=start, end=end, source=src, universe_path=settings.universe,
            tickers=tickers, datasets=datasets, now=now,
        )
        plans.chunk_windows(start, end, chunk)  # a range without a session is refused here
    except (ValueError, ContractError) as exc:
        raise BackfillError(str(exc)) from None
    ref = source_ref(settings.source, settings.path)
    plan_args = dict(start=start, end=end, datasets=chosen, tickers=wanted, chunk=chunk, source_ref=ref, refused=refused, force=force)
    parameters = {
        "start": str(start), "end": str(end), "source": settings.source, "path": settings.path,
        "tickers": list(wanted), "datasets": list(chosen), "chunk": str(chunk), "force": force, "universe": settings.universe,
    }
    return Job(end, ref, plan_args, parameters, notes)


def dry_run_summary(settings, job: Job) -> dict:
    """The plan against the warehouse as it is, read-only: nothing is written anywhere."""
    chunks = _read_plan(settings.warehouse, **job.plan_args)
    counts = {st: sum(c.status == st for c in chunks) for st in (plans.TODO, plans.DONE, plans.REFUSED)}
    message = (
        f"dry run: {counts[plans.TODO]} chunk(s) to load, {counts[plans.DONE]} already loaded by an earlier backfill, "
        f"{counts[plans.REFUSED]} refused; nothing was changed"
    )
    return {
        "status": "dry-run", "flow": "backfill", "source": settings.source, "warehouse": settings.warehouse,
        "parameters": job.parameters, "notes": job.notes, "plan": plan_table(chunks), "message": message,
    }


def plan_table(chunks: list[plans.BackfillChunk]) -> list[dict]:
    return [
        {
            "dataset": c.dataset, "start": str(c.start), "end": str(c.end), "sessions": c.sessions,
            "tickers": "market-wide" if c.tickers is None else len(c.tickers), "rows_present": c.rows_present,
            "status": c.status, "reason": c.reason,
        }
        for c in chunks
    ]


def _read_plan(warehouse: str, **kwargs) -> list[plans.BackfillChunk]:
    """Plan against a read-only connection (or none, before the warehouse exists): a dry run
    writes nothing, not even the schema."""
    try:
        with reader(warehouse) as con:
            return plans.plan_backfill(con, **kwargs)
    except WarehouseMissing:
        return plans.plan_backfill(None, **kwargs)


@flow(name="backfill", validate_parameters=True, task_runner=default_task_runner())
def backfill(
    start: dt.date,
    end: dt.date | None = None,
    source: str | None = None,
    path: str | None = None,
    tickers: list[str] | str | None = None,
    datasets: list[str] | str | None = None,
    chunk: str = "month",
    force: bool = False,
    dry_run: bool = False,
    warehouse: str | None = None,
    universe: str | None = None,
    lock_wait_s: float | None = None,
    build: bool = True,
) -> dict:
    settings = get_settings(source=source, path=path, warehouse=warehouse, universe=universe, lock_wait_s=lock_wait_s)
    logger = get_run_logger()
    started_at = dt.datetime.now(dt.UTC)
    job = prepare(settings, start=start, end=end, tickers=tickers, datasets=datasets, chunk=chunk, force=force, now=started_at)
    for note in job.notes:
        logger.warning(note)
    if dry_run:
        summary = dry_run_summary(settings, job)
        logger.info(summary["message"])
        return summary
    run_id = str(flow_run.id) if flow_run.id else new_run_id("backfill", started_at)
    plan_args, parameters, notes, ref, end = job.plan_args, job.parameters, job.notes, job.source_ref, job.end
    base = {"run_id": run_id, "flow": "backfill", "source": settings.source, "warehouse": settings.warehouse,
            "parameters": parameters, "notes": notes}
    tally = Tally(notes=list(notes))
    docs_dir = str(data_docs_dir(settings.artifacts_folder, run_id))
    builds = []
    with writer_slot(timeout_s=settings.lock_wait_s, holder=f"backfill run {run_id}", warehouse=settings.warehouse), \
            run_lock(settings.warehouse, holder=f"backfill run {run_id}", wait_s=settings.lock_wait_s):
        tasks.start_run(settings.warehouse, run_id=run_id, flow="backfill", parameters=parameters, started_at=started_at)
        try:
            tasks.load_universe_table(
                settings.warehouse, settings.universe, run_id=run_id, loaded_at=started_at, run_date=end, docs_dir=docs_dir,
            )
            chunks = tasks.plan_backfill(settings.warehouse, **plan_args)
            todo = [c for c in chunks if c.status == plans.TODO]
            windows = [plans.DatasetWindow(c.dataset, c.start, c.end, c.tickers) for c in todo]
            with progress.display() as show:
                fetch_and_load(
                    settings, windows, run_id=run_id, docs_dir=docs_dir, tally=tally, chunk_source=ref,
                    bar=show.bar(f"backfill {start}..{end}: chunks", total=len(windows)), run_date_of=lambda w: min(w.end, end),
                    on_loaded=lambda i, w, result: logger.info(
                        "chunk %d/%d loaded: %s %s..%s (%d rows written)", i, len(windows), w.dataset, w.start, w.end, result.written),
                )
            if not build:
                logger.info("build=False: the marts are not rebuilt now; the next nightly run or `bellwether build` owes it")
            elif todo or tasks.builds_owed(settings.warehouse):
                since = min((c.start for c in todo), default=None)
                builds = tasks.build_marts(settings.warehouse, run_date=None, since=since or end, run_id=run_id, docs_dir=docs_dir)
                tally.add_builds(builds)
            else:
                logger.info("every chunk was loaded before and the marts are built: nothing to do")
        except Exception as exc:
            fail_run(settings.warehouse, exc, run_id=run_id, docs_dir=docs_dir, tally=tally,
                     when_blocked="the marts were not rebuilt (loaded chunks stay recorded)")
            raise
        outcome = finish_run(
            settings.warehouse, run_id=run_id, docs_dir=docs_dir, tally=tally,
            retry_hint="the same backfill run again fetches just the failed tickers of their chunks",
        )
        tasks.maintain_lake(settings.warehouse)
    summary = base | outcome | {
        "plan": plan_table(chunks), "loads": tally.loads, "rejects": tally.rejects,
        "failed": tally.failed, "notes": tally.notes,
        "chunks_loaded": len(todo), "chunks_skipped": sum(c.status == plans.DONE for c in chunks),
        "builds": [{"relation": b.relation, "mode": b.mode, "rows": b.rows, "rows_written": b.rows_written} for b in builds],
    }
    create_markdown_artifact(key="backfill-summary", markdown=backfill_markdown(summary), description=f"Bellwether backfill {start}..{end}")
    return summary
