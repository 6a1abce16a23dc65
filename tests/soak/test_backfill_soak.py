"""Soak: the same backfill SIGKILLed at random points and resumed each time ends with the tables
of an uninterrupted run: no duplicate row, no missing row, nothing in quarantine that should not
be there, every chunk recorded once and built into the marts.

    make soak                                              # 20 kills, a fresh random seed
    BELLWETHER_SOAK_SEED=1234 BELLWETHER_SOAK_KILLS=5 .venv/bin/python -m pytest -m soak tests/soak

How the kill points are chosen. The uninterrupted reference is itself a CLI run, and its log
(PREFECT_LOGGING_LEVEL=INFO) is a timeline of landmarks: the flow beginning, the run recorded,
the universe loaded, the plan; each chunk fetched, loaded and recorded; the mart build (silent
until it ends); the Data Docs; the checks' summary and finish-run. Its phases are laid end to
end, the loads stretched to half of the whole and the four short phases to an eighth each (the
build takes seconds of a minute of loads), cut into as many equal slices as there are kills,
and one instant is drawn at random in each (random.Random(seed)): the kills are random and
still cover the whole run, in order. An instant is "the n-th log line of a phase (for the
loads: of a chunk), then d seconds": the run being killed, a resumed one that skips the chunks
already recorded, is SIGKILLed with its whole process group d seconds after it reaches that
landmark, or as it leaves the phase if it gets through it sooner (a resumed run with nothing
left to build has Data Docs and a finish of a fraction of a second). After each kill the
warehouse is inspected (chunks recorded and built, the run's status in audit.runs, the lock
free, the catalog's WAL left behind, and what readers see: a killed run never published, so
nothing of it is visible at the published snapshot); then the same command resumes. A last
resume runs to the end. The warehouse is the default storage, a DuckLake with a SQLite catalog;
kills also land in the lake maintenance that follows a run's publication (the weekly chunks
leave more small files than the threshold).

The runs use Prefect's ephemeral mode (no PREFECT_API_URL), as `bellwether backfill` from a
shell or cron does: under a Prefect server a SIGKILLed run would keep the `warehouse-writer`
slot until its lease expired (and the test server has no service to expire it).
"""

from __future__ import annotations

import bisect
import datetime as dt
import fcntl
import os
import random
import re
import signal
import time

import pytest

from sources import calendar
from tests.conftest import ROOT, lake_catalog, lake_target
from tests.integration.test_racing_writers import Child, checksums, compare, fetch, integrity_problems, scalar
from warehouse.connect import LATEST, WarehouseMissing, reader

pytestmark = pytest.mark.soak

START, END = dt.date(2024, 11, 1), dt.date(2025, 1, 31)
TICKERS = ("SPY", "NVDA", "MSFT")
DATASETS = ("prices_daily", "putcall_daily", "fundamentals_quarterly", "option_quotes", "valuation_snapshots")
ARGS = ["backfill", "--start", str(START), "--end", str(END), "--source", "sample", "--chunk", "week",
        "--tickers", ",".join(TICKERS), "--datasets", ",".join(DATASETS), "--wait", "30"]
RUN_TIMEOUT_S = 600


def knob(name: str, default: str) -> str:
    """A BELLWETHER_SOAK_* setting (tests/conftest.py keeps these, unlike Bellwether's own)."""
    return os.environ.get(name, default)


# -- where a run is, from its log lines ---------------------------------------------------------

PHASES = ("startup", "prepare", "load", "build", "docs", "finish", "exit")
BEGIN = re.compile(r"Beginning flow run")
PLAN = re.compile(r"backfill plan: (\d+) chunk\(s\) to load, (\d+) done")
CHUNK = re.compile(r"chunk (\d+)/(\d+) loaded")
BUILT = re.compile(r"Task run 'build-marts-[^']*' - Finished in state|nothing to do")
DOCS = re.compile(r"Task run 'data-docs-[^']*' - Finished in state")
FLOW_DONE = re.compile(r"Flow run '[^']*' - Finished in state")
STARTED = re.compile(r"run (\S+) started \(")
SUCCEEDED = re.compile(r"run (\S+) succeeded")


