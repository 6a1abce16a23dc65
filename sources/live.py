"""The `live` source: each dataset from its provider (Yahoo Finance, CBOE), by a mapping users set.

By default prices, option chains, valuation snapshots and fundamentals come from Yahoo
(through yfinance) and market put/call ratios from CBOE. `BELLWETHER_LIVE_PROVIDERS` changes
the mapping, e.g. `{"putcall_daily": "cboe", "prices_daily": "yahoo"}`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from sources.base import Source, backfill_refusal
from sources.contract import Batch, ContractError, DATASETS

DEFAULT_PROVIDERS: dict[str, str] = {
    "prices_daily": "yahoo",
    "option_quotes": "yahoo",
    "valuation_snapshots": "yahoo",
    "fundamentals_quarterly": "yahoo",
    "putcall_daily": "cboe",
}
PROVIDERS = ("yahoo", "cboe")


@dataclasses.dataclass(frozen=True)
class LiveConfig:
    """How the live providers are called: hashable, so a run's tasks share one source object."""

    providers: tuple[tuple[str, str], ...] = tuple(sorted(DEFAULT_PROVIDERS.items()))
    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    yahoo_max_workers: int = 4
    yahoo_batch_size: int = 50
    yahoo_pause_s: float = 1.0
    yahoo_timeout_s: float = 10.0

    @classmethod
    def from_mapping(cls, providers: Mapping[str, str] | None = None, **kwargs) -> "LiveConfig":
        merged = dict(DEFAULT_PROVIDERS)
        for dataset, provider in (providers or {}).items():
            if dataset not in DATASETS:
                raise ContractError(f"live providers: unknown dataset {dataset!r}; datasets: {', '.join(DATASETS)}")
            if provider not in PROVIDERS:
                raise ContractError(f"live providers: unknown provider {provider!r} for {dataset}; choose {' or '.join(PROVIDERS)}")
            merged[dataset] = provider
        return cls(providers=tuple(sorted(merged.items())), **kwargs)


class LiveSource:
    """Dispatches each dataset to the provider the mapping names."""

    name = "live"

    def __init__(self, providers: Mapping[str, Source], mapping: Mapping[str, str]):
        self._providers = dict(providers)
        self._mapping = dict(mapping)

    def provider_for(self, dataset: str) -> Source:
        return self._providers[self._mapping[dataset]]

    def backfill_refusal(self, dataset: str) -> str | None:
        return backfill_refusal(self.provider_for(dataset), dataset)

    def prices(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return self.provider_for("prices_daily").prices(tickers, start, end)

    def option_quotes(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return self.provider_for("option_quotes").option_quotes(tickers, start, end)

    def valuation_snapshots(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return self.provider_for("valuation_snapshots").valuation_snapshots(tickers, start, end)

    def fundamentals(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        return self.provider_for("fundamentals_quarterly").fundamentals(tickers, start, end)

    def putcall(self, start: dt.date, end: dt.date) -> Batch:
        return self.provider_for("putcall_daily").putcall(start, end)


def make_live_source(
    config: LiveConfig,
    *,
    yahoo_session=None,
    cboe_session=None,
    now: Callable[[], dt.datetime] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> LiveSource:
    """The live source as `config` says. The keywords are the providers' own seams (the
    transport sessions, the clock, how to wait), for running it offline against fakes; left
    out, the providers reach the real services with the real clock."""
    from sources.cboe import CboeSource
    from sources.retry import RetryPolicy
    from sources.yahoo import YahooSource

    policy = RetryPolicy(max_attempts=config.max_attempts, base_delay_s=config.base_delay_s, max_delay_s=config.max_delay_s)
    mapping = dict(config.providers)
    hooks = {k: v for k, v in (("now", now), ("sleep", sleep)) if v is not None}
    providers: dict[str, Source] = {}
    if "yahoo" in mapping.values():
        providers["yahoo"] = YahooSource(
            session=yahoo_session, policy=policy, max_workers=config.yahoo_max_workers,
            batch_size=config.yahoo_batch_size, pause_between_batches_s=config.yahoo_pause_s,
            timeout_s=config.yahoo_timeout_s, **hooks,
        )
    if "cboe" in mapping.values():
        providers["cboe"] = CboeSource(session=cboe_session, policy=policy, **({"sleep": sleep} if sleep else {}))
    return LiveSource(providers, mapping)
