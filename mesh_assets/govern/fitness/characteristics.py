"""The six fitness functions, one per characteristic: each a pure function of the registry and the facts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from mesh_assets.govern import pii_lineage
from mesh_assets.govern.fitness.contract_check import contract_errors
from mesh_assets.govern.fitness.facts import NO_FACTS, Facts, MeshIndex, served_ports
from mesh_assets.govern.fitness.verdicts import Characteristic, Verdict
from mesh_assets.product import access, addressing, lifecycle
from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import Classification, LogicalType, Severity

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
        table = addressing.published(spec, port).dotted
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
    named_after_pii: set[str] = set()
    for declared in spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None or not access.pii_privilege(resolved.producer.spec, spec, registry.today):
            continue
        upstream = {c.name for c in access.pii_columns(resolved.port)}
        lost = sorted(
            {f"v{p.major}.{c.name}" for p in ports for c in p.columns if c.name in upstream and not c.pii}
        )
        named_after_pii |= set(lost)
        if lost:
            problems.append(
                f"{_list(lost)} come(s) in clear text from PII of {resolved.producer.key} but not marked pii"
            )
    # The same, followed through column lineage: renamed or derived columns carry the PII too.
    carried = sorted({u.where for u in pii_lineage.unmarked_pii(product, registry)} - named_after_pii)
    if carried:
        problems.append(
            f"{_list(carried)} computed in clear from personal data (column lineage) but not marked pii"
        )
    # An agreement past its reassessment date is not ended by time (its consumer keeps reading), but its
    # owner has stopped confirming it: red until reassessed, and not gating, like a port past its sunset.
    registry.agreements  # noqa: B018 (reads the deferred agreement files of teams, once per registry)
    overdue = sorted(a.id for a in access.agreements_of(spec) if a.agreement.overdue(registry.today))
    unconfirmed = (
        [
            f"access agreement(s) {', '.join(overdue)} past their reassess-by date; confirm each with "
            "`mesh access approve <id> --by <owner> --reason ...` or revoke it"
        ]
        if overdue
        else []
    )
    if problems:
        return Verdict(False, "; ".join(problems + unconfirmed))
    if unconfirmed:
        return Verdict(False, unconfirmed[0] + " (red, not gating: time alone never fails the mesh)", False)
    parts = [f"readers {', '.join(readers)}"]
    if policy.denied_roles:
        parts.append(f"denied {', '.join(policy.denied_roles)}")
    approved = access.approved_products(spec, registry.today)
    parts.append(
        "approval required" + (f" ({len(approved)} agreement(s) in force)" if approved else "")
        if spec.access.mode == "approval_required"
        else "open to products of the mesh"
    )
    if pii:
        parts.append(
            f"PII ({', '.join(pii)}) {policy.pii_handling.value} for readers without the PII privilege"
        )
    else:
        parts.append("no PII")
    exception = getattr(spec.transformation, "external_access", None)
    if exception is not None:
        # Allowed, so not gating; red so the exception is seen wherever fitness is, not only in review.
        reason = f"its code reaches outside its inputs by exception ({exception.reason.rstrip('.')}), " + (
            "which the platform cannot see at run time (red, not gating: reviewed as code)"
        )
        return Verdict(False, "; ".join([*parts, reason]), False)
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
    # Open formats beyond the warehouse table count towards interoperability (reported, not required).
    bound = [f"v{p.major} {b.kind}" for p in ports for b in p.bindings]
    served = f"{len(bound)} binding(s) beyond the table: {', '.join(bound)}" if bound else "tables only"
    return Verdict(True, f"standard types; {keys}; ODCS contracts valid for {len(ports)} port(s); {served}")


CHARACTERISTICS: dict[Characteristic, Callable[..., Verdict]] = {
    Characteristic.SELF_DESCRIBING: self_describing,
    Characteristic.ADDRESSABLE: addressable,
    Characteristic.DISCOVERABLE: discoverable,
    Characteristic.SECURE: secure,
    Characteristic.TRUSTWORTHY: trustworthy,
    Characteristic.INTEROPERABLE: interoperable,
}
"""Each characteristic's fitness function, in the order the scorecard shows them."""
