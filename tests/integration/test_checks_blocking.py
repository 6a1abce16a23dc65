"""A night whose built marts fail a blocking check publishes nothing: yesterday's marts stay
readable and unchanged, the delivered raw rows stay loaded, the run is failed with a message
naming the table, the check and keys, and every check result is recorded.

The failing check is a real checks file (the shipped ones, copied, with one assert added that
rejects the selloff day), run by the real engine inside the real nightly flow."""

import datetime as dt
import shutil

import pytest
import yaml

from flows.nightly import nightly
from tests.conftest import copy_lake, lake_catalog
from tests.integration.conftest import assert_marts_equal_a_full_rebuild, fetch, scalar, snapshot
from transforms.runner import discover
from warehouse import checks

FRI, MON, TUE = dt.date(2025, 1, 24), dt.date(2025, 1, 27), dt.date(2025, 1, 28)
MARTS = [f"marts.{m.name}" for m in discover() if m.layer == "marts"]


@pytest.fixture
def strict_checks(tmp_path, monkeypatch):
    sql = tmp_path / "sql"
    shutil.copytree(checks.SQL_DIR, sql)
    path = sql / "marts" / "technicals_daily.checks.yml"
    doc = yaml.safe_load(path.read_text())
    doc.setdefault("asserts", {})["no_drop_beyond_15_pct"] = {
        "severity": "error",
        "sql": "select ticker, trade_date, return_1d_pct from marts.technicals_daily\n"
               "where trade_date >= $start_date and trade_date = $run_date and return_1d_pct < -15",
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    original = checks.discover_checks
    monkeypatch.setattr(checks, "discover_checks", lambda *a, **k: original(sql))
    assert "no_drop_beyond_15_pct" in {c.name for c in checks.discover_checks()["marts.technicals_daily"].checks}
    return sql


def test_a_blocked_night_leaves_yesterdays_marts_unchanged(tmp_path, strict_checks, monkeypatch, friday):
    path = copy_lake(friday, tmp_path)  # Friday's night (succeeded), shared with other modules
    assert fetch(path, "select parameters->>'run_date', status from audit.runs") == [(str(FRI), "succeeded")]
    before = snapshot(path, MARTS)

    with pytest.raises(checks.CheckFailed, match=r"marts.technicals_daily failed check no_drop_beyond_15_pct: \d+ row\(s\) \(e.g. .*NVDA"):
        nightly(run_date=MON, source="sample", warehouse=str(path))

    # Yesterday's marts: readable, and identical to the letter.
    assert snapshot(path, MARTS) == before
    assert scalar(path, "select max(trade_date) from marts.market_brief") == FRI
    # What the night delivered is not lost: raw holds Monday's prices.
    assert scalar(path, "select count(*) from raw.prices_daily where trade_date = ?", [MON]) == 24
    # The run is failed and says which table, check and keys.
    status, message = fetch(path, "select status, message from audit.runs order by started_at desc limit 1")[0]
    assert status == "failed"
    assert "blocked by data checks" in message and "marts.technicals_daily" in message and "no_drop_beyond_15_pct" in message and "NVDA" in message
    # Every result of the blocked run is recorded, the failing one with its keys.
    run_id = fetch(path, "select run_id from audit.runs order by started_at desc limit 1")[0][0]
    failing = fetch(path, "select table_name, check_name, severity, unexpected_count, sample_keys::varchar from audit.check_results where run_id = ? and not success and severity = 'error'", [run_id])
    assert len(failing) == 1 and failing[0][:3] == ("marts.technicals_daily", "no_drop_beyond_15_pct", "error") and "NVDA" in failing[0][4]
    assert scalar(path, "select count(*) from audit.check_results where run_id = ? and stage = 'land'", [run_id]) > 0
    # Downstream of the failing table nothing was even checked: the build stopped there.
    assert scalar(path, "select count(*) from audit.check_results where run_id = ? and table_name = 'marts.market_brief'", [run_id]) == 0
    assert (lake_catalog(path).parent / "data_docs" / run_id / "index.html").exists()

    # With the check lifted, the next night goes through and its build reaches back over the
    # blocked night's loads (they changed Monday; no build covered them): the marts catch up.
    monkeypatch.undo()
    again = nightly(run_date=TUE, source="sample", warehouse=str(path))
    assert again["status"] == "succeeded"
    tech = next(b for b in again["builds"] if b["relation"] == "marts.technicals_daily")
    assert tech["mode"] == "incremental" and tech["rows_written"] == 24 * 2
    assert fetch(path, "select trade_date from marts.market_brief where trade_date > ? order by 1", [FRI]) == [(MON,), (TUE,)]
    assert scalar(path, "select count(*) from audit.load_batches where built_at is null") == 0
    assert_marts_equal_a_full_rebuild(path, tmp_path, TUE)
