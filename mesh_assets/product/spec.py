"""The data product spec: the pydantic models behind every `dataproduct.yaml`.

One spec is the single source of truth for a product. The Dagster metadata, FreshnessPolicy and asset
checks, the dbt model contracts and the warehouse addresses are all derived from these models, never
restated elsewhere. Every model forbids unknown keys so a typo is an error, not a silently ignored field.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

# The quality section and the shared base types live in their own modules; the spec re-exports them, so
# `spec` stays the one place to import any spec model from (and `spec_issues` finds every field here).
from mesh_assets.product.access_rules import ProductAccessRules
from mesh_assets.product.bindings import Binding, binding_problems
from mesh_assets.product.monitors import Direction as Direction
from mesh_assets.product.monitors import Monitors
from mesh_assets.product.monitors import Seasonality as Seasonality
from mesh_assets.product.quality import AcceptedValuesRule as AcceptedValuesRule
from mesh_assets.product.quality import ExpectationRule, Quality
from mesh_assets.product.quality import LengthRule as LengthRule
from mesh_assets.product.quality import PatternRule as PatternRule
from mesh_assets.product.quality import QualityRule as QualityRule
from mesh_assets.product.quality import RangeRule as RangeRule
from mesh_assets.product.quality import ReferencesRule as ReferencesRule
from mesh_assets.product.quality import RowCount as RowCount
from mesh_assets.product.quality import RuleBase as RuleBase
from mesh_assets.product.quality import SqlRule as SqlRule
from mesh_assets.product.quality import Timeliness as Timeliness
from mesh_assets.product.quality import VolumeChange as VolumeChange
from mesh_assets.product.spec_base import IDENTIFIER as IDENTIFIER
from mesh_assets.product.spec_base import Duration, Identifier, SpecModel, parse_duration
from mesh_assets.product.spec_base import Severity as Severity
from mesh_assets.product.versions import SEMVER, Semver


class ProductType(StrEnum):
    """How a product relates to its sources (data mesh archetypes)."""

    SOURCE_ALIGNED = "source-aligned"
    AGGREGATE = "aggregate"
    CONSUMER_ALIGNED = "consumer-aligned"


class Status(StrEnum):
    """Lifecycle status of a product or one of its ports."""

    DRAFT = "draft"
    BETA = "beta"
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class Classification(StrEnum):
    """Data classification, from least to most sensitive."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class LogicalType(StrEnum):
    """Warehouse-neutral column types; each backend maps them to its physical types."""

    STRING = "string"
    INTEGER = "integer"
    BIGINT = "bigint"
    DOUBLE = "double"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"


PORTABLE_SQL_TYPES = {
    LogicalType.STRING: "VARCHAR",
    LogicalType.INTEGER: "INTEGER",
    LogicalType.BIGINT: "BIGINT",
    LogicalType.DOUBLE: "DOUBLE",
    LogicalType.BOOLEAN: "BOOLEAN",
    LogicalType.DATE: "DATE",
    LogicalType.TIMESTAMP: "TIMESTAMP",
}
"""SQL type names DuckDB and Snowflake both accept (decimals: see `portable_sql_type`)."""


class Description(SpecModel):
    """What the product is for, how to use it, and what it cannot be used for."""

    purpose: str = Field(min_length=10, description="Why the product exists and what question it answers.")
    usage: str = Field(min_length=10, description="How consumers are expected to use it.")
    limitations: str = Field(min_length=3, description="What it must not be used for; known gaps.")


class Owner(SpecModel):
    """The accountable team and the named steward who answers for the product."""

    team: Identifier = Field(description="Owning team, e.g. `sales_data`.", examples=["sales_data"])
    steward: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Email of the data steward accountable for the product.",
        examples=["ana.lopez@example.com"],
    )


class Support(SpecModel):
    """Where consumers ask questions and where SLO breach alerts go."""

    channel: str = Field(description="Support channel, e.g. a Slack channel `#sales-data` or a URL.")
    kind: Literal["slack", "webhook", "email", "log"] = Field(
        default="slack", description="How alerts reach the channel."
    )


class Access(SpecModel):
    """Who may consume the product's ports."""

    mode: Literal["open", "approval_required"] = Field(
        description="`open`: any product allowed by the access policy may read; `approval_required`: only "
        "consumers holding an access agreement (files under the product's `access/` folder)."
    )


