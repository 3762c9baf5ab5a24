"""great-expectations expectations judged in SQL give GX's own verdicts.

A differential test: every supported expectation, with variants of its arguments, is judged by the
audit's SQL engine and by great-expectations itself (`run_expectations`) on the same DuckDB batch, full
of edge cases (nulls, NaN, boundary values, equal pairs, quotes); both must agree on success and on the
unexpected count. Then the routing: a port whose expectations all compile never imports GX, and what
does not compile still goes to GX.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.product.addressing import Relation
from mesh_assets.product.spec import LogicalType, OutputPort
from mesh_assets.quality.checks import audit
from mesh_assets.quality.expectations import run_expectations
from mesh_assets.quality.expectations_sql import compile_expectation

BATCH = Relation("lab_internal", "readings_v1__candidate")

COLUMNS = {
    "id": "integer",
    "i": "integer",
    "n": "double",
    "s": "string",
    "a": "timestamp",
    "b": "timestamp",
    "x": "double",
    "y": "double",
}
NAN = math.nan
T1, T2, T3 = "2026-11-20 08:00:00", "2026-11-20 09:00:00", "2026-11-20 10:00:00"
EDGE_ROWS = [
    # id, i, n, s, a, b, x, y
    (1, 0, 0.0, "ab", T1, T1, 1.0, 1.0),
    (2, 10, 10.0, "o'hara", T2, T1, 2.0, 1.0),
    (3, 5, 5.0, "x", T1, T2, 1.0, 2.0),
    (4, 5, NAN, "", None, T1, None, 1.0),
    (5, None, None, None, T1, None, 1.0, NAN),
    (6, -1, -1.5, "abc", None, None, None, None),
    (7, 11, 10.5, "e\u0301", T3, T2, 3.0, 3.0),
    (8, 3, 5.0, "ab", T2, T2, NAN, NAN),
    (9, 7, NAN, "back\\slash", T3, T1, 0.5, 0.25),
]
ALL_MISSING_ROWS = [(k, None, NAN, None, None, None, None, NAN) for k in range(1, 4)]

PAIRS = [
    {**or_equal, **ignore}
    for or_equal in ({}, {"or_equal": True}, {"or_equal": False}, {"or_equal": None})
    for ignore in (
        {},
        *({"ignore_row_if": v} for v in ("both_values_are_missing", "either_value_is_missing", "neither")),
    )
]
CASES: list[tuple[str, dict[str, Any]]] = [
    *[
        ("expect_column_values_to_not_be_null", {"column": c, **m})
        for c in ("i", "n", "s", "a")
        for m in ({}, {"mostly": 7 / 9}, {"mostly": 0.8}, {"mostly": 0})
    ],
    *[
        ("expect_column_values_to_be_between", {"column": c, **bounds})
        for c in ("i", "n")
        for bounds in (
            {"min_value": 0, "max_value": 10},
            {"min_value": 0, "max_value": 10, "strict_min": True},
            {"min_value": 0, "max_value": 10, "strict_max": True},
            {"min_value": 0, "max_value": 10, "strict_min": True, "strict_max": True},
            {"min_value": None, "max_value": 5},
            {"max_value": 5, "strict_max": True},
            {"min_value": 5},
            {"min_value": 5, "max_value": None, "strict_min": True},
            {"min_value": -1.5, "max_value": 10.5},
            {"min_value": 0, "max_value": 10, "mostly": 0.75},
            {"min_value": 0, "max_value": 10, "mostly": 0.8},
        )
    ],
    *[
        ("expect_column_value_lengths_to_be_between", {"column": "s", **bounds})
        for bounds in (
            {"min_value": 0, "max_value": 2},
            {"min_value": 1},
            {"max_value": 2, "strict_max": True},
            {"min_value": 1, "max_value": 3, "strict_min": True, "strict_max": True},
            {"min_value": 1, "max_value": 2, "mostly": 0.5},
        )
    ],
    *[
        ("expect_column_value_lengths_to_equal", {"column": "s", **v})
        for v in ({"value": 2}, {"value": 1}, {"value": 2.0}, {"value": 2, "mostly": 0.3})
    ],
    *[
        (f"expect_column_values_to_{verb}_in_set", {"column": c, "value_set": values, **m})
        for verb in ("be", "not_be")
        for c, values in (
            ("s", ["ab", "x", "o'hara"]),
            ("s", ["o''hara", "it's", "back\\slash"]),
            ("s", []),
            ("i", [0, 5, 10]),
            ("i", [5.0, 3]),
            ("n", [5, 10.5]),
        )
        for m in ({}, {"mostly": 0.5})
    ],
    *[
        ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": a, "column_B": b, **m, **p})
        for a, b in (("a", "b"), ("x", "y"))
        for p in PAIRS
        for m in ({}, {"mostly": 0.6})
    ],
    *[
        ("expect_column_values_to_be_unique", {"column": c, **m})
        for c in ("i", "n", "s", "id")
        for m in ({}, {"mostly": 0.7})
    ],
]


def contract(*expectations: tuple[str, dict[str, Any]]) -> OutputPort:
    """A port over the edge-case table whose rules are the given expectations, named `case_<n>`."""
    return OutputPort.model_validate(
        {
            "version": "1.0.0",
            "primary_key": ["id"],
            "columns": [
                {"name": name, "type": kind, "description": f"Column {name}.", "pii": name == "x"}
                for name, kind in COLUMNS.items()
            ],
            "quality": {
                "rules": [
                    {
                        "type": "expectation",
                        "name": f"case_{k}",
                        "expectation": expectation,
                        "kwargs": kwargs,
                    }
                    for k, (expectation, kwargs) in enumerate(expectations)
                ]
            },
        }
    )


@pytest.fixture
def session(tmp_path: Path) -> Iterator:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "expectations.duckdb"))
    with warehouse.session() as session:
        session.ensure_schema(BATCH.schema)
        yield session


def load(session, rows: list[tuple]) -> None:
    types = {"integer": "INTEGER", "double": "DOUBLE", "string": "VARCHAR", "timestamp": "TIMESTAMP"}
    columns = ", ".join(f"{name} {types[kind]}" for name, kind in COLUMNS.items())
    session.execute(f"CREATE OR REPLACE TABLE {BATCH.sql} ({columns})")
    for row in rows:
        session.execute(f"INSERT INTO {BATCH.sql} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(row))


def test_every_case_compiles_to_sql() -> None:
    types = {name: LogicalType(kind) for name, kind in COLUMNS.items()}
    uncompiled = [
        (expectation, kwargs)
        for expectation, kwargs in CASES
        if compile_expectation(expectation, kwargs, types, "duckdb") is None
    ]
    assert uncompiled == []


@pytest.mark.parametrize("rows", [EDGE_ROWS, ALL_MISSING_ROWS, []], ids=["edge", "all_missing", "empty"])
def test_sql_and_great_expectations_agree_on_success_and_unexpected_count(session, rows) -> None:
    load(session, rows)
    port = contract(*CASES)

    by_sql = {o.rule: o for o in audit(session, BATCH, port) if o.rule.startswith("case_")}
    # Cases repeat each other in GX's eyes (`value: 2` and `2.0`, a default spelled out): each gets a verdict.
    by_gx = run_expectations(session, BATCH, [(r.check_name, r) for r in port.quality.rules])

    disagreements = [
        (CASES[int(name.removeprefix("case_"))], sql, gx)
        for name, outcome in by_sql.items()
        for sql, gx in [
            (
                (outcome.passed, outcome.details["unexpected_count"]),
                (by_gx[name]["success"], by_gx[name]["unexpected_count"]),
            )
        ]
        if sql != gx
    ]
    assert len(by_sql) == len(CASES)
    assert all(o.details["engine"] == "sql" for o in by_sql.values())
    assert disagreements == []


def test_a_failed_sql_expectation_shows_a_few_failing_values_and_masks_pii(session) -> None:
    load(session, EDGE_ROWS)
    port = contract(
        ("expect_column_values_to_be_in_set", {"column": "s", "value_set": ["ab"]}),
        ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "x", "column_B": "y"}),
        ("expect_column_values_to_be_unique", {"column": "i"}),
    )

    result = {o.rule: o for o in audit(session, BATCH, port)}

    in_set, pair, unique = result["case_0"], result["case_1"], result["case_2"]
    assert not in_set.passed and in_set.observed == "6 unexpected" and in_set.failing_count == 6
    assert len(in_set.details["sample_failing_values"]) == 5
    assert set(in_set.details["sample_failing_values"]) <= {
        "o'hara",
        "x",
        "",
        "abc",
        "e\u0301",
        "back\\slash",
    }
    assert pair.details["sample_failing_values"] and all(
        v.startswith("(***, ") for v in pair.details["sample_failing_values"]
    )
    assert unique.details["sample_failing_values"] == ["5", "5"]
    assert (
        in_set.description
        == "great-expectations: expect_column_values_to_be_in_set(column=s, value_set=['ab'])."
    )


def test_a_passing_sql_expectation_fetches_no_samples(session, monkeypatch: pytest.MonkeyPatch) -> None:
    load(session, EDGE_ROWS)
    queries: list[str] = []
    original = session.query

    def recording(sql: str, params=None):
        queries.append(sql)
        return original(sql, params)

    monkeypatch.setattr(session, "query", recording)
    port = contract(("expect_column_value_lengths_to_be_between", {"column": "s", "max_value": 10}))

    (check,) = [o for o in audit(session, BATCH, port) if o.rule == "case_0"]

    assert check.passed and check.details["sample_failing_values"] == []
    assert not any("LIMIT 5" in q for q in queries)


@pytest.mark.parametrize(
    ("expectation", "kwargs"),
    [
        ("expect_column_values_to_match_regex", {"column": "s", "regex": "^a"}),
        ("expect_column_values_to_be_between", {"column": "a", "min_value": "2026-11-20 08:30:00"}),
        ("expect_column_values_to_be_in_set", {"column": "i", "value_set": ["5"]}),
        ("expect_column_values_to_not_be_null", {"column": "s", "result_format": "COMPLETE"}),
    ],
    ids=["unsupported_expectation", "date_bounds", "text_in_integer_set", "unknown_argument"],
)
def test_an_expectation_without_a_sql_form_still_goes_to_great_expectations(
    session, expectation: str, kwargs: dict[str, Any]
) -> None:
    load(session, EDGE_ROWS)
    port = contract((expectation, kwargs), ("expect_column_values_to_not_be_null", {"column": "id"}))

    result = {o.rule: o for o in audit(session, BATCH, port)}

    assert result["case_0"].details["engine"] == "great_expectations"
    assert result["case_1"].details["engine"] == "sql" and result["case_1"].passed


@pytest.mark.parametrize(
    ("expectation", "kwargs"),
    [
        ("expect_column_values_to_be_between", {"column": "i"}),
        ("expect_column_values_to_be_between", {"column": "i", "min_value": 5, "max_value": 1}),
        ("expect_column_values_to_be_between", {"column": "s", "min_value": "a"}),
        ("expect_column_values_to_be_between", {"column": "i", "min_value": True}),
        ("expect_column_values_to_be_between", {"column": "i", "min_value": 1, "strict_min": "yes"}),
        ("expect_column_values_to_be_between", {"column": "i", "min_value": math.inf}),
        ("expect_column_values_to_not_be_null", {"column": "i", "mostly": 1.5}),
        ("expect_column_values_to_not_be_null", {"column": "i", "mostly": True}),
        ("expect_column_values_to_not_be_null", {"column": "nope"}),
        ("expect_column_values_to_be_in_set", {"column": "s", "value_set": ["a", 1]}),
        ("expect_column_values_to_be_in_set", {"column": "s", "value_set": None}),
        ("expect_column_values_to_be_in_set", {"column": "a", "value_set": [T1]}),
        ("expect_column_value_lengths_to_equal", {"column": "i", "value": 1}),
        ("expect_column_value_lengths_to_be_between", {"column": "s", "min_value": 1.5}),
        ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "x"}),
        ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "day"}),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "x", "column_B": "y", "ignore_row_if": "never"},
        ),
    ],
)
def test_arguments_sql_cannot_answer_exactly_as_gx_leave_the_expectation_to_gx(
    expectation: str, kwargs: dict[str, Any]
) -> None:
    types = {name: LogicalType(kind) for name, kind in COLUMNS.items()} | {"day": LogicalType.DATE}

    assert compile_expectation(expectation, kwargs, types, "duckdb") is None


def test_string_literals_escape_quotes_and_snowflake_backslashes() -> None:
    types = {"s": LogicalType.STRING}
    kwargs = {"column": "s", "value_set": ["o'hara", "a\\b"]}

    duckdb = compile_expectation("expect_column_values_to_be_in_set", kwargs, types, "duckdb")
    snowflake = compile_expectation("expect_column_values_to_be_in_set", kwargs, types, "snowflake")

    assert duckdb is not None and "('o''hara', 'a\\b')" in duckdb.unexpected
    assert snowflake is not None and "('o''hara', 'a\\\\b')" in snowflake.unexpected


def test_auditing_a_port_whose_expectations_all_compile_never_imports_great_expectations(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = {[str(Path(__file__).parent), *sys.path]!r}
        from test_expectations_sql import BATCH, CASES, EDGE_ROWS, contract, load
        from mesh_assets.quality.checks import audit
        from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse

        with DuckDBWarehouse(path={str(tmp_path / "fresh.duckdb")!r}).session() as session:
            session.ensure_schema(BATCH.schema)
            load(session, EDGE_ROWS)
            outcomes = audit(session, BATCH, contract(*CASES))
        engines = {{o.details["engine"] for o in outcomes if o.rule.startswith("case_")}}
        print(engines, "great_expectations" in sys.modules)
        """
    )

    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "{'sql'} False"


