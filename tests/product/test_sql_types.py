"""`fixed_point` is the one reader of SQL type text (DuckDB, dbt, ODCS, Snowflake)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mesh_assets.product.sql_types import fixed_point


@pytest.mark.parametrize(
    ("text", "dialect", "expected"),
    [
        ("DECIMAL(18,2)", None, (18, 2)),
        ("numeric(10, 3)", None, (10, 3)),
        ("NUMBER(38,0)", None, (38, 0)),
        ("dec( 5 , 2 )", None, (5, 2)),
        ("DECIMAL(10)", None, (10, None)),
        ("NUMBER", None, (None, None)),
        ("NUMBER", "snowflake", (38, 0)),
        ("NUMERIC(12)", "snowflake", (12, None)),
        ("VARCHAR(10)", None, None),
        ("BIGINT", None, None),
        ("DECIMAL(18,2) NOT NULL", None, None),
        ("decimal(p,s)", None, None),
        ("DECIMAL(18.5,2)", None, None),
        ("not a type", None, None),
        ("", None, None),
    ],
)
def test_fixed_point_reads_precision_and_scale(
    text: str, dialect: str | None, expected: tuple[int | None, int | None] | None
) -> None:
    assert fixed_point(text, dialect) == expected


def test_sqlglot_loads_only_when_a_type_is_read() -> None:
    probe = "import sys, mesh_assets.product.sql_types; print('sqlglot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
