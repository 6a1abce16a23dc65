"""`bellwether serve`: the nightly deployment's schedule, the backfill deployment's parameters,
and a backfill triggered by hand through `prefect deployment run` against the served flows."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.deployments import MARKET_TZ, NIGHTLY_CRON, make_deployments
from flows.nightly import session_to_run
from flows.writers import WRITER_LIMIT
from tests.conftest import ROOT, bellwether_cmd, lake_catalog, lake_target
from tests.integration.conftest import scalar


def test_the_nightly_deployment_fires_after_the_close_on_weekdays_in_new_york(tmp_path):
    from prefect.server.schemas.schedules import CronSchedule

    nightly, backfill = make_deployments(source="sample", path=None, warehouse=lake_target(tmp_path), universe="u.csv")
    assert nightly.name == "nightly" and nightly.entrypoint == "flows.nightly.nightly"
    (schedule,) = nightly.schedules
    assert schedule.active and (schedule.schedule.cron, schedule.schedule.timezone) == (NIGHTLY_CRON, MARKET_TZ) == ("30 18 * * 1-5", "America/New_York")
    assert nightly.parameters == {"source": "sample", "warehouse": lake_target(tmp_path), "universe": "u.csv", "scheduled": True}
    # 18:30 New York is 23:30 UTC in winter and 22:30 in summer; no weekend runs. (Thanksgiving,
    # 27 Nov 2025, still fires: the run finds the market closed and ends successfully.)
    def fire_times(n, start):  # Prefect's server computes a cron schedule's runs this way
        return asyncio.run(CronSchedule(cron=NIGHTLY_CRON, timezone=MARKET_TZ).get_dates(n=n, start=start))

    fires = fire_times(4, dt.datetime(2025, 11, 26, 12, tzinfo=dt.UTC))
    assert [f.astimezone(dt.UTC).strftime("%a %d %H:%M") for f in fires] == ["Wed 26 23:30", "Thu 27 23:30", "Fri 28 23:30", "Mon 01 23:30"]
    summer = fire_times(1, dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC))
    assert summer[0].astimezone(dt.UTC).hour == 22
    # The backfill deployment: no schedule; `start` is the one parameter it needs.
    assert backfill.schedules in (None, []) and backfill.entrypoint == "flows.backfill.backfill"
    schema = backfill._parameter_openapi_schema
    assert schema.required == ["start"]
    assert {"end", "source", "path", "tickers", "datasets", "chunk", "force", "dry_run", "build"} <= set(schema.properties)
    assert schema.properties["chunk"]["default"] == "month" and schema.properties["dry_run"]["default"] is False


@pytest.mark.parametrize(
    "scheduled_at, expected",
    [
        (dt.datetime(2025, 11, 27, 23, 30, tzinfo=dt.UTC), dt.date(2025, 11, 27)),  # Thanksgiving: a closed day
        (dt.datetime(2025, 1, 28, 0, 5, tzinfo=dt.UTC), dt.date(2025, 1, 27)),      # 19:05 in New York, still the 27th
        (dt.datetime(2025, 7, 3, 22, 30, tzinfo=dt.UTC), dt.date(2025, 7, 3)),       # an early-close day
    ],
)
def test_a_scheduled_run_loads_the_day_it_was_scheduled_for(scheduled_at, expected):
    late = scheduled_at + dt.timedelta(hours=30)  # started a day late: still its own day
    assert session_to_run(None, scheduled=True, now=late, scheduled_at=scheduled_at) == expected
    # By hand, without a date: the last completed session (Thanksgiving night -> the 26th).
    if expected == dt.date(2025, 11, 27):
        assert session_to_run(None, scheduled=False, now=scheduled_at, scheduled_at=None) == dt.date(2025, 11, 26)


def test_a_scheduled_night_on_a_market_holiday_logs_closed_and_succeeds(tmp_path):
    from flows.nightly import nightly

    summary = nightly(run_date=dt.date(2025, 11, 27), source="sample", warehouse=lake_target(tmp_path), scheduled=True)
    assert summary["status"] == "succeeded" and "closed on 2025-11-27 (Thursday): nothing to load" in summary["message"]
    assert not lake_catalog(lake_target(tmp_path)).exists()


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_registers_both_deployments_and_runs_a_backfill_triggered_by_hand(cli_env):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()  # the session's Prefect test server
    env = dict(cli_env, PREFECT_API_URL=api, BELLWETHER_PROGRESS="off")
    warehouse = env["BELLWETHER_WAREHOUSE"]
    serve = subprocess.Popen(bellwether_cmd() + ["serve", "--source", "sample"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        with get_client(sync_client=True) as client:
            def deployment(name):
                try:
                    return client.read_deployment_by_name(name)
                except ObjectNotFound:
                    assert serve.poll() is None, serve.stdout.read()
                    return None

            nightly = _wait(lambda: deployment("nightly/nightly"), 120, "the nightly deployment")
            backfill = _wait(lambda: deployment("backfill/backfill"), 30, "the backfill deployment")
            (schedule,) = nightly.schedules
            assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == ("30 18 * * 1-5", "America/New_York", True)
            assert nightly.parameters["scheduled"] is True and nightly.parameters["warehouse"] == warehouse
            assert client.read_global_concurrency_limit_by_name(WRITER_LIMIT).limit == 1

            # The README's way: `prefect deployment run` with --param, list values as "A,B".
            prefect = str(Path(sys.executable).with_name("prefect"))
            r = subprocess.run(
                [prefect, "deployment", "run", "backfill/backfill", "--param", "start=2025-01-02", "--param", "end=2025-01-10",
                 "--param", "tickers=SPY,NVDA", "--param", "datasets=prices_daily", "--param", "build=false"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
            )
            assert r.returncode == 0, r.stdout + r.stderr

            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

            def finished():
                runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[backfill.id])))
                return runs[0] if runs and runs[0].state and runs[0].state.is_final() else None

            run = _wait(finished, 240, "the backfill run")
            assert run.state.is_completed(), run.state
            assert run.parameters["start"] == "2025-01-02" and run.parameters["source"] == "sample"
        # 2 tickers x the 6 sessions from 2 to 10 January 2025 (the 9th was a national day of mourning).
        assert scalar(warehouse, "select count(*) from raw.prices_daily") == 12
        assert scalar(warehouse, "select flow || ' ' || status from audit.runs") == "backfill succeeded"
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=60)
            stopped = True
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            stopped = False
    assert stopped, "bellwether serve did not stop within 60 s of SIGTERM"


def test_serve_without_a_prefect_server_says_what_is_wrong(cli_env):
    env = dict(cli_env, PREFECT_API_URL="http://127.0.0.1:9/api")
    r = subprocess.run(bellwether_cmd() + ["serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "PREFECT_API_URL is http://127.0.0.1:9/api, but no Prefect server answers there" in " ".join(r.stderr.split())


def test_a_second_run_waits_for_the_writer_slot_then_gives_up_clearly():
    import threading

    from flows.writers import writer_slot
    from warehouse.connect import WarehouseBusy

    held, release, outcome = threading.Event(), threading.Event(), {}

    def first():
        with writer_slot(timeout_s=30, holder="nightly run A"):
            held.set()
            release.wait(30)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(WarehouseBusy) as info:
            with writer_slot(timeout_s=1, holder="backfill run B"):
                outcome["entered"] = True
        assert "backfill run B: another run holds Prefect's 'warehouse-writer' concurrency slot" in str(info.value)
        assert "entered" not in outcome
    finally:
        release.set()
        t.join()
    with writer_slot(timeout_s=10, holder="backfill run B"):  # free again once the first run is done
        outcome["entered"] = True
    assert outcome["entered"]
