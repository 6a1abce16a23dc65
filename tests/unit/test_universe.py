import pytest

from sources.base import load_universe, ticker_from_stem
from sources.contract import ContractError


def test_bundled_universe_has_what_the_marts_need():
    u = load_universe()
    tickers = set(u["ticker"])
    assert {"SPY", "QQQ", "XLK", "^VIX", "TLT", "IEF", "HYG", "LQD", "NVDA", "BRK-B"} <= tickers
    assert len(u) >= 20
    assert set(u["cohort"].dropna()) == {"ai", "non_ai"}
    assert u["ticker"].is_unique


def test_bad_universe_rows_are_named(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("ticker,name,sector,cohort,role\nNVDA,Nvidia,Tech,robots,stock\nSPY,S&P,Index,,index\nNVDA,dup,Tech,ai,stock\n")
    with pytest.raises(ContractError) as exc:
        load_universe(p)
    msg = str(exc.value)
    assert "line 2 (NVDA): cohort 'robots'" in msg
    assert "line 3 (SPY): role 'index'" in msg
    assert "listed twice: NVDA" in msg


def test_missing_universe_columns(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("ticker,name\nNVDA,Nvidia\n")
    with pytest.raises(ContractError, match="missing column\\(s\\) sector, cohort, role"):
        load_universe(p)


@pytest.mark.parametrize("stem, ticker", [("BRK_B", "BRK-B"), ("brk.b", "BRK-B"), ("NVDA", "NVDA"), ("^VIX", "^VIX")])
def test_ticker_from_stem(stem, ticker):
    assert ticker_from_stem(stem) == ticker
