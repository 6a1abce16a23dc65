"""The checks layer: the `<table>.checks.yml` files beside the SQL, run at each stage.

Two stages:
- land: a raw table's fetched batch, before it is loaded. Great Expectations runs on the batch
  DataFrame; SQL asserts run in DuckDB over the relation `batch` (the frame plus `_row`, its row
  number), `sessions` (NYSE sessions around the batch) and the raw tables as loaded so far.
  A failing `error` check sends its failing rows to `audit.quarantine` and lets the rest load
  (`on_fail: quarantine`), or holds the whole batch (`on_fail: hold`, and any failure that
  cannot name its rows). A `warn` check records and goes on.
- build: a staging view or mart just built, inside the build's transaction, before anything
  is published. Expectations run on the built window's rows; asserts see the table itself,
  `sessions`, `$start_date` and `$run_date`. A failing `error` check blocks: the runner rolls
  the whole build back, so the previously published marts stay as they were.

Every outcome becomes a row of `audit.check_results`. Great Expectations validations also go
into a Data Docs site for the run (`data_docs_dir`). The format of a checks file is in
`docs/checks.md`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from sources import calendar

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
LAND, BUILD = "land", "build"
ERROR, WARN = "error", "warn"
QUARANTINE, HOLD, BLOCK, RECORD = "quarantine", "hold", "block", "record"
EXPECTATION, ASSERT = "expectation", "assert"
SAMPLE_KEYS = 10
FULL_BUILD_START = dt.date(1900, 1, 1)
_OVERRIDES = ("severity", "name", "on_fail")
_REF_RE = re.compile(r"\b(raw|staging|marts|audit)\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)


class ChecksFileError(ValueError):
    """A checks file that cannot be used: named with its path and what is wrong."""


class CheckFailed(RuntimeError):
    """A blocking (error) check failed on a built table."""

    def __init__(self, results: Sequence[CheckResult]):
        self.results = list(results)
        parts = []
        for r in self.results:
            keys = f" (e.g. {', '.join(json.dumps(k, default=str) for k in r.sample_keys[:3])})" if r.sample_keys else ""
            parts.append(f"{r.table} failed check {r.check}: {r.unexpected_count} row(s){keys}")
        super().__init__("; ".join(parts))


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    kind: str  # expectation | assert
    severity: str
    on_fail: str  # quarantine | hold (land, error); block (build, error); record (warn)
    expectation: str | None = None  # Great Expectations class name
    kwargs: Mapping[str, Any] | None = None
    sql: str | None = None


@dataclasses.dataclass(frozen=True)
class ChecksFile:
    path: Path
    table: str
    stage: str
    key: tuple[str, ...]
    window: str | None
    checks: tuple[Check, ...]

    @property
    def expectations(self) -> list[Check]:
        return [c for c in self.checks if c.kind == EXPECTATION]

    @property
    def asserts(self) -> list[Check]:
        return [c for c in self.checks if c.kind == ASSERT]

    @property
    def reads(self) -> set[str]:
        """The schema.table relations the asserts read (besides `batch` and `sessions`)."""
        return {f"{a}.{b}".lower() for c in self.asserts for a, b in _REF_RE.findall(c.sql or "")} | {self.table}


@dataclasses.dataclass
class CheckResult:
    stage: str
    table: str
    check: str
    kind: str
    severity: str
    action: str
    success: bool
    rows_checked: int | None
    unexpected_count: int
    sample_keys: list[dict]
    batch_ref: str | None = None
    message: str | None = None
    # Land stage: the failing rows' positions in the batch (None: the failure names no rows).
    rows: list[int] | None = None

    @property
    def blocking(self) -> bool:
        return not self.success and self.severity == ERROR


# -- reading checks files ------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _default_name(cls: str, kwargs: Mapping[str, Any]) -> str:
    cols = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_set")
    if cols is None and "column_A" in kwargs:
        cols = [kwargs["column_A"], kwargs["column_B"]]
    if isinstance(cols, (list, tuple)):
        cols = "+".join(map(str, cols))
    return f"{_snake(cls)}:{cols}" if cols else _snake(cls)


def _expectation_class(name: str):
    import great_expectations as gx

    cls = getattr(gx.expectations, name, None)
    if cls is None:
        raise ChecksFileError(f"unknown Great Expectations class {name!r}")
    return cls


def _action(stage: str, severity: str, on_fail: str | None, where: str) -> str:
    if severity == WARN:
        if on_fail not in (None, RECORD):
            raise ChecksFileError(f"{where}: a warn check only records (on_fail {on_fail!r} makes no sense)")
        return RECORD
    if stage == BUILD:
        if on_fail not in (None, BLOCK):
            raise ChecksFileError(f"{where}: a build-stage error check blocks the build (on_fail {on_fail!r} is for landed batches)")
        return BLOCK
    if on_fail not in (None, QUARANTINE, HOLD):
        raise ChecksFileError(f"{where}: on_fail must be quarantine or hold, not {on_fail!r}")
    return on_fail or QUARANTINE


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~20x faster


def parse_checks_file(path: Path, *, validate_classes: bool = True) -> ChecksFile:
    """Parse and validate one checks file. Parsed files are cached by path, size and mtime (every
    landed batch consults them), so an edited file is read again."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ChecksFileError(f"{path}: no such checks file") from None
    return _parse_checks_file(path.resolve(), stat.st_mtime_ns, stat.st_size, validate_classes)


