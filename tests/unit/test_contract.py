import json

import numpy as np
import pandas as pd
import pytest

from sources.contract import PRICES, PUTCALL, ContractError, conform, describe_rejects


def frame(**cols):
    base = {"adj_close": 1.0, "dividend": 0.0, "split_ratio": 1.0}
    base.update(cols)
    return pd.DataFrame(base)


def test_good_rows_are_typed_to_the_contract():
    b = conform(PRICES, frame(ticker=[" nvda ", "SPY"], trade_date=["2025-01-27", "2025-01-27 00:00:00-05:00"], close=["118.42", 599.37], volume=["1,000", 2.0]))
    assert list(b.frame.columns) == list(PRICES.columns)
    assert b.frame["ticker"].tolist() == ["nvda", "SPY"]  # trimmed; case is the source's business
    assert b.frame["trade_date"].dt.date.astype(str).tolist() == ["2025-01-27", "2025-01-27"]
    assert b.frame["volume"].tolist() == [1000, 2]
    assert b.rejects.empty


def test_bad_values_are_rejected_with_file_line_and_reason():
    f = frame(
        ticker=["A", "B", "C", "D"],
        trade_date=["2025-01-02", "not a date", "2025-01-02", "2025-01-02"],
        close=["1.5", "2", "abc", "inf"],
        volume=[1, 2, 3, 4.5],
        _source_ref="prices/X.csv",
        _line=[2, 3, 4, 5],
    )
    b = conform(PRICES, f)
    assert b.frame["ticker"].tolist() == ["A"]
    got = {int(r.line): r.reason for r in b.rejects.itertuples()}
    assert "trade_date: cannot read date" in got[3]
    assert "close: cannot read double" in got[4]
    assert "close is infinite" in got[5] and "volume: cannot read bigint" in got[5]
    assert set(b.rejects["source_ref"]) == {"prices/X.csv"}
    original = json.loads(b.rejects.set_index("line").loc[4, "row_json"])
    assert original["close"] == "abc"  # the original value is kept, not the coerced NaN
    assert describe_rejects(b.rejects)[0].startswith("prices/X.csv:3: ")


def test_missing_required_value_is_rejected_not_dropped():
    b = conform(PRICES, frame(ticker=["A", None], trade_date=["2025-01-02", "2025-01-02"], close=[np.nan, 1.0]))
    assert b.frame.empty
    assert sorted(b.rejects["reason"]) == ["close is missing", "ticker is missing"]


def test_duplicate_keys_exact_collapse_conflicting_refused():
    f = frame(
        ticker=["A", "A", "B", "B", "C"],
        trade_date=["2025-01-02"] * 5,
        close=[1.0, 1.0, 2.0, 2.5, 3.0],
        _line=[2, 3, 4, 5, 6],
    )
    b = conform(PRICES, f)
    assert sorted(b.frame["ticker"]) == ["A", "C"]
    assert len(b.rejects) == 2 and set(b.rejects["line"]) == {4, 5}
    assert all("duplicate key" in r and "line 4, line 5" in r for r in b.rejects["reason"])
    assert b.notes == ["prices_daily: 1 exact repeated row(s) collapsed"]


def test_missing_required_column_is_a_contract_error():
    with pytest.raises(ContractError, match="putcall/x.csv: missing required column\\(s\\) ratio"):
        conform(PUTCALL, pd.DataFrame({"trade_date": ["2025-01-02"], "scope": ["total"]}), default_ref="putcall/x.csv")


def test_float32_noise_is_removed_and_nothing_else_changes():
    from sources.contract import float32_denoised

    s = pd.Series([599.3699951171875, 121.55999755859375, 599.369995, 118.419998, 10.5, np.nan, 118.2434, 0.037612])
    out = float32_denoised(s)
    # Float32 values, and float32 values a vendor rounded to 6 decimals, become the decimals
    # they stand for; short decimals and NaN stay as they are.
    assert out.iloc[:5].tolist() == [599.37, 121.56, 599.37, 118.42, 10.5]
    assert np.isnan(out.iloc[5]) and out.iloc[6] == 118.2434 and out.iloc[7] == 0.037612
    # A value far from any float32 shortest decimal keeps its digits (1e-4 off float32's 599.37 grid).
    assert float32_denoised(pd.Series([599.3701])).iloc[0] == 599.3701


def test_python_dates_are_read_too():
    import datetime as dt

    b = conform(PRICES, frame(ticker=["A", "B"], trade_date=[dt.date(2025, 1, 2), dt.datetime(2025, 1, 3, 16, 0)], close=[1.0, 2.0]))
    assert b.frame["trade_date"].dt.date.tolist() == [dt.date(2025, 1, 2), dt.date(2025, 1, 3)]
