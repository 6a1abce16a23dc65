"""The shared warehouse on its default storage (a DuckLake): readers that answer while a run
writes and see only published states, time travel to an earlier run, and plain DuckDB clients.

Every command runs as users run it: `bellwether` CLI processes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.conftest import ROOT, bellwether_cmd, copy_lake, lake_target
from tests.integration.conftest import SIX_TICKERS, fetch, scalar
from tests.integration.test_racing_writers import Child, checksums, compare, integrity_problems


def cli(args, env, timeout=300):
    return subprocess.run(bellwether_cmd() + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


# -- readers during a long backfill ----------------------------------------------------------------

FIRST = dict(start=dt.date(2022, 11, 1), end=dt.date(2022, 12, 30), source="sample", datasets="prices_daily,putcall_daily")
# A year in quarters: eight chunks, each its own commit, and the build after them; long enough for
# readers to ask again and again while it writes (two years cost twice the time and proved nothing more).
LONG = dict(start=dt.date(2023, 1, 3), end=dt.date(2023, 12, 29), source="sample", chunk="quarter",
            datasets="prices_daily,putcall_daily")


def as_args(job: dict) -> list[str]:
    return [x for k, v in job.items() for x in (f"--{k}", str(v))]
COUNTS = ("select (select count(*) from raw.prices_daily) as prices, (select count(*) from audit.backfill_chunks) as chunks, "
          "(select count(*) from marts.technicals_daily) as technicals, "
          "(select count(*) from audit.runs where status <> 'running') as runs")


def test_readers_answer_during_a_long_backfill_and_never_see_half_of_it(cli_env, tmp_path):
    """A year-long backfill (six tickers, eight chunks) writes while `bellwether query` runs again
    and again in other processes: every query exits 0 at once with the counts of the state
    published before the backfill, until the backfill publishes, and then with its final counts
    (never a count from the middle); the backfill ends with the same data as the same runs with
    no readers."""
    from flows.backfill import backfill

    universe = tmp_path / "universe.csv"
    universe.write_text(SIX_TICKERS)
    env = dict(cli_env, BELLWETHER_PROGRESS="off", PREFECT_LOGGING_LEVEL="INFO", BELLWETHER_UNIVERSE=str(universe))
    reference = lake_target(tmp_path / "reference")
    assert backfill(warehouse=reference, universe=str(universe), **FIRST)["status"] == "succeeded"
    # The first backfill is the same run in both warehouses: run once, copied.
    env["BELLWETHER_WAREHOUSE"] = copy_lake(reference, tmp_path, "cli")
    assert backfill(warehouse=reference, universe=str(universe), **LONG)["status"] == "succeeded"  # with nobody reading

    before = tuple(fetch(env["BELLWETHER_WAREHOUSE"], COUNTS)[0])
    answers: list[tuple[float, float, int, str, str]] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            began = time.monotonic()
            r = cli(["query", "--format", "csv", COUNTS], env, timeout=120)
            answers.append((began, time.monotonic(), r.returncode, r.stdout, r.stderr))

    fill = Child(["backfill", *as_args(LONG)], env, "year-long backfill")
    fill.wait_for(r"run \S+ started \(")
    asking = threading.Thread(target=ask)
    asking.start()
    try:
        code = fill.finish(timeout=600)
    finally:
        ended = time.monotonic()
        time.sleep(3)  # a query or two after the publication
        stop.set()
        asking.join(timeout=180)
    assert code == 0, fill.text()
    after = tuple(fetch(env["BELLWETHER_WAREHOUSE"], COUNTS)[0])
    assert after[0] > before[0] and after[1] > before[1] and after[3] == before[3] + 1

    assert answers and all(a[2] == 0 for a in answers), [a[4] for a in answers if a[2]]
    seen = [tuple(int(x) for x in a[3].splitlines()[1].split(",")) for a in answers]
    during = [s for a, s in zip(answers, seen) if a[1] < ended]
    assert len(during) >= 5, f"only {len(during)} queries ran while the backfill wrote"
    assert set(seen) <= {before, after}, set(seen) - {before, after}
    assert before in during  # while it wrote, readers saw the state published before it
    # Once it had published, they saw all of it (the order is monotonic: never back to before).
    flips = [i for i in range(1, len(seen)) if seen[i] != seen[i - 1]]
    assert len(flips) <= 1 and (not flips or seen[flips[0]] == after)

    outcome = compare(env["BELLWETHER_WAREHOUSE"], reference, checksums(reference))
    assert outcome.differences == []
    assert integrity_problems(env["BELLWETHER_WAREHOUSE"]) == []


# -- time travel -------------------------------------------------------------------------------------

NIGHT = dt.date(2025, 1, 27)
RESTATED_DAY = dt.date(2025, 1, 24)  # inside the night's 5-session look-back: fetched again


def write_prices(folder, close_on_restated_day: float | None = None) -> None:
    """A year of daily prices for SPY and NVDA on the NYSE calendar (a deterministic walk)."""
    sessions = calendar.sessions(dt.date(2024, 1, 2), NIGHT)
    rng = np.random.default_rng(7)
    (folder / "prices").mkdir(parents=True, exist_ok=True)
    for ticker, start in (("SPY", 470.0), ("NVDA", 48.0)):
        close = start * np.exp(np.cumsum(rng.normal(0.0005, 0.01, len(sessions))))
        frame = pd.DataFrame({"Date": [d.isoformat() for d in sessions], "Close": close.round(2), "Volume": 1_000_000})
        if ticker == "SPY" and close_on_restated_day is not None:
            frame.loc[frame["Date"] == RESTATED_DAY.isoformat(), "Close"] = close_on_restated_day
        frame.to_csv(folder / "prices" / f"{ticker}.csv", index=False)


def test_query_as_of_an_earlier_run_reads_the_marts_before_a_restatement(cli_env, tmp_path):
    universe = tmp_path / "universe.csv"
    universe.write_text("ticker,name,sector,cohort,role\nSPY,S&P 500 ETF,Index,,index_proxy\nNVDA,NVIDIA,Technology,ai,stock\n")
    folder = tmp_path / "files"
    write_prices(folder)
    from flows.nightly import nightly

    env = dict(cli_env, BELLWETHER_UNIVERSE=str(universe))

    def night() -> dict:  # the nightly flow, in this process (the readers below are CLI processes)
        return nightly(run_date=NIGHT, source="files", path=str(folder), universe=str(universe),
                       warehouse=env["BELLWETHER_WAREHOUSE"], history_sessions=300)

    day = f"trade_date = '{RESTATED_DAY}'"
    sql = f"select close, sma_50, pct_to_sma_50 from marts.technicals_daily where ticker = 'SPY' and {day}"

    first_run = night()["run_id"]
    original = fetch(env["BELLWETHER_WAREHOUSE"], sql)[0]
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.1)
    restated = round(original[0] * 0.98, 2)  # the provider restates the 24th's close 2% lower
    write_prices(folder, close_on_restated_day=restated)
    second = night()
    assert second["status"] == "succeeded", second
    assert next(ld for ld in second["loads"] if ld["table"] == "raw.prices_daily")["updated"] == 1
    second_run = second["run_id"]

    def query(*extra):
        r = cli(["query", "--format", "json", *extra, sql], env)
        assert r.returncode == 0, r.stderr
        (row,) = json.loads(r.stdout)
        return (row["close"], row["sma_50"], row["pct_to_sma_50"]), r.stderr

    now, _ = query()
    old, said = query("--as-of", first_run)
    assert now[0] == restated and old[0] == original[0] and old == pytest.approx(original)
    assert now[1] != pytest.approx(old[1])  # the 50-day average moved with the restated close
    snapshot = scalar(env["BELLWETHER_WAREHOUSE"], "select snapshot_id from audit.runs where run_id = ?", [first_run])
    assert f"as of snapshot {snapshot}" in said and f"by run {first_run}" in said
    assert query("--as-of", between.isoformat())[0] == old  # a time: what readers saw then
    assert query("--as-of", str(snapshot))[0] == old  # a snapshot number
    assert query("--as-of", second_run)[0] == now

    # The brief as it read on the morning after the first run, and as it reads now.
    def support(*extra):
        r = cli(["report", "--date", str(NIGHT), "--format", "json", *extra], env)
        assert r.returncode == 0, r.stderr
        return {s["ticker"]: s for s in json.loads(r.stdout)["support_levels"]}["SPY"]

    assert support("--as-of", first_run) != support()
    # A run id or a time the warehouse cannot go back to is refused plainly (exit 2).
    r = cli(["query", "--as-of", "2001-01-01", "select 1"], env)
    assert r.returncode == 2 and "nothing was published on or before 2001-01-01" in " ".join(r.stderr.split())
    r = cli(["query", "--as-of", "999999", "select 1"], env)
    assert r.returncode == 2 and "no snapshot 999999 in this warehouse" in " ".join(r.stderr.split())


# -- plain DuckDB clients ----------------------------------------------------------------------------


def test_a_plain_duckdb_client_opens_the_published_snapshot_with_bellwether_attach(cli_env, tmp_path):
    from tests.conftest import publish
    from warehouse.connect import writer

    target = cli_env["BELLWETHER_WAREHOUSE"]
    with writer(target) as con:
        con.execute("create table marts.demo as select 1 as x")
        publish(con, "published-run")
        con.execute("insert into marts.demo values (2)")  # a run under way: not published
    r = cli(["attach"], cli_env)
    assert r.returncode == 0, r.stderr
    assert "published by run published-run" in r.stdout
    client = duckdb.connect(config={"autoload_known_extensions": False, "autoinstall_known_extensions": False})
    for statement in r.stdout.split(";\n"):
        if statement.strip():
            client.execute(statement)
    assert client.execute("select count(*) from marts.demo").fetchone()[0] == 1
    assert client.execute("select count(*) from bellwether.marts.demo").fetchone()[0] == 1
    with pytest.raises(duckdb.Error, match="read-only|read only"):
        client.execute("insert into marts.demo values (3)")
    latest = cli(["attach", "--latest"], cli_env).stdout
    assert "not published: the newest commit" in latest and "SNAPSHOT_VERSION" not in latest


# A notebook left open: attached with what `bellwether attach` prints (read-only) or with a plain
# ATTACH of the lake (read-write, as a user may type it), a transaction begun and a query answered,
# then left as it is while the next night runs.
NOTEBOOK = """
import sys, duckdb
sql, plain, target = open(sys.argv[1]).read(), sys.argv[2] == "plain", sys.argv[3]
con = duckdb.connect(config={"autoload_known_extensions": False, "autoinstall_known_extensions": False})
if plain:
    for line in sql.splitlines():
        if line.startswith("LOAD"):
            con.execute(line)
    con.execute(f"ATTACH 'ducklake:sqlite:{target}' AS lake (DATA_PATH '{target[:-len('.sqlite')]}.files/')")
    con.execute("USE lake")
