"""The consumer registry and `mesh impact`: who reads which port of a product, and what a change breaks.

Every consumer is known from the input ports of all specs: a consumer reads the newest port inside its
version range, as the registry resolves it. Whether it may read that port (deprecated, overdue for
retirement past its sunset, retired, beta without preview, draft from another domain) comes from the
registry's own validation, so this module never restates those rules. What the working tree's changes
would break for each consumer comes from the contract diff (`contract_diff`).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from mesh_assets.contracts.column_impact import ColumnIndex, ColumnReader
from mesh_assets.contracts.contract_diff import diff_working_tree
from mesh_assets.contracts.diff_git import ContractDiffError
from mesh_assets.contracts.diff_rules import Change, Consumer
from mesh_assets.product import lifecycle
from mesh_assets.product.registry import Registry, effective_status, load_registry
from mesh_assets.product.spec import OutputPort, ProductInput, Status
from mesh_assets.product.versions import SEMVER, VersionRangeError, parse_range, satisfies

_MAJOR = re.compile(r"^v?(\d+)$")
_SEMVER = re.compile(SEMVER)


class ImpactError(ValueError):
    """The product or version asked about does not exist."""


@dataclass(frozen=True)
class ConsumerUse:
    """One consumer's reading of a product: the port its range resolves to, and whether it may read it."""

    consumer: Consumer
    port: str | None
    """`v<major>` the consumer reads, or None when no port satisfies its range."""
    version: str | None
    standing: str
    """`ok`, `warning` (e.g. a deprecated port), `overdue` (the port is past its sunset: still served,
    but the consumer must move now) or `refused` (retired, removed, not allowed)."""
    notes: tuple[str, ...] = ()
    """The registry's messages about this input port, each with its fix."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            **self.consumer.to_dict(),
            "port": self.port,
            "version": self.version,
            "standing": self.standing,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class PortUse:
    """One port of a product and everyone reading it."""

    major: int
    version: str
    status: Status
    """The port's status (time never changes it: past its sunset a port is still deprecated)."""
    sunset: date | None
    replacement: str | None
    consumers: tuple[ConsumerUse, ...]
    overdue: bool = False
    """Past its sunset: overdue for retirement, still served, its consumers red."""

    @property
    def label(self) -> str:
        """`v1 (1.4.0, deprecated until 2027-03-31, replaced by v2)`, or `... overdue for retirement
        since its sunset 2027-03-31 ...` once past it."""
        detail = f"{self.version}, {self.status}"
        if self.sunset is not None:
            detail += (
                f", overdue for retirement since its sunset {self.sunset.isoformat()}"
                if self.overdue
                else f" until {self.sunset.isoformat()}"
            ) + f", replaced by v{self.replacement}"
        return f"v{self.major} ({detail})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "port": f"v{self.major}",
            "version": self.version,
            "status": str(self.status),
            "sunset": self.sunset.isoformat() if self.sunset else None,
            "overdue": self.overdue,
            "replacement": self.replacement,
            "consumers": [c.to_dict() for c in self.consumers],
        }