@functools.lru_cache(maxsize=256)
def _parse_checks_file(path: Path, _mtime_ns: int, _size: int, validate_classes: bool) -> ChecksFile:
    try:
        doc = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ChecksFileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ChecksFileError(f"{path}: expected a mapping with table, stage, expectations, asserts")
    unknown = set(doc) - {"table", "stage", "severity", "key", "window", "expectations", "asserts", "description"}
    if unknown:
        raise ChecksFileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    table = doc.get("table")
    expected_table = f"{path.parent.name}.{path.name.removesuffix('.checks.yml')}"
    if table != expected_table:
        raise ChecksFileError(f"{path}: guards {table!r} but sits beside {expected_table} (the file must be named for its table)")
    stage = doc.get("stage", LAND if path.parent.name == "raw" else BUILD)
    if stage not in (LAND, BUILD):
        raise ChecksFileError(f"{path}: stage must be land or build, not {stage!r}")
    default_severity = doc.get("severity", ERROR)
    key = tuple(doc.get("key") or ())
    window = doc.get("window")
    if window and stage == LAND:
        raise ChecksFileError(f"{path}: window applies to build-stage checks only")
    checks: list[Check] = []
    for i, item in enumerate(doc.get("expectations") or []):
        where = f"{path}: expectations[{i}]"
        if not (isinstance(item, dict) and len(item) == 1):
            raise ChecksFileError(f"{where}: write one '- ClassName: {{arguments}}' per item")
        cls, args = next(iter(item.items()))
        args = dict(args or {})
        overrides = {k: args.pop(k) for k in _OVERRIDES if k in args}
        severity = overrides.get("severity", default_severity)
        if severity not in (ERROR, WARN):
            raise ChecksFileError(f"{where}: severity must be error or warn, not {severity!r}")
        if validate_classes:
            try:
                _expectation_class(cls)(**args)
            except ChecksFileError as exc:
                raise ChecksFileError(f"{where}: {exc}") from exc
            except Exception as exc:  # pydantic validation of the arguments
                raise ChecksFileError(f"{where}: {cls} does not take these arguments: {exc}") from exc
        checks.append(
            Check(
                name=overrides.get("name") or _default_name(cls, args),
                kind=EXPECTATION,
                severity=severity,
                on_fail=_action(stage, severity, overrides.get("on_fail"), where),
                expectation=cls,
                kwargs=args,
            )
        )
    for name, spec in (doc.get("asserts") or {}).items():
        where = f"{path}: asserts.{name}"
        spec = {"sql": spec} if isinstance(spec, str) else dict(spec or {})
        if not spec.get("sql"):
            raise ChecksFileError(f"{where}: needs sql")
        unknown = set(spec) - {"sql", "severity", "on_fail", "description"}
        if unknown:
            raise ChecksFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        severity = spec.get("severity", default_severity)
        if severity not in (ERROR, WARN):
            raise ChecksFileError(f"{where}: severity must be error or warn, not {severity!r}")
        checks.append(
            Check(
                name=name, kind=ASSERT, severity=severity,
                on_fail=_action(stage, severity, spec.get("on_fail"), where), sql=spec["sql"],
            )
        )
    names = [c.name for c in checks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ChecksFileError(f"{path}: check name(s) used twice: {', '.join(dupes)} (give one a name:)")
    return ChecksFile(path=path, table=table, stage=stage, key=key, window=window, checks=tuple(checks))


def discover_checks(sql_dir: Path = SQL_DIR, *, validate_classes: bool = True) -> dict[str, ChecksFile]:
    """Every `<layer>/<table>.checks.yml` under sql_dir, by table name."""
    out = {}
    for path in sorted(sql_dir.glob("*/*.checks.yml")):
        cf = parse_checks_file(path, validate_classes=validate_classes)
        if not (path.parent / f"{path.name.removesuffix('.checks.yml')}.sql").exists():
            raise ChecksFileError(f"{path}: no {cf.table} SQL file beside it")
        out[cf.table] = cf
    return out


# -- Great Expectations ----------------------------------------------------------------------

# The Great Expectations releases `lookups_on_one_configuration` was checked against (the test
# compares it with their own methods for every expectation our checks files use).
KWARGS_FIX_VERSIONS = ("1.24.1",)


def lookups_on_one_configuration() -> bool:
    """Great Expectations 1.24 builds an expectation's whole configuration (a pydantic `dict()`
    and an `ExpectationConfiguration`) again for every domain and success key it looks up in
    `Expectation._get_domain_kwargs` and `_get_success_kwargs`: about a hundred builds per
    expectation per validation, a quarter of a validation's time on the nightly's tables
    (measured: 4 tables' checks on 200 rows, 418-437 -> 317-324 ms). These replacements make the
    same lookups on one configuration and return the same dicts. Applied once, and only on the
    releases above: on any other Great Expectations keeps its own methods (slower, not wrong).
    Returns whether they are in place."""
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

    if getattr(Expectation, "_bellwether_lookups", False):
        return True
    if gx.__version__ not in KWARGS_FIX_VERSIONS:
        return False

    def lookup(self, kwargs: dict, keys) -> dict:
        return {key: kwargs.get(key, self._get_default_value(key)) for key in keys}

    def _get_domain_kwargs(self) -> dict:
        return lookup(self, self.configuration.kwargs, self.domain_keys)

    def _get_success_kwargs(self) -> dict:
        kwargs = self.configuration.kwargs  # the success keys, then the domain keys over them
        return lookup(self, kwargs, self.success_keys) | lookup(self, kwargs, self.domain_keys)

    # Kept for the test that compares the two with these.
    Expectation._bellwether_original_lookups = (Expectation._get_domain_kwargs, Expectation._get_success_kwargs)
    Expectation._get_domain_kwargs = _get_domain_kwargs
    Expectation._get_success_kwargs = _get_success_kwargs
    Expectation._bellwether_lookups = True
    return True


class Expectations:
    """One Great Expectations context for a run: validates DataFrames and keeps a Data Docs
    site under `docs_dir` (None: no site). Imported lazily (it takes seconds)."""

    def __init__(self, docs_dir: Path | None = None):
        self.docs_dir = Path(docs_dir) if docs_dir else None
        self._ctx = None
        self._definitions = {}

    def _context(self):
        if self._ctx is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            lookups_on_one_configuration()
            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            if self.docs_dir:
                self.docs_dir.mkdir(parents=True, exist_ok=True)
                ctx.add_data_docs_site(
                    site_name="bellwether",
                    site_config={
                        "class_name": "SiteBuilder",
                        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)},
                        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    },
                )
            self._source = ctx.data_sources.add_pandas("bellwether")
            self._ctx = ctx
        return self._ctx

    def build_docs(self) -> Path | None:
        """Render the run's Data Docs site once (per validation it would cost 0.5 s each);
        returns its index.html, or None when there is no site or nothing was validated."""
        if not self.docs_dir or self._ctx is None:
            return None
        self._ctx.build_data_docs(site_names=["bellwether"])
        index = self.docs_dir / "index.html"
        return index if index.exists() else None

    def _definition(self, suite_name: str, checks: Sequence[Check]):
        """The validation definition of these checks on a table: made once per context and
        reused by each of its validations (building the suite, asset and definition anew cost
        a fifth of every validation). A table's results in Data Docs list under its own name."""
        key = (suite_name, tuple(c.name for c in checks))
        if key not in self._definitions:
            import great_expectations as gx

            ctx = self._context()
            # A table's first check set keeps its name; another (its failed checks again, with
            # their rows) is numbered after it.
            earlier = sum(1 for name, _ in self._definitions if name == suite_name)
            label = f"{suite_name}-{earlier + 1}" if earlier else suite_name
            suite = gx.ExpectationSuite(name=label)
            for i, c in enumerate(checks):
                # Great Expectations returns results grouped by column, not in suite order: tag each.
                suite.add_expectation(_expectation_class(c.expectation)(**dict(c.kwargs or {}), meta={"bellwether_i": i}))
            suite = ctx.suites.add(suite)
            asset = self._source.add_dataframe_asset(label)
            self._definitions[key] = ctx.validation_definitions.add(
                gx.ValidationDefinition(name=label, data=asset.add_batch_definition_whole_dataframe("batch"), suite=suite)
            )
        return self._definitions[key]

    def validate(self, frame: pd.DataFrame, checks: Sequence[Check], *, suite_name: str, rows: bool = True) -> list[dict]:
        """Run the expectation checks on frame; one dict per check: success, element_count,
        unexpected_count, rows (failing positions, or None when the expectation names none).
        rows=False skips collecting the failing positions (Great Expectations' BASIC format,
        a third faster): `rows` is then None."""
        if not checks:
            return []
        definition = self._definition(suite_name, checks)
        frame = frame.reset_index(drop=True)
        try:
            validation = definition.run(
                batch_parameters={"dataframe": frame},
                result_format={"result_format": "COMPLETE" if rows else "BASIC"},
            )
        finally:
            # The data source's execution engine keeps every batch it loaded (frame included)
            # for the context's life: a run's checks over 2.5-million-row tables held each
            # chunk, 3 GiB by the last table of a full build's checks. Nothing reads them again.
            batches = self._source.get_execution_engine().batch_manager
            batches.reset_batch_cache()
            batches.batch_data_cache.clear()
        out = []
        by_i = {er.expectation_config.meta["bellwether_i"]: er for er in validation.results}
        for i, c in enumerate(checks):
            er = by_i[i]
            res = er.result or {}
            exc = (er.exception_info or {}).get("raised_exception")
            failing = res.get("unexpected_index_list") if rows else None
            out.append(
                {
                    "success": bool(er.success),
                    "element_count": res.get("element_count", len(frame)),
                    "unexpected_count": int(res.get("unexpected_count") or (0 if er.success else 1)),
                    "rows": [int(i) for i in failing] if failing is not None else None,
                    "observed": res.get("observed_value"),
                    "error": (er.exception_info or {}).get("exception_message") if exc else None,
                }
            )
        return out


