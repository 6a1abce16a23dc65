import datetime as dt
import fcntl
import math
import os
import shutil

import pytest

from flows.nightly import nightly
from tests.conftest import lake_catalog, lake_target
from warehouse.connect import LATEST, reader

RAW_TABLES = ("prices_daily", "putcall_daily", "fundamentals_quarterly", "option_quotes", "valuation_snapshots", "universe")


@pytest.fixture(autouse=True)
def _prefect(prefect_harness):
    """Every integration test runs flows against the session's Prefect test server."""
    yield


# The helpers read the newest commit (`LATEST`), published or not: a test looks at what a run
# wrote. Readers of the warehouse read what runs published (see tests of `bellwether query`).


def snapshot(target, tables=None):
    """Every row of the given tables, sorted: two equal snapshots mean identical tables."""
    tables = tables or [f"raw.{t}" for t in RAW_TABLES] + ["marts.technicals_daily"]
    with reader(target, at=LATEST) as con:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables}


def scalar(target, sql, params=None):
    with reader(target, at=LATEST) as con:
        return con.execute(sql, params or []).fetchone()[0]


def fetch(target, sql, params=None):
    with reader(target, at=LATEST) as con:
        return con.execute(sql, params or []).fetchall()


def close(a, b) -> bool:
    """Equal, floats to 1e-9: an incremental build's windowed sums start from another row than
    a full build's, so they may differ in the last bits (DuckDB's segment trees)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return a == b


def assert_marts_equal_a_full_rebuild(target, tmp_path, run_date: dt.date) -> None:
    """Every mart as the runs left it equals a full rebuild of a copy of the warehouse (floats
    as `close` counts them)."""
    from tests.conftest import copy_lake
    from transforms.runner import build, discover
    from warehouse.connect import writer

    copy = copy_lake(target, tmp_path, "full")
    with writer(copy) as con:
        build(con, run_date=run_date, full_refresh=True)
    with reader(target, at=LATEST) as runs, reader(copy, at=LATEST) as full:
        for table in sorted(f"marts.{m.name}" for m in discover() if m.layer == "marts"):
            a = runs.execute(f"select * from {table} order by all").fetchall()
            b = full.execute(f"select * from {table} order by all").fetchall()
            assert len(a) == len(b), table
            bad = [(x, y) for x, y in zip(a, b, strict=True) if not close(x, y)]
            assert not bad, (table, bad[:2])


def link(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)


@pytest.fixture(scope="session")
def real_folder(tmp_path_factory):
    from tests.conftest import REAL_DATA

    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent")
    root = tmp_path_factory.mktemp("real")
    # Two price vendors whose tickers do not overlap: ETFs with as-traded Close + AdjClose, and
    # stocks with as-traded close + adj_close + dividends.
    for f in (REAL_DATA / "prices" / "taeheon-kong_etf-app").glob("*.csv"):
        link(f, root / "prices" / f.name)
    for f in (REAL_DATA / "prices" / "AizG237_stock-analysis").glob("*.csv"):
        link(f, root / "prices" / f.name)
    for f in (REAL_DATA / "putcall").rglob("*.csv"):
        link(f, root / "putcall" / f.parent.name / f.name)
    link(REAL_DATA / "options" / "ansabs_options_pricing" / "nvda_options.csv", root / "options" / "ansabs" / "nvda_options.csv")
    (root / "options" / "ansabs" / "snapshot_dates.csv").write_text("file,snapshot_date\nnvda_options.csv,2025-02-03\n")
    link(REAL_DATA / "fundamentals" / "NVDA_quarterly_tidy.csv", root / "fundamentals" / "NVDA_quarterly_tidy.csv")
    return root


@pytest.fixture(scope="session")
def real_warehouse(real_folder, tmp_path_factory):
    """The real files loaded as a backfill-sized first night (2025-01-27) and a second night
    (2025-02-03, with the NVDA option chain); shared by every module that reads them."""
    path = lake_target(tmp_path_factory.mktemp("realwh"))
    first = nightly(run_date=dt.date(2025, 1, 27), source="files", path=str(real_folder), warehouse=str(path), history_sessions=6000)
    second = nightly(run_date=dt.date(2025, 2, 3), source="files", path=str(real_folder), warehouse=str(path))
    return path, first, second


# -- nights several modules start from ---------------------------------------------------------------

def shared_lake(tmp_path_factory, name: str, build) -> str:
    """A warehouse that tests of several modules start from, built once per test session by the
    first xdist worker to ask (the other waits for it, then uses the same one): `build(folder)`
    writes it as `lake_target(folder)`. Tests copy it (`copy_lake`) before they write to it. A
    night costs ~15 s, nearly all of it the same whatever the history, so running the same night
    twice was the suite's largest waste."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder, shared by workers
    folder = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this worker dies
        if not (folder / "built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / "built").touch()
    return lake_target(folder)


@pytest.fixture(scope="session")
def friday(tmp_path_factory) -> str:
    """The night of Friday 2025-01-24 on the sample source and the bundled universe (24 names),
    70 sessions of history: the blocked Monday and the switch to the S&P 500 go on from it."""

    def build(folder):
        summary = nightly(run_date=dt.date(2025, 1, 24), source="sample", warehouse=lake_target(folder), history_sessions=70)
        assert summary["status"] == "succeeded", summary

    return shared_lake(tmp_path_factory, "bundled-2025-01-24", build)


SIX_TICKERS = (
    "ticker,name,sector,cohort,role\n"
    "SPY,S&P 500 ETF,Index,,index_proxy\nQQQ,Nasdaq 100 ETF,Index,,index_proxy\nXLK,Technology ETF,Technology,,sector_proxy\n"
    "NVDA,NVIDIA,Technology,ai,stock\nMSFT,Microsoft,Technology,ai,stock\nKO,Coca-Cola,Consumer Staples,non_ai,stock\n"
)


@pytest.fixture(scope="session")
def six_friday(tmp_path_factory) -> tuple[str, str]:
    """The night of Friday 2025-01-24 on the sample source for six names (SIX_TICKERS), 60
    sessions of history: (the lake, its universe file). The nights after it (lake maintenance,
    notebooks left open) go on from copies."""

    def build(folder):
        (folder / "universe.csv").write_text(SIX_TICKERS)
        summary = nightly(run_date=dt.date(2025, 1, 24), source="sample", universe=str(folder / "universe.csv"),
                          warehouse=lake_target(folder), history_sessions=60)
        assert summary["status"] == "succeeded", summary

    target = shared_lake(tmp_path_factory, "six-2025-01-24", build)
    return target, str(lake_catalog(target).parent / "universe.csv")
