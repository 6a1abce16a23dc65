"""The model runner: headers, derived order, dangling dependencies, selection."""

import shutil

import pytest

from transforms.runner import SQL_DIR, ModelError, discover, parse_model, select_models

HEADER = "-- {name}\n-- Grain: one row per x.\n-- Depends on: {deps}\n-- Materialized: {mat}\n"


@pytest.fixture
def sql(tmp_path):
    d = tmp_path / "sql"
    (d / "raw").mkdir(parents=True)
    (d / "staging").mkdir()
    (d / "marts").mkdir()
    shutil.copy(SQL_DIR / "raw" / "prices_daily.sql", d / "raw")
    return d


def model(d, layer, name, deps, body, mat="view"):
    p = d / layer / f"{name}.sql"
    p.write_text(HEADER.format(name=name, deps=deps, mat=mat) + body)
    return p


def test_every_real_model_parses_and_its_dependencies_exist():
    models = discover()
    names = [m.relation for m in models]
    assert "marts.technicals_daily" in names
    for m in models:  # order is derived: dependencies come first
        for dep in m.depends_on:
            if dep in names:
                assert names.index(dep) < names.index(m.relation)


def test_order_is_derived_from_dependencies(sql):
    model(sql, "marts", "b_second", "marts.c_first", "select * from marts.c_first", "table")
    model(sql, "marts", "c_first", "staging.a_base", "select * from staging.a_base", "table")
    model(sql, "staging", "a_base", "raw.prices_daily", "select * from raw.prices_daily")
    assert [m.name for m in discover(sql)] == ["a_base", "c_first", "b_second"]


def test_a_dependency_no_file_produces_is_an_error(sql):
    model(sql, "marts", "orphan", "staging.nowhere", "select * from staging.nowhere", "table")
    with pytest.raises(ModelError, match="orphan.sql: depends on staging.nowhere, which no file in sql/ produces"):
        discover(sql)


def test_header_must_agree_with_the_sql(sql):
    p = model(sql, "staging", "liar", "raw.prices_daily", "select * from raw.prices_daily join raw.universe using (ticker)")
    with pytest.raises(ModelError, match="header says it depends on raw.prices_daily but the SQL reads raw.prices_daily, raw.universe"):
        parse_model(p, "staging")


def test_header_name_must_match_the_file(sql):
    p = sql / "staging" / "x.sql"
    p.write_text(HEADER.format(name="y", deps="raw.prices_daily", mat="view") + "select * from raw.prices_daily")
    with pytest.raises(ModelError, match="header names 'y' but the file is 'x.sql'"):
        parse_model(p, "staging")


def test_incremental_models_must_use_the_window_parameters(sql):
    p = model(sql, "marts", "inc", "raw.prices_daily", "select * from raw.prices_daily", "incremental by trade_date")
    with pytest.raises(ModelError, match="must filter on \\$start_date and \\$input_start_date"):
        parse_model(p, "marts")


def test_cycles_are_reported(sql):
    model(sql, "marts", "a", "marts.b", "select * from marts.b", "table")
    model(sql, "marts", "b", "marts.a", "select * from marts.a", "table")
    with pytest.raises(ModelError, match="dependency cycle"):
        discover(sql)


def test_select_with_downstream(sql):
    model(sql, "staging", "s", "raw.prices_daily", "select * from raw.prices_daily")
    model(sql, "marts", "m1", "staging.s", "select * from staging.s", "table")
    model(sql, "marts", "m2", "marts.m1", "select * from marts.m1", "table")
    models = discover(sql)
    assert [m.name for m in select_models(models, ["m1"])] == ["m1"]
    assert [m.name for m in select_models(models, ["s+"])] == ["s", "m1", "m2"]
    with pytest.raises(ModelError, match="no model named 'nope'"):
        select_models(models, ["nope"])


def test_a_long_depends_on_goes_on_over_indented_lines(sql):
    p = sql / "staging" / "wide.sql"
    p.write_text(
        "-- wide\n-- Grain: one row per ticker.\n-- Depends on: raw.prices_daily,\n--     raw.universe\n"
        "-- Materialized: view\n--\n-- Prose after the header is not part of it.\n\n"
        "select * from raw.prices_daily join raw.universe using (ticker)\n"
    )
    assert parse_model(p, "staging").depends_on == ("raw.prices_daily", "raw.universe")
    p.write_text(p.read_text().replace("--     raw.universe\n", "-- raw.universe\n"))  # not indented: prose
    with pytest.raises(ModelError, match="header says it depends on raw.prices_daily but the SQL reads"):
        parse_model(p, "staging")


def test_lookback_is_a_number_of_sessions_or_all(sql):
    import datetime as dt

    from transforms.runner import BEGINNING, input_start_for

    body = "select * from raw.prices_daily where trade_date >= $start_date and trade_date >= $input_start_date"
    p = model(sql, "marts", "inc", "raw.prices_daily", body, "incremental by trade_date")
    for lookback, sessions in (("-- Lookback: 21 sessions\n", 21), ("-- Lookback: all\n", None), ("", 0)):
        p.write_text(HEADER.format(name="inc", deps="raw.prices_daily", mat="incremental by trade_date") + lookback + body)
        assert parse_model(p, "marts").lookback_sessions == sessions
    # Reading every earlier day, a model has no input window: $start_date alone is enough.
    p.write_text(HEADER.format(name="inc", deps="raw.prices_daily", mat="incremental by trade_date")
                 + "-- Lookback: all\nselect * from raw.prices_daily where trade_date >= $start_date")
    assert parse_model(p, "marts").lookback_sessions is None
    p.write_text(HEADER.format(name="inc", deps="raw.prices_daily", mat="incremental by trade_date")
                 + "-- Lookback: 5 sessions\nselect * from raw.prices_daily where trade_date >= $start_date")
    with pytest.raises(ModelError, match="must filter on \\$start_date and \\$input_start_date"):
        parse_model(p, "marts")
    p.write_text(HEADER.format(name="inc", deps="raw.prices_daily", mat="incremental by trade_date") + "-- Lookback: a year\n" + body)
    with pytest.raises(ModelError, match="write 'Lookback: <N> sessions' or 'Lookback: all'"):
        parse_model(p, "marts")
    night = dt.date(2025, 1, 27)
    assert input_start_for(night, None) == BEGINNING  # all: every earlier day
    assert input_start_for(night, 0) == night
    assert dt.date(2024, 11, 1) < input_start_for(night, 21) < dt.date(2024, 12, 27)  # 21 sessions and slack
