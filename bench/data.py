"""The benchmark's market: the sample source at S&P 500 scale.

500 tickers (the bundled universe topped up with synthetic stocks) over 20 years of NYSE
sessions up to `HISTORY_END` (about 2.5 million price rows), 20 years of CBOE-style put/call
ratios, quarterly fundamentals, and option chains and valuation snapshots for every ticker over
the last `SNAPSHOT_SESSIONS` sessions (Yahoo serves those only "as of now", so a warehouse holds
only the nights it snapshotted). `NEXT_SESSION` is the night the incremental and nightly
benchmarks add. Everything is generated on demand (deterministic, seconds), never stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from sources import calendar
from sources.contract import Batch
from sources.sample import SampleSource

N_TICKERS = 500
YEARS = 20
HISTORY_END = dt.date(2025, 12, 31)
SNAPSHOT_SESSIONS = 60
SCALE_ENV = "BELLWETHER_BENCH_SCALE"  # "tickers,years,snapshot sessions": how run.py tells its stages


@dataclasses.dataclass(frozen=True)
class Chunk:
    dataset: str
    start: dt.date
    end: dt.date


@dataclasses.dataclass
class BenchMarket:
    n_tickers: int = N_TICKERS
    years: int = YEARS
    history_end: dt.date = HISTORY_END
    snapshot_sessions: int = SNAPSHOT_SESSIONS

    @classmethod
    def from_env(cls) -> "BenchMarket":
        import os

        text = os.environ.get(SCALE_ENV)
        if not text:
            return cls()
        tickers, years, snapshots = (int(x) for x in text.split(","))
        return cls(n_tickers=tickers, years=years, snapshot_sessions=snapshots)

    @property
    def scale(self) -> str:
        return f"{self.n_tickers},{self.years},{self.snapshot_sessions}"

    @cached_property
    def source(self) -> SampleSource:
        return SampleSource.scaled(n_tickers=self.n_tickers, years=self.years, end=self.history_end)

    @property
    def history_start(self) -> dt.date:
        return self.source.history_start

    @cached_property
    def sessions(self) -> list[dt.date]:
        return self.source.sessions(self.history_start, self.history_end)

    @property
    def snapshot_start(self) -> dt.date:
        return self.sessions[-self.snapshot_sessions]

    @property
    def next_session(self) -> dt.date:
        return calendar.sessions(self.history_end + dt.timedelta(days=1), self.history_end + dt.timedelta(days=10))[0]

    def write_universe(self, path: Path) -> Path:
        self.source.universe.to_csv(path, index=False)
        return path

    def history_chunks(self) -> list[Chunk]:
        """The history as a backfill loads it: daily series a year per batch, snapshot datasets
        one night per batch (as the nightly runs that took them did)."""
        years = sorted({d.year for d in self.sessions})
        chunks = []
        for dataset in ("prices_daily", "putcall_daily"):
            for y in years:
                chunks.append(Chunk(dataset, max(dt.date(y, 1, 1), self.history_start), min(dt.date(y, 12, 31), self.history_end)))
        # Quarters reported before the first session (served so trailing figures exist from day one).
        chunks.append(Chunk("fundamentals_quarterly", self.history_start - dt.timedelta(days=3 * 366), self.history_end))
        for day in self.sessions[-self.snapshot_sessions:]:
            chunks.append(Chunk("option_quotes", day, day))
            chunks.append(Chunk("valuation_snapshots", day, day))
        return chunks

    def fetch(self, chunk: Chunk) -> Batch:
        from sources.registry import fetch

        return fetch(self.source, chunk.dataset, None, chunk.start, chunk.end)

    def batches(self) -> Iterator[tuple[Chunk, Batch]]:
        for chunk in self.history_chunks():
            yield chunk, self.fetch(chunk)