class PiiHandling(StrEnum):
    """How a PII column is protected for readers without the PII privilege."""

    MASK = "mask"
    HASH = "hash"
    REMOVE = "remove"


class AccessPolicy(SpecModel):
    """Who may and may not read, and how PII is handled. Secure by default: no roles, no readers."""

    allowed_roles: list[str] = Field(default_factory=list, description="Roles allowed to read the ports.")
    denied_roles: list[str] = Field(default_factory=list, description="Roles explicitly refused.")
    pii_handling: PiiHandling = Field(
        default=PiiHandling.MASK, description="How PII columns are protected for readers without PII access."
    )
    agreements: ProductAccessRules = Field(
        default_factory=ProductAccessRules,
        description="The product's own rules for access agreements; they only narrow the mesh policy.",
    )


class DistributionRights(SpecModel):
    """Whether consumers may pass the data on."""

    redistribute_unmodified: bool = Field(description="May consumers redistribute the data as is?")
    redistribute_modified: bool = Field(description="May consumers redistribute derived/modified data?")


class DataSharingAgreement(SpecModel):
    """The agreement that governs consumption of the product."""

    reference: str = Field(description="Link or identifier of the agreement.")
    terms: str = Field(description="Summary of the terms consumers accept.")


class FreshnessSlo(SpecModel):
    """How fresh the port promises to be: a rolling window, or a cron deadline."""

    max_age: Duration | None = Field(
        default=None, description="The port fails its SLO when its last update is older than this."
    )
    warn_after: Duration | None = Field(default=None, description="Warn when older than this (< max_age).")
    cron: str | None = Field(
        default=None, description="Deadline cron: the port must be updated by each tick, e.g. `0 6 * * *`."
    )
    cron_timezone: str = Field(default="UTC", description="Timezone of `cron`.")
    lower_bound: Duration | None = Field(
        default=None, description="With `cron`: the update must happen within this long before the tick."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> FreshnessSlo:
        if (self.max_age is None) == (self.cron is None):
            raise ValueError("set exactly one of 'max_age' (e.g. '24h') or 'cron' (e.g. '0 6 * * *')")
        if self.cron is not None and self.lower_bound is None:
            raise ValueError("'cron' needs 'lower_bound', e.g. '24h': how long before the deadline counts")
        if (
            self.max_age
            and self.warn_after
            and parse_duration(self.warn_after) >= parse_duration(self.max_age)
        ):
            raise ValueError("'warn_after' must be shorter than 'max_age'")
        return self


class Slos(SpecModel):
    """The product's service-level objectives; each becomes a measured indicator."""

    freshness: FreshnessSlo = Field(description="Freshness promise; becomes the port's FreshnessPolicy.")
    availability: float = Field(
        default=0.99, gt=0, le=1, description="Target share of scheduled publishes that succeed."
    )
    quality_pass_rate: float = Field(default=1.0, gt=0, le=1, description="Target share of checks passing.")
    window: Duration = Field(default="30d", description="The window SLIs are measured over.")


class Column(SpecModel):
    """One column of a port's schema."""

    name: Identifier = Field(description="Column name.")
    type: LogicalType = Field(description="Logical type, mapped to each warehouse's physical type.")
    precision: int | None = Field(default=None, ge=1, le=38, description="Precision of a decimal.")
    scale: int | None = Field(default=None, ge=0, le=37, description="Scale of a decimal.")
    description: str = Field(min_length=3, description="What the column means, in business terms.")
    nullable: bool = Field(default=True, description="May the column hold nulls?")
    unique: bool = Field(default=False, description="Are values unique across the port?")
    pii: bool = Field(default=False, description="Does the column hold personal data?")
    examples: list[str | int | float | bool] = Field(default_factory=list, description="Example values.")

    @model_validator(mode="after")
    def _decimal_needs_precision(self) -> Column:
        if self.type == LogicalType.DECIMAL and (self.precision is None or self.scale is None):
            raise ValueError("a decimal column needs 'precision' and 'scale', e.g. precision: 18, scale: 2")
        if self.type != LogicalType.DECIMAL and (self.precision is not None or self.scale is not None):
            raise ValueError("'precision' and 'scale' apply only to type 'decimal'")
        return self


def portable_sql_type(column: Column) -> str:
    """The column's type as SQL that DuckDB and Snowflake both accept (e.g. `DECIMAL(18,2)`)."""
    if column.type == LogicalType.DECIMAL:
        return f"DECIMAL({column.precision},{column.scale})"
    return PORTABLE_SQL_TYPES[column.type]


class Deprecation(SpecModel):
    """When a deprecated port stops being served, and what replaces it."""

    sunset: date = Field(description="Date after which the port is retired.")
    replacement: str = Field(description="The version consumers move to, e.g. `2`.")
    reason: str = Field(description="Why the port is deprecated.")


class PortLineage(SpecModel):
    """Which input columns a Python port's columns are computed from, where the platform cannot read code."""

    columns: dict[Identifier, list[str]] = Field(
        default_factory=dict,
        description="Each port column to the input columns it is computed from, as "
        "`<domain>.<product>.<column>` (an input port) or `<system>.<extract>.<column>` (a source); `[]` for "
        "a constant. A column left out depends on every column of every input.",
        examples=[{"country_code": ["commercial_analytics.customer_360.country_code"]}],
    )
    also_reads: list[str] = Field(
        default_factory=list,
        description="Input columns the code reads to join, filter or group rows, though no port column is "
        "computed from them: removing one breaks the product too.",
        examples=[["commercial_analytics.customer_360.customer_id"]],
    )


class OutputPort(SpecModel):
    """One published major version of the product: the only thing other domains may read."""

    version: str = Field(pattern=SEMVER, description="Semantic version of this port's contract.")
    status: Status | None = Field(default=None, description="Port status; defaults to the product's.")
    description: str | None = Field(default=None, description="What differs in this version.")
    model: Identifier | None = Field(
        default=None,
        description="The transformation that builds the port: a SQL file stem, a Python function or a dbt "
        "model name. Defaults to `<product>_v<major>`.",
    )
    columns: list[Column] = Field(min_length=1, description="The port's schema, in column order.")
    primary_key: list[Identifier] = Field(min_length=1, description="Columns that identify a row.")
    event_time: Identifier | None = Field(default=None, description="Column holding the data time.")
    quality: Quality = Field(default_factory=Quality, description="Baseline contract checks.")
    monitors: Monitors = Field(
        default_factory=Monitors, description="Learned anomaly monitors (on by default); tunes them."
    )
    deprecation: Deprecation | None = Field(default=None, description="Required when status is deprecated.")
    bindings: list[Binding] = Field(
        default_factory=list,
        description="Formats the port is served in besides its warehouse table (the source of truth): "
        "`iceberg`, `parquet`, `share` (Snowflake). Each holds the same audited rows per publish.",
    )
    lineage: PortLineage | None = Field(
        default=None,
        description="Python ports: the column lineage the platform cannot read from code (SQL and dbt "
        "ports' lineage is read from their SQL). Unset: every column depends on every input column.",
    )

    @property
    def major(self) -> int:
        """The major version, which addresses the port."""
        return Semver.parse(self.version).major

    @model_validator(mode="after")
    def _keys_are_columns(self) -> OutputPort:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names {dupes}; each column appears once")
        for key in self.primary_key:
            if key not in names:
                raise ValueError(f"primary_key column '{key}' is not in 'columns'; declare it there first")
        if self.event_time and self.event_time not in names:
            raise ValueError(f"event_time column '{self.event_time}' is not in 'columns'")
        rule_names = [rule.check_name for rule in self.quality.rules]
        twice = sorted({n for n in rule_names if rule_names.count(n) > 1})
        if twice:
            raise ValueError(f"quality.rules check names {twice} repeat; give the rules distinct 'name's")
        for index, rule in enumerate(self.quality.rules):
            column = getattr(rule, "column", None)
            if column is not None and column not in names:
                raise ValueError(
                    f"quality.rules[{index}] checks column '{column}', which is not in 'columns'; "
                    f"use one of {', '.join(names)}"
                )
            referenced = rule.kwargs.get("column") if isinstance(rule, ExpectationRule) else None
            if isinstance(referenced, str) and referenced not in names:
                raise ValueError(
                    f"quality.rules[{index}] expectation names column '{referenced}', not in 'columns'"
                )
        for field_name in ("columns", "exclude"):
            unknown = [c for c in getattr(self.monitors, field_name) or [] if c not in names]
            if unknown:
                raise ValueError(
                    f"monitors.{field_name} names {unknown}, not in 'columns'; use some of {', '.join(names)}"
                )
        time_column = self.monitors.time_column
        if time_column is not None:
            by_name = {c.name: c for c in self.columns}
            temporal = [c.name for c in self.columns if c.type in (LogicalType.DATE, LogicalType.TIMESTAMP)]
            if time_column not in by_name or time_column not in temporal:
                raise ValueError(
                    f"monitors.time_column '{time_column}' is not a date or timestamp column of 'columns'; "
                    f"use one of {', '.join(temporal) or '(none: add one, or drop time_column)'}"
                )
        if self.status == Status.DEPRECATED and self.deprecation is None:
            raise ValueError("a deprecated port needs 'deprecation' with sunset date, replacement and reason")
        problems = binding_problems(self.bindings, names)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SourceInput(SpecModel):
    """An input port on an operational source system's extract, which the product ingests."""

    source: str = Field(
        pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        description="`<system>.<extract>`, read from `data/sources/<system>/<extract>.<format>`.",
        examples=["crm.customers"],
    )
    format: Literal["csv", "parquet"] = Field(default="csv", description="File format of the extract.")
    description: str = Field(default="", description="What the extract holds.")

    @property
    def system(self) -> str:
        """The source system."""
        return self.source.split(".")[0]

    @property
    def extract(self) -> str:
        """The extract (table) within the system."""
        return self.source.split(".")[1]


class ProductInput(SpecModel):
    """An input port on another product's output port, by product and version range."""

    product: str = Field(
        description="`<domain>.<product>` of the producer. Only output ports may be named.",
        examples=["customers.customer_master"],
    )
    version: str = Field(
        default=">=1.0.0",
        description="Semver range the consumer accepts, e.g. `>=1.0.0,<2.0.0` or `^2`.",
    )
    purpose: str = Field(default="", description="What the consumer uses the port for.")
    preview: bool = Field(default=False, description="Opt in to reading a `beta` port.")
    via: Literal["table", "iceberg"] = Field(
        default="table",
        description="Where the consumer reads the port: `table` (its warehouse table) or `iceberg` (the "
        "port's Iceberg binding, which the port must declare; Python products only). The version range, "
        "approvals and PII protection apply alike.",
    )

    @field_validator("product")
    @classmethod
    def _dotted(cls, value: str) -> str:
        # Asset-key style (`customers/customer_master`) means the same product; one spelling downstream.
        return value.strip().replace("/", ".")


def _input_kind(value: object) -> str:
    # Discriminate on the key present so a typo reports one branch's errors, not both branches'.
    if isinstance(value, dict):
        return "source" if "source" in value else "product"
    return "source" if isinstance(value, SourceInput) else "product"


InputPort = Annotated[
    Annotated[SourceInput, Tag("source")] | Annotated[ProductInput, Tag("product")],
    Discriminator(_input_kind),
]


class SqlTransformation(SpecModel):
    """SQL files in the product folder: `<model>.sql`, templated with `input()`, `source()`, `ref()`."""

    kind: Literal["sql"] = Field(description="SQL statements run in the warehouse.")
    internals: list[Identifier] = Field(
        default_factory=list, description="Internal SQL models, built in order before the port."
    )


class ExternalAccess(SpecModel):
    """Why a Python product's code reaches files, connections or processes outside its declared inputs."""

    reason: str = Field(
        min_length=20,
        description="What the code reaches and why a declared input port or source cannot serve it; "
        "reviewed as code, and named by the `secure` fitness function.",
        examples=["loads the trained forecast model shipped beside transform.py (model.pkl)"],
    )


class PythonTransformation(SpecModel):
    """A Python module in the product folder whose functions build the port from its inputs."""

    kind: Literal["python"] = Field(description="pandas functions run by the platform.")
    module: str = Field(default="transform.py", description="Module file in the product folder.")
    external_access: ExternalAccess | None = Field(
        default=None,
        description="Set only when the code must open files or connections itself (the lint refuses them "
        "otherwise); the platform cannot see what Python code reaches at run time.",
    )


class DbtTransformation(SpecModel):
    """dbt models in a project under `dbt_projects/`."""

    kind: Literal["dbt"] = Field(description="Models of a dbt project run through dagster-dbt.")
    project: Identifier = Field(description="Folder name under `dbt_projects/`.")
    internals: list[Identifier] = Field(
        default_factory=list,
        description="dbt models, seeds and snapshots private to the product (staging, intermediate).",
    )
    vars: dict[str, Any] = Field(
        default_factory=dict,
        description="dbt vars passed (`--vars`) to every dbt invocation of the project, e.g. a var gating "
        "its seeds; every product of the project declares the same.",
        examples=[{"load_source_data": True}],
    )


Transformation = Annotated[
    SqlTransformation | PythonTransformation | DbtTransformation, Field(discriminator="kind")
]


class DataProductSpec(SpecModel):
    """A data product: the architectural quantum of the mesh, declared in `dataproduct.yaml`."""

    schema_ref: str | None = Field(
        default=None, alias="$schema", description="Path to the JSON Schema, for editor support."
    )
    name: Identifier = Field(description="Product name, unique in its domain.", examples=["customer_master"])
    domain: Identifier = Field(description="Owning domain; must match the folder.", examples=["customers"])
    title: str = Field(min_length=3, description="Human-readable name.")
    description: Description = Field(description="Purpose, usage and limitations.")
    owner: Owner = Field(description="Owner team and steward.")
    product_type: ProductType = Field(description="source-aligned, aggregate or consumer-aligned.")
    status: Status = Field(description="Lifecycle status of the product.")
    business_capability: str = Field(min_length=3, description="The business capability it serves.")
    classification: Classification = Field(description="Most sensitive class of data in the product.")
    access: Access = Field(description="Open, or approval required with approved consumers.")
    access_policy: AccessPolicy = Field(description="Who may or may not read; PII handling.")
    distribution_rights: DistributionRights = Field(description="Redistribution rights of consumers.")
    data_sharing_agreement: DataSharingAgreement = Field(description="Agreement governing consumption.")
    support: Support = Field(description="Support channel; SLO alerts go here.")
    slos: Slos = Field(description="Service-level objectives of every output port.")
    tags: list[str] = Field(default_factory=list, description="Free key words for discovery.")
    input_ports: list[InputPort] = Field(
        default_factory=list, description="Other products' output ports or source extracts the product reads."
    )
    transformation: Transformation = Field(description="How the product is built.")
    output_ports: list[OutputPort] = Field(
        min_length=1, description="Published ports, one per major version."
    )
    # The product's agreement files (`access/*.yaml`), attached by the registry when it reads them: not a
    # spec field (never in the schema or a dump), but read wherever the spec decides who may read.
    _agreements: tuple[Any, ...] = PrivateAttr(default=())

    @field_validator("tags")
    @classmethod
    def _tags_are_slugs(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.match(r"^[a-z0-9][a-z0-9_-]*$", tag):
                raise ValueError(f"tag '{tag}' must be lowercase letters, digits, '-' or '_'")
        return tags

    @model_validator(mode="after")
    def _one_port_per_major(self) -> DataProductSpec:
        majors = [p.major for p in self.output_ports]
        dupes = sorted({m for m in majors if majors.count(m) > 1})
        if dupes:
            raise ValueError(f"more than one output port for major version(s) {dupes}; one port per major")
        return self

    @property
    def key(self) -> str:
        """`<domain>.<product>`: the product's mesh-wide name."""
        return f"{self.domain}.{self.name}"

    def port_status(self, port: OutputPort) -> Status:
        """A port's effective status (its own, else the product's)."""
        return port.status or self.status

    def port_model(self, port: OutputPort) -> str:
        """The transformation model that builds a port."""
        return port.model or f"{self.name}_v{port.major}"

    @property
    def product_inputs(self) -> list[ProductInput]:
        """Input ports on other products."""
        return [i for i in self.input_ports if isinstance(i, ProductInput)]

    @property
    def source_inputs(self) -> list[SourceInput]:
        """Input ports on source-system extracts."""
        return [i for i in self.input_ports if isinstance(i, SourceInput)]


def json_schema() -> dict:
    """The JSON Schema of `dataproduct.yaml`, generated from the models (shipped for editors)."""
    schema = DataProductSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mesh.dev/schemas/dataproduct.schema.json"
    schema["title"] = "mesh data product"
    return schema
