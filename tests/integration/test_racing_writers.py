"""Two writers racing: a nightly run during a backfill, and a backfill during a nightly run.

Either the second run waits and runs after the first, and the warehouse then holds both runs'
data as if they had run one after the other in a fresh warehouse; or its wait is short and it
is refused with the busy exit code (3) naming the run that holds the warehouse, having written
nothing, while the first run completes as if uncontested. Never a corrupted warehouse: after the
race the lake's SQLite catalog passes SQLite's integrity check, every data file it names is read
whole, and its keys and grains are checked.

The runs are real `bellwether` CLI processes. Most report to the session's Prefect test server
(PREFECT_API_URL, as under `bellwether serve`: the `warehouse-writer` slot is then the first
guard, the lock file the second); one nightly run uses Prefect's ephemeral mode (cron calling
`bellwether run`: the lock file alone decides). Who gets there first is not left to the
machine's speed: the run holding the warehouse is frozen with SIGSTOP right after one of its
log lines and thawed with SIGCONT once the other has knocked; every wait is on a log line.

The helpers at the top (a CLI run streaming its log lines, content checksums, the comparison
and the integrity checks) are shared with the kill-and-resume soak test, tests/soak/.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import math
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import yaml

from sources import calendar
from sources.contract import DATASETS as RAW_DATASETS
from tests.conftest import ROOT, bellwether_cmd, copy_lake, lake_catalog, lake_target, worker_prefect_home
from warehouse.connect import LATEST, reader

# -- a CLI run in a subprocess -------------------------------------------------------------------


class Child:
    """A `bellwether` CLI run in a process group of its own (so that a signal reaches its
    Prefect server too), its stdout and stderr read line by line on a thread with the time each
    line arrived, so a test can wait for a line with a timeout and act right after it."""

    def __init__(self, args: list[str], env: dict, name: str) -> None:
        self.name = name
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            bellwether_cmd() + args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue = queue.Queue()
        self._ended = False
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._queue.put((time.monotonic(), line.rstrip("\n")))
        self._queue.put(None)

    def next_line(self, timeout: float) -> tuple[float, str] | None:
        """The next line and when it arrived; None once the output has ended. Raises
        TimeoutError when no line comes within `timeout` seconds."""
        if self._ended:
            return None
        try:
            item = self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no output for {timeout:.0f} s") from None
        if item is None:
            self._ended = True
            return None
        self.lines.append(item)
        return item

    def wait_for(self, pattern: str, timeout: float = 240) -> tuple[float, re.Match]:
        """Read up to the first line matching `pattern`: (when it arrived, the match)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.next_line(deadline - time.monotonic())
            except TimeoutError:
                raise AssertionError(f"{self.name} did not print {pattern!r} within {timeout:.0f} s:\n{self.text()}") from None
            if item is None:
                raise AssertionError(f"{self.name} ended (exit {self.proc.wait()}) before printing {pattern!r}:\n{self.text()}")
            found = re.search(pattern, item[1])
            if found:
                return item[0], found

    def finish(self, timeout: float = 300) -> int:
        """Read the output to its end and return the exit code."""
        deadline = time.monotonic() + timeout
        while self.next_line(max(deadline - time.monotonic(), 0.0)) is not None:
            pass
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 1.0))

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def when(self, pattern: str) -> float | None:
        """When the first line matching `pattern` arrived (None: no such line)."""
        return next((t for t, line in self.lines if re.search(pattern, line)), None)

    def flat(self) -> str:
        """The output on one line, whitespace collapsed (Rich wraps long messages)."""
        return " ".join(self.text().split())


