"""Shared fixtures: temp warehouses, the real data folder, and one Prefect test harness per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "real"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Prefect's local mode on a machine without network (set before anything imports Prefect).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Tests never read a developer's .env or BELLWETHER_* settings (the soak test's own knobs,
# BELLWETHER_SOAK_*, are not settings of Bellwether's and stay).
for key in [k for k in os.environ if k.startswith("BELLWETHER_") and not k.startswith("BELLWETHER_SOAK_")]:
    del os.environ[key]


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent")
    return REAL_DATA


def lake_target(folder: Path, name: str = "bellwether") -> str:
    """A DuckLake warehouse (SQLite catalog, Parquet files beside it) in `folder`: the default
    storage, as `make run` creates it."""
    return f"ducklake:sqlite:{folder / name}.sqlite"


def copy_lake(target: str, folder: Path, name: str = "bellwether") -> str:
    """A copy of a SQLite lake in `folder` (catalog and files): its target."""
    from warehouse import lake
    from warehouse.target import parse

    folder.mkdir(parents=True, exist_ok=True)
    return str(lake.copy_sqlite_lake(parse(target), folder / f"{name}.sqlite"))


def lake_catalog(target: str) -> Path:
    """The SQLite catalog file of a lake target."""
    from warehouse.target import parse

    return parse(target).path


def publish(con, run_id: str = "fixture", flow: str = "fixture", at=None) -> int | None:
    """Record a run around what a test wrote and finish it: on a DuckLake that publishes the
    state to readers (`bellwether query`, `report`, `status`), as a real run's end does."""
    import datetime as dt

    from warehouse import audit

    at = at or dt.datetime.now(dt.UTC)
    audit.start_run(con, run_id=run_id, flow=flow, parameters={}, started_at=at)
    return audit.finish_run(con, run_id=run_id, status=audit.SUCCEEDED, ended_at=at)


@pytest.fixture
def warehouse_path(tmp_path) -> Path:
    """A single-file DuckDB warehouse's path (the storage kept for those who want one file)."""
    return tmp_path / "bellwether.duckdb"


@pytest.fixture
def warehouse_target(tmp_path) -> str:
    return lake_target(tmp_path)


@pytest.fixture
def con(tmp_path):
    """A fresh warehouse on the default storage (a DuckLake) with the schema applied (real
    DuckDB, never mocked)."""
    from warehouse.connect import writer

    with writer(lake_target(tmp_path, "unit"), holder="pytest") as connection:
        yield connection


@pytest.fixture(params=["ducklake", "duckdb-file"])
def any_con(request, tmp_path):
    """A fresh warehouse on each storage Bellwether offers: a DuckLake and a single DuckDB file."""
    from warehouse.connect import writer

    target = lake_target(tmp_path, "unit") if request.param == "ducklake" else tmp_path / "unit.duckdb"
    with writer(target, holder="pytest") as connection:
        yield connection


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (starting one costs ~15 s). Flow runs in
    the test processes send no heartbeats: Prefect joins a run's heartbeat thread as the run
    ends, and that thread sleeps in one-second steps, so each run ended up to a second after its
    work (half a second on average, over a hundred runs a session). Heartbeats let a server mark
    a crashed run; no test is about them, and the CLI runs the tests start keep Prefect's own."""
    from prefect.context import SettingsContext
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        settings = get_current_settings()
        quiet = settings.model_copy(update={"flows": settings.flows.model_copy(update={"heartbeat_frequency": None})})
        with SettingsContext(profile=SettingsContext.get().profile, settings=quiet):
            yield


REAL_FILE_FIXTURES = {"real_data", "real_folder", "real_warehouse"}