# -- shared helpers --------------------------------------------------------------------------


def _unregister(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    # After a failed statement the transaction is aborted and unregistering raises too; the
    # first error is the one worth reporting.
    for name in names:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def _register(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    con.register(name, frame)


def _register_sessions(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> None:
    days = calendar.sessions(first, last)
    _register(con, "sessions", pd.DataFrame({"session": pd.to_datetime(pd.Series(days, dtype=object)).dt.date}))


def _jsonable(value):
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()[:10] if not isinstance(value, dt.datetime) or value == value.normalize() else value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _keys(frame: pd.DataFrame, key: Sequence[str], limit: int = SAMPLE_KEYS) -> list[dict]:
    cols = [k for k in key if k in frame.columns]
    if not cols:
        return []
    return [{k: _jsonable(v) for k, v in rec.items()} for rec in frame[cols].head(limit).to_dict(orient="records")]


def _run_sql(con, sql: str, params: Mapping[str, Any], where: str) -> pd.DataFrame:
    wanted = set(re.findall(r"\$([a-z_]+)", sql))
    unknown = wanted - set(params)
    if unknown:
        raise ChecksFileError(f"{where}: unknown parameter(s) ${', $'.join(sorted(unknown))} (available: ${', $'.join(sorted(params))})")
    try:
        return con.execute(sql, {k: v for k, v in params.items() if k in wanted}).df()
    except duckdb.Error as exc:
        raise ChecksFileError(f"{where}: the SQL fails: {exc}") from exc


# -- the land stage --------------------------------------------------------------------------


@dataclasses.dataclass
class LandOutcome:
    """A landed batch split by its checks: the rows that may load, the rows refused, and
    every check's result."""

    passed: pd.DataFrame
    refused: pd.DataFrame  # the contract's reject columns plus check_name
    results: list[CheckResult]
    held: bool
    refused_rows: list[int] = dataclasses.field(default_factory=list)  # positions in the batch


def check_batch(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    checks_file: ChecksFile | None,
    *,
    run_date: dt.date,
    lineage: pd.DataFrame | None = None,
    batch_ref: str | None = None,
    expectations: Expectations | None = None,
) -> LandOutcome:
    """Check a fetched batch (in the raw contract) before it is loaded."""
    frame = frame.reset_index(drop=True)
    if checks_file is None or frame.empty:
        return LandOutcome(passed=frame, refused=_refused_frame(frame, {}, [], None, ""), results=[], held=False)
    expectations = expectations or Expectations()
    results: list[CheckResult] = []
    exp_checks = checks_file.expectations
    for c, r in zip(exp_checks, expectations.validate(frame, exp_checks, suite_name=checks_file.table), strict=True):
        rows = r["rows"]
        bad = frame.iloc[rows] if rows else frame.iloc[0:0]
        message = r["error"] or (None if r["success"] else f"observed {r['observed']}" if r["observed"] is not None else None)
        results.append(_result(checks_file, c, r["success"], len(frame), r["unexpected_count"], bad, batch_ref, message, rows))
    if checks_file.asserts:
        view = frame.copy()
        view.insert(0, "_row", np.arange(len(view), dtype=np.int64))
        dates = [pd.Timestamp(v).date() for c in frame.columns if c.endswith("_date") for v in (frame[c].min(), frame[c].max()) if pd.notna(v)]
        first = min(dates + [run_date]) - dt.timedelta(days=40)
        # Five sessions past the latest date, so that a future date can be told from a holiday.
        last = max(dates + [run_date]) + dt.timedelta(days=10)
        _register(con, "batch", view)
        try:
            _register_sessions(con, first, last)
            for c in checks_file.asserts:
                got = _run_sql(con, c.sql, {"run_date": run_date}, f"{checks_file.path}: asserts.{c.name}")
                rows = sorted({int(i) for i in got["_row"]}) if "_row" in got.columns else None
                bad = frame.iloc[rows] if rows is not None else got
                results.append(_result(checks_file, c, got.empty, len(frame), len(got), bad, batch_ref, None, rows))
        finally:
            _unregister(con, "batch", "sessions")
    blocking = [r for r in results if r.blocking]
    held = any(r.action == HOLD or r.rows is None for r in blocking)
    reasons: dict[int, list[str]] = {}
    names: dict[int, list[str]] = {}
    if held:
        why = "; ".join(f"{r.check}: {r.unexpected_count} failing row(s)" for r in blocking)
        for i in range(len(frame)):
            reasons[i] = [f"batch held: {why}"]
            names[i] = [r.check for r in blocking]
    else:
        for r in blocking:
            for i in r.rows or []:
                reasons.setdefault(i, []).append(f"failed {r.check}")
                names.setdefault(i, []).append(r.check)
    refused_idx = sorted(reasons)
    passed = frame.drop(index=refused_idx).reset_index(drop=True)
    refused = _refused_frame(frame, reasons, refused_idx, lineage, checks_file.table, names=names, key=checks_file.key)
    return LandOutcome(passed=passed, refused=refused, results=results, held=held, refused_rows=refused_idx)


def _refused_frame(frame, reasons, idx, lineage, table, *, names=None, key=()) -> pd.DataFrame:
    from sources.contract import row_json

    cols = ["dataset", "source_ref", "line", "ticker", "key", "reason", "row_json", "check_name"]
    if not idx:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    rows = frame.iloc[idx]
    records = rows.to_dict(orient="records")
    lin = lineage.reset_index(drop=True).iloc[idx] if lineage is not None and len(lineage) == len(frame) else None
    ticker = rows["ticker"].astype(object).where(rows["ticker"].notna(), None) if "ticker" in rows else pd.Series([None] * len(rows))
    refs = lin["source_ref"].astype(object).values if lin is not None else ticker.values
    return pd.DataFrame(
        {
            "dataset": table.split(".")[-1],
            "source_ref": refs,
            "line": pd.array(lin["line"].values if lin is not None else [pd.NA] * len(rows), dtype="Int64"),
            "ticker": ticker.values,
            "key": [json.dumps({k: _jsonable(r.get(k)) for k in key}, sort_keys=True, default=str) for r in records],
            "reason": ["; ".join(reasons[i]) for i in idx],
            "row_json": [row_json(r) for r in records],
            "check_name": [",".join(dict.fromkeys(names[i])) for i in idx] if names else "",
        }
    )


def _result(cf: ChecksFile, c: Check, success, checked, unexpected, bad: pd.DataFrame, batch_ref, message, rows) -> CheckResult:
    return CheckResult(
        stage=cf.stage, table=cf.table, check=c.name, kind=c.kind, severity=c.severity, action=c.on_fail,
        success=bool(success), rows_checked=checked, unexpected_count=int(unexpected if not success else 0),
        sample_keys=[] if success else _keys(bad, cf.key or tuple(bad.columns[:3])), batch_ref=batch_ref,
        message=message, rows=rows,
    )


# -- the build stage -------------------------------------------------------------------------


# A build check validates at most this many rows at a time: Great Expectations works on a pandas
# frame and holds several copies of it, so a full build at S&P 500 scale (tables of 2.5 million
# rows) validated whole peaked at 16 GiB. Chunks never split one value of the window column, so
# a key or a uniqueness check that includes it sees every row that could collide. 150,000
# rows keep every bench stage under 3,000 MiB (250,000 peaked at 3,065 in the full checks).
VALIDATION_CHUNK_ROWS = 150_000


def _window_chunks(
    con: duckdb.DuckDBPyConnection, table: str, window: str | None, start_date: dt.date
) -> tuple[int, list[tuple[str, dict]]]:
    """The rows in a check's window, and (WHERE clause, its parameters) splitting it into chunks
    of about VALIDATION_CHUNK_ROWS rows. A NULL in the window column is in every window (a row
    without a date is never skipped): those rows go with the first chunk."""
    if not window:
        return con.execute(f"select count(*) from {table}").fetchone()[0], [("", {})]
    counts = con.execute(
        f"select {window}, count(*) from {table} where {window} >= $start_date or {window} is null "
        "group by 1 order by 1 nulls first",
        {"start_date": start_date},
    ).fetchall()
    bounds: list[list] = []
    rows = 0
    for value, n in counts:
        if value is None:
            continue
        if not bounds or rows + n > VALIDATION_CHUNK_ROWS:
            bounds.append([value, value])
            rows = 0
        bounds[-1][1] = value
        rows += n
    chunks = [(f" where {window} between $lo and $hi", {"lo": lo, "hi": hi}) for lo, hi in bounds]
    if counts and counts[0][0] is None:
        first, params = chunks[0] if chunks else (" where false", {})
        chunks[:1] = [(f"{first} or {window} is null", params)]
    return sum(n for _, n in counts), chunks


def _columns_checked(checks_file: ChecksFile) -> str:
    """The columns a build check's expectations read, with the key and window columns (the rows
    a failure names): pandas then never holds columns nothing checks, such as support_levels'
    lists (as Python objects, the bulk of a full build's check memory). `*` for a table-level
    expectation."""
    wanted = [*(checks_file.key or ()), *([checks_file.window] if checks_file.window else [])]
    for c in checks_file.expectations:
        kwargs = dict(c.kwargs or {})
        if c.expectation.startswith("ExpectTable"):
            return "*"
        wanted += [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        wanted += list(kwargs.get("column_list", ()))
    return ", ".join(dict.fromkeys(wanted)) or "*"


def _validate_in_chunks(
    con: duckdb.DuckDBPyConnection, checks_file: ChecksFile, chunks: list[tuple[str, dict]], expectations: Expectations
) -> list[dict]:
    """Run the expectation checks over the window chunk by chunk: one merged result per check
    (success, unexpected_count, the failing rows, message)."""
    table, exp_checks = checks_file.table, checks_file.expectations
    merged = [{"success": True, "unexpected_count": 0, "bad": [], "message": None} for _ in exp_checks]
    columns = _columns_checked(checks_file)
    for where, params in chunks:
        frame = con.execute(f"select {columns} from {table}{where}", params).df()
        if frame.empty:
            continue
        found = expectations.validate(frame, exp_checks, suite_name=table, rows=False)
        failed = [i for i, r in enumerate(found) if not r["success"]]
        if failed:  # only the failing ones again, to name their rows
            again = expectations.validate(frame, [exp_checks[i] for i in failed], suite_name=table)
            for i, r in zip(failed, again, strict=True):
                found[i] = r
        for m, r in zip(merged, found, strict=True):
            if r["success"]:
                continue
            m["success"] = False
            m["unexpected_count"] += r["unexpected_count"] or 0
            if r["rows"]:
                m["bad"].append(frame.iloc[r["rows"]])
            m["message"] = m["message"] or r["error"] or (f"observed {r['observed']}" if r["observed"] is not None else None)
    return merged


def check_built(
    con: duckdb.DuckDBPyConnection,
    checks_file: ChecksFile,
    *,
    start_date: dt.date,
    run_date: dt.date,
    expectations: Expectations | None = None,
) -> list[CheckResult]:
    """Check a built table's window (rows >= start_date on its window column, or all rows).
    Runs inside the caller's transaction; raising is the caller's choice (see `enforce`)."""
    expectations = expectations or Expectations()
    table = checks_file.table
    ref = f"{table} rows >= {start_date}" if checks_file.window and start_date > FULL_BUILD_START else table
    results: list[CheckResult] = []
    exp_checks = checks_file.expectations
    rows_in_window, chunks = _window_chunks(con, table, checks_file.window, start_date)
    if exp_checks and rows_in_window:
        merged = _validate_in_chunks(con, checks_file, chunks, expectations)
        for c, m in zip(exp_checks, merged, strict=True):
            bad = pd.concat(m["bad"]) if m["bad"] else pd.DataFrame()
            results.append(_result(checks_file, c, m["success"], rows_in_window, m["unexpected_count"], bad, ref, m["message"], None))
    elif exp_checks:
        results += [_result(checks_file, c, True, 0, 0, pd.DataFrame(), ref, "no rows in the window", None) for c in exp_checks]
    if checks_file.asserts:
        first = start_date
        if first <= FULL_BUILD_START and checks_file.window:
            lo = con.execute(f"select min({checks_file.window}) from {table}").fetchone()[0]
            first = lo or run_date
        elif first <= FULL_BUILD_START:
            first = run_date - dt.timedelta(days=3660)
        _register_sessions(con, min(first, run_date), run_date)
        try:
            for c in checks_file.asserts:
                got = _run_sql(con, c.sql, {"start_date": start_date, "run_date": run_date}, f"{checks_file.path}: asserts.{c.name}")
                results.append(_result(checks_file, c, got.empty, rows_in_window, len(got), got, ref, None, None))
        finally:
            _unregister(con, "sessions")
    return results


def enforce(results: Iterable[CheckResult]) -> None:
    """Raise CheckFailed when any error-severity check failed."""
    blocking = [r for r in results if r.blocking]
    if blocking:
        raise CheckFailed(blocking)


# -- recording -------------------------------------------------------------------------------


def record_results(con: duckdb.DuckDBPyConnection, results: Sequence[CheckResult], *, run_id: str, at: dt.datetime) -> int:
    """Write results to audit.check_results (inside the caller's transaction, if any)."""
    if not results:
        return 0
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "stage": [r.stage for r in results],
            "table_name": [r.table for r in results],
            "check_name": [r.check for r in results],
            "check_kind": [r.kind for r in results],
            "severity": [r.severity for r in results],
            "action": [r.action for r in results],
            "success": [r.success for r in results],
            "rows_checked": pd.array([r.rows_checked for r in results], dtype="Int64"),
            "unexpected_count": pd.array([r.unexpected_count for r in results], dtype="Int64"),
            "sample_keys": [json.dumps(r.sample_keys, default=str) if r.sample_keys else None for r in results],
            "batch_ref": [r.batch_ref for r in results],
            "message": [r.message for r in results],
        }
    )
    _register(con, "bellwether_check_results", frame)
    try:
        con.execute(
            """
            insert into audit.check_results
                (run_id, stage, table_name, check_name, check_kind, severity, action, success,
                 rows_checked, unexpected_count, sample_keys, batch_ref, message, checked_at)
            select run_id, stage, table_name, check_name, check_kind, severity, action, success,
                   rows_checked, unexpected_count, cast(sample_keys as json), batch_ref, message, $at
            from bellwether_check_results
            """,
            {"at": at},
        )
    finally:
        _unregister(con, "bellwether_check_results")
    return len(frame)


def data_docs_dir(artifacts: str | Path, run_id: str) -> Path:
    """Where a run's Data Docs site goes: `data_docs/<run id>/` in the artifacts folder
    (Settings.artifacts_folder: beside a local warehouse by default)."""
    return Path(artifacts) / "data_docs" / run_id


@functools.lru_cache(maxsize=4)
def expectations_for(docs_dir: str | None) -> Expectations:
    """The run's Great Expectations context (one per Data Docs folder, kept for the process)."""
    return Expectations(Path(docs_dir) if docs_dir else None)


def build_hook(
    checks_files: Mapping[str, ChecksFile],
    *,
    since: dt.date | None,
    run_date: dt.date,
    expectations: Expectations | None,
    collected: list[CheckResult],
    planned: Iterable[str] | None = None,
):
    """The runner's after_model hook: check each built table that has a checks file, collect
    the results, and raise CheckFailed on a blocking failure (the build then rolls back).

    A table's checks run as soon as it and every table its asserts read that this build will
    produce (`planned`; default every model) are built, so a check never reads a table the
    build has yet to refresh, and a failure stops everything downstream of it."""
    if planned is None:
        from transforms.runner import discover

        planned = [m.relation for m in discover()]
    remaining = set(planned)
    waiting: list[tuple[ChecksFile, dt.date]] = []

    def after(con: duckdb.DuckDBPyConnection, model, result) -> None:
        remaining.discard(model.relation)
        cf = checks_files.get(model.relation)
        if cf is not None:
            # An incremental table: its rebuilt window. A view: the window the loads touched.
            # A full build: everything.
            start = result.since or (since if model.materialized == "view" and since else FULL_BUILD_START)
            waiting.append((cf, start))
        for cf, start in list(waiting):
            if cf.reads & remaining:
                continue
            waiting.remove((cf, start))
            found = check_built(con, cf, start_date=start, run_date=run_date, expectations=expectations)
            collected.extend(found)
            enforce(found)

    return after


def summarize(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """A run's check results in brief: counts, and each failing check with its worst batch."""
    total, passed = con.execute(
        "select count(*), count(*) filter (where success) from audit.check_results where run_id = ?", [run_id]
    ).fetchone()
    failing = con.execute(
        """
        select table_name, check_name, severity, sum(unexpected_count) as rows, count(*) as batches,
               any_value(sample_keys::varchar order by unexpected_count desc) as sample
        from audit.check_results
        where run_id = ? and not success
        group by all
        order by severity, table_name, check_name
        """,
        [run_id],
    ).fetchall()
    return {
        "checks_run": int(total),
        "passed": int(passed),
        "errors": sum(1 for f in failing if f[2] == ERROR),
        "warnings": sum(1 for f in failing if f[2] == WARN),
        "failing": [
            {"table": t, "check": c, "severity": sev, "rows": int(n or 0), "batches": int(b), "sample": json.loads(s) if s else []}
            for t, c, sev, n, b, s in failing
        ],
    }
