"""The `monitors` section of an output port: learned anomaly monitors (freshness, volume, schema and the
health of each monitored column), with thresholds learned from the port's history instead of typed by
hand. Every port gets them without writing anything; this section only tunes them. Part of the spec:
`spec` re-exports the model.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from mesh_assets.product.spec_base import Identifier, Severity, SpecModel


class Seasonality(StrEnum):
    """How a monitor accounts for the weekly rhythm of the data."""

    AUTO = "auto"
    """Weekly when the history shows a weekday pattern (and has at least two weeks), else none."""
    WEEKLY = "weekly"
    """Compare each day with the same weekday of past weeks."""
    NONE = "none"
    """Compare each day with every past day."""


class Direction(StrEnum):
    """Which way a change must go to be an anomaly."""

    BOTH = "both"
    DROP = "drop"
    SPIKE = "spike"


class Monitors(SpecModel):
    """Learned anomaly monitors of the port (asset checks `monitor_<metric>[__<column>]`)."""

    enabled: bool = Field(default=True, description="`false` turns every monitor of the port off.")
    columns: list[Identifier] | None = Field(
        default=None,
        description="Columns whose health (null rate, distinct count, mean, category shares) is "
        "monitored; none: every column, up to `max_columns`.",
    )
    exclude: list[Identifier] = Field(
        default_factory=list, description="Columns never monitored (e.g. free text)."
    )
    time_column: Identifier | None = Field(
        default=None,
        description="The date or timestamp column whose days volume and field health are compared on "
        "(default: the port's `event_time`). Name when the event happened (e.g. `order_ts`) when "
        "`event_time` is an update time: rows' last updates pile up on the newest days, so an "
        "update-time day is not like the days before it.",
    )
    learn_from_batch: bool = Field(
        default=True,
        description="Whether a port's first publishes (before `min_training` publishes were profiled) "
        "judge the batch's newest day against the batch's own past days. Set `false` when `event_time` "
        "is an update time: rows' last updates pile up on the newest days, so no settled day is like "
        "the newest, and the monitors say 'learning' until past publishes' newest days can train them.",
    )
    max_columns: int = Field(
        default=20, ge=0, le=200, description="Most columns monitored by default (in column order)."
    )
    sensitivity: float = Field(
        default=4.0,
        gt=0,
        le=20,
        description="How many robust standard deviations (1.4826 x MAD) from the learned baseline a value "
        "may be; lower is more sensitive.",
    )
    window: int = Field(
        default=56,
        ge=7,
        le=730,
        description="Training window: how many past days (or publishes) are learned.",
    )
    min_training: int = Field(
        default=14,
        ge=3,
        le=730,
        description="Fewest training points before a monitor judges; below it the check passes, 'learning'.",
    )
    seasonality: Seasonality = Field(
        default=Seasonality.AUTO, description="`auto`, `weekly` (same weekday) or `none`."
    )
    direction: Direction = Field(
        default=Direction.BOTH,
        description="`both`, `drop` (only falls) or `spike` (only rises) are anomalies.",
    )
    min_change: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="Changes smaller than this share of the baseline are never anomalies (0.1 = 10%).",
    )
    severity: Severity = Field(
        default=Severity.WARN, description="`warn` informs; `error` blocks the publish like a contract rule."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Monitors:
        if self.min_training > self.window:
            raise ValueError(
                f"'min_training' ({self.min_training}) is larger than 'window' ({self.window}): the monitors "
                "would never judge; lower min_training or widen the window"
            )
        both = sorted(set(self.columns or []) & set(self.exclude))
        if both:
            raise ValueError(f"columns {both} are both monitored and excluded; list each in one place")
        return self
