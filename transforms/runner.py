"""The SQL model runner: discover `sql/staging` and `sql/marts`, order by dependency, build.

Each model file opens with a header the runner reads:

    -- technicals_daily
    -- Grain: one row per ticker per trade_date.
    -- Depends on: staging.stg_prices_daily
    -- Materialized: incremental by trade_date
    -- Lookback: 200 sessions

`Depends on` must list exactly the `raw.`/`staging.`/`marts.` tables the SQL reads: the runner
parses them from the SQL and refuses a header that disagrees, and a dependency that no file
produces is an error. The build order is derived from them, never hand-listed.

Materializations:
- `view`: `create or replace view`, always current.
- `table`: rebuilt whole each time.
- `incremental by <date column>`: the model's SQL computes rows for dates >= `$start_date`,
  reading inputs from `$input_start_date` on (the runner sets it `Lookback` sessions earlier,
  with slack, so every window function sees its full history; a model with `Lookback: all`
  reads every earlier day, to count its whole history, and has no `$input_start_date`). An
  incremental build deletes the
  rows from the earliest date a load touched onward and inserts them again: later rows depend
  on earlier ones through the windows, so everything after the change is recomputed too. A full
  build binds both dates to the beginning of time. The two give the same rows.

A build is one transaction: if any model fails, nothing is published and the previous tables
stay as they were.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import graphlib
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import duckdb

from sources import calendar

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MODEL_LAYERS = ("staging", "marts")
BEGINNING = dt.date(1900, 1, 1)
LOOKBACK_SLACK_FACTOR = 1.5
LOOKBACK_SLACK_SESSIONS = 10

_REF_RE = re.compile(r"\b(raw|staging|marts)\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)
_PARAM_RE = re.compile(r"\$([a-z_][a-z0-9_]*)", re.IGNORECASE)
_CONTINUATION_RE = re.compile(r"^--\s{4,}\S")
_HEADER_RE = re.compile(r"^--\s*([A-Za-z ]+):\s*(.*)$")


class ModelError(ValueError):
    """A model file is malformed, depends on nothing that exists, or failed to build."""


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    layer: str
    path: Path
    sql: str
    grain: str
    depends_on: tuple[str, ...]
    materialized: str            # view | table | incremental
    date_column: str | None = None
    lookback_sessions: int | None = 0  # None: `Lookback: all` (the model reads every earlier day)

    @property
    def relation(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def params(self) -> set[str]:
        return set(_PARAM_RE.findall(_strip_comments(self.sql)))


@dataclasses.dataclass(frozen=True)
class BuildResult:
    relation: str
    mode: str          # view | full | incremental | skipped
    rows: int          # rows in the relation after the build
    rows_written: int  # rows (re)computed by this build
    seconds: float
    since: dt.date | None = None


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def parse_model(path: Path, layer: str) -> Model:
    text = path.read_text()
    lines = text.splitlines()
    if not lines or not lines[0].startswith("--"):
        raise ModelError(f"{path}: must open with a '-- {path.stem}' header line")
    name = lines[0].lstrip("-").strip()
    if name != path.stem:
        raise ModelError(f"{path}: header names '{name}' but the file is '{path.stem}.sql'")
    fields: dict[str, str] = {}
    last = None
    for line in lines[1:]:
        if not line.startswith("--"):
            break
        m = _HEADER_RE.match(line)
        if m:
            last = m.group(1).strip().lower()
            fields[last] = m.group(2).strip()
        elif last and _CONTINUATION_RE.match(line):
            # A long field goes on over indented comment lines ("--     marts.x,").
            fields[last] = f"{fields[last]} {line[2:].strip()}"
        else:
            last = None
    for required in ("grain", "depends on", "materialized"):
        if required not in fields:
            raise ModelError(f"{path}: header lacks '-- {required.capitalize()}: ...'")
    declared = tuple(sorted(d.strip().lower() for d in fields["depends on"].split(",") if d.strip()))
    parsed = tuple(sorted({f"{s.lower()}.{t.lower()}" for s, t in _REF_RE.findall(_strip_comments(text))}))
    if declared != parsed:
        raise ModelError(
            f"{path}: header says it depends on {', '.join(declared) or 'nothing'} but the SQL reads "
            f"{', '.join(parsed) or 'nothing'}"
        )
    mat = fields["materialized"].lower()
    date_column = None
    lookback = 0
    if mat.startswith("incremental"):
        m = re.match(r"incremental by ([a-z_]+)", mat)
        if not m:
            raise ModelError(f"{path}: write 'Materialized: incremental by <date column>'")
        date_column = m.group(1)
        mat = "incremental"
        lb = fields.get("lookback", "0 sessions")
        m = re.match(r"(\d+)\s*sessions?$|all$", lb)
        if not m:
            raise ModelError(f"{path}: write 'Lookback: <N> sessions' or 'Lookback: all'")
        lookback = int(m.group(1)) if m.group(1) else None
    elif mat not in ("view", "table"):
        raise ModelError(f"{path}: Materialized must be view, table or 'incremental by <column>', not {mat!r}")
    model = Model(
        name=name,
        layer=layer,
        path=path,
        sql=text,
        grain=fields["grain"],
        depends_on=declared,
        materialized=mat,
        date_column=date_column,
        lookback_sessions=lookback,
    )
    # A model that reads every earlier day (`Lookback: all`) has no input window to filter on.
    window_params = {"start_date"} | ({"input_start_date"} if lookback is not None else set())
    if mat == "incremental" and not window_params <= model.params:
        raise ModelError(f"{path}: an incremental model must filter on ${' and $'.join(sorted(window_params, reverse=True))}")
    if mat == "view" and model.params:
        raise ModelError(f"{path}: a view cannot take parameters ({', '.join(sorted(model.params))})")
    return model


def raw_tables(sql_dir: Path = SQL_DIR) -> set[str]:
    from warehouse.schema import DDL_LAYERS, ddl_tables

    files = [p for layer in DDL_LAYERS for p in sorted((sql_dir / layer).glob("*.sql"))]
    return {f"{s}.{t}" for s, t in ddl_tables(files)}


def discover(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Every staging and marts model, in dependency order. Raises ModelError on a dangling dependency."""
    models: dict[str, Model] = {}
    for layer in MODEL_LAYERS:
        for path in sorted((sql_dir / layer).glob("*.sql")):
            model = parse_model(path, layer)
            if model.relation in models:
                raise ModelError(f"{path}: {model.relation} is defined twice")
            models[model.relation] = model
    known = raw_tables(sql_dir) | set(models)
    graph: dict[str, set[str]] = {}
    for rel, model in models.items():
        missing = [d for d in model.depends_on if d not in known]
        if missing:
            raise ModelError(f"{model.path}: depends on {', '.join(missing)}, which no file in sql/ produces")
        graph[rel] = {d for d in model.depends_on if d in models}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise ModelError(f"dependency cycle among models: {' -> '.join(exc.args[1])}") from None
    return [models[r] for r in order]