class Tracker:
    """Places each log line of a backfill run: (phase, line within the phase, and for the loads
    the chunk, numbered over the whole backfill, and the line within it). Positions compare in
    run order, so a resumed run, which skips the chunks already recorded, can be stopped at the
    reference run's landmark or at the first line past it."""

    def __init__(self) -> None:
        self.phase, self.index, self.done, self.segment = 0, 0, 0, 0
        self.run_id: str | None = None

    def feed(self, line: str) -> tuple[int, int, int]:
        if self.phase == 2:
            position = (2, self.segment, self.index)
        else:
            position = (self.phase, self.index, 0)
        self.index += 1
        if m := STARTED.search(line):
            self.run_id = m.group(1)
        if self.phase == 0 and BEGIN.search(line):
            self._next(1)
        elif self.phase == 1 and (m := PLAN.search(line)):
            todo, self.done = int(m.group(1)), int(m.group(2))
            self._next(2 if todo else 3)
            self.segment = self.done + 1
        elif self.phase == 2 and (m := CHUNK.search(line)):
            i, of = int(m.group(1)), int(m.group(2))
            self.segment, self.index = self.done + i + 1, 0
            if i == of:
                self._next(3)
        elif self.phase == 3 and BUILT.search(line):
            self._next(4)
        elif self.phase == 4 and DOCS.search(line):
            self._next(5)
        elif self.phase == 5 and FLOW_DONE.search(line):
            self._next(6)
        return position

    def _next(self, phase: int) -> None:
        self.phase, self.index = phase, 0


def describe(position: tuple[int, int, int]) -> str:
    phase, a, b = position
    return f"load, chunk {a} line {b}" if phase == 2 else f"{PHASES[phase]} line {a}"


# Of the kills, the share drawn in each phase: half among the loads (a minute of the run), the
# rest evenly over the short phases (seconds each, and the build the likeliest to go wrong).
SHARES = {1: 0.125, 2: 0.5, 3: 0.125, 4: 0.125, 5: 0.125}


def kill_points(timeline: list[tuple[float, tuple, str]], starts: dict[int, float], kills: int, rng: random.Random) -> list:
    """`kills` instants of the reference run's flow, stratified: the flow's phases (prepare,
    load, build, docs, finish) are laid end to end, each stretched to its share (SHARES) of the
    whole, cut into `kills` equal slices, and one instant drawn at random in each. Returned as
    (landmark: the position of the last log line before the instant, delay: the seconds from
    it, the phase the instant is in), in run order."""
    spans = {p: starts[p + 1] - starts[p] for p in range(1, 6)}
    times = [t for t, _, _ in timeline]
    out = []
    for k in range(kills):
        u, phase = (k + rng.random()) / kills, 1
        while phase < 5 and u >= SHARES[phase]:
            u -= SHARES[phase]
            phase += 1
        instant = starts[phase] + min(u / SHARES[phase], 1.0) * spans[phase]
        j = bisect.bisect_right(times, instant) - 1
        out.append((timeline[j][1], instant - times[j], phase))
    return out


# -- the warehouse between runs -------------------------------------------------------------------


def lock_is_free(warehouse: str) -> bool:
    """Nobody holds the warehouse's writer lock (probed directly with flock, not through the
    code under test)."""
    catalog = lake_catalog(warehouse)
    lock = catalog.with_name(catalog.name + ".lock")
    if not lock.exists():
        return True
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def inspect(warehouse: str, run_id: str | None) -> dict:
    """What a killed run left: its newest commit (as the next run finds it), and what readers
    see (the published snapshot)."""
    catalog = lake_catalog(warehouse)
    wal = catalog.with_name(catalog.name + "-wal")
    state = {"wal_kb": round(wal.stat().st_size / 1024) if wal.exists() else 0, "lock_free": lock_is_free(warehouse)}
    empty = {"chunks": 0, "built": 0, "status": None, "twice": 0, "marts": 0, "published_status": None, "published_chunks": 0}
    if not catalog.exists():
        return state | empty
    try:
        newest = _state(warehouse, run_id, LATEST)
    except WarehouseMissing:  # killed before the lake was even created
        return state | empty
    try:
        published = _state(warehouse, run_id, None)
    except WarehouseMissing:  # nothing published yet
        published = {"status": None, "chunks": 0}
    return state | newest | {"published_status": published["status"], "published_chunks": published["chunks"]}


