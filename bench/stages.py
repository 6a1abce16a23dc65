"""One benchmark stage per process: `python -m bench.stages STAGE WORKDIR RESULT_JSON`.

Each stage starts from a warehouse the orchestrator (bench/run.py) prepared, times only the
work it names, and writes its figures to RESULT_JSON. Running each in its own process gives
each its own peak RSS (the orchestrator reads it with os.wait4). The storage measured is
BELLWETHER_BENCH_STORAGE: `ducklake` (the default warehouse: SQLite catalog and Parquet files)
or `duckdb` (one DuckDB file).

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
- readers: a reader process asks the morning's questions again and again while a night is
  loaded and built: how long each answer took, and how many were refused.
- nights: (DuckLake) `BELLWETHER_BENCH_NIGHTS` nights in a row as the nightly writes them
  (loads, incremental build, publication), then the lake maintenance: files per table, the
  morning's questions before and after, and what maintenance took.
- live_nightly_default, live_nightly_tuned: the nightly flow on `--source live` for the next
  session, the 500 tickers served by the fake Yahoo market (tests/fakes/market.py: latency,
  429s, timeouts, delisted and broken tickers; CBOE's statistics by the fake CBOE), with
  Bellwether's default settings or the tuned ones (`LIVE_SETTINGS`): the flow's wall time, the
  requests made, the retries among them, and which tickers failed.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.data import BenchMarket
from flows.tally import Tally
from transforms import plan as plans
from transforms import runner
from warehouse import audit, checks, lake, load
from warehouse.connect import reader, writer
from warehouse.target import parse

LOADED, BUILT = "base-loaded", "base-built"
RUN_ID = "bench"
STORAGE_ENV, STORAGES = "BELLWETHER_BENCH_STORAGE", ("ducklake", "duckdb")
NIGHTS_ENV = "BELLWETHER_BENCH_NIGHTS"
# The morning's questions: the latest briefs, a year of SPY against its averages, the cohorts'
# valuation history, the week's biggest movers.
MORNING = (
    "select * from marts.market_brief order by trade_date desc limit 5",
    "select trade_date, close, sma_50, sma_200 from marts.technicals_daily where ticker = 'SPY' order by trade_date desc limit 252",
    "select trade_date, cohort, aggregate_forward_pe from marts.valuation_cohorts order by trade_date",
    "select ticker, trade_date, return_1d_pct from marts.market_moves "
    "where trade_date >= (select max(trade_date) - 7 from marts.market_moves) order by abs(return_1d_pct) desc limit 20",
)


def storage() -> str:
    value = os.environ.get(STORAGE_ENV, STORAGES[0])
    if value not in STORAGES:
        raise SystemExit(f"{STORAGE_ENV}={value!r}: choose one of {', '.join(STORAGES)}")
    return value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def target(work: Path, name: str) -> str:
    """The warehouse `name` in `work` on the storage measured. The single file is not named
    `name.duckdb`: a lake opened beside a DuckDB file of its own name is refused as a warehouse
    not yet migrated, and both storages' stages share one work folder."""
    return f"ducklake:sqlite:{work / name}.sqlite" if storage() == "ducklake" else str(work / f"{name}-file.duckdb")