def select_models(models: Sequence[Model], select: Iterable[str] | None) -> list[Model]:
    """`name` builds that model; `name+` also everything downstream of it."""
    if not select:
        return list(models)
    by_name = {m.name: m for m in models} | {m.relation: m for m in models}
    chosen: set[str] = set()
    for item in select:
        downstream = item.endswith("+")
        key = item.rstrip("+")
        if key not in by_name:
            raise ModelError(f"no model named {key!r}; models: {', '.join(m.name for m in models)}")
        chosen.add(by_name[key].relation)
        if downstream:
            grew = True
            while grew:
                grew = False
                for m in models:
                    if m.relation not in chosen and chosen.intersection(m.depends_on):
                        chosen.add(m.relation)
                        grew = True
    return [m for m in models if m.relation in chosen]


def input_start_for(since: dt.date, lookback_sessions: int | None) -> dt.date:
    """How far back an incremental build reads its inputs, with slack for tickers' missing days
    (None: `Lookback: all`, from the beginning)."""
    if lookback_sessions is None:
        return BEGINNING
    if lookback_sessions <= 0:
        return since
    back = math.ceil(lookback_sessions * LOOKBACK_SLACK_FACTOR) + LOOKBACK_SLACK_SESSIONS
    try:
        return calendar.sessions_back(since, back)
    except (ValueError, IndexError):
        return BEGINNING