def _state(warehouse: str, run_id: str | None, at) -> dict:
    with reader(warehouse, at=at) as con:
        def has(table: str) -> bool:
            return con.execute(
                "select count(*) from information_schema.tables "
                "where table_catalog = current_database() and table_schema || '.' || table_name = ?", [table]
            ).fetchone()[0] > 0

        chunks = built = twice = 0
        if has("audit.backfill_chunks"):
            chunks, built, distinct = con.execute(
                "select count(*), count(built_at), count(distinct (dataset, chunk_start, chunk_end)) from audit.backfill_chunks"
            ).fetchone()
            twice = chunks - distinct
        status = None
        if run_id and has("audit.runs"):
            status = (con.execute("select status from audit.runs where run_id = ?", [run_id]).fetchone() or [None])[0]
        marts = con.execute(
            "select count(*) from information_schema.tables where table_catalog = current_database() and table_schema = 'marts'"
        ).fetchone()[0]
    return {"chunks": chunks, "built": built, "status": status, "twice": twice, "marts": marts}


# -- the soak ---------------------------------------------------------------------------------------


@pytest.mark.timeout(3 * 3600)
def test_a_backfill_killed_at_random_points_resumes_to_the_tables_of_an_uninterrupted_run(tmp_path):
    began = time.monotonic()
    seed = int(knob("BELLWETHER_SOAK_SEED", str(random.SystemRandom().randrange(2**32))))
    kills = int(knob("BELLWETHER_SOAK_KILLS", "20"))
    print(f"\nsoak seed {seed}, {kills} kills (BELLWETHER_SOAK_SEED={seed} BELLWETHER_SOAK_KILLS={kills} repeats them)", flush=True)
    rng = random.Random(seed)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "INFO", "BELLWETHER_PROGRESS": "off",
            "PREFECT_HOME": str(tmp_path / "prefect-home")}

    # The uninterrupted run, through the same command: its tables, and its log as a timeline.
    reference = lake_target(tmp_path / "reference")
    ref = Child(ARGS + ["--warehouse", str(reference)], env, "reference backfill")
    assert ref.finish(timeout=RUN_TIMEOUT_S) == 0, ref.text()
    tracker, timeline, starts = Tracker(), [], {}
    for t, line in ref.lines:
        before = tracker.phase
        timeline.append((t - ref.started, tracker.feed(line), line))
        if tracker.phase != before:
            starts[tracker.phase] = t - ref.started  # a phase begins at the line that ends the one before
    total = scalar(reference, "select count(*) from audit.backfill_chunks")
    assert tracker.phase == 6 and set(starts) == {1, 2, 3, 4, 5, 6}, starts
    targets = kill_points(timeline, starts, kills, rng)
    reference_s = time.monotonic() - began
    print(f"reference: {total} chunks, {len(timeline)} log lines, run {reference_s:.0f} s; phases (s after start): "
          + ", ".join(f"{PHASES[p]} {starts[p]:.1f}..{starts[p + 1]:.1f}" for p in range(1, 6)), flush=True)

    # The same backfill, killed at each point in turn and resumed.
    warehouse = lake_target(tmp_path / "soak")
    record = []
    for k, (target, delay, phase) in enumerate(targets, start=1):
        before = inspect(warehouse, None)["chunks"]
        child = Child(ARGS + ["--warehouse", str(warehouse)], env, f"run {k}")
        tracker, fire_at, landed = Tracker(), None, None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            now = time.monotonic()
            if fire_at is not None and now >= fire_at:
                landed = PHASES[tracker.phase]
                child.signal(signal.SIGKILL)
                break
            try:
                item = child.next_line((fire_at if fire_at is not None else deadline) - now)
            except TimeoutError:
                assert fire_at is not None, f"run {k} printed nothing for {RUN_TIMEOUT_S} s:\n{child.text()}"
                continue
            if item is None:  # it ended on its own before the kill point
                break
            arrived, line = item
            position = tracker.feed(line)
            if fire_at is None and position >= target:
                fire_at = arrived + delay
            if fire_at is not None and tracker.phase > phase:
                # This run is through the phase sooner than the reference was (a resumed run
                # with nothing left to load or build): kill it as it leaves the phase.
                fire_at = arrived
        code = child.proc.wait(timeout=60)
        seconds = (time.monotonic() - child.started)
        state = inspect(warehouse, tracker.run_id)
        said_succeeded = any(SUCCEEDED.search(line) for _, line in child.lines)
        record.append({
            "k": k, "target": f"{PHASES[phase]}: {describe(target)} +{delay:.2f} s", "landed": landed or "(ended)", "code": code,
            "hit": code == -signal.SIGKILL, "seconds": seconds, "before": before, "run_id": tracker.run_id,
            "said_succeeded": said_succeeded, **state,
        })
        assert code in (-signal.SIGKILL, 0), f"run {k} failed (exit {code}) instead of being killed or finishing:\n{child.text()}"
        assert state["lock_free"], f"run {k}, SIGKILLed, left the writer lock held"
        assert state["twice"] == 0, f"after run {k}: a chunk is recorded twice"
        # Readers never see a killed run: it published nothing (a run that got through its
        # publication before the kill is published, as succeeded).
        assert state["published_status"] in (None, "succeeded"), f"after run {k}: readers see it {state['published_status']}"
        assert state["published_status"] is None or said_succeeded or not record[-1]["hit"] or state["status"] == "succeeded", state
        print(f"kill {k:2d}/{kills}: {record[-1]['target']:<44} landed in {record[-1]['landed']:<8} "
              f"{'hit' if record[-1]['hit'] else 'MISSED'} after {seconds:5.1f} s: {state['chunks']}/{total} chunks, "
              f"{state['built']} built, run {state['status']} (published: {state['published_status']}, "
              f"{state['published_chunks']} chunks), catalog WAL {state['wal_kb']} KB", flush=True)

    # The last resume, to the end.
    final = Child(ARGS + ["--warehouse", str(warehouse)], env, "final resume")
    assert final.finish(timeout=RUN_TIMEOUT_S) == 0, final.text()
    assert re.search(r"Bellwether backfill .*: succeeded", final.flat()), final.text()

    _summarize(record, kills, total, seed)
    got, want = checksums(warehouse), checksums(reference)
    _print_checksums(got, want)

    # The same tables as the uninterrupted run: raw, staging, marts, and the audit of what was
    # loaded, checked and refused (lineage and timestamps aside).
    outcome = compare(warehouse, reference, want)
    assert outcome.differences == [], "\n".join(outcome.differences)
    print("marts equal only to within floating-point rounding:", outcome.rounding or "none")

    # No missing row and no duplicate: counts computed from the NYSE calendar, not the code.
    sessions = len(calendar.sessions(START, END))
    stocks = len(TICKERS) - 1  # SPY is an ETF: valuation snapshots are for stocks
    assert scalar(warehouse, "select count(*) from raw.prices_daily") == len(TICKERS) * sessions
    assert fetch(warehouse, "select count(distinct trade_date), count(*) = count(distinct trade_date) * count(distinct scope) "
                            "from raw.putcall_daily") == [(sessions, True)]
    assert scalar(warehouse, "select count(*) from raw.valuation_snapshots") == stocks * sessions
    assert scalar(warehouse, "select count(distinct (ticker, snapshot_date)) from raw.option_quotes") == len(TICKERS) * sessions
    assert scalar(warehouse, "select count(*) from marts.technicals_daily") == len(TICKERS) * sessions
    assert scalar(warehouse, "select count(*) from marts.market_brief") == sessions
    # Quarantine: what the uninterrupted run refused (the sample source refuses nothing).
    assert scalar(warehouse, "select count(*) from audit.quarantine") == scalar(reference, "select count(*) from audit.quarantine") == 0
    # Every chunk recorded exactly once, and built into the marts.
    assert fetch(warehouse, "select count(*), count(distinct (dataset, chunk_start, chunk_end)), count(built_at) "
                            "from audit.backfill_chunks") == [(total, total, total)]

    # Run history: a run killed before its Data Docs stays 'running' (nothing marks a dead run);
    # one killed later may have finished; none failed; the last run succeeded.
    runs = fetch(warehouse, "select run_id, status from audit.runs order by started_at")
    status = dict(runs)
    assert runs[-1][1] == "succeeded" and set(status) >= {r["run_id"] for r in record if r["run_id"]}
    for r in record:
        if r["run_id"] and r["hit"]:
            allowed = ({"running"} if r["landed"] in ("prepare", "load", "build") else
                       {"succeeded"} if r["said_succeeded"] else {"running", "succeeded"})
            assert status[r["run_id"]] in allowed, r
    assert {s for _, s in runs} <= {"running", "succeeded"}, runs

    # The kills interrupted runs, all over them.
    hits = [r for r in record if r["hit"]]
    assert len(hits) >= 0.75 * kills, f"only {len(hits)} of {kills} kills hit a live run"
    if kills >= 10:
        assert len({r["landed"] for r in hits}) >= 3, [r["landed"] for r in hits]
        assert len({r["chunks"] for r in hits}) >= kills // 4, [r["chunks"] for r in hits]
        assert any(0 < r["chunks"] < total for r in hits), "no kill landed among the loads"
        assert any(r["landed"] in ("build", "docs", "finish") for r in hits), "no kill landed after the loads"

    # Sound: the catalog passes SQLite's integrity check, every data file is read, keys and
    # grains are unique.
    assert integrity_problems(warehouse) == []
    print(f"soak: {kills} kills ({len(hits)} hit a live run), {time.monotonic() - began:.0f} s in all "
          f"(reference {reference_s:.0f} s); seed {seed}", flush=True)


