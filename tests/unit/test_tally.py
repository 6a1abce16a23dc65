"""Fetch fan-out order and the run tally the flows report."""

import concurrent.futures
import threading
import time

import datetime as dt

from flows.tally import Tally, failed_fetches, fetch_in_order
from sources.contract import PRICES, VALUATION, empty_batch, outcome_frame
from transforms.plan import DatasetWindow
from warehouse.load import LoadResult


def test_fetches_run_ahead_but_batches_come_back_in_plan_order():
    windows = [DatasetWindow("prices_daily", d, d) for d in range(8)]
    running, peak, lock = set(), [0], threading.Lock()

    def work(w):
        with lock:
            running.add(w.start)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.05 * (8 - w.start) / 8)  # later windows finish sooner
        with lock:
            running.discard(w.start)
        return f"batch {w.start}"

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        got = [(w.start, batch) for w, batch in fetch_in_order(windows, lambda w: pool.submit(work, w), max_in_flight=3)]
    assert got == [(d, f"batch {d}") for d in range(8)]
    assert 1 < peak[0] <= 3  # bounded: never more than 3 fetched ahead of the loads


def _night(dataset_batches):
    tally = Tally()
    day = dt.date(2026, 1, 2)
    for dataset, batch in dataset_batches:
        tally.add(DatasetWindow(dataset.name, day, day), batch, LoadResult(table=f"raw.{dataset.name}", delivered=0, inserted=0, updated=0, unchanged=0, rejected=0))
    return tally


def _batch(dataset, outcomes):
    batch = empty_batch(dataset)
    batch.outcomes = outcome_frame({"dataset": dataset.name, **o} for o in outcomes)
    return batch


def test_a_partial_night_names_every_failed_ticker_per_dataset_the_delisted_apart():
    broken = [f"SYN{i:03d}" for i in range(1, 31)]  # 30 failures: more than any cut-off would show
    prices = _batch(PRICES, [
        *({"ticker": t, "status": "failed", "attempts": 5, "reason": "HTTP 500", "retryable": True} for t in reversed(broken)),
        {"ticker": "ZZA", "status": "failed", "attempts": 1, "reason": "unknown or delisted ticker ZZA", "retryable": False},
        {"ticker": "NVDA", "status": "ok", "rows": 1, "attempts": 1},
    ])
    valuation = _batch(VALUATION, [
        {"ticker": "ZZA", "status": "failed", "attempts": 1, "reason": "unknown or delisted ticker ZZA", "retryable": False},
        {"ticker": "SPY", "status": "failed", "attempts": 1, "reason": "malformed response"},  # says nothing: retryable
    ])
    tally = _night([(PRICES, prices), (VALUATION, valuation)])

    message = tally.problems("run-1", retry_hint="retry with X")
    assert message == (
        f"33 fetch(es) failed: prices_daily: 30 retryable ({', '.join(broken)}), 1 unknown or delisted (ZZA); "
        "valuation_snapshots: 1 retryable (SPY), 1 unknown or delisted (ZZA) "
        "(reasons and attempts: audit.fetch_outcomes, run run-1); retry with X"
    )
    assert [(f["dataset"], f["ticker"], f["retryable"], f["attempts"]) for f in tally.failed][-3:] == [
        ("prices_daily", "ZZA", False, 1), ("valuation_snapshots", "ZZA", False, 1), ("valuation_snapshots", "SPY", True, 1),
    ]
    assert tally.tried == {"prices_daily": {*broken, "ZZA", "NVDA"}, "valuation_snapshots": {"ZZA", "SPY"}}


def test_only_delisted_failures_get_no_retry_hint():
    failed = [{"dataset": "prices_daily", "ticker": "ZZA", "retryable": False}]
    assert failed_fetches(failed, "r", "retry with X") == (
        "1 fetch(es) failed: prices_daily: 1 unknown or delisted (ZZA) (reasons and attempts: audit.fetch_outcomes, run r)"
    )
