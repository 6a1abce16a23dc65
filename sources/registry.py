"""Turning a source name (and folder) into a source object."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING

from sources.base import Source, load_universe
from sources.contract import ContractError

if TYPE_CHECKING:
    from sources.live import LiveConfig

SOURCE_NAMES = ("sample", "files", "live")


@lru_cache(maxsize=8)
def make_source(
    name: str,
    path: str | None = None,
    universe_path: str | None = None,
    live: "LiveConfig | None" = None,
    sample_start: dt.date | None = None,
) -> Source:
    """A source object; cached so that the tasks of one run share a sample market or a folder scan.

    `sample_start`: the sample market's first session (default its own, 2015-01-02); the
    benchmarks run a 20-year market (see bench/)."""
    if name == "sample":
        from sources.sample import DEFAULT_HISTORY_START, SampleSource

        return SampleSource(universe=load_universe(universe_path), history_start=sample_start or DEFAULT_HISTORY_START)
    if name == "files":
        if not path:
            raise ContractError("the files source needs a folder: pass --path DIR")
        from sources.files import FilesSource

        return FilesSource(Path(path))
    if name == "live":
        from sources.live import LiveConfig, make_live_source

        return make_live_source(live or LiveConfig())
    raise ContractError(f"unknown source {name!r}: choose one of {', '.join(SOURCE_NAMES)}")


def fetch(source: Source, dataset: str, tickers, start, end):
    """One dataset's batch from a source for an inclusive date window."""
    if dataset == "putcall_daily":
        return source.putcall(start, end)
    method = {
        "prices_daily": source.prices,
        "option_quotes": source.option_quotes,
        "valuation_snapshots": source.valuation_snapshots,
        "fundamentals_quarterly": source.fundamentals,
    }.get(dataset)
    if method is None:
        raise ContractError(f"unknown dataset {dataset!r}")
    return method(tickers, start, end)
