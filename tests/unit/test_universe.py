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


# -- the S&P 500 universe ------------------------------------------------------------------------

from pathlib import Path  # noqa: E402

from sources import sp500  # noqa: E402
from sources.base import NAMED_UNIVERSES, universe_path  # noqa: E402

CONSTITUENTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "universe" / "sp500_constituents_2026-08-08.csv"
HEADER = "Symbol,Security,GICS Sector,GICS Sub-Industry,Headquarters Location,Date added,CIK,Founded\n"


def test_the_shipped_sp500_file_is_what_the_builder_makes_of_the_shared_list(tmp_path):
    """config/sp500.csv is the builder's output for the list of 2026-08-08, byte for byte: nobody
    edited it by hand, and rebuilding it from the same list changes nothing."""
    if not CONSTITUENTS.exists():
        pytest.skip(f"the shared constituents list {CONSTITUENTS} is absent")
    shipped = NAMED_UNIVERSES["sp500"].read_text(encoding="utf-8")
    source = next(line for line in shipped.splitlines() if line.startswith("# Source: ")).removeprefix("# Source: ")
    rebuilt = sp500.write(sp500.build(sp500.read_constituents(CONSTITUENTS)), tmp_path / "sp500.csv",
                          source=source, as_of=sp500.as_of_from_name(CONSTITUENTS))
    assert rebuilt.read_text(encoding="utf-8") == shipped
    assert "commit 56509dd" in source and "2026-08-08" in shipped.splitlines()[0]


def test_the_sp500_universe_has_every_constituent_once_as_a_company():
    u = load_universe("sp500")
    assert universe_path("sp500") == NAMED_UNIVERSES["sp500"] and universe_path("default") == NAMED_UNIVERSES["default"]
    stocks = u[u["role"] == "stock"]
    assert len(stocks) == 500 and len(u[u["role"] == "share_class"]) == 3 and len(u) == 511
    assert set(u.loc[u["role"] == "share_class", "ticker"]) == {"GOOG", "FOX", "NWS"}  # second classes by CIK
    assert {"GOOGL", "FOXA", "NWSA", "BRK-B", "BF-B"} <= set(stocks["ticker"])  # Yahoo's spelling of BRK.B
    assert set(stocks.loc[stocks["cohort"] == "ai", "ticker"]) == set(sp500.AI_COHORT) and len(sp500.AI_COHORT) == 17
    assert stocks["sub_industry"].notna().all() and u.loc[u["role"] == "index_proxy", "sub_industry"].isna().all()
    assert u.loc[u["ticker"] == "NVDA", ["sector", "sub_industry"]].values.tolist() == [["Information Technology", "Semiconductors"]]
    funds = load_universe("default").query("role != 'stock'")["ticker"].tolist()
    assert u["ticker"].tolist()[: len(funds)] == funds  # the index proxies and macro funds lead


def test_second_share_classes_are_found_by_cik_and_follow_their_company(tmp_path):
    p = tmp_path / "list.csv"
    p.write_text(HEADER + "".join([
        'GOOG,Alphabet Inc. (Class C),Communication Services,Interactive Media & Services,"Mountain View, California",2014-04-03,1652044,1998\n',
        'GOOGL,Alphabet Inc. (Class A),Communication Services,Interactive Media & Services,"Mountain View, California",2014-04-03,1652044,1998\n',
        'KO,Coca-Cola Company (The),Consumer Staples,Soft Drinks & Non-alcoholic Beverages,"Atlanta, Georgia",1957-03-04,21344,1886\n',
    ]))
    frame = sp500.build(sp500.read_constituents(p), funds=load_universe("default").head(1)).set_index("ticker")
    # Class A before Class C by name, whatever the file's order; GOOG keeps Alphabet's cohort.
    assert frame.loc["GOOGL", "role"] == "stock" and frame.loc["GOOG", "role"] == "share_class"
    assert frame.loc["GOOG", "cohort"] == "ai" and frame.loc["KO", ["cohort", "role"]].tolist() == ["non_ai", "stock"]
    assert list(frame.index) == ["SPY", "GOOG", "GOOGL", "KO"]


def test_a_bad_constituents_list_is_refused_naming_the_line(tmp_path):
    p = tmp_path / "list.csv"
    p.write_text(HEADER + 'BRK B,Berkshire,Financials,Insurance,"Omaha, Nebraska",1980,1067983,1839\n'
                 + 'KO,,Consumer Staples,Soft Drinks,"Atlanta, Georgia",1957-03-04,21344,1886\n'
                 + 'KO,Coca-Cola,Consumer Staples,Soft Drinks,"Atlanta, Georgia",1957-03-04,21344,1886\n')
    with pytest.raises(ContractError) as exc:
        sp500.read_constituents(p)
    msg = str(exc.value)
    assert "line 2: symbol 'BRK B' is not a ticker" in msg and "line 3 (KO): name is empty" in msg and "listed twice: KO" in msg
    p.write_text("Ticker,Name\nKO,Coca-Cola\n")
    with pytest.raises(ContractError, match="missing column\\(s\\) Symbol, Security, GICS Sector, GICS Sub-Industry, CIK"):
        sp500.read_constituents(p)
    p.write_text(HEADER + 'KO,Coca-Cola,Consumer Staples,Soft Drinks,"Atlanta, Georgia",1957-03-04,21344,1886\n')
    assert "NVDA" in sp500.ai_names_absent(sp500.build(sp500.read_constituents(p)))  # said, not silently fewer


def test_universe_errors_count_the_provenance_lines(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("# built from somewhere\n# on some date\nticker,name,sector,cohort,role\nSPY,S&P,Index,,index_proxy\nNVDA,Nvidia,Tech,robots,stock\n")
    with pytest.raises(ContractError, match=r"line 5 \(NVDA\): cohort 'robots'"):
        load_universe(p)
