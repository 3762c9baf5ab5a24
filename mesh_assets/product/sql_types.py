"""Reading SQL type text someone else wrote: the precision and scale of a fixed-point type.

The mesh writes types with `spec.portable_sql_type`; it reads them from DuckDB's `DESCRIBE`, a dbt
model's `data_type`, an ODCS contract's `physicalType` and `meshType`, and Snowflake's information
schema. All of them ask one question of a type, "is it fixed-point, and with which precision and
scale?", and `fixed_point` answers it with sqlglot's type parser, which knows the synonyms (`NUMERIC`,
`NUMBER`, `DEC`) and the spacing a regex would have to spell out.

sqlglot is imported on first use, not with this module: code locations load the `product` wing, and
sqlglot takes ~250 ms to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp


def _parse(text: str, dialect: str | None) -> exp.DataType | None:
    from sqlglot import exp, parse_one
    from sqlglot.errors import SqlglotError

    try:
        # `parse_one(into=DataType)` rather than `DataType.build`: build ignores trailing tokens, so
        # `DECIMAL(18,2) NOT NULL` would read as a type.
        return parse_one(text, into=exp.DataType, dialect=dialect)
    except SqlglotError:
        return None


def fixed_point(text: str, dialect: str | None = None) -> tuple[int | None, int | None] | None:
    """Precision and scale of a fixed-point SQL type; None for any other type, or text that is none.

    `DECIMAL(18,2)`, `numeric(18, 2)`, `NUMBER(18,2)`, `dec(18,2)` → `(18, 2)`; a part not written is
    None (`DECIMAL(10)` → `(10, None)`, `NUMBER` → `(None, None)`), except where the dialect defines it
    (in `snowflake` a bare `NUMBER` is `(38, 0)`). The caller decides what an unwritten part means.
    """
    from sqlglot import exp

    parsed = _parse(text, dialect)
    if parsed is None or not parsed.is_type(exp.DataType.Type.DECIMAL):
        return None
    params = [param.this for param in parsed.expressions]
    if len(params) > 2 or not all(isinstance(p, exp.Literal) and p.is_int for p in params):
        return None  # `DECIMAL(p,s)`, `DECIMAL(18.5,2)`: not a type a column can have
    precision, scale = [*(int(p.this) for p in params), None, None][:2]
    return precision, scale
