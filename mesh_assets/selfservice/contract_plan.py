"""What a new product reads (`--input`, `--source`) and the contract it starts from.

The first input's columns (and the rules that still hold for them) start the contract; further inputs
whose key is a column of the first are joined; PII columns of other products are left out.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh_assets.product import kinds
from mesh_assets.product.registry import Product, Registry, effective_status
from mesh_assets.product.spec import IDENTIFIER, LogicalType, OutputPort, Status
from mesh_assets.product.sql_text import quote_literal
from mesh_assets.selfservice.errors import ScaffoldError
from mesh_assets.selfservice.yaml_style import Flow, FlowMap

# Rules that keep holding for a column passed through unchanged; the rest name other columns or ports.
_INHERITED_RULES = {"accepted_values", "range", "pattern", "length"}
_RULE_TAIL = ("severity", "description")


@dataclass
class InputChoice:
    """A declared `--input`: the producer, the port it resolves to, and the input port entry."""

    reference: str
    producer: Product
    port: OutputPort
    entry: dict[str, Any]

    @property
    def alias(self) -> str:
        """The name it goes by in the starting query."""
        return self.producer.spec.name


@dataclass
class SourceChoice:
    """A declared `--source`: the extract's file and its columns (as landed: text)."""

    source: str
    path: Path
    file_format: str
    columns: list[str]

    @property
    def alias(self) -> str:
        """The name it goes by in the starting query."""
        return self.source.split(".")[1]


def resolve_input(registry: Registry, reference: str, consumer: str) -> InputChoice:
    """An `--input <domain>.<product>[@<major>]` of the product `consumer` (`<domain>.<product>`),
    resolved to the port it would read; a refusal naming the fix otherwise."""
    from mesh_assets.product import access

    consumer_domain = consumer.split(".")[0]
    text = reference.strip().replace("/", ".")
    major: int | None = None
    if "@" in text:
        text, _, wanted = text.partition("@")
        if not wanted.lstrip("v").isdigit():
            raise ScaffoldError(f"--input {reference}: write the major version as a number, e.g. {text}@2")
        major = int(wanted.lstrip("v"))
    producer = registry.products.get(text)
    if producer is None:
        close = difflib.get_close_matches(text, registry.products, n=3)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "known products: " + ", ".join(sorted(registry.products))
        )
        if text in registry.unreadable:
            hint = f"its spec is invalid: run `mesh validate` and fix {text} first"
        raise ScaffoldError(f"--input {reference}: no product '{text}' in the mesh; {hint}")
    spec = producer.spec
    live = [
        p
        for p in spec.output_ports
        if effective_status(spec, p, registry.today) not in {Status.RETIRED}
        and (major is None or p.major == major)
    ]
    if not live:
        served = ", ".join(
            f"v{p.major} ({effective_status(spec, p, registry.today)})" for p in spec.output_ports
        )
        raise ScaffoldError(f"--input {reference}: {spec.key} serves no such port; it has {served}")
    current = [p for p in live if effective_status(spec, p, registry.today) != Status.DEPRECATED]
    port = max(current or live, key=lambda p: p.major)
    status = effective_status(spec, port, registry.today)
    entry: dict[str, Any] = {
        "product": spec.key,
        "version": f"^{port.major}",
        "purpose": f"Read {spec.title} (v{port.major}).",
    }
    same_domain = spec.domain == consumer_domain
    if status == Status.DRAFT and not same_domain:
        raise ScaffoldError(
            f"--input {reference}: {spec.key} v{port.major} is a draft, readable only inside domain "
            f"'{spec.domain}'; wait until it is beta or active, or ask {spec.owner.steward}"
        )
    if status == Status.BETA and not same_domain:
        entry["preview"] = True  # reading a beta port is an explicit opt-in; the flag says so
    decision = access.consumer_may_read(spec, consumer, port.major)
    if not decision.allowed:
        raise ScaffoldError(
            f"--input {reference}: {decision.reason}; run "
            f"`{access.request_command(spec.key, port.major, consumer)}` and have {access.ask_owner(spec)} "
            "approve it"
        )
    return InputChoice(reference=spec.key, producer=producer, port=port, entry=entry)


