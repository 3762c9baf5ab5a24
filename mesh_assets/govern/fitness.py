"""Fitness functions: the six characteristics of a data product, tested for every product of the mesh.

Each characteristic is a pure function of the registry (the specs) and, optionally, of facts the platform
observed (`Facts`: the built catalog, and what the Dagster instance recorded for each port). It returns a
`Verdict`: pass or fail, and the reason in words a product team can act on.

- **self-describing**: purpose, usage and limitations say something; every column's description says
  more than its name; every served port shows example values (a column's own `examples`, or those of the
  same column of the input port it comes from).
- **addressable**: every port has a unique, stable URI (`mesh://<domain>/<product>/v<major>`) and table,
  derived from where the spec lives.
- **discoverable**: at least `MIN_TAGS` key words; with catalog facts, the product is in the catalog and
  each key word finds it there.
- **secure**: an access policy (at least one reader role); deny by default (no catch-all role, nothing
  both allowed and denied); PII protected (classified confidential or above, every column that looks
  personal marked `pii`, PII read in clear text from an input still marked).
- **trustworthy**: SLOs declared; blocking contract checks (schema, key, row count) on every served port;
  with instance facts, no SLO breached now; no input port overdue for retirement (past its sunset: red,
  but not gating, since time alone never fails the mesh: moving to the replacement is the consumer's
  code change).
- **interoperable**: standard types (`*_at`/`*_ts` timestamp, `*_date` date, event time a date or
  timestamp); business keys (key columns not nullable; a column named like another product's business
  key has its type); every served port's contract validates against the ODCS JSON Schema.

`MANDATORY` is platform configuration: a product failing one of those fails `mesh fitness` (exit 1). The
others are reported, red when failing, but do not gate: the hard floor of self-description (purpose,
usage, limitations, a description per column) is already enforced by spec validation, and the catalog is
built after the fact.

Speed: the ODCS check validates contracts with the official JSON Schema, which takes tens of
milliseconds per contract. Two contracts that differ only in values the schema does not constrain
(descriptions, names, examples...) validate identically, so each distinct *shape* is validated once; the
analysis of which keys the schema constrains is done on the schema itself (`_OdcsShapes`), and any
failure is confirmed on the real document so errors always name real values.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_assets.product import access, addressing, lifecycle
from mesh_assets.product.registry import Product, Registry, effective_status
from mesh_assets.product.spec import Classification, LogicalType, OutputPort, Severity, Status

if TYPE_CHECKING:
    from mesh_assets.catalog.runtime import PortRuntime


class Characteristic(StrEnum):
    """The six characteristics of a data product (Dehghani's DAUTNIVS, minus "valuable on its own")."""

    SELF_DESCRIBING = "self_describing"
    ADDRESSABLE = "addressable"
    DISCOVERABLE = "discoverable"
    SECURE = "secure"
    TRUSTWORTHY = "trustworthy"
    INTEROPERABLE = "interoperable"

    @property
    def label(self) -> str:
        """How the characteristic is written for people."""
        return self.value.replace("_", "-")


MANDATORY: frozenset[Characteristic] = frozenset(
    {
        Characteristic.ADDRESSABLE,
        Characteristic.SECURE,
        Characteristic.TRUSTWORTHY,
        Characteristic.INTEROPERABLE,
    }
)
"""Characteristics every product must pass: `mesh fitness` exits 1 when one fails (platform config)."""
MIN_PURPOSE_CHARS = 40
"""A purpose shorter than this does not say why the product exists."""
MIN_TAGS = 2
"""Key words a product needs to be found by search."""
PLACEHOLDERS = frozenset({"", "-", "--", "...", "n/a", "na", "none", "tbd", "todo", "tba", "?", "xxx"})
"""Texts that say nothing."""
PII_NAME = re.compile(
    r"(^|_)(e_?mail|phone|mobile|fax|ssn|social_security|passport|birth_?date|date_of_birth|dob|iban|"
    r"ip_address|home_address|street_address|first_name|last_name|full_name|surname|national_id|tax_id)"
    r"($|_)"
)
"""Column names that hold personal data unless proven otherwise."""
SENSITIVE_ENOUGH_FOR_PII = frozenset({Classification.CONFIDENTIAL, Classification.RESTRICTED})
_TIMESTAMP_SUFFIXES = ("_at", "_ts")
_DATE_SUFFIXES = ("_date",)


@dataclass(frozen=True)
class Verdict:
    """One characteristic of one product: pass or fail, and why."""

    passed: bool
    reason: str
    gating: bool = True
    """Whether a failure may gate (`mesh fitness` exit 1). False when only the calendar made it red."""


@dataclass(frozen=True)
class Result:
    """A verdict for a named characteristic, and whether the platform makes it mandatory."""

    characteristic: Characteristic
    passed: bool
    reason: str
    mandatory: bool


# --- facts the platform observed (all optional) -----------------------------------------------------------


@dataclass(frozen=True)
class CatalogFacts:
    """What the built catalog holds: its search index (one entry per product) and its product pages."""

    path: Path
    built_at: datetime | None
    entries: Mapping[str, Mapping[str, Any]]
    pages: frozenset[str]
    """`<domain>.<product>` of every product page present."""

    @classmethod
    def read(cls, folder: Path) -> CatalogFacts | None:
        """The catalog at `folder` (`index.html` with its embedded search index), or None if not built."""
        index = folder / "index.html"
        if not index.exists():
            return None
        match = re.search(
            r'<script[^>]*id="search-index"[^>]*>(.*?)</script>', index.read_text("utf-8"), flags=re.S
        )
        entries = {e["key"]: e for e in json.loads(match[1])} if match else {}
        pages = frozenset(p.stem for p in (folder / "products").glob("*.html"))
        built = datetime.fromtimestamp(index.stat().st_mtime, tz=UTC)
        return cls(path=folder, built_at=built, entries=entries, pages=pages)


@dataclass(frozen=True)
class Facts:
    """Optional observations: the built catalog, and the Dagster instance's view of each port."""

    catalog: CatalogFacts | None = None
    runtime: Mapping[Any, PortRuntime] | None = None
    """Port asset key → `PortRuntime` (`catalog.runtime.read_runtime`)."""


NO_FACTS = Facts()


# --- what is computed once for the whole mesh -----------------------------------------------------------


@dataclass
class MeshIndex:
    """Mesh-wide lookups the characteristics share, computed once per evaluation."""

    uris: Counter[str] = field(default_factory=Counter)
    tables: Counter[str] = field(default_factory=Counter)
    business_keys: dict[str, dict[LogicalType, list[str]]] = field(default_factory=dict)
    """Column name → its type in each product whose port has it as the whole primary key."""

    @classmethod
    def of(cls, registry: Registry) -> MeshIndex:
        """Index every product of the registry."""
        index = cls()
        for product in registry.products.values():
            spec = product.spec
            for port in spec.output_ports:
                index.uris[addressing.port_uri(spec.domain, spec.name, port.major)] += 1
                index.tables[addressing.port_relation(spec.domain, spec.name, port.major).dotted.lower()] += 1
                if len(port.primary_key) == 1:
                    column = next(c for c in port.columns if c.name == port.primary_key[0])
                    owners = index.business_keys.setdefault(column.name, {}).setdefault(column.type, [])
                    if product.key not in owners:
                        owners.append(product.key)
        return index


def served_ports(product: Product, registry: Registry) -> list[OutputPort]:
    """The product's ports that are still served (not retired), newest first."""
    spec = product.spec
    return sorted(
        (p for p in spec.output_ports if effective_status(spec, p, registry.today) != Status.RETIRED),
        key=lambda p: -p.major,
    )


def _says_nothing(text: str) -> bool:
    return text.strip().lower().rstrip(".") in PLACEHOLDERS


def _restates(description: str, name: str) -> bool:
    words = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")
    return words == name or _says_nothing(description)


def _list(items: Iterable[str], limit: int = 4) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- the six characteristics -----------------------------------------------------------------------------


def self_describing(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> Verdict:
    """Purpose, usage and limitations; column descriptions that explain; example values on every port."""
    spec = product.spec
    problems = []
    if len(spec.description.purpose.strip()) < MIN_PURPOSE_CHARS:
        problems.append(
            f"its purpose is {len(spec.description.purpose.strip())} characters; say why it exists and what "
            f"question it answers in at least {MIN_PURPOSE_CHARS}"
        )
    for part in ("usage", "limitations"):
        if _says_nothing(getattr(spec.description, part)):
            problems.append(f"its {part} say nothing ('{getattr(spec.description, part)}')")
    ports = served_ports(product, registry)
    vague = sorted(
        {f"v{p.major}.{c.name}" for p in ports for c in p.columns if _restates(c.description, c.name)}
    )
    if vague:
        problems.append(f"column descriptions only restate the name: {_list(vague)}")
    inherited = _input_examples(product, registry)
    shown = []
    for port in ports:
        own = [c.name for c in port.columns if c.examples]
        borrowed = [c.name for c in port.columns if not c.examples and c.name in inherited]
        if own or borrowed:
            shown.append(f"v{port.major}: {_list(own + [f'{n} (from {inherited[n]})' for n in borrowed], 3)}")
            continue
        upstream = [i.product for i in spec.product_inputs]
        problems.append(
            f"v{port.major} shows no example values: none of its {len(port.columns)} columns has `examples`"
            + (f", and none takes them from its inputs ({', '.join(upstream)})" if upstream else "")
            + "; add examples to its key columns"
        )
    if problems:
        return Verdict(False, "; ".join(problems))
    columns = sum(len(p.columns) for p in ports)
    return Verdict(
        True,
        f"purpose, usage and limitations stated; all {columns} columns described; examples on "
        + "; ".join(shown),
    )


def _input_examples(product: Product, registry: Registry) -> dict[str, str]:
    """Column name → the input port (`<domain>.<product>`) whose same column shows examples."""
    found: dict[str, str] = {}
    for declared in product.spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None:
            continue
        for column in resolved.port.columns:
            if column.examples:
                found.setdefault(column.name, resolved.producer.key)
    return found


def addressable(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> Verdict:
    """Every port has a unique, stable URI and table, derived from the product's place in the mesh."""
    index = index or MeshIndex.of(registry)
    spec = product.spec
    problems = []
    folder = product.folder
    if folder.name != spec.name or folder.parent.parent.name != spec.domain:
        problems.append(
            f"the spec lives in domains/{folder.parent.parent.name}/products/{folder.name} but names itself "
            f"{spec.key}: its address would change when the mismatch is fixed"
        )
    uris = []
    for port in spec.output_ports:
        uri = addressing.port_uri(spec.domain, spec.name, port.major)
        table = addressing.port_relation(spec.domain, spec.name, port.major).dotted
        uris.append(uri)
        if index.uris[uri] > 1:
            problems.append(f"{uri} is claimed by {index.uris[uri]} ports")
        if index.tables[table.lower()] > 1:
            problems.append(f"table {table} is claimed by {index.tables[table.lower()]} ports")
    if problems:
        return Verdict(False, "; ".join(problems))
    return Verdict(
        True,
        f"{', '.join(uris)}: unique, and derived only from domain, name and major version (stable across "
        "warehouses and minor versions)",
    )


def discoverable(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> Verdict:
    """Key words to search by; with catalog facts, listed in the catalog and found by each key word."""
    spec = product.spec
    problems = []
    if len(spec.tags) < MIN_TAGS:
        problems.append(
            f"{len(spec.tags)} key word(s) in tags; give at least {MIN_TAGS} that people would search for"
        )
    catalog = facts.catalog
    where = "catalog not checked (not built)"
    if catalog is not None:
        entry = catalog.entries.get(product.key)
        built = f" built {catalog.built_at:%Y-%m-%d %H:%M} UTC" if catalog.built_at else ""
        if entry is None or product.key not in catalog.pages:
            problems.append(
                f"not in the catalog{built} at {catalog.path}; rebuild it with `mesh catalog build`"
            )
        else:
            haystack = " ".join(
                [
                    str(entry.get("key", "")),
                    str(entry.get("title", "")),
                    str(entry.get("text", "")),
                    " ".join(entry.get("tags", [])),
                    " ".join(entry.get("columns", [])),
                ]
            ).lower()
            missing = [t for t in spec.tags if t.lower() not in haystack]
            if missing:
                problems.append(
                    f"the catalog{built} does not find it by {', '.join(missing)} (stale); rebuild it"
                )
            else:
                where = f"in the catalog{built}, found by each key word"
    if problems:
        return Verdict(False, "; ".join(problems))
    return Verdict(True, f"key words {', '.join(spec.tags)}; {where}")


def secure(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> Verdict:
    """A policy naming its readers, deny by default, and PII classified, marked and protected."""
    spec = product.spec
    policy = spec.access_policy
    problems = []
    readers = access.reader_roles(spec)
    catch_all = [r for r in policy.allowed_roles if r.lower() in access.CATCH_ALL_ROLES]
    if catch_all:
        problems.append(f"allowed_roles has {', '.join(catch_all)}, which means everybody")
    denied = {r.lower() for r in policy.denied_roles}
    both = sorted(r for r in policy.allowed_roles if r.lower() in denied)
    if both:
        problems.append(f"{', '.join(both)} both allowed and denied")
    if not readers:
        problems.append(
            "no access policy: no role may read it (secure by default, but nobody can use it); "
            "name the reader roles in access_policy.allowed_roles"
        )
    ports = served_ports(product, registry)
    pii = sorted({c.name for p in ports for c in access.pii_columns(p)})
    if pii and spec.classification not in SENSITIVE_ENOUGH_FOR_PII:
        problems.append(
            f"holds PII ({', '.join(pii)}) but is classified {spec.classification.value}; personal data "
            "needs confidential or restricted"
        )
    unmarked = sorted(
        {f"v{p.major}.{c.name}" for p in ports for c in p.columns if not c.pii and PII_NAME.search(c.name)}
    )
    if unmarked:
        problems.append(f"{_list(unmarked)} look(s) like personal data but not marked pii: true")
    # PII read in clear text from an input must stay marked: the consumer republishes personal data.
    for declared in spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None or not access.pii_privilege(resolved.producer.spec, spec):
            continue
        upstream = {c.name for c in access.pii_columns(resolved.port)}
        lost = sorted(
            {f"v{p.major}.{c.name}" for p in ports for c in p.columns if c.name in upstream and not c.pii}
        )
        if lost:
            problems.append(
                f"{_list(lost)} come(s) in clear text from PII of {resolved.producer.key} but not marked pii"
            )
    if problems:
        return Verdict(False, "; ".join(problems))
    parts = [f"readers {', '.join(readers)}"]
    if policy.denied_roles:
        parts.append(f"denied {', '.join(policy.denied_roles)}")
    parts.append(
        "approval required"
        + (f" ({len(spec.access.approved_consumers)} approved)" if spec.access.approved_consumers else "")
        if spec.access.mode == "approval_required"
        else "open to products of the mesh"
    )
    if pii:
        parts.append(
            f"PII ({', '.join(pii)}) {policy.pii_handling.value} for readers without the PII privilege"
        )
    else:
        parts.append("no PII")
    return Verdict(True, "; ".join(parts))


def trustworthy(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> Verdict:
    """SLOs declared, blocking contract checks on every port, and (with instance facts) SLOs kept."""
    spec = product.spec
    slos = spec.slos
    problems = []
    ports = served_ports(product, registry)
    for port in ports:
        quality = port.quality
        weak = [
            name
            for name, severity in (("schema", quality.schema_severity), ("primary key", quality.key_severity))
            if severity != Severity.ERROR
        ]
        if weak:
            problems.append(f"v{port.major}'s {' and '.join(weak)} check(s) only warn; make them block")
        if quality.row_count.min < 1:
            problems.append(f"v{port.major} accepts an empty publish (row_count.min: 0)")
    freshness = slos.freshness.max_age or f"cron {slos.freshness.cron}"
    measured = "SLO adherence not measured (no Dagster instance facts)"
    if facts.runtime is not None:
        breached, known = [], 0
        for port in ports:
            runtime = facts.runtime.get(addressing.port_key(spec.domain, spec.name, port.major))
            for slo in runtime.slos if runtime is not None else []:
                if slo.status == "breached":
                    breached.append(f"v{port.major} {slo.name} ({slo.measured}; target {slo.target})")
                if slo.status != "unknown":
                    known += 1
        if breached:
            problems.append("SLO breached now: " + "; ".join(breached))
        measured = "every measured SLO met" if known else "no SLO measured yet (not yet published)"
    overdue, sunsets = _input_sunsets(product, registry)
    if problems:
        return Verdict(False, "; ".join([*problems, *overdue]))
    if overdue:
        # Red, but the date alone must not fail CI: the fix is the consumer's move, a gated code change.
        return Verdict(
            False, "; ".join(overdue) + " (red, not gating: time alone never fails the mesh)", False
        )
    rules = sum(len(p.quality.rules) for p in ports)
    return Verdict(
        True,
        f"SLOs: freshness {freshness}, availability {slos.availability:.1%}, quality "
        f"{slos.quality_pass_rate:.1%} over {slos.window}; blocking schema, key and row-count checks"
        + (f" and {rules} rule(s)" if rules else "")
        + f" on {len(ports)} port(s); {measured}"
        + "".join(f"; {s}" for s in sunsets),
    )


def _input_sunsets(product: Product, registry: Registry) -> tuple[list[str], list[str]]:
    """The product's inputs overdue for retirement, and those deprecated with a sunset ahead."""
    overdue, ahead = [], []
    for declared in product.spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None:
            continue
        spec, port = resolved.producer.spec, resolved.port
        days = lifecycle.days_to_sunset(spec, port, registry.today)
        if days is None or port.deprecation is None:
            continue
        read = f"reads {spec.key} v{port.major}"
        sunset, replacement = port.deprecation.sunset.isoformat(), port.deprecation.replacement
        if days < 0:
            overdue.append(
                f"{read}, overdue for retirement since its sunset {sunset}: move to v{replacement}"
            )
        else:
            ahead.append(f"{read}, deprecated: sunset {sunset} ({lifecycle.in_days(days)})")
    return overdue, ahead


def interoperable(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> Verdict:
    """Standard types, typed business keys, and contracts the ODCS standard accepts."""
    index = index or MeshIndex.of(registry)
    problems = []
    ports = served_ports(product, registry)
    for port in ports:
        for column in port.columns:
            where = f"v{port.major}.{column.name}"
            if column.name.endswith(_TIMESTAMP_SUFFIXES) and column.type != LogicalType.TIMESTAMP:
                problems.append(f"{where} is named like a timestamp but typed {column.type.value}")
            elif column.name.endswith(_DATE_SUFFIXES) and column.type != LogicalType.DATE:
                problems.append(f"{where} is named like a date but typed {column.type.value}")
            owners = index.business_keys.get(column.name, {})
            if owners and column.type not in owners:
                typed = "; ".join(f"{t.value} in {', '.join(keys)}" for t, keys in owners.items())
                problems.append(
                    f"{where} is typed {column.type.value}, but {column.name} is a business key ({typed})"
                )
        if port.event_time:
            kind = next(c.type for c in port.columns if c.name == port.event_time)
            if kind not in (LogicalType.DATE, LogicalType.TIMESTAMP):
                problems.append(f"v{port.major}'s event_time {port.event_time} is a {kind.value}")
        nullable_keys = [k for k in port.primary_key if next(c for c in port.columns if c.name == k).nullable]
        if nullable_keys:
            problems.append(
                f"v{port.major}'s key column(s) {', '.join(nullable_keys)} are nullable; set nullable: false"
            )
        errors = contract_errors(product, port, registry)
        if errors:
            problems.append(f"v{port.major}'s ODCS contract is invalid: {_list(errors, 2)}")
    if problems:
        return Verdict(False, "; ".join(problems))
    keys = "; ".join(f"v{p.major} key ({', '.join(p.primary_key)})" for p in ports)
    return Verdict(True, f"standard types; {keys}; ODCS contracts valid for {len(ports)} port(s)")


CHARACTERISTICS: dict[Characteristic, Callable[..., Verdict]] = {
    Characteristic.SELF_DESCRIBING: self_describing,
    Characteristic.ADDRESSABLE: addressable,
    Characteristic.DISCOVERABLE: discoverable,
    Characteristic.SECURE: secure,
    Characteristic.TRUSTWORTHY: trustworthy,
    Characteristic.INTEROPERABLE: interoperable,
}
"""Each characteristic's fitness function, in the order the scorecard shows them."""


# --- ODCS, validated once per shape ----------------------------------------------------------------------

_CONTENT = frozenset(
    {
        "const",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
        "contains",
    }
)
"""Keywords that look at a value's content (not only its type)."""
_COUNTING = frozenset({"uniqueItems", "maxItems", "minItems", "contains", "minContains", "maxContains"})
"""Keywords that look at how many items an array has, or whether they repeat."""
_SUBSCHEMAS = ("items", "anyOf", "oneOf", "allOf", "if", "then", "else", "not", "additionalProperties")
_ANNOTATIONS = frozenset({"type", "description", "title", "examples", "default", "deprecated", "$comment"})
_UNSUPPORTED = ("patternProperties", "propertyNames", "dependentSchemas", "$dynamicRef", "unevaluatedItems")
_PLACEHOLDER = "s"


@dataclass
class _Keys:
    """What the schema says of the values under each key name (in one scope: the root, or anywhere)."""

    constrained: set[str] = field(default_factory=set)
    """Keys whose values the schema looks at: kept as they are."""
    patterns: dict[str, list[str]] = field(default_factory=dict)
    """Keys constrained only by patterns: a matching value may be swapped for another matching one."""
    counting: set[str] = field(default_factory=set)
    """Keys whose arrays are counted or checked for repeats: never reduced."""
    items: dict[str, str | None] = field(default_factory=dict)
    """Keys whose arrays are plain `items: {$ref}` everywhere: the `$ref` (None when not everywhere)."""
    compiled: dict[str, list[re.Pattern[str]]] = field(default_factory=dict)
    """`patterns`, each once, compiled."""


class _OdcsShapes:
    """ODCS JSON Schema validation, memoised by shape.

    The official schema (draft 2019-09, `unevaluatedProperties`, many conditionals) takes tens of
    milliseconds per contract with `jsonschema`. Most of a contract is free text the schema never looks
    at, and most of its arrays hold items the schema validates one by one, so a contract is validated as
    *shapes*, each once per process:

    - values under keys the schema never constrains by content anywhere (descriptions, names, examples,
      custom property values...) become a placeholder of the same JSON type (`"s"`, 0);
    - values under keys constrained only by patterns (`id`) become a canonical value when they match
      every such pattern, and stay as they are otherwise;
    - keys constrained by content anywhere (enum, const, bounds...) keep their values;
    - an array under a key the schema describes everywhere as `{type: array, items: {$ref: X}}` (columns,
      quality rules, custom properties, roles...) is emptied in its parent and each item is validated
      against `X` on its own; other arrays keep their distinct items, unless counted or checked for
      repeats.

    The document's own top-level keys are judged by the root's `properties` alone (the root has no
    combinator), so a root `id` is free text while a nested `id` follows its pattern. Each replacement
    keeps a value valid exactly when it was, so the document is valid exactly when all its shapes are.
    If the schema uses a construct this analysis does not cover (pattern properties, `additionalProperties`
    schemas, root combinators...), every document is validated in full instead. A failure is always
    re-run on the real document, so error messages name real values.
    """

    def __init__(self) -> None:
        import jsonschema

        from mesh_assets.contracts import odcs

        schema = odcs.json_schema()
        self.cls = jsonschema.validators.validator_for(schema)
        self.schema = schema
        self.full = self.cls(schema)
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.anywhere = _Keys()
        self.root = _Keys()
        self.sound = self._analyse(schema)
        self.objects = {
            ref
            for keys in (self.anywhere, self.root)
            for ref in keys.items.values()
            if ref is not None and self.defs.get(ref.removeprefix("#/$defs/"), {}).get("type") == "object"
        }
        """Item schemas that are objects: only dicts can be validated against them."""
        self.anything = {ref: self._accepts_anything(ref) for ref in self.objects}
        """Item schema → its keys whose values may be anything (a custom property's `value`)."""
        self.validators: dict[str, Any] = {}
        self.canonical: dict[str, str] = {}
        self.valid: dict[str, bool] = {}
        self.validations = 0

    def _resolve(self, node: Any, seen: set[str]) -> list[dict[str, Any]]:
        """The subschema and every subschema it applies through $ref and combinators (not nested keys)."""
        found: list[dict[str, Any]] = []
        stack = [node]
        while stack:
            current = stack.pop()
            if not isinstance(current, dict):
                continue
            found.append(current)
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and ref not in seen:
                seen.add(ref)
                stack.append(self.defs.get(ref.removeprefix("#/$defs/")))
            for key in _SUBSCHEMAS:
                value = current.get(key)
                if isinstance(value, dict):
                    stack.append(value)
                elif isinstance(value, list):
                    stack.extend(value)
        return found

    def _constrain(self, name: str, sub: Any, keys: _Keys) -> None:
        reached = self._resolve(sub, set())
        keywords: set[str] = set().union(*(set(s) for s in reached))
        if keywords & _COUNTING:
            keys.counting.add(name)
        content = keywords & _CONTENT
        if content == {"pattern"}:
            keys.patterns.setdefault(name, []).extend(s["pattern"] for s in reached if "pattern" in s)
        elif content:
            keys.constrained.add(name)
        # Plain arrays of one referenced item schema, at every place the key is described.
        direct = sub if isinstance(sub, dict) else {}
        target = direct
        if set(direct) - _ANNOTATIONS == {"$ref"}:
            target = self.defs.get(str(direct["$ref"]).removeprefix("#/$defs/"), {})
        items = target.get("items") if isinstance(target, dict) else None
        plain = (
            isinstance(items, dict)
            and set(items) == {"$ref"}
            and target.get("type") == "array"
            and set(target) - _ANNOTATIONS == {"items"}
        )
        ref = items["$ref"] if plain and isinstance(items, dict) else None
        if name not in keys.items:
            keys.items[name] = ref
        elif keys.items[name] != ref:
            keys.items[name] = None

    def _analyse(self, schema: dict[str, Any]) -> bool:
        sound = not set(schema) & {"allOf", "anyOf", "oneOf", "if", "$ref", "not", "patternProperties"}
        stack: list[Any] = [schema]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            if any(k in node for k in _UNSUPPORTED) or isinstance(node.get("additionalProperties"), dict):
                sound = False
            properties = node.get("properties")
            if isinstance(properties, dict):
                for name, sub in properties.items():
                    self._constrain(name, sub, self.root if node is schema else self.anywhere)
                stack.extend(properties.values())
            stack.extend(v for k, v in node.items() if k != "properties")
        for keys in (self.anywhere, self.root):
            for name in keys.constrained:
                keys.patterns.pop(name, None)
            keys.compiled = {k: [re.compile(p) for p in dict.fromkeys(v)] for k, v in keys.patterns.items()}
        return sound

    def _accepts_anything(self, ref: str) -> frozenset[str]:
        """Keys of the object schema `ref` whose every description accepts any JSON value."""
        described: dict[str, list[Any]] = {}
        for schema in self._resolve({"$ref": ref}, set()):
            for name, sub in (schema.get("properties") or {}).items():
                described.setdefault(name, []).append(sub)
        return frozenset(
            name for name, subs in described.items() if all(self._is_anything(sub) for sub in subs)
        )

    def _is_anything(self, sub: Any) -> bool:
        if sub is True or sub == {}:
            return True
        if not isinstance(sub, dict):
            return False
        if set(sub) - _ANNOTATIONS == {"$ref"}:
            return self._is_anything(self.defs.get(str(sub["$ref"]).removeprefix("#/$defs/")))
        branches = sub.get("anyOf")
        if set(sub) - _ANNOTATIONS != {"anyOf"} or not isinstance(branches, list):
            return False
        # anyOf (not oneOf: an integer is also a number) of bare types covering every JSON type.
        types = set()
        for branch in branches:
            if not isinstance(branch, dict) or set(branch) - _ANNOTATIONS or "type" not in branch:
                return False
            types.add(branch["type"])
        return {"string", "number", "boolean", "null", "array", "object"} <= types

    def _validator(self, ref: str | None) -> Any:
        if ref is None:
            return self.full
        if ref not in self.validators:
            self.validators[ref] = self.cls(
                {"$schema": self.schema.get("$schema"), "$defs": self.defs, "$ref": ref}
            )
        return self.validators[ref]

    def _leaf(self, key: str | None, value: Any, keys: _Keys) -> Any:
        if key is None or key in keys.constrained:
            return value
        if isinstance(value, str):
            patterns = keys.compiled.get(key)
            if patterns is None:
                return _PLACEHOLDER
            if all(p.search(value) for p in patterns):
                return self.canonical.setdefault(f"{id(keys)}:{key}", value)
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return 0
        return value

    def shape(
        self,
        value: Any,
        parts: list[tuple[str | None, Any]],
        key: str | None = None,
        keys: _Keys | None = None,
        ref: str | None = None,
    ) -> Any:
        """`value` reduced to its shape; arrays validated item by item are appended to `parts`.

        `ref`: the object schema `value` is validated against (an item of a split array), whose keys
        that accept anything are reduced to a placeholder without looking inside.
        """
        if isinstance(value, dict):
            scope = self.root if keys is None and key is None else self.anywhere
            free = self.anything.get(ref, frozenset()) if ref is not None else frozenset()
            shaped: dict[str, Any] = {}
            # Scalars are handled inline: this loop runs for every node of every contract.
            for k, v in value.items():
                kind = type(v)
                if k in free:
                    shaped[k] = _PLACEHOLDER
                elif kind is dict or kind is list:
                    shaped[k] = self.shape(v, parts, k, scope)
                elif k in scope.constrained or kind is bool or v is None:
                    shaped[k] = v
                elif kind is str and k not in scope.compiled:
                    shaped[k] = _PLACEHOLDER
                else:
                    shaped[k] = self._leaf(k, v, scope)
            return shaped
        keys = keys or self.anywhere
        if isinstance(value, list):
            ref = keys.items.get(key) if key is not None else None
            # A free-form value may reuse a described key's name (a quality rule's `properties` list of
            # column names): items that cannot be the described objects are not split.
            if (
                ref is not None
                and key not in keys.counting
                and (ref not in self.objects or all(isinstance(item, dict) for item in value))
            ):
                for item in value:
                    # A dict item is a document of its own ($ref X); a scalar keeps its key's rules.
                    if isinstance(item, dict):
                        parts.append((ref, self.shape(item, parts, None, self.anywhere, ref)))
                    else:
                        parts.append((ref, self._leaf(key, item, keys)))
                return []
            items = [self.shape(v, parts, key, keys) for v in value]
            if len(items) < 2 or key is None or key in keys.counting or key in keys.constrained:
                return items
            distinct: dict[str, Any] = {}
            for item in items:
                distinct.setdefault(json.dumps(item, separators=(",", ":")), item)
            return list(distinct.values())
        return self._leaf(key, value, keys)

    def _check(self, ref: str | None, document: Any) -> bool:
        # Key order is the contract builder's, the same for every contract: no need to sort.
        key = json.dumps([ref, document], separators=(",", ":"))
        known = self.valid.get(key)
        if known is None:
            self.validations += 1
            known = self.valid[key] = self._validator(ref).is_valid(document)
        return known

    def errors(self, document: dict[str, Any]) -> list[str]:
        """Where the document breaks the ODCS JSON Schema (real values), empty when valid."""
        if self.sound:
            parts: list[tuple[str | None, Any]] = []
            root = self.shape(document, parts)
            if self._check(None, root) and all(self._check(ref, part) for ref, part in parts):
                return []
        self.validations += 1
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(self.full.iter_errors(document), key=lambda e: list(map(str, e.path)))
        ]


@cache
def _shapes() -> _OdcsShapes:
    return _OdcsShapes()


def contract_errors(product: Product, port: OutputPort, registry: Registry | None = None) -> list[str]:
    """Why the port's ODCS contract cannot be exported, empty when it builds and validates."""
    from mesh_assets.contracts import odcs

    try:
        document = odcs.contract(product, port, registry)
    except Exception as exc:  # a spec the exporter cannot translate: that is the finding
        return [f"the contract cannot be built: {exc}"]
    return _shapes().errors(document)


def odcs_validations() -> int:
    """How many JSON Schema validations the ODCS check has run in this process (shapes are memoised)."""
    return _shapes().validations if _shapes.cache_info().currsize else 0


# --- the scorecard ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductFitness:
    """Every characteristic of one product."""

    key: str
    domain: str
    name: str
    status: str
    results: tuple[Result, ...]

    @property
    def fit(self) -> bool:
        """Passes every characteristic."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Result]:
        """The characteristics it fails."""
        return [r for r in self.results if not r.passed]

    @property
    def mandatory_failures(self) -> list[Result]:
        """The mandatory characteristics it fails."""
        return [r for r in self.results if not r.passed and r.mandatory]

    def result(self, characteristic: Characteristic) -> Result:
        """The result of one characteristic."""
        return next(r for r in self.results if r.characteristic == characteristic)


@dataclass(frozen=True)
class Scorecard:
    """The fitness of every product of the mesh."""

    products: tuple[ProductFitness, ...]
    mandatory: frozenset[Characteristic]
    facts: dict[str, str]
    """What the evaluation could observe beyond the specs (catalog, instance)."""
    unreadable: tuple[str, ...] = ()
    """Products whose spec does not parse: not scored, and they fail the mesh."""

    @property
    def passed(self) -> bool:
        """No product fails a mandatory characteristic, and every spec parses."""
        return not self.unreadable and all(not p.mandatory_failures for p in self.products)

    def summary(self) -> str:
        """One line for people."""
        fit = sum(p.fit for p in self.products)
        blocking = sum(bool(p.mandatory_failures) for p in self.products)
        text = (
            f"{len(self.products)} products: {fit} fit, {len(self.products) - fit} with red characteristics, "
            f"{blocking} failing a mandatory one"
        )
        if self.unreadable:
            text += f"; {len(self.unreadable)} spec(s) do not parse ({', '.join(self.unreadable)})"
        return text

    def domains(self) -> list[tuple[str, list[ProductFitness]]]:
        """Products grouped by domain, both sorted."""
        grouped: dict[str, list[ProductFitness]] = {}
        for product in self.products:
            grouped.setdefault(product.domain, []).append(product)
        return sorted(grouped.items())

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain data (the `--json` output)."""
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "mandatory": sorted(c.value for c in self.mandatory),
            "facts": self.facts,
            "unreadable": list(self.unreadable),
            "products": [
                {
                    "key": p.key,
                    "domain": p.domain,
                    "status": p.status,
                    "fit": p.fit,
                    "mandatory_failures": [r.characteristic.value for r in p.mandatory_failures],
                    "characteristics": {
                        r.characteristic.value: {
                            "passed": r.passed,
                            "mandatory": r.mandatory,
                            "reason": r.reason,
                        }
                        for r in p.results
                    },
                }
                for p in self.products
            ],
        }

    def to_json(self) -> str:
        """`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def markdown(self) -> str:
        """The red/green table per domain, then the reason of every red cell (for the Dagster UI)."""
        header = ["product", "status", *(_header(c, self.mandatory) for c in CHARACTERISTICS)]
        lines = [
            f"**{self.summary()}.** Mandatory characteristics are marked *; "
            f"{'; '.join(f'{k}: {v}' for k, v in self.facts.items())}.",
            "",
        ]
        for domain, products in self.domains():
            lines += [f"### {domain}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for product in products:
                cells = ["🟢" if r.passed else "🔴" for r in product.results]
                lines.append(f"| {product.name} | {product.status} | " + " | ".join(cells) + " |")
            lines.append("")
        red = [(p, r) for p in self.products for r in p.failures]
        if red:
            lines += ["### Why red", ""]
            lines += [
                f"- **{p.key}** {r.characteristic.label}{' (mandatory)' if r.mandatory else ''}: {r.reason}"
                for p, r in red
            ]
        return "\n".join(lines).rstrip() + "\n"

    def html(self, catalog_href: str | None = None) -> str:
        """A self-contained, shareable HTML page of the scorecard (no script, no external resource)."""
        return _html(self, catalog_href)


def _header(characteristic: Characteristic, mandatory: frozenset[Characteristic]) -> str:
    return characteristic.label + ("*" if characteristic in mandatory else "")


def evaluate_product(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> ProductFitness:
    """Every characteristic of one product."""
    index = index or MeshIndex.of(registry)
    results = []
    for characteristic, function in CHARACTERISTICS.items():
        verdict = function(product, registry, facts, index)
        mandatory = characteristic in MANDATORY and verdict.gating
        results.append(Result(characteristic, verdict.passed, verdict.reason, mandatory))
    spec = product.spec
    return ProductFitness(product.key, spec.domain, spec.name, spec.status.value, tuple(results))


def evaluate(registry: Registry, facts: Facts | None = None) -> Scorecard:
    """The scorecard of every product of the registry."""
    facts = facts or NO_FACTS
    index = MeshIndex.of(registry)
    products = tuple(
        evaluate_product(registry.products[key], registry, facts, index) for key in sorted(registry.products)
    )
    observed = {
        "catalog": (
            f"{facts.catalog.path} (built {facts.catalog.built_at:%Y-%m-%d %H:%M} UTC)"
            if facts.catalog is not None and facts.catalog.built_at is not None
            else "not checked"
        ),
        "instance": "SLO status of every port" if facts.runtime is not None else "not checked",
    }
    return Scorecard(products, MANDATORY, observed, tuple(sorted(registry.unreadable)))


_CSS = " ".join(
    [
        'body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;',
        "color:#1f2328;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}",
        "table{border-collapse:collapse;width:100%}th,td{border:1px solid #d0d7de;padding:.45rem .6rem;",
        "text-align:left;vertical-align:top}th{background:#f6f8fa}td.pass{background:#dafbe1;color:#116329}",
        "td.fail{background:#ffebe9;color:#82071e;font-weight:600}.summary{font-size:1.05rem}",
        ".muted{color:#59636e;font-size:.9rem}ul.why li{margin:.35rem 0}",
    ]
)


def _html(scorecard: Scorecard, catalog_href: str | None) -> str:
    esc = html.escape
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    observed = "; ".join(f"{k}: {v}" for k, v in scorecard.facts.items())
    head = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Mesh scorecard</title><style>{_CSS}</style></head><body>",
        "<h1>Data product fitness scorecard</h1>",
        f'<p class="summary">{esc(scorecard.summary())}.</p>',
        '<p class="muted">Mandatory characteristics are marked *: a product failing one fails '
        f"<code>mesh fitness</code>. Observed: {esc(observed)}. Generated {generated}. Hover a cell for "
        "the reason.</p>",
    ]
    body = []
    for domain, products in scorecard.domains():
        body.append(f"<h2>{esc(domain)}</h2><table><thead><tr><th>product</th><th>status</th>")
        body += [f"<th>{esc(_header(c, scorecard.mandatory))}</th>" for c in CHARACTERISTICS]
        body.append("</tr></thead><tbody>")
        for product in products:
            name = esc(product.name)
            if catalog_href is not None:
                name = f'<a href="{esc(catalog_href)}/products/{esc(product.key)}.html">{name}</a>'
            body.append(f"<tr><td>{name}</td><td>{esc(product.status)}</td>")
            for result in product.results:
                css, mark = ("pass", "pass") if result.passed else ("fail", "FAIL")
                body.append(f'<td class="{css}" title="{esc(result.reason)}">{mark}</td>')
            body.append("</tr>")
        body.append("</tbody></table>")
    red = [(p, r) for p in scorecard.products for r in p.failures]
    if red:
        body.append('<h2>Why red</h2><ul class="why">')
        body += [
            f"<li><strong>{esc(p.key)}</strong> {esc(r.characteristic.label)}"
            f"{' (mandatory)' if r.mandatory else ''}: {esc(r.reason)}</li>"
            for p, r in red
        ]
        body.append("</ul>")
    body.append('<h2>Why green</h2><ul class="why">')
    body += [
        f"<li><strong>{esc(p.key)}</strong> {esc(r.characteristic.label)}: {esc(r.reason)}</li>"
        for p in scorecard.products
        for r in p.results
        if r.passed
    ]
    body.append("</ul></body></html>")
    return "\n".join(head + body) + "\n"