def _untracked_in_checkout() -> set[str]:
    import subprocess

    done = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=all"],
                          capture_output=True, text=True, check=False)
    return {line[3:] for line in done.stdout.splitlines() if line.startswith("??")} if done.returncode == 0 else set()


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # only the controller checks (sessionfinish)
        session.config._bellwether_untracked = _untracked_in_checkout()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when tests left files in the checkout outside git-ignored folders: a run's
    Data Docs or brief written into the working directory once ended up committed (a 2.5 MB GIF
    among them). Workers skip this; the controller checks once, after all of them."""
    if hasattr(session.config, "workerinput") or not hasattr(session.config, "_bellwether_untracked"):
        return
    left = sorted(_untracked_in_checkout() - session.config._bellwether_untracked)
    if left:
        session.config.get_terminal_writer().line(
            f"tests left {len(left)} untracked file(s) in the checkout, e.g. {left[:3]}: write under tmp_path", red=True)
        session.exitstatus = 1


# Modules whose tests share no module- or session-scoped fixture (each builds its own warehouse):
# each test is a group of its own, so that two long ones can run on both workers at once.
PER_TEST_GROUPS = {
    "tests.integration.test_shared_warehouse",
    "tests.integration.test_backfill",
    "tests.integration.test_cli",
    "tests.integration.test_nightly_live_retry",
}
# Seconds each long group takes on one worker of the 2-core machine (`--durations=0` of a full
# run, summed per group). The scheduler hands groups out in collection order (`--no-loadscope-
# reorder` in pyproject.toml: by default xdist puts the groups with the most tests first, which
# left the few long ones to the end, one worker busy and the other idle); longest first keeps
# both workers busy to the end (measured 2026-12-07). Groups not listed take less than ~10 s
# and follow in collection order.
GROUP_SECONDS = {
    "tests.integration.test_lake_ops": 105,
    "tests.integration.test_racing_writers": 90,
    "real-files": 75,
    "tests.integration.test_team": 70,
    "tests.property.test_corrupted_inputs": 65,
    "tests.integration.test_shared_warehouse::test_readers_answer_during_a_long_backfill_and_never_see_half_of_it": 60,
    "tests.integration.test_nightly_sample": 55,
    "tests.unit.test_bench": 50,
    "tests.integration.test_nightly_live_retry::test_a_night_with_failing_tickers_ends_partial_naming_every_one_then_a_retry_fetches_just_them": 40,
    "tests.integration.test_backfill::test_a_killed_backfill_resumes_to_the_same_tables_as_an_uninterrupted_one": 35,
    "tests.integration.test_checks_blocking": 30,
    "tests.integration.test_shared_warehouse::test_query_as_of_an_earlier_run_reads_the_marts_before_a_restatement": 30,
    "tests.integration.test_marts_sample": 30,
    "tests.integration.test_cli::test_run_then_report_the_morning_brief": 30,
    "tests.integration.test_shared_warehouse::test_a_notebook_left_open_mid_transaction_never_stops_a_night": 25,
    "tests.integration.test_cli::test_second_writer_is_refused_cleanly_and_readers_are_not": 20,
    "tests.integration.test_serve": 20,
    "tests.integration.test_nightly_live_retry::test_a_resumed_backfill_fetches_only_the_tickers_its_chunks_owe": 20,
    "tests.integration.test_universe_sp500": 15,
    "tests.integration.test_backfill::test_the_dask_runner_fetches_on_a_two_worker_local_cluster": 15,
    "tests.integration.test_backfill::test_a_backfill_started_while_another_run_writes_is_refused_cleanly": 12,
    "tests.integration.test_cli::test_build_checks_each_table_and_checks_shows_the_results": 12,
    "tests.integration.test_nightly_live": 10,
    "tests.integration.test_nightly_files": 10,
}


def xdist_group_of(item) -> str:
    if REAL_FILE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "real-files"
    module = item.module.__name__
    return f"{module}::{item.originalname}" if module in PER_TEST_GROUPS else module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs two workers, `--dist loadgroup`), keep each module on
    one worker (its module-scoped fixtures are built once; PER_TEST_GROUPS excepted) and every
    test of the real files on the same one (the session's real warehouse is loaded once); the
    longest groups come first (GROUP_SECONDS)."""
    groups = {}
    for item in items:
        groups[item.nodeid] = xdist_group_of(item)
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    items.sort(key=lambda item: -GROUP_SECONDS.get(groups[item.nodeid], 0))  # stable: same order within a group


def pytest_xdist_node_collection_finished(node, ids):
    """Refuse to run when pytest-xdist's grouping is silently off. xdist carries each test's
    group from a worker to the scheduler as an `@group` suffix it writes into the node id;
    pytest 9.2 builds node ids another way and ignores the write (pytest-dev/pytest-xdist#1386),
    so a module's tests were spread over both workers, each building the module's fixtures
    again, and a test reading what an earlier one left behind could fail. Hence `pytest<9.2`."""
    if node.config.getvalue("dist") != "loadgroup":
        return
    lost = [nodeid for nodeid in ids if nodeid.rfind("@") <= nodeid.rfind("]")]  # xdist's own test for a group
    if lost:
        pytest.exit(
            f"pytest-xdist --dist loadgroup is not grouping tests (pytest {pytest.__version__}): "
            f"{lost[0]} came back from worker {node.gateway.id} without its @group suffix; "
            "see pytest-dev/pytest-xdist#1386",
            returncode=4,
        )


def worker_prefect_home() -> str:
    """Prefect's home for CLI runs of this xdist worker: its database is made once and kept
    (two ephemeral servers must not share a SQLite database, so one per worker)."""
    return str(ROOT / "warehouse" / f".prefect-tests-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")


@pytest.fixture
def cli_env(tmp_path) -> dict:
    """Environment for running the `bellwether` CLI in a subprocess (one Prefect home per
    xdist worker: two ephemeral servers must not share a SQLite database)."""
    env = dict(os.environ)
    env["BELLWETHER_WAREHOUSE"] = lake_target(tmp_path, "cli")
    env["PREFECT_HOME"] = worker_prefect_home()
    env["PYTHONPATH"] = str(ROOT)
    return env


def bellwether_cmd() -> list[str]:
    return [sys.executable, "-m", "flows.cli"]


class NetworkBlocked(RuntimeError):
    """A test tried to reach the network: every test here runs offline."""


_LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def no_network(request, monkeypatch):
    """Fail any connection off this machine, through Python sockets or libcurl (curl_cffi).

    Loopback stays open: Prefect's test server listens there. Tests marked `live` are exempt.
    """
    if request.node.get_closest_marker("live"):
        yield
        return
    import socket

    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if sock.family == socket.AF_UNIX or str(host).startswith(_LOOPBACK):
            return real_connect(sock, address)
        if sock.type == socket.SOCK_DGRAM:
            # Connecting a UDP socket sends nothing: Dask finds this machine's address this way
            # (a "connect" to 8.8.8.8 that only consults the routing table).
            return real_connect(sock, address)
        raise NetworkBlocked(f"test tried to connect to {address}")

    def guarded_perform(*args, **kwargs):
        raise NetworkBlocked("test tried to make a real HTTP request through libcurl (curl_cffi)")

    real_create_connection = socket.create_connection

    def guarded_create_connection(address, *args, **kwargs):
        if not str(address[0]).startswith(_LOOPBACK):
            raise NetworkBlocked(f"test tried to connect to {address}")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    try:
        import curl_cffi.curl

        monkeypatch.setattr(curl_cffi.curl.Curl, "perform", guarded_perform)
    except ImportError:  # pragma: no cover
        pass
    yield


# FakeYahooSession and the yfinance isolation fixtures (`yf_isolated`, `fake_yahoo`).
pytest_plugins = ("tests.fakes.yahoo",)