def test_the_same_sql_gives_the_same_verdicts_in_snowflakes_dialect_on_fakesnow(session) -> None:
    import fakesnow

    from mesh_assets.infra.warehouse.snowflake import SnowflakeWarehouse

    load(session, EDGE_ROWS)
    port = contract(*CASES)
    in_duckdb = {
        o.rule: (o.passed, o.details["unexpected_count"])
        for o in audit(session, BATCH, port)
        if o.rule.startswith("case_")
    }
    types = {"integer": "INTEGER", "double": "DOUBLE", "string": "VARCHAR", "timestamp": "TIMESTAMP_NTZ"}
    with fakesnow.patch():
        warehouse = SnowflakeWarehouse(
            account="acct", user="u", password="p", warehouse="wh", database="MESH"
        )
        with warehouse.session() as snowflake:
            snowflake.ensure_schema(BATCH.schema)
            columns = ", ".join(f'"{name}" {types[kind]}' for name, kind in COLUMNS.items())
            snowflake.execute(f"CREATE OR REPLACE TABLE {BATCH.sql} ({columns})")
            for row in EDGE_ROWS:  # NaN as Snowflake spells it: the text 'NaN' into a float column
                values = ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in row]
                snowflake.execute(f"INSERT INTO {BATCH.sql} VALUES ({', '.join(['%s'] * len(row))})", values)
            in_snowflake = {
                o.rule: (o.passed, o.details["unexpected_count"])
                for o in audit(snowflake, BATCH, port)
                if o.rule.startswith("case_")
            }

    assert all(o == in_duckdb[rule] for rule, o in in_snowflake.items()), [
        (CASES[int(rule.removeprefix("case_"))], o, in_duckdb[rule])
        for rule, o in in_snowflake.items()
        if o != in_duckdb[rule]
    ]
    assert len(in_snowflake) == len(CASES)