@dataclass
class ImpactReport:
    """Who consumes a product's ports, and what the working tree's contract changes break for them."""

    product: str
    team: str | None
    steward: str | None
    ports: list[PortUse]
    unresolved: list[ConsumerUse] = field(default_factory=list)
    """Consumers whose range no port satisfies (they fail validation)."""
    changes: list[Change] = field(default_factory=list)
    """The product's contract changes against `base`."""
    base: str | None = None
    commit: str | None = None
    diff_error: str | None = None
    """Why the diff could not run (no git, unknown ref); consumers are still listed."""
    columns: dict[str, dict[str, list[ColumnReader]]] = field(default_factory=dict)
    """Per port (`v<major>`), per column: the consumer ports and columns reading it, across domains."""

    @property
    def uses(self) -> list[ConsumerUse]:
        """Every consumer, by port, then those no port serves."""
        return [u for p in self.ports for u in p.consumers] + self.unresolved

    def breaks(self, consumer: str) -> list[Change]:
        """The breaking changes that affect one consumer (`<domain>.<product>`)."""
        return [c for c in self.changes if c.breaking and any(x.product == consumer for x in c.consumers)]

    def notices(self, consumer: str) -> list[Change]:
        """The warnings (deprecations, range moves) addressed to one consumer."""
        return [
            c
            for c in self.changes
            if not c.breaking and c.warning and any(x.product == consumer for x in c.consumers)
        ]

    @property
    def unclaimed(self) -> list[Change]:
        """Breaking changes no consumer in the mesh reads (outside readers may still)."""
        return [c for c in self.changes if c.breaking and not c.consumers]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "product": self.product,
            "owner": {"team": self.team, "steward": self.steward},
            "ports": [p.to_dict() for p in self.ports],
            "unresolved": [u.to_dict() for u in self.unresolved],
            "base": self.base,
            "commit": self.commit,
            "diff_error": self.diff_error,
            "breaks": {
                u.consumer.product: [c.to_dict() for c in self.breaks(u.consumer.product)] for u in self.uses
            },
            "notices": {
                u.consumer.product: [c.to_dict() for c in self.notices(u.consumer.product)] for u in self.uses
            },
            "changes": [c.to_dict() for c in self.changes],
            "columns": {
                port: {column: [r.to_dict() for r in readers] for column, readers in columns.items()}
                for port, columns in self.columns.items()
            },
        }

    def to_json(self) -> str:
        """Machine-readable report."""
        return json.dumps(self.to_dict(), indent=2)


def parse_target(text: str) -> tuple[str, str | None]:
    """`<domain>.<product>[@version]` into the product key and the version selector (if any)."""
    key, _, version = text.strip().partition("@")
    key = key.strip().replace("/", ".")
    if key.count(".") != 1 or not all(key.split(".")):
        raise ImpactError(f"'{text}' is not <domain>.<product>[@version], e.g. sales.sales@2")
    return key, version.strip() or None


def _selects(port: OutputPort, selector: str | None) -> bool:
    """Whether a port matches a selector: a major (`2`, `v2`), a version (`1.4.0`) or a range."""
    if selector is None:
        return True
    major = _MAJOR.match(selector)
    if major:
        return port.major == int(major[1])
    if _SEMVER.match(selector):
        return port.version == selector
    return satisfies(port.version, selector)


def consumer_uses(registry: Registry, product: str) -> list[ConsumerUse]:
    """Every consumer of `product` in the mesh, each with the port it reads and its standing."""
    producer = registry.products.get(product)
    uses = []
    for reader in sorted(registry.products.values(), key=lambda p: p.key):
        for index, declared in enumerate(reader.spec.input_ports):
            if not isinstance(declared, ProductInput) or declared.product != product or reader.key == product:
                continue
            resolved = registry.resolve(reader, declared)
            # The registry already judged this input port; reuse its verdict and its wording.
            issues = [
                i
                for i in registry.issues
                if i.file == reader.path and i.field.startswith(f"input_ports[{index}]")
            ]
            notes = tuple(f"{i.message}. Fix: {i.fix}" for i in issues)
            if producer is None:
                standing, notes = "refused", (*notes, f"{product} is not in the working tree")
            elif resolved is None or any(i.severity == "error" for i in issues):
                standing = "refused"
            elif lifecycle.is_overdue(resolved.producer.spec, resolved.port, registry.today):
                standing = "overdue"
            else:
                standing = "warning" if issues else "ok"
            uses.append(
                ConsumerUse(
                    consumer=Consumer.of(reader.spec, declared),
                    port=f"v{resolved.port.major}" if resolved else None,
                    version=resolved.port.version if resolved else None,
                    standing=standing,
                    notes=notes,
                )
            )
    return uses


def consumer_registry(registry: Registry) -> dict[str, list[ConsumerUse]]:
    """The consumer registry: every product of the mesh to the consumers of its ports."""
    return {key: consumer_uses(registry, key) for key in sorted(registry.products)}