def _exists(con: duckdb.DuckDBPyConnection, model: Model) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [model.layer, model.name],
        ).fetchone()[0]
    )


def _columns_of_query(con, sql: str, params: dict) -> list[tuple[str, str]]:
    cur = con.execute(f"select * from ({sql}) limit 0", params)
    return [(d[0], str(d[1])) for d in cur.description]


def _bind(model: Model, values: dict) -> dict:
    unknown = model.params - set(values)
    if unknown:
        raise ModelError(f"{model.path}: unknown parameter(s) {', '.join('$' + p for p in sorted(unknown))}")
    return {k: values[k] for k in model.params}


def _body(model: Model) -> str:
    return model.sql.rstrip().rstrip(";")


def load_macros(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> None:
    macros = sql_dir / "macros.sql"
    if macros.exists():
        con.execute(macros.read_text())


def build_model(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    *,
    since: dt.date | None,
    run_date: dt.date,
    full_refresh: bool = False,
) -> BuildResult:
    t0 = time.perf_counter()
    rel = model.relation
    values = {"run_date": run_date}
    if model.materialized == "view":
        con.execute(f"create or replace view {rel} as\n{_body(model)}")
        rows = con.execute(f"select count(*) from {rel}").fetchone()[0]
        return BuildResult(rel, "view", rows, 0, time.perf_counter() - t0)

    full_values = values | {"start_date": BEGINNING, "input_start_date": BEGINNING}
    incremental = (
        model.materialized == "incremental" and since is not None and not full_refresh and _exists(con, model)
    )
    if incremental:
        inc_values = values | {"start_date": since, "input_start_date": input_start_for(since, model.lookback_sessions)}
        params = _bind(model, inc_values)
        existing = [(c, t) for c, t in _table_columns(con, model)]
        if [c for c, _ in _columns_of_query(con, _body(model), params)] != [c for c, _ in existing]:
            incremental = False  # the model's columns changed since the table was built
    if incremental:
        con.execute(f"delete from {rel} where {model.date_column} >= ?", [since])
        written = con.execute(f"insert into {rel} by name\n{_body(model)}", params).fetchone()[0]
        mode = "incremental"
    else:
        params = _bind(model, full_values)
        con.execute(f"create or replace table {rel} as\n{_body(model)}", params)
        written = None
        mode = "full"
        since = None
    rows = con.execute(f"select count(*) from {rel}").fetchone()[0]
    return BuildResult(rel, mode, rows, rows if written is None else int(written), time.perf_counter() - t0, since)


def _table_columns(con, model: Model) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
            [model.layer, model.name],
        ).fetchall()
    ]


def latest_trade_date(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The run date a build from raw binds when none is given: the latest session with prices
    (today on an empty warehouse)."""
    return con.execute("select max(trade_date) from raw.prices_daily").fetchall()[0][0] or dt.date.today()


def build(
    con: duckdb.DuckDBPyConnection,
    *,
    run_date: dt.date,
    since: dt.date | None = None,
    select: Iterable[str] | None = None,
    full_refresh: bool = False,
    sql_dir: Path = SQL_DIR,
    after_model: Callable[[duckdb.DuckDBPyConnection, Model, BuildResult], None] | None = None,
) -> list[BuildResult]:
    """Build the selected models in dependency order, in one transaction.

    `since`: the earliest date any load touched; incremental models recompute from there on.
    None (or `full_refresh`) rebuilds every selected model whole.
    `after_model(con, model, result)` runs inside the transaction after each model is built
    (the checks): if it raises, nothing of the build is published and the error propagates.
    """
    models = select_models(discover(sql_dir), select)
    results: list[BuildResult] = []
    con.begin()
    try:
        load_macros(con, sql_dir)
        for model in models:
            try:
                result = build_model(con, model, since=since, run_date=run_date, full_refresh=full_refresh)
            except duckdb.Error as exc:
                raise ModelError(f"building {model.relation} ({model.path.name}) failed: {exc}") from exc
            results.append(result)
            if after_model is not None:
                after_model(con, model, result)
        con.commit()
    except Exception:
        con.rollback()
        raise
    return results