@contextlib.contextmanager
def reaped(*, gentle: bool) -> Iterator[list[Child]]:
    """Children started in the block are ended when it exits, whatever happened: thawed, then
    SIGINT (`gentle`: a run reporting to a shared Prefect server gives its `warehouse-writer`
    slot back on the way out; a SIGKILLed one would hold it for the rest of the session) and
    SIGKILL for anything still there."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in started:
            if child.proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                child.signal(signal.SIGCONT)
                child.signal(signal.SIGINT if gentle else signal.SIGKILL)
            try:
                child.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.signal(signal.SIGKILL)
                child.proc.wait(timeout=60)


# -- what a warehouse holds, and whether it is sound ----------------------------------------------

LINEAGE = ("run_id", "loaded_at")
# The audit tables whose rows are data (what was loaded, checked, refused), with the columns
# that only say when or by which run (they differ between any two runs), and the rows each run
# writes afresh whatever it loads (its universe load and checks), which a resumed or contested
# run writes more often than an uninterrupted one.
AUDIT_CONTENT = {
    "audit.backfill_chunks": (("run_id", "loaded_at", "built_at"), None),
    "audit.load_batches": (("run_id", "loaded_at", "built_at"), "table_name <> 'raw.universe'"),
    "audit.check_results": (("run_id", "checked_at"), "stage = 'land' and table_name <> 'raw.universe'"),
    "audit.quarantine": (("quarantine_id", "run_id", "quarantined_at"), None),
    "audit.fetch_outcomes": (("run_id", "recorded_at"), None),
    "audit.schema_version": (("applied_at",), None),
}


def content_tables(con) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Every raw table, staging view and mart, and the audit tables above: name -> (columns
    left out, row filter)."""
    names = con.execute(
        """
        select table_schema || '.' || table_name from information_schema.tables
        where table_catalog = current_database() and table_schema in ('raw', 'staging', 'marts') order by 1
        """
    ).fetchall()
    return {n: (LINEAGE, None) for (n,) in names} | AUDIT_CONTENT


def _columns(con, table: str, excluded: tuple[str, ...]) -> list[str]:
    schema_name, name = table.split(".")
    return [c for (c,) in con.execute(
        "select column_name from information_schema.columns "
        "where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
        [schema_name, name],
    ).fetchall() if c not in excluded]


def _rows_query(con, table: str) -> str:
    """The content rows of `table`."""
    excluded, where = content_tables(con).get(table, (LINEAGE, None))
    return f"select {', '.join(_columns(con, table, excluded))} from {table}" + (f" where {where}" if where else "")


def checksums(path) -> dict[str, tuple[int, str]]:
    """table -> (rows, md5 of its rows as text, sorted), lineage and timestamps left out: equal
    when two warehouses hold the same data, whichever runs loaded it and in how many goes."""
    out = {}
    with reader(path, at=LATEST) as con:
        for table in content_tables(con):
            rows, digest = con.execute(
                f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), '')) "
                f"from (select cast(t as varchar) as r from ({_rows_query(con, table)}) as t)"
            ).fetchone()
            out[table] = (int(rows), digest)
    return out


def _close(a, b, worst: list[float]) -> bool:
    """Equal, floats to within rounding (recording the largest relative gap seen in `worst`)."""
    if isinstance(a, float) and isinstance(b, float):
        if a != b:
            worst.append(abs(a - b) / max(abs(a), abs(b)))
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, worst) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], worst) for k in a)
    return a == b


@dataclasses.dataclass
class Comparison:
    differences: list[str]  # tables whose data differ
    rounding: list[str]  # marts equal only to within floating-point rounding (see `compare`)


def compare(actual, expected, expected_sums: dict | None = None) -> Comparison:
    """Compare two warehouses' content table by table (`checksums`), naming a few of the rows
    one holds and the other lacks. A mart is also compared row by row on its grain with floats
    to within 1e-9 (relative): built twice from the same raw rows, a sum over doubles can differ
    in its last bit (DuckDB adds in parallel, in no fixed order; seen in valuation_cohorts and
    market_brief), which is the same data."""
    got, want = checksums(actual), expected_sums or checksums(expected)
    out = Comparison([f"{t}: missing" for t in want if t not in got] + [f"{t}: unexpected table" for t in got if t not in want], [])
    bad = [t for t in want if t in got and got[t] != want[t]]
    if not bad:
        return out
    grains = mart_grains()
    with reader(expected, at=LATEST) as con:
        queries = {t: _rows_query(con, t) for t in bad}
    with reader(actual, at=LATEST) as got_con, reader(expected, at=LATEST) as want_con:
        for table, query in queries.items():
            order = f" order by {', '.join(grains[table])}" if table in grains else ""
            rows_a, rows_e = got_con.execute(query + order).fetchall(), want_con.execute(query + order).fetchall()
            if table in grains:
                worst: list[float] = []
                if len(rows_a) == len(rows_e) and all(_close(x, y, worst) for x, y in zip(rows_a, rows_e)):
                    out.rounding.append(f"{table}: equal to within {max(worst, default=0):.1e} (relative)")
                    continue
            a, e = collections.Counter(map(repr, rows_a)), collections.Counter(map(repr, rows_e))
            extra, lacking = list((a - e).elements())[:3], list((e - a).elements())[:3]
            out.differences.append(f"{table}: {got[table][0]} rows (md5 {got[table][1]}) instead of {want[table][0]} "
                                   f"({want[table][1]}); e.g. extra {extra}, missing {lacking}")
    return out


