"""Fetch fan-out order and the run tally the flows report."""

import concurrent.futures
import threading
import time

from flows.tally import fetch_in_order
from transforms.plan import DatasetWindow


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