def impact(
    registry: Registry,
    target: str,
    changes: list[Change] | None = None,
    *,
    base: str | None = None,
    commit: str | None = None,
    diff_error: str | None = None,
    column: str | None = None,
) -> ImpactReport:
    """Who consumes `target` (`<domain>.<product>[@version]`) and what `changes` break for each of them.

    `changes` are contract changes of the whole mesh (from `contract_diff`); only the product's are kept.
    Each selected port's columns (only `column`, if given) are listed with the consumer ports and columns
    reading them (`column_impact`). Raises `ImpactError` for a product neither the registry nor the
    changes know, or a version or column it lacks.
    """
    key, selector = parse_target(target)
    if selector is not None and not (_MAJOR.match(selector) or _SEMVER.match(selector)):
        try:
            parse_range(selector)
        except VersionRangeError as exc:
            raise ImpactError(f"'{selector}' is not a major (2, v2), a version (2.0.0) or a range") from exc
    mine = [c for c in changes or [] if c.product == key]
    product = registry.products.get(key)
    if product is None and not mine:
        close = difflib.get_close_matches(key, registry.products, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "known: " + ", ".join(sorted(registry.products))
        raise ImpactError(f"no product '{key}' in the mesh; {hint}")
    uses = consumer_uses(registry, key)
    ports: list[PortUse] = []
    columns: dict[str, dict[str, list[ColumnReader]]] = {}
    if product is not None:
        spec = product.spec
        selected = [p for p in spec.output_ports if _selects(p, selector)]
        if not selected:
            published = ", ".join(p.version for p in spec.output_ports)
            raise ImpactError(f"{key} has no port matching '{selector}'; it publishes {published}")
        for port in sorted(selected, key=lambda p: -p.major):
            dep = port.deprecation if spec.port_status(port) == Status.DEPRECATED else None
            ports.append(
                PortUse(
                    major=port.major,
                    version=port.version,
                    status=effective_status(spec, port, registry.today),
                    sunset=dep.sunset if dep else None,
                    replacement=dep.replacement if dep else None,
                    consumers=tuple(u for u in uses if u.port == f"v{port.major}"),
                    overdue=lifecycle.is_overdue(spec, port, registry.today),
                )
            )
        columns = _column_readers(registry, key, selected, column)
        if selector is not None:
            majors = {f"v{p.major}" for p in selected}
            mine = [c for c in mine if c.port is None or c.port in majors]
    return ImpactReport(
        product=key,
        team=product.spec.owner.team if product else None,
        steward=product.spec.owner.steward if product else None,
        ports=ports,
        unresolved=[u for u in uses if u.port is None] if selector is None else [],
        changes=mine,
        base=base,
        commit=commit,
        diff_error=diff_error,
        columns=columns,
    )


def _column_readers(
    registry: Registry, key: str, ports: list[OutputPort], column: str | None
) -> dict[str, dict[str, list[ColumnReader]]]:
    names = {c.name for p in ports for c in p.columns}
    if column is not None and column not in names:
        close = difflib.get_close_matches(column, names, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "columns: " + ", ".join(sorted(names))
        raise ImpactError(f"{key} has no column '{column}' in the selected port(s); {hint}")
    index = ColumnIndex(registry)
    return {
        f"v{port.major}": {
            c.name: index.readers(key, port.major, c.name) for c in port.columns if column in (None, c.name)
        }
        for port in sorted(ports, key=lambda p: -p.major)
    }


def analyse(
    root: Path, target: str, base: str = "HEAD", today: date | None = None, column: str | None = None
) -> ImpactReport:
    """`mesh impact`: the consumers of `target` under `root`, and what the diff against `base` breaks.

    A diff that cannot run (no git, unknown ref) is reported in `diff_error`; the consumers are still
    listed.
    """
    registry = load_registry(root, today)
    try:
        report = diff_working_tree(root, base, today)
    except ContractDiffError as exc:
        return impact(registry, target, base=base, diff_error=str(exc), column=column)
    return impact(registry, target, report.changes, base=base, commit=report.commit, column=column)