def remove(t: str) -> None:
    path = parse(t).path
    for suffix in ("", ".wal", "-wal", "-shm", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    if parse(t).is_lake:
        shutil.rmtree(parse(t).default_data_path, ignore_errors=True)


def exists(t: str) -> bool:
    return parse(t).path.exists()


def copy_base(work: Path, base: str, name: str) -> str:
    """A fresh copy of the prepared warehouse `base` as `name`."""
    src, dst = target(work, base), target(work, name)
    remove(dst)
    if parse(src).is_lake:
        lake.copy_sqlite_lake(parse(src), parse(dst).path)
    else:
        shutil.copyfile(parse(src).path, parse(dst).path)
    # The copy's writes go to disk now, not during the stage's timed work.
    os.sync()
    return dst


def rename(work: Path, src: str, dst: str) -> None:
    """Keep a stage's warehouse as a prepared base (the lake: its catalog and its files)."""
    a, b = target(work, src), target(work, dst)
    remove(b)
    shutil.move(parse(a).path, parse(b).path)
    if parse(a).is_lake and Path(parse(a).default_data_path).exists():
        shutil.move(parse(a).default_data_path, parse(b).default_data_path)


def size_mib(t: str) -> float:
    """The warehouse on disk: the DuckDB file, or the lake's catalog and its data files."""
    path = parse(t).path
    total = path.stat().st_size
    if parse(t).is_lake:
        total += sum(f.stat().st_size for f in Path(parse(t).default_data_path).rglob("*") if f.is_file())
    return round(total / 2**20, 1)


def flush(con) -> None:
    """Make a stage's writes durable before the clock stops: a DuckDB file checkpoints; a
    DuckLake's commits are already in its files (its CHECKPOINT is its maintenance)."""
    if not lake.is_lake(con):
        con.execute("checkpoint")


def _builds(results) -> dict:
    return {r.relation: {"mode": r.mode, "rows": r.rows, "rows_written": r.rows_written, "seconds": round(r.seconds, 3)} for r in results}


def stage_load(work: Path, market: BenchMarket) -> dict:
    path = target(work, "load")
    remove(path)
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
        "file_mib": size_mib(path),
    }


def stage_full_build(work: Path, market: BenchMarket) -> dict:
    path = copy_base(work, LOADED, "full")
    with writer(path, holder="bench full build") as con:
        began = time.perf_counter()
        results = runner.build(con, run_date=market.history_end, since=None, full_refresh=True)
        seconds = time.perf_counter() - began
        # The marts now cover every load, the universe's included: no later night owes a rebuild.
        audit.mark_built(con, loaded_before=_now(), at=_now())
        _publish(con, "bench-base")  # what readers of the prepared warehouse see
    return {"seconds": seconds, "models": _builds(results), "file_mib": size_mib(path)}


def _publish(con, run_id: str) -> int | None:
    audit.start_run(con, run_id=run_id, flow="bench", parameters={}, started_at=_now())
    return audit.finish_run(con, run_id=run_id, status=audit.SUCCEEDED, ended_at=_now())


def _load_night(con, market: BenchMarket, before_load=None, day: dt.date | None = None) -> tuple[Tally, dt.date]:
    """Plan, fetch and load a night (default: the next session) as the nightly does (tickers
    known: a 5-session look-back); `before_load(window, batch)` runs before each load. The
    loads' tally, and where the nightly's build would start."""
    from sources.registry import fetch

    day = day or market.next_session
    windows = plans.plan_nightly(
        con, run_date=day, tickers=tuple(market.source.tickers), lookback_sessions=5, history_sessions=756
    )
    tally = Tally()
    for w in windows:
        batch = fetch(market.source, w.dataset, w.tickers, w.start, w.end)
        if before_load is not None:
            before_load(w, batch)
        result = load.load_batch(con, batch, source="sample", run_id=RUN_ID, loaded_at=_now(), window=(w.start, w.end))
        tally.add(w, batch, result)
    return tally, plans.build_since(tally.first_changed, day)


def stage_incremental(work: Path, market: BenchMarket) -> dict:
    path = copy_base(work, BUILT, "incremental")
    with writer(path, holder="bench incremental") as con:
        tally, since = _load_night(con, market)
        began = time.perf_counter()
        results = runner.build(con, run_date=market.next_session, since=since)
        seconds = time.perf_counter() - began
    return {"seconds": seconds, "since": str(since), "run_date": str(market.next_session), "loaded": tally.loads, "models": _builds(results)}


