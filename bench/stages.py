"""One benchmark stage per process: `python -m bench.stages STAGE WORKDIR RESULT_JSON`.

Each stage starts from a warehouse file the orchestrator (bench/run.py) prepared, times only
the work it names, and writes its figures to RESULT_JSON. Running each in its own process
gives each its own peak RSS (the orchestrator reads it with os.wait4).

Stages:
- load: every history chunk into a new warehouse through `warehouse.load.load_batch` (keyed
  upserts, lineage, audit rows; one transaction per chunk). Generating the chunk is not timed.
- full_build: every staging view and mart, full refresh (`transforms.runner.build`), no checks.
- incremental: the nightly's incremental build after one new session: plan the night as the
  nightly does, fetch and load it (not timed), then build from the earliest change (timed).
- checks: the checks on one night's batches (sql/raw/*.checks.yml, before loading) and on the
  marts the incremental build rebuilt (after each model), Great Expectations included.
- peer: marts.technicals_daily and marts.putcall_sentiment built by the SQL runner and by the
  pandas peer (bench/peer.py) from the same warehouse, checked equal.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from bench.data import BenchMarket
from flows.tally import Tally
from transforms import plan as plans
from transforms import runner
from warehouse import audit, checks, load
from warehouse.connect import writer

LOADED, BUILT = "base-loaded.duckdb", "base-built.duckdb"
RUN_ID = "bench"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def copy_base(work: Path, base: str, name: str) -> Path:
    target = work / name
    for suffix in ("", ".wal"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(work / base, target)
    return target


def _builds(results) -> dict:
    return {r.relation: {"mode": r.mode, "rows": r.rows, "rows_written": r.rows_written, "seconds": round(r.seconds, 3)} for r in results}


def stage_load(work: Path, market: BenchMarket) -> dict:
    path = work / "load.duckdb"
    path.unlink(missing_ok=True)
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}
    with writer(path, holder="bench load") as con:
        load.load_universe(con, market.source.universe, source="sample", run_id=RUN_ID, loaded_at=_now())
        for chunk, batch in market.batches():
            began = time.perf_counter()
            result = load.load_batch(
                con, batch, source="sample", run_id=RUN_ID, loaded_at=_now(), window=(chunk.start, chunk.end)
            )
            seconds[chunk.dataset] = seconds.get(chunk.dataset, 0.0) + time.perf_counter() - began
            if result.inserted != batch.rows:
                raise RuntimeError(f"{chunk}: {batch.rows} rows delivered, {result.inserted} inserted")
            rows[chunk.dataset] = rows.get(chunk.dataset, 0) + result.inserted
    total_rows, total_s = sum(rows.values()), sum(seconds.values())
    return {
        "seconds": total_s, "rows": total_rows, "rows_per_s": total_rows / total_s,
        "by_dataset": {d: {"rows": rows[d], "seconds": round(seconds[d], 3), "rows_per_s": round(rows[d] / seconds[d])} for d in rows},
        "file_mib": round(path.stat().st_size / 2**20, 1),
    }


def stage_full_build(work: Path, market: BenchMarket) -> dict:
    path = copy_base(work, LOADED, "full.duckdb")
    with writer(path, holder="bench full build") as con:
        began = time.perf_counter()
        results = runner.build(con, run_date=market.history_end, since=None, full_refresh=True)
        seconds = time.perf_counter() - began
        # The marts now cover every load, the universe's included: no later night owes a rebuild.
        audit.mark_built(con, loaded_before=_now(), at=_now())
    return {"seconds": seconds, "models": _builds(results), "file_mib": round(path.stat().st_size / 2**20, 1)}


def _load_night(con, market: BenchMarket, before_load=None) -> tuple[Tally, dt.date]:
    """Plan, fetch and load the next session as the nightly does (tickers known: a 5-session
    look-back); `before_load(window, batch)` runs before each load. The loads' tally, and where
    the nightly's build would start."""
    from sources.registry import fetch

    windows = plans.plan_nightly(
        con, run_date=market.next_session, tickers=tuple(market.source.tickers), lookback_sessions=5, history_sessions=756
    )
    tally = Tally()
    for w in windows:
        batch = fetch(market.source, w.dataset, w.tickers, w.start, w.end)
        if before_load is not None:
            before_load(w, batch)
        result = load.load_batch(con, batch, source="sample", run_id=RUN_ID, loaded_at=_now(), window=(w.start, w.end))
        tally.add(w, batch, result)
    return tally, plans.build_since(windows, tally.first_changed, market.next_session)


def stage_incremental(work: Path, market: BenchMarket) -> dict:
    path = copy_base(work, BUILT, "incremental.duckdb")
    with writer(path, holder="bench incremental") as con:
        tally, since = _load_night(con, market)
        began = time.perf_counter()
        results = runner.build(con, run_date=market.next_session, since=since)
        seconds = time.perf_counter() - began
    return {"seconds": seconds, "since": str(since), "run_date": str(market.next_session), "loaded": tally.loads, "models": _builds(results)}


