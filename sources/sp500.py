"""The S&P 500 universe (`config/sp500.csv`), built from a constituents list.

`bellwether universe sp500 --from FILE` reads a constituents file in the layout of the public data
package datasets/s-and-p-500-companies (`data/constituents.csv`: Symbol, Security, GICS Sector,
GICS Sub-Industry, Headquarters Location, Date added, CIK, Founded), and writes the universe file
Bellwether reads: the index proxies and macro funds of the default universe first, then every
constituent with

- its ticker in Yahoo's spelling (`BRK.B` -> `BRK-B`);
- its GICS sector and sub-industry;
- a cohort: `ai` for the names in AI_COHORT (each with the reason it is there), `non_ai` for the
  rest;
- a role: `stock`, or `share_class` for a company's second listed class. The list has a row per
  listed class (GOOGL and GOOG, FOXA and FOX, NWSA and NWS: 503 rows for 500 companies), and
  Yahoo's market cap for either class is the whole company's, so counting both would count the
  company twice. Rows sharing a CIK are one company; its first class by name ("Class A" before
  "Class C") is the `stock`, the others `share_class`. No hand-kept list decides it.

The file's first lines name the list it was built from and its date: membership is as of that
date (the list carries no history of additions and removals).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd

from sources.base import DEFAULT_UNIVERSE, load_universe, ticker_from_stem
from sources.contract import ContractError
from sources.files import _date_in_name

SOURCE_COLUMNS = {"Symbol": "symbol", "Security": "name", "GICS Sector": "sector", "GICS Sub-Industry": "sub_industry",
                  "CIK": "cik"}
OUTPUT_COLUMNS = ["ticker", "name", "sector", "sub_industry", "cohort", "role"]

# The AI cohort: companies whose revenue, or whose market narrative in 2024-2026, rides on AI
# compute, models or the data-centre build-out. The seeds judge the selloff by "AI stocks'
# price-to-sales twice that of the rest", so the cohort is the names the market trades as AI
# plays, not every company that mentions AI. Edit it here (and rebuild) or in the CSV.
AI_COHORT = {
    "NVDA": "GPUs and networking for AI training and inference: the centre of the AI trade",
    "MSFT": "Azure AI, the OpenAI partnership, Copilot",
    "GOOGL": "Gemini models, TPUs, Google Cloud AI",
    "AMZN": "AWS AI services and Trainium chips",
    "META": "Llama models and the largest AI capex among advertisers",
    "AVGO": "custom AI accelerators (XPUs) and data-centre networking",
    "AMD": "Instinct AI GPUs",
    "ORCL": "AI cloud infrastructure (OCI) and Stargate contracts",
    "PLTR": "AI platform software (AIP)",
    "MU": "high-bandwidth memory for AI accelerators",
    "ANET": "Ethernet switching for AI clusters",
    "SMCI": "AI servers",
    "DELL": "AI servers",
    "VRT": "power and cooling for AI data centres",
    "CEG": "nuclear power contracted to AI data centres",
    "VST": "power generation priced on AI data-centre demand",
    "MRVL": "custom AI silicon and optical interconnects",
}

_SYMBOL = re.compile(r"[A-Z0-9]+([.\-][A-Z0-9]+)*")


def read_constituents(path: Path | str) -> pd.DataFrame:
    """The constituents list, validated: every error names the file, the line and what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ContractError(f"constituents file {path} does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ContractError(f"constituents file {path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in SOURCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(
            f"constituents file {path}: missing column(s) {', '.join(missing)} (expected the layout of "
            f"datasets/s-and-p-500-companies: {', '.join(SOURCE_COLUMNS)}, ...)"
        )
    frame = frame[list(SOURCE_COLUMNS)].rename(columns=SOURCE_COLUMNS)
    frame = frame.apply(lambda col: col.str.strip())
    problems = []
    for i, row in enumerate(frame.itertuples(index=False)):
        line = i + 2
        if not _SYMBOL.fullmatch(row.symbol):
            problems.append(f"line {line}: symbol {row.symbol!r} is not a ticker")
        for field in ("name", "sector", "cik"):
            if not getattr(row, field):
                problems.append(f"line {line} ({row.symbol}): {field} is empty")
    dup = sorted(set(frame["symbol"][frame["symbol"].duplicated()]))
    if dup:
        problems.append(f"symbol(s) listed twice: {', '.join(dup)}")
    if problems:
        raise ContractError(f"constituents file {path}: " + "; ".join(problems))
    return frame


def build(constituents: pd.DataFrame, funds: pd.DataFrame | None = None) -> pd.DataFrame:
    """The universe rows: the funds (index proxies, ^VIX, Treasury and credit funds of the default
    universe unless given) and then every constituent, in the list's order."""
    funds = load_universe(DEFAULT_UNIVERSE) if funds is None else funds
    funds = funds[funds["role"] != "stock"].assign(sub_industry=None)[OUTPUT_COLUMNS]
    stocks = constituents.copy()
    stocks["ticker"] = stocks["symbol"].map(ticker_from_stem)
    # One company, one stock: the first class by name among the rows sharing a CIK.
    first_class = stocks.sort_values(["cik", "name", "ticker"]).drop_duplicates("cik").set_index("cik")["ticker"]
    stocks["role"] = stocks["ticker"].isin(first_class).map({True: "stock", False: "share_class"})
    # A second class follows its company's cohort (GOOG is as much an AI name as GOOGL).
    company_cohort = first_class.map(lambda t: "ai" if t in AI_COHORT else "non_ai")
    stocks["cohort"] = stocks["cik"].map(company_cohort)
    clash = sorted(set(funds["ticker"]) & set(stocks["ticker"]))
    if clash:
        raise ContractError(f"ticker(s) {', '.join(clash)} are both a fund of the default universe and a constituent")
    return pd.concat([funds, stocks[OUTPUT_COLUMNS]], ignore_index=True)


def ai_names_absent(universe: pd.DataFrame) -> list[str]:
    """AI_COHORT names the list does not hold (left the index, or renamed): the builder says so,
    since the cohort then has fewer names than it is documented with."""
    return sorted(set(AI_COHORT) - set(universe["ticker"]))


def header_lines(source: str, as_of: dt.date | str) -> list[str]:
    """The provenance lines the universe file opens with (load_universe skips `#` lines)."""
    return [
        f"# S&P 500 constituents as of {as_of}, built by `bellwether universe sp500 --from FILE` (sources/sp500.py).",
        f"# Source: {source}",
        "# Membership is as of that date only. Roles: share_class = a company's second listed class (left out of",
        "# market-value totals); cohort ai = sources/sp500.py AI_COHORT, with the reason for each name.",
    ]


def write(universe: pd.DataFrame, path: Path | str, *, source: str, as_of: dt.date | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = universe.to_csv(index=False, lineterminator="\n")
    path.write_text("\n".join(header_lines(source, as_of)) + "\n" + body, encoding="utf-8")
    return path


def as_of_from_name(path: Path | str) -> dt.date | None:
    """The list's date from its file name (`sp500_constituents_2026-08-08.csv`), if it has one."""
    return _date_in_name(Path(Path(path).name))