def stage_checks(work: Path, market: BenchMarket) -> dict:
    path = copy_base(work, BUILT, "checks")
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
    path = copy_base(work, BUILT, "full_checks")
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
    from bench import peer, polars_peer

    path = copy_base(work, BUILT, "peer")
    with writer(path, holder="bench peer") as con:
        # All start warm (the inputs read once) and end with their tables written, and each
        # starts with nothing of the one before still being written to disk (os.sync, not
        # timed): the side timed after another does not pay for the other's ~400 MB write.
        con.execute("select sum(close), sum(adj_close), sum(volume) from staging.stg_prices_daily").fetchall()
        con.execute("select sum(ratio) from staging.stg_putcall_daily").fetchall()
        seconds = {}
        for side, build in (
            ("sql", lambda: runner.build(con, run_date=market.history_end, since=None, full_refresh=True, select=list(PEER_TABLES))),
            ("pandas", lambda: peer.build(con)),
            ("polars", lambda: polars_peer.build(con)),
        ):
            os.sync()
            began = time.perf_counter()
            build()
            flush(con)
            seconds[side] = time.perf_counter() - began
        sql_s, pandas_s, polars_s = seconds["sql"], seconds["pandas"], seconds["polars"]
        compared = {f"{schema}.{name}": peer.compare(con, name, key, peer=schema)
                    for schema in ("pandas_peer", "polars_peer") for name, key in PEER_TABLES.items()}
    return {"seconds": pandas_s, "sql_s": sql_s, "pandas_s": pandas_s, "polars_s": polars_s, "ratio": pandas_s / sql_s,
            "polars_ratio": polars_s / sql_s, "compared": compared}


STAGES = {
    "load": stage_load,
    "full_build": stage_full_build,
    "incremental": stage_incremental,
    "checks": stage_checks,
    "full_checks": stage_full_checks,
    "peer": stage_peer,
}


def _ask(con) -> float:
    began = time.perf_counter()
    for question in MORNING:
        con.execute(question).fetchall()
    return time.perf_counter() - began


def reader_loop(path: str, out: Path) -> None:
    """The reader of `stage_readers`, in its own process: the morning's questions, asked again
    and again (a new connection each time, as `bellwether query` does) until `out`.stop
    exists; every attempt to `out` with its wall-clock start and end."""
    from warehouse.connect import WarehouseBusy

    attempts, stop = [], Path(str(out) + ".stop")
    while not stop.exists():
        began = time.time()
        try:
            with reader(path, wait_s=0) as con:
                _ask(con)
            outcome = "ok"
        except WarehouseBusy:
            outcome = "refused"
        attempts.append((began, time.time(), outcome))
        if len(attempts) == 1:
            Path(str(out) + ".ready").touch()
        time.sleep(0.2)
    out.write_text(json.dumps(attempts))


