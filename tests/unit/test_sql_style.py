"""Every SQL file passes sqlfluff (dialect duckdb, settings in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sql_is_lint_clean():
    r = subprocess.run([sys.executable, "-m", "sqlfluff", "lint", "sql", "--disable-progress-bar"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
