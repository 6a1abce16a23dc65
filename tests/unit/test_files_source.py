"""FilesSource: the hand-written layouts in tests/fixtures/files, bad rows and unreadable files,
then the real vendor files of ../shared/data/real arranged into the expected layout with
symlinks (skipped when that folder is absent).

Expected values are read off the fixture files by hand or taken from PROVENANCE.md; counts of
real files are recomputed with the csv module, never taken from the code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sources.base import Source
from sources.contract import FUNDAMENTALS, OPTION_QUOTES, PRICES, PUTCALL, VALUATION, ContractError
from sources.files import FilesSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
ALL = (dt.date(1900, 1, 1), dt.date(2100, 1, 1))


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def one(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == (pd.Timestamp(value) if column.endswith("_date") else value)
    hits = frame[mask]
    assert len(hits) == 1, f"{where}: {len(hits)} rows"
    return hits.iloc[0]


def root_with(tmp_path: Path, **folders: Path | list[Path]) -> Path:
    """A source root whose subfolders are copies of (or hold copies of) fixture paths."""
    for name, what in folders.items():
        target = tmp_path / name
        if isinstance(what, list):
            target.mkdir(parents=True, exist_ok=True)
            for f in what:
                shutil.copy(f, target / f.name)
        else:
            shutil.copytree(what, target)
    return tmp_path


@pytest.fixture(scope="module")
def fixtures() -> FilesSource:
    return FilesSource(FIXTURES)


# -- the source object -----------------------------------------------------------------------


def test_is_a_source_named_files(fixtures):
    assert isinstance(fixtures, Source)
    assert fixtures.name == "files"


def test_missing_root_is_a_contract_error(tmp_path):
    with pytest.raises(ContractError, match="does not exist"):
        FilesSource(tmp_path / "nowhere")


def test_missing_subfolders_give_empty_batches_with_a_note(tmp_path):
    source = FilesSource(tmp_path)
    for batch, dataset, folder in [
        (source.prices(None, *ALL), PRICES, "prices"),
        (source.putcall(*ALL), PUTCALL, "putcall"),
        (source.option_quotes(None, *ALL), OPTION_QUOTES, "options"),
        (source.fundamentals(None, *ALL), FUNDAMENTALS, "fundamentals"),
        (source.valuation_snapshots(None, *ALL), VALUATION, "valuation"),
    ]:
        assert batch.dataset is dataset
        assert batch.rows == 0 and batch.rejects.empty
        assert list(batch.frame.columns) == list(dataset.columns)
        assert any(f"no {folder}/ folder" in n for n in batch.notes)


# -- prices: every header layout -------------------------------------------------------------


@pytest.fixture(scope="module")
def prices(fixtures):
    batch = fixtures.prices(None, *ALL)
    assert batch.rejects.empty, batch.rejects.to_dict("records")
    return batch


def test_prices_frame_has_the_contract_columns_and_types(prices):
    f = prices.frame
    assert list(f.columns) == list(PRICES.columns)
    assert str(f["volume"].dtype) == "Int64"
    assert f["trade_date"].dtype == "datetime64[ns]"
    assert sorted(f["ticker"].unique()) == ["AAA", "BBB", "BRK-B", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "KKK", "TKY"]


def test_flat_yfinance_header_with_time_zone_float_noise_and_float_volume(prices):
    f = prices.frame
    assert f.loc[f.ticker == "AAA", "trade_date"].dt.date.tolist() == [
        dt.date(2025, 1, 23),
        dt.date(2025, 1, 24),
        dt.date(2025, 1, 27),
    ]
    r = one(f, ticker="AAA", trade_date="2025-01-24")
    # 100.80000305175781 is float32 noise around 100.8: the noise is removed.
    assert (r.close, r.adj_close, r.volume) == (100.8, 100.3, 1500)
    assert one(f, ticker="AAA", trade_date="2025-01-23").volume == 1000  # written 1000.0
    r = one(f, ticker="AAA", trade_date="2025-01-27")
    assert (r.open, r.high, r.low, r.close, r.adj_close, r.dividend, r.split_ratio) == (95, 96, 90, 91, 90.55, 0, 1)


def test_date_is_the_calendar_day_as_written_not_utc(prices):
    # 2025-01-27 00:00 +09:00 is 2025-01-26 in UTC; the trade date stays the 27th.
    assert one(prices.frame, ticker="TKY").trade_date == day("2025-01-27")
    # Offsets change across daylight saving time within one file.
    assert prices.frame.loc[prices.frame.ticker == "FFF", "trade_date"].dt.date.tolist() == [
        dt.date(2024, 3, 8),
        dt.date(2024, 3, 11),
        dt.date(2024, 3, 12),
    ]


def test_lower_case_file_with_one_close_gives_it_to_both_closes(prices):
    r = one(prices.frame, ticker="BBB", trade_date="2025-01-27")
    assert (r.open, r.high, r.low, r.close, r.adj_close, r.volume) == (48, 49, 47, 48.25, 48.25, 300)
    assert (r.dividend, r.split_ratio) == (0.0, 1.0)


def test_snake_case_with_dividends_and_stock_splits(prices):
    f = prices.frame
    assert one(f, ticker="CCC", trade_date="2024-06-07").split_ratio == 1.0  # written 0.000000
    assert one(f, ticker="CCC", trade_date="2024-06-10").split_ratio == 10.0
    r = one(f, ticker="CCC", trade_date="2024-06-11")
    assert (r.close, r.adj_close, r.dividend, r.split_ratio) == (122.0, 121.86, 0.01, 1.0)


def test_squashed_adjclose_and_dividends(prices):
    r = one(prices.frame, ticker="DDD", trade_date="2025-01-27")
    assert (r.close, r.adj_close, r.dividend) == (594.0, 585.75, 1.5)
    assert one(prices.frame, ticker="DDD", trade_date="2025-01-24").dividend == 0.0


def test_reordered_columns_are_read_by_name(prices):
    r = one(prices.frame, ticker="EEE", trade_date="2025-01-24")
    assert (r.open, r.high, r.low, r.close, r.volume) == (10.25, 11.0, 10.0, 10.5, 5000)


def test_extra_columns_are_ignored_with_a_note_and_a_reverse_split_is_kept(prices):
    r = one(prices.frame, ticker="FFF", trade_date="2024-03-11")
    assert (r.close, r.dividend, r.split_ratio) == (20.6, 0.12, 1.0)
    assert one(prices.frame, ticker="FFF", trade_date="2024-03-12").split_ratio == 0.5
    assert any("FFF.csv" in n and "Capital Gains" in n for n in prices.notes)


def test_three_line_yf_download_header(prices):
    r = one(prices.frame, ticker="GGG", trade_date="2025-01-27")
    # Float32 values as yf.download writes them, read as the prices they stand for.
    assert (r.open, r.high, r.low, r.close, r.adj_close, r.volume) == (124.8, 128.4, 116.7, 118.42, 118.24339, 818830900)
    assert (prices.frame.ticker == "GGG").sum() == 2  # the Ticker and Date lines are not rows


def test_file_stem_wins_over_the_header_ticker_with_a_note(prices):
    assert one(prices.frame, ticker="HHH").close == 10.0
    assert any("HHH.csv" in n and "XYZ" in n for n in prices.notes)


def test_multi_ticker_download_keeps_the_file_tickers_columns(prices):
    r = one(prices.frame, ticker="KKK")
    assert (r.close, r.volume) == (10.0, 100)
    assert any("KKK.csv" in n and "LLL" in n for n in prices.notes)


def test_underscore_stem_is_the_yahoo_ticker(prices):
    assert one(prices.frame, ticker="BRK-B").close == 474.7


def test_non_csv_file_is_skipped_with_a_note(prices):
    assert any("README.txt" in n and "non-CSV" in n for n in prices.notes)


def test_ticker_filter_is_case_insensitive_in_yahoo_spelling_and_window_is_inclusive(fixtures):
    batch = fixtures.prices(["brk.b", "aaa", "nope"], dt.date(2025, 1, 24), dt.date(2025, 1, 27))
    got = sorted(zip(batch.frame.ticker, batch.frame.trade_date.dt.date))
    assert got == [("AAA", dt.date(2025, 1, 24)), ("AAA", dt.date(2025, 1, 27)), ("BRK-B", dt.date(2025, 1, 27))]
    assert fixtures.prices([], *ALL).rows == 0


# -- prices: bad rows and unreadable files ---------------------------------------------------


@pytest.fixture()
def broken(tmp_path):
    broken_dir = FIXTURES / "prices_broken"
    root = root_with(tmp_path, prices=sorted(broken_dir.iterdir()) + [FIXTURES / "prices" / "BBB.csv"])
    (root / "prices" / "BIN.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    return FilesSource(root).prices(None, *ALL), root / "prices"


def reject_at(rejects: pd.DataFrame, path: Path, line) -> pd.Series:
    ref = rejects["source_ref"] == str(path)
    hits = rejects[ref & (rejects["line"].isna() if line is None else rejects["line"] == line)]
    assert len(hits) == 1, rejects[["source_ref", "line", "reason"]].to_dict("records")
    return hits.iloc[0]


def test_bad_rows_are_reported_with_file_line_and_reason(broken):
    batch, folder = broken
    bad = folder / "BAD.csv"
    r = reject_at(batch.rejects, bad, 3)
    # The file has one close, so adj_close carries the same unreadable value.
    assert r.reason == "close: cannot read double from value; adj_close: cannot read double from value"
    assert r.ticker == "BAD" and json.loads(r.row_json)["close"] == "abc"
    for line in (4, 5):  # 2025-01-24 twice with different closes: neither is believed
        assert "duplicate key" in reject_at(batch.rejects, bad, line).reason
    assert "more cells" in reject_at(batch.rejects, bad, 8).reason
    # The good rows of the file still load; the exact repeat of 2025-01-27 is one row.
    rows = batch.frame[batch.frame.ticker == "BAD"]
    assert rows["trade_date"].dt.date.tolist() == [dt.date(2025, 1, 22), dt.date(2025, 1, 27)]
    assert rows["close"].tolist() == [10.2, 10.6]
    assert any("repeated" in n for n in batch.notes)


def test_unreadable_files_are_one_reject_each_and_the_others_load(broken):
    batch, folder = broken
    reasons = {
        name: reject_at(batch.rejects, folder / f"{name}.csv", None).reason
        for name in ("NOCLOSE", "EMPTY", "NOTCSV", "BIN")
    }
    assert reasons["NOCLOSE"] == "no close column among [Date, Open, High, Low, Volume]"
    assert reasons["EMPTY"] == "file is empty"
    assert reasons["NOTCSV"].startswith("no date column among")
    assert "binary" in reasons["BIN"]
    for name in reasons:
        assert any(f"{name}.csv" in n and "not read" in n for n in batch.notes)
    assert len(batch.rejects) == 4 + 4  # four files, four rows of BAD.csv
    assert sorted(batch.frame.ticker.unique()) == ["BAD", "BBB", "GOOD"]
    r = one(batch.frame, ticker="GOOD")
    assert (r.close, r.adj_close, r.dividend, r.split_ratio) == (5.0, 5.0, 0.0, 1.0)
    assert pd.isna(r.open) and pd.isna(r.volume)


def test_rejects_outside_the_window_are_not_reported_but_unreadable_files_are(tmp_path):
    root = root_with(tmp_path, prices=sorted((FIXTURES / "prices_broken").iterdir()))
    batch = FilesSource(root).prices(None, dt.date(2025, 1, 27), dt.date(2025, 1, 31))
    bad = batch.rejects[batch.rejects.source_ref.str.endswith("BAD.csv")]
    assert bad["line"].tolist() == [8]  # 2025-01-28; the bad 01-23 and 01-24 rows were not asked for
    assert batch.rejects["line"].isna().sum() == 3


def test_same_ticker_in_two_files_agreeing_rows_merge_and_differing_rows_are_refused(tmp_path):
    (tmp_path / "prices" / "a").mkdir(parents=True)
    (tmp_path / "prices" / "b").mkdir()
    (tmp_path / "prices" / "a" / "ZZZ.csv").write_text("date,close,volume\n2025-01-24,10.0,\n2025-01-27,11.0,5\n")
    (tmp_path / "prices" / "b" / "ZZZ.csv").write_text("Date,Close,Volume\n2025-01-24,10.00,7\n2025-01-27,11.5,5\n")
    batch = FilesSource(tmp_path).prices(None, *ALL)
    r = one(batch.frame, ticker="ZZZ")
    assert (r.trade_date, r.close, r.volume) == (day("2025-01-24"), 10.0, 7)  # volume only in b
    assert sorted(zip(batch.rejects.source_ref.str[-9:], batch.rejects.line)) == [("a/ZZZ.csv", 3), ("b/ZZZ.csv", 3)]
    assert any("ZZZ is in 2 files" in n for n in batch.notes)


def test_crlf_bom_gzip_and_three_line_header_line_numbers(tmp_path):
    import gzip

    folder = tmp_path / "prices"
    folder.mkdir()
    (folder / "WIN.csv").write_bytes(b"\xef\xbb\xbfDate,Close\r\n2025-01-24,1.5\r\n2025-01-27,x\r\n")
    (folder / "ZIP.csv.gz").write_bytes(gzip.compress(b"date,close\n2025-01-27,2.5\n"))
    (folder / "YFD.csv").write_text(
        "Price,Close,Volume\nTicker,YFD,YFD\nDate,,\n2025-01-24,3.5,10\n2025-01-27,oops,11\n"
    )
    batch = FilesSource(tmp_path).prices(None, *ALL)
    got = sorted(zip(batch.frame.ticker, batch.frame.trade_date.dt.date, batch.frame.close))
    assert got == [("WIN", dt.date(2025, 1, 24), 1.5), ("YFD", dt.date(2025, 1, 24), 3.5), ("ZIP", dt.date(2025, 1, 27), 2.5)]
    refused = sorted(zip(batch.rejects.source_ref.map(lambda s: Path(s).name), batch.rejects.line))
    assert refused == [("WIN.csv", 3), ("YFD.csv", 5)]


# -- putcall ---------------------------------------------------------------------------------


def test_putcall_fixture_layouts(fixtures):
    batch = fixtures.putcall(*ALL)
    assert batch.rejects.empty
    f = batch.frame
    assert list(f.columns) == list(PUTCALL.columns)
    got = {(r.trade_date.date(), r.scope): (r.call_volume, r.put_volume, r.ratio) for r in f.itertuples()}
    na = pd.NA
    assert got == {
        # indexpc.csv: official layout, PRODUCT:INDEX, spaces after commas
        (dt.date(2006, 11, 1), "index"): (1000, 1250, 1.25),
        (dt.date(2006, 11, 2), "index"): (2000, 2240, 1.12),
        (dt.date(2019, 10, 2), "index"): (3000, 3900, 1.30),
        # cboe_export.csv: the scope is only in its PRODUCT line
        (dt.date(2006, 11, 1), "equity"): (4000, 2400, 0.60),
        # totalpc.csv: disclaimer removed; the blank ratio is 3000 / 4000
        (dt.date(2006, 11, 1), "total"): (5000, 4550, 0.91),
        (dt.date(2006, 11, 2), "total"): (4000, 3000, 0.75),
        (dt.date(2019, 10, 3), "total"): (6000, 8220, 1.37),
        # vix/daily.csv: no PRODUCT line, no scope in its name: the folder says vix
        (dt.date(2011, 1, 3), "vix"): (800, 400, 0.5),
        # sentiment.csv: wide; blank cells of 2026-04-17 are not rows
        (dt.date(2025, 1, 24), "equity"): (na, na, 0.52),
        (dt.date(2025, 1, 24), "total"): (na, na, 0.76),
        (dt.date(2025, 1, 24), "index"): (na, na, 1.00),
        (dt.date(2025, 1, 27), "equity"): (na, na, 0.57),
        (dt.date(2025, 1, 27), "total"): (na, na, 0.89),
        (dt.date(2025, 1, 27), "index"): (na, na, 1.13),
        (dt.date(2026, 4, 17), "equity"): (na, na, 0.41),
    }
    window = fixtures.putcall(dt.date(2025, 1, 27), dt.date(2025, 1, 27))
    assert sorted(window.frame.scope) == ["equity", "index", "total"]


def test_putcall_crlf_file_and_unrecognised_file_do_not_stop_the_others(tmp_path):
    folder = tmp_path / "putcall"
    folder.mkdir()
    (folder / "equitypc.csv").write_bytes(b"DATE,CALLS,PUTS,TOTAL,Ratio\r\n1/2/2007,10,5,15,0.5\r\n01/03/2007, 20, 10, 30, 0.5\r\n")
    (folder / "notes.csv").write_text("hello,world\n1,2\n")
    batch = FilesSource(tmp_path).putcall(*ALL)
    assert batch.frame["trade_date"].dt.date.tolist() == [dt.date(2007, 1, 2), dt.date(2007, 1, 3)]
    assert batch.frame["scope"].tolist() == ["equity", "equity"]
    r = reject_at(batch.rejects, folder / "notes.csv", None)
    assert "unrecognised put/call layout" in r.reason
    assert any("notes.csv" in n for n in batch.notes)


def test_putcall_overlapping_files_merge_when_they_agree_and_refuse_when_not(tmp_path):
    folder = tmp_path / "putcall"
    folder.mkdir()
    (folder / "a_totalpc.csv").write_text("DATE,CALLS,PUTS,TOTAL,Ratio\n1/2/2007,100,91,191,0.91\n1/3/2007,100,80,180,0.80\n")
    (folder / "b_wide.csv").write_text("date,total_pc_ratio,equity_pc_ratio\n2007-01-02,0.91,0.6\n2007-01-03,0.85,0.7\n")
    batch = FilesSource(tmp_path).putcall(*ALL)
    got = {
        (r.trade_date.day, r.scope): (None if pd.isna(r.call_volume) else int(r.call_volume), r.ratio)
        for r in batch.frame.itertuples()
    }
    # 2007-01-02 total: same ratio in both files, one row with a's volumes. 2007-01-03 total:
    # 0.80 against 0.85, so both rows are refused with their own file and line.
    assert got == {(2, "total"): (100, 0.91), (2, "equity"): (None, 0.6), (3, "equity"): (None, 0.7)}
    refused = sorted(zip(batch.rejects.source_ref.map(lambda s: Path(s).name), batch.rejects.line))
    assert refused == [("a_totalpc.csv", 3), ("b_wide.csv", 3)]
    assert all("duplicate key" in r for r in batch.rejects.reason)
    assert any("merged" in n for n in batch.notes)


# -- options ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def options(fixtures):
    batch = fixtures.option_quotes(None, *ALL)
    assert batch.rejects.empty, batch.rejects.to_dict("records")
    return batch


def test_options_frame_has_contract_columns_and_types(options):
    f = options.frame
    assert list(f.columns) == list(OPTION_QUOTES.columns)
    assert str(f["last_trade_at"].dtype) == "datetime64[ns, UTC]"
    assert f["snapshot_at"].isna().all()
    assert len(f) == 12


def test_options_snapshot_date_from_each_convention(options):
    f = options.frame
    by_symbol = dict(zip(f.contract_symbol, f.snapshot_date.dt.date))
    assert by_symbol["ZZZ250207C00050000"] == dt.date(2025, 2, 3)  # ZZZ_2025-02-03.csv
    assert by_symbol["ZZZ241115C00140000"] == dt.date(2024, 11, 11)  # 2024_11_11_ZZZ_calls.csv
    assert by_symbol["ZZZ241115P00140000"] == dt.date(2024, 11, 11)  # 2024_11_11_ZZZ_puts.csv
    assert by_symbol["ZZZ241115C00145000"] == dt.date(2024, 11, 12)  # by_day/2024_11_12/chain.csv
    assert by_symbol["ZZZ250321C00100000"] == dt.date(2025, 3, 3)  # snapshot_date column
    assert by_symbol["QQQ250826C00540000"] == dt.date(2025, 8, 26)  # stated/snapshot_dates.csv


def test_options_every_contract_is_kept_as_delivered(options):
    r = one(options.frame, contract_symbol="ZZZ261218P02400000")  # stale pre-split contract
    assert (r.ticker, r.option_type, r.expiration_date, r.strike, r.last_price, r.bid, r.ask) == (
        "ZZZ",
        "put",
        day("2026-12-18"),
        2400.0,
        1209.78,
        0.0,
        0.0,
    )
    assert r.volume == 1 and pd.isna(r.open_interest)
    assert r.last_trade_at == pd.Timestamp("2024-06-07 19:59:59", tz="UTC")
    r = one(options.frame, contract_symbol="ZZZ250207C00050000")
    assert r.implied_volatility == pytest.approx(1e-5)  # the yfinance placeholder stays
    assert (r.option_type, r.volume, r.open_interest) == ("call", 9, 83)
    assert pd.isna(one(options.frame, contract_symbol="ZZZ250207P00120000").volume)


def test_options_fields_decoded_from_the_symbol_when_there_are_no_columns(options):
    r = one(options.frame, contract_symbol="ZZZ241220P00130500")
    assert (r.ticker, r.option_type, r.expiration_date, r.strike) == ("ZZZ", "put", day("2024-12-20"), 130.5)
    r = one(options.frame, contract_symbol="ZZZ250321C00100000")
    assert (r.option_type, r.expiration_date) == ("call", day("2025-03-21"))
    # A naive lastTradeDate is read as UTC, as yfinance writes it.
    assert r.last_trade_at == pd.Timestamp("2025-03-03 15:00:00", tz="UTC")


def test_options_type_and_expiry_columns_of_every_spelling(options):
    r = one(options.frame, contract_symbol="QQQ250829P00500000")  # Type p, Expiration_Date
    assert (r.ticker, r.option_type, r.expiration_date, r.open_interest) == ("QQQ", "put", day("2025-08-29"), 2000)
    r = one(options.frame, contract_symbol="ZZZ241122C00150000")  # expiration_date, calls file
    assert (r.option_type, r.expiration_date) == ("call", day("2024-11-22"))


def test_options_ticker_filter_and_window(fixtures):
    batch = fixtures.option_quotes(["qqq"], *ALL)
    assert sorted(batch.frame.contract_symbol) == ["QQQ250826C00540000", "QQQ250829P00500000"]
    batch = fixtures.option_quotes(None, dt.date(2024, 11, 11), dt.date(2024, 11, 12))
    assert len(batch.frame) == 6


def test_options_file_without_a_snapshot_date_is_refused(tmp_path):
    root = root_with(tmp_path, options=FIXTURES / "options_undated")
    batch = FilesSource(root).option_quotes(None, *ALL)
    assert batch.rows == 0
    r = reject_at(batch.rejects, root / "options" / "yyy_options.csv", None)
    assert r.reason.startswith("no snapshot date")
    assert "snapshot_dates" in r.reason


def test_options_snapshot_date_stated_by_argument(tmp_path):
    root = root_with(tmp_path, options=FIXTURES / "options_undated")
    batch = FilesSource(root, snapshot_dates={"yyy_options.csv": "2025-02-03"}).option_quotes(None, *ALL)
    assert batch.rejects.empty
    assert batch.frame["snapshot_date"].tolist() == [day("2025-02-03")] * 2
    assert batch.frame["ticker"].tolist() == ["YYY", "YYY"]
    assert batch.frame["option_type"].tolist() == ["call", "put"]


def test_options_stated_date_wins_over_the_file_name_with_a_note(tmp_path):
    root = root_with(tmp_path, options=[FIXTURES / "options" / "ZZZ_2025-02-03.csv"])
    batch = FilesSource(root, snapshot_dates={"ZZZ_2025-02-03.csv": dt.date(2025, 2, 4)}).option_quotes(None, *ALL)
    assert set(batch.frame["snapshot_date"]) == {day("2025-02-04")}
    assert any("2025-02-03" in n and "2025-02-04" in n for n in batch.notes)


def test_options_stated_by_relative_path_and_a_bad_sidecar_entry_is_reported(tmp_path):
    folder = tmp_path / "options" / "desk"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "options_undated" / "yyy_options.csv", folder / "yyy_options.csv")
    shutil.copy(FIXTURES / "options_undated" / "yyy_options.csv", folder / "other.csv")
    (folder / "snapshot_dates.csv").write_text("file,snapshot_date\nother.csv,someday\n")
    batch = FilesSource(tmp_path, snapshot_dates={"desk/yyy_options.csv": "2025-02-05"}).option_quotes(None, *ALL)
    assert batch.frame["snapshot_date"].tolist() == [day("2025-02-05")] * 2
    sidecar = reject_at(batch.rejects, folder / "snapshot_dates.csv", 2)
    assert "someday" in sidecar.reason
    assert reject_at(batch.rejects, folder / "other.csv", None).reason.startswith("no snapshot date")


def test_options_rows_contradicting_their_symbol_are_refused(tmp_path):
    folder = tmp_path / "options"
    folder.mkdir()
    (folder / "ABC_2025-02-03.csv").write_text(
        "contractSymbol,strike,expirationDate,option_type,lastPrice\n"
        "ABC250207C00050000,50.0,2025-02-07,Call,1.0\n"  # 2: fine
        "ABC250207C00055000,55.0,2025-02-14,Call,1.0\n"  # 3: expiry disagrees
        "ABC250207C00060000,60.0,2025-02-07,Put,1.0\n"  # 4: type disagrees
        "ABC250207C00065000,66.0,2025-02-07,Call,1.0\n"  # 5: strike disagrees
        "ABC250207C00070000,70.0,2025-02-07,straddle,1.0\n"  # 6: not a type
        "not-a-symbol,75.0,2025-02-07,Call,1.0\n"  # 7: fields from columns, ticker from name
    )
    batch = FilesSource(tmp_path).option_quotes(None, *ALL)
    reasons = dict(zip(batch.rejects.line, batch.rejects.reason))
    assert sorted(reasons) == [3, 4, 5, 6]
    assert "expiration_date 2025-02-14 disagrees" in reasons[3]
    assert "option_type Put disagrees" in reasons[4]
    assert "strike 66.0 disagrees" in reasons[5]
    assert "straddle" in reasons[6]
    assert sorted(batch.frame.contract_symbol) == ["ABC250207C00050000", "not-a-symbol"]
    r = one(batch.frame, contract_symbol="not-a-symbol")
    assert (r.ticker, r.option_type, r.strike, r.expiration_date) == ("ABC", "call", 75.0, day("2025-02-07"))


# -- fundamentals and valuation -------------------------------------------------------------


def test_fundamentals_tidy_file_with_extra_column_and_out_of_scope_files(fixtures):
    batch = fixtures.fundamentals(None, *ALL)
    f = batch.frame
    assert list(f.columns) == list(FUNDAMENTALS.columns)
    assert f["fiscal_period"].tolist() == ["FY2025Q2", "FY2025Q3", "FY2025Q4"]
    r = one(f, fiscal_period="FY2025Q4")
    assert (r.ticker, r.period_end, r.report_date, r.revenue, r.gross_profit, r.diluted_eps) == (
        "ZZZ",
        day("2025-01-26"),
        day("2025-02-26"),
        39.3e9,
        28.7e9,
        0.89,
    )
    folder = FIXTURES / "fundamentals"
    assert reject_at(batch.rejects, folder / "ZZZ_quarterly_tidy.csv", 5).reason == "report_date is missing"
    av = reject_at(batch.rejects, folder / "alphavantage" / "ZZZ_financials.csv", None)
    assert av.reason == "no period_end, report_date column(s) among [date, totalRevenue, reportedEPS]"
    assert any("restated" in n for n in batch.notes)
    assert any("financials.json" in n and "non-CSV" in n for n in batch.notes)


def test_fundamentals_window_is_on_report_date(fixtures):
    batch = fixtures.fundamentals(["zzz"], dt.date(2024, 11, 20), dt.date(2025, 2, 25))
    assert batch.frame["fiscal_period"].tolist() == ["FY2025Q3"]


def test_valuation_snapshots(fixtures):
    batch = fixtures.valuation_snapshots(None, dt.date(2025, 2, 3), dt.date(2025, 2, 3))
    assert batch.rejects.empty
    f = batch.frame
    assert list(f.columns) == list(VALUATION.columns)
    assert sorted(f.ticker) == ["BRK-B", "ZZZ"]
    r = one(f, ticker="ZZZ")
    assert (r.market_cap, r.forward_pe, r.sector, r.industry) == (2.9e12, 26.0, "Technology", "Semiconductors")
    assert pd.isna(one(f, ticker="BRK-B").forward_eps)
    assert any("beta" in n for n in batch.notes)


# -- the real files (PROVENANCE.md) ----------------------------------------------------------


def real(relative: str) -> Path:
    path = REAL / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def linked_root(tmp_path: Path, **folders: str) -> Path:
    """tmp_path/<folder> -> a real folder, or a folder of links to real files."""
    for name, relative in folders.items():
        target = real(relative)
        if target.is_dir():
            (tmp_path / name).symlink_to(target, target_is_directory=True)
        else:
            (tmp_path / name).mkdir(exist_ok=True)
            (tmp_path / name / target.name).symlink_to(target)
    return tmp_path


def data_lines(path: Path, header_lines: int = 1) -> int:
    with path.open(newline="") as fh:
        return sum(1 for row in csv.reader(fh) if any(c.strip() for c in row)) - header_lines


GUYDEKOWSKI_ROWS = {
    "AAPL": 11515, "AMZN": 7363, "AVGO": 4287, "BRK-B": 7620, "GOOGL": 5537, "JPM": 11703, "LLY": 13669,
    "META": 3585, "MSFT": 10189, "NVDA": 6938, "QQQ": 6906, "SPY": 8448, "TSLA": 4062, "XLK": 6958,
}  # fmt: skip
STOCKS = ["AAPL", "AMZN", "AVGO", "BRK-B", "GOOGL", "JPM", "LLY", "META", "MSFT", "NVDA", "TSLA"]


def test_real_guydekowski_all_tickers(tmp_path):
    root = linked_root(tmp_path, prices="prices/guydekowski_market-lab")
    batch = FilesSource(root).prices(None, *ALL)
    assert batch.rejects.empty
    assert batch.frame.groupby("ticker").size().to_dict() == GUYDEKOWSKI_ROWS
    f = batch.frame
    nvda = one(f, ticker="NVDA", trade_date="2025-01-27")
    assert nvda.close == pytest.approx(118.2434, abs=5e-5)  # adjusted, and the only close
    assert nvda.adj_close == nvda.close and nvda.dividend == 0 and nvda.split_ratio == 1
    assert one(f, ticker="SPY", trade_date="2025-01-24").close == pytest.approx(599.2767, abs=5e-5)
    assert one(f, ticker="BRK-B", trade_date="2025-01-27").close == pytest.approx(474.7, abs=5e-5)
    assert f.groupby("ticker")["trade_date"].min()["AAPL"] == day("1980-12-12")


def test_real_aizg237_as_traded_close_adj_close_and_dividends(tmp_path):
    root = linked_root(tmp_path, prices="prices/AizG237_stock-analysis")
    batch = FilesSource(root).prices(None, *ALL)
    assert batch.rejects.empty
    f = batch.frame
    assert f.groupby("ticker").size().to_dict() == {t: 501 for t in STOCKS}
    assert f["trade_date"].min() == day("2024-08-20") and f["trade_date"].max() == day("2026-08-19")
    closes = f[f.ticker == "NVDA"].set_index("trade_date")
    assert closes.loc["2025-01-24", "close"] == pytest.approx(142.62, abs=5e-5)
    assert closes.loc["2025-01-27", "close"] == pytest.approx(118.42, abs=5e-5)
    assert closes.loc["2025-01-27", "adj_close"] == pytest.approx(118.2434, abs=5e-5)
    assert closes.loc["2025-01-28", "adj_close"] == pytest.approx(128.7976, abs=5e-5)
    change = closes.loc["2025-01-27", "close"] / closes.loc["2025-01-24", "close"] - 1
    assert change * 100 == pytest.approx(-16.97, abs=0.005)
    dividends = f[f.dividend > 0].groupby("ticker").size().to_dict()
    assert dividends == {"AAPL": 8, "AVGO": 8, "GOOGL": 8, "JPM": 8, "LLY": 8, "META": 8, "NVDA": 8, "MSFT": 7}
    assert closes.loc["2026-06-04", "dividend"] == 0.25  # the raised NVDA dividend
    assert (f.split_ratio == 1.0).all()  # stock_splits is all 0


def test_real_taeheon_kong_spy_as_traded_and_adjusted(tmp_path):
    root = linked_root(tmp_path, prices="prices/taeheon-kong_etf-app")
    batch = FilesSource(root).prices(["SPY", "QQQ", "XLK"], *ALL)
    assert batch.rejects.empty
    f = batch.frame
    assert f.groupby("ticker").size().to_dict() == {"QQQ": 5366, "SPY": 5366, "XLK": 5366}
    spy = one(f, ticker="SPY", trade_date="2025-01-27")
    assert spy.close == pytest.approx(599.37, abs=5e-5)
    assert spy.adj_close == pytest.approx(590.7997, abs=5e-5)
    assert one(f, ticker="QQQ", trade_date="2025-01-27").close == pytest.approx(514.21, abs=5e-5)
    assert one(f, ticker="XLK", trade_date="2025-01-24").close == pytest.approx(119.65, abs=5e-5)
    assert (f[f.ticker == "SPY"].dividend > 0).sum() > 0


def test_real_elayshos_column_order(tmp_path):
    root = linked_root(tmp_path, prices="prices/ElayShos_stock-predictor")
    batch = FilesSource(root).prices(["NVDA", "brk-b"], dt.date(2025, 1, 23), dt.date(2025, 1, 28))
    assert batch.rejects.empty
    nvda = one(batch.frame, ticker="NVDA", trade_date="2025-01-27")
    # Date,Close,High,Low,Open,Volume: Close 118.3812; the session opened higher.
    assert nvda.close == pytest.approx(118.3812, abs=5e-5)
    assert nvda.open > nvda.close and nvda.high >= nvda.open and nvda.low <= nvda.close
    assert nvda.volume == 818830900
    assert set(batch.frame.ticker) == {"NVDA", "BRK-B"} and len(batch.frame) == 8
    full = FilesSource(root).prices(["AAPL"], *ALL)
    assert len(full.frame) == 2514


def test_real_putcall_three_files_together_agree_and_merge(tmp_path):
    root = linked_root(tmp_path, putcall="putcall")
    batch = FilesSource(root).putcall(*ALL)
    # PROVENANCE: the 3253 overlapping rows of edwin-repo match totalpc and indexpc exactly,
    # so nothing conflicts and the official volumes join the collector's ratios.
    assert batch.rejects.empty
    f = batch.frame.set_index(["trade_date", "scope"])
    assert f.loc[(day("2025-01-27"), "index"), "ratio"] == 1.13
    row = f.loc[(day("2019-10-04"), "total")]
    assert (row.call_volume, row.put_volume, row.ratio) == (2175006, 2289715, 1.05)
    assert f.loc[(day("2019-10-04"), "index"), "call_volume"] == 783827
    with_volumes = batch.frame.dropna(subset=["call_volume"]).groupby("scope").size().to_dict()
    assert with_volumes == {"total": 3253, "index": 3253}
    assert any("merged" in n for n in batch.notes)


def test_real_putcall_window_reads_the_deepseek_days(tmp_path):
    root = linked_root(tmp_path, putcall="putcall/edwin-repo_market-signal-dashboard/putcall.csv")
    batch = FilesSource(root).putcall(dt.date(2025, 1, 23), dt.date(2025, 1, 28))
    got = {(r.trade_date.day, r.scope): r.ratio for r in batch.frame.itertuples()}
    assert got == {
        (23, "equity"): 0.53, (23, "total"): 0.78, (23, "index"): 0.97,
        (24, "equity"): 0.52, (24, "total"): 0.76, (24, "index"): 1.00,
        (27, "equity"): 0.57, (27, "total"): 0.89, (27, "index"): 1.13,
        (28, "equity"): 0.53, (28, "total"): 0.75, (28, "index"): 0.98,
    }  # fmt: skip


def test_real_ansabs_nvda_chain_with_stated_snapshot_date(tmp_path):
    path = real("options/ansabs_options_pricing/nvda_options.csv")
    root = linked_root(tmp_path, options="options/ansabs_options_pricing/nvda_options.csv")
    unstated = FilesSource(root).option_quotes(None, *ALL)
    assert unstated.rows == 0 and unstated.rejects["reason"].str.startswith("no snapshot date").all()

    batch = FilesSource(root, snapshot_dates={"nvda_options.csv": dt.date(2025, 2, 3)}).option_quotes(None, *ALL)
    assert batch.rejects.empty
    f = batch.frame
    assert len(f) == 6533
    assert f.option_type.value_counts().to_dict() == {"put": 3696, "call": 2837}
    assert set(f.ticker) == {"NVDA"} and set(f.snapshot_date) == {day("2025-02-03")}
    assert f.expiration_date.nunique() == 21
    assert (f.expiration_date.min(), f.expiration_date.max()) == (day("2025-02-07"), day("2027-01-15"))
    assert f.last_trade_at.max() == pd.Timestamp("2025-02-03 15:40:33", tz="UTC")
    # Every contract is kept: stale pre-split strikes and 1e-5 IV placeholders included.
    assert (f.strike > 400).sum() == 1326
    assert (f.implied_volatility.round(9) == 1e-5).sum() == 1585
    assert f.volume.isna().sum() == 190 and f.open_interest.isna().sum() == 12
    # The expirationDate column and the expiry encoded in the symbol agree on every row.
    with path.open(newline="") as fh:
        raw = {r["contractSymbol"]: r for r in csv.DictReader(fh)}
    from_symbol = f.contract_symbol.map(lambda s: dt.datetime.strptime(s[4:10], "%y%m%d").date())
    from_column = f.contract_symbol.map(lambda s: dt.date.fromisoformat(raw[s]["expirationDate"]))
    assert (from_symbol == from_column).all()
    assert (f.expiration_date.dt.date == from_column).all()
    assert any("ignored column(s) dte, T" in n for n in batch.notes)


def test_real_owenyi2_spy_chain_via_sidecar(tmp_path):
    root = linked_root(tmp_path, options="options/owenyi2_financial_data/SPY_options.csv")
    (root / "options" / "snapshot_dates.csv").write_text("file,snapshot_date\nSPY_options.csv,2025-08-26\n")
    batch = FilesSource(root).option_quotes(["SPY"], dt.date(2025, 8, 26), dt.date(2025, 8, 26))
    assert batch.rejects.empty
    f = batch.frame
    assert len(f) == 7011
    assert f.option_type.value_counts().to_dict() == {"call": 3570, "put": 3441}
    assert f.expiration_date.nunique() == 30
    assert (f.expiration_date.min(), f.expiration_date.max()) == (day("2025-08-26"), day("2027-12-17"))


def test_real_matteo_conti_one_day_of_calls_and_puts(tmp_path):
    folder = "options/matteo-conti-97_MPSMF_Project/nvda_daily_raw"
    calls, puts = real(f"{folder}/2024_11_11_NVDA_calls.csv"), real(f"{folder}/2024_11_11_NVDA_puts.csv")
    root = linked_root(tmp_path, options=f"{folder}/2024_11_11_NVDA_calls.csv")
    (root / "options" / puts.name).symlink_to(puts)
    batch = FilesSource(root).option_quotes(["NVDA"], dt.date(2024, 11, 11), dt.date(2024, 11, 11))
    assert batch.rejects.empty
    counts = batch.frame.option_type.value_counts().to_dict()
    assert counts == {"call": data_lines(calls), "put": data_lines(puts)}
    assert 807 <= counts["call"] <= 1256 and 730 <= counts["put"] <= 1157
    assert set(batch.frame.snapshot_date) == {day("2024-11-11")}


def test_real_nvda_quarterly_tidy(tmp_path):
    root = linked_root(tmp_path, fundamentals="fundamentals/NVDA_quarterly_tidy.csv")
    batch = FilesSource(root).fundamentals(["NVDA"], *ALL)
    f = batch.frame
    assert len(f) == 23  # 24 quarters; FY2026Q4 has no report_date (section 7)
    r = one(f, fiscal_period="FY2025Q4")
    assert (r.period_end, r.report_date, r.revenue, r.gross_profit) == (
        day("2025-01-26"),
        day("2025-02-26"),
        39_331e6,
        28_723e6,
    )
    assert one(f, fiscal_period="FY2025Q3").report_date == day("2024-11-20")
    assert one(f, fiscal_period="FY2025Q1").revenue == 26_044e6
    assert batch.rejects[["line", "reason"]].values.tolist() == [[25, "report_date is missing"]]
    assert not any("ignored" in n for n in batch.notes)
    window = FilesSource(root).fundamentals(None, dt.date(2024, 11, 1), dt.date(2025, 2, 28))
    assert window.frame.fiscal_period.tolist() == ["FY2025Q3", "FY2025Q4"]


def test_real_fundamentals_folder_skips_json_and_refuses_the_alpha_vantage_csv(tmp_path):
    root = linked_root(tmp_path, fundamentals="fundamentals")
    batch = FilesSource(root).fundamentals(None, *ALL)
    assert len(batch.frame) == 23
    refused = batch.rejects[batch.rejects.line.isna()]
    assert refused.source_ref.str.endswith("HiggsP10_Portfolio_Optimization/NVDA_financials.csv").tolist() == [True]
    assert refused.reason.iloc[0].startswith("no period_end column(s) among [date, totalAssets")
    assert any("financials.json" in n and "quarterly-links.json" in n for n in batch.notes)
