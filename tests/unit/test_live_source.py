"""The live source sends each dataset to the provider its mapping names."""

import datetime as dt

from sources.contract import empty_batch, PRICES, PUTCALL
from sources.live import LiveConfig, LiveSource


class Recorder:
    def __init__(self, name):
        self.name, self.calls = name, []

    def prices(self, tickers, start, end):
        self.calls.append(("prices", tickers))
        return empty_batch(PRICES, [f"from {self.name}"])

    def putcall(self, start, end):
        self.calls.append(("putcall", None))
        return empty_batch(PUTCALL, [f"from {self.name}"])


def test_each_dataset_goes_to_its_provider():
    yahoo, cboe = Recorder("yahoo"), Recorder("cboe")
    live = LiveSource({"yahoo": yahoo, "cboe": cboe}, dict(LiveConfig().providers))
    d = dt.date(2025, 1, 27)
    assert live.prices(["NVDA"], d, d).notes == ["from yahoo"]
    assert live.putcall(d, d).notes == ["from cboe"]
    assert yahoo.calls == [("prices", ["NVDA"])] and cboe.calls == [("putcall", None)]


def test_the_mapping_is_configurable():
    cfg = LiveConfig.from_mapping({"prices_daily": "cboe"})
    assert dict(cfg.providers)["prices_daily"] == "cboe"
    assert dict(cfg.providers)["option_quotes"] == "yahoo"  # the rest keep their defaults
