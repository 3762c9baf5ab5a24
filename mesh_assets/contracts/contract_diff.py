"""Contract diff: what changed in each product's contract between a git ref and the working tree.

A port's contract is its schema (columns, types, nullability, uniqueness, primary key, event time,
quality severities) plus the product-wide promises every port carries (SLOs, classification, access,
access policy, distribution rights, data sharing agreement). Ports are compared by major version, since
a major is its own port with its own address: changing a major in place must stay compatible, while a
new major may change anything as long as the old one is kept or deprecated.

Every difference becomes a `Change`, breaking or not, with a reason. A breaking change is *blocking*
unless something allows it (it comes in a new major, the port is a draft or in beta, or 0.x bumped its
minor); `mesh contract diff` exits 1 on blocking changes. The functions over specs are pure; only
`read_specs_at` (git) and `diff_working_tree` touch the outside world.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from mesh_assets.contracts.diff_consumers import readers, unique_consumers
from mesh_assets.contracts.diff_git import read_specs_at
from mesh_assets.contracts.diff_lifecycle import allowance, diff_status, removed_port, removed_product
from mesh_assets.contracts.diff_promises import diff_promises
from mesh_assets.contracts.diff_report import DiffReport
from mesh_assets.contracts.diff_rules import Change, Consumer, Rule
from mesh_assets.contracts.diff_schema import diff_ports
from mesh_assets.contracts.diff_versions import bump_changes
from mesh_assets.product.registry import effective_status, load_registry
from mesh_assets.product.spec import DataProductSpec, OutputPort, Status
from mesh_assets.product.versions import Semver, satisfies


def _attach(changes: list[Change], consumers: Sequence[Consumer]) -> list[Change]:
    # Name the consumers on what can hurt them; listing them on every new description is noise.
    return [
        replace(c, consumers=tuple(consumers)) if (c.breaking or c.warning) and not c.consumers else c
        for c in changes
    ]


def _consumer_moves(
    consumer_specs: Sequence[DataProductSpec], base: DataProductSpec, head: DataProductSpec
) -> list[Change]:
    """Consumers whose range now resolves to another major (a new major inside an open range)."""
    changes = []
    for spec in consumer_specs:
        before = readers([spec], base.key, base.output_ports)
        after = readers([spec], head.key, head.output_ports)
        old = {c.version_range: m for m, cs in before.items() for c in cs}
        new = {c.version_range: (m, c) for m, cs in after.items() for c in cs}
        for version_range, (major, consumer) in new.items():
            if version_range in old and old[version_range] != major:
                changes.append(
                    Change(
                        head.key,
                        f"v{major}",
                        None,
                        Rule.CONSUMER_SWITCHES_MAJOR,
                        False,
                        f"{consumer.product} reads '{version_range}', which now resolves to v{major} "
                        f"instead of v{old[version_range]}: another contract",
                        warning=True,
                        consumers=(consumer,),
                        fix=f"pin the consumer to '^{old[version_range]}' or adopt v{major}",
                    )
                )
    return changes


def diff_specs(
    base: DataProductSpec | None,
    head: DataProductSpec | None,
    *,
    consumers: Iterable[DataProductSpec] = (),
    today: date | None = None,
) -> list[Change]:
    """Every change to one product's contract from `base` to `head` (either may be None: added/removed).

    `consumers` are the specs of the mesh as it will be (the working tree); they tell who reads each
    port and are named on the changes that affect them. `today` only words a sunset moved into the
    past: time never changes a verdict (a port past its sunset is still served until it is retired).
    """
    today = today or date.today()
    consumer_specs = list(consumers)
    if base is None and head is None:
        return []
    if base is None:
        assert head is not None
        majors = ", ".join(f"v{p.major} ({p.version})" for p in head.output_ports)
        return [Change(head.key, None, None, Rule.PRODUCT_ADDED, False, f"new product with ports {majors}")]
    if head is None:
        return removed_product(base, consumer_specs, today, None)

    key = head.key
    base_readers = readers(consumer_specs, key, base.output_ports)
    everyone = unique_consumers(c for cs in base_readers.values() for c in cs)
    product_changes = diff_promises(base, head, everyone)
    live = {effective_status(base, p, today) for p in base.output_ports}
    if not live & {Status.ACTIVE, Status.DEPRECATED}:
        # Product-wide promises bind once a port is active; drafts and betas may still change.
        product_changes = [replace(c, allowed="no active port") if c.breaking else c for c in product_changes]
    changes = list(product_changes)

    old_ports = {p.major: p for p in base.output_ports}
    new_ports = {p.major: p for p in head.output_ports}
    for major in sorted(old_ports.keys() | new_ports.keys()):
        before, after = old_ports.get(major), new_ports.get(major)
        affected = base_readers.get(major, [])
        if after is None:
            assert before is not None
            changes.append(removed_port(base, before, affected, today, None))
            continue
        if before is None:
            changes += _new_port(base, head, after)
            continue
        schema = _attach(diff_ports(key, before, after), affected)
        allowed = allowance(base, before, after, today)
        if allowed:
            schema = [replace(c, allowed=allowed) if c.breaking else c for c in schema]
        else:
            fix = (
                f"publish it as a new major v{major + 1} beside v{major} (keep v{major} or deprecate it)"
                if major > 0
                else f"bump the minor (0.{Semver.parse(before.version).minor + 1}.0) or publish v1"
            )
            schema = [replace(c, fix=c.fix or fix) if c.blocking else c for c in schema]
        lifecycle = diff_status(base, head, before, after, affected, today)
        excluded = [c for c in affected if not satisfies(after.version, c.version_range)]
        if excluded:
            lifecycle.append(
                Change(
                    key,
                    f"v{major}",
                    None,
                    Rule.CONSUMER_RANGE_EXCLUDED,
                    False,
                    f"{after.version} is outside the range of {len(excluded)} consumer(s), which then read "
                    "another port or none",
                    warning=True,
                    consumers=tuple(excluded),
                    fix="widen their version ranges",
                )
            )
        port_changes = schema + lifecycle
        changes += port_changes
        if effective_status(base, before, today) != Status.RETIRED:
            changes += bump_changes(key, before, after, port_changes + product_changes)
    changes += _consumer_moves(consumer_specs, base, head)
    return changes


def _new_port(base: DataProductSpec, head: DataProductSpec, port: OutputPort) -> list[Change]:
    """A new major: announced, and compared with the major it succeeds so the migration is documented."""
    key, major = head.key, port.major
    changes = [Change(key, f"v{major}", None, Rule.PORT_ADDED, False, f"new major v{major} ({port.version})")]
    previous = [p for p in base.output_ports if p.major < major]
    if previous:
        predecessor = max(previous, key=lambda p: p.major)
        changes += [
            replace(c, port=f"v{major}", allowed=f"in new major v{major}")
            for c in diff_ports(key, predecessor, port)
            if c.breaking
        ]
    return changes


def _latest_columns(spec: DataProductSpec) -> set[str]:
    return {c.name for c in max(spec.output_ports, key=lambda p: p.major).columns}


def _pair_moves(
    base: Mapping[str, DataProductSpec], head: Mapping[str, DataProductSpec], gone: list[str], new: list[str]
) -> dict[str, str]:
    """Guess renamed or moved products: same name in another domain, or (nearly) the same columns."""
    scored = []
    for old in gone:
        for candidate in new:
            if base[old].name == head[candidate].name:
                score = 1.0
            else:
                a, b = _latest_columns(base[old]), _latest_columns(head[candidate])
                score = len(a & b) / len(a | b)
            if score >= 0.8:
                scored.append((-score, old, candidate))
    moves: dict[str, str] = {}
    for _, old, candidate in sorted(scored):
        if old not in moves and candidate not in moves.values():
            moves[old] = candidate
    return moves


def diff_mesh(
    base: Mapping[str, DataProductSpec],
    head: Mapping[str, DataProductSpec],
    *,
    base_unreadable: Mapping[str, str] | None = None,
    head_unreadable: Mapping[str, str] | None = None,
    today: date | None = None,
) -> list[Change]:
    """Every contract change between two states of the mesh, keyed by `<domain>.<product>`.

    `*_unreadable` map products whose spec does not parse to why: unreadable at the base is reported
    and the product compared as new; unreadable in the working tree is blocking (it cannot be checked).
    """
    today = today or date.today()
    base_unreadable = base_unreadable or {}
    head_unreadable = head_unreadable or {}
    consumer_specs = list(head.values())
    gone = [k for k in base if k not in head and k not in head_unreadable]
    new = [k for k in head if k not in base and k not in base_unreadable]
    moves = _pair_moves(base, head, gone, new)
    moved_from = {v: k for k, v in moves.items()}
    changes: list[Change] = []
    for key in sorted(set(base) | set(head) | set(head_unreadable) | set(base_unreadable)):
        if key in head_unreadable:
            # Who it may break is known from the base, where it parsed: the ports its consumers read.
            readers_at_base = readers(consumer_specs, key, base[key].output_ports) if key in base else {}
            changes.append(
                Change(
                    key,
                    None,
                    None,
                    Rule.SPEC_UNREADABLE,
                    True,
                    f"the working-tree spec does not parse ({head_unreadable[key]}), so its "
                    "contract cannot be checked",
                    fix="fix it: run `mesh validate`",
                    consumers=tuple(unique_consumers(c for cs in readers_at_base.values() for c in cs)),
                )
            )
            continue
        if key in base and key in head:
            changes += diff_specs(base[key], head[key], consumers=consumer_specs, today=today)
        elif key in base:
            changes += removed_product(base[key], consumer_specs, today, moves.get(key))
        elif key not in head:  # unreadable at the base and gone now
            changes.append(
                Change(
                    key,
                    None,
                    None,
                    Rule.BASE_SPEC_UNREADABLE,
                    False,
                    f"the spec at the base does not parse ({base_unreadable[key]}) and the "
                    "product is gone: what it published cannot be checked",
                    warning=True,
                )
            )
        else:
            if key in base_unreadable:
                changes.append(
                    Change(
                        key,
                        None,
                        None,
                        Rule.BASE_SPEC_UNREADABLE,
                        False,
                        f"the spec at the base does not parse ({base_unreadable[key]}): "
                        "compared as a new product",
                        warning=True,
                    )
                )
            added = diff_specs(None, head[key])
            if key in moved_from:
                added = [replace(c, reason=f"{c.reason} (moved? from {moved_from[key]})") for c in added]
            changes += added
    return changes


def working_tree_specs(
    root: Path, today: date | None = None
) -> tuple[dict[str, DataProductSpec], dict[str, str]]:
    """The specs of the working tree, and the unreadable ones (key to why), through the registry."""
    registry = load_registry(root, today)
    unreadable: dict[str, str] = {}
    for key in registry.unreadable:
        domain, name = key.split(".")
        reasons = [
            f"{i.field}: {i.message}" if i.field else i.message
            for i in registry.errors
            if i.file.parent.name == name and i.file.parent.parent.parent.name == domain
        ]
        unreadable[key] = reasons[0] if reasons else "invalid spec"
    return {k: p.spec for k, p in registry.products.items()}, unreadable


def diff_working_tree(root: Path, base: str = "HEAD", today: date | None = None) -> DiffReport:
    """Compare every product's contract in the working tree under `root` with the same at git `base`.

    A removed, renamed or retyped column is then judged by who reads it (`column_impact`): breaking for
    each reader, named with the column path, or allowed when nobody reads it.
    """
    from mesh_assets.contracts.column_impact import judge_by_readers

    snapshot = read_specs_at(root, base)
    head, head_unreadable = working_tree_specs(root, today)
    changes = diff_mesh(
        snapshot.specs,
        head,
        base_unreadable=snapshot.unreadable,
        head_unreadable=head_unreadable,
        today=today,
    )
    changes = judge_by_readers(changes, load_registry(root, today), today)
    return DiffReport(base=base, commit=snapshot.commit, changes=changes)
