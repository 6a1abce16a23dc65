"""The sample source: a seeded synthetic market on the real NYSE calendar.

`SampleSource` serves every raw dataset (daily prices, option chains, valuation snapshots,
quarterly fundamentals and CBOE-style put/call volumes) for the tickers of the universe file,
with no network. The flows, marts, tests and benchmarks run on it end to end, and tests can
assert on a market whose story is known in advance.

The market
----------
Four shared daily factors, drawn once from the base seed: a market factor whose volatility
follows a mean-reverting log-volatility state that rises when the market falls (the leverage
effect); `^VIX` is read off that state (about 12-35, spiking in sell-offs); an "AI" factor
with a strong drift through 2023-2024; and a rates factor, weakly negatively correlated with
the market, that drives the Treasury ETFs. Stocks load on the market (beta 0.8-1.3), the AI
cohort also on the AI factor, plus idiosyncratic noise and a jump on each earnings report
date. SPY, QQQ and XLK are the market plus an AI tilt (0.15, 0.27, 0.35), so index proxies move
like indices. HYG and LQD mix rates and market. Price levels are calibrated so that each
ticker closes near its real level on 2025-01-24 (SPY ~608, NVDA ~143); before and after, the
path is whatever the seed gives.

On `selloff_date` (default 2025-01-27, the DeepSeek day) the AI factor falls 12% while the
market ex-AI is slightly up: NVDA about -16.5%, other AI names -9% to -16%, QQQ about -3%, SPY
about -1.6%, non-AI names flat to up (a defensive rotation), VIX up about a fifth from a calm
~15, TLT up about 1%, volumes two to four times normal. Equity put/call ratios sit near
multi-year lows (~0.5) in the weeks before and jump on the day.

Determinism
-----------
A value for (ticker, date) never depends on the window or the tickers requested. Each
ticker's whole path, from `history_start` to the fixed horizon `HORIZON_END` (2030-12-31), is
generated at first use from a seed derived with SHA-256 from (seed, ticker, stream) -- never
Python's salted `hash()` -- and cached on the instance; the shared factors come from the base
seed alone. A ticker's numbers depend only on the seed, `history_start`, `selloff_date` and its
own universe row (role, cohort), so adding tickers (`n_extra_tickers`) changes nothing for the
others. Option chains are keyed the same way: every random number of a contract comes from a
counter-based hash of (ticker, date, contract slot), so a chain is identical whichever window
asked for it. Requests past the horizon return an empty batch with a note.

Conventions, as Yahoo Finance serves them
-----------------------------------------
- `close` is the as-traded close adjusted for splits only, so it is continuous through a split;
  the split shows as `split_ratio` on its ex-date (NVDA 10.0 on 2024-06-10, when the as-traded
  close before that day was ten times `close`). `volume` and `dividend` are split-adjusted the
  same way (current share units). Splits modelled: AAPL 4:1 2020-08-31, TSLA 5:1 2020-08-31 and
  3:1 2022-08-25, AMZN 20:1 2022-06-06, GOOGL 20:1 2022-07-18, NVDA 4:1 2021-07-20 and 10:1
  2024-06-10, WMT 3:1 2024-02-26, AVGO 10:1 2024-07-15.
- Dividends: quarterly for the payers (per-share amount = the period's yield times the
  previous close, on a fixed day of every third month; GOOGL from June 2024 and META from
  February 2024 only), quarterly on the third Friday of Mar/Jun/Sep/Dec for SPY/QQQ/XLK,
  monthly (first session) for TLT/IEF/HYG/LQD. The close drops by the dividend on the ex-date.
- `adj_close` is `close` back-adjusted for dividends from the last session of the horizon
  (Yahoo's method: before each ex-date multiply by 1 - dividend / previous close). It is the
  one field that is not point-in-time -- as with Yahoo -- and the fixed horizon keeps it
  bit-identical between requests. adj_close / close changes only on ex-dates.
- Option chains are quoted as traded on the snapshot date: a chain from before a split has
  pre-split strikes and premiums (NVDA strikes near 1,200 in May 2024).
- Fundamentals and valuation share counts and EPS are in split-adjusted (current) shares, as in
  Yahoo's restated statements, so price / EPS needs no adjustment.
- Fundamentals: quarters end on the last calendar day of each fiscal quarter (fiscal years end
  in January for NVDA and WMT, June for MSFT and PG, September for AAPL, October for AVGO,
  December otherwise); `fiscal_period` is named for the calendar year the fiscal year ends in
  (NVDA's quarter ending 2024-10-31 is FY2025Q3). Each is reported on the first session at or
  after 22-44 days past period end (fourth quarters later), as if before the open: the price
  jumps that day. Served quarters begin two years before `history_start` so that trailing
  figures exist from the first session. Revenue grows per ticker (the AI cohort faster, NVDA
  from about $6.1B a quarter in January 2023 to $35.1B in October 2024), gross margin 40-78%
  (NVDA ~72%), operating costs grow slower than revenue, and `cost_of_revenue` is exactly
  `revenue - gross_profit`, `diluted_eps` exactly `net_income / diluted_shares`.
- Valuation snapshots (stocks only, every session): trailing EPS and TTM revenue are the sums
  of the last four quarters whose report date is on or before the snapshot date (point in
  time); `market_cap = close * shares_outstanding`; forward EPS is trailing EPS grown by the
  ticker's expected growth; P/E is NULL when its EPS is not positive.
- Option chains (stocks, index and sector proxies; not ^VIX or the bond ETFs), one per session:
  the next four Fridays and the three monthly (third-Friday) expiries after them, a holiday
  Friday moving to the Thursday; strikes within +/-20% of spot every 2-4% of spot (140-300
  contracts a chain); OCC symbols (root without punctuation, BRK-B -> BRKB); Black-Scholes
  prices on an implied volatility with a put skew, an earnings bump for expiries past the next
  report and a rise with VIX; `snapshot_at` is the session's close, `last_trade_at` during it
  (or during the session before for a contract that did not trade). NVDA's short-dated call
  share on the selloff day is about 57%.
- Put/call (CBOE-style): equity, index (= spx + vix + other index), etp and total (= equity +
  index + etp) volumes, ratio = round(put / call, 2). Equity averages about 0.63 (mostly
  0.45-0.8), index about 1.1, total about 0.85, with complacent lows into the selloff (equity
  ~0.45, total ~0.7) and a jump on it.
- `^VIX` has no volume (NULL), like the index it is. Prices are rounded to 4 decimals (VIX to
  2), `adj_close` to 6.

Frames are built directly in the exact dtypes `conform()` produces (conform is too slow for
six million option rows); the unit tests prove that `conform()` returns them unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sources.base import load_universe
from sources.calendar import EXCHANGE, parse_date
from sources.contract import (
    BIGINT,
    DATE,
    DOUBLE,
    FUNDAMENTALS,
    OPTION_QUOTES,
    PRICES,
    PUTCALL,
    STRING,
    TIMESTAMPTZ,
    VALUATION,
    Batch,
    Dataset,
    empty_batch,
)

HORIZON_END = dt.date(2030, 12, 31)
DEFAULT_HISTORY_START = dt.date(2015, 1, 2)
DEFAULT_SELLOFF_DATE = dt.date(2025, 1, 27)
PRICE_ANCHOR_DATE = dt.date(2025, 1, 24)      # levels are calibrated to this session's closes
REVENUE_ANCHOR_DATE = dt.date(2024, 12, 31)   # quarterly revenue calibrated at the last quarter ending by then
AI_BOOM = (dt.date(2023, 1, 1), dt.date(2024, 12, 31))
REVENUE_BOOM = (dt.date(2023, 2, 1), dt.date(2024, 11, 30))
OPTION_ROLES = ("stock", "share_class", "index_proxy", "sector_proxy")
RISK_FREE_RATE = 0.04
PUTCALL_SCOPE_ORDER = ("total", "equity", "index", "vix", "spx", "etp")

# The selloff day, in factor terms (see the module docstring).
_SELLOFF_MARKET, _SELLOFF_AI, _SELLOFF_RATES, _SELLOFF_LOGVOL = 0.002, -0.12, 0.011, 0.34
_CALM_LOGVOL = float(np.log(6.0 / 8.0) / 1.2)   # VIX = 9 + 8 exp(1.2 h) = 15 the session before
_SIG_BAR = 17.0 / 100 / np.sqrt(252) * 0.8      # the market's daily volatility at VIX 17
_N_WEEKLY, _N_MONTHLY, _N_STRIKES = 4, 3, 21
_STRIKE_STEPS = np.array([0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 250.0, 500.0])
_STRIKE_RANGE = 0.20   # strikes within +/-20% of spot, every `step` (2-4% of spot): 11-21 per expiry
_SYNTHETIC_SECTORS = (
    ("Technology", "Software - Application"),
    ("Health Care", "Biotechnology"),
    ("Financials", "Banks - Regional"),
    ("Consumer Discretionary", "Specialty Retail"),
    ("Communication Services", "Internet Content & Information"),
    ("Industrials", "Specialty Industrial Machinery"),
    ("Consumer Staples", "Packaged Foods"),
    ("Energy", "Oil & Gas E&P"),
    ("Utilities", "Utilities - Regulated Electric"),
    ("Real Estate", "REIT - Industrial"),
    ("Materials", "Specialty Chemicals"),
)
_SECTOR_INDUSTRY = dict(_SYNTHETIC_SECTORS)

# Calibration of the bundled universe. Anything not listed is drawn from the ticker's own seed.
# anchor: close on 2025-01-24; idio: daily idiosyncratic volatility; alpha: annual drift beyond the
# factors; volume: typical daily shares; div: (yield, schedule); revenue: quarterly, $, for the
# last fiscal quarter ending by 2024-12-31; shares: diluted, split-adjusted.
_Q, _Q3F, _MONTHLY = "quarterly", "third_friday", "monthly"
_NAMED: dict[str, dict] = {
    "SPY": dict(anchor=607.97, beta=1.0, gamma=0.15, idio=0.0004, alpha=0.0, volume=45e6,
                div=(0.0125, _Q3F), opt_volume=3.0e6, pcr=1.35),
    "QQQ": dict(anchor=529.63, beta=1.1, gamma=0.27, idio=0.0012, alpha=0.01, volume=35e6,
                div=(0.006, _Q3F), opt_volume=1.5e6, pcr=1.2),
    "XLK": dict(anchor=240.30, beta=1.15, gamma=0.35, idio=0.002, alpha=0.01, volume=5e6,
                div=(0.0068, _Q3F), opt_volume=2.0e4, pcr=1.0),
    "TLT": dict(anchor=87.60, duration=1.0, idio=0.0008, volume=35e6, div=(0.041, _MONTHLY)),
    "IEF": dict(anchor=93.30, duration=0.42, idio=0.0004, volume=8e6, div=(0.035, _MONTHLY)),
    "HYG": dict(anchor=79.60, idio=0.002, volume=35e6, div=(0.058, _MONTHLY)),
    "LQD": dict(anchor=108.30, idio=0.0015, volume=25e6, div=(0.043, _MONTHLY)),
    "NVDA": dict(anchor=142.62, beta=1.3, gamma=1.4, idio=0.022, alpha=0.05, boom_alpha=0.55, volume=250e6,
                 div=(0.0003, _Q, 3, 8), splits=[("2021-07-20", 4.0), ("2024-06-10", 10.0)], earn=0.07,
                 fye=1, revenue=35.08e9, growth=0.12, boom_growth=0.22, gm=0.72, opex=0.11, tax=0.13,
                 shares=24.5e9, buyback=0.005, fwd=0.55, industry="Semiconductors",
                 opt_volume=3.5e6, pcr=0.65, selloff_call_share=0.57),
    "AAPL": dict(anchor=222.78, beta=1.05, gamma=0.0, idio=0.012, alpha=0.06, volume=50e6,
                 div=(0.0045, _Q, 2, 9), splits=[("2020-08-31", 4.0)], earn=0.04, fye=9, revenue=124.3e9,
                 growth=0.05, gm=0.465, opex=0.115, tax=0.16, shares=15.15e9, buyback=0.025, fwd=0.09,
                 industry="Consumer Electronics", opt_volume=1.0e6, pcr=0.7),
    "MSFT": dict(anchor=444.06, beta=1.0, gamma=0.85, idio=0.011, alpha=0.06, volume=20e6,
                 div=(0.0075, _Q, 2, 15), earn=0.045, fye=6, revenue=69.6e9, growth=0.12, gm=0.69,
                 opex=0.24, tax=0.18, shares=7.47e9, buyback=0.005, fwd=0.13,
                 industry="Software - Infrastructure", opt_volume=4.0e5, pcr=0.75),
    "AMZN": dict(anchor=234.85, beta=1.15, gamma=0.8, idio=0.014, alpha=0.05, volume=40e6,
                 div=None, splits=[("2022-06-06", 20.0)], earn=0.06, fye=12, revenue=187.8e9,
                 growth=0.11, gm=0.475, opex=0.36, tax=0.15, shares=10.8e9, buyback=-0.01, fwd=0.18,
                 industry="Internet Retail", opt_volume=6.0e5, pcr=0.7),
    "GOOGL": dict(anchor=200.21, beta=1.05, gamma=0.85, idio=0.013, alpha=0.05, volume=28e6,
                  div=(0.0045, _Q, 3, 9), div_start="2024-06-01", splits=[("2022-07-18", 20.0)], earn=0.05,
                  fye=12, revenue=96.5e9, growth=0.12, gm=0.58, opex=0.26, tax=0.17, shares=12.45e9,
                  buyback=0.02, fwd=0.12, industry="Internet Content & Information", opt_volume=4.0e5, pcr=0.7),
    "META": dict(anchor=647.49, beta=1.2, gamma=0.85, idio=0.018, alpha=0.06, volume=13e6,
                 div=(0.0031, _Q, 3, 14), div_start="2024-02-15", earn=0.08, fye=12, revenue=48.4e9,
                 growth=0.14, gm=0.76, opex=0.28, tax=0.12, shares=2.6e9, buyback=0.015, fwd=0.12,
                 industry="Internet Content & Information", opt_volume=4.0e5, pcr=0.7),
    "AVGO": dict(anchor=237.40, beta=1.25, gamma=1.3, idio=0.017, alpha=0.08, boom_alpha=0.10, volume=25e6,
                 div=(0.0095, _Q, 3, 20), splits=[("2024-07-15", 10.0)], earn=0.06, fye=10, revenue=14.05e9,
                 growth=0.12, boom_growth=0.03, gm=0.64, opex=0.23, tax=0.10, shares=4.9e9, buyback=-0.01,
                 fwd=0.25, industry="Semiconductors", opt_volume=3.0e5, pcr=0.7),
    "TSLA": dict(anchor=406.58, beta=1.3, gamma=0.0, idio=0.030, alpha=0.10, volume=90e6, div=None,
                 splits=[("2020-08-31", 5.0), ("2022-08-25", 3.0)], earn=0.08, fye=12, revenue=25.7e9,
                 growth=0.08, gm=0.40, opex=0.30, tax=0.15, shares=3.5e9, buyback=-0.01, fwd=0.15,
                 industry="Auto Manufacturers", opt_volume=2.5e6, pcr=0.65),
    "BRK-B": dict(anchor=470.00, beta=0.85, gamma=0.0, idio=0.009, alpha=0.04, volume=4e6, div=None,
                  earn=0.03, fye=12, revenue=90.0e9, growth=0.04, gm=0.40, opex=0.26, tax=0.20,
                  shares=2.16e9, buyback=0.01, fwd=0.05, industry="Insurance - Diversified",
                  opt_volume=4.0e4, pcr=0.8),
    "JPM": dict(anchor=267.00, beta=1.0, gamma=0.0, idio=0.012, alpha=0.04, volume=9e6,
                div=(0.021, _Q, 1, 6), earn=0.035, fye=12, revenue=43.0e9, growth=0.05, gm=0.60,
                opex=0.22, tax=0.20, shares=2.82e9, buyback=0.02, fwd=0.04, industry="Banks - Diversified",
                opt_volume=8.0e4, pcr=0.85),
    "LLY": dict(anchor=770.00, beta=0.8, gamma=0.0, idio=0.016, alpha=0.12, volume=3e6,
                div=(0.0068, _Q, 2, 14), earn=0.06, fye=12, revenue=13.5e9, growth=0.15, gm=0.78,
                opex=0.40, tax=0.15, shares=0.90e9, buyback=0.0, fwd=0.35,
                industry="Drug Manufacturers - General", opt_volume=8.0e4, pcr=0.75),
    "XOM": dict(anchor=108.00, beta=0.8, gamma=0.0, idio=0.015, alpha=0.03, volume=15e6,
                div=(0.035, _Q, 2, 13), earn=0.03, fye=12, revenue=83.0e9, growth=0.02, gm=0.40,
                opex=0.27, tax=0.30, shares=4.4e9, buyback=0.01, fwd=0.02, industry="Oil & Gas Integrated",
                opt_volume=6.0e4, pcr=0.75),
    "JNJ": dict(anchor=151.50, beta=0.8, gamma=0.0, idio=0.009, alpha=0.03, volume=7e6,
                div=(0.032, _Q, 2, 18), earn=0.03, fye=12, revenue=22.5e9, growth=0.03, gm=0.69,
                opex=0.42, tax=0.15, shares=2.41e9, buyback=0.005, fwd=0.05,
                industry="Drug Manufacturers - General", opt_volume=4.0e4, pcr=0.8),
    "PG": dict(anchor=162.00, beta=0.8, gamma=0.0, idio=0.008, alpha=0.03, volume=7e6,
               div=(0.024, _Q, 1, 20), earn=0.025, fye=6, revenue=21.9e9, growth=0.03, gm=0.51,
               opex=0.27, tax=0.20, shares=2.45e9, buyback=0.01, fwd=0.05,
               industry="Household & Personal Products", opt_volume=3.0e4, pcr=0.8),
    "KO": dict(anchor=63.30, beta=0.8, gamma=0.0, idio=0.008, alpha=0.03, volume=14e6,
               div=(0.031, _Q, 3, 14), earn=0.025, fye=12, revenue=11.5e9, growth=0.03, gm=0.61,
               opex=0.33, tax=0.19, shares=4.33e9, buyback=0.002, fwd=0.05,
               industry="Beverages - Non-Alcoholic", opt_volume=3.0e4, pcr=0.75),
    "WMT": dict(anchor=96.50, beta=0.8, gamma=0.0, idio=0.010, alpha=0.07, volume=18e6,
                div=(0.0095, _Q, 3, 21), splits=[("2024-02-26", 3.0)], earn=0.04, fye=1, revenue=169.6e9,
                growth=0.05, gm=0.40, opex=0.36, tax=0.24, shares=8.05e9, buyback=0.01, fwd=0.08,
                industry="Discount Stores", opt_volume=8.0e4, pcr=0.75),
}


# --------------------------------------------------------------------------------------------
# Small numeric helpers


def _seed_int(*parts: object) -> int:
    """A stable 64-bit seed: SHA-256 of the parts (Python's hash() is salted per process)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(_seed_int(*parts))


def _ar1(u: np.ndarray, phi: float) -> np.ndarray:
    """x[t] = phi * x[t-1] + u[t] (starting from 0) along the last axis, without a per-element loop.

    Within a block x[j] = phi^j * cumsum(u[i] * phi^-i); blocks are as long as phi^-j stays far
    from overflow, and the result at t depends only on u[..t] (a longer series never changes it).
    """
    u = np.asarray(u, dtype=np.float64)
    block = max(16, int(300.0 / -np.log(phi)))
    out = np.empty_like(u)
    j = np.arange(min(block, u.shape[-1]), dtype=np.float64)
    grow, decay, carry_decay = phi ** -j, phi ** j, phi ** (j + 1)
    carry = np.zeros(u.shape[:-1])
    for b in range(0, u.shape[-1], block):
        seg = u[..., b:b + block]
        m = seg.shape[-1]
        x = decay[:m] * np.cumsum(seg * grow[:m], axis=-1) + carry[..., None] * carry_decay[:m]
        out[..., b:b + m] = x
        carry = x[..., -1]
    return out


_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _pair_hash(key: np.ndarray, day: np.ndarray) -> np.ndarray:
    """One 64-bit hash per (ticker key, epoch day): the root of that chain's random numbers."""
    with np.errstate(over="ignore"):
        return _splitmix(key.astype(np.uint64) ^ _splitmix(day.astype(np.uint64) * np.uint64(0x100000001B3)))


def _counter_uniforms(root: np.ndarray, slot: np.ndarray, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniforms in (0, 1) (32 bits each), a pure function of (root, slot, stream)."""
    with np.errstate(over="ignore"):
        z = _splitmix(root + slot.astype(np.uint64) * _GOLDEN + np.uint64(stream) * np.uint64(0xD1B54A32D192ED03))
    scale = 2.0**-32
    hi = ((z >> np.uint64(32)).astype(np.float64) + 0.5) * scale
    lo = ((z & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * scale
    return hi, lo


def _counter_normals(root: np.ndarray, slot: np.ndarray, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent standard normals (Box-Muller) from one counter hash."""
    u1, u2 = _counter_uniforms(root, slot, stream)
    radius, angle = np.sqrt(-2.0 * np.log(u1)), 2.0 * np.pi * u2
    return radius * np.cos(angle), radius * np.sin(angle)


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF (Abramowitz & Stegun 26.2.17, absolute error < 7.5e-8)."""
    t = 1.0 / (1.0 + 0.2316419 * np.abs(x))
    poly = t * (0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))))
    tail = np.exp(-0.5 * x * x) * (poly / np.sqrt(2.0 * np.pi))
    return np.where(x >= 0, 1.0 - tail, tail)


def _epoch_day(day: dt.date | str) -> int:
    return int(np.datetime64(pd.Timestamp(day).date(), "D").astype(np.int64))


def _day_to_date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def _month_ends(months: np.ndarray) -> np.ndarray:
    """Epoch days of the last day of each datetime64[M] month."""
    return (months + 1).astype("datetime64[D]").astype(np.int64) - 1


# --------------------------------------------------------------------------------------------
# Calendar and frame helpers


@dataclasses.dataclass(frozen=True)
class _Calendar:
    days: np.ndarray        # epoch days of every NYSE session from the start year to HORIZON_END
    opens_ns: np.ndarray    # UTC open of each session, ns since epoch
    closes_ns: np.ndarray   # UTC close (13:00 ET on early-close days)

    def on_or_after(self, day: np.ndarray) -> np.ndarray:
        idx = np.minimum(np.searchsorted(self.days, day, side="left"), len(self.days) - 1)
        return np.where(day > self.days[-1], day, self.days[idx])

    def on_or_before(self, day: np.ndarray) -> np.ndarray:
        idx = np.maximum(np.searchsorted(self.days, day, side="right") - 1, 0)
        return np.where(day > self.days[-1], day, self.days[idx])


@lru_cache(maxsize=4)
def _nyse(first_year: int) -> _Calendar:
    cal = xcals.get_calendar(EXCHANGE, start=f"{first_year}-01-02", end=HORIZON_END.isoformat())
    days = cal.sessions.values.astype("datetime64[D]").astype(np.int64)
    return _Calendar(
        days=days,
        opens_ns=pd.DatetimeIndex(cal.opens).asi8.copy(),
        closes_ns=pd.DatetimeIndex(cal.closes).asi8.copy(),
    )


def _text(values: Sequence[str], codes: np.ndarray | None = None) -> pd.Series:
    """A contract string column ('str' dtype), built from unique values and their codes."""
    arr = pa.array(list(values), type=pa.string())
    if codes is not None:
        arr = arr.take(pa.array(np.asarray(codes, dtype=np.int64)))
    return pd.Series(arr, dtype="str")


def _dates(epoch_days: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(epoch_days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]"))


def _timestamps(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize("UTC"))


def _counts(values: np.ndarray, mask: np.ndarray | None = None) -> pd.Series:
    values = np.asarray(values, dtype=np.int64)
    mask = np.zeros(len(values), dtype=bool) if mask is None else mask
    return pd.Series(pd.arrays.IntegerArray(values, mask))


def _batch(dataset: Dataset, columns: dict[str, pd.Series | np.ndarray], notes: list[str]) -> Batch:
    """A batch whose frame already has the exact dtypes `conform()` produces (tests prove it)."""
    frame = pd.DataFrame({c: columns[c] for c in dataset.columns})
    expected = {DOUBLE: "float64", BIGINT: "Int64", DATE: "datetime64[ns]", TIMESTAMPTZ: "datetime64[ns, UTC]"}
    for c, kind in dataset.columns.items():
        if kind in expected and str(frame[c].dtype) != expected[kind]:
            raise TypeError(f"{dataset.name}.{c} built as {frame[c].dtype}, not {expected[kind]}")
        if kind == STRING and str(frame[c].dtype) != "str":
            raise TypeError(f"{dataset.name}.{c} built as {frame[c].dtype}, not str")
    return Batch(dataset=dataset, frame=frame, notes=notes)


# --------------------------------------------------------------------------------------------
# Per-ticker generated state


@dataclasses.dataclass
class _Fundamentals:
    period_end: np.ndarray      # epoch days
    report_day: np.ndarray      # epoch days (sessions), increasing
    fiscal_period: list[str]
    revenue: np.ndarray
    gross_profit: np.ndarray
    operating_income: np.ndarray
    net_income: np.ndarray
    diluted_shares: np.ndarray
    diluted_eps: np.ndarray
    surprise: np.ndarray


@dataclasses.dataclass
class _Path:
    close: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    adj_close: np.ndarray
    volume: np.ndarray
    volume_missing: bool
    ex_idx: np.ndarray          # session indices of dividend ex-dates
    dividends: np.ndarray
    split_idx: np.ndarray
    split_ratios: np.ndarray
    traded_factor: np.ndarray | None   # as-traded price / close (splits after the date), None if no split
    iv: np.ndarray | None              # at-the-money implied volatility (annual), option tickers only
    fwd_noise: np.ndarray | None       # analysts' drift for forward EPS, stocks only
    fundamentals: _Fundamentals | None


class SampleSource:
    """A deterministic synthetic market on the NYSE calendar (see the module docstring)."""

    name = "sample"

    def __init__(
        self,
        universe: pd.DataFrame | None = None,
        seed: int = 7,
        history_start: dt.date = DEFAULT_HISTORY_START,
        selloff_date: dt.date | None = DEFAULT_SELLOFF_DATE,
        n_extra_tickers: int = 0,
    ) -> None:
        frame = load_universe() if universe is None else universe
        frame = frame[["ticker", "name", "sector", "cohort", "role"]].copy()
        frame["ticker"] = frame["ticker"].astype(str).str.strip().str.upper()
        if n_extra_tickers:
            extra = self.synthetic_universe(n_extra_tickers)
            extra = extra[~extra["ticker"].isin(frame["ticker"])]
            frame = pd.concat([frame, extra], ignore_index=True)
        self.universe = frame.reset_index(drop=True)
        self.seed = int(seed)
        self.history_start = parse_date(history_start, "history_start")
        if self.history_start > HORIZON_END:
            raise ValueError(f"history_start {self.history_start} is after the horizon {HORIZON_END}")
        self._cal = _nyse(self.history_start.year - 3)
        self._first = int(np.searchsorted(self._cal.days, _epoch_day(self.history_start)))
        self._days = self._cal.days[self._first:]
        self._n = len(self._days)
        self.selloff_date = None if selloff_date is None else parse_date(selloff_date, "selloff_date")
        self._selloff: int | None = None
        if self.selloff_date is not None:
            s = _epoch_day(self.selloff_date)
            i = int(np.searchsorted(self._days, s))
            if i < self._n and self._days[i] == s:
                self._selloff = i
            elif self._cal.days[0] <= s <= self._cal.days[-1] and not np.isin(s, self._cal.days):
                raise ValueError(f"selloff_date {self.selloff_date} is not an NYSE session")
        self._anchor = int(np.clip(np.searchsorted(self._days, _epoch_day(PRICE_ANCHOR_DATE), side="right") - 1, 0, self._n - 1))
        self._rows = {r.ticker: r for r in self.universe.itertuples(index=False)}
        self._paths: dict[str, _Path] = {}
        self._param_cache: dict[str, dict] = {}
        self._factor_cache: dict[str, np.ndarray] | None = None
        self._putcall_cache: dict[str, np.ndarray] | None = None

    # ---------------------------------------------------------------- construction helpers

    @staticmethod
    def synthetic_universe(n: int, first: int = 1) -> pd.DataFrame:
        """Extra stock rows SYN001, SYN002, ... in the universe file's shape."""
        width = max(3, len(str(first + n - 1)))
        rows = []
        for i in range(first, first + n):
            ticker = f"SYN{i:0{width}d}"
            h = _seed_int("synthetic-universe", ticker)
            sector = _SYNTHETIC_SECTORS[h % len(_SYNTHETIC_SECTORS)][0]
            ai = sector in ("Technology", "Communication Services") and (h >> 8) % 2 == 0
            rows.append((ticker, f"Synthetic Company {i:0{width}d}", sector, "ai" if ai else "non_ai", "stock"))
        return pd.DataFrame(rows, columns=["ticker", "name", "sector", "cohort", "role"])

    @classmethod
    def scaled_universe(cls, n_tickers: int = 500) -> pd.DataFrame:
        """The bundled universe topped up with synthetic stocks to `n_tickers` rows."""
        base = load_universe()
        if n_tickers <= len(base):
            return base.head(n_tickers).reset_index(drop=True)
        return pd.concat([base, cls.synthetic_universe(n_tickers - len(base))], ignore_index=True)

    @classmethod
    def scaled(
        cls,
        n_tickers: int = 500,
        years: int = 20,
        seed: int = 7,
        end: dt.date = dt.date(2025, 12, 31),
        selloff_date: dt.date | None = DEFAULT_SELLOFF_DATE,
    ) -> "SampleSource":
        """A benchmark-sized market: `n_tickers` tickers with `years` years of history up to `end`.

        `prices(None, source.history_start, end)` then gives about n_tickers * 252 * years rows.
        """
        start = (pd.Timestamp(end) - pd.DateOffset(years=years)).date() + dt.timedelta(days=1)
        return cls(universe=cls.scaled_universe(n_tickers), seed=seed, history_start=start, selloff_date=selloff_date)

    @property
    def tickers(self) -> list[str]:
        return list(self.universe["ticker"])

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """The sessions this source serves in [start, end]."""
        j0, j1, _ = self._window(start, end)
        return [_day_to_date(d) for d in self._days[j0:j1]]

    # ---------------------------------------------------------------- the Source protocol

    def prices(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        j0, j1, notes = self._window(start, end)
        names, more = self._resolve(tickers, None)
        notes += more
        if j1 <= j0 or not names:
            return empty_batch(PRICES, notes)
        m = j1 - j0
        paths = [self._path(t) for t in names]
        cols: dict[str, list[np.ndarray]] = {c: [] for c in ("open", "high", "low", "close", "adj_close", "volume", "dividend", "split_ratio")}
        missing = []
        for p in paths:
            for c in ("open", "high", "low", "close", "adj_close", "volume"):
                cols[c].append(getattr(p, c)[j0:j1])
            missing.append(np.full(m, p.volume_missing))
            cols["dividend"].append(self._sparse(p.ex_idx, p.dividends, j0, j1, 0.0))
            cols["split_ratio"].append(self._sparse(p.split_idx, p.split_ratios, j0, j1, 1.0))
        flat = {c: np.concatenate(v) for c, v in cols.items()}
        return _batch(PRICES, {
            "ticker": _text(names, np.repeat(np.arange(len(names)), m)),
            "trade_date": _dates(np.tile(self._days[j0:j1], len(names))),
            **{c: flat[c] for c in ("open", "high", "low", "close", "adj_close", "dividend", "split_ratio")},
            "volume": _counts(flat["volume"], np.concatenate(missing)),
        }, notes)

    def fundamentals(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        notes = []
        start, end = parse_date(start, "start"), parse_date(end, "end")
        if end > HORIZON_END:
            notes.append(f"the sample market ends on {HORIZON_END}: nothing reported after it")
        names, more = self._resolve(tickers, ("stock",))
        notes += more
        lo, hi = _epoch_day(start), _epoch_day(end)
        parts = []
        for code, t in enumerate(names):
            f = self._path(t).fundamentals
            keep = np.flatnonzero((f.report_day >= lo) & (f.report_day <= hi))
            if len(keep):
                parts.append((code, f, keep))
        if not parts:
            return empty_batch(FUNDAMENTALS, notes)
        cat = lambda attr: np.concatenate([getattr(f, attr)[k] for _, f, k in parts])  # noqa: E731
        labels = [f.fiscal_period[i] for _, f, k in parts for i in k]
        revenue, gross = cat("revenue"), cat("gross_profit")
        return _batch(FUNDAMENTALS, {
            "ticker": _text(names, np.concatenate([np.full(len(k), code) for code, _, k in parts])),
            "period_end": _dates(cat("period_end")),
            "report_date": _dates(cat("report_day")),
            "fiscal_period": _text(labels),
            "revenue": revenue,
            "cost_of_revenue": revenue - gross,
            "gross_profit": gross,
            "operating_income": cat("operating_income"),
            "net_income": cat("net_income"),
            "diluted_eps": cat("diluted_eps"),
            "diluted_shares": cat("diluted_shares"),
        }, notes)

    def valuation_snapshots(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        j0, j1, notes = self._window(start, end)
        names, more = self._resolve(tickers, ("stock",))
        notes += more
        if j1 <= j0 or not names:
            return empty_batch(VALUATION, notes)
        days = self._days[j0:j1]
        m = len(days)
        out: dict[str, list[np.ndarray]] = {c: [] for c in (
            "market_cap", "shares_outstanding", "forward_eps", "trailing_eps", "forward_pe", "trailing_pe", "price_to_sales_ttm")}
        sectors, industries = [], []
        for t in names:
            p = self._path(t)
            f = p.fundamentals
            k = np.searchsorted(f.report_day, days, side="right") - 1   # latest quarter known that day
            ok = k >= 3
            kk = np.maximum(k, 3)
            eps, rev = f.diluted_eps, f.revenue
            ttm_eps = np.where(ok, eps[kk - 3] + eps[kk - 2] + eps[kk - 1] + eps[kk], np.nan)
            ttm_rev = np.where(ok, rev[kk - 3] + rev[kk - 2] + rev[kk - 1] + rev[kk], np.nan)
            shares = np.where(k >= 0, np.round(f.diluted_shares[np.maximum(k, 0)] * 0.992, -3), np.nan)
            close = p.close[j0:j1]
            cap = close * shares
            growth = 1.0 + self._params(t)["fwd"]
            fwd = np.round(ttm_eps * growth * np.exp(0.04 * p.fwd_noise[j0:j1]), 4)
            with np.errstate(divide="ignore", invalid="ignore"):
                out["trailing_pe"].append(np.where(ttm_eps > 0, close / ttm_eps, np.nan))
                out["forward_pe"].append(np.where(fwd > 0, close / fwd, np.nan))
                out["price_to_sales_ttm"].append(np.where(ttm_rev > 0, cap / ttm_rev, np.nan))
            out["market_cap"].append(cap)
            out["shares_outstanding"].append(shares)
            out["forward_eps"].append(fwd)
            out["trailing_eps"].append(ttm_eps)
            row = self._rows[t]
            sectors.append(row.sector or "")
            industries.append(self._params(t)["industry"])
        codes = np.repeat(np.arange(len(names)), m)
        return _batch(VALUATION, {
            "snapshot_date": _dates(np.tile(days, len(names))),
            "ticker": _text(names, codes),
            **{c: np.concatenate(v) for c, v in out.items()},
            "sector": _text([s or None for s in sectors], codes),
            "industry": _text(industries, codes),
        }, notes)

    def putcall(self, start: dt.date, end: dt.date) -> Batch:
        j0, j1, notes = self._window(start, end)
        if j1 <= j0:
            return empty_batch(PUTCALL, notes)
        pcs = self._putcall_arrays()
        calls = np.stack([pcs[f"{s}_call"][j0:j1] for s in PUTCALL_SCOPE_ORDER], axis=1).ravel()
        puts = np.stack([pcs[f"{s}_put"][j0:j1] for s in PUTCALL_SCOPE_ORDER], axis=1).ravel()
        k = len(PUTCALL_SCOPE_ORDER)
        return _batch(PUTCALL, {
            "trade_date": _dates(np.repeat(self._days[j0:j1], k)),
            "scope": _text(PUTCALL_SCOPE_ORDER, np.tile(np.arange(k), j1 - j0)),
            "call_volume": _counts(calls),
            "put_volume": _counts(puts),
            "ratio": np.round(puts / calls, 2),
        }, notes)

    def option_quotes(self, tickers: Sequence[str] | None, start: dt.date, end: dt.date) -> Batch:
        j0, j1, notes = self._window(start, end)
        names, more = self._resolve(tickers, OPTION_ROLES)
        notes += more
        if j1 <= j0 or not names:
            return empty_batch(OPTION_QUOTES, notes)
        return _batch(OPTION_QUOTES, self._option_columns(names, j0, j1), notes)

    # ---------------------------------------------------------------- requests

    def _window(self, start, end) -> tuple[int, int, list[str]]:
        start, end = parse_date(start, "start"), parse_date(end, "end")
        notes = []
        if end > HORIZON_END:
            notes.append(f"the sample market ends on {HORIZON_END}: no rows after it")
        if start < self.history_start and end >= self.history_start:
            notes.append(f"the sample market starts on {self.history_start}: no rows before it")
        if end < self.history_start or start > HORIZON_END:
            notes.append(f"{start}..{end} is outside the sample market ({self.history_start}..{HORIZON_END})")
        j0 = int(np.searchsorted(self._days, _epoch_day(start), side="left"))
        j1 = int(np.searchsorted(self._days, _epoch_day(end), side="right"))
        return j0, max(j0, j1), notes

    def _resolve(self, tickers: Sequence[str] | None, roles: tuple[str, ...] | None) -> tuple[list[str], list[str]]:
        if tickers is None:
            wanted = self.tickers
        else:
            wanted = [str(t).strip().upper() for t in ([tickers] if isinstance(tickers, str) else tickers)]
        unknown = sorted({t for t in wanted if t not in self._rows})
        notes = [f"not in the sample universe, skipped: {', '.join(unknown)}"] if unknown else []
        names = sorted({t for t in wanted if t in self._rows and (roles is None or self._rows[t].role in roles)})
        return names, notes

    @staticmethod
    def _sparse(idx: np.ndarray, values: np.ndarray, j0: int, j1: int, fill: float) -> np.ndarray:
        out = np.full(j1 - j0, fill)
        keep = (idx >= j0) & (idx < j1)
        out[idx[keep] - j0] = values[keep]
        return out

    # ---------------------------------------------------------------- parameters

    def _params(self, ticker: str) -> dict:
        """A ticker's model parameters: the calibration table, else draws from its own seed."""
        if ticker not in self._param_cache:
            self._param_cache[ticker] = self._draw_params(ticker)
        return self._param_cache[ticker]

    def _draw_params(self, ticker: str) -> dict:
        row = self._rows[ticker]
        u = _rng(self.seed, ticker, "params").uniform(size=24)
        ai = row.cohort == "ai"
        p: dict = dict(
            beta=0.8 + 0.5 * u[0], gamma=(0.6 + 0.6 * u[1]) if ai else 0.0, idio=0.010 + 0.015 * u[2],
            alpha=0.02 + 0.10 * u[3], boom_alpha=0.15 * u[4] if ai else 0.0,
            anchor=float(np.exp(np.log(15.0) + np.log(400 / 15) * u[5])),
            volume=float(np.exp(np.log(1e6) + np.log(30.0) * u[6])),
            div=(0.005 + 0.035 * u[8], _Q, 1 + int(3 * u[9]), 5 + int(16 * u[10])) if u[7] < 0.55 else None,
            div_start=None, splits=[], earn=0.03 + 0.05 * u[11],
            fye=int([12, 12, 12, 12, 3, 6, 9][int(7 * u[12])]),
            growth=(0.08 + 0.17 * u[13]) if ai else 0.10 * u[13], boom_growth=0.02 if ai else 0.0,
            gm=0.40 + 0.35 * u[14], tax=0.12 + 0.10 * u[15], buyback=0.02 * u[16] - 0.005,
            fwd=(0.12 + 0.15 * u[17]) if ai else 0.03 + 0.07 * u[17],
            industry=_SECTOR_INDUSTRY.get(row.sector, row.sector or "Diversified"),
            pcr=0.6 + 0.6 * u[18], selloff_call_share=None, duration=0.3 + 0.7 * u[19],
            selloff_rotation=0.003 + 0.012 * u[20] if not ai else 0.0,
        )
        shares = float(np.exp(np.log(1e8) + np.log(30.0) * u[21]))
        p["shares"] = shares
        p["revenue"] = p["anchor"] * shares / (1.5 + 6.5 * u[22]) / 4       # price-to-sales 1.5..8
        p["opex"] = p["gm"] - (0.08 + 0.22 * u[23])                          # operating margin 8-30%
        p["opt_volume"] = p["volume"] / 100 * (0.5 + u[22])
        if row.role == "index_proxy":
            p.update(beta=0.95 + 0.15 * u[0], gamma=0.3 * u[1], idio=0.0005 + 0.001 * u[2], alpha=0.0,
                     div=(0.008 + 0.008 * u[8], _Q3F), pcr=1.2)
        elif row.role == "sector_proxy":
            tech = row.sector in ("Technology", "Communication Services")
            p.update(beta=0.8 + 0.4 * u[0], gamma=0.35 if tech else 0.0, idio=0.002 + 0.002 * u[2],
                     alpha=0.0, div=(0.01 + 0.015 * u[8], _Q3F), pcr=1.0)
        elif row.role in ("treasury", "high_yield", "investment_grade"):
            p.update(idio=0.0005 + 0.0015 * u[2], div=(0.03 + 0.03 * u[8], _MONTHLY))
        p.update(_NAMED.get(ticker, {}))
        return p

    # ---------------------------------------------------------------- shared factors

    def _factors(self) -> dict[str, np.ndarray]:
        if self._factor_cache is not None:
            return self._factor_cache
        n, s = self._n, self._selloff
        z_m, z_a, z_b, z_h, z_v = _rng(self.seed, "market-factors").standard_normal((5, n))
        u = 0.08 * z_h - 0.07 * z_m                   # falling markets raise volatility, the same day
        if s is not None:
            u[s] += _SELLOFF_LOGVOL
        h = _ar1(u, 0.97)
        if s is not None and s >= 1:                  # a calm market the session before the selloff
            h += (_CALM_LOGVOL - h[s - 1]) * 0.97 ** np.abs(np.arange(n) - (s - 1))
        vix = np.round((9.0 + 8.0 * np.exp(1.2 * h)) * np.exp(0.03 * z_v), 2)
        sig_m = vix / 100 / np.sqrt(252) * 0.8
        m = 0.10 / 252 - 0.5 * sig_m**2 + sig_m * z_m
        boom = (self._days >= _epoch_day(AI_BOOM[0])) & (self._days <= _epoch_day(AI_BOOM[1]))
        a = np.where(boom, 0.35, 0.03) / 252 + 0.010 * (sig_m / _SIG_BAR) * z_a
        b = 0.0085 * (-0.25 * z_m + np.sqrt(1 - 0.25**2) * z_b)
        if s is not None:
            m[s], a[s], b[s] = _SELLOFF_MARKET, _SELLOFF_AI, _SELLOFF_RATES
        self._factor_cache = dict(m=m, a=a, b=b, vix=vix, sig_m=sig_m, boom=boom.astype(np.float64))
        return self._factor_cache

    # ---------------------------------------------------------------- one ticker's history

    def _path(self, ticker: str) -> _Path:
        path = self._paths.get(ticker)
        if path is None:
            path = self._paths[ticker] = self._generate(ticker)
        return path

    def _generate(self, ticker: str) -> _Path:
        row, p, f = self._rows[ticker], self._params(ticker), self._factors()
        n, s, days = self._n, self._selloff, self._days
        rng = _rng(self.seed, ticker, "prices")
        e, n_gap, n_hi, n_lo, n_vol, n_iv, n_fwd = rng.standard_normal((7, n))
        gap_share = rng.uniform(0.1, 0.5, n)
        role = row.role
        sig_rel = np.sqrt(f["sig_m"] / _SIG_BAR)
        if s is not None:
            e[s] *= 0.15                               # the day's story is the factors
            gap_share[s] = 0.85                        # and it happens at the open
        fundamentals = self._fundamentals_model(ticker, p) if role == "stock" else None
        div_yield, div_rule = (p["div"][0], p["div"][1:]) if p.get("div") else (0.0, None)
        freq = {None: 1, _Q: 4, _Q3F: 4, _MONTHLY: 12}[div_rule[0] if div_rule else None]

        if role == "volatility":
            level = f["vix"] if ticker == "^VIX" else np.round(f["vix"] * (0.9 + 0.2 * rng.uniform()) * np.exp(0.02 * e), 2)
            return self._vix_path(level, n_gap, n_hi, n_lo)
        if role == "treasury":
            r = p["duration"] * f["b"] + p["idio"] * e
            sd = np.sqrt((p["duration"] * 0.0085) ** 2 + p["idio"] ** 2) * np.ones(n)
        elif role in ("investment_grade", "high_yield"):
            wb, wm = (0.5, 0.12) if role == "investment_grade" else (0.15, 0.30)
            r = wb * f["b"] + wm * f["m"] + p["idio"] * e
            sd = np.sqrt((wb * 0.0085) ** 2 + (wm * f["sig_m"]) ** 2 + p["idio"] ** 2)
        else:
            idio = p["idio"] * sig_rel
            r = (p["alpha"] + p.get("boom_alpha", 0.0) * f["boom"]) / 252 + p["beta"] * f["m"] + p["gamma"] * f["a"] + idio * e
            sd = np.sqrt((p["beta"] * f["sig_m"]) ** 2 + (p["gamma"] * 0.010 * sig_rel**2) ** 2 + idio**2)
            if s is not None and role == "stock" and row.cohort != "ai":
                r[s] += p.get("selloff_rotation", 0.008)
        r = r + div_yield / 252                        # dividends are part of the total return

        report_idx = np.empty(0, dtype=np.int64)
        if fundamentals is not None:
            inside = (fundamentals.report_day >= days[0]) & (fundamentals.report_day <= days[-1])
            report_idx = np.searchsorted(days, fundamentals.report_day[inside])
            jump_noise = rng.standard_normal(len(fundamentals.report_day))[inside]
            r[report_idx] += p["earn"] * (0.8 * fundamentals.surprise[inside] + 0.6 * jump_noise)

        ex_idx = self._ex_dates(div_rule, p.get("div_start")) if div_rule else np.empty(0, dtype=np.int64)
        q = div_yield / freq
        r[ex_idx] += np.log1p(-q)

        level = np.cumsum(r)
        close = np.maximum(np.round(p["anchor"] * np.exp(level - level[self._anchor]), 4), 0.0001)
        prev = np.r_[close[0] * np.exp(-r[0]), close[:-1]]
        opened = prev * np.exp(gap_share * r + 0.25 * sd * n_gap)
        high = np.maximum(opened, close) * np.exp(0.4 * sd * np.abs(n_hi))
        low = np.minimum(opened, close) * np.exp(-0.4 * sd * np.abs(n_lo))
        opened, high, low = (np.maximum(np.round(x, 4), 0.0001) for x in (opened, high, low))
        high = np.maximum.reduce([high, opened, close])
        low = np.minimum.reduce([low, opened, close])

        dividends = np.maximum(np.round(q * close[ex_idx - 1], 4), 0.0001) if len(ex_idx) else np.empty(0)
        step = np.ones(n)
        step[ex_idx] = 1.0 - dividends / close[ex_idx - 1]
        # factor[t] = product of step over ex-dates after t, up to the horizon (Yahoo's back-adjustment)
        factor = np.r_[np.cumprod(step[::-1])[::-1][1:], 1.0]
        adj_close = np.round(close * factor, 6)

        vol_mult = np.exp(0.25 * n_vol - 0.03) * np.exp(0.25 * np.minimum(np.abs(r) / sd, 3.0)) * np.sqrt(f["vix"] / 17.0)
        vol_mult[report_idx] *= 1.8
        if s is not None:
            vol_mult[s] *= 1.6 if p["gamma"] > 0.5 else 1.3
        volume = np.maximum(np.rint(p["volume"] * vol_mult), 1).astype(np.int64)

        split_days = [_epoch_day(d) for d, _ in p.get("splits", [])]
        split_ratio = np.array([x for _, x in p.get("splits", [])], dtype=np.float64)
        sidx = np.searchsorted(days, self._cal.on_or_after(np.array(split_days, dtype=np.int64))) if split_days else np.empty(0, dtype=np.int64)
        keep = (sidx > 0) & (sidx < n)
        sidx, split_ratio = sidx[keep], split_ratio[keep]
        traded = None
        if len(sidx):
            marks = np.ones(n)
            marks[sidx] = split_ratio
            traded = np.r_[np.cumprod(marks[::-1])[::-1][1:], 1.0]   # splits strictly after t

        iv = fwd_noise = None
        if role in OPTION_ROLES:
            ou_u = 0.3 * n_iv
            if s is not None and p["gamma"] > 0.5:
                ou_u[s] += 2.5                          # AI names reprice their risk
            iv = np.clip(sd * np.sqrt(252) * 1.15 * np.exp(0.08 * _ar1(ou_u, 0.9)), 0.06, 3.0)
        if role == "stock":
            fwd_noise = _ar1(0.2 * n_fwd, 0.98)
        return _Path(
            close=close, open=opened, high=high, low=low, adj_close=adj_close, volume=volume, volume_missing=False,
            ex_idx=ex_idx, dividends=dividends, split_idx=sidx, split_ratios=split_ratio, traded_factor=traded,
            iv=iv, fwd_noise=fwd_noise, fundamentals=fundamentals,
        )

    def _vix_path(self, level: np.ndarray, n_gap, n_hi, n_lo) -> _Path:
        n = self._n
        prev = np.r_[level[0], level[:-1]]
        opened = prev * np.exp(0.5 * np.log(level / prev) + 0.02 * n_gap)
        high = np.maximum(opened, level) * np.exp(0.03 * np.abs(n_hi))
        low = np.minimum(opened, level) * np.exp(-0.025 * np.abs(n_lo))
        opened, high, low = (np.round(x, 2) for x in (opened, high, low))
        high = np.maximum.reduce([high, opened, level])
        low = np.minimum.reduce([low, opened, level])
        none = np.empty(0, dtype=np.int64)
        return _Path(
            close=level, open=opened, high=high, low=low, adj_close=level.copy(), volume=np.zeros(n, dtype=np.int64),
            volume_missing=True, ex_idx=none, dividends=np.empty(0), split_idx=none, split_ratios=np.empty(0),
            traded_factor=None, iv=None, fwd_noise=None, fundamentals=None,
        )

    def _ex_dates(self, rule: tuple, div_start: str | None) -> np.ndarray:
        """Session indices of the ex-dividend dates from `rule` (first session excluded: it has no previous close)."""
        first = np.datetime64(_day_to_date(self._days[0]), "M")
        months = np.arange(first, np.datetime64(HORIZON_END, "M") + 1)
        starts = months.astype("datetime64[D]").astype(np.int64)
        month_no = months.astype(np.int64) % 12 + 1
        if rule[0] == _MONTHLY:
            ex = self._cal.on_or_after(starts)
        elif rule[0] == _Q3F:
            pick = month_no % 3 == 0
            first_day = starts[pick]
            ex = self._cal.on_or_before(first_day + (4 - (first_day + 3) % 7) % 7 + 14)
        else:
            month0, day = rule[1], rule[2]
            pick = (month_no - month0) % 3 == 0
            ex = self._cal.on_or_after(starts[pick] + day - 1)
        if div_start:
            ex = ex[ex >= _epoch_day(div_start)]
        ex = np.unique(ex[(ex > self._days[0]) & (ex <= self._days[-1])])
        return np.searchsorted(self._days, ex)

    def _fundamentals_model(self, ticker: str, p: dict) -> _Fundamentals:
        rng = _rng(self.seed, ticker, "fundamentals")
        fye = int(p["fye"])
        months = np.arange(np.datetime64(f"{self.history_start.year - 2}-01", "M"), np.datetime64(HORIZON_END, "M") + 1)
        month_no = months.astype(np.int64) % 12 + 1
        months = months[(month_no - fye) % 3 == 0]
        month_no = months.astype(np.int64) % 12 + 1
        year = months.astype(np.int64) // 12 + 1970
        z = rng.standard_normal((5, len(months)))
        lag_noise = rng.integers(0, 7, len(months))
        period_end = _month_ends(months)
        fq = ((month_no - fye - 1) % 12) // 3 + 1
        fy = year + (month_no > fye)
        base_lag = 22 + int(_seed_int(self.seed, ticker, "lag") % 7)
        report = self._cal.on_or_after(period_end + base_lag + 10 * (fq == 4) + lag_noise)
        if self._selloff is not None:                 # keep the selloff day's moves about the selloff
            clash = report == self._days[self._selloff]
            report[clash] = self._days[min(self._selloff + 1, self._n - 1)]
        keep = report <= self._cal.days[-1]

        boom = (period_end >= _epoch_day(REVENUE_BOOM[0])) & (period_end <= _epoch_day(REVENUE_BOOM[1]))
        growth = p["growth"] / 4 + p.get("boom_growth", 0.0) * boom + 0.01 * z[0]
        log_rev = np.cumsum(growth)
        qa = int(np.clip(np.searchsorted(period_end, _epoch_day(REVENUE_ANCHOR_DATE), side="right") - 1, 0, len(months) - 1))
        rel = log_rev - log_rev[qa]
        revenue = np.round(p["revenue"] * np.exp(rel), -6)
        margin = np.clip(p["gm"] + 0.012 * z[1], 0.38, 0.80)
        gross = np.round(revenue * margin, -6)
        opex = p["opex"] * p["revenue"] * np.exp(0.6 * rel + 0.02 * z[2])    # operating leverage
        operating = np.round(gross - opex, -6)
        surprise = z[3]
        net = np.round((operating + 0.01 * revenue) * (1 - p["tax"]) * (1 + 0.04 * surprise), -6)
        shares = np.round(p["shares"] * np.exp(-p["buyback"] / 4 * (np.arange(len(months)) - qa)), -5)
        labels = [f"FY{y}Q{k}" for y, k in zip(fy[keep].tolist(), fq[keep].tolist())]
        return _Fundamentals(
            period_end=period_end[keep], report_day=report[keep], fiscal_period=labels,
            revenue=revenue[keep], gross_profit=gross[keep], operating_income=operating[keep],
            net_income=net[keep], diluted_shares=shares[keep], diluted_eps=net[keep] / shares[keep],
            surprise=surprise[keep],
        )

    # ---------------------------------------------------------------- put/call

    def _putcall_arrays(self) -> dict[str, np.ndarray]:
        if self._putcall_cache is not None:
            return self._putcall_cache
        f, n, s = self._factors(), self._n, self._selloff
        z = _rng(self.seed, "putcall").standard_normal((10, n))
        lv = np.log(f["vix"] / 17.0)
        trail = np.cumsum(f["m"])
        trail20 = trail - np.r_[np.zeros(20), trail[:-20]]
        years = (self._days - _epoch_day("2020-01-01")) / 365.25
        activity = (f["vix"] / 17.0) ** 0.6 * np.exp(0.06 * years)
        event = np.zeros(n)
        if s is not None:
            t = np.arange(n)
            before = t < s
            event[before] = -0.16 * np.exp(-(((s - 1 - t[before]) / 15.0) ** 2))   # complacency into the selloff
            event[~before] = 0.25 * 0.75 ** (t[~before] - s)
            activity = activity * np.where(t == s, 1.4, 1.0)
        noise = lambda i, phi, sd: sd * np.sqrt(1 - phi**2) * _ar1(z[i], phi)  # noqa: E731
        log_pcr = {
            "equity": np.log(0.62) + 0.35 * lv - 1.0 * trail20 + noise(0, 0.6, 0.08) + event,
            "spx": np.log(1.45) - 0.10 * lv + noise(1, 0.5, 0.10) + 0.3 * event,
            "vix": np.log(0.42) + 0.25 * lv + noise(2, 0.5, 0.15),
            "other": np.log(1.0) + noise(3, 0.3, 0.10),
            "etp": np.log(1.15) + 0.30 * lv + noise(4, 0.6, 0.08) + 0.5 * event,
        }
        base = {"equity": 2.6e6, "spx": 0.55e6, "vix": 0.30e6, "other": 0.05e6, "etp": 1.1e6}
        out: dict[str, np.ndarray] = {}
        for i, (scope, b) in enumerate(base.items()):
            call = np.maximum(np.rint(b * activity * np.exp(0.10 * z[5 + i])), 1).astype(np.int64)
            out[f"{scope}_call"] = call
            out[f"{scope}_put"] = np.maximum(np.rint(call * np.exp(log_pcr[scope])), 1).astype(np.int64)
        for side in ("call", "put"):
            out[f"index_{side}"] = out[f"spx_{side}"] + out[f"vix_{side}"] + out.pop(f"other_{side}")
            out[f"total_{side}"] = out[f"equity_{side}"] + out[f"index_{side}"] + out[f"etp_{side}"]
        self._putcall_cache = out
        return out

    # ---------------------------------------------------------------- option chains

    def _expiries(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each snapshot day: the next 4 Fridays and the 3 following monthly (third-Friday) expiries,
        each moved to the session before when the Friday is a holiday; and which are monthly."""
        weekday = (days + 3) % 7                                   # Monday = 0
        weekly = (days + (4 - weekday) % 7)[:, None] + 7 * np.arange(_N_WEEKLY)
        last = weekly[:, -1]
        months = last.astype("datetime64[D]").astype("datetime64[M]")[:, None] + np.arange(5)
        first = months.astype("datetime64[D]").astype(np.int64)
        third = first + (4 - (first + 3) % 7) % 7 + 14
        third = np.sort(np.where(third > last[:, None], third, np.iinfo(np.int64).max), axis=1)[:, :_N_MONTHLY]
        fridays = np.concatenate([weekly, third], axis=1)
        dom = (fridays.astype("datetime64[D]") - fridays.astype("datetime64[D]").astype("datetime64[M]")).astype(np.int64) + 1
        return self._cal.on_or_before(fridays), (dom >= 15) & (dom <= 21)

    def _option_columns(self, names: list[str], j0: int, j1: int, rows_per_chunk: int = 400_000) -> dict:
        """Option rows for `names` on sessions j0..j1-1, in (ticker, day, expiry, call/put, strike) order.

        Chain-level inputs (spot, volatility, expiries, strikes) are computed once per (ticker,
        day); the per-contract work runs over slices of chains into preallocated columns, which
        bounds memory at benchmark scale (500 tickers x 60 sessions is about six million rows).
        """
        days = self._days[j0:j1]
        D, E, K = len(days), _N_WEEKLY + _N_MONTHLY, _N_STRIKES
        expiry, monthly = self._expiries(days)
        f, pcs = self._factors(), self._putcall_arrays()
        eq_pcr = pcs["equity_put"][j0:j1] / pcs["equity_call"][j0:j1]
        never = np.iinfo(np.int64).max

        spot, iv0, key, next_rep, earn, opt_vol, call_share, event = ([] for _ in range(8))
        for t in names:
            p, path = self._params(t), self._path(t)
            close = path.close[j0:j1]
            spot.append(close * path.traded_factor[j0:j1] if path.traded_factor is not None else close)
            iv0.append(path.iv[j0:j1])
            key.append(np.full(D, _seed_int(self.seed, t, "options"), dtype=np.uint64))
            fm = path.fundamentals
            if fm is not None and len(fm.report_day):
                i = np.searchsorted(fm.report_day, days, side="right")
                next_rep.append(np.where(i < len(fm.report_day), fm.report_day[np.minimum(i, len(fm.report_day) - 1)], never))
            else:
                next_rep.append(np.full(D, never))
            earn.append(np.full(D, p.get("earn", 0.0) if fm is not None else 0.0))
            opt_vol.append(np.full(D, p["opt_volume"]))
            share = 1.0 / (1.0 + eq_pcr * p["pcr"] / 0.62)
            ev = np.ones(D)
            if self._selloff is not None and j0 <= self._selloff < j1:
                k = self._selloff - j0
                ev[k] = 2.5 if p["gamma"] > 0.5 else 1.5
                if p.get("selloff_call_share"):
                    share[k] = p["selloff_call_share"]
            call_share.append(share)
            event.append(ev)
        cat = np.concatenate
        S, iv0, key = cat(spot), cat(iv0), cat(key)
        next_rep, earn, opt_vol, call_share, event = cat(next_rep), cat(earn), cat(opt_vol), cat(call_share), cat(event)
        dpos = np.tile(np.arange(D), len(names))
        day = days[dpos]

        # chain level: (P,) per ticker-day, (P, E) per expiry, (P, K) per strike slot
        chain = dict(
            S=S, iv0=iv0, call_share=call_share, root=_pair_hash(key, day), day=day,
            gpos=self._first + j0 + dpos,                               # index into the calendar arrays
            volume=opt_vol * (f["vix"][j0:j1][dpos] / 17.0) ** 0.8 * event,
            open_interest=6.0 * opt_vol,
        )
        chain["volume"] = chain["volume"] * np.exp(0.3 * _counter_normals(chain["root"], np.full(len(S), 10_000, dtype=np.uint64), 4)[0] - 0.045)
        exp_p = expiry[dpos]
        T_days = (exp_p - day[:, None]).astype(np.float64)
        T = np.maximum(T_days, 0.25) / 365.0
        has_earnings = (next_rep[:, None] > day[:, None]) & (next_rep[:, None] <= exp_p)
        chain.update(
            expiry=exp_p, T_days=T_days, T=T, monthly=monthly[dpos],
            atm=np.sqrt(iv0[:, None] ** 2 + np.where(has_earnings, earn[:, None] ** 2 / T, 0.0)),
        )
        step = _STRIKE_STEPS[np.maximum(np.searchsorted(_STRIKE_STEPS, 0.04 * S, side="right") - 1, 0)]
        strikes = np.round(np.round(S / step)[:, None] * step[:, None] + step[:, None] * (np.arange(K) - K // 2), 3)
        listed = (strikes > 0) & (np.abs(strikes / S[:, None] - 1.0) <= _STRIKE_RANGE)
        chain.update(strikes=strikes, listed=listed, moneyness=np.log(np.where(listed, strikes, 1.0) / S[:, None]))

        per_chain = listed.sum(axis=1) * E * 2
        ends = np.cumsum(per_chain)
        n_rows = int(ends[-1]) if len(ends) else 0
        out = {c: np.empty(n_rows, dtype=t) for c, t in (
            ("pair", np.int64), ("expiration_day", np.int64), ("is_put", bool), ("strike", np.float64),
            ("last_price", np.float64), ("bid", np.float64), ("ask", np.float64), ("volume", np.int64),
            ("open_interest", np.int64), ("implied_volatility", np.float64), ("last_trade_ns", np.int64),
            ("snapshot_ns", np.int64))}
        first = 0
        while first < len(S):
            start_row = int(ends[first - 1]) if first else 0
            last = int(np.searchsorted(ends, start_row + rows_per_chunk, side="right"))
            last = max(last, first + 1)
            rows = self._option_rows(chain, first, last)
            stop_row = int(ends[last - 1])
            for c in out:
                out[c][start_row:stop_row] = rows[c]
            first = last

        pair = out.pop("pair")
        ticker_code = pair // D
        uniq_exp = np.unique(expiry)
        exp_code = np.searchsorted(uniq_exp, out["expiration_day"])
        put_code = out["is_put"].astype(np.int64)
        # OCC symbol = root + YYMMDD + C/P + strike x 1000 in 8 digits: built from two small
        # dictionaries (root-expiry-type prefixes and strike texts), then one join per row.
        yymmdd = [str(d)[2:4] + str(d)[5:7] + str(d)[8:10] for d in uniq_exp.astype("datetime64[D]")]
        roots = [t.replace("-", "").replace(".", "").replace("^", "").replace("/", "") for t in names]
        prefix_text = [r + e + cp for r in roots for e in yymmdd for cp in "CP"]
        prefix_code = (ticker_code * len(uniq_exp) + exp_code) * 2 + put_code
        strike_code, strike_milli = pd.factorize(np.rint(out["strike"] * 1000).astype(np.int64))
        symbol = pc.binary_join_element_wise(
            pa.array(prefix_text).take(pa.array(prefix_code)),
            pa.array([f"{k:08d}" for k in strike_milli.tolist()]).take(pa.array(strike_code.astype(np.int64))),
            "",
        )
        return {
            "snapshot_date": _dates(day[pair]),
            "ticker": _text(names, ticker_code),
            "contract_symbol": pd.Series(symbol, dtype="str"),
            "option_type": _text(["call", "put"], put_code),
            "expiration_date": _dates(out["expiration_day"]),
            "strike": out["strike"],
            "last_price": out["last_price"],
            "bid": out["bid"],
            "ask": out["ask"],
            "volume": _counts(out["volume"]),
            "open_interest": _counts(out["open_interest"]),
            "implied_volatility": out["implied_volatility"],
            "last_trade_at": _timestamps(out["last_trade_ns"]),
            "snapshot_at": _timestamps(out["snapshot_ns"]),
        }

    def _option_rows(self, chain: dict[str, np.ndarray], first: int, last: int) -> dict[str, np.ndarray]:
        """The listed contracts of chains first..last-1, one row each."""
        E, K = _N_WEEKLY + _N_MONTHLY, _N_STRIKES
        listed = np.broadcast_to(chain["listed"][first:last, None, None, :], (last - first, E, 2, K))
        pi, ei, ci, ki = np.nonzero(listed)
        pi += first
        pe, pk = pi * E + ei, pi * K + ki                             # flat indices into (P, E) and (P, K)
        # A contract's slot in the full E x 2 x K grid keys its random numbers, so they never
        # depend on which neighbours are listed or which window was asked for.
        slot = ((ei * 2 + ci) * K + ki).astype(np.uint64)
        root = chain["root"][pi]
        n_iv, n_vol = _counter_normals(root, slot, 1)
        u_last, u_time = _counter_uniforms(root, slot, 2)
        u_oi, _ = _counter_uniforms(root, slot, 3)

        m = chain["moneyness"].ravel()[pk]
        abs_m = np.abs(m)
        T, T_days = chain["T"].ravel()[pe], chain["T_days"].ravel()[pe]
        x = m / np.sqrt(np.maximum(T, 7 / 365))
        smile = np.clip(1.0 - 0.12 * x + 0.05 * x**2, 0.6, 3.0)             # puts dearer than calls
        iv = np.round(np.clip(chain["atm"].ravel()[pe] * smile * np.exp(0.03 * n_iv), 0.05, 5.0), 4)

        S, K_, is_call = chain["S"][pi], chain["strikes"].ravel()[pk], ci == 0
        vol_sqrt_t = iv * np.sqrt(T)
        d1 = (np.log(S / K_) + (RISK_FREE_RATE + 0.5 * iv**2) * T) / vol_sqrt_t
        disc = K_ * np.exp(-RISK_FREE_RATE * T)
        call_price = S * _norm_cdf(d1) - disc * _norm_cdf(d1 - vol_sqrt_t)
        mid = np.maximum(np.where(is_call, call_price, call_price - S + disc), 0.005)   # put-call parity
        half = np.maximum(0.005, mid * (0.02 + 0.3 * abs_m + 0.02 * (T < 2 / 365)) / 2)
        bid = np.maximum(np.round(mid - half, 2), 0.0)
        ask = np.round(np.maximum(mid + half, bid + 0.01), 2)
        last_price = np.maximum(np.round(mid + half * (2 * u_last - 1), 2), 0.01)

        # The chain's volume, spread toward short expiries, the money and the day's call share.
        share = chain["call_share"][pi]
        w = np.exp(-abs_m / (0.04 + 0.5 * chain["iv0"][pi] * np.sqrt(T))) * (np.exp(-T_days / 10.0) + 0.08)
        n = last - first
        side = (pi - first) * 2 + ci                                    # calls and puts split the chain's volume
        total = np.bincount(side, weights=w, minlength=2 * n)[side]
        volume = np.floor(chain["volume"][pi] * np.where(is_call, share, 1 - share) * w / total * np.exp(0.35 * n_vol - 0.06))
        w_oi = np.exp(-abs_m / 0.15) * np.where(chain["monthly"].ravel()[pe], 2.5, 1.0)
        total_oi = np.bincount(pi - first, weights=w_oi, minlength=n)[pi - first]
        open_interest = np.floor(chain["open_interest"][pi] * w_oi / total_oi * (0.4 + 1.2 * u_oi))

        gpos = chain["gpos"][pi]
        close_ns, open_ns = self._cal.closes_ns[gpos], self._cal.opens_ns[gpos]
        prev_close, prev_open = self._cal.closes_ns[gpos - 1], self._cal.opens_ns[gpos - 1]
        traded = np.where(
            volume > 0,
            close_ns - (u_time**2 * (close_ns - open_ns)).astype(np.int64),       # today, mostly late
            prev_close - (u_time * (prev_close - prev_open)).astype(np.int64),    # no trade today
        )
        return {
            "pair": pi, "expiration_day": chain["expiry"].ravel()[pe], "is_put": ~is_call, "strike": K_,
            "last_price": last_price, "bid": bid, "ask": ask, "volume": volume.astype(np.int64),
            "open_interest": open_interest.astype(np.int64), "implied_volatility": iv,
            "last_trade_ns": traded // 1_000_000_000 * 1_000_000_000, "snapshot_ns": close_ns,
        }
