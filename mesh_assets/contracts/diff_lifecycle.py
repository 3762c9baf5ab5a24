"""A port's lifecycle between two versions: retired, deprecated, restricted, removed, and what allows
a breaking change in place (a draft, a beta, a 0.x minor)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from mesh_assets.contracts.diff_consumers import readers
from mesh_assets.contracts.diff_rules import Change, Consumer, Rule
from mesh_assets.product.registry import effective_status
from mesh_assets.product.spec import DataProductSpec, OutputPort, Status
from mesh_assets.product.versions import Semver, major_of


def _replacement_served(spec: DataProductSpec, replacement: str, today: date) -> bool:
    """Whether the major a deprecation points to is published and still served (deprecated counts)."""
    major = major_of(replacement)
    target = next((p for p in spec.output_ports if p.major == major), None)
    return target is not None and effective_status(spec, target, today) in {
        Status.ACTIVE,
        Status.BETA,
        Status.DEPRECATED,
    }


def diff_status(
    base_spec: DataProductSpec,
    head_spec: DataProductSpec,
    before: OutputPort,
    after: OutputPort,
    consumers: list[Consumer],
    today: date,
) -> list[Change]:
    """Lifecycle changes of one port: retired, deprecated, restricted to preview or to its domain."""
    key, port = head_spec.key, f"v{after.major}"
    old, new = effective_status(base_spec, before, today), effective_status(head_spec, after, today)
    changes: list[Change] = []

    def add(rule: Rule, breaking: bool, reason: str, affected: Sequence[Consumer], **extra: Any) -> None:
        changes.append(Change(key, port, None, rule, breaking, reason, consumers=tuple(affected), **extra))

    dep = after.deprecation
    if new == Status.RETIRED and old != Status.RETIRED:
        # Only this code change retires a port (a passed sunset never does), so it is gated here.
        add(
            Rule.PORT_RETIRED,
            bool(consumers),
            f"{port} retired: "
            + (
                f"{len(consumers)} consumer(s) still read it and would be refused"
                if consumers
                else "no consumer reads it"
            ),
            consumers,
            fix="move the consumers first; until then keep it deprecated (past its sunset it stays served, "
            "overdue for retirement)",
        )
    elif new == Status.DRAFT and old != Status.DRAFT:
        outside = [c for c in consumers if c.domain != head_spec.domain]
        add(
            Rule.STATUS_RESTRICTED,
            bool(outside),
            f"status {old} -> draft: readable only inside domain '{head_spec.domain}'",
            outside,
        )
    elif new == Status.BETA and old in {Status.ACTIVE, Status.DEPRECATED}:
        refused = [c for c in consumers if c.domain != head_spec.domain and not c.preview]
        add(
            Rule.STATUS_RESTRICTED,
            bool(refused),
            f"status {old} -> beta: only consumers with preview: true may read it",
            refused,
        )
    elif new == Status.DEPRECATED and old != Status.DEPRECATED and dep is not None:
        add(
            Rule.PORT_DEPRECATED,
            False,
            f"{port} deprecated: served until {dep.sunset.isoformat()}, then retired; consumers move to "
            f"v{dep.replacement} ({dep.reason})",
            consumers,
            warning=True,
        )
    elif new != old:
        add(Rule.STATUS_CHANGED, False, f"status {old} -> {new}", ())
    if new == Status.DEPRECATED and dep is not None:
        # Report a dangling replacement when this diff causes it, not on every diff after.
        was_dangling = (
            old == Status.DEPRECATED
            and before.deprecation is not None
            and not _replacement_served(base_spec, before.deprecation.replacement, today)
        )
        if not _replacement_served(head_spec, dep.replacement, today) and not was_dangling:
            add(
                Rule.REPLACEMENT_MISSING,
                bool(consumers),
                f"deprecated in favour of v{dep.replacement}, which is not a served port of {key}",
                consumers,
                warning=not consumers,
                fix=f"publish v{dep.replacement} or name a served version",
            )
        old_dep = before.deprecation
        if old == Status.DEPRECATED and old_dep is not None and dep.sunset != old_dep.sunset:
            earlier = dep.sunset < old_dep.sunset
            passed = " (already past: overdue for retirement at once)" if dep.sunset < today else ""
            add(
                Rule.SUNSET_EARLIER if earlier else Rule.SUNSET_CHANGED,
                earlier and bool(consumers),
                f"sunset {old_dep.sunset.isoformat()} -> {dep.sunset.isoformat()}{passed}"
                + (": consumers get less time to move" if earlier else " (more time to move)"),
                consumers if earlier else (),
                warning=earlier and not consumers,
            )
    return changes


def removed_port(
    spec: DataProductSpec, port: OutputPort, consumers: list[Consumer], today: date, moved_to: str | None
) -> Change:
    """A port gone from the spec (or moved with its product to `moved_to`), judged by who still reads it."""
    status = effective_status(spec, port, today)
    address = f"mesh://{spec.domain}/{spec.name}/v{port.major}"
    if moved_to is not None:
        domain, name = moved_to.split(".")
        what = f"port {address} ({port.version}, {status}) moved? to mesh://{domain}/{name}/v{port.major}"
        rule = Rule.PRODUCT_MOVED
    else:
        what = f"port {address} ({port.version}, {status}) removed"
        rule = Rule.PORT_REMOVED
    if status == Status.RETIRED:
        # Retired by an earlier change, already refused to everyone (`mesh validate` fails its remaining
        # consumers): removing it changes nothing for them. A port merely past its sunset is still
        # served, so removing it while consumers read it is breaking (below).
        return Change(
            spec.key,
            f"v{port.major}",
            None,
            rule,
            False,
            f"{what}: it was retired"
            + (f"; {len(consumers)} consumer(s) still declare it and are refused" if consumers else ""),
            consumers=tuple(consumers),
        )
    if consumers:
        return Change(
            spec.key,
            f"v{port.major}",
            None,
            rule,
            True,
            f"{what}: {len(consumers)} consumer(s) still read it",
            consumers=tuple(consumers),
            fix=f"keep v{port.major} (deprecate it with a sunset date) until its consumers moved",
        )
    if status == Status.ACTIVE:
        # No consumer in the mesh, but an active address is a promise to every reader (dashboards,
        # notebooks): it goes away through deprecation, not overnight.
        return Change(
            spec.key,
            f"v{port.major}",
            None,
            rule,
            True,
            f"{what}: it is active, so readers outside the mesh lose it without notice",
            fix=f"deprecate v{port.major} with a sunset date first, remove it after",
        )
    return Change(spec.key, f"v{port.major}", None, rule, False, f"{what}: no consumer reads it")


def removed_product(
    spec: DataProductSpec, consumer_specs: Sequence[DataProductSpec], today: date, moved_to: str | None
) -> list[Change]:
    """Every port of a product gone from the mesh (or moved to `moved_to`), as `removed_port` judges it."""
    by_major = readers(consumer_specs, spec.key, spec.output_ports)
    return [removed_port(spec, p, by_major.get(p.major, []), today, moved_to) for p in spec.output_ports]


def allowance(spec: DataProductSpec, before: OutputPort, after: OutputPort, today: date) -> str | None:
    """Why a breaking change to a port in place is acceptable, if it is."""
    status = effective_status(spec, before, today)
    if status == Status.RETIRED:
        return "port is retired"
    if status == Status.DRAFT:
        return "port is a draft"
    if status == Status.BETA:
        return "port is in beta"  # preview consumers accepted a port that may still change
    if before.major == 0 and Semver.parse(after.version).minor > Semver.parse(before.version).minor:
        return f"in new minor {after.version} (0.x)"  # semver: below 1.0.0 a minor may break
    return None
