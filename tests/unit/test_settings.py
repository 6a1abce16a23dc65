import pytest
from pydantic import ValidationError

from flows.settings import DEFAULT_WAREHOUSE, get_settings
from sources.contract import ContractError
from sources.live import DEFAULT_PROVIDERS


def test_defaults():
    s = get_settings()
    assert (s.source, s.lookback_days, s.warehouse) == ("sample", 5, str(DEFAULT_WAREHOUSE))
    assert dict(s.live_config().providers) == DEFAULT_PROVIDERS


def test_environment_and_overrides(monkeypatch):
    monkeypatch.setenv("BELLWETHER_WAREHOUSE", "/data/bw.duckdb")
    monkeypatch.setenv("BELLWETHER_LOOKBACK_DAYS", "10")
    monkeypatch.setenv("BELLWETHER_LIVE_PROVIDERS", '{"putcall_daily": "cboe", "prices_daily": "yahoo"}')
    monkeypatch.setenv("BELLWETHER_YAHOO_MAX_WORKERS", "2")
    s = get_settings(lookback_days=3)  # a CLI flag wins over the environment
    assert (s.warehouse, s.lookback_days) == ("/data/bw.duckdb", 3)
    cfg = s.live_config()
    assert cfg.yahoo_max_workers == 2 and dict(cfg.providers)["putcall_daily"] == "cboe"
    hash(cfg)  # hashable: a run's tasks share one source object through the registry's cache


def test_the_yahoo_timeout_reaches_the_live_config(monkeypatch):
    assert get_settings().live_config().yahoo_timeout_s == 10.0  # yfinance's own is 30 s (history: 10 s)
    monkeypatch.setenv("BELLWETHER_YAHOO_TIMEOUT_S", "3.5")
    assert get_settings().live_config().yahoo_timeout_s == 3.5
    monkeypatch.setenv("BELLWETHER_YAHOO_TIMEOUT_S", "0")
    with pytest.raises(ValidationError, match="yahoo_timeout_s"):
        get_settings()


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("BELLWETHER_LOOKBACK_DAYS", "-1")
    with pytest.raises(ValidationError):
        get_settings()
    monkeypatch.delenv("BELLWETHER_LOOKBACK_DAYS")
    monkeypatch.setenv("BELLWETHER_LIVE_PROVIDERS", '{"prices_daily": "bloomberg"}')
    with pytest.raises(ContractError, match="unknown provider 'bloomberg'"):
        get_settings().live_config()


def test_runs_write_their_pages_beside_a_local_warehouse_and_never_into_the_working_directory(tmp_path, monkeypatch):
    from flows.settings import PROJECT_ROOT

    monkeypatch.chdir(tmp_path)
    assert get_settings(warehouse=f"ducklake:sqlite:{tmp_path}/w/bw.sqlite").artifacts_folder == tmp_path / "w"
    assert get_settings(warehouse=str(tmp_path / "one.duckdb")).artifacts_folder == tmp_path
    team = get_settings(warehouse="ducklake:postgres:host=db dbname=bellwether")
    assert team.artifacts_folder == PROJECT_ROOT / "warehouse"  # git-ignored there, not the cwd
    moved = get_settings(warehouse="ducklake:postgres:host=db dbname=bellwether", artifacts_dir=str(tmp_path / "pages"))
    assert moved.artifacts_folder == tmp_path / "pages"
