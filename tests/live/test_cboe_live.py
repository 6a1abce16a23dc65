"""CBOE for real: small requests to both endpoints. Deselected by default; run with `-m live`.

They check the assumptions `sources.cboe` rests on (its docstring says where each comes from):
the daily-statistics URL and JSON shape, and the six archive CSVs ending 2019-10-04.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sources.cboe import ARCHIVE_FILES, CboeSource
from sources.contract import OK
from sources.retry import RetryPolicy

pytestmark = pytest.mark.live


@pytest.fixture
def source():
    cboe = CboeSource(policy=RetryPolicy(max_attempts=3, base_delay_s=2.0))
    yield cboe
    cboe.close()


def ratios(batch, day: dt.date) -> dict[str, float]:
    rows = batch.frame[batch.frame["trade_date"].dt.date == day]
    return dict(zip(rows["scope"], rows["ratio"]))


def test_one_day_of_daily_statistics(source):
    day = dt.date(2025, 1, 27)
    batch = source.putcall(day, day)
    assert batch.outcomes["status"].tolist() == [OK], batch.outcomes.to_dict("records")
    assert batch.rejects.empty, batch.rejects.to_dict("records")
    got = ratios(batch, day)
    # PROVENANCE.md section 2a
    assert (got["equity"], got["total"], got["index"]) == (0.57, 0.89, 1.13)
    total = batch.frame[batch.frame["scope"] == "total"].iloc[0]
    equity = batch.frame[batch.frame["scope"] == "equity"].iloc[0]
    assert total.call_volume > equity.call_volume > 0 and total.put_volume > equity.put_volume > 0


def test_the_archive_csvs_end_on_2019_10_04(source):
    day = dt.date(2019, 10, 4)
    batch = source.putcall(day, day)
    assert batch.failed.empty, batch.failed.to_dict("records")
    assert set(batch.frame["scope"]) == set(ARCHIVE_FILES)
    rows = {r.scope: (int(r.call_volume), int(r.put_volume), r.ratio) for r in batch.frame.itertuples()}
    # PROVENANCE.md sections 2b and 2c
    assert rows["total"] == (2175006, 2289715, 1.05)
    assert rows["index"] == (783827, 1180047, 1.51)
    assert rows["equity"][2] == 0.65
