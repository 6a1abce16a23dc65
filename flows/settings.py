"""One typed settings object, read from BELLWETHER_* environment variables (and `.env`).

CLI flags override these; `.env.example` lists them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sources.base import DEFAULT_UNIVERSE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE = PROJECT_ROOT / "warehouse" / "bellwether.duckdb"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BELLWETHER_", env_file=".env", extra="ignore")

    warehouse: str = Field(str(DEFAULT_WAREHOUSE), description="DuckDB file (or other DuckDB target)")
    source: Literal["sample", "files", "live"] = Field("sample", description="where the nightly run reads")
    path: str | None = Field(None, description="folder for the files source")
    universe: str = Field(str(DEFAULT_UNIVERSE), description="universe CSV (ticker, name, sector, cohort, role)")
    lookback_days: int = Field(5, ge=0, description="sessions before the run date fetched again each night")
    history_sessions: int = Field(
        756, ge=0, description="sessions of history a first run fetches into an empty warehouse"
    )
    lock_wait_s: float = Field(60.0, ge=0, description="how long a writer waits for another writer")


def get_settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
