"""Progress bars for long work: the chunks of a backfill, the datasets of a night, the tickers a
network source fetches.

Drawn with Rich on stderr, and only when stderr is a terminal: under cron, CI, a Prefect worker
or a pipe nothing is drawn (the run's log lines say the same). `BELLWETHER_PROGRESS=off` turns
the bars off on a terminal too, `=on` forces them (for example inside `script` or tmux logs).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from sources.base import add_ticker_listener, remove_ticker_listener


def enabled() -> bool:
    mode = os.environ.get("BELLWETHER_PROGRESS", "auto").strip().lower()
    if mode in ("off", "0", "false", "no"):
        return False
    if mode in ("on", "1", "true", "yes", "always"):
        return True
    return sys.stderr.isatty()


class Bar:
    """One line of the display; `advance()` is safe from any thread. A no-op when not shown."""

    def __init__(self, progress=None, task_id=None) -> None:
        self._progress, self._task = progress, task_id

    def advance(self, n: int = 1, description: str | None = None) -> None:
        if self._progress is not None:
            kwargs = {"description": description} if description else {}
            self._progress.update(self._task, advance=n, **kwargs)


class Display:
    def __init__(self, progress=None) -> None:
        self._progress = progress
        self._tickers: dict[str, object] = {}
        self._lock = threading.Lock()

    def bar(self, description: str, total: int | None) -> Bar:
        if self._progress is None:
            return Bar()
        return Bar(self._progress, self._progress.add_task(description, total=total))

    def on_ticker(self, dataset: str, ticker: str) -> None:
        """Count tickers fetched, one line per dataset (a network source's slow part)."""
        if self._progress is None:
            return
        with self._lock:
            task = self._tickers.get(dataset)
            if task is None:
                task = self._tickers[dataset] = self._progress.add_task(f"  {dataset}: tickers fetched", total=None)
        self._progress.update(task, advance=1, description=f"  {dataset}: tickers fetched (last {ticker})")


@contextlib.contextmanager
def display() -> Iterator[Display]:
    """A progress display for the duration of a run (quiet off a terminal)."""
    if not enabled():
        yield Display()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=False,
    )
    shown = Display(progress)
    add_ticker_listener(shown.on_ticker)
    try:
        with progress:
            yield shown
    finally:
        remove_ticker_listener(shown.on_ticker)