def stage_readers(work: Path, market: BenchMarket) -> dict:
    """A reader asks the morning's questions in a loop while the next night is loaded, built
    and published: the answers that came during the write, how long they took, the refusals."""
    path = copy_base(work, BUILT, "readers")
    out = work / "readers-attempts.json"
    for f in (out, Path(str(out) + ".stop"), Path(str(out) + ".ready")):
        f.unlink(missing_ok=True)
    child = subprocess.Popen([sys.executable, "-m", "bench.stages", "_reader", path, str(out)], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while not Path(str(out) + ".ready").exists():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the reader process did not get a first answer")
            time.sleep(0.1)
        began = time.time()
        with writer(path, holder="bench readers") as con:
            audit.start_run(con, run_id="bench-night", flow="bench", parameters={}, started_at=_now())
            _, since = _load_night(con, market)
            runner.build(con, run_date=market.next_session, since=since)
            audit.finish_run(con, run_id="bench-night", status=audit.SUCCEEDED, ended_at=_now())
        ended = time.time()
        time.sleep(1.0)
    finally:
        Path(str(out) + ".stop").touch()
        child.wait(timeout=120)
    attempts = json.loads(out.read_text())
    during = [(b, e, o) for b, e, o in attempts if b < ended and e > began]
    ok = sorted(e - b for b, e, o in during if o == "ok")
    refused = [a for a in during if a[2] == "refused"]

    def pct(q: float) -> float | None:
        return round(1000 * ok[min(len(ok) - 1, int(q * len(ok)))], 1) if ok else None

    return {
        "seconds": ended - began, "write_s": round(ended - began, 2), "attempts_during_write": len(during),
        "answered": len(ok), "refused": len(refused), "p50_ms": pct(0.5), "p95_ms": pct(0.95),
        "max_ms": round(1000 * ok[-1], 1) if ok else None, "questions": len(MORNING),
    }


def _morning_s(path: str, repeats: int = 3) -> float:
    """The morning's questions on a fresh reader: the median of `repeats` goes, in seconds."""
    times = []
    for _ in range(repeats):
        with reader(path) as con:
            times.append(_ask(con))
    return statistics.median(times)


def stage_nights(work: Path, market: BenchMarket) -> dict:
    """Nights in a row as the nightly writes them, then the lake's maintenance (DuckLake only:
    a DuckDB file has no small files to merge)."""
    if storage() != "ducklake":
        return {"seconds": 0.0, "skipped": "maintenance is for a DuckLake warehouse"}
    from sources import calendar

    n = int(os.environ.get(NIGHTS_ENV, "30"))
    path = copy_base(work, BUILT, "nights")
    days = calendar.sessions(market.history_end + dt.timedelta(days=1), market.history_end + dt.timedelta(days=3 * n))[:n]
    per_night = []
    for i, day in enumerate(days):
        began = time.perf_counter()
        with writer(path, holder="bench nights") as con:
            run_id = f"bench-night-{i}"
            audit.start_run(con, run_id=run_id, flow="bench", parameters={}, started_at=_now())
            _, since = _load_night(con, market, day=day)
            runner.build(con, run_date=day, since=since)
            audit.finish_run(con, run_id=run_id, status=audit.SUCCEEDED, ended_at=_now())
        per_night.append(time.perf_counter() - began)

    def files(con) -> dict:
        counts = lake.file_counts(con)
        return {"files": sum(c["files"] + c["delete_files"] for c in counts.values()),
                "most_in_a_table": max(c["files"] + c["delete_files"] for c in counts.values())}

    with reader(path) as con:
        before = files(con)
    morning_before = _morning_s(path)
    size_before = size_mib(path)
    began = time.perf_counter()
    with writer(path, holder="bench maintain") as con:
        # As if a day later: past the grace period, so the files it frees are deleted too.
        done = lake.maintain(con, now=_now() + lake.DEFAULT_GRACE + dt.timedelta(hours=1))
    maintain_s = time.perf_counter() - began
    with reader(path) as con:
        after = files(con)
    return {
        "seconds": maintain_s, "nights": n, "night_s_first5": round(statistics.median(per_night[:5]), 2),
        "night_s_last5": round(statistics.median(per_night[-5:]), 2), "files_before": before, "files_after": after,
        "morning_s_before": round(morning_before, 3), "morning_s_after": round(_morning_s(path), 3),
        "maintain_s": round(maintain_s, 2), "maintain": done, "size_mib_before": size_before, "size_mib_after": size_mib(path),
    }


# The fake Yahoo of the live stages: each request waits 50-300 ms; 2% of data requests are
# rate limited and 1% hang until the client's timeout; 3 tickers are delisted and 2 answer HTTP
# 500 to everything. Its shares do not grow with concurrency, unlike a real Yahoo's.
LIVE_MARKET = {"latency_s": (0.05, 0.3), "rate_limit_share": 0.02, "timeout_share": 0.01, "timeout_wait_s": None, "seed": 15}
LIVE_FAILING = {"n_delisted": 3, "n_broken": 2}
# Bellwether's settings for a live night: its defaults, and the ones measured best for 500
# tickers against the fake (README, "The live sources").
LIVE_SETTINGS = {
    "default": {},
    "tuned": {
        "BELLWETHER_YAHOO_MAX_WORKERS": "16",
        "BELLWETHER_YAHOO_BATCH_SIZE": "500",
        "BELLWETHER_YAHOO_PAUSE_S": "0",
        "BELLWETHER_YAHOO_TIMEOUT_S": "3",
        "BELLWETHER_RETRY_BASE_DELAY_S": "0.25",
        "BELLWETHER_RETRY_MAX_DELAY_S": "4",
    },
}


def _fresh_yfinance(cache_dir: Path) -> str:
    """yfinance as on a machine that ran last night: its caches (the persisted Yahoo cookie, each
    ticker's timezone) in `cache_dir`, and no state left from earlier in this process. Returns
    the cache folder it used before."""
    from yfinance import base, cache
    from yfinance.data import SingletonMeta, YfData

    before = cache._TzDBManager.get_location()
    SingletonMeta._instances.pop(YfData, None)
    YfData.cache_get.cache_clear()
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache.set_cache_location(str(cache_dir))
    base._tz_info_fetch_ctr = 0
    return before


def stage_live_nightly(work: Path, market: BenchMarket, variant: str, *, fake: dict | None = None) -> dict:
    """The nightly for the next session through the fake Yahoo market, with the settings of
    `variant`; the flow's wall time (the fake's answers are generated before the clock starts)."""
    import functools

    import sources.live as live
    from flows.nightly import nightly
    from sources import calendar, registry
    from tests.fakes.cboe import FakeCboeSession
    from tests.fakes.market import DATA_ROUTES, FakeMarket, pick_failing
    from tests.fakes.yahoo import FakeYahooSession
    from yfinance import cache

    day = market.next_session
    delisted, broken = pick_failing(market.source.universe, **LIVE_FAILING)
    yahoo = FakeMarket(market.source, today=day, delisted=delisted, broken=broken, **(fake if fake is not None else LIVE_MARKET))
    yahoo.warm()
    session = FakeYahooSession(market=yahoo)
    lookback = calendar.sessions_back(day, 5)
    cboe = FakeCboeSession(yahoo.cboe_bodies(lookback, day))
    after_close = calendar.session_close(day) + dt.timedelta(hours=2)
    warehouse = copy_base(work, BUILT, f"live-{variant}")
    universe = market.write_universe(work / f"universe-{market.n_tickers}.csv")
    previous_cache = _fresh_yfinance(work / f"yfinance-{variant}")
    for t in market.source.tickers:  # yesterday's night looked their timezones up
        cache.get_tz_cache().store(t, calendar.MARKET_TZ)
    real_make = live.make_live_source
    saved_env = {k: os.environ.get(k) for k in LIVE_SETTINGS[variant]}
    live.make_live_source = functools.partial(real_make, yahoo_session=session, cboe_session=cboe, now=lambda: after_close)
    registry.make_source.cache_clear()
    os.environ.update(LIVE_SETTINGS[variant])
    try:
        began = time.perf_counter()
        summary = nightly(run_date=day, source="live", warehouse=warehouse, universe=str(universe))
        seconds = time.perf_counter() - began
    finally:
        live.make_live_source = real_make
        registry.make_source.cache_clear()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        cache.set_cache_location(previous_cache)
    trail = list(session.trail)
    failed: dict[str, dict[str, list[str]]] = {}
    for f in summary.get("failed", []):
        kind = "retryable" if f["retryable"] else "delisted"
        failed.setdefault(f["dataset"], {}).setdefault(kind, []).append(f["ticker"])
    failures = collections.Counter(str(c.status) for c in trail if c.route in DATA_ROUTES and c.status != 200)
    return {
        "seconds": seconds, "variant": variant, "settings": LIVE_SETTINGS[variant], "status": summary["status"],
        "requests": len(trail), "retries": FakeMarket.retries(trail),
        "requests_by_route": dict(collections.Counter(c.route for c in trail)),
        "failed_answers": dict(sorted(failures.items())), "failed": {d: {k: sorted(v) for k, v in kinds.items()} for d, kinds in failed.items()},
        "delisted": sorted(delisted), "broken": sorted(broken),
        "loaded": {ld["table"]: ld["inserted"] + ld["updated"] + ld["unchanged"] for ld in summary["loads"]},
    }


STAGES["readers"] = stage_readers
STAGES["nights"] = stage_nights
STAGES["live_nightly_default"] = lambda work, market: stage_live_nightly(work, market, "default")
STAGES["live_nightly_tuned"] = lambda work, market: stage_live_nightly(work, market, "tuned")


def main(argv: list[str]) -> int:
    name, work, out = argv[1], Path(argv[2]), Path(argv[3])
    if name == "_reader":
        reader_loop(argv[2], out)
        return 0
    market = BenchMarket.from_env()
    result = STAGES[name](work, market)
    out.write_text(json.dumps(result, default=str, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
