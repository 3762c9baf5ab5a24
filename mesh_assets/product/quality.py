"""The `quality` section of an output port: the contract checks every publish must pass (row count,
volume change, timeliness, severities of the schema and key checks, and the listed validity and custom
rules). Part of the spec: `spec` re-exports every model.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mesh_assets.product.spec_base import Duration, Identifier, Severity, SpecModel


class RowCount(SpecModel):
    """Bounds on the number of rows a published port may hold."""

    min: int = Field(default=1, ge=0, description="Fewest rows a healthy publish has.")
    max: int | None = Field(
        default=None, ge=1, description="Most rows a healthy publish has; none: no bound."
    )


class RuleBase(SpecModel):
    """Fields every quality rule shares."""

    name: Identifier | None = Field(
        default=None, description="Check name; defaults to `<type>__<column>`. Unique within the port."
    )
    severity: Severity = Field(
        default=Severity.ERROR, description="`error` blocks the publish, `warn` informs."
    )
    description: str | None = Field(
        default=None, description="What the rule protects, for the person on call."
    )

    @property
    def check_name(self) -> str:
        """The asset check's name: `name`, else `<type>__<column>`."""
        if self.name:
            return self.name
        if isinstance(self, ExpectationRule):
            column = self.kwargs.get("column") or self.kwargs.get("column_A") or "table"
            return f"gx__{self.expectation.removeprefix('expect_')}__{column}"[:63]
        return f"{getattr(self, 'type', 'rule')}__{getattr(self, 'column', 'table')}"


class AcceptedValuesRule(RuleBase):
    """The column holds only the listed values (nulls aside)."""

    type: Literal["accepted_values"] = Field(description="Rule type.")
    column: Identifier = Field(description="Column checked.")
    values: list[str | int] = Field(min_length=1, description="The accepted values.")


class RangeRule(RuleBase):
    """The column's values lie within bounds (inclusive; nulls aside)."""

    type: Literal["range"] = Field(description="Rule type.")
    column: Identifier = Field(description="Column checked.")
    min: float | int | str | None = Field(
        default=None, description="Lowest accepted value (dates as ISO text)."
    )
    max: float | int | str | None = Field(
        default=None, description="Highest accepted value (dates as ISO text)."
    )

    @model_validator(mode="after")
    def _a_bound(self) -> RangeRule:
        if self.min is None and self.max is None:
            raise ValueError("a range rule needs 'min', 'max' or both")
        return self


class PatternRule(RuleBase):
    """The column's text values match a regular expression (nulls aside)."""

    type: Literal["pattern"] = Field(description="Rule type.")
    column: Identifier = Field(description="Column checked.")
    regex: str = Field(description="Regular expression every value must match, e.g. `^[A-Z]{2}$`.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"'{regex}' is not a valid regular expression ({exc})") from exc
        return regex


class LengthRule(RuleBase):
    """The column's text length lies within bounds (nulls aside)."""

    type: Literal["length"] = Field(description="Rule type.")
    column: Identifier = Field(description="Column checked.")
    min: int | None = Field(default=None, ge=0, description="Shortest accepted length.")
    max: int | None = Field(default=None, ge=1, description="Longest accepted length.")


class ReferencesRule(RuleBase):
    """Referential integrity: every value exists in a column of another product's port (an input port)."""

    type: Literal["references"] = Field(description="Rule type.")
    column: Identifier = Field(description="Column checked.")
    port: str = Field(description="`<domain>.<product>` of the referenced port; must be a declared input.")
    to_column: Identifier = Field(description="Column of the referenced port holding the valid values.")


class SqlRule(RuleBase):
    """A custom rule: a query returning the bad rows. `{{ this }}` is the batch being audited."""

    type: Literal["sql"] = Field(description="Rule type.")
    name: Identifier = Field(description="Check name (required for SQL rules).")
    query: str = Field(description="SELECT returning the rows that break the rule, in DuckDB's dialect.")


class ExpectationRule(RuleBase):
    """A great-expectations expectation, run by the great-expectations library itself."""

    type: Literal["expectation"] = Field(description="Rule type.")
    expectation: str = Field(
        pattern=r"^expect_[a-z0-9_]+$",
        description="Expectation name, e.g. `expect_column_values_to_be_between`.",
        examples=["expect_column_pair_values_a_to_be_greater_than_b"],
    )
    kwargs: dict[str, str | int | float | bool | list[str | int | float] | None] = Field(
        default_factory=dict, description="The expectation's arguments, e.g. `column`, `min_value`."
    )


QualityRule = Annotated[
    AcceptedValuesRule | RangeRule | PatternRule | LengthRule | ReferencesRule | SqlRule | ExpectationRule,
    Field(discriminator="type"),
]


class VolumeChange(SpecModel):
    """How much the row count may move from the previous publish."""

    max_drop: float = Field(
        default=0.5, ge=0, le=1, description="Largest accepted fall, as a share (0.5 = -50%)."
    )
    max_growth: float | None = Field(default=None, ge=0, description="Largest accepted rise (2.0 = +200%).")
    severity: Severity = Field(
        default=Severity.ERROR, description="`error` blocks the publish, `warn` informs."
    )


class Timeliness(SpecModel):
    """How old the newest data (max of the event-time column) may be when published."""

    max_age: Duration | None = Field(default=None, description="Defaults to the freshness SLO's max_age.")
    severity: Severity = Field(
        default=Severity.WARN, description="`error` blocks the publish, `warn` informs."
    )


class Quality(SpecModel):
    """Contract checks that run on every publish, in the warehouse, before the batch is published."""

    row_count: RowCount = Field(default_factory=RowCount, description="Row count bounds.")
    schema_severity: Severity = Field(default=Severity.ERROR, description="Severity of the schema check.")
    key_severity: Severity = Field(default=Severity.ERROR, description="Severity of the primary key check.")
    volume_change: VolumeChange | None = Field(
        default_factory=VolumeChange, description="Row count change against the previous publish; null: off."
    )
    timeliness: Timeliness | None = Field(
        default_factory=Timeliness, description="Data time against the freshness SLO (needs event_time)."
    )
    rules: list[QualityRule] = Field(default_factory=list, description="Validity and custom rules.")