else:
    for statement in sql.split(";\\n"):
        if statement.strip():
            con.execute(statement)
con.execute("begin transaction")
q = "select count(*), max(trade_date) from marts.technicals_daily"
print("open", *con.execute(q).fetchone(), flush=True)
sys.stdin.readline()  # the night runs meanwhile
print("same", *con.execute(q).fetchone(), flush=True)
con.execute("commit")
print("after", *con.execute(q).fetchone(), flush=True)
"""


def test_a_notebook_left_open_mid_transaction_never_stops_a_night(cli_env, tmp_path, six_friday):
    """Two notebooks hold a transaction open on the lake (one through `bellwether attach`, one
    with a plain read-write ATTACH) while two nights run and publish: both nights succeed, each
    notebook keeps reading the state its transaction began on, and a read-write notebook sees the
    new night once it commits (the read-only one stays at its published snapshot until it
    attaches again)."""
    from flows.nightly import nightly

    friday, universe = six_friday  # Friday 2025-01-24's night (six names), shared with other modules
    target = copy_lake(friday, tmp_path, "notebooks")
    env = dict(cli_env, BELLWETHER_WAREHOUSE=target, BELLWETHER_UNIVERSE=universe)

    def night(day: dt.date) -> dict:
        return nightly(run_date=day, source="sample", universe=universe, warehouse=target, history_sessions=60)
    attach_sql = tmp_path / "attach.sql"
    attach_sql.write_text(cli(["attach"], env).stdout)
    lake_path = target.removeprefix("ducklake:sqlite:")
    notebooks = [
        subprocess.Popen([sys.executable, "-c", NOTEBOOK, str(attach_sql), kind, lake_path], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for kind in ("attach", "plain")
    ]
    try:
        opened = [nb.stdout.readline().split() for nb in notebooks]
        assert all(o[0] == "open" for o in opened), [nb.stderr.read() for nb in notebooks]
        first = opened[0][1:]
        assert opened[1][1:] == first and first[1] == "2025-01-24"
        for day in (dt.date(2025, 1, 27), dt.date(2025, 1, 28)):
            summary = night(day)
            assert summary["status"] == "succeeded", summary
        outputs = [nb.communicate(input="\n", timeout=60) for nb in notebooks]
    finally:
        for nb in notebooks:
            nb.kill()
    now = [str(x) for x in fetch(target, "select count(*), max(trade_date) from marts.technicals_daily")[0]]
    assert now[1] == "2025-01-28" and int(now[0]) > int(first[0])
    (attached, plain) = [dict((line.split()[0], line.split()[1:]) for line in out.splitlines()) for out, _ in outputs]
    assert attached["same"] == first and plain["same"] == first  # snapshot isolation inside the transaction
    assert attached["after"] == first  # pinned to the published snapshot it attached at
    assert plain["after"] == now  # a plain ATTACH reads the newest commit once its transaction ends