def mart_grains() -> dict[str, list[str]]:
    """Each mart's grain, as its checks file declares it (`key:`)."""
    out = {}
    for path in sorted((ROOT / "sql" / "marts").glob("*.checks.yml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("key"):
            out[doc["table"]] = list(doc["key"])
    return out


def integrity_problems(target) -> list[str]:
    """Whether a lake is sound, as the next writer and every reader will find it: its SQLite
    catalog passes SQLite's own `integrity_check` (pages, indexes, free lists); opened as a
    writer, every raw key (the raw contract's) and every mart's grain is unique and every view
    answers; and every row of every table, at the published snapshot and at the newest, is read
    from its Parquet files (a missing or torn file fails the read). Returns the problems found
    (empty: sound)."""
    import sqlite3

    from warehouse.connect import writer

    problems: list[str] = []
    catalog = sqlite3.connect(f"file:{lake_catalog(target)}?mode=ro", uri=True)
    try:
        verdict = catalog.execute("pragma integrity_check").fetchall()
    finally:
        catalog.close()
    if verdict != [("ok",)]:
        problems.append(f"the catalog fails SQLite's integrity check: {verdict[:5]}")
    with writer(target, holder="integrity check") as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() order by all"
        ).fetchall()
        present = {f"{s}.{n}" for s, n in tables}
        keys = [(f"raw.{name}", list(ds.key)) for name, ds in RAW_DATASETS.items()] + [("raw.universe", ["ticker"])]
        keys += [(t, k) for t, k in mart_grains().items() if t in present]
        for table, key in keys:
            dup = con.execute(
                f"select count(*) from (select 1 from {table} group by {', '.join(key)} having count(*) > 1)"
            ).fetchone()[0]
            if dup:
                problems.append(f"{table}: {dup} duplicated key(s) on ({', '.join(key)})")
        views = con.execute(
            "select schema_name, view_name from duckdb_views() where database_name = current_database() and not internal"
        ).fetchall()
        for schema_name, name in views:
            try:
                con.execute(f"select count(*) from {schema_name}.{name}").fetchone()
            except Exception as exc:  # noqa: BLE001 - reported
                problems.append(f"view {schema_name}.{name} does not answer: {exc}")
    for at in (None, LATEST):
        try:
            with reader(target, at=at) as con:
                for schema_name, name in tables:
                    con.execute(f"select count(*), bit_xor(hash(t)) from {schema_name}.{name} as t").fetchone()
        except Exception as exc:  # noqa: BLE001 - reported
            problems.append(f"reading every table at the {'published' if at is None else 'newest'} snapshot failed: {exc}")
    return problems


def scalar(path, sql: str, params=None):
    with reader(path, at=LATEST) as con:
        return con.execute(sql, params or []).fetchone()[0]


def fetch(path, sql: str, params=None) -> list[tuple]:
    with reader(path, at=LATEST) as con:
        return con.execute(sql, params or []).fetchall()


def lock_holder(warehouse) -> dict | None:
    """Who the warehouse's lock file names as its writer (read as a plain file: no lock taken)."""
    from warehouse.connect import read_holder

    return read_holder(lake_catalog(warehouse))


def rows_written_by(path, run_id: str) -> int:
    """Rows anywhere in raw or audit that name `run_id` as the run that wrote them."""
    total = 0
    with reader(path, at=LATEST) as con:
        for (table,) in con.execute(
            "select distinct table_schema || '.' || table_name from information_schema.columns "
            "where table_catalog = current_database() and column_name = 'run_id' and table_schema in ('raw', 'audit')"
        ).fetchall():
            total += con.execute(f"select count(*) from {table} where run_id = ?", [run_id]).fetchone()[0]
    return total


# -- the races -------------------------------------------------------------------------------------

START, END = dt.date(2025, 1, 13), dt.date(2025, 1, 24)
TICKERS, DATASETS = "SPY,NVDA,MSFT", "prices_daily,putcall_daily"
CHUNKS = 2 * 2  # two weeks x two datasets: the nightly knocks after the first, the rest load after the thaw
NIGHT = dt.date(2025, 1, 30)  # after the range; its 5-session lookback reaches back into it (2025-01-23, 24)
HISTORY = 30  # sessions of first history for the tickers the backfill did not load
BACKFILL = ["backfill", "--start", str(START), "--end", str(END), "--source", "sample", "--chunk", "week",
            "--tickers", TICKERS, "--datasets", DATASETS]
NIGHTLY = ["run", "--source", "sample", "--date", str(NIGHT), "--history-sessions", str(HISTORY), "--lookback-days", "5"]
# The same tickers a month earlier: a backfill with something to write, were it let in.
OTHER_BACKFILL = ["backfill", "--start", "2024-12-02", "--end", "2024-12-31", "--source", "sample", "--chunk", "week",
                  "--tickers", TICKERS, "--datasets", DATASETS]
RUN_STARTED = r"run (\S+) started \("


def refusal(child: Child) -> str:
    """What the CLI said when it gave up, on one line (Prefect's own log of the failed flow run
    comes before it, with its traceback)."""
    out = child.flat()
    return out[out.rindex("error: "):] if "error: " in out else ""


@pytest.fixture(scope="module")
def envs(prefect_harness) -> dict[str, dict]:
    """Environments for CLI runs: `served` reports to the session's Prefect test server (one
    server for every run, as under `bellwether serve`); `cron` starts Prefect's ephemeral
    server of its own, as `bellwether run` from cron does."""
    from prefect.settings import PREFECT_API_URL

    base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    base |= {"PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "INFO", "BELLWETHER_PROGRESS": "off"}
    return {
        "served": base | {"PREFECT_API_URL": PREFECT_API_URL.value()},
        "cron": base | {"PREFECT_HOME": worker_prefect_home()},
    }


@pytest.fixture(scope="module")
def sequential(prefect_harness, tmp_path_factory) -> dict:
    """The two runs one after the other, uncontested, in the test process: the backfill alone
    (kept as a file), then the nightly run after it."""
    from flows.backfill import backfill
    from flows.nightly import nightly

    folder = tmp_path_factory.mktemp("sequential")
    path = lake_target(folder)
    first = backfill(start=START, end=END, source="sample", warehouse=str(path), tickers=TICKERS, datasets=DATASETS, chunk="week")
    assert first["status"] == "succeeded" and first["chunks_loaded"] == CHUNKS
    backfill_only = copy_lake(path, folder, "backfill-only")
    second = nightly(run_date=NIGHT, source="sample", warehouse=str(path), history_sessions=HISTORY, lookback_days=5)
    assert second["status"] == "succeeded"
    return {"backfill": backfill_only, "backfill_sums": checksums(backfill_only), "both": path, "both_sums": checksums(path)}


@pytest.fixture(scope="module")
def race(envs, sequential, tmp_path_factory) -> dict:
    """One warehouse, five runs. A backfill starts; once it has recorded its start, three
    nightly runs are started: two with a one-second wait (one served, one from cron) and one
    with a long wait. The backfill is frozen right after its first chunk, holding the warehouse,
    until the impatient two have given up; the patient one is frozen in its wait while the
    backfill is thawed and finishes, and the warehouse is read. Then the nightly run goes on,
    is frozen right after its first load while another backfill knocks with a one-second wait,
    and is thawed to finish."""
    warehouse = lake_target(tmp_path_factory.mktemp("race"))
    w = ["--warehouse", str(warehouse)]
    seen: dict = {"warehouse": warehouse}
    with reaped(gentle=True) as children:
        fill = Child(BACKFILL + w + ["--wait", "300"], envs["served"], "backfill")
        children.append(fill)
        seen["backfill_run"] = fill.wait_for(RUN_STARTED)[1].group(1)
        # From here on the backfill holds the slot and the lock, until it ends.
        impatient = {mode: Child(NIGHTLY + w + ["--wait", "1"], envs[mode], f"nightly ({mode}, --wait 1)") for mode in ("served", "cron")}
        patient = Child(NIGHTLY + w + ["--wait", "300"], envs["served"], "nightly (served, --wait 300)")
        children.extend([*impatient.values(), patient])
        fill.wait_for(rf"chunk 1/{CHUNKS} loaded")
        fill.signal(signal.SIGSTOP)
        seen["holder_while_frozen"] = lock_holder(warehouse)
        patient.wait_for(r"Beginning flow run")
        time.sleep(1.0)  # not needed for the outcome, only to let it get into its wait
        patient.signal(signal.SIGSTOP)
        seen["refused"] = {mode: (child.finish(timeout=300), child) for mode, child in impatient.items()}
        seen["holder_after_refusals"] = lock_holder(warehouse)

        fill.signal(signal.SIGCONT)
        seen["backfill_exit"] = fill.finish(timeout=300)
        seen["after_backfill"] = compare(warehouse, sequential["backfill"], sequential["backfill_sums"])
        seen["runs_after_backfill"] = fetch(warehouse, "select run_id, flow, status from audit.runs")

        patient.signal(signal.SIGCONT)
        seen["nightly_run"] = patient.wait_for(RUN_STARTED)[1].group(1)
        patient.wait_for(r"loaded raw\.\w+: \d+ inserted")
        patient.signal(signal.SIGSTOP)
        seen["holder_during_night"] = lock_holder(warehouse)
        late = Child(OTHER_BACKFILL + w + ["--wait", "1"], envs["served"], "backfill (served, --wait 1)")
        children.append(late)
        seen["late_exit"] = late.finish(timeout=300)
        patient.signal(signal.SIGCONT)
        seen["nightly_exit"] = patient.finish(timeout=300)
    seen |= {"fill": fill, "patient": patient, "late": late}
    return seen


def test_a_nightly_with_a_short_wait_is_refused_naming_the_backfill_and_writes_nothing(race):
    backfill_run, fill = race["backfill_run"], race["fill"]
    for mode, (code, child) in race["refused"].items():
        assert code == 3, f"{child.name} exited {code}, not 3 (busy):\n{child.text()}"
        said = refusal(child)
        # The holder named: the backfill run, by the id it records in audit.runs, and its pid.
        assert f"backfill run {backfill_run} (pid {fill.proc.pid} on " in said, (mode, said)
        assert "gave up after waiting 1 s" in said and "Traceback" not in said, said
        assert not re.search(RUN_STARTED, child.text()), f"{child.name} recorded a run start:\n{child.text()}"
        if mode == "served":  # its id is its Prefect flow run's; the refusal opens with it
            me = re.match(r"error: nightly run ([0-9a-f-]{36}): another run holds", said)
            assert me, said
            assert rows_written_by(race["warehouse"], me.group(1)) == 0
    # No lock stolen: while and after they knocked, the lock file names the frozen backfill.
    for holder in (race["holder_while_frozen"], race["holder_after_refusals"]):
        assert holder and (holder["holder"], holder["pid"]) == (f"backfill run {backfill_run}", fill.proc.pid)
    # Nothing written: audit.runs heard of the backfill alone.
    assert [flow for _, flow, _ in race["runs_after_backfill"]] == ["backfill"]


def test_the_backfill_a_nightly_raced_ends_as_if_uncontested(race):
    assert race["backfill_exit"] == 0, race["fill"].text()
    assert race["runs_after_backfill"] == [(race["backfill_run"], "backfill", "succeeded")]
    assert race["after_backfill"].differences == []


def test_a_nightly_that_waits_runs_after_the_backfill_and_both_runs_data_are_intact(race, sequential):
    patient, fill, warehouse = race["patient"], race["fill"], race["warehouse"]
    assert race["nightly_exit"] == 0, patient.text()
    # It raced: it began while the backfill held the warehouse, and recorded its start only
    # after the backfill had finished.
    assert patient.when(r"Beginning flow run") < fill.when(r"run \S+ succeeded") < patient.when(RUN_STARTED)
    runs = fetch(warehouse, "select run_id, flow, status from audit.runs order by started_at")
    assert runs == [(race["backfill_run"], "backfill", "succeeded"), (race["nightly_run"], "nightly", "succeeded")]
    # Both runs' data, as when they run one after the other in a fresh warehouse.
    outcome = compare(warehouse, sequential["both"], sequential["both_sums"])
    assert outcome.differences == []
    print("equal to the sequential runs; floats within rounding:", outcome.rounding or "none")
    # The backfill's rows carry its run id (the nightly run restated 2025-01-23 and 24 without
    # changing a value, so it left them alone); the tickers new to the night carry its own.
    sessions = len(calendar.sessions(START, END))
    assert scalar(warehouse, "select count(*) from raw.prices_daily where ticker = 'SPY' and run_id = ?", [race["backfill_run"]]) == sessions
    assert scalar(warehouse, "select count(*) from raw.prices_daily where ticker = 'QQQ' and run_id = ?", [race["nightly_run"]]) == HISTORY + 1


def test_a_backfill_started_during_the_nightly_run_is_refused_naming_it_and_writes_nothing(race):
    late, patient = race["late"], race["patient"]
    assert race["late_exit"] == 3, late.text()
    said = refusal(late)
    assert f"nightly run {race['nightly_run']} (pid {patient.proc.pid} on " in said and "gave up after waiting 1 s" in said, said
    holder = race["holder_during_night"]
    assert (holder["holder"], holder["pid"]) == (f"nightly run {race['nightly_run']}", patient.proc.pid)
    me = re.match(r"error: backfill run ([0-9a-f-]{36}): another run holds", said)
    assert me, said
    assert rows_written_by(race["warehouse"], me.group(1)) == 0
    assert scalar(race["warehouse"], "select count(*) from audit.backfill_chunks where chunk_start < ?", [START]) == 0


def test_the_warehouse_the_runs_raced_for_is_sound(race):
    assert integrity_problems(race["warehouse"]) == []
    assert scalar(race["warehouse"], "select count(*) from marts.market_brief where trade_date = ?", [NIGHT]) == 1


def test_a_run_refused_the_writer_slot_names_the_run_writing_the_warehouse(tmp_path):
    """Served, the first guard a run meets is Prefect's `warehouse-writer` slot, and Prefect
    does not say who holds a slot: the refusal names the run from the warehouse's lock file,
    only while that run holds the lock (a record left by a killed run names nobody alive)."""
    import json

    from flows.writers import writer_slot
    from warehouse.connect import WarehouseBusy, lock_path, run_lock

    warehouse = lake_target(tmp_path)

    @contextlib.contextmanager
    def first_run(*, locks_file: bool):
        held, release = threading.Event(), threading.Event()

        def run():
            with writer_slot(timeout_s=30, holder="backfill run A", warehouse=warehouse):
                with run_lock(warehouse, holder="backfill run A", wait_s=5) if locks_file else contextlib.nullcontext():
                    held.set()
                    release.wait(60)

        t = threading.Thread(target=run)
        t.start()
        try:
            assert held.wait(60)
            yield
        finally:
            release.set()
            t.join()

    def refusal() -> str:
        with pytest.raises(WarehouseBusy) as info:
            with writer_slot(timeout_s=1, holder="nightly run B", warehouse=warehouse):
                pass
        return " ".join(str(info.value).split())

    with first_run(locks_file=True):
        message = refusal()
    assert message.startswith("nightly run B: another run holds Prefect's 'warehouse-writer' concurrency slot (")
    assert f"backfill run A (pid {os.getpid()} on " in message and f"is writing {warehouse}); gave up after waiting 1 s" in message
    # The slot's holder has not taken the lock (or holds it elsewhere); the lock file's record
    # is stale, from a run killed long ago: it names nobody.
    lock_path(lake_catalog(warehouse)).write_text(json.dumps({"holder": "backfill run K", "pid": 1, "host": "h", "since": "s"}))
    with first_run(locks_file=False):
        message = refusal()
    assert "(see the UI's Concurrency page); gave up after waiting 1 s" in message and "run K" not in message
