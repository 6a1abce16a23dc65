"""marts.fundamentals_quarterly on inline quarters: growth, TTM and the 8-quarter margin worked
by hand on a 52/53-week fiscal calendar and a calendar-quarter one, missing quarters, point in
time under restatements, the split-adjusted EPS, and the real NVDA file."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.sql.conftest import LOADED_AT, build_up_to, insert_fundamentals

D = dt.date

COLS = (
    "period_end, report_date, revenue, gross_margin_pct, revenue_qoq_pct, revenue_yoy_pct, revenue_ttm, "
    "gross_margin_8q_avg_pct, gross_margin_8q_pooled_pct, diluted_eps_adjusted, diluted_eps_adjusted_ttm"
)

# NVIDIA's fiscal quarters FY2021Q1..FY2023Q4 (PROVENANCE.md section 4): 13-week quarters ending
# on a Sunday, and a 14-week one (2020-10-25 -> 2021-01-31, 98 days) in the 53-week FY2021.
FISCAL_ENDS = [
    D(2020, 4, 26), D(2020, 7, 26), D(2020, 10, 25), D(2021, 1, 31),
    D(2021, 5, 2), D(2021, 8, 1), D(2021, 10, 31), D(2022, 1, 30),
    D(2022, 5, 1), D(2022, 7, 31), D(2022, 10, 30), D(2023, 1, 29),
]
# Calendar quarters of 90 to 92 days.
CALENDAR_ENDS = [
    D(2021, 3, 31), D(2021, 6, 30), D(2021, 9, 30), D(2021, 12, 31),
    D(2022, 3, 31), D(2022, 6, 30), D(2022, 9, 30), D(2022, 12, 31),
    D(2023, 3, 31), D(2023, 6, 30), D(2023, 9, 30), D(2023, 12, 31),
]
REVENUE = [100, 120, 90, 110, 130, 150, 160, 140, 170, 200, 180, 210]
GROSS = [50, 66, 36, 55, 78, 75, 96, 84, 102, 90, 117, 126]  # margins 50 55 40 50 60 50 60 60 60 45 65 60 %
REPORT_LAG = dt.timedelta(days=25)


def quarters(ticker, ends, skip=()):
    return [
        (ticker, end, end + REPORT_LAG, float(REVENUE[i]), float(GROSS[i]), 1.0, 100.0)
        for i, end in enumerate(ends)
        if i not in skip
    ]


def rows(con, ticker):
    got = con.execute(
        f"select {COLS} from marts.fundamentals_quarterly where ticker = ? order by period_end", [ticker]
    ).fetchall()
    names = [c.strip() for c in COLS.split(",")]
    return [dict(zip(names, r)) for r in got]


@pytest.mark.parametrize("ends", [FISCAL_ENDS, CALENDAR_ENDS], ids=["52-53-week-fiscal", "calendar"])
def test_growth_ttm_and_eight_quarter_margin_by_hand(mem, ends):
    insert_fundamentals(mem, quarters("X", ends))
    build_up_to(mem, "fundamentals_quarterly")
    got = rows(mem, "X")
    assert [r["period_end"] for r in got] == ends
    assert got[0]["revenue_qoq_pct"] is None and got[0]["revenue_yoy_pct"] is None
    # Quarter 4 (after the 14-week quarter on the fiscal calendar): 110 against 90.
    assert got[3]["revenue_qoq_pct"] == pytest.approx(100 * (110 / 90 - 1))
    assert got[3]["revenue_yoy_pct"] is None  # no quarter a year earlier
    assert got[2]["revenue_ttm"] is None  # three quarters only
    assert got[3]["revenue_ttm"] == pytest.approx(100 + 120 + 90 + 110)
    # Quarter 5 against quarter 1, 371 days earlier on the 53-week fiscal year: 130 / 100.
    assert got[4]["revenue_yoy_pct"] == pytest.approx(30.0)
    assert got[4]["revenue_ttm"] == pytest.approx(120 + 90 + 110 + 130)
    assert got[6]["gross_margin_8q_avg_pct"] is None  # seven quarters only
    assert got[7]["gross_margin_8q_avg_pct"] == pytest.approx((50 + 55 + 40 + 50 + 60 + 50 + 60 + 60) / 8)
    assert got[7]["revenue_yoy_pct"] == pytest.approx(100 * (140 / 110 - 1))
    last = got[11]
    assert last["revenue"] == 210.0
    assert last["gross_margin_pct"] == pytest.approx(60.0)
    assert last["revenue_qoq_pct"] == pytest.approx(100 * (210 / 180 - 1))
    assert last["revenue_yoy_pct"] == pytest.approx(50.0)  # 210 against 140
    assert last["revenue_ttm"] == pytest.approx(170 + 200 + 180 + 210)
    assert last["gross_margin_8q_avg_pct"] == pytest.approx((60 + 50 + 60 + 60 + 60 + 45 + 65 + 60) / 8)
    assert last["gross_margin_8q_pooled_pct"] == pytest.approx(
        100 * (78 + 75 + 96 + 84 + 102 + 90 + 117 + 126) / (130 + 150 + 160 + 140 + 170 + 200 + 180 + 210)
    )
    assert last["diluted_eps_adjusted_ttm"] == pytest.approx(4.0)


def test_a_missing_quarter_gives_null_not_the_wrong_quarter(mem):
    insert_fundamentals(mem, quarters("X", FISCAL_ENDS, skip={5}))  # FY2022Q2 (2021-08-01) never arrived
    build_up_to(mem, "fundamentals_quarterly")
    got = {r["period_end"]: r for r in rows(mem, "X")}
    assert len(got) == 11
    q6, q7, q8, q9, q10 = (got[FISCAL_ENDS[i]] for i in (6, 7, 8, 9, 10))
    assert q6["revenue_qoq_pct"] is None  # the prior quarter is the missing one
    assert q6["revenue_yoy_pct"] == pytest.approx(100 * (160 / 90 - 1))  # the year-ago quarter is there
    assert q6["revenue_ttm"] is None and q7["revenue_ttm"] is None and q8["revenue_ttm"] is None
    assert q6["diluted_eps_adjusted_ttm"] is None and q8["diluted_eps_adjusted_ttm"] is None
    assert q9["revenue_ttm"] == pytest.approx(160 + 140 + 170 + 200)
    assert q9["diluted_eps_adjusted_ttm"] == pytest.approx(4.0)
    assert q9["revenue_yoy_pct"] is None  # a year before FY2023Q2 is the missing quarter
    assert q10["revenue_yoy_pct"] == pytest.approx(100 * (180 / 160 - 1))
    assert all(r["gross_margin_8q_avg_pct"] is None for r in got.values())  # every 8-quarter window has the hole


def test_a_missing_gross_profit_leaves_the_margin_average_null(mem):
    data = quarters("X", FISCAL_ENDS)
    data[8] = data[8][:4] + (None,) + data[8][5:]
    insert_fundamentals(mem, data)
    build_up_to(mem, "fundamentals_quarterly")
    got = rows(mem, "X")
    assert got[7]["gross_margin_8q_avg_pct"] == pytest.approx(53.125)
    assert got[8]["gross_margin_pct"] is None
    assert [r["gross_margin_8q_avg_pct"] for r in got[8:]] == [None] * 4
    assert got[8]["revenue_ttm"] == pytest.approx(150 + 160 + 140 + 170)  # revenue itself is there


def test_a_restatement_never_changes_an_earlier_row(mem):
    insert_fundamentals(mem, quarters("X", FISCAL_ENDS))
    build_up_to(mem, "fundamentals_quarterly")
    before = mem.execute("select * from marts.fundamentals_quarterly order by period_end").fetchall()
    q9_end, q10_end, q11_end = FISCAL_ENDS[9], FISCAL_ENDS[10], FISCAL_ENDS[11]
    insert_fundamentals(
        mem,
        [
            # FY2023Q2 restated (200 -> 220, margin still 45%) a week after FY2023Q3 was reported.
            ("X", q9_end, q10_end + REPORT_LAG + dt.timedelta(days=7), 220.0, 99.0, 1.0, 100.0),
            # FY2023Q3 restated (180 -> 190) in the release of FY2023Q4, the same day.
            ("X", q10_end, q11_end + REPORT_LAG, 190.0, 117.0, 1.0, 100.0),
        ],
    )
    build_up_to(mem, "fundamentals_quarterly")
    after = mem.execute("select * from marts.fundamentals_quarterly order by period_end").fetchall()
    assert after[:11] == before[:11]  # every quarter first published before the restatements
    last = rows(mem, "X")[11]
    assert last["revenue"] == 210.0
    # FY2023Q4 as known on its report date: both restated quarters in their new figures.
    assert last["revenue_qoq_pct"] == pytest.approx(100 * (210 / 190 - 1))
    assert last["revenue_ttm"] == pytest.approx(170 + 220 + 190 + 210)
    assert last["revenue_yoy_pct"] == pytest.approx(50.0)
    assert last["gross_margin_8q_pooled_pct"] == pytest.approx(
        100 * (78 + 75 + 96 + 84 + 102 + 99 + 117 + 126) / (130 + 150 + 160 + 140 + 170 + 220 + 190 + 210)
    )
    assert after[11] != before[11]


def test_a_quarter_not_yet_public_is_left_out(mem):
    # FY2022Q4 is reported late, after FY2023Q1: FY2023Q1's comparisons cannot use it.
    data = quarters("X", FISCAL_ENDS[:9])
    data[7] = data[7][:2] + (D(2022, 6, 15),) + data[7][3:]
    insert_fundamentals(mem, data)
    build_up_to(mem, "fundamentals_quarterly")
    got = rows(mem, "X")
    q8 = got[8]  # FY2023Q1, reported 2022-05-26
    assert q8["revenue_qoq_pct"] is None
    assert q8["revenue_ttm"] is None
    assert q8["revenue_yoy_pct"] == pytest.approx(100 * (170 / 130 - 1))
    assert got[7]["revenue_ttm"] == pytest.approx(130 + 150 + 160 + 140)  # FY2022Q4 as of its own late report


def test_ttm_eps_is_on_the_split_adjusted_basis(mem):
    # As published around a 10:1 split: 100m shares and $2 a share, then 1bn and $0.25.
    insert_fundamentals(
        mem,
        [
            ("S", D(2024, 3, 31), D(2024, 4, 25), 10.0, 5.0, 2.0, 100e6),
            ("S", D(2024, 6, 30), D(2024, 7, 25), 10.0, 5.0, 2.2, 101e6),
            ("S", D(2024, 9, 30), D(2024, 10, 25), 10.0, 5.0, 0.25, 1_010e6),
            ("S", D(2024, 12, 31), D(2025, 1, 25), 10.0, 5.0, 0.3, 1_000e6),
        ],
    )
    build_up_to(mem, "fundamentals_quarterly")
    got = mem.execute(
        "select split_factor, diluted_eps_adjusted, diluted_shares_adjusted, diluted_eps_adjusted_ttm "
        "from marts.fundamentals_quarterly order by period_end"
    ).fetchall()
    assert [r[0] for r in got] == [10.0, 10.0, 1.0, 1.0]
    assert got[0][1:3] == pytest.approx((0.2, 1_000e6))
    assert got[3][3] == pytest.approx(0.2 + 0.22 + 0.25 + 0.3)


def test_real_nvda_quarters(mem, real_data):
    from sources.files import FilesSource
    from warehouse.load import load_batch

    folder = real_data / "fundamentals"
    if not (folder / "NVDA_quarterly_tidy.csv").is_file():
        pytest.skip("the real NVDA fundamentals file is absent")
    batch = FilesSource(real_data).fundamentals(["NVDA"], D(2019, 1, 1), D(2026, 12, 31))
    load_batch(mem, batch, source="files", run_id="real", loaded_at=LOADED_AT)
    build_up_to(mem, "fundamentals_quarterly")
    got = {
        r[0]: r[1:]
        for r in mem.execute(
            "select fiscal_period, revenue, gross_margin_pct, revenue_ttm, gross_margin_8q_avg_pct, "
            "revenue_yoy_pct, diluted_eps_adjusted_ttm, diluted_shares_adjusted "
            "from marts.fundamentals_quarterly where ticker = 'NVDA'"
        ).fetchall()
    }
    # Values from NVIDIA's releases as listed in PROVENANCE.md section 4a.
    assert got["FY2025Q3"][0] == 35_082e6
    assert got["FY2025Q3"][1] == pytest.approx(100 * 26_156 / 35_082)  # 74.6%
    assert got["FY2023Q4"][0] == 6_051e6
    assert got["FY2025Q3"][0] / got["FY2023Q4"][0] == pytest.approx(5.8, abs=0.05)
    # TTM at the fiscal year ends equals the official annual revenue.
    assert got["FY2023Q4"][2] == 26_974e6
    assert got["FY2024Q4"][2] == 60_922e6
    assert got["FY2025Q4"][2] == 130_497e6
    # Revenue grew 94% on the year to FY2025Q3 (35,082 against 18,120).
    assert got["FY2025Q3"][4] == pytest.approx(100 * (35_082 / 18_120 - 1))
    # The recent 8-quarter mean gross margin: about 72-75% (72.0% to FY2025Q3, 73.2% to FY2025Q4).
    for q in ("FY2025Q3", "FY2025Q4", "FY2026Q1", "FY2026Q2", "FY2026Q3"):
        assert 71.9 <= got[q][3] <= 75, q
    # ... and for every quarter, as pandas computes it from the file itself.
    csv = pd.read_csv(folder / "NVDA_quarterly_tidy.csv").sort_values("period_end")
    csv["margin_8q"] = (100 * csv["gross_profit"] / csv["revenue"]).rolling(8).mean()
    for q, want in zip(csv["fiscal_period"], csv["margin_8q"]):
        if q in got:
            assert got[q][3] == (None if np.isnan(want) else pytest.approx(want)), q
    # FY2025 diluted EPS was $2.94 on post-split shares, though FY2025Q1 was published pre-split ($5.98).
    assert got["FY2025Q4"][5] == pytest.approx(2.94, abs=0.005)
    assert got["FY2025Q1"][6] == pytest.approx(24.89e9)