def _summarize(record: list[dict], kills: int, total: int, seed: int) -> None:
    print(f"\nkill points (seed {seed}):")
    print(f"{'#':>3}  {'target: phase, reference landmark + delay':<46} {'landed':<8} {'hit':<4} {'s':>5}  "
          f"{'chunks':>9}  {'built':>5}  {'run status':<10} {'marts':>5} {'WAL KB':>6}")
    for r in record:
        print(f"{r['k']:>3}  {r['target']:<46} {r['landed']:<8} {'yes' if r['hit'] else 'no':<4} {r['seconds']:5.1f}  "
              f"{r['before']:>3}->{r['chunks']:<3}/{total}  {r['built']:>5}  {str(r['status']):<10} {r['marts']:>5} {r['wal_kb']:>6}")
    by_phase: dict[str, int] = {}
    for r in record:
        if r["hit"]:
            by_phase[r["landed"]] = by_phase.get(r["landed"], 0) + 1
    print(f"{sum(r['hit'] for r in record)}/{kills} kills hit a live run; by phase: {by_phase}")


def _print_checksums(got: dict, want: dict) -> None:
    print("\ncontent checksums (rows, md5 of the sorted rows without lineage), soak vs uninterrupted:")
    for table in sorted(want):
        g = got.get(table)
        same = "=" if g == want[table] else "DIFFERS"
        print(f"  {table:<36} {want[table][0]:>7}  {want[table][1]}  {same if g else 'MISSING'}")
