"""The backfill flow: real-file ranges, resuming after a kill, dry runs, refusals, Dask."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from flows.backfill import backfill
from sources import calendar
from tests.conftest import ROOT, bellwether_cmd, lake_catalog, lake_target
from tests.integration.conftest import RAW_TABLES, fetch, scalar
from warehouse.connect import LATEST, reader

LINEAGE = {"run_id", "loaded_at", "source"}
MARTS = (
    "technicals_daily", "support_levels", "market_caps_daily", "market_moves", "market_moves_cohorts", "cohort_sma_distance",
    "fundamentals_quarterly", "valuation_daily", "valuation_cohorts", "putcall_sentiment", "options_sentiment",
    "fear_greed_daily", "market_brief",
)


def content(path, tables=None) -> dict:
    """Every table's rows without lineage columns, sorted: equal when the data is the same,
    whichever run loaded it."""
    tables = tables or [f"raw.{t}" for t in RAW_TABLES] + [f"marts.{m}" for m in MARTS]
    out = {}
    with reader(path, at=LATEST) as con:
        for t in tables:
            schema_name, name = t.split(".")
            cols = [c for (c,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
                [schema_name, name],
            ).fetchall() if c not in LINEAGE]
            out[t] = con.execute(f"select {', '.join(cols)} from {t} order by all").fetchall()
    return out


def digest(target) -> str:
    """Everything a lake holds on disk: its catalog (and the catalog's write-ahead log) byte for
    byte, and the name and size of every data file."""
    catalog = lake_catalog(target)
    h = hashlib.sha256()
    for part in (catalog, catalog.with_name(catalog.name + "-wal")):
        if part.exists():
            h.update(part.read_bytes())
    files = catalog.with_name(catalog.stem + ".files")
    for f in sorted(files.rglob("*")) if files.exists() else []:
        h.update(f"{f.relative_to(files)} {f.stat().st_size}".encode())
    return h.hexdigest()


# -- real files ---------------------------------------------------------------------------------

REAL_DATASETS = ["prices_daily", "putcall_daily", "fundamentals_quarterly", "option_quotes"]  # no valuation files


@pytest.fixture(scope="session")  # session: survives other modules' tests running in between
def real_backfill(real_folder, tmp_path_factory):
    path = lake_target(tmp_path_factory.mktemp("backfill-real"))
    summary = backfill(
        start=dt.date(2024, 11, 1), end=dt.date(2025, 2, 7), source="files", path=str(real_folder), warehouse=str(path),
        tickers=["SPY", "QQQ", "XLK", "NVDA"], datasets=REAL_DATASETS,
    )
    return path, summary


def test_backfill_over_real_files_loads_every_chunk_and_builds_the_marts(real_backfill, real_warehouse):
    path, summary = real_backfill
    assert summary["status"] in ("succeeded", "partial"), summary["message"]
    # 4 months (Nov..Feb) x 4 datasets, each loaded and recorded once.
    assert summary["chunks_loaded"] == 16 and summary["chunks_skipped"] == 0
    chunks = fetch(path, "select dataset, chunk_start, chunk_end, built_at is not null from audit.backfill_chunks order by 1, 2")
    assert len(chunks) == 16 and all(built for *_, built in chunks)
    # Month chunks tile the range: each runs to the day before the next one's first session.
    assert [(c[1], c[2]) for c in chunks if c[0] == "prices_daily"] == [
        (dt.date(2024, 11, 1), dt.date(2024, 12, 1)),
        (dt.date(2024, 12, 2), dt.date(2025, 1, 1)), (dt.date(2025, 1, 2), dt.date(2025, 2, 2)),
        (dt.date(2025, 2, 3), dt.date(2025, 2, 7)),
    ]
    # Every NYSE session of the range has SPY's close (the files' Jan-9 closure row is not a session).
    sessions = calendar.sessions(dt.date(2024, 11, 1), dt.date(2025, 2, 7))
    assert fetch(path, "select trade_date from raw.prices_daily where ticker = 'SPY' order by 1") == [(d,) for d in sessions]
    # The same rows as the nightly path loaded from the same files (it ran up to 2025-02-03), to the last digit.
    window = "ticker in ('SPY', 'QQQ', 'XLK', 'NVDA') and trade_date between '2024-11-01' and '2025-02-03'"
    cols = "ticker, trade_date, open, high, low, close, adj_close, volume, dividend, split_ratio"
    assert fetch(path, f"select {cols} from raw.prices_daily where {window} order by all") == fetch(
        real_warehouse[0], f"select {cols} from raw.prices_daily where {window} order by all"
    )
    # Snapshot-only data is taken from the files: the NVDA chain of 2025-02-03.
    assert scalar(path, "select count(*) from raw.option_quotes where snapshot_date = '2025-02-03'") == 6533
    # The marts were built once over the range: SPY's 50-DMA on the eve of the selloff is the
    # figure the nightly path computes (596.55, 1.9% below the close).
    sma = "select round(sma_50, 4) from marts.technicals_daily where ticker = 'SPY' and trade_date = '2025-01-24'"
    assert scalar(path, sma) == scalar(real_warehouse[0], sma) == pytest.approx(596.55, abs=0.01)
    assert scalar(path, "select count(*) from marts.market_brief where trade_date = '2025-01-27'") == 1
    # Run history: one backfill run with its parameters and rows per table.
    run = fetch(path, "select flow, status, parameters, rows_by_table from audit.runs")
    assert len(run) == 1 and run[0][0] == "backfill"
    params, rows = json.loads(run[0][2]), json.loads(run[0][3])
    assert params["start"] == "2024-11-01" and params["chunk"] == "month" and params["tickers"] == ["SPY", "QQQ", "XLK", "NVDA"]
    assert rows["raw.prices_daily"] == 4 * len(sessions) and rows["marts.technicals_daily"] > 0


def test_the_same_backfill_again_skips_every_chunk(real_backfill, real_folder):
    path, _ = real_backfill
    before = content(path)
    again = backfill(
        start=dt.date(2024, 11, 1), end=dt.date(2025, 2, 7), source="files", path=str(real_folder), warehouse=str(path),
        tickers=["SPY", "QQQ", "XLK", "NVDA"], datasets=REAL_DATASETS,
    )
    assert again["chunks_loaded"] == 0 and again["chunks_skipped"] == 16 and again["builds"] == []
    assert content(path) == before
    # A narrower request is covered by what the wider one loaded; `force` loads it again,
    # changing nothing (keyed upserts).
    narrower = backfill(
        start=dt.date(2024, 11, 4), end=dt.date(2024, 11, 8), source="files", path=str(real_folder), warehouse=str(path),
        tickers="NVDA", datasets="prices_daily", chunk="week",
    )
    assert narrower["chunks_loaded"] == 0 and narrower["chunks_skipped"] == 1
    forced = backfill(
        start=dt.date(2024, 11, 4), end=dt.date(2024, 11, 8), source="files", path=str(real_folder), warehouse=str(path),
        tickers="NVDA", datasets="prices_daily", chunk="week", force=True,
    )
    assert forced["chunks_loaded"] == 1 and forced["loads"][0]["unchanged"] == 5 and forced["loads"][0]["inserted"] == 0
    assert content(path) == before


# -- kill and resume ----------------------------------------------------------------------------

KILL_ARGS = ["--start", "2024-11-01", "--end", "2025-01-31", "--source", "sample", "--chunk", "month",
             "--tickers", "SPY,NVDA,MSFT", "--datasets", "prices_daily,putcall_daily"]


def test_a_killed_backfill_resumes_to_the_same_tables_as_an_uninterrupted_one(cli_env, tmp_path):
    reference = lake_target(tmp_path, "reference")
    full = backfill(
        start=dt.date(2024, 11, 1), end=dt.date(2025, 1, 31), source="sample", warehouse=str(reference), chunk="month",
        tickers="SPY,NVDA,MSFT", datasets="prices_daily,putcall_daily",
    )
    total = full["chunks_loaded"]
    assert total == 3 * 2

    killed = cli_env["BELLWETHER_WAREHOUSE"]
    env = dict(cli_env, PREFECT_LOGGING_LEVEL="INFO", BELLWETHER_PROGRESS="off")
    proc = subprocess.Popen(bellwether_cmd() + ["backfill", *KILL_ARGS], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen, deadline = [], time.monotonic() + 240
    try:
        for line in proc.stdout:
            m = re.search(r"chunk (\d+)/(\d+) loaded", line)
            if m:
                seen.append(int(m.group(1)))
                if len(seen) == 2:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
            assert time.monotonic() < deadline, "the backfill never reported its chunks"
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and seen == [1, 2]

    recorded = scalar(killed, "select count(*) from audit.backfill_chunks")
    assert 2 <= recorded < total  # the chunks recorded are exactly those loaded (one transaction each)
    assert scalar(killed, "select status from audit.runs") == "running"  # it never finished
    assert scalar(killed, "select count(*) from audit.backfill_chunks where built_at is not null") == 0
    # It never published either: readers do not see half a backfill (here: nothing at all yet).
    r = subprocess.run(bellwether_cmd() + ["query", "select count(*) from raw.prices_daily"], cwd=ROOT, env=cli_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "no run has published to" in " ".join(r.stderr.split()), r.stdout + r.stderr

    # The same backfill again (here through the flow itself): it loads only what is missing.
    resumed = backfill(
        start=dt.date(2024, 11, 1), end=dt.date(2025, 1, 31), source="sample", warehouse=killed, chunk="month",
        tickers="SPY,NVDA,MSFT", datasets="prices_daily,putcall_daily",
    )
    assert (resumed["chunks_loaded"], resumed["chunks_skipped"]) == (total - recorded, recorded)
    assert content(killed) == content(reference)
    # No duplicate keys (primary keys hold) and no missing session.
    sessions = len(calendar.sessions(dt.date(2024, 11, 1), dt.date(2025, 1, 31)))
    assert scalar(killed, "select count(*) from raw.prices_daily") == scalar(reference, "select count(*) from raw.prices_daily") == 3 * sessions
    assert scalar(killed, "select count(*) from audit.backfill_chunks where built_at is null") == 0


# -- dry runs and refusals ----------------------------------------------------------------------


def test_a_dry_run_prints_the_plan_and_changes_nothing(cli_env, tmp_path):
    path = cli_env["BELLWETHER_WAREHOUSE"]
    args = ["backfill", "--start", "2025-01-02", "--end", "2025-02-28", "--tickers", "SPY,NVDA", "--datasets", "prices_daily,putcall_daily"]
    r = subprocess.run(bellwether_cmd() + args + ["--dry-run", "--format", "json"], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert [(p["dataset"], p["start"], p["end"], p["sessions"], p["status"]) for p in plan] == [
        ("prices_daily", "2025-01-02", "2025-02-02", 20, "to load"), ("prices_daily", "2025-02-03", "2025-02-28", 19, "to load"),
        ("putcall_daily", "2025-01-02", "2025-02-02", 20, "to load"), ("putcall_daily", "2025-02-03", "2025-02-28", 19, "to load"),
    ]
    assert not lake_catalog(path).exists(), "a dry run must not even create the warehouse"

    backfill(start=dt.date(2025, 1, 2), end=dt.date(2025, 1, 31), source="sample", warehouse=path, tickers="SPY,NVDA",
             datasets="prices_daily,putcall_daily", build=False)
    before = digest(path)
    r = subprocess.run(bellwether_cmd() + args + ["--dry-run"], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "prices_daily │ 2025-01-02..2025-02-02 │ 20 │ 2 │ 40 │ done" in out
    assert "prices_daily │ 2025-02-03..2025-02-28 │ 19 │ 2 │ 0 │ to load" in out
    assert "dry run: 2 chunk(s) to load, 2 already loaded by an earlier backfill, 0 refused; nothing was changed" in out
    assert digest(path) == before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(start=dt.date(2025, 2, 1), end=dt.date(2025, 1, 1)), "backfill end 2025-01-01 is before its start 2025-02-01"),
        (dict(tickers="SPY,NOPE"), "ticker(s) NOPE are not in the universe file"),
        (dict(datasets="prices,putcall_daily"), "unknown dataset(s) prices: choose from prices_daily"),
        (dict(chunk="fortnight"), "chunk 'fortnight' is not one of week, month, quarter, year or a positive number of sessions"),
        (dict(chunk="0"), "chunk '0' is not one of"),
        (dict(start=dt.date(2025, 1, 11), end=dt.date(2025, 1, 12)), "there is no NYSE session between 2025-01-11 and 2025-01-12"),
        (dict(source="live", datasets="prices_daily,option_quotes"), "option_quotes: Yahoo serves option_quotes only as of now"),
    ],
)
def test_a_backfill_that_cannot_be_done_is_refused_before_it_starts(kwargs, message):
    from flows.backfill import BackfillError, prepare
    from flows.settings import get_settings

    args = dict(start=dt.date(2025, 1, 2), end=dt.date(2025, 1, 31), tickers=None, datasets=None, chunk="month") | kwargs
    settings = get_settings(source=args.pop("source", "sample"))
    with pytest.raises(BackfillError) as info:
        prepare(settings, force=False, now=dt.datetime(2025, 6, 2, 23, tzinfo=dt.UTC), **args)
    assert message in str(info.value)


def test_the_cli_refuses_a_bad_backfill_with_exit_2_and_no_traceback(cli_env):
    for args, message in (
        (["--start", "2025-01-01", "--chunk", "fortnight"], "chunk 'fortnight' is not one of"),
        (["--start", "01/02/2025"], "--start '01/02/2025' is not a date"),
    ):
        r = subprocess.run(bellwether_cmd() + ["backfill", *args], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        assert message in " ".join(r.stderr.split()) and "Traceback" not in r.stderr
    assert not os.path.exists(cli_env["BELLWETHER_WAREHOUSE"])


def test_live_backfills_skip_snapshot_datasets_and_say_why(cli_env):
    """By default a live backfill plans prices, put/call and fundamentals and refuses the two
    datasets Yahoo serves only as of now, plainly (no network: this is the plan)."""
    r = subprocess.run(bellwether_cmd() + ["backfill", "--start", "2025-01-02", "--end", "2025-01-31", "--source", "live",
                                           "--tickers", "NVDA", "--dry-run", "--format", "json"],
                       cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    status = {p["dataset"]: p["status"] for p in json.loads(r.stdout)}
    assert status == {"prices_daily": "to load", "putcall_daily": "to load", "fundamentals_quarterly": "to load",
                      "option_quotes": "refused", "valuation_snapshots": "refused"}
    note = " ".join(r.stderr.split())
    assert "option_quotes skipped: Yahoo serves option_quotes only as of now" in note
    assert "--source files --path DIR --datasets option_quotes" in note


HOLD = """
import sys, time
from warehouse.connect import writer
with writer(sys.argv[1], holder="nightly run test-holder"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_backfill_started_while_another_run_writes_is_refused_cleanly(cli_env):
    import sys

    path = cli_env["BELLWETHER_WAREHOUSE"]
    holder = subprocess.Popen([sys.executable, "-c", HOLD, path], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run(bellwether_cmd() + ["backfill", "--start", "2025-01-02", "--end", "2025-01-10", "--tickers", "SPY",
                                               "--datasets", "prices_daily", "--wait", "1"],
                           cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=180)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 3, r.stdout + r.stderr
    err = " ".join(r.stderr.split())
    assert "is being written by nightly run test-holder" in err and "gave up after waiting 1 s" in err
    assert scalar(path, "select count(*) from raw.prices_daily") == 0


# -- Dask ---------------------------------------------------------------------------------------


def test_the_dask_runner_fetches_on_a_two_worker_local_cluster(tmp_path):
    from distributed import LocalCluster

    from flows.runners import task_runner

    args = dict(start=dt.date(2025, 1, 2), end=dt.date(2025, 2, 28), source="sample", tickers="SPY,NVDA,MSFT",
                datasets="prices_daily,putcall_daily,valuation_snapshots", build=False)  # loads are what fans out
    threads = backfill(warehouse=lake_target(tmp_path, "threads"), **args)
    # An existing scheduler, by address: its two workers run every fetch; the flow loads.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0") as cluster:
        on_dask = backfill.with_options(task_runner=task_runner("dask", address=cluster.scheduler_address))(
            warehouse=lake_target(tmp_path, "dask"), **args
        )
        executed = {w.name: w.state.executed_count for w in cluster.workers.values()}
    assert len(executed) == 2 and sum(executed.values()) >= on_dask["chunks_loaded"] == 6
    assert content(lake_target(tmp_path, "dask"), [f"raw.{t}" for t in RAW_TABLES]) == content(lake_target(tmp_path, "threads"), [f"raw.{t}" for t in RAW_TABLES])
    # The default: a LocalCluster of its own (2 workers, in-process).
    own = backfill.with_options(task_runner=task_runner("dask", workers=2))(warehouse=lake_target(tmp_path, "own"), **args)
    assert own["status"] == threads["status"] == "succeeded"
    raw = [f"raw.{t}" for t in RAW_TABLES]
    assert content(lake_target(tmp_path, "own"), raw) == content(lake_target(tmp_path, "threads"), raw)
    # Loaded without a build: the chunks stay owed one, which the next build pays.
    assert scalar(lake_target(tmp_path, "own"), "select count(*) from audit.backfill_chunks where built_at is null") == 6