def stage_checks(work: Path, market: BenchMarket) -> dict:
    path = copy_base(work, BUILT, "checks.duckdb")
    files = checks.discover_checks()
    expectations = checks.Expectations()
    began = time.perf_counter()
    expectations._context()  # Great Expectations' context: created once per run, timed apart
    context_s = time.perf_counter() - began
    with writer(path, holder="bench checks") as con:
        raw = {"seconds": 0.0, "checks": 0, "rows": 0}

        def check(w, batch) -> None:
            began = time.perf_counter()
            outcome = checks.check_batch(
                con, batch.frame, files.get(f"raw.{w.dataset}"), run_date=market.next_session,
                lineage=batch.lineage_frame(), batch_ref=w.dataset, expectations=expectations,
            )
            raw["seconds"] += time.perf_counter() - began
            raw["checks"] += len(outcome.results)
            raw["rows"] += batch.rows
            if len(outcome.refused):
                raise RuntimeError(f"{w.dataset}: the night's batch failed its checks: {outcome.results}")

        _, since = _load_night(con, market, before_load=check)
        collected: list[checks.CheckResult] = []
        hook = checks.build_hook(files, since=since, run_date=market.next_session, expectations=expectations, collected=collected)
        spent = 0.0

        def timed(con, model, result) -> None:
            nonlocal spent
            began = time.perf_counter()
            try:
                hook(con, model, result)
            finally:
                spent += time.perf_counter() - began

        runner.build(con, run_date=market.next_session, since=since, after_model=timed)
    failed = [f"{r.table}.{r.check}" for r in collected if not r.success]
    return {
        "seconds": raw["seconds"] + spent, "raw_s": raw["seconds"], "marts_s": spent, "context_s": context_s,
        "raw_checks": raw["checks"], "raw_rows": raw["rows"], "mart_checks": len(collected), "failed": failed,
    }


PEER_TABLES = {"technicals_daily": ["ticker", "trade_date"], "putcall_sentiment": ["trade_date", "scope"]}


def stage_full_checks(work: Path, market: BenchMarket) -> dict:
    """Every mart's build checks over its whole history: what a night that rebuilds everything
    (a changed universe, `build --full-refresh`) checks before it publishes."""
    path = copy_base(work, BUILT, "full_checks.duckdb")
    files = {rel: cf for rel, cf in checks.discover_checks().items() if rel.startswith("marts.")}
    expectations = checks.Expectations()
    expectations._context()
    results: list[checks.CheckResult] = []
    by_table: dict[str, float] = {}
    with writer(path, holder="bench full checks") as con:
        began = time.perf_counter()
        for rel, cf in files.items():
            t0 = time.perf_counter()
            results += checks.check_built(
                con, cf, start_date=checks.FULL_BUILD_START, run_date=market.history_end, expectations=expectations
            )
            by_table[rel] = round(time.perf_counter() - t0, 3)
        seconds = time.perf_counter() - began
    return {"seconds": seconds, "checks": len(results), "by_table": by_table,
            "failed": [f"{r.table}.{r.check}" for r in results if not r.success]}


def stage_peer(work: Path, market: BenchMarket) -> dict:
    from bench import peer

    path = copy_base(work, BUILT, "peer.duckdb")
    with writer(path, holder="bench peer") as con:
        # Both start warm (the inputs read once) and both end with their tables on disk.
        con.execute("select sum(close), sum(adj_close), sum(volume) from staging.stg_prices_daily").fetchall()
        con.execute("select sum(ratio) from staging.stg_putcall_daily").fetchall()
        began = time.perf_counter()
        runner.build(con, run_date=market.history_end, since=None, full_refresh=True, select=list(PEER_TABLES))
        con.execute("checkpoint")
        sql_s = time.perf_counter() - began
        began = time.perf_counter()
        peer.build(con)
        con.execute("checkpoint")
        pandas_s = time.perf_counter() - began
        compared = {name: peer.compare(con, name, key) for name, key in PEER_TABLES.items()}
    return {"seconds": pandas_s, "sql_s": sql_s, "pandas_s": pandas_s, "ratio": pandas_s / sql_s, "compared": compared}


STAGES = {
    "load": stage_load,
    "full_build": stage_full_build,
    "incremental": stage_incremental,
    "checks": stage_checks,
    "full_checks": stage_full_checks,
    "peer": stage_peer,
}


def main(argv: list[str]) -> int:
    name, work, out = argv[1], Path(argv[2]), Path(argv[3])
    market = BenchMarket.from_env()
    result = STAGES[name](work, market)
    out.write_text(json.dumps(result, default=str, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
