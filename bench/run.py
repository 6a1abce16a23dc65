"""`make bench`: the S&P 500-scale benchmarks; figures to bench/results.json.

    python -m bench.run [--repeats 3] [--work DIR] [--only load,full_build,...] [--storage ducklake,duckdb]
                        [--out bench/results.json]

Each stage runs `--repeats` times, each time in a fresh process on a fresh copy of its
starting warehouse; the figure kept is the median, the peak RSS the largest. The data (see
bench/data.py) is generated in the stage's process, outside the timed part. Every stage runs on
each storage asked for: the DuckLake (the default warehouse) and the single DuckDB file, so the
two stand side by side; the top-level figures are the DuckLake's. Targets are printed beside
the figures; they are goals to read, not assertions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from bench.data import N_TICKERS, SCALE_ENV, SNAPSHOT_SESSIONS, YEARS, BenchMarket
from bench.stages import BUILT, LOADED, STORAGE_ENV, STORAGES, copy_base, exists, rename, target

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
STAGES = ("load", "full_build", "incremental", "checks", "full_checks", "peer", "nightly", "readers", "nights", "live_nightly")
LIVE_VARIANTS = ("default", "tuned")
# Stages measured on the default storage only: the live night is bound by its fetches (minutes
# of network waits), which no storage changes.
DUCKLAKE_ONLY = {"live_nightly"}
console = Console()


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "duckdb": _version("duckdb"),
        "pandas": _version("pandas"),
        "prefect": _version("prefect"),
    }


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _child(cmd: list[str], *, env: dict, log: Path) -> tuple[float, float, int]:
    """Run one process to its end: (wall seconds, its peak RSS in MiB, exit status)."""
    began = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - began, usage.ru_maxrss / 1024, proc.returncode


def run_stage(name: str, work: Path, env: dict, market: BenchMarket, i: int) -> dict:
    log = work / f"{env[STORAGE_ENV]}-{name}-{i}.log"
    if name == "nightly":
        return run_nightly(work, env, market, log)
    if name == "live_nightly":
        return run_live_nightly(work, env, market, i)
    out = work / f"{env[STORAGE_ENV]}-{name}-{i}.json"
    wall, rss, code = _child([sys.executable, "-m", "bench.stages", name, str(work), str(out)], env=env, log=log)
    if code != 0:
        raise SystemExit(f"bench stage {name} failed (exit {code}); its log: {log}\n{log.read_text()[-3000:]}")
    return json.loads(out.read_text()) | {"wall_s": wall, "peak_rss_mib": rss}


def run_nightly(work: Path, env: dict, market: BenchMarket, log: Path) -> dict:
    """The whole nightly run as users start it (`bellwether run`), for the next session, on a
    copy of the built 20-year warehouse with the 500-ticker universe: Prefect's temporary
    server, fetches, checks, loads, the incremental build and its checks, Data Docs, the brief."""
    warehouse = copy_base(work, BUILT, "nightly")
    universe = market.write_universe(work / "universe-500.csv")
    env = env | {
        "BELLWETHER_WAREHOUSE": warehouse, "BELLWETHER_SAMPLE_START": str(market.history_start),
        "BELLWETHER_PROGRESS": "off", "PREFECT_HOME": str(work / ".prefect"),
    }
    cmd = [sys.executable, "-m", "flows.cli", "run", "--source", "sample", "--date", str(market.next_session), "--universe", str(universe)]
    wall, rss, code = _child(cmd, env=env, log=log)
    if code != 0:
        raise SystemExit(f"the nightly run failed (exit {code}); its log: {log}\n{log.read_text()[-3000:]}")
    return {"seconds": wall, "wall_s": wall, "peak_rss_mib": rss}


def run_live_nightly(work: Path, env: dict, market: BenchMarket, i: int) -> dict:
    """The nightly run on the live source for the next session, its 500 tickers served by the
    fake Yahoo market with latency, rate limits, timeouts, delisted and broken tickers (see
    bench.stages.stage_live_nightly), once with the default settings and once with the tuned
    ones, each in a process of its own on a copy of the built warehouse. The figures without a
    prefix are the default settings'; `tuned_*` the tuned ones'."""
    env = env | {"BELLWETHER_PROGRESS": "off", "PREFECT_HOME": str(work / ".prefect")}
    got = {}
    for variant in LIVE_VARIANTS:
        stage = f"live_nightly_{variant}"
        log, out = work / f"{env[STORAGE_ENV]}-{stage}-{i}.log", work / f"{env[STORAGE_ENV]}-{stage}-{i}.json"
        wall, rss, code = _child([sys.executable, "-m", "bench.stages", stage, str(work), str(out)], env=env, log=log)
        if code != 0:
            raise SystemExit(f"bench stage {stage} failed (exit {code}); its log: {log}\n{log.read_text()[-3000:]}")
        got[variant] = json.loads(out.read_text()) | {"wall_s": wall, "peak_rss_mib": rss}
        console.print(f"  [{env[STORAGE_ENV]}] live nightly, {variant} settings: {got[variant]['seconds']:.1f} s, "
                      f"{got[variant]['requests']:,} requests, {got[variant]['retries']:,} retries, peak RSS {rss:,.0f} MiB, "
                      f"{got[variant]['status']}")
    default, tuned = got["default"], got["tuned"]
    return {
        "seconds": default["seconds"], "requests": default["requests"], "retries": default["retries"],
        "default_peak_rss_mib": default["peak_rss_mib"], "tuned_s": tuned["seconds"], "tuned_requests": tuned["requests"],
        "tuned_retries": tuned["retries"], "tuned_peak_rss_mib": tuned["peak_rss_mib"],
        "peak_rss_mib": max(default["peak_rss_mib"], tuned["peak_rss_mib"]), "wall_s": default["wall_s"] + tuned["wall_s"],
        "default": default, "tuned": tuned,
    }


def prepare(work: Path, env: dict, market: BenchMarket) -> None:
    """The starting warehouses: history loaded (base-loaded) and built (base-built), kept in
    --work between runs of the same scale."""
    scale = work / "scale.txt"
    if scale.exists() and scale.read_text() != market.scale:
        for path in work.glob("base-*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    scale.write_text(market.scale)
    storage = env[STORAGE_ENV]
    if not exists(target(work, LOADED)):
        console.print(f"preparing ({storage}): loading the {market.years}-year history once ...")
        run_stage("load", work, env, market, 0)
        rename(work, "load", LOADED)
    if not exists(target(work, BUILT)):
        console.print(f"preparing ({storage}): building every mart once ...")
        run_stage("full_build", work, env, market, 0)
        rename(work, "full", BUILT)
    if not (work / ".prefect").exists():  # Prefect creates and migrates its database on first use
        console.print("preparing: Prefect's local database ...")
        warm = "from prefect import flow; flow(name='bench-warm-up')(lambda: None)()"
        subprocess.run([sys.executable, "-c", warm], cwd=ROOT, env=env | {"PREFECT_HOME": str(work / ".prefect")},
                       check=True, capture_output=True)


TARGETS = {
    "full_build_s": ("<=", 30.0, "the full build of all marts within 30 s"),
    "incremental_build_s": ("<=", None, "the incremental nightly build within 10% of the full build"),
    "load_rows_per_s": (">=", 1_000_000, "loads above 1 million rows per second"),
    "pandas_peer_ratio": (">=", 1.5, "the SQL at least 1.5 times faster than the pandas peer"),
    "polars_peer_ratio": (">=", 1.0, "the SQL at least as fast as the Polars peer"),
    "peak_rss_mib": ("<=", 3000, "peak memory at most 3,000 MiB in every stage"),
}


# Each figure: the stage it comes from and the field of that stage's runs whose median it is
# (peak_rss_mib: the largest over every stage).
FIGURE_STAGES = {
    "full_build_s": ("full_build", "seconds"),
    "incremental_build_s": ("incremental", "seconds"),
    "load_rows_per_s": ("load", "rows_per_s"),
    "nightly_500_s": ("nightly", "seconds"),
    "checks_night_s": ("checks", "seconds"),
    "checks_full_s": ("full_checks", "seconds"),
    "pandas_peer_ratio": ("peer", "ratio"),
    "polars_peer_ratio": ("peer", "polars_ratio"),
    "read_during_write_p50_ms": ("readers", "p50_ms"),
    "read_during_write_max_ms": ("readers", "max_ms"),
    "reads_refused_during_write": ("readers", "refused"),
    "maintain_s": ("nights", "maintain_s"),
    "morning_s_before_maintain": ("nights", "morning_s_before"),
    "morning_s_after_maintain": ("nights", "morning_s_after"),
    "live_nightly_500_s": ("live_nightly", "seconds"),
    "live_nightly_requests": ("live_nightly", "requests"),
    "live_nightly_retries": ("live_nightly", "retries"),
    "live_nightly_peak_rss_mib": ("live_nightly", "default_peak_rss_mib"),
    "live_nightly_500_tuned_s": ("live_nightly", "tuned_s"),
    "live_nightly_tuned_requests": ("live_nightly", "tuned_requests"),
    "live_nightly_tuned_retries": ("live_nightly", "tuned_retries"),
    "live_nightly_tuned_peak_rss_mib": ("live_nightly", "tuned_peak_rss_mib"),
}


def summarise(runs: dict[str, list[dict]]) -> dict:
    def median(stage: str, key: str) -> float | None:
        values = [r[key] for r in runs.get(stage, []) if r.get(key) is not None]
        return statistics.median(values) if values else None

    figures = {key: median(stage, field) for key, (stage, field) in FIGURE_STAGES.items()} | {
        "peak_rss_mib": max((r["peak_rss_mib"] for rs in runs.values() for r in rs), default=None),
    }
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()}


def verdicts(figures: dict) -> dict[str, str]:
    out = {}
    for key, (op, target, _) in TARGETS.items():
        value = figures.get(key)
        if key == "incremental_build_s" and figures.get("full_build_s"):
            target = 0.10 * figures["full_build_s"]
        if value is None or target is None:
            continue
        met = value <= target if op == "<=" else value >= target if op == ">=" else value < target
        out[key] = ("met" if met else "missed") + f" ({op} {target:,.4g})"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage (the median is kept)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed after)")
    parser.add_argument("--only", default=",".join(STAGES), help=f"stages to run, of {', '.join(STAGES)}")
    parser.add_argument("--storage", default=",".join(STORAGES), help=f"storages to measure, of {', '.join(STORAGES)}")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the figures go (default bench/results.json; at another scale, results.json in --work)")
    parser.add_argument("--tickers", type=int, default=N_TICKERS, help="tickers in the market (a smaller run for a try-out)")
    parser.add_argument("--years", type=int, default=YEARS, help="years of history")
    parser.add_argument("--snapshots", type=int, default=SNAPSHOT_SESSIONS, help="sessions of option and valuation snapshots")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    storages = [s.strip() for s in args.storage.split(",") if s.strip()]
    unknown = (set(only) - set(STAGES)) | (set(storages) - set(STORAGES))
    if unknown:
        parser.error(f"unknown stage(s) or storage(s) {', '.join(sorted(unknown))}: stages {', '.join(STAGES)}; "
                     f"storages {', '.join(STORAGES)}")

    info = machine()
    console.print(f"machine: {info['cores']} cores, {info['memory_gib']} GiB memory, {info['cpu']}, Python {info['python']}, "
                  f"DuckDB {info['duckdb']}, pandas {info['pandas']}")
    market = BenchMarket(n_tickers=args.tickers, years=args.years, snapshot_sessions=args.snapshots)
    console.print(f"market: {market.n_tickers} tickers x {market.years} years ({market.history_start}..{market.history_end}), "
                  f"option and valuation snapshots for the last {market.snapshot_sessions} sessions; next session {market.next_session}")
    env = dict(os.environ) | {"PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "WARNING", SCALE_ENV: market.scale}
    env.pop("BELLWETHER_WAREHOUSE", None)
    scratch = args.work or Path(tempfile.mkdtemp(prefix="bellwether-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    default_scale = market.scale == BenchMarket().scale
    out = args.out or (RESULTS if default_scale else (args.work or Path.cwd()) / "results.json")
    began = time.perf_counter()
    runs: dict[str, dict[str, list[dict]]] = {}
    try:
        for storage in storages:
            os.environ[STORAGE_ENV] = storage  # for prepare() here; the stages get it from env
            senv = env | {STORAGE_ENV: storage}
            prepare(scratch, senv, market)
            for stage in only:
                if stage in DUCKLAKE_ONLY and storage != "ducklake":
                    console.print(f"  [{storage}] {stage}: measured on the DuckLake only")
                    continue
                for i in range(1, args.repeats + 1):
                    r = run_stage(stage, scratch, senv, market, i)
                    runs.setdefault(storage, {}).setdefault(stage, []).append(r)
                    console.print(f"  [{storage}] {stage} run {i}/{args.repeats}: {r['seconds']:.2f} s, "
                                  f"peak RSS {r['peak_rss_mib']:,.0f} MiB"
                                  + (f", {r['rows_per_s']:,.0f} rows/s" if "rows_per_s" in r else "")
                                  + (f", pandas/SQL {r['ratio']:.2f}x, Polars/SQL {r['polars_ratio']:.2f}x" if "ratio" in r else "")
                                  + (f", {r['answered']} answers (p50 {r['p50_ms']} ms), {r['refused']} refused" if "refused" in r else ""))
    finally:
        if args.work is None:
            shutil.rmtree(scratch, ignore_errors=True)

    previous = json.loads(out.read_text()) if out.exists() else {}
    market_info = {"tickers": market.n_tickers, "years": market.years, "history": f"{market.history_start}..{market.history_end}",
                   "snapshot_sessions": market.snapshot_sessions, "next_session": str(market.next_session)}
    if previous.get("market") != market_info:
        previous = {}  # figures of another market are not this one's
    before = previous.get("before_ducklake")
    if before is None and previous and "by_storage" not in previous:
        # The figures of the single DuckDB 2.0 file this project used before DuckLake, kept once.
        before = {k: previous[k] for k in (*FIGURE_STAGES, "peak_rss_mib") if k in previous} | {
            "storage": f"one DuckDB {previous.get('machine', {}).get('duckdb', '?')} file", "measured_at": previous.get("measured_at"),
        }
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    command = ("python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    by_storage = previous.get("by_storage", {})
    for storage in STORAGES:
        old = by_storage.get(storage, {})
        # A run of some stages keeps the other stages' runs: every figure, the peak memory over
        # all stages and the incremental build's share of the full build come from the latest
        # run of each stage, and each figure says which command measured it.
        all_runs = {**old.get("runs", {}), **runs.get(storage, {})}
        if not all_runs:
            continue
        figures = summarise(all_runs)
        remeasured = {k for k, (stage, _) in FIGURE_STAGES.items() if stage in runs.get(storage, {})}
        remeasured |= {"peak_rss_mib"} if runs.get(storage) else set()
        provenance = old.get("provenance", {}) | {
            k: {"measured_at": now, "command": command} for k in remeasured if figures.get(k) is not None
        }
        by_storage[storage] = {"figures": figures, "targets": verdicts(figures), "provenance": provenance, "runs": all_runs}
        table = Table(title=f"Bellwether benchmarks on {storage} (median of {args.repeats})")
        for col in ("figure", "value", "target"):
            table.add_column(col)
        for key, value in figures.items():
            shown = "-" if value is None else f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
            table.add_row(key, shown, verdicts(figures).get(key, ""))
        console.print(table)
    main_figures = by_storage.get(STORAGES[0], {}).get("figures", {})
    result = {k: v for k, v in main_figures.items() if v is not None} | {
        "storage": STORAGES[0],
        "measured_at": now,
        "command": command,
        "repeats": args.repeats,
        "machine": info,
        "market": market_info,
        "targets": verdicts(main_figures),
        "by_storage": by_storage,
        "wall_s": round(time.perf_counter() - began, 1),
    } | ({"before_ducklake": before} if before else {}) | (
        # Each performance change's own before/after, written by hand with how it was measured
        # (a profile of one model or one load on the prepared warehouse): kept across runs.
        {"changes": previous["changes"]} if previous.get("changes") else {}
    )
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
