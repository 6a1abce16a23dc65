"""One typed settings object, read from BELLWETHER_* environment variables (and `.env`).

CLI flags override these; `.env.example` lists them all.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sources.base import DEFAULT_UNIVERSE
from sources.live import LiveConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The embedded default: a DuckLake with its catalog in a SQLite file and its Parquet files in
# warehouse/bellwether.files/ (readers never wait for the nightly run; see warehouse/target.py).
DEFAULT_WAREHOUSE = f"ducklake:sqlite:{PROJECT_ROOT / 'warehouse' / 'bellwether.sqlite'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BELLWETHER_", env_file=".env", extra="ignore")

    warehouse: str = Field(
        DEFAULT_WAREHOUSE,
        description="ducklake:sqlite:PATH (default), ducklake:postgres:CONNINFO, or a single DuckDB file's path",
    )
    artifacts_dir: Path | None = Field(
        None,
        description="folder for each run's Data Docs (data_docs/<run id>/) and HTML briefs (reports/); default: "
        "beside a local warehouse, or warehouse/ of this project for a PostgreSQL or remote one",
    )
    source: Literal["sample", "files", "live"] = Field("sample", description="where the nightly run reads")
    path: str | None = Field(None, description="folder for the files source")
    universe: str = Field(
        str(DEFAULT_UNIVERSE),
        description="the universe: `default` (config/universe.csv, 24 names), `sp500` (config/sp500.csv) or a CSV path",
    )
    lookback_days: int = Field(5, ge=0, description="sessions before the run date fetched again each night")
    history_sessions: int = Field(
        756, ge=0, description="sessions of history a first run fetches into an empty warehouse"
    )
    sample_start: dt.date | None = Field(
        None, description="first session of the sample market (default 2015-01-02; the benchmarks use 20 years)"
    )
    lock_wait_s: float = Field(60.0, ge=0, description="how long a writer waits for another writer")
    fetch_ahead: int = Field(4, ge=1, le=64, description="fetches submitted ahead of the loads (bounds memory)")
    # Where fetches fan out (flows/runners.py). Read when the flows are imported, so that runs
    # served by `bellwether serve` (which start in fresh processes) use the same runner.
    runner: Literal["threads", "dask"] = Field("threads", description="task runner for the fetch fan-out")
    dask_address: str | None = Field(None, description="an existing Dask scheduler (tcp://host:8786); default a LocalCluster")
    dask_workers: int = Field(2, ge=1, le=64, description="workers of the Dask LocalCluster")
    # The live source: which provider serves each dataset, and how hard to push them.
    live_providers: dict[str, str] = Field(
        default_factory=dict, description='dataset -> provider overrides, e.g. {"putcall_daily": "cboe"}'
    )
    retry_max_attempts: int = Field(5, ge=1, description="attempts per request before a ticker is marked failed")
    retry_base_delay_s: float = Field(1.0, ge=0, description="first backoff step (doubles, with jitter)")
    retry_max_delay_s: float = Field(30.0, ge=0, description="longest single backoff wait")
    yahoo_max_workers: int = Field(4, ge=1, le=32, description="tickers fetched from Yahoo at once")
    yahoo_batch_size: int = Field(50, ge=1, description="tickers per batch before a pause")
    yahoo_pause_s: float = Field(1.0, ge=0, description="pause between Yahoo batches (rate limits)")
    # yfinance waits 30 s on every request but history (10 s); a hung connection then holds a
    # worker for half a minute per attempt. Bellwether sets one timeout for every request.
    yahoo_timeout_s: float = Field(10.0, gt=0, le=120, description="timeout of each request to Yahoo, in seconds")

    @field_validator("universe")
    @classmethod
    def _universe_file(cls, value: str) -> str:
        # A name (`sp500`) becomes its file: runs record the file they loaded, and the runs
        # `serve` starts read the same file whatever their working directory.
        from sources.base import universe_path

        return str(universe_path(value))

    @field_validator("warehouse")
    @classmethod
    def _canonical_warehouse(cls, value: str) -> str:
        # Absolute paths: the runs `serve` starts, and the records in audit.runs, must not depend
        # on the directory they were started from.
        from warehouse.target import parse

        return str(parse(value))

    @property
    def artifacts_folder(self) -> Path:
        """Where runs write Data Docs and briefs. Never the working directory: a run started
        from a checkout must not write into it."""
        from warehouse.target import parse

        if self.artifacts_dir is not None:
            return self.artifacts_dir.expanduser().resolve()
        return parse(self.warehouse).local_folder or PROJECT_ROOT / "warehouse"

    def live_config(self) -> LiveConfig:
        return LiveConfig.from_mapping(
            self.live_providers,
            max_attempts=self.retry_max_attempts,
            base_delay_s=self.retry_base_delay_s,
            max_delay_s=self.retry_max_delay_s,
            yahoo_max_workers=self.yahoo_max_workers,
            yahoo_batch_size=self.yahoo_batch_size,
            yahoo_pause_s=self.yahoo_pause_s,
            yahoo_timeout_s=self.yahoo_timeout_s,
        )


def default_task_runner():
    """The task runner the flows are defined with: BELLWETHER_RUNNER (threads or dask)."""
    from flows.runners import task_runner

    s = Settings()
    return task_runner(s.runner, address=s.dask_address, workers=s.dask_workers)


def get_settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