def resolve_source(source: str, sources_dir: Path) -> SourceChoice:
    """A `--source <system>.<extract>`: its extract file under the sources folder, and its columns."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", source):
        raise ScaffoldError(f"--source {source}: write <system>.<extract> in lowercase, e.g. crm.customers")
    system, extract = source.split(".")
    for file_format in ("csv", "parquet"):
        path = sources_dir / system / f"{extract}.{file_format}"
        if path.exists():
            import duckdb

            quoted = quote_literal(path)
            reader = (
                f"read_csv({quoted}, header = true, all_varchar = true)"
                if file_format == "csv"
                else f"read_parquet({quoted})"
            )
            columns = [row[0] for row in duckdb.sql(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
            bad = [c for c in columns if not re.fullmatch(IDENTIFIER, c)]
            if bad:
                raise ScaffoldError(
                    f"--source {source}: columns {', '.join(bad)} of {path} are not lowercase identifiers; "
                    "rename them in the export"
                )
            return SourceChoice(source, path, file_format, columns)
    known = sorted(
        f"{s.name}.{f.stem}"
        for s in (sources_dir.iterdir() if sources_dir.is_dir() else [])
        if s.is_dir()
        for f in s.iterdir()
        if f.suffix in {".csv", ".parquet"}
    )
    close = difflib.get_close_matches(source, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ScaffoldError(
        f"--source {source}: no extract at {sources_dir / system / extract}.csv (or .parquet); {hint}"
        "generate the example extracts with `mesh generate`, or point MESH_SOURCES_DIR at the export"
    )


@dataclass
class Contract:
    """The output port a product starts with, and how the starting query builds it."""

    columns: list[dict[str, Any]]
    primary_key: list[str]
    event_time: str | None = None
    rules: list[dict[str, Any]] = field(default_factory=list)
    joins: list[tuple[InputChoice, list[str], list[str]]] = field(default_factory=list)
    """Further inputs joined to the first: (input, join key, columns it adds)."""
    unjoined: list[InputChoice | SourceChoice] = field(default_factory=list)
    base: InputChoice | SourceChoice | None = None
    base_columns: list[str] = field(default_factory=list)
    dropped_pii: list[str] = field(default_factory=list)
    """`<input>.<column>` of PII columns the start leaves out."""

    @property
    def pii(self) -> bool:
        """Whether any column holds personal data."""
        return any(c.get("pii") for c in self.columns)


EXAMPLE_COLUMNS = [
    {
        "name": "id",
        "type": "bigint",
        "nullable": False,
        "unique": True,
        "description": "Identifier of the row (the starting query's sample rows).",
    },
    {"name": "name", "type": "string", "nullable": False, "description": "Display name of the row."},
    {
        "name": "updated_at",
        "type": "timestamp",
        "nullable": False,
        "description": "When the row was last updated.",
    },
]


def _column_entry(column: Any, *, kind: str, nullable: bool | None = None, unique: bool = False) -> dict:
    entry: dict[str, Any] = {"name": column.name, "type": column.type.value}
    if column.type == LogicalType.DECIMAL:
        if kinds.kind_of(kind).decimals_as_double:
            entry["type"] = "double"
        else:
            entry["precision"], entry["scale"] = column.precision, column.scale
    if not (column.nullable if nullable is None else nullable):
        entry["nullable"] = False  # nullable is the default; the example specs state only `false`
    if unique:
        entry["unique"] = True
    if column.pii:
        entry["pii"] = True
    entry["description"] = column.description
    if column.examples:
        entry["examples"] = Flow(column.examples)
    return entry


def plan_contract(
    kind: str, inputs: list[InputChoice], sources: list[SourceChoice], primary_key: list[str]
) -> Contract:
    """The starting contract: the first input's columns (and rules), plus those of joinable inputs."""
    if not inputs and not sources:
        contract = Contract(
            columns=[dict(c) for c in EXAMPLE_COLUMNS], primary_key=["id"], event_time="updated_at"
        )
    elif inputs:
        base = inputs[0]
        port = base.port
        single_key = port.primary_key if len(port.primary_key) == 1 else []
        # Data minimisation: a consumer reads another product's PII masked unless that product's owner
        # approves it by name, so PII columns are left out of the start (the key excepted).
        kept = [c for c in port.columns if not c.pii or c.name in port.primary_key]
        columns = [_column_entry(c, kind=kind, unique=c.unique or c.name in single_key) for c in kept]
        contract = Contract(
            columns=columns,
            primary_key=list(port.primary_key),
            event_time=port.event_time if port.event_time in {c.name for c in kept} else None,
            base=base,
            base_columns=[c.name for c in kept],
            dropped_pii=[f"{base.reference}.{c.name}" for c in port.columns if c not in kept],
        )
        taken = {c.name for c in port.columns}
        for other in [*inputs[1:]]:
            key = list(other.port.primary_key)
            if other.producer.key != base.producer.key and all(k in taken for k in key):
                # Its key is a column of the first input: a left join adds its attributes, one row each.
                added = [c for c in other.port.columns if c.name not in taken and not c.pii]
                contract.dropped_pii += [
                    f"{other.reference}.{c.name}" for c in other.port.columns if c.name not in taken and c.pii
                ]
                contract.columns += [_column_entry(c, kind=kind, nullable=True) for c in added]
                contract.joins.append((other, key, [c.name for c in added]))
                taken |= {c.name for c in added}
            else:
                contract.unjoined.append(other)
        contract.unjoined += sources
        included = {c["name"] for c in contract.columns}
        declared = {i.reference for i in inputs}
        for choice in [base, *(j[0] for j in contract.joins)]:
            for rule in choice.port.quality.rules:
                dumped = rule.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                data = {"type": rule.type, **{k: v for k, v in dumped.items() if k not in _RULE_TAIL}}
                data |= {k: dumped[k] for k in _RULE_TAIL if k in dumped}
                column = data.get("column")
                keep = rule.type in _INHERITED_RULES or (
                    rule.type == "references" and data["port"] in declared
                )
                if (
                    keep
                    and column in included
                    and rule.check_name not in {r.get("name") for r in contract.rules}
                ):
                    contract.rules.append(FlowMap(data))
    else:
        base_source = sources[0]
        key = primary_key or base_source.columns[:1]
        columns = [
            {
                "name": name,
                "type": "string",
                **({"nullable": False} if name in key else {}),
                **({"unique": True} if key == [name] else {}),
                "description": f"`{name}` of the {base_source.source} extract, as text.",
            }
            for name in base_source.columns
        ]
        contract = Contract(
            columns=columns, primary_key=key, base=base_source, base_columns=list(base_source.columns)
        )
        contract.unjoined += sources[1:]
    if primary_key:
        names = [c["name"] for c in contract.columns]
        unknown = [k for k in primary_key if k not in names]
        if unknown:
            raise ScaffoldError(
                f"--primary-key {','.join(unknown)}: not a column of the product; its columns are "
                + ", ".join(names)
            )
        contract.primary_key = list(primary_key)
        for column in contract.columns:
            if column["name"] in primary_key:
                column["nullable"] = False
    return contract
